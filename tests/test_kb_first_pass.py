"""The matcher's first pass for large knowledge bases (knowledge_base/first_pass.py): exact below the size,
the same decisions above it."""

from __future__ import annotations

import numpy as np

from knowledge_base import first_pass
from knowledge_base.embedding import DIM, get_embedder
from knowledge_base.matcher import Matcher, default_kb_path, load_entries
from knowledge_base.settings import MatcherSettings

QUESTIONS = ("诉讼费什么时候退", "执行款什么时候能到账", "怎么申请强制执行", "网上立案怎么操作", "法院几点上班",
             "我想投诉承办法官", "离婚要带什么材料", "民政局几点上班", "判决书什么时候能拿到")


def test_the_shipped_basis_is_an_orthonormal_subspace_of_the_model():
    basis = first_pass.load_basis()
    assert basis is not None and basis.shape == (DIM, 96)
    assert np.allclose(basis.T @ basis, np.eye(96), atol=1e-4)


def test_the_best_texts_are_rescored_exactly_and_a_small_kb_is_exact():
    rng = np.random.default_rng(3)
    texts = rng.standard_normal((5000, DIM)).astype(np.float32)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    q = texts[17] + 0.3 * texts[4000]
    q /= np.linalg.norm(q)
    exact = texts @ q
    assert first_pass.build(texts, first_pass.load_basis()) is None  # 5,000 texts: below MIN_TEXTS
    fp = first_pass.build(texts, first_pass.load_basis(), min_texts=0)
    sims = first_pass.similarities(texts, fp, q, keep=100)
    # exactly = to float32 rounding: a matrix product of 100 rows need not round like the one of 5,000 (on an AVX-512
    # VM 3 of 100 differed in the last bit); the subspace's approximations are off by ~1e-3
    same = np.isclose(sims, exact, rtol=0, atol=1e-6)
    assert same.sum() >= 100  # the 100 best by the subspace are rescored exactly ...
    assert np.argmax(sims) == 17 and same[17]  # ... the text the query is close to among them
    assert not same.all()  # the rest are approximations


def test_a_large_kb_decides_like_the_exact_one(monkeypatch):
    """The default KB with the first pass forced on, rescoring as few texts as 10,000 entries' 2,000 are of theirs
    (~4 %: 20 of ~450): the same decisions, entries and probabilities (to 0.01) as with exact cosines
    (bench/kb_first_pass_fit.py measures it at 10,000 entries)."""
    monkeypatch.setattr(first_pass, "KEEP", 20)
    entries = load_entries(default_kb_path())
    emb = get_embedder()
    exact = Matcher.build(entries, MatcherSettings(first_pass_min_texts=10**9), embedder=emb)
    fast = Matcher.build(entries, MatcherSettings(first_pass_min_texts=0), embedder=emb)
    assert exact._vec.first_pass is None and fast._vec.first_pass is not None
    for q in QUESTIONS:
        a, b = exact.match(q), fast.match(q)
        assert (a.decision, a.faq_id, a.offered) == (b.decision, b.faq_id, b.offered), q
        assert abs(a.probability - b.probability) < 0.01, q
