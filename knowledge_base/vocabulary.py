"""The knowledge base's own words, for the recognizer's domain prompt."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def top_terms(entries: Iterable[Any], n: int = 10) -> list[str]:
    """The ``n`` keywords (2-4 characters) that occur in the most questions and variants, no duplicates
    inside one another: the words callers actually use for what the court answers."""
    entries = [e for e in entries if getattr(e, "enabled", True)]
    texts = [t for e in entries for t in (e.question, *e.variants)]
    candidates = {k for e in entries for k in e.keywords if 2 <= len(k) <= 4}
    ranked = sorted(candidates, key=lambda k: (-sum(k in t for t in texts), k))
    chosen: list[str] = []
    for k in ranked:
        if not any(k in c or c in k for c in chosen):
            chosen.append(k)
        if len(chosen) == n:
            break
    return chosen
