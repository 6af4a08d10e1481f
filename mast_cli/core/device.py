"""The objective's batched pieces, sketch draws, the pool objective and masked accuracy on
an array backend (:mod:`mast_cli.core.backend`).

These mirror, formula for formula, :class:`~mast_cli.core.objective.LogisticObjective`
(margins, ∇f, f), :mod:`mast_cli.core.sketches` (samplers), :class:`~mast_cli.core.pool.PoolObjective`
(f_pool, ∇f_pool) and :func:`~mast_cli.core.evaluation.masked_accuracy`, with ``xp`` in place
of NumPy.  On the ``fake`` backend (NumPy) the objective's values and gradients are the
reference ones bit for bit (same SciPy products, same elementwise formulas); on CUDA they
agree to rounding (cuSPARSE sums in another order).
"""

from __future__ import annotations

import numpy as np

from ..io.errors import MastError
from .fused_device import FusedLogistic, kernel_mode
from .penalties import L2, SmoothNonconvex
from .philox import STREAM_SKETCH, normals, uniforms

__all__ = ["DeviceObjective", "DeviceSketches", "DevicePool", "device_masked_accuracy", "objective_bytes",
           "DEVICE_SKETCHES", "DEVICE_OBJECTIVES"]

#: Objectives (logistic data term, L2 or smooth non-convex penalty) the device evaluates.
DEVICE_OBJECTIVES = ("logreg", "logreg-nonconvex")
#: Sketch families the device draws (others are refused with a one-line error).
DEVICE_SKETCHES = ("identity", "bernoulli", "dropout-unscaled", "gaussian", "rand-k", "perm-k", "pool")


def objective_bytes(obj, itemsize=8):
    """Device bytes of a :class:`DeviceObjective` of ``obj`` (Ab and its transpose, labels)."""
    nnz = obj.Ab.nnz
    return 2 * (nnz * (itemsize + 4) + (obj.n + 1) * 4 + (obj.d + 1) * 4) + 8 * obj.n


class DeviceObjective:
    """f = (1/n) Σ log(1 + exp(−b_i a_iᵀx)) + r(x) with the data on a backend.

    Parameters
    ----------
    obj : LogisticObjective
        The CPU objective (its ``Ab``, ``n``, ``d``, ``penalty``).
    backend : Backend
    dtype : numpy.float64 or numpy.float32, default float64
        Precision of the data products (margins, sigmoids, Aᵀw).  Iterates stay float64;
        float32 is a fast mode whose gradients carry ~1e-7 relative error.
    kernel : {'auto', 'fused', 'cusparse'}, optional
        How :meth:`grad` computes Abᵀ(−σ(−Ab X)): the fused CUDA kernel
        (:mod:`mast_cli.core.fused_device`) or cuSPARSE products (the reference); default
        ``MAST_DEVICE_KERNEL`` or ``auto`` (fused on CUDA when it fits shared memory).

    Raises
    ------
    MastError
        For an objective without the logistic ``Ab`` data term (e.g. another data term), an
        unknown ``kernel``, or ``fused`` forced where it does not fit.
    """

    def __init__(self, obj, backend, dtype=np.float64, kernel=None):
        name = getattr(obj, "name", type(obj).__name__)
        if name not in DEVICE_OBJECTIVES or not hasattr(obj, "Ab") or \
                not isinstance(obj.penalty, (L2, SmoothNonconvex)):
            raise MastError(f"objective '{name}' is not available on the device; "
                            f"choose one of {', '.join(DEVICE_OBJECTIVES)}")
        self.obj, self.backend, self.xp = obj, backend, backend.xp
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float64, np.float32):
            raise MastError(f"device dtype {dtype} is not supported (float64 or float32)")
        self.n, self.d = obj.n, obj.d
        self.penalty = obj.penalty
        self.Ab = backend.csr(obj.Ab, self.dtype)
        self.AbT = backend.csr(obj.Ab.T, self.dtype) if backend.is_gpu else self.Ab.T
        self.kernel_mode = kernel_mode(kernel)
        self.fused = FusedLogistic.create(self.Ab, backend, self.dtype, self.kernel_mode)

    @property
    def kernel(self):
        """'fused' or 'cusparse': the path :meth:`grad` takes."""
        return "fused" if self.fused is not None else "cusparse"

    def cast(self, X):
        """X in the dtype of the data products (a no-op in float64)."""
        return X if self.dtype == np.float64 else X.astype(self.dtype)

    def margins(self, X):
        """z = b ⊙ (A X), shape (n, R), in the objective's dtype."""
        return self.Ab @ self.cast(X)

    def neg_sigmoid(self, z):
        """−σ(−z) = −1/(1 + eᶻ) on a fresh array (as :func:`mast_cli.core.kernels.neg_sigmoid`)."""
        xp = self.xp
        e = xp.exp(z)          # overflow gives inf, then −1/inf = −0, as on the CPU
        e += 1.0
        xp.reciprocal(e, out=e)
        xp.negative(e, out=e)
        return e

    def grad(self, X):
        """∇f at each column of X (d, R): −(1/n) Abᵀ σ(−Ab X) + ∇r(X), float64."""
        if self.fused is not None:
            return self.fused(X) / self.n + self.penalty.grad(X)
        W = self.neg_sigmoid(self.margins(X))
        G = self.AbT @ W
        if G.dtype != np.float64:
            G = G.astype(np.float64)
        return G / self.n + self.penalty.grad(X)

    def _col_mean(self, M):
        xp = self.xp
        if not self.backend.is_gpu:        # the reference's batch-independent reduction
            return np.add.reduce(np.ascontiguousarray(M.T), axis=1) / M.shape[0]
        return xp.mean(M, axis=0)

    def _col_sum(self, M):
        if not self.backend.is_gpu:
            return np.add.reduce(np.ascontiguousarray(M.T), axis=1)
        return self.xp.sum(M, axis=0)

    def _loss(self, z):
        return self.xp.logaddexp(0.0, -z)

    def _pen_value(self, X):
        if self.backend.is_gpu:         # penalties reduce with NumPy's col_sum: do it here
            if isinstance(self.penalty, L2):
                return 0.5 * self.penalty.lam * self._col_sum(X * X)
            X2 = X * X
            return self.penalty.lam * self._col_sum(X2 / (1.0 + X2))
        return self.penalty.value(X)

    def value(self, X):
        """f at each column of X (d, R): array (R,), float64."""
        f = self._col_mean(self._loss(self.margins(X)))
        return f.astype(np.float64) + self._pen_value(X)

    def value_grad(self, X):
        """(f, ∇f) at each column of X, sharing the product A·X."""
        z = self.margins(X)
        val = self._col_mean(self._loss(z)).astype(np.float64) + self._pen_value(X)
        G = self.AbT @ self.neg_sigmoid(z)
        if G.dtype != np.float64:
            G = G.astype(np.float64)
        return val, G / self.n + self.penalty.grad(X)

    def loss_mean(self, z):
        """(1/n) Σ_i log(1 + exp(−z_i)) per column of margins z (n, R): (R,), float64."""
        return self._col_mean(self._loss(z)).astype(np.float64)

    def penalty_value(self, X):
        """r at each column of X (d, R): (R,)."""
        return self._pen_value(X)

    def col_sum(self, M):
        """Column sums of a (k, R) device array: (R,)."""
        return self._col_sum(M)


class DeviceSketches:
    """Draws one sketch per trajectory per step from Philox streams keyed by its seed.

    Parameters
    ----------
    sketches : list of Sketch, length R
        Each trajectory's distribution (any mix of :data:`DEVICE_SKETCHES`).
    keys : (k0, k1)
        Philox keys of the R trajectories (:func:`mast_cli.core.philox.seed_keys`).
    backend : Backend

    Raises
    ------
    MastError
        For a sketch family the device does not draw.
    """

    def __init__(self, sketches, keys, backend):
        self.backend, self.xp = backend, backend.xp
        self.d = sketches[0].d
        self.R = len(sketches)
        groups = {}
        for r, sk in enumerate(sketches):
            if sk.name not in DEVICE_SKETCHES:
                raise MastError(f"sketch '{sk.name}' is not available on the device; "
                                f"choose one of {', '.join(DEVICE_SKETCHES)}")
            groups.setdefault(id(sk), (sk, []))[1].append(r)
        xp = self.xp
        self.groups = []
        for sk, cols in groups.values():
            cols = np.asarray(cols)
            sub = (keys[0][xp.asarray(cols)], keys[1][xp.asarray(cols)]) if len(groups) > 1 else keys
            self.groups.append((sk, xp.asarray(cols), sub, self._params(sk)))
        self.identity = all(sk.name == "identity" for sk, *_ in self.groups)

    def _params(self, sk):
        xp = self.xp
        if sk.name in ("bernoulli", "dropout-unscaled"):
            return {"p": xp.asarray(sk.p)[:, None]}
        if sk.name == "gaussian":
            return {"sigma": xp.asarray(sk.sigma)[:, None]}
        if sk.name == "perm-k":
            return {"off": xp.asarray(sk.offsets), "scale": xp.asarray(sk.d / sk.q)}
        if sk.name == "pool":
            return {"S": xp.asarray(sk.S), "cdf": xp.asarray(np.cumsum(sk.weights))}
        return {}

    def _draw(self, sk, keys, par, t, stream):
        xp, d = self.xp, self.d
        R = keys[0].shape[0]
        if sk.name == "identity":
            return xp.ones((d, R))
        if sk.name in ("bernoulli", "dropout-unscaled"):
            keep = uniforms(xp, keys, t, stream, d) < par["p"]
            return keep.astype(xp.float64) if sk.name == "dropout-unscaled" else keep / par["p"]
        if sk.name == "gaussian":
            return 1.0 + par["sigma"] * normals(xp, keys, t, stream, d)
        if sk.name == "rand-k":
            if sk.k == d:
                return xp.ones((d, R))
            U = uniforms(xp, keys, t, stream, d)
            kth = xp.partition(U, sk.k - 1, axis=0)[sk.k - 1]
            return (U <= kth[None, :]) * (d / sk.k)
        if sk.name == "perm-k":
            U = uniforms(xp, keys, t, stream, d + 1)
            ranks = xp.argsort(xp.argsort(U[:d], axis=0), axis=0)
            w = xp.minimum((U[d] * sk.M).astype(xp.int64), sk.M - 1)
            lo, hi = par["off"][w][None, :], par["off"][w + 1][None, :]
            return xp.where((ranks >= lo) & (ranks < hi), par["scale"][w][None, :], 0.0)
        # pool: index j with P(j) = w_j by inverse CDF of one uniform
        u = uniforms(xp, keys, t, stream, 1)[0]
        j = xp.minimum(xp.searchsorted(par["cdf"], u, side="right"), par["S"].shape[0] - 1)
        return par["S"][j].T

    def draw(self, t, stream=STREAM_SKETCH):
        """The step-t sketches of all trajectories: array (d, R) of diagonals."""
        if len(self.groups) == 1:
            sk, _, keys, par = self.groups[0]
            return self._draw(sk, keys, par, t, stream)
        out = self.xp.empty((self.d, self.R))
        for sk, cols, keys, par in self.groups:
            out[:, cols] = self._draw(sk, keys, par, t, stream)
        return out


class DevicePool:
    """f_pool and ∇f_pool (mast-theory §3.3) on a backend, for R points at once.

    f_pool(x) = Σ_j w_j f(v + s_j ⊙ (x − v)),  ∇f_pool(x) = Σ_j w_j s_j ⊙ ∇f(y_j).

    The N sketches are taken ``per`` at a time so that the (n, per·R) margins fit memory.

    Parameters
    ----------
    dobj : DeviceObjective
    S : ndarray (N, d)
    v : ndarray (d,)
    weights : ndarray (N,), optional (uniform)
    """

    def __init__(self, dobj, S, v, weights=None, per=None):
        xp = dobj.xp
        self.dobj, self.xp = dobj, xp
        S = np.asarray(S, dtype=np.float64)
        self.N = S.shape[0]
        self.S = xp.asarray(S)
        self.v = xp.asarray(np.asarray(v, dtype=np.float64).reshape(-1))[:, None]
        w = np.full(self.N, 1.0 / self.N) if weights is None else np.asarray(weights, dtype=np.float64)
        self.w = w
        self.per = per or self.N

    def _blocks(self):
        for a in range(0, self.N, self.per):
            yield a, min(self.N, a + self.per)

    def grad(self, X):
        """∇f_pool (d, R) at each column of X (device arrays)."""
        return self.value_grad(X)[1]

    def value_grad(self, X):
        """(f_pool (R,), ∇f_pool (d, R)) at each column of X (device arrays)."""
        xp = self.xp
        R = X.shape[1]
        val = xp.zeros(R)
        G = xp.zeros_like(X)
        D = X - self.v
        for a, b in self._blocks():
            S = self.S[a:b]                                          # (k, d)
            Y = (self.v[None] + S[:, :, None] * D[None]).transpose(1, 0, 2).reshape(X.shape[0], -1)
            f, g = self.dobj.value_grad(Y)
            k = b - a
            f = f.reshape(k, R)
            g = g.reshape(X.shape[0], k, R)
            for i in range(k):               # weights on the host: exact, batch-independent sums
                wi = float(self.w[a + i])
                val += wi * f[i]
                G += wi * (S[i][:, None] * g[:, i])
        return val, G


def device_masked_accuracy(backend, Xs, y, x_hat, v, S, per=None):
    """Test accuracy of the R masked models v + S_r(x̂ − v): the device twin of
    :func:`mast_cli.core.evaluation.masked_accuracy` (one product X·W per block of masks).

    Parameters
    ----------
    backend : Backend
    Xs : sparse (m, d), host or already on the backend
    y : ndarray (m,) labels in {−1, +1}
    x_hat, v : ndarray (d,)
    S : ndarray (R, d) mask diagonals (host)
    per : int, optional
        Masks per product (memory); all at once by default.

    Returns
    -------
    ndarray (R,) on the host
    """
    xp = backend.xp
    A = Xs
    if backend.is_gpu and not backend.sparse.issparse(Xs):
        A = backend.csr(Xs)
    yd = xp.asarray(np.asarray(y, dtype=np.float64))[:, None]
    xh = xp.asarray(np.asarray(x_hat, dtype=np.float64))[:, None]
    vv = xp.asarray(np.asarray(v, dtype=np.float64))[:, None]
    S = np.asarray(S, dtype=np.float64)
    R = S.shape[0]
    per = per or R
    out = np.empty(R)
    m = A.shape[0]
    for a in range(0, R, per):
        b = min(R, a + per)
        W = vv + xp.asarray(S[a:b]).T * (xh - vv)
        z = (A @ W) * yd
        out[a:b] = backend.to_host(xp.count_nonzero(z > 0, axis=0)) / m
    return out
