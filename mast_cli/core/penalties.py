"""Penalties r(x) of the objectives, as public objects (the skglm pattern).

An objective f = datafit + penalty composes one of these; solvers and algorithms use
only the public methods below (value, grad, hess_diag, smoothness), never private state.
Every method accepts one point ``x`` of shape (d,) or a batch ``X`` of shape (d, R)
whose columns are points (mast-theory §1.1, §3.2).
"""

from __future__ import annotations

import numpy as np

from .kernels import col_sum

__all__ = ["L2", "SmoothNonconvex"]


class L2:
    """r(x) = (λ/2)‖x‖²: the paper's ℓ2 regularizer (mast-theory §3.2).

    Parameters
    ----------
    lam : float
        λ ≥ 0.
    """

    def __init__(self, lam):
        self.lam = float(lam)

    def value(self, X):
        """r(x) (float) or r at each column of X (ndarray of shape (R,))."""
        return 0.5 * self.lam * col_sum(X * X)

    def grad(self, X):
        """∇r(x) = λx, ndarray of the shape of X."""
        return self.lam * X

    def hess_diag(self, X):
        """diag ∇²r(x) = λ·1, ndarray of the shape of X."""
        return np.full(X.shape, self.lam)

    def smoothness(self):
        """L_r = λ (∇r is λ-Lipschitz)."""
        return self.lam


class SmoothNonconvex:
    """r(x) = λ Σ_j x_j²/(1 + x_j²): smooth, bounded, non-convex (mast-theory §3.2).

    Its second derivative 2λ(1 − 3x²)/(1 + x²)³ lies in [−λ/2, 2λ].

    Parameters
    ----------
    lam : float
        λ ≥ 0.
    """

    def __init__(self, lam):
        self.lam = float(lam)

    def value(self, X):
        """r(x) (float) or r at each column of X (ndarray of shape (R,))."""
        X2 = X * X
        return self.lam * col_sum(X2 / (1.0 + X2))

    def grad(self, X):
        """∇r(x) = 2λx/(1 + x²)², ndarray of the shape of X."""
        return 2.0 * self.lam * X / (1.0 + X * X) ** 2

    def hess_diag(self, X):
        """diag ∇²r(x) = 2λ(1 − 3x²)/(1 + x²)³, ndarray of the shape of X."""
        X2 = X * X
        return 2.0 * self.lam * (1.0 - 3.0 * X2) / (1.0 + X2) ** 3

    def smoothness(self):
        """L_r = 2λ, an upper bound on the largest eigenvalue of ∇²r."""
        return 2.0 * self.lam
