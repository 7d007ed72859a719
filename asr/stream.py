"""A streaming recognition session: PCM16 frames in, typed events out.

Whisper is not a streaming recognizer, so (as LiveKit Agents' StreamAdapter does) a VAD endpointer
cuts the audio into utterances and whisper decodes each one at its endpoint; vosk, when configured,
gives partials while the caller speaks (and the final too when it is the only engine).

``feed`` runs the final decode synchronously (~0.5 s for whisper base, 10 s window, 2 cores): call
it from a worker thread, or hand a ``decode`` that waits on a shared queue; never on an event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from asr.events import Final, NoInput, Partial, SpeechEvent, SpeechStarted
from asr.settings import AsrSettings
from asr.vad import Endpointer, Utterance
from asr.vosk_engine import VoskEngine, VoskStream
from asr.whisper_engine import Transcript

Decode = Callable[[np.ndarray, int], Transcript]


class StreamSession:
    """One caller's recognition session at ``rate`` (8000 or 16000 Hz).

    ``decode``: the final recognizer (``WhisperEngine.transcribe`` or a queue in front of it); None
    means vosk gives the final text. ``vosk``: partials (and finals when ``decode`` is None).
    """

    def __init__(self, rate: int, settings: AsrSettings | None = None, decode: Decode | None = None,
                 vosk: VoskEngine | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        if decode is None and vosk is None:
            raise ValueError("a session needs a final recognizer (decode) or a vosk engine")
        self.s = settings or AsrSettings()
        self.rate = rate
        self.decode = decode
        self.vosk = vosk
        self.clock = clock
        self.endpointer = Endpointer(rate, self.s.endpoint)
        self._vstream: VoskStream | None = None
        self._since_partial = 0.0
        self._last_partial = ""
        self.closed = False

    def reset_no_input(self) -> None:
        self.endpointer.reset_no_input()

    def feed(self, frame: bytes | np.ndarray) -> list[SpeechEvent]:
        """One frame (any length; 20 ms is typical) -> the events it caused (usually none)."""
        if self.closed:
            raise RuntimeError("session is closed")
        pcm = np.frombuffer(frame, dtype="<i2") if isinstance(frame, bytes | bytearray) else np.asarray(frame)
        events: list[SpeechEvent] = []
        r = self.endpointer.push(pcm)
        if r is not None and r[0] == "start":
            events.append(SpeechStarted(at_s=round(r[1], 3)))
            if self.vosk is not None:
                self._vstream = self.vosk.stream(self.rate)
                for chunk in self.endpointer._utt:  # pre-roll and the speech so far
                    self._vstream.accept(chunk)
                self._since_partial = 0.0
                self._last_partial = ""
        elif r is not None and r[0] == "no_input":
            events.append(NoInput(after_s=round(r[1], 3)))
        elif r is not None and r[0] == "end":
            events.append(self._final(r[1]))
        elif self.endpointer.in_speech and self._vstream is not None:
            self._vstream.accept(pcm)
            self._since_partial += len(pcm) / self.rate
            if self._since_partial * 1000 >= self.s.partial_interval_ms:
                self._since_partial = 0.0
                text = self._vstream.partial()
                if text and text != self._last_partial:
                    self._last_partial = text
                    events.append(Partial(text))
        return events

    def close(self) -> list[SpeechEvent]:
        """End of audio (hang-up): an utterance in progress is decoded now."""
        events: list[SpeechEvent] = []
        ep = self.endpointer
        if ep.in_speech and ep._utt:
            events.append(self._final(ep._finish(cut=True, at=ep.t)))
        self.closed = True
        return events

    def _final(self, utt: Utterance) -> Final:
        t0 = self.clock()
        if self.decode is not None:
            tr = self.decode(utt.pcm, utt.rate)
            text, conf = tr.text, tr.confidence
        else:
            assert self._vstream is not None
            text, conf = self._vstream.final()
        self._vstream = None
        decode_s = self.clock() - t0
        delay = utt.endpoint_s - utt.speech_end_s
        timings = {"speech_start_s": round(utt.start_s, 3), "speech_end_s": round(utt.speech_end_s, 3),
                   "endpoint_s": round(utt.endpoint_s, 3), "endpoint_delay_s": round(delay, 3),
                   "decode_s": round(decode_s, 3), "latency_s": round(delay + decode_s, 3),
                   "cut": float(utt.cut)}
        return Final(text=text, confidence=conf, audio_s=round(len(utt.pcm) / utt.rate, 3), decode_s=decode_s,
                     timings=timings)
