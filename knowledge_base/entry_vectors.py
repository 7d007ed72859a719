"""The entries' vectors as the semantic ranking reads them: one normalised matrix of all texts (question,
variants, title) with where each entry's rows start, and one row per entry for its answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from knowledge_base import first_pass
from knowledge_base.embedding import DIM, MODEL_NAME, entry_texts, vectors_tag
from knowledge_base.match_types import QueryEmbedder
from knowledge_base.title import make_title


@dataclass(frozen=True, slots=True)
class EntryVectors:
    texts: np.ndarray    # (all texts, DIM) float32, rows normalised
    start: np.ndarray    # (entries,) int64: the first text row of each entry
    answers: np.ndarray  # (entries, DIM) float32: the answer's vector (an entry without one: its first text)
    first_pass: first_pass.FirstPass | None = None  # a large KB's texts in the model's subspace

    def text_similarities(self, q: np.ndarray) -> np.ndarray:
        """Every text's cosine with the query vector ``q`` (large KBs: through the first pass)."""
        return first_pass.similarities(self.texts, self.first_pass, q)


def _texts(e: Any) -> tuple[list[str], str]:
    title = getattr(e, "title", None) or make_title(e.question)
    return entry_texts(title, e.question, list(e.variants)), getattr(e, "answer", "") or ""


def entry_vectors(entries: Sequence[Any], embedder: QueryEmbedder,
                  first_pass_min_texts: int = first_pass.MIN_TEXTS) -> EntryVectors:
    """Stored vectors are used when their tag is this model's and they have the expected rows; the others are
    embedded now (once per text per process). Stored float16 vectors are read as views and converted straight
    into the preallocated matrix, so building for 10,000 entries (55,000 texts, 84 MB) holds no second copy.
    From ``first_pass_min_texts`` texts on (and with the model the shipped subspace was fitted for) the texts are
    also kept in that subspace for the first pass."""
    tag = vectors_tag(embedder.name)
    blocks: list[np.ndarray | None] = []
    answers = np.empty((len(entries), DIM), dtype=np.float32)
    todo: list[tuple[int, list[str]]] = []
    shapes: list[tuple[int, bool]] = []
    for n, e in enumerate(entries):
        texts, answer = _texts(e)
        rows = len(texts) + bool(answer)
        shapes.append((len(texts), bool(answer)))
        blob = getattr(e, "embedding", None) if getattr(e, "embedding_model", None) == tag else None
        stored = np.frombuffer(blob, dtype=np.float16).reshape(-1, DIM) \
            if blob and len(blob) == 2 * DIM * rows else None
        blocks.append(stored)
        if stored is None:
            todo.append((n, [*texts, answer] if answer else texts))  # as embedding.stored_texts
    if todo:
        flat = embedder.passages([t for _, ts in todo for t in ts])
        at = 0
        for n, ts in todo:
            blocks[n] = flat[at:at + len(ts)]
            at += len(ts)
    lens = np.array([k for k, _ in shapes], dtype=np.int64)
    start = np.zeros(len(blocks), dtype=np.int64)
    if len(blocks) > 1:
        np.cumsum(lens[:-1], out=start[1:])
    mat = np.empty((int(lens.sum()), DIM), dtype=np.float32)
    for n, (b, at) in enumerate(zip(blocks, start.tolist(), strict=True)):
        k, has_answer = shapes[n]
        mat[at:at + k] = b[:k]
        answers[n] = b[k] if has_answer else b[0]
    for m in (mat, answers):  # float16 storage: renormalise
        m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-9)
        m.setflags(write=False)
    basis = first_pass.load_basis() if embedder.name == MODEL_NAME else None
    return EntryVectors(mat, start, answers, first_pass.build(mat, basis, first_pass_min_texts))
