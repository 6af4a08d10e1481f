"""Data terms in the margins z_i = b_i a_iᵀx: (1/n) Σ_i φ(z_i) (mast-theory §1.1, §3.2, §2.6).

:class:`Logistic`: φ(z) = log(1 + exp(−z)); :class:`Squared`: φ(z) = ½(1 − z)², i.e.
(1/2n)‖Ax − b‖² for labels b_i ∈ {−1, +1} (the ridge objective's data term, §2.6).  A
subclass changes φ through :meth:`Logistic.loss`, :meth:`Logistic.dloss`,
:meth:`Logistic.d2loss` and :attr:`Logistic.curvature_bound` (sup φ'').

Value, gradient (blocked CSR kernels), Hessian products and dense Hessians, per-row
pieces and the smoothness constants of the data term alone; an objective
(:mod:`mast_cli.core.objective`) adds a penalty.  Every method accepts one point ``x`` of
shape (d,) or a batch ``X`` of shape (d, R) whose columns are points.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from ..io.errors import MastError
from . import fused
from .kernels import (BLOCK_ELEMS, col_mean, csc_matvec, csc_matvecs, csr_matvec, csr_matvecs, logistic_loss,
                      neg_sigmoid, spectral_norm_sq, thread_pool)

__all__ = ["Logistic", "Squared"]


class Logistic:
    """The logistic data term of (A, b), mean convention.

    Parameters
    ----------
    A : sparse matrix of shape (n, d)
        The rows a_i.
    b : ndarray of shape (n,)
        Labels in {−1, +1}.
    """

    #: sup_z φ''(z): 1/4 for the logistic loss (the source of L_f = λ_max(AᵀA)/(4n) + L_r)
    curvature_bound = 0.25
    #: the fused logistic kernels (core/fused.py) compute this data term
    fused_ok = True

    @staticmethod
    def loss(z):
        """φ(z) = log(1 + exp(−z)), elementwise (ndarray of the shape of z)."""
        return logistic_loss(z)

    @staticmethod
    def dloss(z):
        """φ'(z) = −σ(−z), elementwise (ndarray of the shape of z)."""
        return neg_sigmoid(z)

    @staticmethod
    def d2loss(z):
        """φ''(z) = σ(z)σ(−z), elementwise (ndarray of the shape of z)."""
        return expit(z) * expit(-z)

    def __init__(self, A, b):
        self.A = sp.csr_matrix(A, dtype=np.float64)
        self.b = np.asarray(b, dtype=np.float64)
        self.n, self.d = self.A.shape
        # Rows pre-multiplied by their labels: z = Ab·x, ∇ = Abᵀ w / n.  The transpose is
        # a CSC view, whose product with a dense block is several times faster than a
        # CSR copy of Aᵀ (it scatters into the small d × R output).
        self.Ab = sp.csr_matrix(sp.diags(self.b) @ self.A)
        self.AbT = self.Ab.T
        self.AT = self.A.T
        self._norm_sq = None
        self._blocks = {}
        self._gram = self._sq_T = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_blocks"] = {}          # caches: rebuilt on demand, never pickled
        state["_gram"] = state["_sq_T"] = None
        return state

    def margins(self, X):
        """z = b ⊙ (A x), shape (n,) or (n, R)."""
        return self.Ab @ X

    def back(self, W):
        """Aᵀ(b ⊙ W) / n for W of shape (n,) or (n, R)."""
        return (self.AbT @ W) / self.n

    def value(self, X):
        """φ(x) (float) or φ at each column of X (shape (R,))."""
        if fused.ENABLED and self.fused_ok:    # one fused pass (core/fused.py)
            return fused.logistic_value(self.Ab, X) / self.n
        return col_mean(self.loss(self.margins(X)))

    def value_grad(self, X):
        """(φ, ∇φ) at x or at each column of X, sharing the product A·X."""
        if fused.ENABLED and self.fused_ok:                    # one fused pass (core/fused.py)
            val, G = fused.logistic_value_grad(self.Ab, X)
            G /= -self.n
            return val / self.n, G
        z = self.margins(X)
        return col_mean(self.loss(z)), self.back(self.dloss(z))

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

    def grad(self, X, dtype=None, threads=1, l2=None):
        """∇φ(x) = −(1/n) Aᵀ(b ⊙ σ(−b ⊙ Ax)), row block by row block (margins stay in cache).

        With the fused kernels (:mod:`mast_cli.core.fused`, the default when numba is
        installed) one pass per row block; equal to the numpy/scipy path below to ≤ 1e-12
        relative (the exp rounding).  The numpy/scipy path (``MAST_KERNELS=numpy``) is
        bit for bit equal to ``self.back(neg_sigmoid(self.margins(X)))`` in float64:
        a block's margins come from the same kernel as the full product A·X, and the
        transposed product accumulates the blocks, in row order, into one output, as
        the full CSC product does.  The kernels get 1/(1 + eᶻ) and the sign goes into
        the final division (IEEE rounding is sign-symmetric, so the bits agree).

        Parameters
        ----------
        X : ndarray of shape (d,) or (d, R)
            One point or R points as columns.
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
        l2 : float, optional
            Return ∇φ(x) + l2·x instead (the ℓ2 penalty's gradient added in the same pass
            by the fused kernels; the same bits as adding ``l2 * X`` afterwards).

        Returns
        -------
        ndarray of the shape of X
            The gradient of the data term at each point.

        Raises
        ------
        MastError
            For a ``dtype`` other than None and float32.
        """
        mixed = dtype is not None and np.dtype(dtype) == np.float32
        if fused.ENABLED and dtype is None:    # one fused pass (core/fused.py), ≤ 1e-12 relative
            return fused.logistic_grad(self.Ab, X, groups=threads if threads > 1 else None, scale=-self.n, l2=l2)
        if l2 is not None:
            return self.grad(X, dtype, threads) + l2 * np.asarray(X)
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
            return np.hstack(list(thread_pool(len(parts)).map(lambda P: self.grad(P, dtype), parts)))
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
        """∇²φ(x)·u for one point x and one direction u (d,) or several (d, k)."""
        w = self.d2loss(self.margins(x))
        AU = self.A @ U
        return self.AT @ (AU * (w if AU.ndim == 1 else w[:, None])) / self.n

    def hessp_batch(self, X, U):
        """Column-wise ∇²φ(x_r)·u_r for X, U of shape (d, R)."""
        w = self.d2loss(self.margins(X))
        return self.AT @ (w * (self.A @ U)) / self.n

    def curvature(self, x):
        """Per-row Hessian weights φ''(z_i)/n at one point x (σ(z)σ(−z)/n for logistic)."""
        return self.d2loss(self.margins(x)) / self.n

    def hessian(self, x, weights=None):
        """Dense ∇²φ(x) (d × d): Aᵀ diag(w) A as one CSR·CSR product (cached CSR copy of Aᵀ).

        ``weights`` (optional) are the per-row weights σ(z)σ(−z)/n at x, if already known.
        """
        w = self.curvature(x) if weights is None else weights
        if self._gram is None:
            self._gram = (sp.csr_matrix(self.AT), np.repeat(np.arange(self.n), np.diff(self.A.indptr)))
        AT, row = self._gram
        B = sp.csr_matrix((self.A.data * w[row], self.A.indices, self.A.indptr), shape=self.A.shape)
        H = AT @ B
        return H.toarray() if sp.issparse(H) else np.asarray(H)

    def hessian_diag(self, x, weights=None):
        """diag ∇²φ(x) = (A ⊙ A)ᵀ w, one sparse product."""
        w = self.curvature(x) if weights is None else weights
        if self._sq_T is None:
            self._sq_T = self.A.multiply(self.A).tocsr().T
        return self._sq_T @ w

    def hvp_at(self, x, weights=None):
        """u ↦ ∇²φ(x)·u for one fixed x (weights computed once; u of shape (d,))."""
        w = self.curvature(x) if weights is None else weights
        return lambda u: self.AT @ (w * (self.A @ u))

    def per_sample_grads(self, x):
        """∇φ_i(x) for every row i, dense (n, d): −b_i σ(−z_i) a_i."""
        c = self.dloss(self.margins(x)) * self.b
        return (sp.diags(c) @ self.A).toarray()

    def per_sample_values(self, x):
        """φ_i(x) = log(1 + exp(−b_i a_iᵀx)) for every row i (shape (n,))."""
        return self.loss(self.margins(x))

    def grad_rows(self, X, rows, cols, weights):
        """Column r: Σ_{k: cols_k = r} weights_k ∇φ_{rows_k}(x_r), for X of shape (d, R)."""
        R = X.shape[1]
        if fused.ENABLED and self.fused_ok:
            return fused.logistic_grad_rows(self.Ab, rows, cols, weights, X)
        Asub = self.Ab[rows]
        z = np.asarray(Asub.multiply(X[:, cols].T).sum(axis=1)).ravel()
        c = self.dloss(z) * weights
        P = sp.csr_matrix((c, (np.arange(rows.size), cols)), shape=(rows.size, R))
        G = Asub.T @ P
        return G.toarray() if sp.issparse(G) else np.asarray(G)

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
        """sup φ''·‖a_i‖² (‖a_i‖²/4 for logistic), the smoothness of each row's term (§3.2)."""
        return self.curvature_bound * self.row_norms_sq()

    def smoothness(self):
        """sup φ''·λ_max(AᵀA)/n ≥ sup_x λ_max(∇²φ(x)) (λ_max(AᵀA)/(4n) for logistic; exact for Squared)."""
        return self.curvature_bound * self.data_norm_sq / self.n

    def hessian_bound(self):
        """sup φ''·AᵀA/n ⪰ ∇²φ(x) for all x (dense d × d; AᵀA/(4n) for logistic, = ∇²φ for Squared)."""
        G = (self.AT @ self.A)
        G = G.toarray() if sp.issparse(G) else np.asarray(G)
        return G * (self.curvature_bound / self.n)


class Squared(Logistic):
    """The squared data term (1/2n)‖Ax − b‖² = (1/n) Σ_i ½(1 − b_i a_iᵀx)² (b_i ∈ {−1, +1}; §2.6).

    Its Hessian AᵀA/n is constant, so :meth:`hessian_bound` and :meth:`smoothness` are exact.

    Parameters
    ----------
    A : sparse matrix of shape (n, d)
        The rows a_i.
    b : ndarray of shape (n,)
        Labels in {−1, +1} (the regression targets).
    """

    curvature_bound = 1.0
    fused_ok = False

    @staticmethod
    def loss(z):
        """φ(z) = ½(1 − z)², elementwise."""
        r = 1.0 - z
        return 0.5 * r * r

    @staticmethod
    def dloss(z):
        """φ'(z) = z − 1, elementwise."""
        return z - 1.0

    @staticmethod
    def d2loss(z):
        """φ''(z) = 1, elementwise."""
        return np.ones_like(z)

    def grad(self, X, dtype=None, threads=1, l2=None):
        """Aᵀ(Ax − b)/n = Abᵀ(z − 1)/n in float64 (``dtype``, ``threads`` accepted, unused),
        plus l2·x when ``l2`` is given."""
        G = self.back(self.margins(X) - 1.0)
        return G if l2 is None else G + l2 * np.asarray(X)
