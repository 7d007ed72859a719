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

import hashlib
import json
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import fuzz, process

from knowledge_base import calibration
from knowledge_base.calibration import Calibration
from knowledge_base.embedding import DIM, entry_texts
from knowledge_base.entry import FaqEntry
from knowledge_base.index import Bm25Index, features, text_terms
from knowledge_base.pinyin import sound_code
from knowledge_base.settings import MatcherSettings
from knowledge_base.synonyms import folder
from knowledge_base.title import make_title
from zh_text import normalize_for_matching

Decision = Literal["answer", "confirm", "clarify", "handoff"]
#: menu options ranked with the entries carry this id prefix (FAQ ids cannot contain ":")
OPTION_PREFIX = "option:"


class Candidate(BaseModel):
    model_config = ConfigDict(frozen=True)

    faq_id: str
    score: float


class MatchResult(BaseModel):
    """What the matcher decided for one query, and why."""

    model_config = ConfigDict(frozen=True)

    query: str
    decision: Decision
    faq_id: str | None = Field(description="the entry to answer or confirm; None on handoff, clarify or when a "
                                           "menu option wins")
    score: float = Field(description="score of the best entry (0 when none)")
    margin: float = Field(description="lead of the best entry over the runner-up entry")
    reason: str = Field(description="code and figures: confident, low_score, low_margin, out_of_scope, "
                                    "vague, too_short, empty")
    candidates: list[Candidate] = Field(default_factory=list, description="best entries first")
    offered: list[str] = Field(default_factory=list, description=(
        "what the caller is offered, in spoken order: one id for confirm, 2-3 for clarify, [] for answer and "
        "handoff; menu options as option:<key>"))
    option: str | None = Field(None, description="the menu option's key when an option is answered")
    probability: float | None = Field(None, description="calibrated probability that the best entry is right "
                                                        "(None in lexical-only mode)")


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


class QueryEmbedder(Protocol):
    """What the matcher needs of the embedding model (:class:`knowledge_base.embedding.Embedder`)."""

    name: str

    def query(self, text: str) -> np.ndarray: ...

    def passages(self, texts: list[str]) -> np.ndarray: ...


class Intent(BaseModel):
    """A menu option ranked with the entries: its key, its spoken title and example phrases."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(min_length=1, max_length=8)
    title: str = Field(min_length=1, max_length=32)
    phrases: list[str] = Field(default_factory=list, max_length=100)


@dataclass(frozen=True, slots=True)
class _OptionEntry:
    """A menu option as the matcher indexes it (id option:<key>)."""

    id: str
    question: str
    variants: list[str]
    title: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Analysis:
    """One query's ranking and the calibrated features of its best entry (for the decision and the fit)."""

    norm: str
    early: str | None           # handoff before ranking: empty, too_short
    order: list[int]            # entry positions, best ranking score first (at most 10)
    rank_score: list[float]     # their ranking scores (cosine + lex_weight × lexical)
    x: np.ndarray | None        # the features (calibration.FEATURES) of the best entry
    lex: dict[int, float]       # lexical scores of the entries BM25 retrieved


def _normalizer(settings: MatcherSettings) -> Any:
    # the synonym table was written against the old evaluation set; with the semantic ranker it adds nothing
    # measurable (top-1 on the tuning data 0.955 without, 0.958 with), so only the lexical-only mode folds
    if not settings.fold_synonyms or settings.semantic:
        return normalize_for_matching
    fold = folder().fold
    return lambda text: fold(normalize_for_matching(text))


def _enabled(entry: Any) -> bool:
    return bool(getattr(entry, "enabled", True))


class Matcher:
    """Ranks FAQ entries for a query; build with :meth:`build`, never mutated afterwards."""

    __slots__ = ("settings", "_norm", "_ids", "_codes", "_keywords", "_start", "_index", "_entries", "_pos",
                 "_sem", "_sem_start", "_embedder", "_cal", "_intent_cache", "_intent_lock", "_n_options")

    def __init__(self, *args: Any, **kwargs: Any):
        raise TypeError("use Matcher.build(entries, settings)")

    @classmethod
    def build(cls, entries: Iterable[FaqEntry | Any], settings: MatcherSettings | None = None, *,
              embedder: QueryEmbedder | None = None, cal: Calibration | None = None) -> Matcher:
        """A matcher over the enabled ``entries`` (FaqEntry, a stored KbEntry, or any object with the same
        fields and an optional ``enabled`` flag).

        With ``settings.semantic`` the ``embedder`` (default: the process-wide model) gives the entries'
        vectors: an entry's stored ``embedding`` is used when its ``embedding_model`` is the embedder's,
        else its texts are embedded now (once per text per process). ``cal``: the decision model (default:
        ``settings.calibration_file`` or the shipped one).
        """
        settings = settings or MatcherSettings()
        entries = [e for e in entries if _enabled(e)]
        fuzzy = settings.fuzzy_pinyin
        normalize = _normalizer(settings)
        ids: list[str] = []
        codes: list[str] = []
        keywords: list[tuple[str, ...]] = []
        docs: list[tuple[np.ndarray, np.ndarray, int]] = []
        doc_entry: list[int] = []
        start: list[int] = []
        seen: set[str] = set()
        kept: list[Any] = []
        for e in entries:
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
            kept.append(e)
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
        object.__setattr__(self, "_entries", tuple(kept))
        object.__setattr__(self, "_pos", {i: n for n, i in enumerate(ids)})
        n_options = sum(1 for i in ids if i.startswith(OPTION_PREFIX))
        if n_options and not all(i.startswith(OPTION_PREFIX) for i in ids[len(ids) - n_options:]):
            raise ValueError("menu options must come after the entries")
        object.__setattr__(self, "_n_options", n_options)
        object.__setattr__(self, "_intent_cache", {})
        object.__setattr__(self, "_intent_lock", threading.Lock())
        sem = sem_start = None
        if settings.semantic:
            if embedder is None:
                # the default model is imported here, not at module level: kb.semantic = false must work
                # without loading it (or even having it installed)
                from knowledge_base.embedding import get_embedder

                embedder = get_embedder()
            if cal is None:
                cal = calibration.load(Path(settings.calibration_file)) if settings.calibration_file \
                    else calibration.load()
            sem, sem_start = _entry_vectors(kept, embedder)
        object.__setattr__(self, "_sem", sem)
        object.__setattr__(self, "_sem_start", sem_start)
        object.__setattr__(self, "_embedder", embedder if settings.semantic else None)
        object.__setattr__(self, "_cal", cal if settings.semantic else None)
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
    def match(self, text: str, intents: Sequence[Intent | dict[str, Any]] | None = None,
              asr_confidence: float | None = None) -> MatchResult:
        """Decide for one query. ``intents``: the menu options the caller may also mean (ranked with the
        entries; a winning option is answered with ``option`` = its key). ``asr_confidence``: the
        recognizer's confidence when the text came from speech."""
        if intents:
            return self.with_intents(intents).match(text, asr_confidence=asr_confidence)
        if self._cal is None:
            return self._match_lexical(text)
        return self._decide(text, self.analyse(text, asr_confidence))

    # ------------------------------------------------------------------ menu options
    def with_intents(self, intents: Sequence[Intent | dict[str, Any]]) -> Matcher:
        """This matcher plus the menu options as entries ``option:<key>`` (cached by the options' content)."""
        opts = [i if isinstance(i, Intent) else Intent.model_validate(i) for i in intents]
        key = hashlib.sha256(json.dumps([o.model_dump() for o in opts], ensure_ascii=False,
                                        sort_keys=True).encode()).hexdigest()
        with self._intent_lock:
            hit = self._intent_cache.get(key)
            if hit is None:
                extra = [_OptionEntry(OPTION_PREFIX + o.key, o.title, [p for p in o.phrases if p != o.title],
                                      o.title) for o in opts]
                hit = Matcher.build([*self._entries, *extra], self.settings, embedder=self._embedder, cal=self._cal)
                if len(self._intent_cache) >= 16:  # a handful of menus; drop the oldest
                    self._intent_cache.pop(next(iter(self._intent_cache)))
                self._intent_cache[key] = hit
            return hit

    # ------------------------------------------------------------------ semantic + calibrated
    def analyse(self, text: str, asr_confidence: float | None = None) -> Analysis:
        """Rank the entries by cosine + lex_weight × lexical score and compute the best one's features."""
        s, cal = self.settings, self._cal
        assert cal is not None and self._sem is not None and self._embedder is not None
        norm = self._norm(text)
        if not norm:
            return Analysis(norm, "empty", [], [], None, {})
        if len(norm) < s.min_query_chars:
            return Analysis(norm, "too_short", [], [], None, {})
        if not self._ids:
            return Analysis(norm, "no_entries", [], [], None, {})
        _, scored, _ = self.rank(text)
        lex = {self._pos[c.faq_id]: c.score for c in scored}
        q = self._embedder.query(text.strip())
        sims = self._sem @ q
        sem = np.maximum.reduceat(sims, self._sem_start) if sims.size else np.zeros(len(self._ids), np.float32)
        lexv = np.zeros(len(self._ids), np.float32)
        for i, v in lex.items():
            lexv[i] = v
        comb = sem + cal.lex_weight * lexv
        if self._n_options:
            comb[-self._n_options:] += cal.option_bonus  # options come last (with_intents)
        n = len(self._ids)
        k = min(n, 10)
        top = np.argpartition(-comb, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.argsort(-comb[top], kind="stable")]
        b = int(top[0])
        others_sem = np.delete(sem, b)
        sem_sorted = np.sort(sem)[::-1]
        lex_best_other = max((v for i, v in lex.items() if i != b), default=0.0)
        lex_first = max(lex, key=lambda i: lex[i]) if lex else -1
        unknown = sum(len(w) - 1 for w in self.unknown_words(norm)) / max(len(norm), 1)
        x = np.array([
            sem[b],
            sem[b] - (others_sem.max() if others_sem.size else 0.0),
            sem[b] - (sem_sorted[2] if n > 2 else 0.0),
            lexv[b],
            lexv[b] - lex_best_other,
            1.0 if lex_first == int(np.argmax(sem)) else 0.0,
            min(unknown, 1.0),
            math.log1p(len(norm)),
            1.0 if asr_confidence is None else float(asr_confidence),
            0.0 if asr_confidence is None else 1.0,
            1.0 if self._ids[b].startswith(OPTION_PREFIX) else 0.0,
        ], dtype=np.float64)
        return Analysis(norm, None, [int(i) for i in top], [float(comb[i]) for i in top], x, lex)

    def _result(self, text: str, decision: Decision, a: Analysis, reason: str, p: float | None,
                offered: list[str] | None = None) -> MatchResult:
        cands = [Candidate(faq_id=self._ids[i], score=round(v, 4))
                 for i, v in zip(a.order, a.rank_score, strict=True)][: self.settings.candidates_shown]
        best = self._ids[a.order[0]] if a.order else None
        option = faq_id = None
        if decision in ("answer", "confirm") and best is not None:
            if best.startswith(OPTION_PREFIX):
                option = best[len(OPTION_PREFIX):] if decision == "answer" else None
            else:
                faq_id = best
        score = round(a.rank_score[0], 4) if a.rank_score else 0.0
        margin = round(a.rank_score[0] - a.rank_score[1], 4) if len(a.rank_score) > 1 else score
        return MatchResult(query=text, decision=decision, faq_id=faq_id, score=score, margin=margin, reason=reason,
                           candidates=cands, offered=offered or [], option=option,
                           probability=None if p is None else round(p, 4))

    def _menu_or_question_rule(self, a: Analysis) -> calibration.Rule:
        """At a menu: the menu's rule when an option ranks first or close to the first entry (a caller naming a
        service, 案件进度查询, must get the option, not the FAQ on how to query); else the question rule, so a
        question asked outright at the menu is answered as it would be in 诉讼咨询."""
        assert self._cal is not None
        if not a.order:
            return self._cal.menu
        first_option = len(self._ids) - self._n_options
        best_option = max((v for i, v in zip(a.order, a.rank_score, strict=True) if i >= first_option),
                          default=None)
        if a.order[0] >= first_option or (best_option is not None
                                          and best_option >= a.rank_score[0] - self._cal.option_window):
            return self._cal.menu
        return self._cal.faq

    def _decide(self, text: str, a: Analysis) -> MatchResult:
        assert self._cal is not None
        cal = self._menu_or_question_rule(a) if self._n_options else self._cal.faq
        if a.early is not None or a.x is None:
            detail = {"empty": "nothing left after removing fillers",
                      "too_short": f"fewer than {self.settings.min_query_chars} characters after removing fillers",
                      "no_entries": "the knowledge base is empty"}[a.early or "empty"]
            return self._result(text, "handoff", a, f"{a.early}: {detail}", None)
        p = cal.top.probability(a.x)
        p3 = cal.top3.probability(a.x)
        best = self._ids[a.order[0]]
        figures = f"cos {a.x[0]:.2f}, lex {a.x[3]:.2f}, " + ("rankers agree" if a.x[5] else "rankers differ")
        if p >= cal.answer:
            return self._result(text, "answer", a, f"confident: p={p:.2f} >= {cal.answer:.2f} ({figures})", p)
        close = [i for i, v in zip(a.order, a.rank_score, strict=True)
                 if v >= a.rank_score[0] - cal.clarify_window][:3]
        if p >= cal.confirm and len(close) == 1:
            return self._result(text, "confirm", a, f"unsure: p={p:.2f} < {cal.answer:.2f}, >= {cal.confirm:.2f}, "
                                                    f"no close runner-up ({figures})", p, [best])
        if p3 >= cal.offer:
            ids = [self._ids[i] for i in (close if len(close) >= 2 else a.order[:2])]
            return self._result(text, "clarify", a, f"close: p={p:.2f} < {cal.answer:.2f}, p(top3)={p3:.2f} >= "
                                                    f"{cal.offer:.2f}, {len(ids)} entries within "
                                                    f"{cal.clarify_window:.2f} ({figures})", p, ids)
        return self._result(text, "handoff", a, f"low_probability: p={p:.2f}, p(top3)={p3:.2f} < {cal.offer:.2f} "
                                                f"({figures})", p)

    # ------------------------------------------------------------------ lexical only (kb.semantic = false)
    def _match_lexical(self, text: str) -> MatchResult:
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
                           reason=reason, candidates=cands, offered=[top.faq_id])


def _entry_vectors(entries: Sequence[Any], embedder: QueryEmbedder) -> tuple[np.ndarray, np.ndarray]:
    """All entries' text vectors in one normalised float32 matrix, and where each entry's rows start.

    Stored float16 vectors are read as views and converted straight into the preallocated matrix, so building
    for 10,000 entries (55,000 texts, 84 MB) holds no second copy."""
    blocks: list[np.ndarray | None] = []
    todo: list[tuple[int, list[str]]] = []
    for n, e in enumerate(entries):
        blob = getattr(e, "embedding", None) if getattr(e, "embedding_model", None) == embedder.name else None
        stored = np.frombuffer(blob, dtype=np.float16).reshape(-1, DIM) \
            if blob and len(blob) % (2 * DIM) == 0 else None
        blocks.append(stored)
        if stored is None:
            title = getattr(e, "title", None) or make_title(e.question)
            todo.append((n, entry_texts(title, e.question, list(e.variants))))
    if todo:
        flat = embedder.passages([t for _, ts in todo for t in ts])
        at = 0
        for n, ts in todo:
            blocks[n] = flat[at:at + len(ts)]
            at += len(ts)
    lens = np.array([b.shape[0] for b in blocks if b is not None], dtype=np.int64)
    start = np.zeros(len(blocks), dtype=np.int64)
    if len(blocks) > 1:
        np.cumsum(lens[:-1], out=start[1:])
    mat = np.empty((int(lens.sum()), DIM), dtype=np.float32)
    for b, at in zip(blocks, start.tolist(), strict=True):
        mat[at:at + b.shape[0]] = b
    mat /= np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-9)  # float16 storage: renormalise
    mat.setflags(write=False)
    return mat, start


def load_entries(path: Any) -> list[FaqEntry]:
    """FAQ entries from a JSON file in the import/export form (a list of objects)."""
    import json
    from pathlib import Path

    return [FaqEntry.model_validate(o) for o in json.loads(Path(path).read_text(encoding="utf-8"))]


def default_kb_path() -> Any:
    from pathlib import Path

    return Path(__file__).resolve().parent / "data" / "default_kb.json"
