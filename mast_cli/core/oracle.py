"""Exact oracles on the quadratic (ridge) objective (mast-theory §2.5–§2.6) [RECON, exact].

For f(x) = ½xᵀHx − cᵀx + const (:class:`~mast_cli.objectives.RidgeL2`: H = AᵀA/n + λI,
c = Aᵀb/n) and a diagonal sketch distribution D with mean μ_s = E[s] and second moment
E[ssᵀ], with Q := E[SHS] = H ∘ E[ssᵀ] and g_v := Hv − c:

* ∇f_S(x) = SHS(x − v) + S g_v, so ∇f_D(x) = Q(x − v) + μ_s ⊙ g_v (= Q(x − v) + g_v under
  Assumption 1) and x*_D = v − Q⁻¹(μ_s ⊙ g_v);
  f_D(x) = f(x) + ½(x − v)ᵀ(Q − H)(x − v) + (x − v)ᵀ((μ_s − 1) ⊙ ∇f(v)) (§2.5; the last
  term vanishes when E[S] = I).
* **First moment.**  Every method whose step is an estimate g with E[g | x] = ∇f_D(x)
  (Algorithm 1 (I); 1 (II) with any unbiased row sampling; Algorithm 2 with workers'
  sketches of marginals D_i; Algorithm 3 on a pool for any p and b) moves its mean by
  exact gradient descent on f_D, because ∇f_D is affine:
  E[x^{t+1}] = E[x^t] − γ ∇f_D(E[x^t]).  (:func:`mean_trajectory`; Algorithm 2 uses the
  worker averages of :func:`distributed_quadratic`.)
* **Second moment, Algorithm 1 (I).**  With e_t = x^t − x*_D, u = x*_D − v, K_S = SHS and
  ξ(S) = K_S u + S g_v (zero mean): e_{t+1} = (I − γK_S)e_t − γξ(S), so with
  m_t = E[e_t], P_t = E[e_t e_tᵀ]:
  P_{t+1} = P_t − γ(QP_t + P_tQ) + γ² E[K_S P_t K_S + K_S m_t ξᵀ + ξ m_tᵀ K_S + ξξᵀ],
  and E‖x^t − x*_D‖² = tr(P_t) exactly (:func:`second_moment_trajectory`).  The
  expectation over S needs the fourth moments E[s_a s_j s_k s_b]: from the enumerated
  support of D (or a pool D_pool), as a d² × d² matrix when d is small, else sketch by
  sketch on the kept coordinates.

Everything here is deterministic linear algebra (no Monte Carlo); the tests compare it
with brute-force enumeration of all sketch sequences and with Monte Carlo.
"""

from __future__ import annotations

import math

import numpy as np

from ..io.errors import MastError

__all__ = [
    "Quadratic",
    "quadratic_of",
    "sketch_moments",
    "distributed_quadratic",
    "mean_trajectory",
    "FourthMoments",
    "second_moment_trajectory",
]

#: Largest d for which the fourth moments are held as one dense d² × d² matrix.
TENSOR_MAX_D = 40


class Quadratic:
    """The exact MAST quantities of f(x) = ½xᵀHx − cᵀx + const under a sketch law.

    Parameters
    ----------
    H : ndarray (d, d)
        Symmetric Hessian of f.
    c : ndarray (d,)
        Linear term, ∇f(x) = Hx − c.
    second : ndarray (d, d)
        E[s sᵀ] of the sketch law (for Algorithm 2 pass the worker-averaged Q instead,
        with ``Q=``).
    mean : ndarray (d,), optional
        E[s] (ones by default: Assumption 1).
    v : ndarray (d,)
        Shift.
    Q : ndarray (d, d), optional
        E[SHS] when it is not H ∘ E[ssᵀ] (worker averages of Algorithm 2).
    g : ndarray (d,), optional
        The constant term of ∇f_D when it is not μ_s ⊙ (Hv − c).

    Attributes
    ----------
    Q : ndarray (d, d)
        E[SHS].
    g : ndarray (d,)
        ∇f_D(v).
    x_D : ndarray (d,)
        x*_D = v − Q⁻¹g (Q must be positive definite).
    """

    def __init__(self, H, c, second=None, mean=None, v=None, Q=None, g=None):
        self.H = np.asarray(H, dtype=np.float64)
        self.c = np.asarray(c, dtype=np.float64)
        d = self.c.size
        self.d = d
        self.v = np.zeros(d) if v is None else np.asarray(v, dtype=np.float64)
        self.mean_s = np.ones(d) if mean is None else np.asarray(mean, dtype=np.float64)
        if Q is None:
            if second is None:
                raise MastError("Quadratic needs E[ssᵀ] (second=) or E[SHS] (Q=)")
            Q = self.H * np.asarray(second, dtype=np.float64)
        self.Q = 0.5 * (Q + Q.T)
        self.g = self.mean_s * (self.H @ self.v - self.c) if g is None else np.asarray(g, dtype=np.float64)
        self.x_D = self.v - np.linalg.solve(self.Q, self.g)

    def f(self, x):
        """f(x) up to the constant: ½xᵀHx − cᵀx."""
        return 0.5 * x @ self.H @ x - self.c @ x

    def grad_D(self, x):
        """∇f_D(x) = Q(x − v) + g, shape (d,) or (d, R)."""
        x = np.asarray(x, dtype=np.float64)
        return self.Q @ (x - (self.v if x.ndim == 1 else self.v[:, None])) + (
            self.g if x.ndim == 1 else self.g[:, None])

    def f_D_minus_f(self, x):
        """f_D(x) − f(x) = ½(x − v)ᵀ(Q − H)(x − v) + (x − v)ᵀ((μ_s − 1) ⊙ ∇f(v)) (§2.5)."""
        e = x - self.v
        return 0.5 * e @ (self.Q - self.H) @ e + e @ ((self.mean_s - 1.0) * (self.H @ self.v - self.c))


def quadratic_of(obj, sketch, v):
    """The :class:`Quadratic` of a ridge objective under a sketch law (Algorithm 1, 3).

    Parameters
    ----------
    obj : RidgeL2
        Must provide ``quadratic()`` (H, c).
    sketch : Sketch or EmpiricalSketch
        Its closed-form ``second_moment()`` and ``mean()`` are used (exact pool averages
        for an EmpiricalSketch).
    v : ndarray (d,)

    Raises
    ------
    MastError
        When ``obj`` is not quadratic.
    """
    if not hasattr(obj, "quadratic"):
        raise MastError(f"objective '{getattr(obj, 'name', obj)}' is not quadratic: the exact oracle needs ridge")
    H, c = obj.quadratic()
    return Quadratic(H, c, second=sketch.second_moment(), mean=sketch.mean(), v=v)


def sketch_moments(S, w=None):
    """(E[s], E[ssᵀ]) of a finite law: rows of S (N, d) with probabilities w (uniform if None)."""
    S = np.asarray(S, dtype=np.float64)
    w = np.full(S.shape[0], 1.0 / S.shape[0]) if w is None else np.asarray(w, dtype=np.float64)
    return w @ S, (S.T * w) @ S


def distributed_quadratic(obj, split, marginals, v):
    """The :class:`Quadratic` that Algorithm 2's mean follows (mast-theory §2.6).

    Worker i owns f_i(x) = ½xᵀH_ix − c_iᵀx + const with H_i = (M/n)A_iᵀA_i + λI and
    c_i = (M/n)A_iᵀb_i (so (1/M)Σ_i f_i = f); its step uses S_i ~ D_i, hence
    Q = (1/M)Σ_i H_i ∘ E[s_is_iᵀ] and g = (1/M)Σ_i E[s_i] ⊙ (H_i v − c_i).  Only the
    marginals D_i matter (Perm-K: Rand-q_i).

    Parameters
    ----------
    obj : RidgeL2
    split : WorkerSplit
    marginals : list of M Sketch
        Worker i's marginal law (``WorkerSketches.marginals()``).
    v : ndarray (d,)
    """
    H, c = obj.quadratic()
    M, n, d = split.M, obj.n, obj.d
    Q = np.zeros((d, d))
    g = np.zeros(d)
    for p, D in zip(split.partition, marginals):
        Ai, bi = obj.A[p], obj.b[p]
        G = Ai.T @ Ai
        G = G.toarray() if hasattr(G, "toarray") else np.asarray(G)
        Hi = (M / n) * G + obj.lam * np.eye(d)
        ci = (M / n) * np.asarray(Ai.T @ bi).ravel()
        Q += Hi * D.second_moment()
        g += D.mean() * (Hi @ v - ci)
    return Quadratic(H, c, v=v, Q=Q / M, g=g / M)


def mean_trajectory(quad, x0, gamma, iterations):
    """E[x^t] at the given iterations: exact gradient descent on f_D.

    E[x^{t+1}] = E[x^t] − γ(Q(E[x^t] − v) + g), i.e. E[x^t] − x*_D = (I − γQ)^t(x⁰ − x*_D).

    Parameters
    ----------
    quad : Quadratic
    x0 : ndarray (d,)
    gamma : float
        Step size γ.
    iterations : array-like of int (L,)
        Increasing iteration numbers t ≥ 0 (e.g. ``History.iterations``).

    Returns
    -------
    ndarray (L, d)
    """
    its = np.asarray(iterations, dtype=np.int64)
    out = np.empty((its.size, quad.d))
    x = np.array(x0, dtype=np.float64)
    t = 0
    for k, target in enumerate(its):
        while t < target:
            x = x - gamma * quad.grad_D(x)
            t += 1
        out[k] = x
    return out


class FourthMoments:
    """E over a finite sketch law of K_S P K_S and of the noise terms, K_S = SHS.

    Parameters
    ----------
    H : ndarray (d, d)
    S : ndarray (N, d)
        The support of the law (an enumeration of D, or a pool).
    w : ndarray (N,), optional
        Probabilities (uniform when omitted).
    mode : {'auto', 'tensor', 'pool'}
        ``tensor``: the d² × d² matrix Z[(a,j),(k,b)] = E[s_a s_j s_k s_b] H_aj H_kb
        (O(N d⁴) once, O(d⁴) per step); ``pool``: sketch by sketch on the kept coordinates
        (O(Σ_n k_n³) per step); ``auto``: tensor when d ≤ :data:`TENSOR_MAX_D`.
    """

    def __init__(self, H, S, w=None, mode="auto"):
        self.H = np.asarray(H, dtype=np.float64)
        self.S = np.asarray(S, dtype=np.float64)
        N, d = self.S.shape
        self.w = np.full(N, 1.0 / N) if w is None else np.asarray(w, dtype=np.float64)
        self.d, self.N = d, N
        if mode == "auto":
            mode = "tensor" if d <= TENSOR_MAX_D else "pool"
        self.mode = mode
        if mode == "tensor":
            SS = (self.S[:, :, None] * self.S[:, None, :]).reshape(N, d * d)      # s_a s_j
            M4 = (SS.T * self.w) @ SS                                               # E[s_a s_j s_k s_b]
            h = self.H.reshape(d * d)
            self.Z = (M4 * np.outer(h, h)).reshape(d, d, d, d)                      # (a, j, k, b)
        elif mode == "pool":
            self.idx = [np.flatnonzero(s) for s in self.S]
            self.K = [self.H[np.ix_(i, i)] * np.outer(s[i], s[i]) for s, i in zip(self.S, self.idx)]
        else:
            raise MastError(f"unknown mode '{mode}'; choose auto, tensor or pool")

    def work_per_step(self):
        """Floating-point multiply-adds of one :meth:`kpk` (for budgeting)."""
        if self.mode == "tensor":
            return self.d ** 4
        return int(sum(2 * i.size ** 3 for i in self.idx))

    def kpk(self, P):
        """E[K_S P K_S] (d, d)."""
        if self.mode == "tensor":
            return np.einsum("ajkb,jk->ab", self.Z, P, optimize=True)
        out = np.zeros((self.d, self.d))
        for wn, i, K in zip(self.w, self.idx, self.K):
            if i.size:
                out[np.ix_(i, i)] += wn * (K @ P[np.ix_(i, i)] @ K)
        return out

    def k_vectors(self, u):
        """K_S u for every sketch of the support: (N, d)."""
        # (s ⊙ H (s ⊙ u)) per sketch
        return self.S * ((self.S * u[None, :]) @ self.H)


def second_moment_trajectory(quad, S, w, x0, gamma, iterations, mode="auto"):
    """Exact E‖x^t − x*_D‖² = tr(P_t) of Algorithm 1 (I) at the given iterations (§2.6).

    Parameters
    ----------
    quad : Quadratic
        From :func:`quadratic_of` for the same law as (S, w).
    S : ndarray (N, d)
        Support of the sketch law the algorithm samples (its enumeration, or the pool
        it runs on).
    w : ndarray (N,) or None
        Probabilities (uniform when None).
    x0 : ndarray (d,)
    gamma : float
    iterations : array-like of int (L,), increasing
    mode : {'auto', 'tensor', 'pool'}
        See :class:`FourthMoments`.

    Returns
    -------
    dict
        ``second`` (L,): tr(P_t) = E‖x^t − x*_D‖²; ``mean_part`` (L,): ‖E[x^t] − x*_D‖²;
        ``P`` (L, d, d): the matrices P_t.
    """
    d = quad.d
    F = FourthMoments(quad.H, S, w, mode)
    Q, gv = quad.Q, quad.H @ quad.v - quad.c
    u = quad.x_D - quad.v
    Ku = F.k_vectors(u)                                   # (N, d)
    Xi = Ku + F.S * gv[None, :]                           # ξ(S_n) (N, d), Σ w ξ = 0
    EXX = (Xi.T * F.w) @ Xi                               # E[ξξᵀ]
    m = np.array(x0, dtype=np.float64) - quad.x_D
    P = np.outer(m, m)
    its = np.asarray(iterations, dtype=np.int64)
    second, mean_part, Ps = np.empty(its.size), np.empty(its.size), np.empty((its.size, d, d))
    t = 0
    for k, target in enumerate(its):
        while t < target:
            Km = F.k_vectors(m)                           # (N, d)
            C = (Km.T * F.w) @ Xi                         # E[K m ξᵀ]
            QP = Q @ P
            P = P - gamma * (QP + QP.T) + gamma ** 2 * (F.kpk(P) + C + C.T + EXX)
            P = 0.5 * (P + P.T)
            m = m - gamma * (Q @ m)
            t += 1
        second[k], mean_part[k], Ps[k] = np.trace(P), m @ m, P
    return {"second": second, "mean_part": mean_part, "P": Ps}
