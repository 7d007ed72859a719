"""A matcher that follows the database: rebuilt when the KB's change counter moves, so an admin's
edit answers the next caller within seconds, in every process that asks, without a restart.

With ``kb.semantic`` the rebuild first computes the vectors of entries that have none or have another
model's (after an upgrade of the model, or rows written without an embedder) and stores them, so they are
computed once, never per query."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from knowledge_base.matcher import Intent, Matcher, MatchResult, QueryEmbedder
from knowledge_base.settings import CourtInfo, MatcherSettings, fill_placeholders
from knowledge_base.store import get_entry, kb_stamp, list_entries, refresh_embeddings

CHECK_INTERVAL_S = 1.0  # how often the change counter is read (one tiny query)


class LiveMatcher:
    def __init__(self, session_factory: Callable[[], Session], settings: MatcherSettings | None = None,
                 court: CourtInfo | None = None, embedder: QueryEmbedder | None = None):
        self._sessions = session_factory
        self.settings = settings or MatcherSettings()
        self.court = court or CourtInfo()
        if self.settings.semantic and embedder is None:
            # the model module is imported only when semantic matching is on (kb.semantic = false: no model)
            from knowledge_base.embedding import get_embedder

            embedder = get_embedder()
        self.embedder = embedder if self.settings.semantic else None
        self._lock = threading.Lock()
        self._matcher: Matcher | None = None
        self._stamp: int | None = None
        self._checked = 0.0

    def current(self) -> Matcher:
        now = time.monotonic()
        if self._matcher is not None and now - self._checked < CHECK_INTERVAL_S:
            return self._matcher
        with self._lock:
            with self._sessions() as db:
                stamp = kb_stamp(db)
                if self._matcher is None or stamp != self._stamp:
                    if self.embedder is not None and refresh_embeddings(db, self.embedder):
                        db.commit()
                    self._matcher = Matcher.build(list_entries(db, enabled=True), self.settings,
                                                  embedder=self.embedder)
                    self._stamp = stamp
            self._checked = now
            return self._matcher

    def match(self, text: str, intents: Sequence[Intent | dict[str, Any]] | None = None,
              asr_confidence: float | None = None) -> MatchResult:
        return self.current().match(text, intents=intents, asr_confidence=asr_confidence)

    def answer_text(self, faq_id: str) -> str | None:
        """The spoken answer of an entry, with the court's details filled in."""
        with self._sessions() as db:
            e = get_entry(db, faq_id)
            return fill_placeholders(e.answer, self.court) if e is not None and e.enabled else None

    def question_text(self, faq_id: str) -> str | None:
        with self._sessions() as db:
            e = get_entry(db, faq_id)
            return e.question if e is not None else None

    def title_text(self, faq_id: str) -> str | None:
        with self._sessions() as db:
            e = get_entry(db, faq_id)
            return e.title if e is not None else None
