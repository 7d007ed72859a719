"""The FAQ matcher: ranks entries for what a caller said and decides to answer, confirm, clarify or hand off.

A wrong answer from a court is worse than a handoff, so the matcher says when it does not know.

For one query (recognizer output: colloquial, fillers, homophone errors, fragments):

1. :func:`zh_text.normalize_for_matching` (simplified, half width, fillers removed, numerals→digits); empty or
   shorter than ``min_query_chars`` → ``handoff``.
2. Lexical/sound-code ranking (:mod:`knowledge_base.lexical_ranker`): BM25 over character and sound pairs,
   re-scored by coverage; it absorbs homophones (速送费 = 诉讼费).
3. With ``kb.semantic`` (:mod:`knowledge_base.rerank_features`): the query's cosine with every entry's texts and
   its answer; the best ``candidates`` by cosine + lex_weight × lexical are ordered by the fitted re-ranker; the
   best one's features give the calibrated probabilities and the decision (:mod:`knowledge_base.semantic_decision`).
   Without it the lexical score thresholds decide (:mod:`knowledge_base.lexical_decision`).

A :class:`Matcher` is immutable; build a new one from the changed entries on every edit
(``bench/kb_speed.py`` measures the build). Entries with ``enabled`` false are left out.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_base import calibration
from knowledge_base.calibration import Calibration, Reranker
from knowledge_base.entry import FaqEntry
from knowledge_base.entry_vectors import EntryVectors, entry_vectors
from knowledge_base.lexical_decision import decide_lexically
from knowledge_base.lexical_ranker import LexicalRanker
from knowledge_base.match_types import (
    OPTION_PREFIX,
    Candidate,
    Decision,
    Intent,
    MatchResult,
    OptionEntry,
    QueryEmbedder,
    Scored,
)
from knowledge_base.rerank_features import Analysis, decision_features, preselect, rerank_matrix, signals
from knowledge_base.semantic_decision import decide, menu_or_question_rule
from knowledge_base.settings import MatcherSettings
from knowledge_base.synonyms import folder
from zh_text import normalize_for_matching

__all__ = ["OPTION_PREFIX", "Analysis", "Candidate", "Decision", "Intent", "MatchResult", "Matcher", "QueryEmbedder",
           "Scored", "default_kb_path", "load_entries"]


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

    __slots__ = ("settings", "_lexical", "_ids", "_entries", "_pos", "_vec", "_embedder", "_cal", "_intent_cache",
                 "_intent_lock", "_n_options")

    def __init__(self, *args: Any, **kwargs: Any):
        raise TypeError("use Matcher.build(entries, settings)")

    @classmethod
    def build(cls, entries: Iterable[FaqEntry | Any], settings: MatcherSettings | None = None, *,
              embedder: QueryEmbedder | None = None, cal: Calibration | None = None) -> Matcher:
        """A matcher over the enabled ``entries`` (FaqEntry, a stored KbEntry, or any object with the same
        fields and an optional ``enabled`` flag).

        With ``settings.semantic`` the ``embedder`` (default: the process-wide model) gives the entries'
        vectors: an entry's stored ``embedding`` is used when its ``embedding_model`` is the embedder's vectors
        tag, else its texts are embedded now (once per text per process). ``cal``: the decision model
        (default: ``settings.calibration_file`` or the shipped one).
        """
        settings = settings or MatcherSettings()
        entries = [e for e in entries if _enabled(e)]
        seen: set[str] = set()
        for e in entries:
            if e.id in seen:
                raise ValueError(f"duplicate FAQ id {e.id}")
            seen.add(e.id)
        lexical = LexicalRanker(entries, settings, _normalizer(settings))
        kept_ids = set(lexical.ids)
        kept = [e for e in entries if e.id in kept_ids]
        ids = lexical.ids
        self = object.__new__(cls)
        object.__setattr__(self, "settings", settings)
        object.__setattr__(self, "_lexical", lexical)
        object.__setattr__(self, "_ids", ids)
        object.__setattr__(self, "_entries", tuple(kept))
        object.__setattr__(self, "_pos", {i: n for n, i in enumerate(ids)})
        n_options = sum(1 for i in ids if i.startswith(OPTION_PREFIX))
        if n_options and not all(i.startswith(OPTION_PREFIX) for i in ids[len(ids) - n_options:]):
            raise ValueError("menu options must come after the entries")
        object.__setattr__(self, "_n_options", n_options)
        object.__setattr__(self, "_intent_cache", {})
        object.__setattr__(self, "_intent_lock", threading.Lock())
        vec = None
        if settings.semantic:
            if embedder is None:
                # the default model is imported here, not at module level: kb.semantic = false must work
                # without loading it (or even having it installed)
                from knowledge_base.embedding import get_embedder

                embedder = get_embedder()
            if cal is None:
                cal = calibration.load(Path(settings.calibration_file)) if settings.calibration_file \
                    else calibration.load()
            vec = entry_vectors(kept, embedder, settings.first_pass_min_texts)
        object.__setattr__(self, "_vec", vec)
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

    def unknown_words(self, norm: str) -> list[str]:
        """Spans of ``norm`` made of at least ``unknown_run`` consecutive sound pairs no FAQ text contains."""
        return self._lexical.unknown_words(norm)

    def rank(self, text: str) -> tuple[str, list[Scored], str | None]:
        """The lexical ranking: (normalised query, scored candidates best first, early handoff reason or None)."""
        return self._lexical.rank(text)

    def match(self, text: str, intents: Sequence[Intent | dict[str, Any]] | None = None,
              asr_confidence: float | None = None) -> MatchResult:
        """Decide for one query. ``intents``: the menu options the caller may also mean (ranked with the
        entries; a winning option is answered with ``option`` = its key). ``asr_confidence``: the
        recognizer's confidence when the text came from speech."""
        if intents:
            return self.with_intents(intents).match(text, asr_confidence=asr_confidence)
        if self._cal is None:
            return decide_lexically(text, self._lexical)
        return decide(text, self.analyse(text, asr_confidence, question_rule_order=True), self._ids,
                      self._n_options, self._cal, self.settings.min_query_chars, self.settings.candidates_shown)

    def with_intents(self, intents: Sequence[Intent | dict[str, Any]]) -> Matcher:
        """This matcher plus the menu options as entries ``option:<key>`` (cached by the options' content)."""
        opts = [i if isinstance(i, Intent) else Intent.model_validate(i) for i in intents]
        key = hashlib.sha256(json.dumps([o.model_dump() for o in opts], ensure_ascii=False,
                                        sort_keys=True).encode()).hexdigest()
        with self._intent_lock:
            hit = self._intent_cache.get(key)
            if hit is None:
                extra = [OptionEntry(OPTION_PREFIX + o.key, o.title, [p for p in o.phrases if p != o.title],
                                     o.title) for o in opts]
                hit = Matcher.build([*self._entries, *extra], self.settings, embedder=self._embedder, cal=self._cal)
                if len(self._intent_cache) >= 16:  # a handful of menus; drop the oldest
                    self._intent_cache.pop(next(iter(self._intent_cache)))
                self._intent_cache[key] = hit
            return hit

    def analyse(self, text: str, asr_confidence: float | None = None, question_rule_order: bool = False) -> Analysis:
        """Preselect candidates, order them by the re-ranker and compute the best one's decision features.

        ``question_rule_order``: at a menu, when the question rule will decide (an entry first, no option close),
        the entries alone are ordered by the question re-ranker, as that rule was fitted."""
        cal = self._cal
        assert cal is not None
        c = self.candidates(text)
        if isinstance(c, Analysis):
            return c
        a = self.order(*c, self.reranker().scores(c[2]), asr_confidence)
        first_option = len(self._ids) - self._n_options
        if not (question_rule_order and self._n_options and menu_or_question_rule(cal, a, first_option) is cal.faq):
            return a
        norm, cands, xr, lex, unknown, sig = c
        keep = cands < first_option
        return self.order(norm, cands[keep], xr[keep], lex, unknown, sig, cal.rerank.scores(xr[keep]), asr_confidence)

    def reranker(self) -> Reranker:
        assert self._cal is not None
        return self._cal.menu_rerank if self._n_options else self._cal.rerank

    def candidates(self, text: str) -> Analysis | tuple[str, np.ndarray, np.ndarray, dict[int, float], float,
                                                        np.ndarray]:
        """The preselected candidates and their re-ranker features: (normalised query, entry positions, features,
        lexical scores, unknown-word share, all entries' signals), or an :class:`Analysis` of an early handoff
        (the fit uses this)."""
        s, cal, vec = self.settings, self._cal, self._vec
        assert cal is not None and isinstance(vec, EntryVectors) and self._embedder is not None
        norm = self._lexical.norm(text)
        if not norm:
            return Analysis(norm, "empty", [], [], None, {})
        if len(norm) < s.min_query_chars:
            return Analysis(norm, "too_short", [], [], None, {})
        if not self._ids:
            return Analysis(norm, "no_entries", [], [], None, {})
        _, scored, _ = self._lexical.rank(text)
        lex = {self._pos[c.faq_id]: c.score for c in scored}
        lexv = np.zeros(len(self._ids), np.float32)
        for i, v in lex.items():
            lexv[i] = v
        q = self._embedder.query(text.strip())
        sig = signals(vec.text_similarities(q), vec.start, vec.answers @ q, lexv)
        cands = preselect(sig, cal, self._n_options)
        xr = rerank_matrix(sig, cands, len(self._ids) - self._n_options)
        unknown = sum(len(w) - 1 for w in self._lexical.unknown_words(norm)) / max(len(norm), 1)
        return norm, cands, xr, lex, unknown, sig

    def order(self, norm: str, cands: np.ndarray, xr: np.ndarray, lex: dict[int, float], unknown: float,
              sig: np.ndarray, z: np.ndarray, asr_confidence: float | None = None) -> Analysis:
        """The candidates ordered by their re-ranker scores ``z``, and the best one's decision features."""
        assert isinstance(self._vec, EntryVectors)
        o = np.argsort(-z, kind="stable")
        cands, xr, z = cands[o], xr[o], z[o]
        b = int(cands[0])
        ends = np.append(self._vec.start, self._vec.texts.shape[0])
        x = decision_features(sig, b, xr, z, unknown, len(norm), int(ends[b + 1] - ends[b]), asr_confidence,
                              self._ids[b].startswith(OPTION_PREFIX))
        return Analysis(norm, None, [int(i) for i in cands], [float(v) for v in z], x, lex)


def load_entries(path: Any) -> list[FaqEntry]:
    """FAQ entries from a JSON file in the import/export form (a list of objects)."""
    return [FaqEntry.model_validate(o) for o in json.loads(Path(path).read_text(encoding="utf-8"))]


def default_kb_path() -> Path:
    return Path(__file__).resolve().parent / "data" / "default_kb.json"
