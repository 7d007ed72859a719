"""The typed message contract between IVR workers and the console hub.

This module is the only part of ``ivr`` that other packages (the hub) may import: it depends on
pydantic alone, so workers and hubs can run on different machines and versions can be checked.
Workers POST an :class:`EventBatch` to the hub's ``/internal/events`` with the worker token as a
bearer token; the hub stores each event once (``event_id`` is the idempotency key), so a worker
may resend its spool after a restart without creating duplicates.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

CONTRACT_VERSION = 1


def _now() -> datetime:
    return datetime.now(UTC)


def _id() -> str:
    return uuid.uuid4().hex


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(default_factory=_id)
    call_id: str
    worker: str
    ts: datetime = Field(default_factory=_now)


class CallOffered(_Event):
    type: Literal["call_offered"] = "call_offered"
    caller: str
    callee: str
    source: str = Field(description="ip:port the INVITE came from")
    sip_call_id: str = ""
    direction: Literal["inbound", "outbound"] = "inbound"


class CallRejected(_Event):
    type: Literal["call_rejected"] = "call_rejected"
    status_code: int
    reason: str


class CallAnswered(_Event):
    type: Literal["call_answered"] = "call_answered"
    codec: str = ""


class MenuEntered(_Event):
    type: Literal["menu_entered"] = "menu_entered"
    node: str


class DigitsReceived(_Event):
    type: Literal["digits_received"] = "digits_received"
    node: str
    digits: str
    method: Literal["rfc4733", "sip_info", "inband", "unknown"] = "unknown"


class PromptPlayed(_Event):
    type: Literal["prompt_played"] = "prompt_played"
    node: str
    prompt: str
    played_ms: int
    duration_ms: int
    interrupted: bool = False


class SpeechHeard(_Event):
    """What the recognizer made of the caller's (or, once bridged, the operator's) speech."""

    type: Literal["speech_heard"] = "speech_heard"
    node: str
    speaker: Literal["caller", "operator"] = "caller"
    kind: Literal["started", "partial", "final", "no_input", "busy", "unavailable"]
    text: str = ""
    confidence: float | None = None
    audio_s: float | None = None
    latency_s: float | None = Field(None, description="end of speech -> final text, as the recognizer saw it")
    early: bool = Field(False, description="a final the dialogue took on the recognizer's speculative text, before "
                                           "its endpoint (the knowledge base answers, confirms or lists it; "
                                           "ivr/listening.py)")


class KbDecided(_Event):
    """The knowledge base's decision on the caller's question (answer / confirm / clarify / handoff)."""

    type: Literal["kb_decided"] = "kb_decided"
    node: str
    decision: Literal["answer", "confirm", "clarify", "handoff"]
    faq_id: str | None = None
    score: float | None = None
    margin: float | None = None
    reason: str = ""
    query: str = Field("", description="the caller's question as recognised (what the knowledge base was asked)")
    offered: list[str] = Field(default_factory=list, max_length=3, description=(
        "what the caller is asked about, in spoken order: one entry for confirm, 2-3 for clarify; a menu option "
        "is 'option:<key>'"))


class KbClarified(_Event):
    """How the caller answered "您是想问：一，…；二，…？" (or a yes/no confirm): the entry or option picked, or none."""

    type: Literal["kb_clarified"] = "kb_clarified"
    node: str
    offered: list[str] = Field(max_length=3)
    picked: str | None = Field(None, description="the id picked from offered; None: 都不是, 0, silence or unclear")
    method: Literal["keypad", "speech", "none"] = "none"
    text: str = Field("", max_length=500, description="what the caller said, when they spoke")


class MenuSpeech(_Event):
    """What the caller said at a keypad menu that also listens (``gather`` with ``speech: true``) and what it chose:
    an option (its key and node), a question for the knowledge base, or nothing (the menu is asked again)."""

    type: Literal["menu_speech"] = "menu_speech"
    node: str
    text: str = Field(max_length=500)
    confidence: float | None = None
    outcome: Literal["option", "question", "clarify", "not_understood", "kb_unavailable"]
    option: str | None = Field(None, description="the key of the option chosen, e.g. '5'")
    target: str | None = Field(None, description="the node it leads to (or 'repeat')")
    decision: str | None = Field(None, description="the matcher's decision")
    faq_id: str | None = None
    score: float | None = None
    reason: str = Field("", max_length=200)


class HandoffRequested(_Event):
    type: Literal["handoff_requested"] = "handoff_requested"
    node: str
    reason: str
    category: str | None = None


class QueueJoined(_Event):
    """The caller waits for an operator (hold music, position announcements, 1 = callback instead)."""

    type: Literal["queue_joined"] = "queue_joined"
    node: str
    reason: str
    category: str | None = None


class QueueLeft(_Event):
    """The caller left the queue, and how."""

    type: Literal["queue_left"] = "queue_left"
    node: str
    outcome: Literal["bridged", "callback", "max_wait", "after_hours", "no_hub", "hangup"]


#: BridgeUpdate reasons when the caller's phone refuses a blind transfer (``ivr.operator_transfer = "refer"``):
#: the offer failed, or (with ``ivr.refer_fallback_bridge``) the worker bridges instead and the same offer goes on
REFER_REFUSED = "refer_refused"
REFER_REFUSED_BRIDGING = "refer_refused: bridging instead"


class BridgeUpdate(_Event):
    """Progress of the worker's call to an operator's phone (a ``BridgeCommand`` from the hub).

    With ``ivr.operator_transfer = "refer"`` it is the progress of the caller's own call to the phone, as
    the caller's phone reports it (NOTIFY); ``connected`` is followed by the worker's ``CallEnded``
    (cause ``transferred``) and no ``ended``: the conversation goes on without the IVR.
    """

    type: Literal["bridge_update"] = "bridge_update"
    offer_id: str
    target: str = Field(description="the operator's SIP URI")
    state: Literal["dialing", "connected", "failed", "ended"]
    status_code: int | None = None
    reason: str = ""


class MessageRecorded(_Event):
    """The caller left a recorded message (after hours, callback request, message to a judge, ...)."""

    type: Literal["message_recorded"] = "message_recorded"
    node: str
    purpose: Literal["after_hours", "callback", "contact_judge", "urge", "complaint", "suggestion"]
    recording: str = Field(description="file name under the recordings directory")
    duration_s: float
    text: str = Field("", description="the transcript of the message ('' when nothing was recognized)")
    case_number: str = Field("", description="the verified case the message is about (menus 3 and 4), canonical form")
    transcript_pending: bool = Field(False, description=(
        "the transcript follows as a MessageTranscribed (the message is reported the moment the caller finishes, "
        "so a worker that dies while the speech service decodes it loses nothing)"))


MessagePurpose = Literal["after_hours", "callback", "contact_judge", "urge", "complaint", "suggestion"]


class MessageTranscribed(_Event):
    """The transcript of a message reported earlier (``message_event_id`` is its MessageRecorded's event id)."""

    type: Literal["message_transcribed"] = "message_transcribed"
    node: str
    message_event_id: str
    purpose: MessagePurpose
    recording: str
    text: str = Field("", description="'' when nothing was recognized or the speech service failed")


class CallbackOutcome(_Event):
    """How an automatic callback (回访, a ``CallbackCommand``) ended; ``call_id`` is the outbound call's."""

    type: Literal["callback_outcome"] = "callback_outcome"
    order_id: int
    attempt: int = Field(ge=1)
    #: reached: an after-hours callback (purpose after_hours) was answered; it asks for no rating
    outcome: Literal["rated", "no_rating", "reached", "no_answer", "busy", "rejected", "failed"]
    rating: int | None = Field(None, ge=1, le=5, description="the citizen's satisfaction, 1 (poor) to 5")
    method: Literal["keypad", "speech"] | None = None
    status_code: int | None = None
    reason: str = Field("", max_length=200, description=(
        "why, for failed: no_slot / draining (the worker placed no call: the hub puts the order back due, its "
        "attempt spent), dial_error: ..., or the SIP reason phrase"))


class MediaStats(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frames_rx: int = 0
    frames_tx: int = 0
    gaps: int = Field(0, description="inter-frame intervals above the gap threshold")
    max_gap_ms: float = 0.0
    underruns: int = 0
    task_frames: int = Field(0, description="caller frames delivered to the call's asyncio task")
    rx_peak: int = Field(0, description="loudest caller sample seen (0..32767)")


class CallEnded(_Event):
    type: Literal["call_ended"] = "call_ended"
    cause: str = Field(description="caller_hangup, ivr_hangup, timeout, error, drained, worker_lost, ...")
    side: Literal["caller", "ivr", "system"]
    status_code: int | None = None
    media: MediaStats = Field(default_factory=MediaStats)


class WorkerLost(BaseModel):
    """Sent by the supervisor: close every open call of ``worker`` with cause worker_lost."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["worker_lost"] = "worker_lost"
    event_id: str = Field(default_factory=_id)
    worker: str
    ts: datetime = Field(default_factory=_now)
    detail: str = ""


CallEvent = Annotated[
    CallOffered | CallRejected | CallAnswered | MenuEntered | DigitsReceived | PromptPlayed
    | SpeechHeard | KbDecided | KbClarified | MenuSpeech | HandoffRequested | QueueJoined | QueueLeft | BridgeUpdate
    | MessageRecorded | MessageTranscribed | CallbackOutcome | CallEnded | WorkerLost,
    Field(discriminator="type"),
]


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = CONTRACT_VERSION
    events: list[CallEvent]


class BatchAck(BaseModel):
    accepted: int
    duplicates: int


# ---------------------------------------------------------------- commands: hub -> worker
# A worker holds one websocket to the hub, ``/internal/worker/ws?worker=<name>`` (bearer worker
# token). It first sends a ``WorkerHello``; then the hub sends ``CommandEnvelope`` messages. Events
# still travel the spooled HTTP path above, so none is lost when the socket drops.


class WorkerHello(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["hello"] = "hello"
    v: Literal[1] = CONTRACT_VERSION
    worker: str
    calls: list[str] = Field(default_factory=list, description="call ids live on this worker now")


class QueueStatus(BaseModel):
    """Where a queued caller stands; the worker announces a changed position (您前面还有N位)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["queue_status"] = "queue_status"
    call_id: str
    position: int = Field(ge=0, description="callers ahead of this one")
    operators_ready: int = Field(ge=0)


class BridgeCommand(BaseModel):
    """An operator accepted the call: call ``target`` and connect it to the caller."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["bridge"] = "bridge"
    call_id: str
    offer_id: str
    target: str = Field(description="the operator's SIP URI")
    ring_timeout_s: float = Field(20.0, gt=0, le=120)


class HangupCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["hangup"] = "hangup"
    call_id: str
    reason: str = ""


class CallbackCommand(BaseModel):
    """回访: call the citizen, speak ``summary``, ask for a rating 1-5 (keypad or speech), report a
    ``CallbackOutcome``. ``call_id`` is chosen by the hub for the outbound call (its call record)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["callback"] = "callback"
    call_id: str
    order_id: int
    order_number: str
    attempt: int = Field(1, ge=1)
    target: str = Field(description="the citizen's SIP URI (through the trunk or PBX)")
    summary: str = Field(max_length=1000, description="what was done, spoken before the rating question")
    purpose: Literal["rating", "after_hours"] = Field("rating", description=(
        "rating: 回访 of an answered order, asks for a rating; after_hours: the callback promised for a message "
        "left after hours: says it was received, speaks the summary if any, reports reached"))
    ring_timeout_s: float = Field(30.0, gt=0, le=120)


HubCommand = Annotated[QueueStatus | BridgeCommand | HangupCommand | CallbackCommand, Field(discriminator="type")]


class CommandEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = CONTRACT_VERSION
    command: HubCommand


# ---------------------------------------------------------------- dead letters
# A worker's events the hub refused for what they are lie in ``<spool>/<worker>.dead.jsonl`` (ivr/publisher.py
# writes them); `hotline doctor` and the hub's wallboard count them from here.


def dead_letter_count(directory: Path) -> dict[str, int]:
    """Events each worker's hub refused, by worker (from the dead-letter files under ``directory``)."""
    out: dict[str, int] = {}
    for f in sorted(directory.glob("*.dead.jsonl")):
        with contextlib.suppress(OSError), f.open("rb") as fh:
            out[f.name.removesuffix(".dead.jsonl")] = sum(1 for line in fh if line.endswith(b"\n"))
    return {k: v for k, v in out.items() if v}
