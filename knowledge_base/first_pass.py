"""A cheaper first pass over the texts of a large knowledge base: cosines in a 96-dimensional subspace of the
embedding model, the best few thousand texts then rescored exactly.

At 10,000 entries (~55,000 texts) one query's exact cosines read an 84 MB matrix, a third of a decision's
time on one core; in the subspace the matrix is a quarter of that. The subspace is the model's, not the
knowledge base's: the principal directions of e5 vectors of court questions and answers (passages and queries
together, since it approximates their dot products), fitted once by ``bench/kb_first_pass_fit.py`` on the
default KB and the tuning questions and shipped as ``data/first_pass_basis.npy``. A knowledge base below
:data:`MIN_TEXTS` texts (every court FAQ seen so far) is scored exactly, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

BASIS_PATH = Path(__file__).resolve().parent / "data" / "first_pass_basis.npy"
#: below this many texts every cosine is exact (the first pass would save less than it costs to reason about)
MIN_TEXTS = 20_000
#: texts rescored exactly: the best by the first pass (the preselection reads each entry's best two texts)
KEEP = 2_000


@dataclass(frozen=True, slots=True)
class FirstPass:
    basis: np.ndarray  # (DIM, k) float32, orthonormal columns
    low: np.ndarray    # (texts, k) float32: the texts in the subspace


@lru_cache(maxsize=1)
def load_basis(path: Path = BASIS_PATH) -> np.ndarray | None:
    """The shipped basis, or None when the file is absent (the matcher then scores exactly)."""
    if not path.is_file():
        return None
    basis = np.load(path).astype(np.float32)
    basis.setflags(write=False)
    return basis


def build(texts: np.ndarray, basis: np.ndarray | None, min_texts: int = MIN_TEXTS) -> FirstPass | None:
    """The first pass for this text matrix, or None when it is small (or no basis fits its width)."""
    if basis is None or texts.shape[0] < min_texts or basis.shape[0] != texts.shape[1]:
        return None
    low = texts @ basis
    low.setflags(write=False)
    return FirstPass(basis, low)


def similarities(texts: np.ndarray, fp: FirstPass | None, q: np.ndarray, keep: int | None = None) -> np.ndarray:
    """Every text's cosine with ``q``: exact, or from the subspace with the ``keep`` (default :data:`KEEP`) best
    rescored exactly."""
    keep = KEEP if keep is None else keep
    if fp is None or keep >= texts.shape[0]:
        return texts @ q
    sims = fp.low @ (q @ fp.basis)
    top = np.argpartition(-sims, keep)[:keep]
    sims[top] = texts[top] @ q
    return sims
