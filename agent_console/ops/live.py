"""The live view of calls the hub knows are running, folded from worker events as they arrive.

Transcript lines: a partial opens (or updates) the speaker's current line; the final replaces it under
the same ``line_id`` and closes it, so a browser shows each utterance once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agent_console.ops.protocol import BridgeInfo, CallSnapshot, NoteOut, Suggestion, TranscriptLine


@dataclass
class LiveCall:
    call_id: str
    worker: str
    started_at: datetime
    caller: str = ""
    state: str = "ivr"  # ivr, queued, talking, ended
    menu_path: list[str] = field(default_factory=list)
    category: str | None = None
    reason: str = ""
    lines: dict[str, TranscriptLine] = field(default_factory=dict)  # insertion order = utterance order
    open_lines: dict[str, str] = field(default_factory=dict)  # speaker -> line_id being spoken
    n_lines: int = 0
    suggestions: dict[str, list[Suggestion]] = field(default_factory=dict)
    kb: dict[str, Any] | None = None
    kb_category: str | None = None
    notes: list[NoteOut] = field(default_factory=list)
    bridge: BridgeInfo | None = None
    operator_id: int | None = None
    ended_at: datetime | None = None
    seen_at: float = 0.0  # hub clock when its first event arrived (0: rebuilt from the database at start)

    def speech(self, speaker: str, kind: str, text: str, at: datetime) -> TranscriptLine | None:
        """Fold one recognizer result; returns the line as it now reads (None when nothing shows)."""
        if kind not in ("partial", "final"):
            if kind in ("no_input", "busy", "unavailable"):
                self.open_lines.pop(speaker, None)
            return None
        line_id = self.open_lines.get(speaker)
        if line_id is None:
            if kind == "partial" and not text:
                return None
            self.n_lines += 1
            line_id = f"{self.call_id}:{self.n_lines}"
        line = TranscriptLine(line_id=line_id, call_id=self.call_id, speaker=speaker,  # type: ignore[arg-type]
                              text=text, final=kind == "final", at=at)
        self.lines[line_id] = line
        if kind == "final":
            self.open_lines.pop(speaker, None)
        else:
            self.open_lines[speaker] = line_id
        return line

    def hints(self) -> dict[str, str | None]:
        """The call's topic for a work order's draft: its queue category and the knowledge base's (the entry the IVR
        answered with, else the best suggestion for the caller's first question)."""
        kb_category = self.kb_category
        for items in self.suggestions.values():
            if items:
                kb_category = kb_category or items[0].category
                break
        return {"queue_category": self.category, "kb_category": kb_category}

    def snapshot(self) -> CallSnapshot:
        return CallSnapshot(call_id=self.call_id, caller=self.caller, state=self.state,  # type: ignore[arg-type]
                            menu_path=list(self.menu_path), category=self.category, lines=list(self.lines.values()),
                            suggestions=dict(self.suggestions), notes=list(self.notes), bridge=self.bridge,
                            operator_id=self.operator_id)


class LiveCalls:
    """The calls the hub shows live, behind the lock that guards them and the queue.

    Made before the hub so the subscribers that read it (work-order filing: a call's category; the callbacks
    dispatcher: the call slots in use) are wired at construction."""

    def __init__(self) -> None:
        self.calls: dict[str, LiveCall] = {}
        self.lock = threading.RLock()

    def category_of(self, call_id: str) -> str | None:
        call = self.calls.get(call_id)
        return call.category if call is not None else None

    def worker_calls(self) -> dict[str, list[str]]:
        """Call slots each worker uses now, as far as its events tell: its live calls, a bridged (or ringing)
        operator leg counting once more."""
        out: dict[str, list[str]] = {}
        with self.lock:
            for c in self.calls.values():
                if c.state == "ended":
                    continue
                ids = out.setdefault(c.worker, [])
                ids.append(c.call_id)
                if c.bridge is not None and c.bridge.state in ("requested", "dialing", "connected"):
                    ids.append(c.call_id)
        return out
