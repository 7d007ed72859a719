"""BM25 over character pairs and sound pairs, stored as compressed postings (CSR) in numpy arrays.

Every text (an entry's question or variant) is a document. Its features are the pairs of adjacent
characters and of adjacent sound codes (see :mod:`knowledge_base.pinyin`), so 速送费 still meets
诉讼费 through its sound pairs while an exact wording scores twice. Scoring a query touches only the
postings of its own features: a few numpy slices, fast at 100,000 texts.

Feature ids come from one process-wide vocabulary and every text's features are cached, so
rebuilding an index after an edit costs array concatenation, not text processing.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from knowledge_base.pinyin import sound_code

K1 = 1.2
B = 0.75

_vocab: dict[str, int] = {}
_sound: list[bool] = []  # per feature id: a sound pair (True) or a character pair
_lock = threading.Lock()


def pairs(s: str) -> list[str]:
    """Adjacent pairs of ``s``; a single character is its own feature."""
    if len(s) < 2:
        return [s] if s else []
    return [s[i:i + 2] for i in range(len(s) - 1)]


def _fid(feature: str) -> int:
    i = _vocab.get(feature)
    if i is None:
        with _lock:
            i = _vocab.get(feature)
            if i is None:
                i = len(_vocab)
                _sound.append(feature[0] == "p")
                _vocab[feature] = i
    return i


def feature_id(feature: str) -> int | None:
    return _vocab.get(feature)


@lru_cache(maxsize=200_000)
def features(norm: str, fuzzy: bool = True) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(character-pair features, sound-pair features) of a normalised text, each with repeats."""
    return (tuple("c" + p for p in pairs(norm)), tuple("p" + p for p in pairs(sound_code(norm, fuzzy))))


@lru_cache(maxsize=200_000)
def text_terms(norm: str, fuzzy: bool = True) -> tuple[np.ndarray, np.ndarray, int]:
    """(unique feature ids, their counts, number of features) of a normalised text — cached."""
    cf, pf = features(norm, fuzzy)
    counts = Counter(cf + pf)
    ids = np.fromiter((_fid(f) for f in counts), dtype=np.int64, count=len(counts))
    tfs = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
    ids.setflags(write=False)
    tfs.setflags(write=False)
    return ids, tfs, len(cf) + len(pf)


class Bm25Index:
    """Immutable BM25 index; documents belong to groups (entries) stored as consecutive documents.

    Besides BM25 it answers, for the sound pairs of a query, which idf mass each document and each
    group contains (for the matcher's coverage figures).
    """

    __slots__ = ("n_docs", "n_groups", "unseen_idf", "idf", "doc_mass", "doc_group", "_offsets", "_docs",
                 "_weights", "_g_offsets", "_groups", "_df")

    def __init__(self, docs: Sequence[tuple[np.ndarray, np.ndarray, int]], doc_group: np.ndarray):
        n_vocab = len(_vocab)
        sound = np.asarray(_sound[:n_vocab], dtype=bool)
        n = len(docs)
        lens = np.fromiter((d[0].size for d in docs), dtype=np.int64, count=n)
        t = np.concatenate([d[0] for d in docs]) if n else np.zeros(0, np.int64)
        tf = np.concatenate([d[1] for d in docs]) if n else np.zeros(0, np.float32)
        dd = np.repeat(np.arange(n, dtype=np.int32), lens)
        dl = np.fromiter((d[2] for d in docs), dtype=np.float32, count=n)
        df = np.bincount(t, minlength=n_vocab).astype(np.float32)
        nn = max(n, 1)
        idf = np.log1p((nn - df + 0.5) / (df + 0.5)).astype(np.float32)
        avgdl = float(dl.mean()) if n else 1.0
        w = idf[t] * tf * (K1 + 1) / (tf + K1 * (1 - B + B * dl[dd] / max(avgdl, 1e-9)))
        order = np.argsort(t, kind="stable")
        self._docs = dd[order]
        self._weights = w[order].astype(np.float32)
        self._offsets = np.zeros(n_vocab + 1, dtype=np.int64)
        np.cumsum(df.astype(np.int64), out=self._offsets[1:])
        is_sound = sound[t] if t.size else np.zeros(0, bool)
        self.doc_mass = np.bincount(dd[is_sound], weights=idf[t[is_sound]], minlength=n).astype(np.float32)
        # group-level postings of sound pairs (unique term, group)
        self.doc_group = np.asarray(doc_group, dtype=np.int32)
        self.n_groups = int(self.doc_group.max()) + 1 if n else 0
        key = np.unique(t[is_sound] * max(self.n_groups, 1) + self.doc_group[dd[is_sound]])
        gt = key // max(self.n_groups, 1)
        self._groups = (key % max(self.n_groups, 1)).astype(np.int32)
        self._g_offsets = np.zeros(n_vocab + 1, dtype=np.int64)
        np.cumsum(np.bincount(gt, minlength=n_vocab), out=self._g_offsets[1:])
        self.idf = idf
        self._df = df
        self.n_docs = n
        self.unseen_idf = float(math.log1p((nn + 0.5) / 0.5))
        for a in (self._docs, self._weights, self._offsets, self.idf, self.doc_mass, self.doc_group,
                  self._groups, self._g_offsets, self._df):
            a.setflags(write=False)

    def _id(self, feature: str) -> int | None:
        i = _vocab.get(feature)
        return None if i is None or i >= len(self._df) or self._df[i] == 0 else i

    def idf_of(self, feature: str) -> float:
        i = self._id(feature)
        return self.unseen_idf if i is None else float(self.idf[i])

    def doc_freq_share(self, feature: str) -> float:
        """Share of documents containing ``feature`` (0 for unseen features)."""
        i = self._id(feature)
        return 0.0 if i is None or not self.n_docs else float(self._df[i]) / self.n_docs

    def scores(self, feats: Sequence[str]) -> np.ndarray | None:
        """BM25 score of every document for the query features (None when no feature is known)."""
        out: np.ndarray | None = None
        for f, qtf in Counter(feats).items():
            i = self._id(f)
            if i is None:
                continue
            if out is None:
                out = np.zeros(self.n_docs, dtype=np.float32)
            a, b = self._offsets[i], self._offsets[i + 1]
            out[self._docs[a:b]] += self._weights[a:b] * (1.0 if qtf == 1 else 1.0 + 0.5 * (qtf - 1))
        return out

    def common_mass(self, sound_feats: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """idf mass of the given (unique) sound pairs contained in each document and in each group."""
        docs = np.zeros(self.n_docs, dtype=np.float32)
        groups = np.zeros(self.n_groups, dtype=np.float32)
        for f in sound_feats:
            i = self._id(f)
            if i is None:
                continue
            w = self.idf[i]
            a, b = self._offsets[i], self._offsets[i + 1]
            docs[self._docs[a:b]] += w
            a, b = self._g_offsets[i], self._g_offsets[i + 1]
            groups[self._groups[a:b]] += w
        return docs, groups
