"""``hotline kb ask``: what the FAQ matcher decides for a question (one JSON line per query).

The matcher reads the knowledge base in the database (the shipped default is loaded into an empty one),
with the thresholds of the ``[kb]`` settings.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from hotline.cli_db import ConfigOption, load
from knowledge_base.matcher import MatchResult


def result_json(r: MatchResult) -> str:
    return json.dumps({"query": r.query, "decision": r.decision, "faq_id": r.faq_id, "score": r.score,
                       "margin": r.margin, "reason": r.reason,
                       "candidates": [{"faq_id": c.faq_id, "score": c.score} for c in r.candidates],
                       "offered": r.offered, "option": r.option, "probability": r.probability},
                      ensure_ascii=False)


def ask(queries: Annotated[list[str] | None, typer.Argument(
        metavar="QUERY", help="Questions as a caller would say them; one per line on stdin when omitted.")] = None,
        menu: Annotated[str | None, typer.Option(
            help="Rank this menu node's spoken options (from ivr.menu_file) with the entries, e.g. main")] = None,
        config: ConfigOption = None) -> None:
    """Match questions against the FAQ knowledge base; print one JSON line per query
    (decision answer / confirm / clarify / handoff, faq_id, score, margin, reason, candidates, offered,
    option, probability)."""
    from hotline.db import make_engine, session_factory, upgrade_engine
    from hotline.hub_main import load_default_kb
    from hotline.logs import configure_logging
    from knowledge_base.live import LiveMatcher

    configure_logging("warning")  # stdout is the JSON lines
    settings = load(config)
    engine = make_engine(settings.db_url)
    upgrade_engine(engine)
    load_default_kb(engine)
    from knowledge_base.menu_intents import MenuIntentError, load_menu_intents

    try:
        intents = load_menu_intents(settings.ivr.menu_file, menu) if menu else None
    except MenuIntentError as e:
        raise typer.BadParameter(str(e), param_hint="--menu") from None
    if menu and not intents:
        raise typer.BadParameter(f"menu node {menu!r} in {settings.ivr.menu_file} has no options with phrases",
                                 param_hint="--menu")
    matcher = LiveMatcher(session_factory(engine), settings.kb, settings.court)
    lines = queries if queries else (line.rstrip("\n") for line in sys.stdin)
    for q in lines:
        if queries is None and not q.strip():
            continue
        typer.echo(result_json(matcher.match(q, intents=intents)))
