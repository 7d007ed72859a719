"""The voice's audio of sentences many callers hear (knowledge-base answers, confirm and list sentences), kept in
the worker: callers ask the same few questions, and fetching a 10 s answer from the speech service took ~25 ms
before its first sound. One per worker, shared by its calls (``CallServices.voice_cache``).

Written here, not taken from a library: an OrderedDict does it in a few lines, and ``functools.lru_cache``
counts entries, not bytes, and cannot keep a coroutine's result.
"""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_MAX_BYTES = 32 << 20  # ~100 answers of 20 s at 8 kHz


class VoiceCache:
    """text and rate -> PCM16; the least recently used go first once the total exceeds ``max_bytes``."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_bytes = max_bytes
        self._pcm: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self.bytes = 0
        self.hits = 0

    def get(self, text: str, rate: int) -> bytes | None:
        pcm = self._pcm.get((text, rate))
        if pcm is not None:
            self._pcm.move_to_end((text, rate))
            self.hits += 1
        return pcm

    def put(self, text: str, rate: int, pcm: bytes) -> None:
        if len(pcm) > self.max_bytes or (text, rate) in self._pcm:
            return
        self._pcm[(text, rate)] = pcm
        self.bytes += len(pcm)
        while self.bytes > self.max_bytes:
            _, old = self._pcm.popitem(last=False)
            self.bytes -= len(old)

    def __len__(self) -> int:
        return len(self._pcm)
