"""The calibrated decision: features of a query's best entries → probabilities, and the thresholds.

Two logistic regressions (scikit-learn, fitted by ``bench/kb_calibrate.py`` with cross-validation on the
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
FORMAT_VERSION = 1

#: the features, in the order of the coefficients
FEATURES: tuple[str, ...] = (
    "sem",           # cosine of the best entry (best of its texts)
    "sem_margin",    # its cosine minus the best cosine of any other entry
    "sem_gap3",      # its cosine minus the third-best entry's cosine
    "lex",           # lexical score of the best entry (0 when BM25 did not retrieve it)
    "lex_margin",    # its lexical score minus the best lexical score of any other entry
    "agree",         # 1 when the semantic and the lexical ranking have the same first entry
    "unknown",       # share of the query's characters in words no FAQ text contains
    "length",        # log(1 + characters of the normalised query)
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
    lex_weight: float       # ranking score = cosine + lex_weight × lexical score (+ option_bonus for options)
    option_bonus: float     # added to a menu option's ranking score
    faq: Rule
    menu: Rule
    #: at a menu, when an entry ranks first, the question rule (``faq``) decides unless an option's ranking
    #: score is within this of the entry's (then the menu rule does: the caller may be naming a service)
    option_window: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "version": self.version, "model": self.model, "features": list(FEATURES),
                "lex_weight": self.lex_weight, "option_bonus": self.option_bonus,
                "option_window": self.option_window, "faq": self.faq.to_json(), "menu": self.menu.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Calibration:
        if d.get("format") != FORMAT_VERSION or tuple(d.get("features", ())) != FEATURES:
            raise ValueError("calibration file was written for other features; refit with bench/kb_calibrate.py")
        return cls(int(d["version"]), str(d["model"]), float(d["lex_weight"]), float(d["option_bonus"]),
                   Rule.from_json(d["faq"]), Rule.from_json(d["menu"]), float(d.get("option_window", 1.0)))


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
