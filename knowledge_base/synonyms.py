"""Fold colloquial wordings into the knowledge base's own words (``data/synonyms.txt``).

Callers say 告他, 啥, 冻住, 黑名单; the FAQ texts say 起诉, 什么, 冻结, 失信名单. Character and sound
pairs cannot see that these mean the same, so both the FAQ texts and each query are folded to one
wording before the matcher computes its features. Replacement is one left-to-right pass of one
regular expression whose alternatives are ordered longest first, and every canonical form is an
alternative of its own group, so 在哪里 is never rewritten to 在哪里里 and only whole phrases change.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "synonyms.txt"


class SynonymError(ValueError):
    """The synonym file is malformed (the message names the line)."""


def parse(text: str, source: str = "synonyms.txt") -> dict[str, str]:
    """Alternative → canonical form; canonical forms map to themselves."""
    table: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        canon, sep, rest = line.partition(":")
        canon = canon.strip()
        alts = [a.strip() for a in rest.split(",") if a.strip()]
        if not sep or not canon or not alts:
            raise SynonymError(f"{source}:{n}: expected '<canonical>: <alternative>, ...'")
        for word in (canon, *alts):
            if table.get(word, canon) != canon:
                raise SynonymError(f"{source}:{n}: '{word}' already folds to '{table[word]}'")
            table[word] = canon
    return table


class Folder:
    """Rewrites a normalised text with one table; cached per text."""

    def __init__(self, table: dict[str, str]):
        self.table = dict(table)
        words = sorted(self.table, key=len, reverse=True)
        self._re = re.compile("|".join(map(re.escape, words))) if words else None
        self.fold = lru_cache(maxsize=200_000)(self._fold)

    def _fold(self, text: str) -> str:
        if self._re is None:
            return text
        return self._re.sub(lambda m: self.table[m.group(0)], text)


@lru_cache(maxsize=4)
def folder(path: Path = DEFAULT_PATH) -> Folder:
    return Folder(parse(path.read_text(encoding="utf-8"), path.name))
