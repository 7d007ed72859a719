"""The operator websocket's protocol (``/ws/operator``), version 1: JSON text frames, one message each.

Server → browser messages carry ``v`` and ``type``. Messages from the hub-wide event log carry ``seq``,
one increasing sequence for the whole hub (not per connection); a browser remembers the last ``seq`` it
saw. Control messages (``welcome``, ``snapshot``, ``error``) are not in the log and carry ``seq: null``.

1. The server sends ``welcome`` (who you are, the hub's ``epoch`` and the log's ``last_seq``).
2. The browser sends ``{"type": "hello", "resume_from": <last seq seen or 0>, "epoch": <epoch or null>}``.
3. The server replays every logged event after ``resume_from`` the user may see, in order, exactly once;
   when ``resume_from`` is 0, older than the log keeps, or from another epoch (the hub restarted), it sends
   a ``snapshot`` of the current state instead (its ``last_seq`` is the point to resume from).
4. Then live events follow. Commands (``presence``, ``accept``, ``decline``, ``note``, ``play_suggestion``,
   ``wrap_up_done``) may carry a ``ref``; a refused command gets an ``error`` with that ``ref`` and a
   message in Chinese. Their effects arrive as ordinary events.

Personal data (caller numbers, what callers said) is masked for roles that must not see it before a
message leaves the hub (``agent_console.pii``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PROTOCOL_VERSION = 1
Presence = Literal["ready", "busy", "wrap_up", "away"]
Speaker = Literal["caller", "operator"]


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = PROTOCOL_VERSION
    seq: int | None = None


# ------------------------------------------------------------------------------------- pieces
class TranscriptLine(BaseModel):
    """One utterance; a partial is replaced by later versions of the same ``line_id`` until final."""

    line_id: str
    call_id: str
    speaker: Speaker
    text: str
    final: bool
    at: datetime


class Suggestion(BaseModel):
    faq_id: str
    score: float
    category: str
    question: str
    answer: str


class QueueEntry(BaseModel):
    call_id: str
    position: int = Field(description="callers ahead")
    category: str | None
    reason: str
    joined_at: datetime
    state: Literal["waiting", "offered", "bridging"]


class OperatorInfo(BaseModel):
    user_id: int
    name: str
    state: Presence
    since: datetime
    call_id: str | None = None
    reason: str = ""
    connected: bool = False


class NoteOut(BaseModel):
    note_id: str
    call_id: str
    kind: Literal["note", "suggestion"]
    text: str
    by: str
    at: datetime
    faq_id: str | None = None


class BridgeInfo(BaseModel):
    call_id: str
    offer_id: str
    state: Literal["requested", "dialing", "connected", "failed", "ended"]
    reason: str = ""


class CallSnapshot(BaseModel):
    call_id: str
    caller: str
    state: Literal["ivr", "queued", "talking", "ended"]
    menu_path: list[str]
    category: str | None
    lines: list[TranscriptLine]
    suggestions: dict[str, list[Suggestion]] = Field(description="by line_id")
    notes: list[NoteOut]
    bridge: BridgeInfo | None = None
    operator_id: int | None = None


# ------------------------------------------------------------------------------ server -> browser
class Welcome(_Msg):
    type: Literal["welcome"] = "welcome"
    user_id: int
    username: str
    role: str
    epoch: str
    last_seq: int


class PresenceEvent(_Msg):
    type: Literal["presence"] = "presence"
    operator: OperatorInfo


class QueueEvent(_Msg):
    type: Literal["queue"] = "queue"
    entries: list[QueueEntry]
    operators_ready: int


class OfferEvent(_Msg):
    type: Literal["offer"] = "offer"
    call_id: str
    offer_id: str
    user_id: int
    expires_at: datetime
    caller: str
    menu_path: list[str]
    category: str | None
    reason: str
    transcript: list[TranscriptLine]


class OfferRevokedEvent(_Msg):
    type: Literal["offer_revoked"] = "offer_revoked"
    call_id: str
    offer_id: str
    user_id: int
    reason: str


class CallViewEvent(_Msg):
    """A change to a call's live view: a transcript line appended or replaced, or the menu path / KB decision."""

    type: Literal["call_view"] = "call_view"
    call_id: str
    line: TranscriptLine | None = None
    menu_path: list[str] | None = None
    kb: dict[str, Any] | None = None
    state: Literal["ivr", "queued", "talking", "ended"] | None = None
    caller: str | None = None


class SuggestionsEvent(_Msg):
    type: Literal["suggestions"] = "suggestions"
    call_id: str
    line_id: str
    query: str
    items: list[Suggestion]


class BridgeEvent(_Msg):
    type: Literal["bridge"] = "bridge"
    bridge: BridgeInfo


class NoteEvent(_Msg):
    type: Literal["note"] = "note"
    note: NoteOut


class Snapshot(_Msg):
    type: Literal["snapshot"] = "snapshot"
    last_seq: int
    epoch: str
    me: OperatorInfo
    operators: list[OperatorInfo] = Field(description="every operator (supervisors/admins); only me otherwise")
    queue: QueueEvent
    offer: OfferEvent | None = None
    calls: list[CallSnapshot]


class ErrorEvent(_Msg):
    type: Literal["error"] = "error"
    code: str
    message: str
    ref: str | None = None


ServerEvent = Annotated[
    PresenceEvent | QueueEvent | OfferEvent | OfferRevokedEvent | CallViewEvent | SuggestionsEvent | BridgeEvent
    | NoteEvent,
    Field(discriminator="type"),
]


# ------------------------------------------------------------------------------ browser -> server
class _Cmd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = PROTOCOL_VERSION
    ref: str | None = Field(None, max_length=64)


class Hello(_Cmd):
    type: Literal["hello"]
    resume_from: int = Field(0, ge=0)
    epoch: str | None = Field(None, max_length=64)


class SetPresence(_Cmd):
    type: Literal["presence"]
    state: Presence


class Accept(_Cmd):
    type: Literal["accept"]
    offer_id: str = Field(max_length=64)


class Decline(_Cmd):
    type: Literal["decline"]
    offer_id: str = Field(max_length=64)


class AddNote(_Cmd):
    type: Literal["note"]
    call_id: str = Field(max_length=128)
    text: str = Field(min_length=1, max_length=2000)


class PlaySuggestion(_Cmd):
    type: Literal["play_suggestion"]
    call_id: str = Field(max_length=128)
    faq_id: str = Field(max_length=64)


class WrapUpDone(_Cmd):
    """Wrap-up ends only when the call has a work order, or with the reason it needs none (骚扰, 误拨, 无声)."""

    type: Literal["wrap_up_done"]
    reason: Literal["nuisance", "misdial", "silent"] | None = None


ClientCommand = Annotated[Hello | SetPresence | Accept | Decline | AddNote | PlaySuggestion | WrapUpDone,
                          Field(discriminator="type")]


class ClientMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: ClientCommand
