"""Numbers for the semantic decision: each entry's signals for one query, the re-ranker's features of the
preselected candidates, and the decision features of the best one (:mod:`knowledge_base.calibration` names them).
Pure numpy; the matcher supplies the cosines and lexical scores."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from knowledge_base.calibration import SIGNALS, Calibration


@dataclass(frozen=True, slots=True)
class Analysis:
    """One query's ranking and the decision features of its best entry (for the decision and the fit)."""

    norm: str
    early: str | None           # handoff before ranking: empty, too_short, no_entries
    order: list[int]            # entry positions, best re-ranker score first (the preselected candidates)
    rank_score: list[float]     # their re-ranker scores
    x: np.ndarray | None        # the decision features (calibration.FEATURES) of the best entry
    lex: dict[int, float]       # lexical scores of the entries BM25 retrieved


def signals(text_sims: np.ndarray, start: np.ndarray, answer_sims: np.ndarray, lex: np.ndarray) -> np.ndarray:
    """(signals, entries): per entry its best text's cosine, the mean of its two best texts', the answer's cosine
    and the lexical score (rows in the order of :data:`SIGNALS`)."""
    n = start.size
    if not text_sims.size:
        return np.zeros((len(SIGNALS), n), np.float32)
    best = np.maximum.reduceat(text_sims, start)
    lens = np.diff(np.append(start, text_sims.size))
    rest = np.where(text_sims >= np.repeat(best, lens), -np.inf, text_sims)  # drop each entry's best
    second = np.maximum.reduceat(rest, start)
    second = np.where(np.isfinite(second), second, best)
    return np.stack([best, (best + second) / 2, answer_sims, lex]).astype(np.float32)


def preselect(sig: np.ndarray, cal: Calibration, n_options: int) -> np.ndarray:
    """The candidates the re-ranker orders: the best by cosine + lex_weight × lexical (+ the option bonus)."""
    comb = sig[0] + cal.lex_weight * sig[3]
    if n_options:
        comb[-n_options:] += cal.option_bonus  # options come last (Matcher.with_intents)
    n = comb.size
    k = min(n, cal.candidates)
    top = np.argpartition(-comb, k - 1)[:k] if k < n else np.arange(n)
    return top[np.argsort(-comb[top], kind="stable")]


def rerank_matrix(sig: np.ndarray, cands: np.ndarray, first_option: int) -> np.ndarray:
    """(candidates, RERANK_FEATURES): each signal as value, gap to the best entry, z-score, log(1 + rank); then
    whether the candidate is a menu option (positions from ``first_option`` on)."""
    cols = []
    for v in sig:
        c = v[cands]
        rank = (v[None, :] > c[:, None]).sum(axis=1)
        cols += [c, c - v.max(), (c - v.mean()) / (v.std() + 1e-6), np.log1p(rank)]
    cols.append((cands >= first_option).astype(np.float64))
    return np.stack(cols, axis=1).astype(np.float64)


def _lead(v: np.ndarray, b: int) -> float:
    """How far entry ``b``'s value is above the best value of any other entry (negative when below)."""
    if v.size < 2:
        return float(v[b]) if v.size else 0.0
    top2 = np.partition(v, v.size - 2)[-2:]
    other = top2[0] if v[b] >= top2[1] else top2[1]
    return float(v[b] - other)


def decision_features(sig: np.ndarray, best: int, xr: np.ndarray, z: np.ndarray, unknown: float, length: int,
                      texts: int, asr_confidence: float | None, option: bool) -> np.ndarray:
    """The decision features (calibration.FEATURES) of the best candidate, entry ``best``; ``sig``: all entries'
    signals; ``xr`` and ``z``: the candidates' re-ranker features and scores, best first."""
    p = np.exp(z - z[0])
    at = {name: i for i, name in enumerate(f"{s}{k}" for s in SIGNALS for k in ("", "_gap", "_z", "_lrank"))}
    b = xr[0]
    agree = sum(b[at[f"{s}_gap"]] >= -1e-9 for s in ("sem", "answer", "lex"))
    return np.array([
        1.0 / p.sum(), z[0], z[0] - (z[1] if z.size > 1 else z[0] - 10.0), z[0] - (z[2] if z.size > 2 else z[0] - 10.0),
        float(agree), b[at["sem"]], b[at["sem2"]], b[at["answer"]], b[at["lex"]],
        b[at["sem_gap"]], b[at["answer_gap"]], b[at["lex_gap"]], b[at["sem_z"]], b[at["answer_z"]],
        _lead(sig[0], best), _lead(sig[2], best), _lead(sig[3], best),
        min(unknown, 1.0), math.log1p(length), math.log(max(texts, 1)),
        1.0 if asr_confidence is None else float(asr_confidence), 0.0 if asr_confidence is None else 1.0,
        1.0 if option else 0.0,
    ], dtype=np.float64)
