"""Unanswered questions (``GET /api/kb/unanswered``): what callers asked that the knowledge base did not
settle, from the stored call events, clustered by :mod:`knowledge_base.unanswered`.

A question is *unanswered* when its ``kb_decided`` event has decision ``handoff``, or ``answer``/``confirm``
and the same call has a ``handoff_requested`` event after it (before the call's next ``kb_decided``): the
caller pressed 0, said no to "您是想问……吗", or did not confirm. Its text is the event's ``query``; events
from workers older than that field fall back to the last final ``speech_heard`` text of the call at the
same node before the decision. Questions without text are left out.

Questions that the *current* matcher answers (decision ``answer``) are left out too: the knowledge base
has learnt them since, so a cluster promoted to an entry disappears once the entry is saved. Match
results are cached per text for as long as the live matcher is unchanged (any KB edit rebuilds it), so
reloading the page does not re-match thousands of texts (about 0.25 ms each).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_console.models import CallEventRecord, utcnow
from knowledge_base.matcher import Matcher, MatchResult
from knowledge_base.store import get_entry
from knowledge_base.unanswered import Cluster, Utterance, cluster_utterances

_TYPES = ("kb_decided", "handoff_requested", "speech_heard")
_CACHE_MAX = 50_000


class UnansweredCluster(Cluster):
    suggested_category: str = Field(description="category for a new entry: the candidate entry's, else consult")
    candidate_question: str | None = Field(None, description="the question of the candidate entry")


class UnansweredOut(BaseModel):
    days: int
    min_count: int
    since: datetime
    utterances: int = Field(description="unanswered questions in the period that the knowledge base still "
                                        "does not answer")
    learnt: int = Field(description="unanswered questions in the period that the knowledge base answers now")
    total_clusters: int = Field(description="clusters with at least min_count questions (before limit)")
    clusters: list[UnansweredCluster]


def unanswered_utterances(db: Session, since: datetime, until: datetime | None = None,
                          max_calls: int | None = None) -> list[Utterance]:
    """Questions decided at or after ``since`` (and before ``until``) that were not settled, oldest call first;
    with ``max_calls``, only from the calls with the latest such decisions (a bound for long periods)."""
    calls = select(CallEventRecord.call_id).where(CallEventRecord.type == "kb_decided",
                                                  CallEventRecord.ts >= since)
    if until is not None:
        calls = calls.where(CallEventRecord.ts < until)
    if max_calls is not None:
        calls = calls.order_by(CallEventRecord.ts.desc()).limit(max_calls)
    rows = db.execute(
        select(CallEventRecord.call_id, CallEventRecord.event_id, CallEventRecord.type, CallEventRecord.ts,
               CallEventRecord.payload)
        .where(CallEventRecord.call_id.in_(calls), CallEventRecord.type.in_(_TYPES))
        .order_by(CallEventRecord.call_id, CallEventRecord.ts, CallEventRecord.received_at,
                  CallEventRecord.event_id))
    out: list[Utterance] = []
    for call_id, events in groupby(rows, key=lambda r: r.call_id):
        heard: dict[str, str] = {}  # node -> last final text heard there
        pending: Utterance | None = None  # answered or confirmed, not yet known to be settled
        for r in events:
            p: dict[str, Any] = r.payload or {}
            if r.type == "speech_heard":
                if p.get("kind") == "final" and str(p.get("text") or "").strip():
                    heard[str(p.get("node", ""))] = str(p["text"])
            elif r.type == "kb_decided":
                pending = None
                text = str(p.get("query") or heard.get(str(p.get("node", "")), "")).strip()
                if r.ts < since or (until is not None and r.ts >= until) or not text:
                    continue
                u = Utterance(text=text, at=r.ts, call_id=call_id, event_id=r.event_id)
                if p.get("decision") == "handoff":
                    out.append(u)
                else:
                    pending = u
            elif r.type == "handoff_requested" and pending is not None:
                out.append(pending)
                pending = None
    return out


class MatchCache:
    """Match results per text for one matcher; starts over when the live matcher was rebuilt."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._matcher: Matcher | None = None
        self._results: dict[str, MatchResult] = {}

    def for_matcher(self, matcher: Matcher) -> Callable[[str], MatchResult]:
        with self._lock:
            if matcher is not self._matcher:
                self._matcher, self._results = matcher, {}
            results = self._results

        def match(text: str) -> MatchResult:
            r = results.get(text)
            if r is None:
                r = matcher.match(text)
                if len(results) < _CACHE_MAX:
                    results[text] = r
            return r

        return match


def unanswered_report(db: Session, matcher: Matcher, *, days: int, min_count: int, limit: int,
                      cache: MatchCache | None = None, now: datetime | None = None) -> UnansweredOut:
    since = (now or utcnow()) - timedelta(days=days)
    match = (cache or MatchCache()).for_matcher(matcher)
    found = unanswered_utterances(db, since)
    still = [u for u in found if match(u.text).decision != "answer"]
    clusters = [c for c in cluster_utterances(still, match=match) if c.count >= min_count]
    entries: dict[str, tuple[str, str] | None] = {}
    out: list[UnansweredCluster] = []
    for c in clusters[:limit]:
        entry = None
        if c.candidate is not None:
            if c.candidate.faq_id not in entries:
                e = get_entry(db, c.candidate.faq_id)
                entries[c.candidate.faq_id] = (e.category, e.question) if e is not None else None
            entry = entries[c.candidate.faq_id]
        out.append(UnansweredCluster(**c.model_dump(), suggested_category=entry[0] if entry else "consult",
                                     candidate_question=entry[1] if entry else None))
    return UnansweredOut(days=days, min_count=min_count, since=since, utterances=len(still),
                         learnt=len(found) - len(still), total_clusters=len(clusters), clusters=out)
