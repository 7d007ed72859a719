"""``hotline kb ask``: what the FAQ matcher decides for a question (one JSON line per query).

For now the matcher is built from the shipped default knowledge base
(``knowledge_base/data/default_kb.json``); it will read the database-backed store once that is wired.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from knowledge_base.matcher import Matcher, MatchResult, default_kb_path, load_entries
from knowledge_base.settings import MatcherSettings


def result_json(r: MatchResult) -> str:
    return json.dumps({"query": r.query, "decision": r.decision, "faq_id": r.faq_id, "score": r.score,
                       "margin": r.margin, "reason": r.reason,
                       "candidates": [{"faq_id": c.faq_id, "score": c.score} for c in r.candidates]},
                      ensure_ascii=False)


def ask(queries: Annotated[list[str] | None, typer.Argument(
        metavar="QUERY", help="Questions as a caller would say them; one per line on stdin when omitted.")] = None,
        ) -> None:
    """Match questions against the FAQ knowledge base; print one JSON line per query
    (decision answer / confirm / handoff, faq_id, score, margin, reason, candidates)."""
    matcher = Matcher.build(load_entries(default_kb_path()), MatcherSettings())
    lines = queries if queries else (line.rstrip("\n") for line in sys.stdin)
    for q in lines:
        if queries is None and not q.strip():
            continue
        typer.echo(result_json(matcher.match(q)))
