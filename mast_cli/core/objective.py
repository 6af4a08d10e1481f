"""Objectives: ℓ2-regularized logistic regression and its non-convex variant.

Mean convention (mast-theory §1.1, §3.2)::

    f(x) = (1/n) Σ_i log(1 + exp(−b_i a_iᵀx)) + r(x),

with r(x) = (λ/2)‖x‖² (:class:`LogisticL2`, the paper's experiments) or
r(x) = λ Σ_j x_j²/(1 + x_j²) (:class:`LogisticNonconvex`, a standard non-convex
test problem used to check the non-convex theorems on a truly non-convex f).

Every method accepts one point ``x`` of shape (d,) or a batch ``X`` of shape (d, R)
whose columns are points; batches cost one sparse·dense product per direction.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from ..io.errors import MastError
from .kernels import (BLOCK_ELEMS, col_mean, csc_matvec, csc_matvecs, csr_matvec, csr_matvecs,
                      logistic_loss, neg_sigmoid, spectral_norm_sq, thread_pool)
from .penalties import L2, SmoothNonconvex

__all__ = ["LogisticObjective", "LogisticL2", "LogisticNonconvex", "make_objective", "OBJECTIVES",
           "per_sample_inf"]


class LogisticObjective:
    """f = logistic datafit + penalty r; subclasses choose the penalty (``penalty_class``).

    The penalty is a public object (:mod:`mast_cli.core.penalties`) in ``self.penalty``;
    code outside this class uses it and the public methods below, never private state.

    Parameters
    ----------
    A : sparse matrix of shape (n, d)
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

    name = "logreg"
    #: True when f is μ-strongly convex with μ = self.mu > 0 (or convex with μ = 0).
    convex = True

    def __init__(self, A, b, lam=1e-3):
        if not np.isfinite(lam) or lam < 0:
            raise MastError(f"lambda {lam} must be a finite number >= 0")
        self.A = sp.csr_matrix(A, dtype=np.float64)
        self.b = np.asarray(b, dtype=np.float64)
        self.lam = float(lam)
        self.penalty = self.penalty_class(self.lam)
        self.n, self.d = self.A.shape
        # Rows pre-multiplied by their labels: z = Ab·x, ∇ = Abᵀ w / n.  The transpose is
        # a CSC view, whose product with a dense block is several times faster than a
        # CSR copy of Aᵀ (it scatters into the small d × R output).
        self.Ab = sp.csr_matrix(sp.diags(self.b) @ self.A)
        self.AbT = self.Ab.T
        self._AT = self.A.T
        self._norm_sq = None
        self._blocks = {}
        self._gram = self._sq_T = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_blocks"] = {}          # caches: rebuilt on demand, never pickled
        state["_gram"] = state["_sq_T"] = None
        return state

    # --- datafit ----------------------------------------------------------------
    def margins(self, X):
        """z = b ⊙ (A x), shape (n,) or (n, R)."""
        return self.Ab @ X

    def back(self, W):
        """Aᵀ(b ⊙ W) / n for W of shape (n,) or (n, R)."""
        return (self.AbT @ W) / self.n

    def value(self, X):
        """f(x) (float) or f at each column of X (shape (R,))."""
        return col_mean(logistic_loss(self.margins(X))) + self.penalty.value(X)

    def value_grad(self, X):
        """(f, ∇f) at x or at each column of X, sharing the product A·X."""
        z = self.margins(X)
        val = col_mean(logistic_loss(z)) + self.penalty.value(X)
        grad = self.back(neg_sigmoid(z)) + self.penalty.grad(X)
        return val, grad

    def grad(self, X, dtype=None, threads=1):
        """∇f(x) = −(1/n) Aᵀ(b ⊙ σ(−b ⊙ Ax)) + ∇r(x) (mast-theory §3.2).

        Parameters
        ----------
        X : ndarray (d,) or (d, R)
        dtype : {None, numpy.float32}, default=None
            ``None`` computes in float64 (bit for bit what the unblocked products give).
            ``numpy.float32`` is an opt-in fast mode: margins and sigmoids in float32,
            the transposed product accumulated in float64; absolute error about 1e-8
            per entry on LIBSVM data (tested ≤ 1e-7, benchmarks/README.md); the result
            is float64.
        threads : int, default=1
            Split the R columns into this many groups computed by parallel threads
            (the kernels release the GIL).  Columns are independent, so the result is
            the same, bit for bit, for any value.
        """
        return self._data_grad(X, dtype, threads) + self.penalty.grad(X)

    def _row_blocks(self, R, dtype):
        """(m, indptr, indices, data) of consecutive row blocks of Ab, ≈ BLOCK_ELEMS/R rows each."""
        rows = max(16, BLOCK_ELEMS // max(R, 1))
        key = (rows, np.dtype(dtype).char)
        if key not in self._blocks:
            if len(self._blocks) > 16:
                self._blocks.clear()
            A = self.Ab
            data = A.data if key[1] == "d" else A.data.astype(dtype)
            ptr = A.indptr
            self._blocks[key] = [
                (min(s + rows, self.n) - s, ptr[s:s + rows + 1] - ptr[s], A.indices[ptr[s]:ptr[min(s + rows, self.n)]],
                 data[ptr[s]:ptr[min(s + rows, self.n)]])
                for s in range(0, self.n, rows)]
        return rows, self._blocks[key]

    def _data_grad(self, X, dtype=None, threads=1):
        """−(1/n) Abᵀ σ(−Ab X), row block by row block so the n × R margins stay in cache.

        Bit for bit equal to ``self.back(neg_sigmoid(self.margins(X)))`` in float64:
        a block's margins come from the same kernel as the full product A·X, and the
        transposed product accumulates the blocks, in row order, into one output, as
        the full CSC product does.  The kernels get 1/(1 + eᶻ) and the sign goes into
        the final division (IEEE rounding is sign-symmetric, so the bits agree).
        """
        mixed = dtype is not None and np.dtype(dtype) == np.float32
        if csr_matvecs is None or (dtype is not None and not mixed):
            if dtype is not None and not mixed:
                raise MastError(f"gradient dtype {dtype} is not supported (None or float32)")
            return self.back(neg_sigmoid(self.margins(X)))
        one = X.ndim == 1
        Y = np.ascontiguousarray(X.reshape(self.d, -1), dtype=np.float32 if mixed else np.float64)
        R = Y.shape[1]
        if threads > 1 and R >= 2:
            cuts = np.linspace(0, R, min(threads, R) + 1).astype(int)
            parts = [Y[:, a:b] for a, b in zip(cuts[:-1], cuts[1:])]
            return np.hstack(list(thread_pool(len(parts)).map(lambda P: self._data_grad(P, dtype), parts)))
        rows, blocks = self._row_blocks(R, Y.dtype)
        blocks64 = self._row_blocks(R, np.float64)[1] if mixed else blocks
        G = np.zeros((self.d, R))
        buf = np.empty(rows * R, dtype=Y.dtype)
        buf64 = np.empty(rows * R) if mixed else buf
        y, g, d = Y.reshape(-1), G.reshape(-1), self.d
        # one column: the single-vector kernels (same operations in the same order as the
        # multi-vector ones, so the same bits, and 2-4x faster than them at R = 1)
        fwd = ((lambda m, p, i, v, a, o: csr_matvec(m, d, p, i, v, a, o)) if R == 1
               else (lambda m, p, i, v, a, o: csr_matvecs(m, d, R, p, i, v, a, o)))
        bwd = ((lambda m, p, i, v, a, o: csc_matvec(d, m, p, i, v, a, o)) if R == 1
               else (lambda m, p, i, v, a, o: csc_matvecs(d, m, R, p, i, v, a, o)))
        with np.errstate(over="ignore"):
            for (m, ptr, idx, val), (_, _, _, val64) in zip(blocks, blocks64):
                z = buf[:m * R]
                z.fill(0.0)
                fwd(m, ptr, idx, val, y, z)
                np.exp(z, out=z)
                z += 1.0
                np.reciprocal(z, out=z)
                w = buf64[:m * R]
                if mixed:
                    w[...] = z
                bwd(m, ptr, idx, val64, w, g)
        G /= -self.n
        return G[:, 0] if one else G

    def hessp(self, x, U):
        """∇²f(x)·u for one point x and one direction u (d,) or several (d, k)."""
        z = self.margins(x)
        w = expit(z) * expit(-z)
        AU = self.A @ U
        out = self._AT @ (AU * (w if AU.ndim == 1 else w[:, None])) / self.n
        h = self.penalty.hess_diag(x)
        return out + (h * U if U.ndim == 1 else h[:, None] * U)

    def hessp_batch(self, X, U):
        """Column-wise ∇²f(x_r)·u_r for X, U of shape (d, R)."""
        z = self.margins(X)
        w = expit(z) * expit(-z)
        return self._AT @ (w * (self.A @ U)) / self.n + self.penalty.hess_diag(X) * U

    def curvature(self, x):
        """Per-row Hessian weights σ(z)σ(−z)/n at one point x."""
        z = self.margins(x)
        return expit(z) * expit(-z) / self.n

    def hessian(self, x, weights=None):
        """Dense ∇²f(x) (d × d): Aᵀ diag(w) A as one CSR·CSR product (cached CSR copy of Aᵀ).

        ``weights`` (optional) are the per-row weights σ(z)σ(−z)/n at x, if already known.
        """
        w = self.curvature(x) if weights is None else weights
        if self._gram is None:
            self._gram = (sp.csr_matrix(self._AT), np.repeat(np.arange(self.n), np.diff(self.A.indptr)))
        AT, row = self._gram
        B = sp.csr_matrix((self.A.data * w[row], self.A.indices, self.A.indptr), shape=self.A.shape)
        H = AT @ B
        H = H.toarray() if sp.issparse(H) else np.asarray(H)
        H[np.diag_indices(self.d)] += self.penalty.hess_diag(x)
        return H

    def hessian_diag(self, x, weights=None):
        """diag ∇²f(x) = (A ⊙ A)ᵀ w + diag ∇²r(x), one sparse product."""
        w = self.curvature(x) if weights is None else weights
        if self._sq_T is None:
            self._sq_T = self.A.multiply(self.A).tocsr().T
        return self._sq_T @ w + self.penalty.hess_diag(x)

    def hvp_at(self, x, weights=None):
        """u ↦ ∇²f(x)·u for one fixed x (weights computed once; u of shape (d,))."""
        w = self.curvature(x) if weights is None else weights
        h = self.penalty.hess_diag(x)
        return lambda u: self._AT @ (w * (self.A @ u)) + h * u

    def per_sample_grads(self, x):
        """∇f_i(x) for every row i, dense (n, d): −b_i σ(−z_i) a_i + ∇r(x)."""
        c = neg_sigmoid(self.margins(x)) * self.b
        G = sp.diags(c) @ self.A
        return G.toarray() + self.penalty.grad(x)[None, :]

    def per_sample_values(self, x):
        """f_i(x) for every row i (shape (n,))."""
        return logistic_loss(self.margins(x)) + self.penalty.value(x)

    # --- sampled gradients (Algorithm 1 (II)) ------------------------------------
    def grad_rows(self, X, rows, cols, weights):
        """Gradient estimates built from selected rows, for many trajectories at once.

        Column r of the result is Σ_{k: cols_k = r} weights_k ∇φ_{rows_k}(x_r) + ∇r(x_r),
        where φ_i is the logistic term of row i.  With weights 1/τ over a τ-subset this
        is the minibatch gradient; with 1/(n q_i τ) importance sampling.

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
        R = X.shape[1]
        Asub = self.Ab[rows]
        z = np.asarray(Asub.multiply(X[:, cols].T).sum(axis=1)).ravel()
        c = neg_sigmoid(z) * weights
        P = sp.csr_matrix((c, (np.arange(rows.size), cols)), shape=(rows.size, R))
        G = Asub.T @ P
        G = G.toarray() if sp.issparse(G) else np.asarray(G)
        return G + self.penalty.grad(X)

    # --- constants ----------------------------------------------------------------
    @property
    def data_norm_sq(self):
        """λ_max(AᵀA)."""
        if self._norm_sq is None:
            self._norm_sq = spectral_norm_sq(self.A)
        return self._norm_sq

    def row_norms_sq(self):
        """‖a_i‖² for every row."""
        return np.asarray(self.A.multiply(self.A).sum(axis=1)).ravel()

    def smoothness_per_sample(self):
        """L_i = ‖a_i‖²/4 + L_r (mast-theory §3.2)."""
        return self.row_norms_sq() / 4.0 + self.penalty.smoothness()

    def smoothness(self):
        """L_f = λ_max(AᵀA)/(4n) + L_r, an upper bound on sup_x λ_max(∇²f(x))."""
        return self.data_norm_sq / (4.0 * self.n) + self.penalty.smoothness()

    def hessian_bound(self):
        """H = AᵀA/(4n) + L_r·I ⪰ ∇²f(x) for all x (dense d × d)."""
        G = (self._AT @ self.A)
        G = G.toarray() if sp.issparse(G) else np.asarray(G)
        H = G / (4.0 * self.n)
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


OBJECTIVES = {"logreg": LogisticL2, "logreg-nonconvex": LogisticNonconvex}


def make_objective(name, A, b, lam=1e-3):
    """Build an objective by name (``logreg`` or ``logreg-nonconvex``)."""
    if name not in OBJECTIVES:
        raise MastError(f"unknown objective '{name}'; choose one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name](A, b, lam)



def per_sample_inf(obj, tol=1e-14, max_iter=100):
    """f_i^inf = min_x f_i(x) for ℓ2-logistic rows, and their mean \\bar f^inf.

    For f_i(x) = log(1 + exp(−b_i a_iᵀx)) + (λ/2)‖x‖² the minimizer is x = t b_i a_i
    with t solving the 1-D problem min_t log(1 + exp(−t r)) + (λ/2) t² r, r = ‖a_i‖²
    (mast-theory §3.2).  Solved for all rows at once by safeguarded Newton on
    g(t) = −σ(−t r) + λ t, which is increasing with g(0) = −1/2 and g(1/λ) > 0.

    Returns
    -------
    f_inf_i : ndarray (n,)
    bar_f_inf : float
    """
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
