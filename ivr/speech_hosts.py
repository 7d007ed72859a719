"""Several speech services for one worker: which one to use now, health probes, failover to the next.

The worker keeps one ``SpeechHosts`` for all its calls. Each stream or voice request asks ``order()`` for the hosts
to try: the healthy ones in the worker's order of preference, then the ones that failed (a last resort, so a single
host that blinked is still tried at once, as before). A host that refuses a connection or drops a stream is marked
down; the probe (``{"stats": 1}`` every ``interval_s``) marks it up again when it answers, and finds a dead one
before a caller does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence

import structlog
import websockets

log = structlog.get_logger(__name__)

PROBE_TIMEOUT_S = 1.5


class SpeechHosts:
    def __init__(self, urls: Sequence[str], first: int = 0):
        """``urls`` in the configured order; ``first``: start preferring this one (workers rotate through the
        list by their index, so the workers of a host spread over the speech hosts)."""
        if not urls:
            raise ValueError("no speech service URL")
        k = first % len(urls)
        self.urls = list(urls[k:]) + list(urls[:k])
        self._down: dict[str, float] = {}  # url -> when it was marked down (monotonic)

    def __repr__(self) -> str:
        return f"SpeechHosts({self.urls!r}, down={sorted(self._down)!r})"

    def order(self) -> list[str]:
        up = [u for u in self.urls if u not in self._down]
        return up + sorted((u for u in self.urls if u in self._down), key=self._down.__getitem__)

    def is_up(self, url: str) -> bool:
        return url not in self._down

    def failed(self, url: str, reason: str) -> None:
        if url not in self._down:
            log.warning("speech_host_down", url=url, reason=reason[:200])
        self._down[url] = time.monotonic()

    def answered(self, url: str) -> None:
        if self._down.pop(url, None) is not None:
            log.info("speech_host_up", url=url)

    async def probe(self, url: str) -> bool:
        try:
            async with websockets.connect(url, open_timeout=PROBE_TIMEOUT_S, close_timeout=0.5) as ws:
                await ws.send(json.dumps({"stats": 1}))
                json.loads(await asyncio.wait_for(ws.recv(), PROBE_TIMEOUT_S))
        except (OSError, TimeoutError, ValueError, websockets.WebSocketException) as e:
            self.failed(url, f"probe: {type(e).__name__}: {e}")
            return False
        self.answered(url)
        return True

    async def probe_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.gather(*(self.probe(u) for u in self.urls))
            await asyncio.sleep(interval_s)


#: where the speech client sends a request: one URL (tests, tools) or a worker's hosts
SpeechTarget = str | SpeechHosts


def as_hosts(target: SpeechTarget) -> SpeechHosts:
    return target if isinstance(target, SpeechHosts) else SpeechHosts([target])
