"""The lexical/sound-code ranking of FAQ entries (it absorbs recognizer homophones: 速送费 = 诉讼费).

1. Sound codes (:mod:`knowledge_base.pinyin`): one code per character for its fuzzy toneless pinyin, so
   速送费 = 诉讼费, 上述期限 ≈ 上诉期限, 只行款 = 执行款.
2. Retrieval (:mod:`knowledge_base.index`): BM25 over character pairs and sound pairs of every question and
   variant; the ``top_k`` best entries go on. A query made only of pairs found all over the knowledge base
   (我想咨询一下法院的事) is ``vague``.
3. Re-scoring of the candidates, each against its question and variants: *coverage* (the share of the query's
   information, idf of its sound pairs, that the entry's text contains — words the KB has never seen lower it),
   *union coverage* (over all texts of the entry), *fuzzy* (rapidfuzz ``WRatio`` of the sound codes, for word
   order and near misses), *reverse coverage* (the share of the text's information the query covers) and a small
   boost per *keyword* heard: ``score = weight_coverage·coverage + weight_union·union + weight_fuzzy·fuzzy +
   weight_reverse·reverse + boost``.

An *unknown word* is a run of ``unknown_run`` consecutive sound pairs that no FAQ text contains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

from knowledge_base.index import Bm25Index, features, text_terms
from knowledge_base.match_types import Scored
from knowledge_base.pinyin import sound_code
from knowledge_base.settings import MatcherSettings


class LexicalRanker:
    """BM25 retrieval and re-scoring over the entries' questions and variants (immutable once built)."""

    __slots__ = ("settings", "norm", "ids", "_codes", "_keywords", "_start", "index")

    def __init__(self, entries: Sequence[Any], settings: MatcherSettings, normalize: Callable[[str], str]):
        """``entries``: objects with id, question, variants, keywords; an entry whose texts all normalise to
        nothing is left out (:attr:`ids` lists the kept ones, in order)."""
        fuzzy = settings.fuzzy_pinyin
        ids: list[str] = []
        codes: list[str] = []
        keywords: list[tuple[str, ...]] = []
        docs: list[tuple[np.ndarray, np.ndarray, int]] = []
        doc_entry: list[int] = []
        start: list[int] = []
        for e in entries:
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
        self.settings = settings
        self.norm = normalize
        self.ids = tuple(ids)
        self._codes = tuple(codes)
        self._keywords = tuple(keywords)
        self._start = tuple([*start, len(docs)])
        self.index = Bm25Index(docs, np.asarray(doc_entry, dtype=np.int32))

    def unknown_words(self, norm: str) -> list[str]:
        """Spans of ``norm`` made of at least ``unknown_run`` consecutive sound pairs no FAQ text contains."""
        run = self.settings.unknown_run
        _, pf = features(norm, self.settings.fuzzy_pinyin)
        idx = self.index
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
        idx = self.index
        norm = self.norm(text)
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
        picked = self._retrieve(bm)
        if not picked:
            return norm, [], "out_of_scope"
        return norm, self._rescore(norm, qpairs, picked), None

    def _retrieve(self, bm: np.ndarray) -> list[int]:
        """The ``top_k`` entries of the best BM25 texts (a query touches few of 50,000 texts: rank only those)."""
        idx = self.index
        hit = np.flatnonzero(bm)
        n = hit.size
        k = min(n, self.settings.top_k * 3)
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
                if len(picked) >= self.settings.top_k:
                    break
        return picked

    def _rescore(self, norm: str, qpairs: tuple[str, ...], picked: list[int]) -> list[Scored]:
        s = self.settings
        idx = self.index
        qcode = sound_code(norm, s.fuzzy_pinyin)
        qmass = sum(idx.idf_of(p) for p in qpairs) or 1.0
        common_doc, common_entry = idx.common_mass(qpairs)
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
            scored.append(Scored(self.ids[ei], round(score, 4), float(cov[j]), union, float(fz[j]),
                                 float(rev[j]), hits))
        scored.sort(key=lambda c: -c.score)
        return scored
