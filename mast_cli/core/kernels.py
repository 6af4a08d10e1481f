"""The hot loops: sparse products by row blocks, sigmoid and log-loss, column reductions.

numpy/scipy only.  Every reduction is computed per column on contiguous memory, so a
trajectory's numbers do not depend on how many other columns its batch has (bit for bit).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .pools import ForkSafePool

__all__ = ["BLOCK_ELEMS", "col_mean", "col_sum", "col_accuracy", "neg_sigmoid", "logistic_loss",
           "spectral_norm_sq", "thread_pool", "csr_matvec", "csr_matvecs", "csc_matvec", "csc_matvecs"]

try:  # the compiled kernels behind ``A @ B``, called directly to write into reused buffers
    from scipy.sparse._sparsetools import csc_matvec, csc_matvecs, csr_matvec, csr_matvecs
except ImportError:  # pragma: no cover - private scipy module moved: unblocked fallback
    csr_matvecs = csc_matvecs = csr_matvec = csc_matvec = None

#: Elements of the n × R margin array handled per row block by :meth:`mast_cli.core.objective.LogisticObjective.grad`
#: (64 Ki doubles = 512 KiB, so a block stays in L2 between its two products).
BLOCK_ELEMS = 1 << 16

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


#: The numpy path's pool (:func:`thread_pool`); the fused kernels keep their own
#: (:mod:`mast_cli.core.fused`), so a task of one never waits on a full pool of the other.
_POOL = ForkSafePool("mast-grad")


def thread_pool(k):
    """A shared thread pool with at least k workers."""
    return _POOL.get(k)


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
    if sp.issparse(A):
        from . import fused

        if fused.ENABLED:                      # one fused pass (core/fused.py): the same counts
            return fused.sign_counts(A, y, W.reshape(W.shape[0], -1)) / A.shape[0]
    if not sp.issparse(A) or csr_matvecs is None:
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
        csr_matvecs(e - s, d, R, ptr[s:e + 1] - ptr[s], A.indices[ptr[s]:ptr[e]], A.data[ptr[s]:ptr[e]], w, z)
        z = z.reshape(e - s, R)
        z *= y[s:e, None]
        counts += np.count_nonzero(z > 0, axis=0)
    return counts / m


def neg_sigmoid(z):
    """−σ(−z) = −1/(1 + exp(z)), in place on a fresh array (exp overflow gives 0, exactly)."""
    with np.errstate(over="ignore"):
        e = np.exp(z)
    e += 1.0
    np.reciprocal(e, out=e)
    np.negative(e, out=e)
    return e


def logistic_loss(z):
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


