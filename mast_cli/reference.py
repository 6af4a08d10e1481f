"""MAST reference quantities: x*_D, f_D^inf and Δ = f_D^inf − f^inf (mast-theory §3.3–3.4, §5, §8).

f_D(x) = E_{S~D} f(v + S(x − v)) has no closed form for logistic f, so it is replaced by
a finite distribution over diagonals s_1..s_N with probabilities w_1..w_N:

    f_pool(x)  = Σ_j w_j f(y_j),              y_j = v + s_j ⊙ (x − v),
    ∇f_pool(x) = Σ_j w_j s_j ⊙ ∇f(y_j),
    ∇²f_pool(x) = Σ_j w_j Diag(s_j) ∇²f(y_j) Diag(s_j).

Two cases:

* **exact enumeration** (small supports, tiny d): (s_j, w_j) = ``sketch.enumerate()``, so
  f_pool = f_D exactly;
* **sample-average approximation** (SAA): N i.i.d. draws of D with w_j = 1/N.  The
  minimum of the pool objective estimates f_D^inf (biased low by O(1/N)); its Monte
  Carlo standard error is reported with it.

All columns y_j of one evaluation are one (d, N) array: one product A·Y per value or
gradient, one A·U and one Aᵀ·W per Hessian-vector product (``obj.hessp_batch``).

:class:`EmpiricalSketch` wraps a pool as a sketch distribution D_pool (uniform or
weighted over the N diagonals) with its own exact constants L_D, μ_D, L_S^max, so
that the algorithms can be run on D_pool itself and every statement of the paper
can be checked against exactly computable constants (see :mod:`mast_cli.verify`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.special import expit

from .errors import MastError
from .objectives import _cholesky, armijo_step
from .sketches import Sketch

__all__ = [
    "EmpiricalSketch",
    "make_pool",
    "PoolObjective",
    "solve_pool",
    "solve_enumerated",
    "mc_value",
    "grad_norm_sq_estimate",
    "Reference",
    "compute_reference",
]

#: Largest number of dense entries n × columns of one batched evaluation (memory cap).
MAX_BATCH_ENTRIES = 1 << 23
#: Largest N · nnz(A) for which the pool Hessian is formed densely (stacked sparse Gram).
DENSE_HESSIAN_WORK = 200_000
#: Largest N · R · n for which :func:`grad_norm_sq_estimate` computes ∇f_pool exactly.
EXACT_GRAD_WORK = 1 << 25


def _as_pool(S, weights):
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
        S, w = _as_pool(S, weights)
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
    from .sketches import Bernoulli, RandK

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
        S, w = _as_pool(S, weights)
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
        c = expit(z) * expit(-z) * (self.w[None, :] / n)
        A = obj.A.tocoo()
        rows = (A.row[None, :] + n * np.arange(N)[:, None]).ravel()
        cols = np.broadcast_to(A.col, (N, A.nnz)).ravel()
        data = (A.data[None, :] * np.sqrt(c[A.row, :]).T * self.S[:, A.col]).ravel()
        B = sp.csr_matrix((data, (rows, cols)), shape=(n * N, d))
        H = B.T @ B
        H = H.toarray() if sp.issparse(H) else np.asarray(H)
        H[np.diag_indices(d)] += (self.St ** 2 * obj._pen_hess_diag(Y)) @ self.w
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


def _cho(H):
    """Cholesky factor of H, shifted until positive definite (non-convex f)."""
    return _cholesky(H, rel_shift=1e-10)


def _pcg(hvp, b, chol, rtol, maxiter):
    """Preconditioned CG for H p = b, truncated at negative curvature (Steihaug).

    Returns (p, iterations)."""
    p = np.zeros_like(b)
    r = b.copy()
    z = scipy.linalg.cho_solve(chol, r)
    dvec = z.copy()
    rz = float(r @ z)
    bn = float(np.linalg.norm(b))
    for k in range(1, maxiter + 1):
        Hd = hvp(dvec)
        dHd = float(dvec @ Hd)
        if dHd <= 0:
            return (z if k == 1 else p), k
        alpha = rz / dHd
        p += alpha * dvec
        r -= alpha * Hd
        if np.linalg.norm(r) <= rtol * bn:
            return p, k
        z = scipy.linalg.cho_solve(chol, r)
        rz_new = float(r @ z)
        dvec = z + (rz_new / rz) * dvec
        rz = rz_new
    return p, maxiter


def solve_pool(obj, S, v, weights=None, tol=1e-10, x0=None, max_iter=100, hessian="auto"):
    """x*_pool = argmin_x Σ_j w_j f(v + s_j ⊙ (x − v)) by damped Newton's method.

    The reference minimizer of the MAST problem on a pool (SAA) or on an exact
    enumeration of the sketch support (then x*_pool = x*_D).

    Parameters
    ----------
    obj : objective
        :class:`~mast_cli.objectives.LogisticL2` or ``LogisticNonconvex`` (for the
        non-convex objective a stationary point near ``x0``, a local minimizer).
    S : ndarray (N, d) or EmpiricalSketch
        The pool of diagonals.
    v : ndarray (d,)
        Shift.
    weights : ndarray (N,), optional
        Pool probabilities (uniform when omitted; taken from ``S`` when it is an
        :class:`EmpiricalSketch`).
    tol : float, default=1e-10
        Stop when ‖∇f_pool(x)‖ ≤ tol.
    x0 : ndarray (d,), optional
        Start (default v).
    max_iter : int, default=100
    hessian : {'auto', 'dense', 'cg'}
        ``dense``: the exact pool Hessian (one stacked sparse Gram) and a Cholesky solve;
        ``cg``: Hessian-vector products (``obj.hessp_batch`` on N columns) and conjugate
        gradients preconditioned by (Σ_j w_j s_j s_jᵀ) ⊙ ∇²f(x) (a few products per
        Newton step); ``auto``: dense when N·nnz(A) ≤ :data:`DENSE_HESSIAN_WORK`.

    Returns
    -------
    x : ndarray (d,)
    info : dict
        ``value`` (f_pool(x)), ``grad_norm``, ``iterations``, ``converged``, ``N``,
        ``hessian`` (the mode used), ``hvps`` (Hessian-vector products, CG mode).
    """
    pool = PoolObjective(obj, S, v, weights)
    if hessian == "auto":
        hessian = "dense" if pool.dense_hessian_ok() else "cg"
    if hessian not in ("dense", "cg"):
        raise MastError(f"unknown hessian mode '{hessian}'; choose auto, dense or cg")
    x = (pool.v if x0 is None else np.asarray(x0, dtype=np.float64)).copy()
    f, g = pool.value_grad(x)
    gn = float(np.linalg.norm(g))
    it, hvps = 0, 0
    for it in range(1, max_iter + 1):
        if gn <= tol:
            it -= 1
            break
        if hessian == "dense":
            p = -scipy.linalg.cho_solve(_cho(pool.hessian(x)), g)
        else:
            p, k = _pcg(lambda u: pool.hessp(x, u), -g, _cho(pool.preconditioner(x)),
                        rtol=min(0.1, math.sqrt(gn)), maxiter=max(50, 2 * obj.d))
            hvps += k
        accepted = armijo_step(pool.value_grad, x, f, g, gn, p)
        if accepted is None:
            break
        x, f, g, gn = accepted
    return x, {"value": float(f), "grad_norm": gn, "iterations": it, "converged": gn <= tol,
               "N": pool.N, "hessian": hessian, "hvps": hvps}


def solve_enumerated(obj, sketch, v, tol=1e-10, x0=None, max_iter=100):
    """x*_D exactly: :func:`solve_pool` on the full support of ``sketch`` with its weights.

    Only for small supports (``sketch.enumerate()`` raises :class:`MastError` otherwise).
    Returns ``(x, info)`` as :func:`solve_pool`.
    """
    S, w = sketch.enumerate()
    return solve_pool(obj, S, v, weights=w, tol=tol, x0=x0, max_iter=max_iter)


def mc_value(obj, sketch, v, X, m, rng):
    """Monte Carlo estimate of f_D at x (or at each column of X) with its standard error.

    Draws ``m`` fresh sketches (common to all columns) and averages f(v + s ⊙ (x − v)).

    Returns
    -------
    mean, se : float or ndarray (R,)
        Sample mean and standard error sd/√m (0 for m = 1).
    """
    S = sketch.sample(rng, int(m))
    vals = PoolObjective(obj, S, v).values(X)
    mean = vals.mean(axis=0)
    se = vals.std(axis=0, ddof=1) / math.sqrt(m) if m > 1 else np.zeros_like(mean)
    return mean, se


def grad_norm_sq_estimate(pool, X, rng, m=None, budget=EXACT_GRAD_WORK):
    """‖∇f_pool(x_r)‖² at each column of X: exact, or unbiased from m sketches.

    When N·R·n ≤ ``budget`` the pooled gradient is computed exactly.  Otherwise, with m
    sketches drawn from the pool per column (independently, with replacement),
    ‖Σ_k g_k‖² − Σ_k ‖g_k‖² divided by m(m − 1) is an unbiased estimate of
    ‖E g‖² = ‖∇f_pool(x)‖² (a U-statistic over the pairs k ≠ l; it can be negative).

    Parameters
    ----------
    pool : PoolObjective
    X : ndarray (d, R)
    rng : numpy.random.Generator
    m : int, optional
        Sketches per column; by default as many as the budget allows (R·m·n ≤ budget),
        between 8 and 256 (the variance falls like 1/m).
    budget : int, default=EXACT_GRAD_WORK

    Returns
    -------
    ndarray (R,), bool (True when exact)
    """
    R, n = X.shape[1], pool.obj.n
    if m is None:
        m = int(np.clip(budget // max(1, R * n), 8, 256))
    if pool.N <= m or pool.N * R * n <= budget:
        G = pool.grad(X)
        return np.sum(G * G, axis=0), True
    idx = rng.choice(pool.N, size=(R, m), p=pool.w)                 # (R, m)
    est = np.empty(R)
    per = max(1, MAX_BATCH_ENTRIES // max(1, m * n))
    for a in range(0, R, per):
        b = min(R, a + per)
        S = pool.S[idx[a:b]]                                        # (r, m, d)
        D = X.T[a:b, None, :] - pool.v                              # (r, 1, d)
        Y = (pool.v + S * D).reshape((b - a) * m, -1).T             # (d, r·m)
        G = (pool.obj.grad(Y).T.reshape(b - a, m, -1)) * S          # (r, m, d)
        tot = G.sum(axis=1)
        est[a:b] = (np.sum(tot * tot, axis=1) - np.sum(G * G, axis=(1, 2))) / (m * (m - 1))
    return est, False


@dataclass
class Reference:
    """Reference quantities of one (objective, sketch, shift).

    Attributes
    ----------
    pool : EmpiricalSketch
        D_pool (exact enumeration of D when ``pool.exact``).
    x_star, f_inf : ERM minimizer x* and f^inf = f(x*) (Newton, ‖∇f‖ ≤ tol).
    x_D, f_D_inf : minimizer and minimum of f_pool (= x*_D, f_D^inf when exact).
    delta : f_D_inf − f_inf (Δ of D_pool; the SAA estimate of Δ of D).
    se_f_D_inf : Monte Carlo standard error of f_D^inf as an estimate for D: the
        standard deviation of f(y_j) at x_D over the pool divided by √N (0 when exact).
    x_D_se : Monte Carlo standard error of x_D as an estimate of x*_D, in norm:
        √(tr(H⁻¹ Σ H⁻¹)/N) with H = ∇²f_pool(x_D) and Σ the covariance of the per-sketch
        gradients s_j ⊙ ∇f(y_j) at x_D (M-estimator asymptotics; 0 when exact).
    fresh : dict
        f_D(x_D) re-estimated on ``m`` fresh sketches of D (independent of the pool):
        an unbiased estimate of f_D(x_D) ≥ f_D^inf, with its standard error.
    info : dict
        Newton diagnostics (``erm``, ``pool``).
    """

    pool: EmpiricalSketch
    v: np.ndarray
    x_star: np.ndarray
    f_inf: float
    x_D: np.ndarray
    f_D_inf: float
    delta: float
    se_f_D_inf: float
    fresh: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    x_D_se: float = 0.0

    def summary(self):
        """JSON-ready dict (no arrays)."""
        return {
            "N": self.pool.N, "exact_enumeration": self.pool.exact,
            "f_inf": self.f_inf, "f_D_inf": self.f_D_inf, "f_D_inf_se": self.se_f_D_inf,
            "delta": self.delta, "delta_se": self.se_f_D_inf, "x_D_se": self.x_D_se,
            "dist_sq_xD_xstar": float(np.sum((self.x_D - self.x_star) ** 2)),
            "dist_sq_xstar_v": float(np.sum((self.x_star - self.v) ** 2)),
            "pool_L_D": self.pool.L_D, "pool_mu_D": self.pool.mu_D,
            "pool_L_S_max": self.pool.L_S_max,
            **{f"fresh_{k}": val for k, val in self.fresh.items()},
            "erm_grad_norm": self.info["erm"]["grad_norm"],
            "pool_grad_norm": self.info["pool"]["grad_norm"],
        }


def compute_reference(obj, sketch, v=None, N=64, rng=None, tol=1e-10, fresh=256, x_star=None,
                      enumerate_max=8192):
    """x*, f^inf, and x*_D, f_D^inf, Δ on the pool of ``sketch`` (or its exact enumeration).

    Parameters
    ----------
    obj : objective
    sketch : Sketch or EmpiricalSketch
    v : ndarray (d,), optional
        Shift (zeros by default).
    N : int, default=64
        Pool size when the support is not enumerated.
    rng : numpy.random.Generator, optional
        Draws the pool and the fresh sketches (seed 0 when omitted).
    tol : float, default=1e-10
        Newton tolerance on ‖∇f‖ and ‖∇f_pool‖.
    fresh : int, default=256
        Fresh sketches of D for the independent estimate of f_D(x_D) (0 to skip; not
        drawn for exact pools).
    x_star : ndarray, optional
        Known ERM minimizer.

    Returns
    -------
    Reference
    """
    from .objectives import solve_erm

    rng = np.random.default_rng(0) if rng is None else rng
    v = np.zeros(obj.d) if v is None else np.asarray(v, dtype=np.float64)
    if x_star is None:
        x_star, erm = solve_erm(obj, tol=min(tol, 1e-10))
    else:
        erm = {"grad_norm": float(np.linalg.norm(obj.grad(x_star)))}
    pool = make_pool(sketch, N, rng, enumerate_max=enumerate_max)
    x_D, info = solve_pool(obj, pool, v, tol=tol, x0=x_star)
    if not info["converged"]:
        raise MastError(f"Newton on the sketch pool stopped at ‖∇f_pool‖ = {info['grad_norm']:.2e} > {tol:g}")
    vals = PoolObjective(obj, pool, v).values(x_D)
    f_inf = float(obj.value(x_star))
    f_D_inf = float(pool.weights @ vals)
    se = 0.0 if pool.exact else float(vals.std(ddof=1) / math.sqrt(pool.N))
    x_se = 0.0
    if not pool.exact:
        P = PoolObjective(obj, pool, v)
        H = P.hessian(x_D) if P.dense_hessian_ok() else P.hessian_hvp(x_D)
        G = P.sketched_grads(x_D)                                     # (d, N), mean ≈ 0
        Gc = G - G.mean(axis=1, keepdims=True)
        Z = np.linalg.solve(H, Gc)                                    # H⁻¹ (g_j − ḡ)
        x_se = float(math.sqrt(np.sum(Z * Z) / (pool.N - 1) / pool.N))
    out_fresh = {}
    base = pool.base if pool.base is not None else sketch
    if fresh and not pool.exact and not isinstance(base, EmpiricalSketch):
        mean, fse = mc_value(obj, base, v, x_D, int(fresh), rng)
        out_fresh = {"m": int(fresh), "f_D_at_xD": float(mean), "f_D_at_xD_se": float(fse),
                     "delta_upper": float(mean) - f_inf}
    return Reference(pool, v, x_star, f_inf, x_D, f_D_inf, f_D_inf - f_inf, se, out_fresh,
                     {"erm": erm, "pool": info}, x_se)
