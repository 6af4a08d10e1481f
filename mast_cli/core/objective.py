"""Objectives: ℓ2-regularized logistic regression, its non-convex variant, and ridge.

Mean convention (mast-theory §1.1, §3.2)::

    f(x) = (1/n) Σ_i log(1 + exp(−b_i a_iᵀx)) + r(x),

with r(x) = (λ/2)‖x‖² (:class:`LogisticL2`, the paper's experiments) or
r(x) = λ Σ_j x_j²/(1 + x_j²) (:class:`LogisticNonconvex`, a standard non-convex
test problem used to check the non-convex theorems on a truly non-convex f), and
:class:`RidgeL2`, f(x) = (1/2n)‖Ax − b‖² + (λ/2)‖x‖² (the squared data term
:class:`~mast_cli.core.datafit.Squared`), the quadratic of mast-theory §2.6 on which x*,
x*_D, f_D and every algorithm's mean are exact.

Every method accepts one point ``x`` of shape (d,) or a batch ``X`` of shape (d, R)
whose columns are points; batches cost one sparse·dense product per direction.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.special import expit

from ..io.errors import MastError
from ..io.plugins import OBJECTIVE_GROUP, Registry
from .datafit import Logistic, Squared
from .kernels import logistic_loss
from .penalties import L2, SmoothNonconvex

__all__ = ["LogisticObjective", "LogisticL2", "LogisticNonconvex", "RidgeL2", "make_objective", "OBJECTIVES",
           "per_sample_inf"]


class LogisticObjective:
    """f = logistic data term + penalty r; subclasses choose the penalty (``penalty_class``).

    The data term (:class:`~mast_cli.core.datafit.Logistic`) is ``self.datafit`` and the
    penalty (:mod:`mast_cli.core.penalties`) ``self.penalty``: public objects that every
    method below composes, and that code outside this class uses instead of private state.

    Parameters
    ----------
    A : sparse matrix of shape (n, d)
        The rows a_i.
    b : ndarray of shape (n,)
        Labels in {−1, +1}.
    lam : float, default=1e-3
        Regularization λ ≥ 0.

    Raises
    ------
    MastError
        If ``lam`` is negative or not finite.
    """

    #: the penalty r (a class of :mod:`mast_cli.core.penalties`), set by subclasses
    penalty_class = None
    #: the data term (a class of :mod:`mast_cli.core.datafit`)
    datafit_class = Logistic

    name = "logreg"
    #: True when f is μ-strongly convex with μ = self.mu > 0 (or convex with μ = 0).
    convex = True

    def __init__(self, A, b, lam=1e-3):
        if not np.isfinite(lam) or lam < 0:
            raise MastError(f"lambda {lam} must be a finite number >= 0")
        self.datafit = self.datafit_class(A, b)
        self.lam = float(lam)
        self.penalty = self.penalty_class(self.lam)
        self.A, self.b, self.Ab, self.AbT = self.datafit.A, self.datafit.b, self.datafit.Ab, self.datafit.AbT
        self.n, self.d = self.datafit.n, self.datafit.d

    # --- the data term's pieces, shared -------------------------------------------
    def margins(self, X):
        """z = b ⊙ (A x), shape (n,) or (n, R)."""
        return self.datafit.margins(X)

    def back(self, W):
        """Aᵀ(b ⊙ W) / n for W of shape (n,) or (n, R)."""
        return self.datafit.back(W)

    def curvature(self, x):
        """Per-row Hessian weights σ(z)σ(−z)/n at one point x."""
        return self.datafit.curvature(x)

    @property
    def data_norm_sq(self):
        """λ_max(AᵀA)."""
        return self.datafit.data_norm_sq

    def row_norms_sq(self):
        """‖a_i‖² for every row."""
        return self.datafit.row_norms_sq()

    # --- f = data term + penalty ----------------------------------------------------
    def value(self, X):
        """f(x) (float) or f at each column of X (shape (R,))."""
        return self.datafit.value(X) + self.penalty.value(X)

    def value_grad(self, X):
        """(f, ∇f) at x or at each column of X, sharing the product A·X."""
        val, grad = self.datafit.value_grad(X)
        return val + self.penalty.value(X), grad + self.penalty.grad(X)

    def grad(self, X, dtype=None, threads=1):
        """∇f(x) = −(1/n) Aᵀ(b ⊙ σ(−b ⊙ Ax)) + ∇r(x) (mast-theory §3.2).

        Parameters
        ----------
        X : ndarray (d,) or (d, R)
        dtype : {None, numpy.float32}, default=None
            Precision of the data term's kernels (see :meth:`Logistic.grad
            <mast_cli.core.datafit.Logistic.grad>`).
        threads : int, default=1
            Column groups computed by parallel threads (same bits for any value).
        """
        if type(self.penalty) is L2 and dtype is None and self.datafit.fused_ok:
            # the ℓ2 gradient λx added in the data term's pass (the same bits as below)
            return self.datafit.grad(X, dtype, threads, l2=self.penalty.lam)
        return self.datafit.grad(X, dtype, threads) + self.penalty.grad(X)

    def hessp(self, x, U):
        """∇²f(x)·u for one point x and one direction u (d,) or several (d, k)."""
        h = self.penalty.hess_diag(x)
        return self.datafit.hessp(x, U) + (h * U if U.ndim == 1 else h[:, None] * U)

    def hessp_batch(self, X, U):
        """Column-wise ∇²f(x_r)·u_r for X, U of shape (d, R)."""
        return self.datafit.hessp_batch(X, U) + self.penalty.hess_diag(X) * U

    def hessian(self, x, weights=None):
        """Dense ∇²f(x) (d × d); ``weights`` are the per-row weights σ(z)σ(−z)/n at x, if known."""
        H = self.datafit.hessian(x, weights)
        H[np.diag_indices(self.d)] += self.penalty.hess_diag(x)
        return H

    def hessian_diag(self, x, weights=None):
        """diag ∇²f(x) = (A ⊙ A)ᵀ w + diag ∇²r(x), one sparse product."""
        return self.datafit.hessian_diag(x, weights) + self.penalty.hess_diag(x)

    def hvp_at(self, x, weights=None):
        """u ↦ ∇²f(x)·u for one fixed x (weights computed once; u of shape (d,))."""
        data, h = self.datafit.hvp_at(x, weights), self.penalty.hess_diag(x)
        return lambda u: data(u) + h * u

    def per_sample_grads(self, x):
        """∇f_i(x) for every row i, dense (n, d): −b_i σ(−z_i) a_i + ∇r(x)."""
        return self.datafit.per_sample_grads(x) + self.penalty.grad(x)[None, :]

    def per_sample_values(self, x):
        """f_i(x) for every row i (shape (n,))."""
        return self.datafit.per_sample_values(x) + self.penalty.value(x)

    def grad_rows(self, X, rows, cols, weights):
        """Gradient estimates built from selected rows, for many trajectories at once.

        Column r of the result is Σ_{k: cols_k = r} weights_k ∇φ_{rows_k}(x_r) + ∇r(x_r),
        where φ_i is the logistic term of row i.  With weights 1/τ over a τ-subset this
        is the minibatch gradient; with 1/(n q_i τ) importance sampling (Algorithm 1 (II)).

        Parameters
        ----------
        X : ndarray (d, R)
        rows, cols : int arrays (m,)
            Row index and trajectory (column) of each selected sample.
        weights : float array (m,)

        Returns
        -------
        ndarray (d, R)
        """
        return self.datafit.grad_rows(X, rows, cols, weights) + self.penalty.grad(X)

    # --- constants ----------------------------------------------------------------
    def smoothness_per_sample(self):
        """L_i = ‖a_i‖²/4 + L_r (mast-theory §3.2)."""
        return self.datafit.smoothness_per_sample() + self.penalty.smoothness()

    def smoothness(self):
        """L_f = λ_max(AᵀA)/(4n) + L_r, an upper bound on sup_x λ_max(∇²f(x))."""
        return self.datafit.smoothness() + self.penalty.smoothness()

    def hessian_bound(self):
        """H = AᵀA/(4n) + L_r·I ⪰ ∇²f(x) for all x (dense d × d)."""
        H = self.datafit.hessian_bound()
        H[np.diag_indices(self.d)] += self.penalty.smoothness()
        return H

    def with_rows(self, rows):
        """The same objective restricted to a subset of rows (e.g. one worker's data)."""
        return type(self)(self.A[rows], self.b[rows], self.lam)


class LogisticL2(LogisticObjective):
    """ℓ2-regularized logistic regression, μ_f = λ, L_f = λ_max(AᵀA)/(4n) + λ.

    Parameters
    ----------
    A : sparse matrix (n, d)
    b : ndarray (n,) with values in {−1, +1}
    lam : float, default=1e-3
        Regularization λ ≥ 0 (mean convention: sklearn's ``C = 1/(n λ)``).
    """

    name = "logreg"
    convex = True
    penalty_class = L2

    @property
    def mu(self):
        """Strong-convexity constant μ_f = λ."""
        return self.lam


class LogisticNonconvex(LogisticObjective):
    """Logistic loss + λ Σ_j x_j²/(1 + x_j²): non-convex, f ≥ 0, L = λ_max(AᵀA)/(4n) + 2λ.

    The penalty's second derivative 2λ(1 − 3x²)/(1 + x²)³ lies in [−λ/2, 2λ].
    """

    name = "logreg-nonconvex"
    convex = False
    mu = 0.0
    penalty_class = SmoothNonconvex


class RidgeL2(LogisticObjective):
    """Ridge regression on the ±1 labels: f(x) = (1/2n)‖Ax − b‖² + (λ/2)‖x‖² (mast-theory §2.6).

    f(x) = ½xᵀHx − cᵀx + ½ with H = AᵀA/n + λI and c = Aᵀb/n: the Hessian is constant,
    L_f = λ_max(H) and μ_f = λ_min(H) are exact eigenvalues, and x* = H⁻¹c.

    Parameters
    ----------
    A : sparse matrix of shape (n, d)
        The rows a_i.
    b : ndarray of shape (n,)
        Labels in {−1, +1} (the regression targets).
    lam : float, default=1e-3
        Regularization λ ≥ 0.

    Raises
    ------
    MastError
        If ``lam`` is negative or not finite.
    """

    name = "ridge"
    convex = True
    penalty_class = L2
    datafit_class = Squared

    def __init__(self, A, b, lam=1e-3):
        super().__init__(A, b, lam)
        self._mu = None

    @property
    def mu(self):
        """μ_f = λ_min(H) = λ_min(AᵀA)/n + λ (dense eigensolver for d ≤ 3000, else the bound λ)."""
        if self._mu is None:
            if self.d <= 3000:
                G = self.A.T @ self.A
                G = G.toarray() if sp.issparse(G) else np.asarray(G)
                self._mu = max(float(np.linalg.eigvalsh(G / self.n)[0]), 0.0) + self.lam
            else:
                self._mu = self.lam
        return self._mu

    def quadratic(self):
        """(H, c): f(x) = ½xᵀHx − cᵀx + ½ with H = AᵀA/n + λI (ndarray (d, d)), c = Aᵀb/n (ndarray (d,))."""
        return self.hessian_bound(), np.asarray(self.AbT @ np.ones(self.n)).ravel() / self.n

    def exact_minimizer(self):
        """x* = H⁻¹c (Cholesky; least squares when H is singular, λ = 0), ndarray (d,)."""
        H, c = self.quadratic()
        try:
            return scipy.linalg.cho_solve(scipy.linalg.cho_factor(H), c)
        except np.linalg.LinAlgError:
            return np.linalg.lstsq(H, c, rcond=None)[0]


#: name -> objective class ``cls(A, b, lam)``: the built-ins, then plug-ins of the entry-point
#: group ``mast.objectives`` (see :mod:`mast_cli.io.plugins` and README "Extending mast")
OBJECTIVES = Registry(OBJECTIVE_GROUP, {"logreg": LogisticL2, "logreg-nonconvex": LogisticNonconvex,
                                        "ridge": RidgeL2})


def make_objective(name, A, b, lam=1e-3):
    """Build an objective by name (``logreg``, ``logreg-nonconvex`` or ``ridge``)."""
    if name not in OBJECTIVES:
        raise MastError(f"unknown objective '{name}'; choose one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name](A, b, lam)



def per_sample_inf(obj, tol=1e-14, max_iter=100):
    """f_i^inf = min_x f_i(x) for ℓ2-logistic (or ridge) rows, and their mean \\bar f^inf.

    For f_i(x) = log(1 + exp(−b_i a_iᵀx)) + (λ/2)‖x‖² the minimizer is x = t b_i a_i
    with t solving the 1-D problem min_t log(1 + exp(−t r)) + (λ/2) t² r, r = ‖a_i‖²
    (mast-theory §3.2).  Solved for all rows at once by safeguarded Newton on
    g(t) = −σ(−t r) + λ t, which is increasing with g(0) = −1/2 and g(1/λ) > 0.

    For ridge rows f_i(x) = ½(1 − b_i a_iᵀx)² + (λ/2)‖x‖² the same reduction gives
    t = 1/(r + λ) and f_i^inf = λ/(2(r + λ)) in closed form (½ for an empty row).

    Returns
    -------
    f_inf_i : ndarray (n,)
    bar_f_inf : float
    """
    if isinstance(obj, RidgeL2):
        r = obj.row_norms_sq()
        den = r + obj.lam
        vals = np.where(den > 0, 0.5 * obj.lam / np.where(den > 0, den, 1.0), 0.5)
        return vals, float(vals.mean())
    if not isinstance(obj, LogisticL2):
        raise MastError("per-sample infima are implemented for the ℓ2 objective only")
    lam = obj.lam
    r = obj.row_norms_sq()
    if lam == 0:
        return np.zeros_like(r), 0.0
    lo, hi = np.zeros_like(r), np.full_like(r, 1.0 / lam)
    t = np.zeros_like(r)
    for _ in range(max_iter):
        s = expit(-t * r)
        g = -s + lam * t
        lo = np.where(g < 0, t, lo)
        hi = np.where(g > 0, t, hi)
        dg = r * s * (1 - s) + lam
        tn = t - g / dg
        bad = (tn <= lo) | (tn >= hi)
        tn = np.where(bad, 0.5 * (lo + hi), tn)
        if np.max(np.abs(tn - t)) <= tol * max(1.0, np.max(np.abs(t))):
            t = tn
            break
        t = tn
    vals = logistic_loss(t * r) + 0.5 * lam * t * t * r
    return vals, float(vals.mean())
