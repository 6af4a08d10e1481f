"""Diagonal random sketches S = Diag(s) and their closed-form moments (mast-theory §2).

Every sketch here is diagonal, so it is stored as the vector ``s``; many are drawn
at once as the rows of an array of shape (size, d) from a seeded
:class:`numpy.random.Generator`.  All second moments have the structure

    E[s sᵀ] = c · u uᵀ + Diag(e),

which gives E[SᵀAS] = c (u uᵀ) ⊙ A + Diag(e ⊙ diag A) for any symmetric A, and
E[SᵀS] = Diag(c u² + e).  Sketches that satisfy Assumption 1 (E[S] = I) have u = 1.

Families
--------
``identity``          S = I (f_D = f; every algorithm reduces to (S)GD).
``bernoulli``         Example 1 (dropout): s_j = c_j / p_j, c_j ~ Bernoulli(p_j).
``rand-k``            Example 2 (sparse training): K random coordinates scaled by d/K.
``perm-k``            Perm-K for M workers: one random permutation split into M disjoint
                      blocks, worker i's block scaled by d/q_i (q_i = block size).
``gaussian``          [RECON] s_j ~ N(1, σ_j²); L_S^max = ∞.
``dropout-unscaled``  classic dropout without rescaling, s_j = c_j: **biased**,
                      E[S] = Diag(p) ≠ I, outside Assumption 1 (a baseline only).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ..io.errors import MastError, NotEnumerable
from ..io.plugins import SKETCH_GROUP, Registry

__all__ = [
    "Sketch",
    "Identity",
    "Bernoulli",
    "RandK",
    "PermK",
    "Gaussian",
    "DropoutUnscaled",
    "SKETCHES",
    "make_sketch",
    "sparsity_to_param",
]

#: Largest support that :meth:`Sketch.enumerate` expands.
MAX_ENUMERATION = 200_000


class Sketch:
    """Base class: a distribution over diagonal sketches of dimension ``d``.

    Subclasses define :meth:`sample` and the moment structure ``moment_c``,
    ``moment_u``, ``moment_e`` (see the module docstring), ``L_S_max`` and
    ``sparsity``.
    """

    name = "sketch"
    #: E[S] = I (Assumption 1).
    unbiased = True

    def __init__(self, d):
        self.d = int(d)

    # --- sampling -----------------------------------------------------------------
    def sample(self, rng, size):
        """Draw ``size`` sketches, returned as an array (size, d) of diagonals."""
        raise NotImplementedError

    # --- moments --------------------------------------------------------------------
    @property
    def moment_c(self):
        return 1.0

    @property
    def moment_u(self):
        return np.ones(self.d)

    @property
    def moment_e(self):
        raise NotImplementedError

    def mean(self):
        """E[s] (all ones for unbiased sketches)."""
        return np.ones(self.d)

    def second_moment(self):
        """E[s sᵀ] as a dense (d, d) matrix."""
        u = self.moment_u
        return self.moment_c * np.outer(u, u) + np.diag(self.moment_e)

    def diag_second_moment(self):
        """E[s_j²], the diagonal of E[SᵀS]."""
        return self.moment_c * self.moment_u ** 2 + self.moment_e

    def sandwich(self, A):
        """E[Sᵀ A S] = A ⊙ E[s sᵀ] for a symmetric (d, d) matrix A (mast-theory §2)."""
        A = np.asarray(A)
        u = self.moment_u
        out = self.moment_c * A * np.outer(u, u)
        out[np.diag_indices(self.d)] += self.moment_e * np.diag(A)
        return out

    def sandwich_matvec(self, A_matvec, A_diag, x):
        """E[SᵀAS]·x without forming d×d matrices: c u ⊙ A(u ⊙ x) + e ⊙ diag(A) ⊙ x."""
        u = self.moment_u
        return self.moment_c * u * A_matvec(u * x) + self.moment_e * A_diag * x

    # --- constants (mast-theory §3.1) -----------------------------------------------
    @property
    def L_D(self):
        """λ_max(E[SᵀS])."""
        return float(np.max(self.diag_second_moment()))

    @property
    def mu_D(self):
        """λ_min(E[SᵀS])."""
        return float(np.min(self.diag_second_moment()))

    @property
    def kappa_D(self):
        """κ_D = L_D / μ_D."""
        return self.L_D / self.mu_D

    @property
    def L_S_max(self):
        """sup over the support of λ_max(SᵀS) = max_j s_j² (∞ for unbounded sketches)."""
        raise NotImplementedError

    @property
    def sparsity(self):
        """Expected fraction of zeroed weights."""
        raise NotImplementedError

    # --- exact expectations ---------------------------------------------------------
    def support_size(self):
        """Number of distinct sketches (``inf`` when not enumerable)."""
        return math.inf

    def enumerate(self):
        """All sketches with their probabilities: ``(S, w)``, S of shape (m, d).

        Only for small supports (≤ ``MAX_ENUMERATION`` points); used as the exact
        oracle for Monte Carlo estimates in tests and in ``mast verify``.
        """
        raise NotEnumerable(f"sketch '{self.name}' cannot be enumerated for d={self.d}")

    def params(self):
        """The sketch's parameters as a plain dict (written to metadata)."""
        return {"sketch": self.name, "sparsity": self.sparsity}

    def __repr__(self):
        inner = ", ".join(f"{k}={v}" for k, v in self.params().items() if k != "sketch")
        return f"{type(self).__name__}(d={self.d}, {inner})"


def _check_enumerable(n):
    if n > MAX_ENUMERATION:
        raise NotEnumerable(f"support of {n} sketches is too large to enumerate")


class Identity(Sketch):
    """S = I: f_D = f, L_D = μ_D = L_S^max = 1."""

    name = "identity"

    def sample(self, rng, size):
        return np.ones((size, self.d))

    @property
    def moment_e(self):
        return np.zeros(self.d)

    @property
    def L_S_max(self):
        return 1.0

    @property
    def sparsity(self):
        return 0.0

    def support_size(self):
        return 1

    def enumerate(self):
        return np.ones((1, self.d)), np.ones(1)


def _as_probs(p, d, what="p"):
    p = np.broadcast_to(np.asarray(p, dtype=np.float64), (d,)).copy() if np.ndim(p) == 0 \
        else np.asarray(p, dtype=np.float64)
    if p.shape != (d,):
        raise MastError(f"{what} has {p.size} values, expected 1 or d={d}")
    bad = p[~((p > 0) & (p <= 1))]
    if bad.size:
        raise MastError(f"{what}={bad[0]:g} must be in (0, 1]")
    return p


class Bernoulli(Sketch):
    """Independent Bernoulli sketch (Example 1, dropout; ``eq:ind_sparse``).

    s_j = c_j/p_j with c_j ~ Bernoulli(p_j) independent, so E[s_j] = 1,
    E[s_j²] = 1/p_j, E[s_j s_k] = 1 (j ≠ k) and E[SᵀAS] = A + Diag((1/p_j − 1) A_jj).

    Parameters
    ----------
    d : int
    p : float or array (d,)
        Keep probabilities in (0, 1].
    """

    name = "bernoulli"

    def __init__(self, d, p):
        super().__init__(d)
        self.p = _as_probs(p, self.d)

    def sample(self, rng, size):
        keep = rng.random((size, self.d)) < self.p
        return keep / self.p

    @property
    def moment_e(self):
        return 1.0 / self.p - 1.0

    @property
    def L_S_max(self):
        return float(1.0 / self.p.min() ** 2)

    @property
    def sparsity(self):
        return round(float(1.0 - self.p.mean()), 12)

    def support_size(self):
        return 2 ** self.d

    def enumerate(self):
        _check_enumerable(2 ** self.d)
        masks = np.array(list(itertools.product([0, 1], repeat=self.d)), dtype=np.float64)
        w = np.prod(np.where(masks > 0, self.p, 1 - self.p), axis=1)
        keep = w > 0
        return masks[keep] / self.p, w[keep]

    def params(self):
        p = float(self.p[0]) if np.all(self.p == self.p[0]) else self.p.tolist()
        return {"sketch": self.name, "p": p, "sparsity": self.sparsity}


class DropoutUnscaled(Bernoulli):
    """Classic dropout mask **without** rescaling: s_j = c_j ~ Bernoulli(p_j).

    Biased (E[S] = Diag(p) ≠ I, outside Assumption 1): a baseline for the
    reviewers' comparison, deployed with test-time weight scaling x = p ⊙ x̃.
    E[s_j²] = p_j, E[s_j s_k] = p_j p_k.
    """

    name = "dropout-unscaled"
    unbiased = False

    def sample(self, rng, size):
        return (rng.random((size, self.d)) < self.p).astype(np.float64)

    def mean(self):
        return self.p.copy()

    @property
    def moment_u(self):
        return self.p

    @property
    def moment_e(self):
        return self.p - self.p ** 2

    @property
    def L_S_max(self):
        return 1.0

    def enumerate(self):
        S, w = super().enumerate()
        return S * self.p, w


class RandK(Sketch):
    """Random K-sparsification (Example 2): S = (d/K) Σ_{j∈T} e_j e_jᵀ, |T| = K uniform.

    E[s_j²] = d/K, E[s_j s_k] = d(K−1)/(K(d−1)), so
    E[SᵀAS] = [d(K−1)/(K(d−1))] A + [d(d−K)/(K(d−1))] Diag(A); L_D = μ_D = d/K,
    L_S^max = (d/K)².
    """

    name = "rand-k"

    def __init__(self, d, k):
        super().__init__(d)
        if isinstance(k, float) and not float(k).is_integer():
            raise MastError(f"K={k} must be an integer")
        k = int(k)
        if not 1 <= k <= self.d:
            raise MastError(f"K={k} must be in [1, d={self.d}]")
        self.k = k

    def sample(self, rng, size):
        keys = rng.random((size, self.d))
        out = np.zeros((size, self.d))
        if self.k == self.d:
            out[:] = 1.0
            return out
        idx = np.argpartition(keys, self.k - 1, axis=1)[:, : self.k]
        np.put_along_axis(out, idx, self.d / self.k, axis=1)
        return out

    @property
    def moment_c(self):
        d, k = self.d, self.k
        return 1.0 if d == 1 else d * (k - 1) / (k * (d - 1))

    @property
    def moment_e(self):
        return np.full(self.d, self.d / self.k - self.moment_c)

    @property
    def L_S_max(self):
        return float((self.d / self.k) ** 2)

    @property
    def sparsity(self):
        return (self.d - self.k) / self.d

    def support_size(self):
        return math.comb(self.d, self.k)

    def enumerate(self):
        m = math.comb(self.d, self.k)
        _check_enumerable(m)
        S = np.zeros((m, self.d))
        for r, T in enumerate(itertools.combinations(range(self.d), self.k)):
            S[r, list(T)] = self.d / self.k
        return S, np.full(m, 1.0 / m)

    def params(self):
        return {"sketch": self.name, "k": self.k, "sparsity": self.sparsity}


class PermK(Sketch):
    """Perm-K for M workers (mast-theory §2.3; Szlendak et al. 2022).

    One uniform permutation π of [d] is cut into M disjoint consecutive blocks of
    sizes q_i = ⌊d/M⌋ or ⌈d/M⌉ (the first d mod M blocks get one more).  Worker i
    keeps its block scaled by d/q_i, so every S_i is unbiased (coordinate j lies in
    block i with probability q_i/d).  When M divides d, all q_i = q = d/M, the scale
    is M and (1/M) Σ_i S_i = I exactly ("perfect reconstruction"); otherwise that
    identity holds in expectation only.  M ≤ d is required.

    As a single-sketch distribution (Algorithm 1) a sketch is the block of a
    uniformly random worker: a mixture of Rand-q_i, with
    E[s_j²] = (1/M) Σ_i d/q_i and E[s_j s_k] = (1/M) Σ_i d(q_i − 1)/(q_i(d − 1)).
    """

    name = "perm-k"

    def __init__(self, d, workers):
        super().__init__(d)
        if isinstance(workers, float) and not float(workers).is_integer():
            raise MastError(f"workers M={workers} must be an integer")
        M = int(workers)
        if M < 1:
            raise MastError(f"workers M={M} must be >= 1")
        if M > self.d:
            raise MastError(f"perm-k needs M <= d, got M={M} > d={self.d}")
        self.M = M
        self.q = np.array([d // M + (1 if i < d % M else 0) for i in range(M)])
        self.offsets = np.concatenate([[0], np.cumsum(self.q)])

    def _ranks(self, rng, size):
        keys = rng.random((size, self.d))
        return np.argsort(np.argsort(keys, axis=1), axis=1)

    def sample_blocks(self, rng, size):
        """Draw ``size`` permutations; returns (size, M, d): worker i's diagonal at [:, i]."""
        ranks = self._ranks(rng, size)
        lo = self.offsets[:-1][None, :, None]
        hi = self.offsets[1:][None, :, None]
        r = ranks[:, None, :]
        scale = (self.d / self.q)[None, :, None]
        return np.where((r >= lo) & (r < hi), scale, 0.0)

    def sample(self, rng, size):
        ranks = self._ranks(rng, size)
        w = rng.integers(self.M, size=size)
        lo, hi = self.offsets[w][:, None], self.offsets[w + 1][:, None]
        return np.where((ranks >= lo) & (ranks < hi), (self.d / self.q[w])[:, None], 0.0)

    @property
    def moment_c(self):
        if self.d == 1:
            return 1.0
        return float(np.mean(self.d * (self.q - 1) / (self.q * (self.d - 1))))

    @property
    def moment_e(self):
        return np.full(self.d, float(np.mean(self.d / self.q)) - self.moment_c)

    @property
    def L_S_max(self):
        return float((self.d / self.q.min()) ** 2)

    @property
    def sparsity(self):
        return 1.0 - 1.0 / self.M

    def support_size(self):
        return int(sum(math.comb(self.d, int(q)) for q in np.unique(self.q)))

    def enumerate(self):
        sizes, counts = np.unique(self.q, return_counts=True)
        rows, weights = [], []
        for q, cnt in zip(sizes, counts):
            m = math.comb(self.d, int(q))
            _check_enumerable(m)
            for T in itertools.combinations(range(self.d), int(q)):
                s = np.zeros(self.d)
                s[list(T)] = self.d / q
                rows.append(s)
                weights.append(cnt / self.M / m)
        return np.array(rows), np.array(weights)

    def params(self):
        return {"sketch": self.name, "workers": self.M, "sparsity": self.sparsity}


class Gaussian(Sketch):
    """[RECON] Multiplicative Gaussian sketch s_j ~ N(1, σ_j²) (mast-theory §2.4).

    E[SᵀAS] = A + Diag(σ_j² A_jj), E[SᵀS] = I + Diag(σ²); L_S^max = ∞, so the
    theorems that need it do not apply.  Matches Bernoulli's second moment at
    σ_j² = 1/p_j − 1.
    """

    name = "gaussian"

    def __init__(self, d, sigma):
        super().__init__(d)
        sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (self.d,)).copy()
        if not np.all(np.isfinite(sigma)) or np.any(sigma < 0):
            raise MastError(f"sigma={sigma[~(np.isfinite(sigma) & (sigma >= 0))][0]:g} must be >= 0")
        self.sigma = sigma

    def sample(self, rng, size):
        return 1.0 + self.sigma * rng.standard_normal((size, self.d))

    @property
    def moment_e(self):
        return self.sigma ** 2

    @property
    def L_S_max(self):
        return math.inf if np.any(self.sigma > 0) else 1.0

    @property
    def sparsity(self):
        """The variance-matched Bernoulli sparsity 1 − 1/(1 + σ²) (mean over coordinates).

        A Gaussian sketch zeroes nothing; this is the sparsity s of the Bernoulli sketch
        with the same E[SᵀS] (σ² = 1/p − 1, p = 1 − s), so that runs made with
        ``--sparsity`` are recorded, plotted and compared at the level they were asked for.
        """
        return round(float(np.mean(1.0 - 1.0 / (1.0 + self.sigma ** 2))), 12)

    def params(self):
        s = float(self.sigma[0]) if np.all(self.sigma == self.sigma[0]) else self.sigma.tolist()
        return {"sketch": self.name, "sigma": s, "sparsity": self.sparsity}


#: name -> Sketch class: the built-in families, then plug-ins of the entry-point group
#: ``mast.sketches`` (see :mod:`mast_cli.io.plugins` and README "Extending mast")
SKETCHES = Registry(SKETCH_GROUP, {
    "identity": Identity,
    "bernoulli": Bernoulli,
    "rand-k": RandK,
    "perm-k": PermK,
    "gaussian": Gaussian,
    "dropout-unscaled": DropoutUnscaled,
})


def _round_half_up(x):
    """Nearest integer, halves up (Python's round() sends 6.5 to 6)."""
    return int(np.floor(x + 0.5 + 1e-9))


def sparsity_to_param(name, d, sparsity):
    """Map a sparsity level s ∈ [0, 1) to the sketch parameter.

    bernoulli / dropout-unscaled: p = 1 − s; rand-k: K = round((1 − s) d) (halves up, at
    least 1); perm-k: M = round(1/(1 − s)) workers (halves up); gaussian: σ = sqrt(1/(1 − s) − 1) (matched
    variance with Bernoulli).
    """
    if not np.isfinite(sparsity) or not 0 <= sparsity < 1:
        raise MastError(f"sparsity {sparsity:g} must be in [0, 1)")
    if name in ("bernoulli", "dropout-unscaled"):
        return {"p": 1.0 - sparsity}
    if name == "rand-k":
        return {"k": max(1, _round_half_up((1.0 - sparsity) * d))}
    if name == "perm-k":
        return {"workers": min(d, max(1, _round_half_up(1.0 / (1.0 - sparsity))))}
    if name == "gaussian":
        return {"sigma": float(np.sqrt(1.0 / (1.0 - sparsity) - 1.0))}
    if name == "identity":
        return {}
    raise MastError(f"unknown sketch '{name}'; choose one of {', '.join(SKETCHES)}")


def make_sketch(name, d, p=None, k=None, workers=None, sigma=None, sparsity=None):
    """Build a sketch by name from an explicit parameter or a sparsity level.

    Parameters
    ----------
    name : str
        One of :data:`SKETCHES`.
    d : int
    p, k, workers, sigma : optional
        The family's parameter (keep probability, K, number of workers M, σ).
    sparsity : float, optional
        Used when the explicit parameter is not given (see :func:`sparsity_to_param`).

    Returns
    -------
    Sketch
    """
    if name not in SKETCHES:
        raise MastError(f"unknown sketch '{name}'; choose one of {', '.join(SKETCHES)}")
    if SKETCHES.is_plugin(name):
        return _plugin_sketch(name, d, p=p, k=k, workers=workers, sigma=sigma, sparsity=sparsity)
    given = {"p": p, "k": k, "workers": workers, "sigma": sigma}
    if sparsity is not None:
        for key, val in sparsity_to_param(name, d, sparsity).items():
            if given[key] is None:
                given[key] = val
    if name == "identity":
        return Identity(d)
    if name in ("bernoulli", "dropout-unscaled"):
        if given["p"] is None:
            raise MastError(f"sketch '{name}' needs --p or --sparsity")
        return SKETCHES[name](d, given["p"])
    if name == "rand-k":
        if given["k"] is None:
            raise MastError("sketch 'rand-k' needs --k or --sparsity")
        return RandK(d, given["k"])
    if name == "perm-k":
        if given["workers"] is None:
            raise MastError("sketch 'perm-k' needs --workers or --sparsity")
        return PermK(d, given["workers"])
    if given["sigma"] is None:
        raise MastError("sketch 'gaussian' needs --sigma or --sparsity")
    return Gaussian(d, given["sigma"])


def _plugin_sketch(name, d, **options):
    """A plug-in sketch: ``cls.from_options(d, p=, k=, workers=, sigma=, sparsity=)`` when the
    class defines it (it raises :class:`MastError` for a missing or bad parameter), else ``cls(d)``.

    Raises
    ------
    MastError
        When options are given to a class without ``from_options``, or the plug-in does not
        return a :class:`Sketch` of dimension ``d``.
    """
    cls = SKETCHES[name]
    given = [k for k, v in options.items() if v is not None]
    build = getattr(cls, "from_options", None)
    if build is None:
        if given:
            raise MastError(f"sketch '{name}' takes no parameter (got --{given[0]})")
        sk = cls(d)
    else:
        sk = build(d, **options)
    if not isinstance(sk, Sketch) or sk.d != d:
        raise MastError(f"plug-in sketch '{name}' did not build a mast_cli Sketch of dimension {d}")
    return sk
