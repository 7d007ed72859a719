"""A streaming recognition session: PCM16 frames in, typed events out.

Whisper is not a streaming recognizer, so (as LiveKit Agents' StreamAdapter does) a VAD endpointer
cuts the audio into utterances and whisper decodes each one at its endpoint; vosk, when configured,
gives partials while the caller speaks (and the final too when it is the only engine).

``feed`` runs the final decode synchronously (~0.5 s for whisper base, 10 s window, 2 cores): call
it from a worker thread, or hand a ``decode`` that waits on a shared queue; never on an event loop.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

from asr.events import Final, NoInput, Partial, Speculative, SpeechEvent, SpeechOnset, SpeechResumed, SpeechStarted
from asr.settings import AsrSettings
from asr.vad import Endpointer, Utterance
from asr.vosk_engine import VoskEngine, VoskStream
from asr.whisper_engine import Transcript

Decode = Callable[[np.ndarray, int], Transcript]
#: (pcm, rate, kind) -> Future of a Transcript; kind is "speculative" or "partial"; raises on refusal (busy)
Submit = Callable[[np.ndarray, int, str], Future]


class StreamSession:
    """One caller's recognition session at ``rate`` (8000 or 16000 Hz).

    ``decode``: the final recognizer (``WhisperEngine.transcribe`` or a queue in front of it); None
    means vosk gives the final text. ``vosk``: partials (and finals when ``decode`` is None).
    ``submit``: optional early decodes through the shared queue — the speculative final after
    ``speculative_ms`` of silence, and (without vosk) partials every ``partial_every_ms`` of speech.
    ``counters`` (shared by the service) counts speculative, speculative_used, speculative_wasted,
    speculative_refused and partial decodes.
    """

    def __init__(self, rate: int, settings: AsrSettings | None = None, decode: Decode | None = None,
                 vosk: VoskEngine | None = None, clock: Callable[[], float] = time.perf_counter,
                 submit: Submit | None = None, counters: Counter | None = None) -> None:
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
        self.submit = submit
        self.counters: Counter = counters if counters is not None else Counter()
        self._spec: tuple[int, Future] | None = None  # (samples decoded, future) of this silence run
        self._spec_tried = False
        self._spec_told = False  # its text was sent (Speculative) in this silence run
        self._partial: Future | None = None
        self._since_redecode = 0.0
        self.closed = False
        #: called (from the decoding thread) when a speculative decode is done, so the service can ``poll`` for its
        #: text at once instead of at the caller's next frame (up to a chunk, 100 ms, later)
        self.on_speculative_done: Callable[[], None] | None = None

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
            self._since_redecode = 0.0
            self._last_partial = ""
            if self.vosk is not None:
                self._vstream = self.vosk.stream(self.rate)
                for chunk in self.endpointer._utt:  # pre-roll and the speech so far
                    self._vstream.accept(chunk)
                self._since_partial = 0.0
                self._last_partial = ""
        elif r is not None and r[0] == "onset":
            events.append(SpeechOnset(at_s=round(r[1], 3)))
        elif r is not None and r[0] == "no_input":
            events.append(NoInput(after_s=round(r[1], 3)))
        elif r is not None and r[0] == "end":
            events.append(self._final(r[1]))
        elif self.endpointer.in_speech and self.submit is not None:
            self._early(len(pcm) / self.rate, events)
        if r is None and self.endpointer.in_speech and self._vstream is not None:
            self._vstream.accept(pcm)
            self._since_partial += len(pcm) / self.rate
            if self._since_partial * 1000 >= self.s.partial_interval_ms:
                self._since_partial = 0.0
                text = self._vstream.partial()
                if text and text != self._last_partial:
                    self._last_partial = text
                    events.append(Partial(text))
        return events

    def _early(self, dur: float, events: list[SpeechEvent]) -> None:
        """Speculative final and partial re-decodes while the utterance goes on."""
        assert self.submit is not None
        ep = self.endpointer
        silence_ms = ep.silence_s * 1000
        if silence_ms == 0:  # the caller goes on: a speculative decode of the pause is wasted
            if self._spec_told:
                events.append(SpeechResumed(at_s=round(ep.t, 3)))
                self._spec_told = False
            self._drop_speculation()
            self._spec_tried = False
        elif self.s.endpoint.speculative_ms and silence_ms >= self.s.endpoint.speculative_ms and not self._spec_tried:
            self._spec_tried = True
            pcm = ep.so_far()
            try:
                self._spec = (len(pcm), self.submit(pcm, self.rate, "speculative"))
                self.counters["speculative"] += 1
            except Exception:  # refused (busy): the final is decoded at the endpoint as usual
                self.counters["speculative_refused"] += 1
            else:
                if (hook := self.on_speculative_done) is not None:
                    self._spec[1].add_done_callback(lambda _f: hook())
        self._tell_speculative(events)
        if self.vosk is not None or not self.s.partial_every_ms:
            return
        p = self._partial
        if p is not None and p.done():
            self._partial = None
            if not p.cancelled() and p.exception() is None:
                text = p.result().text
                if text and text != self._last_partial:
                    self._last_partial = text
                    events.append(Partial(text))
        self._since_redecode += dur
        if self._partial is None and silence_ms == 0 and self._since_redecode * 1000 >= self.s.partial_every_ms:
            self._since_redecode = 0.0
            try:
                self._partial = self.submit(ep.so_far(), self.rate, "partial")
                self.counters["partial"] += 1
            except Exception:  # busy: no partial this time
                self.counters["partial_refused"] += 1

    def poll(self) -> list[SpeechEvent]:
        """Between frames: the speculative text once its decode is done (see ``on_speculative_done``)."""
        events: list[SpeechEvent] = []
        if not self.closed:  # after the endpoint there is no speculation left to tell
            self._tell_speculative(events)
        return events

    def _tell_speculative(self, events: list[SpeechEvent]) -> None:
        ep = self.endpointer
        spec = self._spec[1] if self._spec is not None else None
        if ep.silence_s and spec is not None and spec.done() and not self._spec_told and not spec.cancelled() \
                and spec.exception() is None:
            self._spec_told = True
            tr = spec.result()
            events.append(Speculative(text=tr.text, confidence=tr.confidence,
                                      latency_s=round(ep.t - ep.speech_end_s, 3)))

    def _drop_speculation(self) -> None:
        if self._spec is not None:
            self._spec[1].cancel()
            self.counters["speculative_wasted"] += 1
            self._spec = None

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
        heard = None
        tr = None
        speculative = 0.0
        if self._partial is not None:
            self._partial.cancel()
            self._partial = None
        # the caller stayed silent since the speculative decode began (speech would have dropped it), so it heard
        # every word; the final audio differs only in up to ~0.1 s more trailing silence
        if self._spec is not None and self._spec[0] <= len(utt.pcm):
            try:  # the caller stayed silent: the speculative decode is the final
                tr = self._spec[1].result(timeout=60)
                self.counters["speculative_used"] += 1
                speculative = 1.0
                self._spec = None
            except Exception:  # cancelled, failed or refused: decode again below
                tr = None
        self._drop_speculation()
        self._spec_tried = False
        self._spec_told = False
        if tr is None and self.decode is not None:
            tr = self.decode(utt.pcm, utt.rate)
        alternatives: tuple[str, ...] = ()
        if tr is not None:
            text, conf, alternatives = tr.text, tr.confidence, tr.alternatives
            heard = tr.info.get("heard") if isinstance(tr.info.get("heard"), str) else None
        else:
            assert self._vstream is not None
            text, conf = self._vstream.final()
        self._vstream = None
        decode_s = self.clock() - t0
        delay = utt.endpoint_s - utt.speech_end_s
        timings = {"speech_start_s": round(utt.start_s, 3), "speech_end_s": round(utt.speech_end_s, 3),
                   "endpoint_s": round(utt.endpoint_s, 3), "endpoint_delay_s": round(delay, 3),
                   "decode_s": round(decode_s, 3), "latency_s": round(delay + decode_s, 3),
                   "cut": float(utt.cut), "speculative": speculative}
        return Final(text=text, confidence=conf, audio_s=round(len(utt.pcm) / utt.rate, 3), decode_s=decode_s,
                     timings=timings, heard=heard, alternatives=alternatives)
