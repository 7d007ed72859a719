"""The FAQ matcher: ranks entries for what a caller said and decides to answer, confirm or hand off.

A wrong answer from a court is worse than a handoff, so the matcher says when it does not know.

Pipeline for one query (recognizer output: colloquial, fillers, homophone errors, fragments):

1. :func:`zh_text.normalize_for_matching` (simplified, half width, fillers removed, numerals→digits);
   then colloquial wordings folded into the knowledge base's own (:mod:`knowledge_base.synonyms`:
   告他 → 起诉, 冻住 → 冻结, 黑名单 → 失信名单), the same for FAQ texts and queries;
   empty or shorter than ``min_query_chars`` → ``handoff`` (``empty`` / ``too_short``).
2. Sound codes (:mod:`knowledge_base.pinyin`): one code per character for its fuzzy toneless
   pinyin, so 速送费 = 诉讼费, 上述期限 ≈ 上诉期限, 只行款 = 执行款.
3. Retrieval (:mod:`knowledge_base.index`): BM25 over character pairs and sound pairs of every
   question and variant; the ``top_k`` best entries go on. A query made only of pairs found all over
   the knowledge base (我想咨询一下法院的事) is ``vague`` → ``handoff``.
4. Re-scoring of the candidates, each against its question and variants:

   * *coverage*: the share of the query's information (idf of its sound pairs) that the entry's
     texts contain — words the knowledge base has never seen (派出所, 社保卡) lower it, which is how
     out-of-scope questions that share 几点上班 or 电话 with an entry are told apart;
   * *union coverage*: the same over all texts of the entry together;
   * *fuzzy*: rapidfuzz ``WRatio`` of the sound codes (best text), for word order and near misses;
   * *reverse coverage*: the share of the best text's information the query covers;
   * *keywords*: a small boost per keyword of the entry heard (by sound) in the query.

   ``score = weight_coverage·coverage + weight_union·union + weight_fuzzy·fuzzy
   + weight_reverse·reverse + boost`` (at most 1 + the keyword cap with the default weights).
5. Decision: ``answer`` when score ≥ ``answer_threshold`` and the lead over the runner-up entry
   ≥ ``answer_margin`` and the query holds no unknown word; ``confirm`` when score ≥
   ``confirm_threshold``; else ``handoff`` as ``out_of_scope``. The reason names the figures.
   An *unknown word* is a run of ``unknown_run`` consecutive sound pairs that no FAQ text contains
   (检察院的电话 shares 的电话是多少 with 法院的联系电话是多少, but 检察/察院 are nowhere in the
   knowledge base): the entry may still be what the caller means, so it is confirmed, never answered.

A :class:`Matcher` is immutable; build a new one from the changed entries on every edit
(``bench/kb_speed.py`` measures the build). Entries with ``enabled`` false are left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import fuzz, process

from knowledge_base.entry import FaqEntry
from knowledge_base.index import Bm25Index, features, text_terms
from knowledge_base.pinyin import sound_code
from knowledge_base.settings import MatcherSettings
from knowledge_base.synonyms import folder
from zh_text import normalize_for_matching

Decision = Literal["answer", "confirm", "handoff"]


class Candidate(BaseModel):
    model_config = ConfigDict(frozen=True)

    faq_id: str
    score: float


class MatchResult(BaseModel):
    """What the matcher decided for one query, and why."""

    model_config = ConfigDict(frozen=True)

    query: str
    decision: Decision
    faq_id: str | None = Field(description="the entry to answer or confirm; None on handoff")
    score: float = Field(description="score of the best entry (0 when none)")
    margin: float = Field(description="lead of the best entry over the runner-up entry")
    reason: str = Field(description="code and figures: confident, low_score, low_margin, out_of_scope, "
                                    "vague, too_short, empty")
    candidates: list[Candidate] = Field(default_factory=list, description="best entries first")


@dataclass(frozen=True, slots=True)
class Scored:
    """The figures behind one candidate's score (for benchmarks and debugging)."""

    faq_id: str
    score: float
    coverage: float
    union: float
    fuzzy: float
    reverse: float
    keywords: int


def _normalizer(settings: MatcherSettings) -> Any:
    if not settings.fold_synonyms:
        return normalize_for_matching
    fold = folder().fold
    return lambda text: fold(normalize_for_matching(text))


def _enabled(entry: Any) -> bool:
    return bool(getattr(entry, "enabled", True))


class Matcher:
    """Ranks FAQ entries for a query; build with :meth:`build`, never mutated afterwards."""

    __slots__ = ("settings", "_norm", "_ids", "_codes", "_keywords", "_start", "_index")

    def __init__(self, *args: Any, **kwargs: Any):
        raise TypeError("use Matcher.build(entries, settings)")

    @classmethod
    def build(cls, entries: Iterable[FaqEntry | Any], settings: MatcherSettings | None = None) -> Matcher:
        """A matcher over the enabled ``entries`` (FaqEntry or any object with the same fields and an
        optional ``enabled`` flag)."""
        settings = settings or MatcherSettings()
        fuzzy = settings.fuzzy_pinyin
        normalize = _normalizer(settings)
        ids: list[str] = []
        codes: list[str] = []
        keywords: list[tuple[str, ...]] = []
        docs: list[tuple[np.ndarray, np.ndarray, int]] = []
        doc_entry: list[int] = []
        start: list[int] = []
        seen: set[str] = set()
        for e in entries:
            if not _enabled(e):
                continue
            if e.id in seen:
                raise ValueError(f"duplicate FAQ id {e.id}")
            seen.add(e.id)
            first = len(docs)
            for t in dict.fromkeys([e.question, *e.variants]):
                norm = normalize(t)
                if not norm:
                    continue
                docs.append(text_terms(norm, fuzzy))
                codes.append(sound_code(norm, fuzzy))
                doc_entry.append(len(ids))
            if len(docs) == first:
                continue
            start.append(first)
            ids.append(e.id)
            keywords.append(tuple(dict.fromkeys(c for k in e.keywords
                                                if len(c := sound_code(normalize(k), fuzzy)) >= 2)))
        self = object.__new__(cls)
        object.__setattr__(self, "settings", settings)
        object.__setattr__(self, "_norm", normalize)
        object.__setattr__(self, "_ids", tuple(ids))
        object.__setattr__(self, "_codes", tuple(codes))
        object.__setattr__(self, "_keywords", tuple(keywords))
        object.__setattr__(self, "_start", tuple([*start, len(docs)]))
        object.__setattr__(self, "_index", Bm25Index(docs, np.asarray(doc_entry, dtype=np.int32)))
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Matcher is immutable; build a new one")

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def faq_ids(self) -> tuple[str, ...]:
        return self._ids

    # ------------------------------------------------------------------ ranking
    def unknown_words(self, norm: str) -> list[str]:
        """Spans of ``norm`` made of at least ``unknown_run`` consecutive sound pairs no FAQ text contains."""
        run = self.settings.unknown_run
        _, pf = features(norm, self.settings.fuzzy_pinyin)
        idx = self._index
        out: list[str] = []
        start = None
        for i, p in enumerate((*pf, None)):
            if p is not None and idx.doc_freq_share(p) == 0.0:
                start = i if start is None else start
                continue
            if start is not None and i - start >= run:
                out.append(norm[start:i + 1])
            start = None
        return out

    def rank(self, text: str) -> tuple[str, list[Scored], str | None]:
        """(normalised query, scored candidates best first, early handoff reason or None)."""
        s = self.settings
        idx = self._index
        norm = self._norm(text)
        if not norm:
            return norm, [], "empty"
        if len(norm) < s.min_query_chars:
            return norm, [], "too_short"
        cf, pf = features(norm, s.fuzzy_pinyin)
        bm = idx.scores(cf + pf)
        if bm is None:
            return norm, [], "out_of_scope"
        qpairs = tuple(dict.fromkeys(pf))
        if not any(idx.doc_freq_share(p) < s.vague_doc_share for p in qpairs):
            return norm, [], "vague"
        hit = np.flatnonzero(bm)  # a query touches few of 50,000 texts: rank only those
        n = hit.size
        k = min(n, s.top_k * 3)
        top = hit[np.argpartition(bm[hit], n - k)[n - k:]] if k < n else hit
        top = top[np.argsort(-bm[top], kind="stable")]
        picked: list[int] = []
        seen: set[int] = set()
        for v, ei in zip(bm[top].tolist(), idx.doc_group[top].tolist(), strict=True):
            if v <= 0:
                break
            if ei not in seen:
                seen.add(ei)
                picked.append(ei)
                if len(picked) >= s.top_k:
                    break
        qcode = sound_code(norm, s.fuzzy_pinyin)
        qmass = sum(idx.idf_of(p) for p in qpairs) or 1.0
        common_doc, common_entry = idx.common_mass(qpairs)
        if not picked:
            return norm, [], "out_of_scope"
        starts = np.fromiter((self._start[ei] for ei in picked), dtype=np.int64, count=len(picked))
        ends = np.fromiter((self._start[ei + 1] for ei in picked), dtype=np.int64, count=len(picked))
        lens = ends - starts
        offs = np.zeros(len(picked), dtype=np.int64)
        np.cumsum(lens[:-1], out=offs[1:])
        docs = np.repeat(starts - offs, lens) + np.arange(int(lens.sum()))
        common = common_doc[docs]
        cov = common / qmass
        mass = idx.doc_mass[docs]
        rev = np.divide(common, mass, out=np.zeros_like(common), where=mass > 0)
        codes = self._codes
        fz = process.cdist([qcode], [codes[d] for d in docs.tolist()], scorer=fuzz.WRatio, processor=None,
                           dtype=np.float32)[0] / 100.0
        total = s.weight_coverage * cov + s.weight_fuzzy * fz + s.weight_reverse * rev
        best = np.maximum.reduceat(total, offs)
        scored = []
        for n_, ei in enumerate(picked):
            a, b = int(offs[n_]), int(offs[n_] + lens[n_])
            j = a + int(np.argmax(total[a:b]))
            union = float(common_entry[ei]) / qmass
            hits = sum(1 for kw in self._keywords[ei] if kw in qcode)
            boost = min(s.keyword_boost * hits, s.keyword_boost_cap)
            score = float(best[n_]) + s.weight_union * union + boost
            scored.append(Scored(self._ids[ei], round(score, 4), float(cov[j]), union, float(fz[j]),
                                 float(rev[j]), hits))
        scored.sort(key=lambda c: -c.score)
        return norm, scored, None

    # ------------------------------------------------------------------ deciding
    def match(self, text: str) -> MatchResult:
        s = self.settings
        norm, scored, early = self.rank(text)
        cands = [Candidate(faq_id=c.faq_id, score=c.score) for c in scored[: s.candidates_shown]]
        if early is not None:
            detail = {"empty": "nothing left after removing fillers",
                      "too_short": f"fewer than {s.min_query_chars} characters after removing fillers",
                      "vague": "no specific words",
                      "out_of_scope": "no words in common with any entry"}[early]
            return MatchResult(query=text, decision="handoff", faq_id=None, score=0.0, margin=0.0,
                               reason=f"{early}: {detail}", candidates=cands)
        if not scored:
            return MatchResult(query=text, decision="handoff", faq_id=None, score=0.0, margin=0.0,
                               reason="out_of_scope: no candidate", candidates=[])
        top = scored[0]
        runner = scored[1].score if len(scored) > 1 else 0.0
        margin = round(top.score - runner, 4)
        if top.score < s.confirm_threshold:
            return MatchResult(query=text, decision="handoff", faq_id=None, score=top.score, margin=margin,
                               reason=f"out_of_scope: best score {top.score:.2f} < {s.confirm_threshold:.2f}",
                               candidates=cands)
        unknown = self.unknown_words(norm) if top.score >= s.answer_threshold else []
        if top.score >= s.answer_threshold and margin >= s.answer_margin and not unknown:
            return MatchResult(query=text, decision="answer", faq_id=top.faq_id, score=top.score, margin=margin,
                               reason=f"confident: score {top.score:.2f} >= {s.answer_threshold:.2f}, "
                                      f"margin {margin:.2f} >= {s.answer_margin:.2f}",
                               candidates=cands)
        if top.score < s.answer_threshold:
            reason = f"low_score: score {top.score:.2f} < {s.answer_threshold:.2f}"
        elif unknown:
            reason = f"unknown_words: {'、'.join(unknown)[:40]} not in the knowledge base"
        else:
            reason = (f"low_margin: margin {margin:.2f} < {s.answer_margin:.2f} over {scored[1].faq_id}")
        return MatchResult(query=text, decision="confirm", faq_id=top.faq_id, score=top.score, margin=margin,
                           reason=reason, candidates=cands)


def load_entries(path: Any) -> list[FaqEntry]:
    """FAQ entries from a JSON file in the import/export form (a list of objects)."""
    import json
    from pathlib import Path

    return [FaqEntry.model_validate(o) for o in json.loads(Path(path).read_text(encoding="utf-8"))]


def default_kb_path() -> Any:
    from pathlib import Path

    return Path(__file__).resolve().parent / "data" / "default_kb.json"
