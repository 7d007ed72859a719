"""The re-ranker's fit for bench/kb_calibrate.py: a conditional logit (softmax over one query's candidates,
the right ones as the target) with an L2 penalty, on standardised features; numpy + scipy's L-BFGS."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from knowledge_base.calibration import Reranker

L2 = 1.0


def fit_reranker(groups: list[tuple[np.ndarray, np.ndarray]], l2: float = L2) -> Reranker:
    """``groups``: (candidate features, 0/1 right) per query; queries without a right candidate are skipped."""
    groups = [(x, y.astype(float)) for x, y in groups if y.any()]
    allx = np.concatenate([x for x, _ in groups])
    mean, scale = allx.mean(0), allx.std(0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    xs = [((x - mean) / scale, y / y.sum()) for x, y in groups]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.0, np.zeros_like(w)
        for x, t in xs:
            z = x @ w
            z -= z.max()
            p = np.exp(z)
            p /= p.sum()
            total -= float(t @ np.log(p + 1e-12))
            grad -= x.T @ (t - p)
        return total + l2 * float(w @ w), grad + 2 * l2 * w

    w = minimize(loss, np.zeros(allx.shape[1]), jac=True, method="L-BFGS-B").x
    return Reranker(mean, scale, w)
