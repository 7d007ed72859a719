"""A matcher that follows the database: rebuilt when the KB's change counter moves, so an admin's
edit answers the next caller within seconds, in every process that asks, without a restart.

With ``kb.semantic`` the rebuild first computes the vectors of entries that have none or have another
model's (after an upgrade of the model, or rows written without an embedder) and stores them, so they are
computed once, never per query.

:meth:`LiveMatcher.start_warming` (the hub calls it at start) keeps the matcher built and warm in a background
thread: the model load, the first build and each rebuild after an import or an edit, and the first query's
one-off costs (0.4–4 s, over a worker's 3 s timeout) happen there instead of in a caller's request."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from knowledge_base.matcher import Intent, Matcher, MatchResult, QueryEmbedder
from knowledge_base.settings import CourtInfo, MatcherSettings, fill_placeholders
from knowledge_base.store import get_entry, kb_stamp, list_entries, refresh_embeddings

CHECK_INTERVAL_S = 1.0  # how often the change counter is read (one tiny query)
WARM_TEXT = "诉讼费怎么交"  # any question: it runs the query embedding and the ranking once
MAX_WARM_MENUS = 8     # menus (intent lists) re-warmed after a rebuild: the ones callers met lately

log = logging.getLogger(__name__)


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
        self._menus: dict[tuple[Any, ...], Sequence[Intent | dict[str, Any]]] = {}
        self._warmer: threading.Thread | None = None
        self._stop = threading.Event()

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
        if intents:
            self.remember_menu(intents)
        return self.current().match(text, intents=intents, asr_confidence=asr_confidence)

    def remember_menu(self, intents: Sequence[Intent | dict[str, Any]]) -> None:
        """A menu (its options) to warm after each rebuild: the hub names its main menu at start, callers' menus
        are added as they come."""
        key = tuple(json.dumps(i.model_dump() if isinstance(i, Intent) else i, ensure_ascii=False, sort_keys=True)
                    for i in intents)
        if key not in self._menus:
            if len(self._menus) >= MAX_WARM_MENUS:
                self._menus.pop(next(iter(self._menus)))
            self._menus[key] = list(intents)

    def warm(self) -> Matcher:
        """Build (or rebuild) the matcher now and run one query through it and through the menus callers
        used lately, so the next caller pays none of the one-off costs."""
        m = self.current()
        m.match(WARM_TEXT)
        for intents in list(self._menus.values()):
            m.match(WARM_TEXT, intents=intents)
        return m

    def start_warming(self, interval_s: float = CHECK_INTERVAL_S) -> threading.Thread:
        """A daemon thread that warms at once and again whenever the KB changed (an import, an edit)."""
        if self._warmer is not None:
            return self._warmer

        def run() -> None:
            warmed: Matcher | None = None
            while not self._stop.is_set():
                try:
                    m = self.current()
                    if m is not warmed:
                        t0 = time.monotonic()
                        warmed = self.warm()
                        log.info("kb matcher warmed: %d entries in %.2f s", len(warmed),
                                 time.monotonic() - t0)
                except Exception:  # noqa: BLE001 - e.g. the database not ready yet: the next caller builds
                    log.exception("kb matcher: warming failed")
                self._stop.wait(interval_s)

        self._warmer = threading.Thread(target=run, name="kb-warm", daemon=True)
        self._warmer.start()
        return self._warmer

    def stop_warming(self) -> None:
        self._stop.set()
        if self._warmer is not None:
            self._warmer.join(timeout=10)

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
