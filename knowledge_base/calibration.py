"""The calibrated decision: the re-ranker's weights, features of a query's best entry → probabilities, and the
thresholds.

The re-ranker (``rerank``: a linear score over :data:`RERANK_FEATURES` of each candidate, fitted as a conditional
logit — softmax over a query's candidates — by ``bench/kb_calibrate.py``) orders the candidates. Then two
logistic regressions (scikit-learn, fitted by ``bench/kb_calibrate.py`` with cross-validation on the
tuning data only) are kept as plain JSON (``data/calibration.json``: feature names, scaling, coefficients,
thresholds, the figures they were chosen with), applied here with numpy — no pickle, no scikit-learn at run
time:

- ``top``: the probability that the best-ranked entry is the one the caller means;
- ``top3``: the probability that it is among the first three (used to offer a choice instead of a handoff);

one pair with its thresholds for questions (``faq``) and one for menus (``menu``, options ranked with entries).

A change of features or of the embedding model needs a refit (the file names the model it was fitted with;
:func:`load` refuses a file whose features differ from :data:`FEATURES`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "calibration.json"
FORMAT_VERSION = 2

#: the signals of a candidate entry the re-ranker reads, each as value, gap to the best entry's value (``_gap``),
#: z-score over all entries (``_z``) and log(1 + its rank among all entries) (``_lrank``): the last three say how
#: the entry stands in this knowledge base, which transfers to another knowledge base better than raw cosines
SIGNALS: tuple[str, ...] = (
    "sem",           # cosine of the query with the entry's best text (question, variants, title)
    "sem2",          # mean cosine of its two best texts (one text: that text's)
    "answer",        # cosine with the entry's answer (an option: its title)
    "lex",           # lexical score (0 when BM25 did not retrieve it)
)
RERANK_FEATURES: tuple[str, ...] = (*(f"{s}{k}" for s in SIGNALS for k in ("", "_gap", "_z", "_lrank")),
                                     "is_option")  # a menu option (ranked with the entries at a menu)

#: the features of the decision, in the order of the coefficients
FEATURES: tuple[str, ...] = (
    "p_top",         # softmax of the re-ranker's scores over the candidates: the best one's share
    "z_top",         # the best candidate's re-ranker score
    "z_margin",      # its lead over the second's
    "z_gap3",        # its lead over the third's
    "agree",         # how many of the signals sem, answer, lex rank the best candidate first (0–3)
    "sem", "sem2", "answer", "lex",                 # the best candidate's signals
    "sem_gap", "answer_gap", "lex_gap",             # their gaps to the best value of any entry
    "sem_z", "answer_z",                            # their z-scores over all entries
    "sem_margin", "answer_margin", "lex_margin",    # their leads over the best value of any other entry
    "unknown",       # share of the query's characters in words no FAQ text contains
    "length",        # log(1 + characters of the normalised query)
    "texts",         # log(number of texts of the best entry): fewer texts, lower cosines
    "asr",           # recognizer confidence (1 for typed text)
    "asr_given",     # 1 when the text came from the recognizer with a confidence
    "option",        # 1 when the best is a menu option (ranked with the entries at a menu)
)


@dataclass(frozen=True, slots=True)
class Logistic:
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def probability(self, x: np.ndarray) -> float:
        z = float(((x - self.mean) / self.scale) @ self.coef) + self.intercept
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def to_json(self) -> dict[str, Any]:
        return {"mean": [round(float(v), 6) for v in self.mean], "scale": [round(float(v), 6) for v in self.scale],
                "coef": [round(float(v), 6) for v in self.coef], "intercept": round(self.intercept, 6)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Logistic:
        arr = [np.asarray(d[k], dtype=np.float64) for k in ("mean", "scale", "coef")]
        if any(a.shape != (len(FEATURES),) for a in arr):
            raise ValueError("calibration: coefficient count differs from the features")
        return cls(arr[0], np.where(arr[1] > 0, arr[1], 1.0), arr[2], float(d["intercept"]))


@dataclass(frozen=True, slots=True)
class Reranker:
    """A linear score over :data:`RERANK_FEATURES` (standardised); only differences between candidates count."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Scores of the candidates, rows of ``x``."""
        return ((x - self.mean) / self.scale) @ self.coef

    def to_json(self) -> dict[str, Any]:
        return {k: [round(float(v), 6) for v in getattr(self, k)] for k in ("mean", "scale", "coef")}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Reranker:
        arr = [np.asarray(d[k], dtype=np.float64) for k in ("mean", "scale", "coef")]
        if any(a.shape != (len(RERANK_FEATURES),) for a in arr):
            raise ValueError("calibration: re-ranker coefficient count differs from the features")
        return cls(arr[0], np.where(arr[1] > 0, arr[1], 1.0), arr[2])


def preselection_order(lex_weight: float, option_bonus: float) -> Reranker:
    """The linear score that orders candidates as the preselection does."""
    coef = np.zeros(len(RERANK_FEATURES))
    coef[[RERANK_FEATURES.index("sem"), RERANK_FEATURES.index("lex"), RERANK_FEATURES.index("is_option")]] = \
        (1.0, lex_weight, option_bonus)
    return Reranker(np.zeros(len(RERANK_FEATURES)), np.ones(len(RERANK_FEATURES)), coef)


@dataclass(frozen=True, slots=True)
class Rule:
    """The fitted probabilities and thresholds of one context (a question in 诉讼咨询, or a menu)."""

    top: Logistic
    top3: Logistic
    answer: float           # p(top) at least this → answer
    confirm: float          # p(top) at least this and no close runner-up → confirm
    offer: float            # p(top3) at least this → clarify with the close entries (2–3)
    clarify_window: float   # entries whose ranking score is within this of the best are "close"
    figures: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"top": self.top.to_json(), "top3": self.top3.to_json(),
                "thresholds": {"answer": self.answer, "confirm": self.confirm, "offer": self.offer,
                               "clarify_window": self.clarify_window}, "figures": self.figures}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Rule:
        t = d["thresholds"]
        return cls(Logistic.from_json(d["top"]), Logistic.from_json(d["top3"]), float(t["answer"]),
                   float(t["confirm"]), float(t["offer"]), float(t["clarify_window"]), dict(d.get("figures", {})))


@dataclass(frozen=True, slots=True)
class Calibration:
    """The ranking weights and one :class:`Rule` per context: ``faq`` (entries only) and ``menu`` (a menu's
    options ranked with the entries: callers there mostly name a service, so it is fitted on its own)."""

    version: int
    model: str              # the embedding model the features were computed with
    lex_weight: float       # preselection: cosine + lex_weight × lexical score (+ option_bonus for options)
    option_bonus: float     # added to a menu option's preselection score
    faq: Rule
    menu: Rule
    rerank: Reranker        # orders the preselected candidates of a question (no menu options)
    #: orders them at a menu (options ranked with the entries): fitted on menu navigation it did worse than the
    #: preselection's own order, so it is that order (cosine + lex_weight × lexical + option_bonus)
    menu_rerank: Reranker
    #: at a menu, when an entry ranks first, the question rule (``faq``) decides unless an option's ranking
    #: score is within this of the entry's (then the menu rule does: the caller may be naming a service)
    option_window: float = 1.0
    candidates: int = 15    # preselected candidates the re-ranker orders

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "version": self.version, "model": self.model, "features": list(FEATURES),
                "rerank_features": list(RERANK_FEATURES), "lex_weight": self.lex_weight,
                "option_bonus": self.option_bonus, "option_window": self.option_window, "candidates": self.candidates,
                "rerank": self.rerank.to_json(), "menu_rerank": self.menu_rerank.to_json(),
                "faq": self.faq.to_json(), "menu": self.menu.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Calibration:
        if d.get("format") != FORMAT_VERSION or tuple(d.get("features", ())) != FEATURES \
                or tuple(d.get("rerank_features", ())) != RERANK_FEATURES:
            raise ValueError("calibration file was written for other features; refit with bench/kb_calibrate.py")
        return cls(int(d["version"]), str(d["model"]), float(d["lex_weight"]), float(d["option_bonus"]),
                   Rule.from_json(d["faq"]), Rule.from_json(d["menu"]), Reranker.from_json(d["rerank"]),
                   Reranker.from_json(d["menu_rerank"]),
                   float(d.get("option_window", 1.0)), int(d.get("candidates", 15)))


def stored_version(path: Path = DEFAULT_PATH) -> int:
    """The version number of the file at ``path`` (0 when absent), also when it was written for other features."""
    try:
        return int(json.loads(Path(path).read_text(encoding="utf-8")).get("version", 0))
    except (OSError, ValueError, AttributeError):
        return 0


def load(path: Path = DEFAULT_PATH) -> Calibration:
    try:
        return Calibration.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"calibration file {path} unusable: {e}") from e


def save(cal: Calibration, path: Path = DEFAULT_PATH) -> None:
    Path(path).write_text(json.dumps(cal.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
