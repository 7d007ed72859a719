"""The short spoken title of an FAQ entry (what a clarifying question lists: "一，诉讼费怎么交；二，……").

Admins may write one (at most :data:`TITLE_MAX` characters); when they leave it out it is made from the
question, deterministically: punctuation and polite openings (请问、我想问一下) dropped, then the first
clause if the question is longer than the limit, cut to the limit.
"""

from __future__ import annotations

import re

TITLE_MAX = 16
_OPENINGS = re.compile(r"^(?:请问一下|请问|我想问一下|我想问问|我想问|想问一下|想问|你好|您好)[，,、\s]*")
_CLAUSES = re.compile(r"[，,。；;！!？?、：:\s]+")
_DROP = re.compile(r"[“”\"'‘’《》（）()【】\[\]…]+")


def make_title(question: str) -> str:
    """A title of at most :data:`TITLE_MAX` characters made from ``question`` (never empty for a non-empty one)."""
    q = _DROP.sub("", question.strip())
    q = _OPENINGS.sub("", q) or q
    clauses = [c for c in _CLAUSES.split(q) if c]
    if not clauses:
        return question.strip()[:TITLE_MAX]
    joined = "".join(clauses)
    if len(joined) <= TITLE_MAX:
        return joined
    out = ""
    for c in clauses:  # whole clauses while they fit, else the first clause cut
        if len(out) + len(c) > TITLE_MAX:
            break
        out += c
    return out if len(out) >= 4 else joined[:TITLE_MAX]
