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
    """The paper's ℓ2 regularizer r(x) = (λ/2)‖x‖² (mast-theory §3.2).

    Parameters
    ----------
    lam : float
        The weight λ ≥ 0.
    """

    def __init__(self, lam):
        self.lam = float(lam)

    def value(self, X):
        """Value of the penalty, (λ/2)‖x‖².

        Parameters
        ----------
        X : ndarray of shape (d,) or (d, R)
            One point or R points as columns.

        Returns
        -------
        float or ndarray of shape (R,)
            r(x), or r at each column of X.
        """
        return 0.5 * self.lam * col_sum(X * X)

    def grad(self, X):
        """Gradient ∇r(x) = λx.

        Parameters
        ----------
        X : ndarray of shape (d,) or (d, R)
            One point or R points as columns.

        Returns
        -------
        ndarray of the shape of X
            ∇r at each point.
        """
        return self.lam * X

    def hess_diag(self, X):
        """Hessian diagonal, diag ∇²r(x) = λ·1.

        Parameters
        ----------
        X : ndarray of shape (d,) or (d, R)
            One point or R points as columns.

        Returns
        -------
        ndarray of the shape of X
            The (constant) curvature λ in every coordinate.
        """
        return np.full(X.shape, self.lam)

    def smoothness(self):
        """Smoothness constant L_r = λ (∇r is λ-Lipschitz).

        Returns
        -------
        float
            L_r, added to the data term's bound in L_f and L_i (mast-theory §3.2).
        """
        return self.lam


class SmoothNonconvex:
    """The smooth, bounded, non-convex penalty r(x) = λ Σ_j x_j²/(1 + x_j²) (mast-theory §3.2).

    Its second derivative 2λ(1 − 3x²)/(1 + x²)³ lies in [−λ/2, 2λ].

    Parameters
    ----------
    lam : float
        The weight λ ≥ 0.
    """

    def __init__(self, lam):
        self.lam = float(lam)

    def value(self, X):
        """Value of the penalty, λ Σ_j x_j²/(1 + x_j²).

        Parameters
        ----------
        X : ndarray of shape (d,) or (d, R)
            One point or R points as columns.

        Returns
        -------
        float or ndarray of shape (R,)
            r(x), or r at each column of X.
        """
        X2 = X * X
        return self.lam * col_sum(X2 / (1.0 + X2))

    def grad(self, X):
        """Gradient ∇r(x) = 2λx/(1 + x²)² (coordinate-wise).

        Parameters
        ----------
        X : ndarray of shape (d,) or (d, R)
            One point or R points as columns.

        Returns
        -------
        ndarray of the shape of X
            ∇r at each point.
        """
        return 2.0 * self.lam * X / (1.0 + X * X) ** 2

    def hess_diag(self, X):
        """Hessian diagonal, diag ∇²r(x) = 2λ(1 − 3x²)/(1 + x²)³.

        Parameters
        ----------
        X : ndarray of shape (d,) or (d, R)
            One point or R points as columns.

        Returns
        -------
        ndarray of the shape of X
            The curvature in every coordinate, in [−λ/2, 2λ].
        """
        X2 = X * X
        return 2.0 * self.lam * (1.0 - 3.0 * X2) / (1.0 + X2) ** 3

    def smoothness(self):
        """Smoothness constant L_r = 2λ, an upper bound on the largest eigenvalue of ∇²r.

        Returns
        -------
        float
            L_r, added to the data term's bound in L_f and L_i (mast-theory §3.2).
        """
        return 2.0 * self.lam
