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
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.special import expit

from .errors import MastError

try:  # the compiled kernels behind ``A @ B``, called directly to write into reused buffers
    from scipy.sparse._sparsetools import csc_matvec as _csc_matvec
    from scipy.sparse._sparsetools import csc_matvecs as _csc_matvecs
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover - private scipy module moved: unblocked fallback
    _csr_matvecs = _csc_matvecs = _csr_matvec = _csc_matvec = None

#: Elements of the n × R margin array handled per row block by :meth:`_Logistic.grad`
#: (64 Ki doubles = 512 KiB, so a block stays in L2 between its two products).
BLOCK_ELEMS = 1 << 16

__all__ = [
    "LogisticL2",
    "LogisticNonconvex",
    "make_objective",
    "OBJECTIVES",
    "spectral_norm_sq",
    "solve_erm",
    "minimize_newton",
    "armijo_step",
    "per_sample_inf",
    "col_mean",
    "col_sum",
    "col_accuracy",
]


def col_mean(M):
    """Mean over axis 0, computed per column on contiguous memory.

    The result for one column does not depend on how many other columns the
    batch has (bit for bit), which keeps a trajectory's numbers independent of
    the batch it ran in.
    """
    if M.ndim == 1:
        return np.add.reduce(M) / M.shape[0]
    return np.add.reduce(np.ascontiguousarray(M.T), axis=1) / M.shape[0]


def col_sum(M):
    """Sum over axis 0 with the same batch-independence as :func:`col_mean`."""
    if M.ndim == 1:
        return np.add.reduce(M)
    return np.add.reduce(np.ascontiguousarray(M.T), axis=1)


_POOL = None


def _pool(k):
    """A shared thread pool with at least k workers."""
    global _POOL
    if _POOL is None or _POOL._max_workers < k:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=k, thread_name_prefix="mast-grad")
    return _POOL


def col_accuracy(A, y, W):
    """Fraction of rows i with y_i (A W)_{ir} > 0, for every column r of W.

    Equal, bit for bit, to ``col_mean(((A @ W) * y[:, None] > 0).astype(float))``, but
    computed in row blocks of about :data:`BLOCK_ELEMS` entries, so the m × R margins
    are never materialized (several times faster for R in the hundreds).

    Parameters
    ----------
    A : sparse (m, d); y : ndarray (m,); W : ndarray (d, R)

    Returns
    -------
    ndarray (R,)
    """
    W = np.ascontiguousarray(W, dtype=np.float64)
    if not sp.issparse(A) or _csr_matvecs is None:
        return col_mean(((A @ W) * y[:, None] > 0).astype(np.float64))
    A = sp.csr_matrix(A, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    (m, d), R = A.shape, W.shape[1]
    rows = max(16, BLOCK_ELEMS // max(R, 1))
    counts = np.zeros(R, dtype=np.int64)
    buf = np.empty(rows * R)
    ptr, w = A.indptr, W.reshape(-1)
    for s in range(0, m, rows):
        e = min(s + rows, m)
        z = buf[:(e - s) * R]
        z.fill(0.0)
        _csr_matvecs(e - s, d, R, ptr[s:e + 1] - ptr[s], A.indices[ptr[s]:ptr[e]], A.data[ptr[s]:ptr[e]], w, z)
        z = z.reshape(e - s, R)
        z *= y[s:e, None]
        counts += np.count_nonzero(z > 0, axis=0)
    return counts / m


def _neg_sigmoid(z):
    """−σ(−z) = −1/(1 + exp(z)), in place on a fresh array (exp overflow gives 0, exactly)."""
    with np.errstate(over="ignore"):
        e = np.exp(z)
    e += 1.0
    np.reciprocal(e, out=e)
    np.negative(e, out=e)
    return e


def _logistic_loss(z):
    """log(1 + exp(−z)), stable for any z."""
    return np.logaddexp(0.0, -z)


def spectral_norm_sq(A):
    """λ_max(AᵀA) for a sparse or dense A (dense eigensolver when d ≤ 1000, else ARPACK)."""
    d = A.shape[1]
    if d <= 1000:
        G = (A.T @ A)
        G = G.toarray() if sp.issparse(G) else np.asarray(G)
        return float(np.linalg.eigvalsh(G)[-1])
    op = spla.LinearOperator((d, d), matvec=lambda u: A.T @ (A @ u), dtype=np.float64)
    return float(spla.eigsh(op, k=1, which="LA", return_eigenvectors=False, tol=1e-10)[0])


class _Logistic:
    """Shared logistic datafit; subclasses add the penalty r(x)."""

    name = "logreg"
    #: True when f is μ-strongly convex with μ = self.mu > 0 (or convex with μ = 0).
    convex = True

    def __init__(self, A, b, lam=1e-3):
        if not np.isfinite(lam) or lam < 0:
            raise MastError(f"lambda {lam} must be a finite number >= 0")
        self.A = sp.csr_matrix(A, dtype=np.float64)
        self.b = np.asarray(b, dtype=np.float64)
        self.lam = float(lam)
        self.n, self.d = self.A.shape
        # Rows pre-multiplied by their labels: z = Ab·x, ∇ = Abᵀ w / n.  The transpose is
        # a CSC view, whose product with a dense block is several times faster than a
        # CSR copy of Aᵀ (it scatters into the small d × R output).
        self._Ab = sp.csr_matrix(sp.diags(self.b) @ self.A)
        self._AbT = self._Ab.T
        self._AT = self.A.T
        self._norm_sq = None
        self._blocks = {}
        self._gram = self._sq_T = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_blocks"] = {}          # caches: rebuilt on demand, never pickled
        state["_gram"] = state["_sq_T"] = None
        return state

    # --- penalty (overridden) ---------------------------------------------------
    def _pen(self, X):
        raise NotImplementedError

    def _pen_grad(self, X):
        raise NotImplementedError

    def _pen_hess_diag(self, X):
        raise NotImplementedError

    # --- datafit ----------------------------------------------------------------
    def margins(self, X):
        """z = b ⊙ (A x), shape (n,) or (n, R)."""
        return self._Ab @ X

    def _back(self, W):
        """Aᵀ(b ⊙ W) / n for W of shape (n,) or (n, R)."""
        return (self._AbT @ W) / self.n

    def value(self, X):
        """f(x) (float) or f at each column of X (shape (R,))."""
        return col_mean(_logistic_loss(self.margins(X))) + self._pen(X)

    def value_grad(self, X):
        """(f, ∇f) at x or at each column of X, sharing the product A·X."""
        z = self.margins(X)
        val = col_mean(_logistic_loss(z)) + self._pen(X)
        grad = self._back(_neg_sigmoid(z)) + self._pen_grad(X)
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
        return self._data_grad(X, dtype, threads) + self._pen_grad(X)

    def _row_blocks(self, R, dtype):
        """(m, indptr, indices, data) of consecutive row blocks of Ab, ≈ BLOCK_ELEMS/R rows each."""
        rows = max(16, BLOCK_ELEMS // max(R, 1))
        key = (rows, np.dtype(dtype).char)
        if key not in self._blocks:
            if len(self._blocks) > 16:
                self._blocks.clear()
            A = self._Ab
            data = A.data if key[1] == "d" else A.data.astype(dtype)
            ptr = A.indptr
            self._blocks[key] = [
                (min(s + rows, self.n) - s, ptr[s:s + rows + 1] - ptr[s], A.indices[ptr[s]:ptr[min(s + rows, self.n)]],
                 data[ptr[s]:ptr[min(s + rows, self.n)]])
                for s in range(0, self.n, rows)]
        return rows, self._blocks[key]

    def _data_grad(self, X, dtype=None, threads=1):
        """−(1/n) Abᵀ σ(−Ab X), row block by row block so the n × R margins stay in cache.

        Bit for bit equal to ``self._back(_neg_sigmoid(self.margins(X)))`` in float64:
        a block's margins come from the same kernel as the full product A·X, and the
        transposed product accumulates the blocks, in row order, into one output, as
        the full CSC product does.  The kernels get 1/(1 + eᶻ) and the sign goes into
        the final division (IEEE rounding is sign-symmetric, so the bits agree).
        """
        mixed = dtype is not None and np.dtype(dtype) == np.float32
        if _csr_matvecs is None or (dtype is not None and not mixed):
            if dtype is not None and not mixed:
                raise MastError(f"gradient dtype {dtype} is not supported (None or float32)")
            return self._back(_neg_sigmoid(self.margins(X)))
        one = X.ndim == 1
        Y = np.ascontiguousarray(X.reshape(self.d, -1), dtype=np.float32 if mixed else np.float64)
        R = Y.shape[1]
        if threads > 1 and R >= 2:
            cuts = np.linspace(0, R, min(threads, R) + 1).astype(int)
            parts = [Y[:, a:b] for a, b in zip(cuts[:-1], cuts[1:])]
            return np.hstack(list(_pool(len(parts)).map(lambda P: self._data_grad(P, dtype), parts)))
        rows, blocks = self._row_blocks(R, Y.dtype)
        blocks64 = self._row_blocks(R, np.float64)[1] if mixed else blocks
        G = np.zeros((self.d, R))
        buf = np.empty(rows * R, dtype=Y.dtype)
        buf64 = np.empty(rows * R) if mixed else buf
        y, g, d = Y.reshape(-1), G.reshape(-1), self.d
        # one column: the single-vector kernels (same operations in the same order as the
        # multi-vector ones, so the same bits, and 2-4x faster than them at R = 1)
        fwd = ((lambda m, p, i, v, a, o: _csr_matvec(m, d, p, i, v, a, o)) if R == 1
               else (lambda m, p, i, v, a, o: _csr_matvecs(m, d, R, p, i, v, a, o)))
        bwd = ((lambda m, p, i, v, a, o: _csc_matvec(d, m, p, i, v, a, o)) if R == 1
               else (lambda m, p, i, v, a, o: _csc_matvecs(d, m, R, p, i, v, a, o)))
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
        h = self._pen_hess_diag(x)
        return out + (h * U if U.ndim == 1 else h[:, None] * U)

    def hessp_batch(self, X, U):
        """Column-wise ∇²f(x_r)·u_r for X, U of shape (d, R)."""
        z = self.margins(X)
        w = expit(z) * expit(-z)
        return self._AT @ (w * (self.A @ U)) / self.n + self._pen_hess_diag(X) * U

    def _curvature(self, x):
        """Per-row Hessian weights σ(z)σ(−z)/n at one point x."""
        z = self.margins(x)
        return expit(z) * expit(-z) / self.n

    def hessian(self, x, weights=None):
        """Dense ∇²f(x) (d × d): Aᵀ diag(w) A as one CSR·CSR product (cached CSR copy of Aᵀ).

        ``weights`` (optional) are the per-row weights σ(z)σ(−z)/n at x, if already known.
        """
        w = self._curvature(x) if weights is None else weights
        if self._gram is None:
            self._gram = (sp.csr_matrix(self._AT), np.repeat(np.arange(self.n), np.diff(self.A.indptr)))
        AT, row = self._gram
        B = sp.csr_matrix((self.A.data * w[row], self.A.indices, self.A.indptr), shape=self.A.shape)
        H = AT @ B
        H = H.toarray() if sp.issparse(H) else np.asarray(H)
        H[np.diag_indices(self.d)] += self._pen_hess_diag(x)
        return H

    def hessian_diag(self, x, weights=None):
        """diag ∇²f(x) = (A ⊙ A)ᵀ w + diag ∇²r(x), one sparse product."""
        w = self._curvature(x) if weights is None else weights
        if self._sq_T is None:
            self._sq_T = self.A.multiply(self.A).tocsr().T
        return self._sq_T @ w + self._pen_hess_diag(x)

    def hvp_at(self, x, weights=None):
        """u ↦ ∇²f(x)·u for one fixed x (weights computed once; u of shape (d,))."""
        w = self._curvature(x) if weights is None else weights
        h = self._pen_hess_diag(x)
        return lambda u: self._AT @ (w * (self.A @ u)) + h * u

    def per_sample_grads(self, x):
        """∇f_i(x) for every row i, dense (n, d): −b_i σ(−z_i) a_i + ∇r(x)."""
        c = _neg_sigmoid(self.margins(x)) * self.b
        G = sp.diags(c) @ self.A
        return G.toarray() + self._pen_grad(x)[None, :]

    def per_sample_values(self, x):
        """f_i(x) for every row i (shape (n,))."""
        return _logistic_loss(self.margins(x)) + self._pen(x)

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
        Asub = self._Ab[rows]
        z = np.asarray(Asub.multiply(X[:, cols].T).sum(axis=1)).ravel()
        c = _neg_sigmoid(z) * weights
        P = sp.csr_matrix((c, (np.arange(rows.size), cols)), shape=(rows.size, R))
        G = Asub.T @ P
        G = G.toarray() if sp.issparse(G) else np.asarray(G)
        return G + self._pen_grad(X)

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
        return self.row_norms_sq() / 4.0 + self._pen_smoothness()

    def smoothness(self):
        """L_f = λ_max(AᵀA)/(4n) + L_r, an upper bound on sup_x λ_max(∇²f(x))."""
        return self.data_norm_sq / (4.0 * self.n) + self._pen_smoothness()

    def hessian_bound(self):
        """H = AᵀA/(4n) + L_r·I ⪰ ∇²f(x) for all x (dense d × d)."""
        G = (self._AT @ self.A)
        G = G.toarray() if sp.issparse(G) else np.asarray(G)
        H = G / (4.0 * self.n)
        H[np.diag_indices(self.d)] += self._pen_smoothness()
        return H

    def with_rows(self, rows):
        """The same objective restricted to a subset of rows (e.g. one worker's data)."""
        return type(self)(self.A[rows], self.b[rows], self.lam)


class LogisticL2(_Logistic):
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

    @property
    def mu(self):
        """Strong-convexity constant μ_f = λ."""
        return self.lam

    def _pen(self, X):
        return 0.5 * self.lam * col_sum(X * X)

    def _pen_grad(self, X):
        return self.lam * X

    def _pen_hess_diag(self, X):
        return np.full(X.shape, self.lam)

    def _pen_smoothness(self):
        return self.lam


class LogisticNonconvex(_Logistic):
    """Logistic loss + λ Σ_j x_j²/(1 + x_j²): non-convex, f ≥ 0, L = λ_max(AᵀA)/(4n) + 2λ.

    The penalty's second derivative 2λ(1 − 3x²)/(1 + x²)³ lies in [−λ/2, 2λ].
    """

    name = "logreg-nonconvex"
    convex = False
    mu = 0.0

    def _pen(self, X):
        X2 = X * X
        return self.lam * col_sum(X2 / (1.0 + X2))

    def _pen_grad(self, X):
        return 2.0 * self.lam * X / (1.0 + X * X) ** 2

    def _pen_hess_diag(self, X):
        X2 = X * X
        return 2.0 * self.lam * (1.0 - 3.0 * X2) / (1.0 + X2) ** 3

    def _pen_smoothness(self):
        return 2.0 * self.lam


OBJECTIVES = {"logreg": LogisticL2, "logreg-nonconvex": LogisticNonconvex}


def make_objective(name, A, b, lam=1e-3):
    """Build an objective by name (``logreg`` or ``logreg-nonconvex``)."""
    if name not in OBJECTIVES:
        raise MastError(f"unknown objective '{name}'; choose one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name](A, b, lam)


# --- solvers ---------------------------------------------------------------------

def armijo_step(value_grad, x, f, g, gn, p):
    """Backtracking (Armijo) line search along the Newton direction ``p``.

    Halves the step from 1 until f(x + t p) ≤ f(x) + 10⁻⁴ t ∇f(x)ᵀp, or, at the
    rounding floor of f, until the gradient norm decreases without f increasing
    by more than 10⁻¹⁴|f|.  Shared by every Newton solver of the package.

    Returns
    -------
    (x_new, f_new, g_new, ‖g_new‖) or None when no step above 10⁻¹² is accepted.
    """
    slope = float(g @ p)
    step = 1.0
    while step > 1e-12:
        xn = x + step * p
        fn, gnew = value_grad(xn)
        gnn = float(np.linalg.norm(gnew))
        if fn <= f + 1e-4 * step * slope or (gnn < gn and fn <= f + 1e-14 * abs(f)):
            return xn, fn, gnew, gnn
        step *= 0.5
    return None


def minimize_newton(value_grad, hess, x0, tol=1e-12, max_iter=200):
    """Damped Newton's method with a gradient-norm stopping rule.

    Parameters
    ----------
    value_grad : callable x -> (f, ∇f)
    hess : callable x -> ndarray (d, d) or scipy LinearOperator
        Dense Hessians are factorized (Cholesky, with a shift if not positive
        definite); operators are solved inexactly by conjugate gradients.
    x0 : ndarray (d,)
    tol : float, default=1e-12
        Stop when ‖∇f(x)‖ ≤ tol.
    max_iter : int

    Returns
    -------
    x : ndarray (d,)
    info : dict with ``grad_norm``, ``iterations``, ``converged``.
    """
    x = np.array(x0, dtype=np.float64)
    f, g = value_grad(x)
    gn = float(np.linalg.norm(g))
    it = 0
    for it in range(1, max_iter + 1):
        if gn <= tol:
            it -= 1
            break
        H = hess(x)
        if isinstance(H, np.ndarray):
            p = -scipy.linalg.cho_solve(_cholesky(H), g)
        else:
            rtol = min(0.5, np.sqrt(gn))
            p, _ = spla.cg(H, -g, rtol=rtol, maxiter=10 * len(x))
        accepted = armijo_step(value_grad, x, f, g, gn, p)
        if accepted is None:
            break
        x, f, g, gn = accepted
    return x, {"grad_norm": gn, "iterations": it, "converged": gn <= tol, "value": float(f)}


def solve_erm(obj, tol=1e-12, x0=None, max_iter=200):
    """Exact ERM solution x* = argmin f by Newton's method.

    Convex objectives with d ≤ 3000: inexact Newton with preconditioned CG (one or two
    dense Hessians per solve, :func:`_newton_pcg`); otherwise :func:`minimize_newton`
    on the dense Hessian (d ≤ 3000) or on Hessian-vector products.

    Reaches ‖∇f(x*)‖ ≤ ``tol`` (1e-12 by default) on LIBSVM data; for the
    non-convex objective it returns a local minimizer (shifted Newton).

    Returns
    -------
    x_star : ndarray (d,)
    info : dict (``value`` = f(x*), ``grad_norm``, ``iterations``, ``converged``)
    """
    x0 = np.zeros(obj.d) if x0 is None else x0
    if obj.d <= 3000 and getattr(obj, "convex", False) and hasattr(obj, "hvp_at"):
        if obj.d < 128:     # OpenBLAS factors such sizes on one thread anyway
            return _newton_pcg(obj, x0, tol=tol, max_iter=max_iter)
        # one BLAS thread: a threaded d × d Cholesky is no faster at these sizes, and on a
        # busy machine its second thread can stall it 100-fold (benchmarks/README.md)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="blas"):
            return _newton_pcg(obj, x0, tol=tol, max_iter=max_iter)
    if obj.d <= 3000:
        hess = obj.hessian
    else:
        def hess(x):
            return spla.LinearOperator((obj.d, obj.d), matvec=lambda u: obj.hessp(x, u),
                                       dtype=np.float64)
    return minimize_newton(obj.value_grad, hess, x0, tol=tol, max_iter=max_iter)


def _cholesky(H, rel_shift=1e-8):
    """Cholesky factor of H, shifted by a multiple of I until positive definite.

    The first shift is ``rel_shift``·max(1, max|H_ij|), doubled until the
    factorization succeeds (non-convex objectives)."""
    shift = 0.0
    while True:
        try:
            return scipy.linalg.cho_factor(H + shift * np.eye(len(H)) if shift else H)
        except np.linalg.LinAlgError:
            shift = max(2 * shift, rel_shift * max(1.0, float(np.abs(H).max())))


def _pcg(hv, b, precond, rtol, maxiter):
    """Preconditioned conjugate gradients on H p = b (H given by products ``hv``).

    ``precond(r)`` applies M⁻¹.  Returns p with ‖H p − b‖ ≤ rtol‖b‖, or None when that
    takes more than ``maxiter`` iterations or H shows a direction of non-positive
    curvature.  Started from p = 0, every iterate is a descent direction for −b.
    """
    p = np.zeros_like(b)
    r = b.copy()
    z = precond(r)
    d, rz, bound = z.copy(), float(r @ z), rtol * float(np.linalg.norm(b))
    for _ in range(maxiter):
        Hd = hv(d)
        curv = float(d @ Hd)
        if not curv > 0:
            return None
        alpha = rz / curv
        p += alpha * d
        r -= alpha * Hd
        if float(np.linalg.norm(r)) <= bound:
            return p
        z = precond(r)
        rz, rz_old = float(r @ z), rz
        d = z + (rz / rz_old) * d
    return None


def _newton_pcg(obj, x0, tol=1e-12, max_iter=200, max_cg=30, switch=1e-2):
    """Damped inexact Newton for a convex objective whose Hessian fits in memory.

    The Newton system ∇²f(x_k) p = −∇f(x_k) is solved by conjugate gradients on exact
    Hessian-vector products (two sparse products each):

    * far from x* (until ‖∇f‖ ≤ ``switch``·‖∇f(x⁰)‖, at most 4 steps): Jacobi
      preconditioner, forcing term min(0.5, √‖∇f‖), as Newton-CG solvers do;
    * then: the Cholesky factor of the Hessian at one iterate preconditions every later
      system (forcing term min(0.1, ‖∇f‖), quadratic convergence, relaxed to
      1e-3·tol/‖∇f‖ since the next gradient is about the Newton residual).  The factor
      is rebuilt only when PCG needs more than ``max_cg`` iterations: one PCG iteration
      costs two sparse products, a Hessian about as much as 30-40 of them.

    Steps are accepted by the Armijo test of :func:`minimize_newton`.  One or two
    Hessians serve a whole solve (the old solver built one per step).
    """
    x = np.array(x0, dtype=np.float64)
    f, g = obj.value_grad(x)
    gn = g0 = float(np.linalg.norm(g))
    fac, it, factorizations, hvps = None, 0, 0, 0

    def counted(hv):
        def run(u):
            nonlocal hvps
            hvps += 1
            return hv(u)
        return run

    for it in range(1, max_iter + 1):
        if gn <= tol:
            it -= 1
            break
        w = obj._curvature(x)
        hv = counted(obj.hvp_at(x, w))
        p = None
        if fac is None and gn > switch * g0 and it <= 4:
            diag = obj.hessian_diag(x, w)
            diag = np.where(diag > 0, diag, 1.0)     # λ = 0 and an all-zero column: no scaling
            p = _pcg(hv, -g, lambda r: r / diag, min(0.5, np.sqrt(gn)), 2 * max_cg)
        elif fac is not None:
            p = _pcg(hv, -g, lambda r: scipy.linalg.cho_solve(fac, r),
                     max(min(0.1, gn), 1e-3 * tol / gn), max_cg)
        if p is None:
            fac = _cholesky(obj.hessian(x, w))
            factorizations += 1
            p = -scipy.linalg.cho_solve(fac, g)
        accepted = armijo_step(obj.value_grad, x, f, g, gn, p)
        if accepted is None:
            break
        x, f, g, gn = accepted
    return x, {"grad_norm": gn, "iterations": it, "converged": gn <= tol, "value": float(f),
               "factorizations": factorizations, "hessian_products": hvps}


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
    vals = _logistic_loss(t * r) + 0.5 * lam * t * t * r
    return vals, float(vals.mean())
