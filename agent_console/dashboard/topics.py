"""Hot topics (热点): the most frequent unanswered questions of the period and their keywords.

The questions are the knowledge base's unanswered ones (:func:`agent_console.kb.unanswered.unanswered_utterances`:
handed off, or answered and then handed off), less those the live matcher answers now, grouped by the same
leader clustering as the 未解答问题 tab (:func:`knowledge_base.unanswered.cluster_utterances`). For a long,
busy period only the questions of the latest ``MAX_CALLS`` calls with a knowledge-base decision are taken
(``sampled`` says so), which keeps the page fast; the shares are of what was taken.

Keywords are the word-like pieces callers used most: 2–4 character runs of Chinese (after the matcher's
normalisation: simplified, fillers gone) counted once per question, never across a question word (怎么, 什么时候)
or a function character (的, 是, 吗),
a piece left out when a longer piece containing it occurs almost as often (诉讼费 rather than 诉讼 and 讼费),
no two chosen keywords inside one another.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.orm import Session

from agent_console.dashboard.filters import Filters
from agent_console.kb.unanswered import MatchCache, unanswered_utterances
from agent_console.pii import mask_text, sees_clear
from knowledge_base.matcher import Matcher, MatchResult
from knowledge_base.unanswered import cluster_utterances
from zh_text import normalize_for_matching

MAX_CALLS = 1000
TOP_CLUSTERS = 10
TOP_KEYWORDS = 15
_CJK = re.compile(r"[\u4e00-\u9fff]+")
STOP_WORDS = frozenset({
    "怎么", "怎样", "什么", "时候", "可以", "请问", "你好", "一下", "我想", "想问",
    "我的", "你们", "是不是", "多少", "哪里", "哪儿", "怎么办", "需要", "能不能", "一个",
    "这个", "那个", "问一下", "知道", "如果", "现在", "已经", "还是", "就是", "没有", "什么时候",
    "不是", "为什么", "要带", "要去", "操作", "办理", "在哪", "去哪", "啥时候", "多久", "有没有", "应该",
    "如何", "要不要", "帮我", "麻烦", "谢谢", "可不可以", "是否", "的话", "怎么样",
})
#: function words split a question into pieces (a keyword never spans one)
SPLIT_CHARS = "的了吗呢啊吧呀我你他她它是把被和与或也都就还又很再才这那哪啥谁"
_SPLIT = re.compile("|".join(sorted(STOP_WORDS, key=len, reverse=True)) + f"|[{SPLIT_CHARS}]")


def keywords(texts: Iterable[tuple[str, int]], n: int = TOP_KEYWORDS) -> list[dict[str, Any]]:
    """The ``n`` most used keywords of (text, count) pairs, with the number of questions holding each."""
    df: Counter[str] = Counter()
    for text, count in texts:
        grams: set[str] = set()
        for run in _CJK.findall(_SPLIT.sub(" ", normalize_for_matching(text))):
            for k in (2, 3, 4):
                grams.update(run[i:i + k] for i in range(len(run) - k + 1))
        for g in grams:
            df[g] += count
    frequent = {g: c for g, c in df.items() if c >= 2}
    # a piece inside a longer frequent piece that occurs nearly as often says less than the longer one
    maximal = [g for g, c in frequent.items()
               if not any(len(h) > len(g) and g in h and ch >= 0.8 * c for h, ch in frequent.items())]
    chosen: list[str] = []
    for g in sorted(maximal, key=lambda g: (-frequent[g], -len(g), g)):
        if not any(g in c or c in g for c in chosen):
            chosen.append(g)
        if len(chosen) == n:
            break
    return [{"word": g, "count": frequent[g]} for g in chosen]


def hot_topics(db: Session, f: Filters, matcher: Matcher | None, *, role: str, cache: MatchCache | None = None,
               max_calls: int = MAX_CALLS) -> dict[str, Any]:
    found = unanswered_utterances(db, f.start_utc, f.end_utc, max_calls=max_calls)
    match: Callable[[str], MatchResult] | None = None
    if matcher is not None:
        match = (cache or MatchCache()).for_matcher(matcher)
        found = [u for u in found if match(u.text).decision != "answer"]
    clusters = cluster_utterances(found)
    total = sum(c.count for c in clusters)
    clear = sees_clear(role)
    show: Callable[[str], str] = (lambda t: t) if clear else mask_text
    counts = Counter(u.text for u in found)
    return {
        "questions": total, "sampled": len({u.call_id for u in found}) >= max_calls,
        "clusters": [{"text": show(c.representative), "count": c.count,
                      "share": round(c.count / total, 4) if total else None,
                      "wordings": len(c.members)} for c in clusters[:TOP_CLUSTERS]],
        "keywords": [{**k, "word": show(k["word"])} for k in keywords(counts.items())],
    }
