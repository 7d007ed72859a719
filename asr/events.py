"""Typed events of a streaming recognition session (after LiveKit Agents' SpeechEvent types).

A session yields, per utterance: ``SpeechStarted``, zero or more ``Partial`` (and ``Speculative`` text, each
followed by ``SpeechResumed`` when the caller went on), then one ``Final``;
or ``NoInput`` when nobody spoke before the no-input timeout. Times (``*_s``) are seconds of audio
since the session started, so they are reproducible whatever the wall clock did.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    at_s: float  # audio time of the first speech frame (pre-roll included)


@dataclass(frozen=True, slots=True)
class SpeechOnset:
    """``barge_in_ms`` of speech, before it counts as an utterance: hold the prompt (barge-in)."""

    at_s: float


@dataclass(frozen=True, slots=True)
class Partial:
    text: str


@dataclass(frozen=True, slots=True)
class Final:
    text: str  # Simplified Chinese; "" when the utterance held no recognizable speech
    confidence: float  # 0..1 (whisper: exp(avg_logprob); vosk: mean word confidence)
    audio_s: float  # length of the utterance audio handed to the recognizer
    decode_s: float  # wall time of the decode (queueing included when a shared queue decoded it)
    timings: dict[str, float] = field(default_factory=dict)  # speech_start_s, speech_end_s, endpoint_s, ...
    heard: str | None = None  # for an expected number: what the recognizer wrote before it was read as one
    alternatives: tuple[str, ...] = ()  # the recognizer's next hypotheses, best first (when the session asked)


@dataclass(frozen=True, slots=True)
class Speculative:
    """The speculative final's text, while the endpointer still waits for the end silence: the final unless the
    caller goes on (then ``SpeechResumed`` follows). A dialogue may act on it early (ivr/listening.py)."""

    text: str
    confidence: float
    latency_s: float  # end of speech -> this text, in audio time


@dataclass(frozen=True, slots=True)
class SpeechResumed:
    """The caller spoke again within the end silence after a ``Speculative`` text: the utterance goes on."""

    at_s: float


@dataclass(frozen=True, slots=True)
class NoInput:
    after_s: float  # nobody spoke within the no-input timeout


Timeout = NoInput  # the brief's other name for it

SpeechEvent = SpeechOnset | SpeechStarted | Partial | Speculative | SpeechResumed | Final | NoInput
