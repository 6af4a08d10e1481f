"""D_pool, an empirical sketch distribution, and f_pool, the MAST objective on it.

(mast-theory §3.3–3.4, §8)  f_D(x) = E_{S~D} f(v + S(x − v)) has no closed form for
logistic f, so it is replaced by a finite distribution over diagonals s_1..s_N with
probabilities w_1..w_N:

    f_pool(x)  = Σ_j w_j f(y_j),              y_j = v + s_j ⊙ (x − v),
    ∇f_pool(x) = Σ_j w_j s_j ⊙ ∇f(y_j),
    ∇²f_pool(x) = Σ_j w_j Diag(s_j) ∇²f(y_j) Diag(s_j).

Two cases:

* **exact enumeration** (small supports, tiny d): (s_j, w_j) = ``sketch.enumerate()``, so
  f_pool = f_D exactly;
* **sample-average approximation** (SAA): N i.i.d. draws of D with w_j = 1/N.

All columns y_j of one evaluation are one (d, N) array: one product A·Y per value or
gradient, one A·U and one Aᵀ·W per Hessian-vector product (``obj.hessp_batch``).

:class:`EmpiricalSketch` wraps a pool as a sketch distribution D_pool (uniform or
weighted over the N diagonals) with its own exact constants L_D, μ_D, L_S^max, so
that the algorithms can be run on D_pool itself and every statement of the paper
can be checked against exactly computable constants.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from ..io.errors import MastError
from .sketches import Bernoulli, RandK, Sketch

__all__ = ["EmpiricalSketch", "make_pool", "PoolObjective", "as_pool", "MAX_BATCH_ENTRIES",
           "DENSE_HESSIAN_WORK"]

#: Largest number of dense entries n × columns of one batched evaluation (memory cap).
MAX_BATCH_ENTRIES = 1 << 23
#: Largest N · nnz(A) for which the pool Hessian is formed densely (stacked sparse Gram).
DENSE_HESSIAN_WORK = 200_000


def as_pool(S, weights):
    """(S (N, d), w (N,) or None for uniform) from an array or an :class:`EmpiricalSketch`."""
    if isinstance(S, EmpiricalSketch):
        return S.S, (None if S.uniform else S.weights)
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 2:
        raise MastError(f"a sketch pool must be an (N, d) array, got shape {S.shape}")
    if weights is None:
        return S, None
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != (S.shape[0],) or np.any(w < 0) or not math.isclose(w.sum(), 1.0, abs_tol=1e-9):
        raise MastError(f"pool weights must be {S.shape[0]} probabilities")
    return S, w


class EmpiricalSketch(Sketch):
    """A finite sketch distribution D_pool: diagonal s_j with probability w_j.

    Its constants are exact: E[SᵀS] = Diag(Σ_j w_j s_j²), L_D / μ_D the largest /
    smallest entry, L_S^max = max_{j,k} s_jk².  Assumption 1 (E[S] = I) holds when
    Σ_j w_j s_j = 1, which :func:`make_pool` enforces.

    Parameters
    ----------
    S : ndarray (N, d)
        The diagonals.
    weights : ndarray (N,), optional
        Probabilities (uniform when omitted).
    base : Sketch, optional
        The distribution the pool was drawn from (for the record).
    exact : bool, default=False
        True when the pool is the full enumeration of ``base`` (then D_pool = D).
    """

    name = "pool"

    def __init__(self, S, weights=None, base=None, exact=False):
        S, w = as_pool(S, weights)
        super().__init__(S.shape[1])
        self.S = S
        self.N = S.shape[0]
        self.uniform = w is None or bool(np.all(w == w[0]))
        self.weights = np.full(self.N, 1.0 / self.N) if w is None else w
        self.base = base
        self.exact = bool(exact)
        self.unbiased = bool(np.allclose(self.mean(), 1.0, rtol=0, atol=1e-9))

    def sample(self, rng, size):
        if self.uniform:
            idx = rng.integers(self.N, size=size)
        else:
            idx = rng.choice(self.N, size=size, p=self.weights)
        return self.S[idx]

    def mean(self):
        return self.weights @ self.S

    def second_moment(self):
        return (self.S.T * self.weights) @ self.S

    def diag_second_moment(self):
        return self.weights @ (self.S * self.S)

    def sandwich(self, A):
        return np.asarray(A) * self.second_moment()

    def sandwich_matvec(self, A_matvec, A_diag, x):
        return sum(wj * s * A_matvec(s * x) for s, wj in zip(self.S, self.weights))

    @property
    def L_S_max(self):
        return float(np.max(self.S * self.S))

    @property
    def sparsity(self):
        return float(self.weights @ np.mean(self.S == 0, axis=1))

    def support_size(self):
        return self.N

    def enumerate(self):
        return self.S.copy(), self.weights.copy()

    def params(self):
        out = {"sketch": self.name, "N": self.N, "exact": self.exact, "sparsity": self.sparsity}
        if self.base is not None:
            out["base"] = self.base.params()
        return out


def _balanced_draw(sketch, N, rng):
    """N draws of ``sketch`` with (nearly) equal keep counts per coordinate, or None.

    Bernoulli: coordinate k is kept in exactly round(p_k N) of the N sketches, at
    uniformly random positions, independently across coordinates (a Latin-hypercube
    design: each sketch is marginally Bernoulli(p), exactly as in D).  Rand-K: sketch
    j keeps the K coordinates least used by sketches 1..j−1, ties broken at random
    (counts differ by at most one; the design is exchangeable across coordinates,
    so each sketch is marginally a uniform K-subset).  Other families: None.
    """
    d = sketch.d
    if type(sketch) is Bernoulli:
        counts = np.clip(np.rint(sketch.p * N).astype(int), 1, N)
        keep = np.arange(N)[:, None] < counts[None, :]                 # (N, d)
        order = np.argsort(rng.random((N, d)), axis=0)
        keep = np.take_along_axis(keep, order, axis=0)
        return keep / sketch.p
    if type(sketch) is RandK:
        S = np.zeros((N, d))
        used = np.zeros(d)
        for j in range(N):
            pick = np.argpartition(used + rng.random(d), sketch.k - 1)[: sketch.k]
            S[j, pick] = d / sketch.k
            used[pick] += 1
        return S
    return None


def make_pool(sketch, N, rng, normalize=True, enumerate_max=8192, balanced=True):
    """The evaluation pool of a sketch: exact enumeration when small, else N draws.

    Parameters
    ----------
    sketch : Sketch
        An unbiased sketch (Assumption 1).
    N : int
        Pool size for the sample-average approximation.
    rng : numpy.random.Generator
    normalize : bool, default=True
        Rescale each coordinate of the drawn pool so that its mean is exactly 1:
        s_jk ← s_jk / mean_j(s_jk).  D_pool then satisfies Assumption 1 exactly (so the
        lemmas and Theorem 1 hold for it *exactly*, with its own constants), and it is
        still a consistent approximation of D (mean_j s_jk → 1).  A coordinate that
        no drawn sketch keeps is set to 1 in every sketch (never sketched).
    enumerate_max : int, default=8192
        Enumerate the support exactly when it has at most this many points.
    balanced : bool, default=True
        Bernoulli and Rand-K pools keep every coordinate (nearly) equally often (see
        :func:`_balanced_draw`), so that D_pool's constants L_D, μ_D, L_S^max are
        those of D (up to rounding) instead of being inflated by sampling noise.

    Returns
    -------
    EmpiricalSketch
    """
    if isinstance(sketch, EmpiricalSketch):
        return sketch
    if not getattr(sketch, "unbiased", True):
        raise MastError(f"sketch '{sketch.name}' is biased (E[S] ≠ I): the theory needs Assumption 1")
    if sketch.support_size() <= enumerate_max:
        S, w = sketch.enumerate()
        return EmpiricalSketch(S, w, base=sketch, exact=True)
    if int(N) < 2:
        raise MastError(f"pool size N={N} must be >= 2")
    S = _balanced_draw(sketch, int(N), rng) if balanced else None
    if S is None:
        S = sketch.sample(rng, int(N)).astype(np.float64)
    if normalize:
        m = S.mean(axis=0)
        dead = m == 0
        S[:, ~dead] /= m[~dead]
        S[:, dead] = 1.0
    return EmpiricalSketch(S, None, base=sketch, exact=False)


class PoolObjective:
    """f_pool(x) = Σ_j w_j f(v + s_j ⊙ (x − v)) with value, gradient and Hessian.

    Parameters
    ----------
    obj : objective
    S : ndarray (N, d) or EmpiricalSketch
    v : ndarray (d,)
    weights : ndarray (N,), optional
    """

    def __init__(self, obj, S, v, weights=None):
        S, w = as_pool(S, weights)
        self.obj, self.S, self.N = obj, S, S.shape[0]
        self.St = np.ascontiguousarray(S.T)
        self.w = np.full(self.N, 1.0 / self.N) if w is None else w
        self.v = np.asarray(v, dtype=np.float64).reshape(obj.d)

    # --- batched building blocks -------------------------------------------------
    def _chunks(self, R):
        """Column ranges of X so that one chunk has at most MAX_BATCH_ENTRIES n-entries."""
        per = max(1, MAX_BATCH_ENTRIES // max(1, self.obj.n * self.N))
        return [(a, min(R, a + per)) for a in range(0, R, per)]

    def _models(self, X):
        """Y of shape (d, R·N): column r·N + j is v + s_j ⊙ (x_r − v)."""
        D = X - self.v[:, None]                                       # (d, R)
        return (self.v[:, None, None] + self.St[:, None, :] * D[:, :, None]).reshape(self.obj.d, -1)

    def values(self, X):
        """f(y_j) for every pooled sketch and every column: array (N, R) (or (N,) for one x)."""
        X = np.asarray(X, dtype=np.float64)
        one = X.ndim == 1
        X = X.reshape(self.obj.d, -1)
        out = np.empty((self.N, X.shape[1]))
        for a, b in self._chunks(X.shape[1]):
            out[:, a:b] = self.obj.value(self._models(X[:, a:b])).reshape(b - a, self.N).T
        return out[:, 0] if one else out

    def sketched_grads(self, X):
        """∇f_{S_j}(x) = s_j ⊙ ∇f(y_j) for every sketch and column: (d, N, R) (or (d, N))."""
        X = np.asarray(X, dtype=np.float64)
        one = X.ndim == 1
        X = X.reshape(self.obj.d, -1)
        out = np.empty((self.obj.d, self.N, X.shape[1]))
        for a, b in self._chunks(X.shape[1]):
            G = self.obj.grad(self._models(X[:, a:b])).reshape(self.obj.d, b - a, self.N)
            out[:, :, a:b] = (G * self.St[:, None, :]).transpose(0, 2, 1)
        return out[:, :, 0] if one else out

    def value(self, X):
        """f_pool at x (float) or at each column of X (R,)."""
        return self.w @ self.values(X)

    def grad(self, X):
        """∇f_pool at x (d,) or at each column of X (d, R)."""
        G = self.sketched_grads(X)
        return G @ self.w if G.ndim == 2 else np.einsum("dnr,n->dr", G, self.w)

    def value_grad(self, x):
        """(f_pool(x), ∇f_pool(x)) at one point, one product A·Y on N columns."""
        Y = self.v[:, None] + self.St * (x - self.v)[:, None]
        vals, G = self.obj.value_grad(Y)
        return float(vals @ self.w), (self.St * G) @ self.w

    def hessp(self, x, u):
        """∇²f_pool(x)·u = Σ_j w_j s_j ⊙ ∇²f(y_j)(s_j ⊙ u)."""
        Y = self.v[:, None] + self.St * (x - self.v)[:, None]
        return (self.St * self.obj.hessp_batch(Y, self.St * u[:, None])) @ self.w

    def second_moment(self):
        """Σ_j w_j s_j s_jᵀ (dense d × d)."""
        return (self.St * self.w) @ self.S

    def hessian(self, x):
        """Dense ∇²f_pool(x) as one stacked sparse Gram BᵀB, B = [√(w_j c_j) ⊙ A Diag(s_j)]_j."""
        obj, N, n, d = self.obj, self.N, self.obj.n, self.obj.d
        Y = self.v[:, None] + self.St * (x - self.v)[:, None]
        z = obj.margins(Y)                                            # (n, N)
        c = obj.datafit.d2loss(z) * (self.w[None, :] / n)
        A = obj.A.tocoo()
        rows = (A.row[None, :] + n * np.arange(N)[:, None]).ravel()
        cols = np.broadcast_to(A.col, (N, A.nnz)).ravel()
        data = (A.data[None, :] * np.sqrt(c[A.row, :]).T * self.S[:, A.col]).ravel()
        B = sp.csr_matrix((data, (rows, cols)), shape=(n * N, d))
        H = B.T @ B
        H = H.toarray() if sp.issparse(H) else np.asarray(H)
        H[np.diag_indices(d)] += (self.St ** 2 * obj.penalty.hess_diag(Y)) @ self.w
        return H

    def hessian_hvp(self, x, block=None):
        """Dense ∇²f_pool(x) from Hessian-vector products, many directions per product.

        Costs about d pooled gradients (no stacked Gram matrix); for large N·nnz(A).
        """
        obj, N, d = self.obj, self.N, self.obj.d
        Y = self.v[:, None] + self.St * (x - self.v)[:, None]
        if block is None:
            block = max(1, MAX_BATCH_ENTRIES // max(1, obj.n * N))
        H = np.empty((d, d))
        for a in range(0, d, block):
            ks = np.arange(a, min(d, a + block))
            U = np.zeros((d, ks.size, N))
            U[ks, np.arange(ks.size), :] = self.S[:, ks].T              # s_j ⊙ e_k
            HU = obj.hessp_batch(np.tile(Y, ks.size), U.reshape(d, -1)).reshape(d, ks.size, N)
            H[:, ks] = np.einsum("dkn,dn,n->dk", HU, self.St, self.w)
        return 0.5 * (H + H.T)

    def preconditioner(self, x):
        """(Σ_j w_j s_j s_jᵀ) ⊙ ∇²f(x): the pool Hessian with every ∇²f(y_j) replaced by ∇²f(x)."""
        return self.second_moment() * self.obj.hessian(x)

    def dense_hessian_ok(self):
        return self.obj.d <= 3000 and self.N * self.obj.A.nnz <= DENSE_HESSIAN_WORK
