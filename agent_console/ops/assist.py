"""Agent assist: the knowledge base's best entries for what a caller said, and the category of the entry the
IVR answered with. A subscriber of the hub's stored events that runs before the live model, so it needs the
database and the matcher outside the hub's lock; it leaves its findings in the batch's ``notes`` (by event id),
where the live model picks them up."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from agent_console.ops.protocol import Suggestion
from ivr.contract import KbDecided, SpeechHeard
from knowledge_base.settings import fill_placeholders
from knowledge_base.store import get_entry

log = logging.getLogger(__name__)
SUGGESTIONS = 3


class AgentAssist:
    def __init__(self, sessions: Callable[[], Session], matcher: Any = None):
        self.sessions = sessions
        self.matcher = matcher

    def on_stored(self, events: Sequence[Any], notes: dict[str, Any]) -> None:
        for e in events:
            try:
                if isinstance(e, SpeechHeard) and e.kind == "final" and e.speaker == "caller" and e.text.strip():
                    notes[e.event_id] = self.suggest(e.text)
                elif isinstance(e, KbDecided) and e.faq_id:
                    notes[e.event_id] = self.entry_category(e.faq_id)
            except Exception:  # noqa: BLE001 - the live view goes on without the suggestion
                log.exception("ops: enriching a %s event failed", e.type)

    def suggest(self, text: str) -> list[Suggestion]:
        """The knowledge base's best entries for what the caller said."""
        if self.matcher is None:
            return []
        result = self.matcher.match(text)
        out: list[Suggestion] = []
        court = getattr(self.matcher, "court", None)
        with self.sessions() as db:
            for c in result.candidates[:SUGGESTIONS]:
                entry = get_entry(db, c.faq_id)
                if entry is None or not entry.enabled:
                    continue
                answer = fill_placeholders(entry.answer, court) if court is not None else entry.answer
                out.append(Suggestion(faq_id=c.faq_id, score=round(c.score, 3), category=entry.category,
                                      question=entry.question, answer=answer))
        return out

    def entry_category(self, faq_id: str) -> str | None:
        with self.sessions() as db:
            entry = get_entry(db, faq_id)
            return entry.category if entry is not None else None
