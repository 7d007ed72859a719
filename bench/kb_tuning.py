"""Shared by bench/kb_calibrate.py and bench/kb_eval.py: the tuning rows, the main menu's intents and a
query-caching embedder (the benchmarks embed each utterance once per run, however many passes they make)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from knowledge_base.embedding import Embedder
from knowledge_base.matcher import Intent
from knowledge_base.menu_intents import load_menu_intents

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
MENU = ROOT / "ivr" / "menus" / "default.yaml"
#: the tuning data, against the default KB (never the held-out files)
TUNING = ("kb_eval.jsonl", "kb_eval_more.jsonl", "nav_tune.jsonl")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def normalise_row(r: dict, nav: bool) -> dict:
    """One labelled utterance: text, expected (an entry id, option:<key>, or None), also, kind, menu."""
    out = dict(r)
    exp = r.get("expected")
    if nav:  # nav files label the menu key ("1".."6", "0", "*"), "kb" for a question, null for neither
        out["menu"] = r.get("menu", "main")
        exp = None if exp in (None, "kb") else f"option:{exp}"  # kb rows are kept apart (kb_question)
        if r.get("expected") == "kb":
            out["kb_question"] = True
        out["also"] = [f"option:{a}" for a in r.get("also", []) if a != "kb"]
        out.setdefault("kind", "navigation")
        out["expected"] = exp
        return out
    out["expected"] = exp or None
    out["also"] = list(r.get("also", []))
    out.setdefault("kind", "navigation" if nav else "unknown")
    return out


def load_tuning(nav: bool = True) -> tuple[list[dict], list[str]]:
    """The tuning rows; ``nav`` False leaves out nav_tune.jsonl (the menu YAML has no phrases to rank)."""
    rows: list[dict] = []
    sources: list[str] = []
    for name in TUNING:
        path = DATA / name
        if name.startswith("nav") and not nav:
            continue
        if path.is_file():
            rows += [normalise_row(r, name.startswith("nav")) for r in read_jsonl(path)]
            sources.append(name)
    return rows, sources


def main_menu_intents(path: Path = MENU) -> list[Intent]:
    return load_menu_intents(path, "main")


class CachedEmbedder:
    """An embedder whose query vectors are cached per text (benchmarks only: the hub embeds every query)."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.name = inner.name
        self._q: dict[str, np.ndarray] = {}
        cache = os.environ.get("KB_QUERY_VECTORS")  # an .npz of earlier runs' query vectors (queries, Q5)
        if cache and Path(cache).is_file():
            with np.load(cache, allow_pickle=False) as z:
                self._q = {str(t): v for t, v in zip(z["queries"], z["Q5"], strict=True)}

    def query(self, text: str) -> np.ndarray:
        v = self._q.get(text)
        if v is None:
            v = self._q[text] = self.inner.query(text)
        return v

    def passages(self, texts: list[str]) -> np.ndarray:
        return self.inner.passages(texts)
