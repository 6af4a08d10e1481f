"""What every check sees: the problem, the sketch, its pool and reference, shared draws.

:func:`load_verify_problem` builds the dataset's objective, shift and ERM reference once
per run; :class:`Context` holds, for one sketch distribution, everything that several
checks share (the pool D_pool, x*_D and Δ, the constants, the lemma test points, the seeds),
each computed on first use and cached on the context (not in any module-level table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..io.errors import MastError

__all__ = ["Problem", "Context", "load_verify_problem", "FixedSketch"]


@dataclass
class Problem:
    """The dataset's objective, shift v and ERM reference x*, f^inf."""

    name: str
    obj: object
    v: np.ndarray
    x_star: np.ndarray
    f_inf: float
    convex: bool
    erm_info: dict


def load_verify_problem(cfg):
    """Dataset, objective, shift and the ERM reference x*, f^inf (Newton, ‖∇f‖ ≤ 1e-10).

    Raises
    ------
    MastError
        When Newton's method does not reach ‖∇f‖ ≤ 1e-10.
    """
    from ..io.data import load_dataset
    from ..core.objective import make_objective
    from ..solvers.newton import solve_erm

    ds = load_dataset(cfg.dataset)
    lam = cfg.lam
    if lam is None:
        from .regime import auto_lambda

        lam = auto_lambda(ds.X, cfg.objective)
    obj = make_objective(cfg.objective, ds.X, ds.y, lam)
    x_star, info = solve_erm(obj)
    if not info["converged"] and info["grad_norm"] > 1e-10:
        raise MastError(f"Newton on f stopped at ‖∇f‖ = {info['grad_norm']:.2e} > 1e-10")
    v = np.zeros(obj.d) if cfg.shift == "zero" else x_star.copy()
    return Problem(ds.name, obj, v, x_star, float(obj.value(x_star)), bool(obj.convex), info)


class FixedSketch:
    """The point mass at one diagonal s (a 'distribution' for one engine column)."""

    unbiased = True

    def __init__(self, s):
        self.s = np.asarray(s, dtype=np.float64)
        self.d = self.s.size

    def sample(self, rng, size):
        return np.tile(self.s, (size, 1))


@dataclass
class Context:
    """Shared state of the checks for one (problem, sketch distribution).

    Attributes
    ----------
    prob : Problem
    sketch : Sketch
        The distribution D as the product builds it (:func:`mast_cli.sketches.make_sketch`).
    cfg : VerifyConfig (resolved)
    rng : numpy.random.Generator
        Draws the pool, the fresh sketches, the lemma test points and the finite-difference
        directions, in the order the checks run.
    mrng : numpy.random.Generator
        Draws the sketches of the ‖∇f_D‖² estimates of the min-over-t checks.
    sweep : dict
        Per-sketch information reported beside the table (checks may add entries).
    """

    prob: object
    sketch: object
    cfg: object
    rng: np.random.Generator = None
    mrng: np.random.Generator = None
    sweep: dict = field(default_factory=dict)
    #: scratch space shared by the checks of this context (e.g. one set of sampler draws)
    cache: dict = field(default_factory=dict)
    #: rows produced so far by the battery (read by checks about other checks, e.g. se-positive)
    rows: list = field(default_factory=list)

    def __post_init__(self):
        if self.rng is None:
            self.rng = np.random.default_rng([self.cfg.seed, 7919])
        if self.mrng is None:
            self.mrng = np.random.default_rng([self.cfg.seed, 31337])

    # --- shorthands ----------------------------------------------------------------------
    @property
    def obj(self):
        return self.prob.obj

    @property
    def v(self):
        return self.prob.v

    @property
    def convex(self):
        return self.prob.convex

    @property
    def R(self):
        return self.cfg.seeds

    @property
    def seeds(self):
        return np.arange(self.cfg.seeds) + 1000 * self.cfg.seed

    @property
    def f_low(self):
        """f^inf (convex objective) or the certified lower bound ℓ = 0 ≤ f (non-convex)."""
        return self.prob.f_inf if self.convex else 0.0

    # --- shared computations (first use) ---------------------------------------------------
    @cached_property
    def ref(self):
        """:class:`~mast_cli.reference.Reference`: D_pool, x*_D, f_D^inf, Δ."""
        from ..reference import compute_reference

        return compute_reference(self.obj, self.sketch, self.v, N=self.cfg.pool, rng=self.rng, tol=1e-10,
                                 fresh=self.cfg.fresh, x_star=self.prob.x_star)

    @property
    def pool(self):
        return self.ref.pool

    @cached_property
    def P(self):
        """f_pool as a :class:`~mast_cli.reference.PoolObjective`."""
        from ..core.pool import PoolObjective

        return PoolObjective(self.obj, self.pool, self.v)

    @cached_property
    def L_f(self):
        return float(self.obj.smoothness())

    @property
    def mu(self):
        return float(self.obj.mu)

    @cached_property
    def Es2(self):
        return self.pool.diag_second_moment()

    def _closed(self, name):
        val = float(getattr(self.sketch, name))
        return val if math.isfinite(val) else None

    @property
    def L_D(self):
        """L_D for the bounds: max of the pool's own and the sketch class's closed form."""
        c = self._closed("L_D")
        return self.pool.L_D if c is None else max(self.pool.L_D, c)

    @property
    def mu_D(self):
        """μ_D for the bounds: min of the pool's own and the closed form."""
        c = self._closed("mu_D")
        return self.pool.mu_D if c is None else min(self.pool.mu_D, c)

    @property
    def L_S(self):
        """L_S^max for the bounds: max of the pool's own and the closed form (both are
        cross-checked by ``pool-constants`` and ``sketch-L_S_max``)."""
        c = self._closed("L_S_max")
        return self.pool.L_S_max if c is None else max(self.pool.L_S_max, c)

    @cached_property
    def points(self):
        """Lemma test points: (X (d, K), f(X), f_pool(X), ‖x − v‖²_P per column)."""
        from ..core import theory

        X = _test_points(self.prob, self.ref, self.cfg.points, self.rng)
        fX = np.atleast_1d(self.obj.value(X))
        fDX = self.P.value(X)
        pn = np.array([theory.p_norm_sq(X[:, k] - self.v, self.Es2) for k in range(X.shape[1])])
        return X, fX, fDX, pn

    @cached_property
    def sketched_grads_at_points(self):
        """∇f_{S_j}(x_k) for every pooled sketch and test point: (d, N, K)."""
        return self.P.sketched_grads(self.points[0])

    def tol_for(self, *vals):
        """Floating-point tolerance of an exact comparison between values of this size."""
        from .result import EXACT_RTOL

        return EXACT_RTOL * max(1.0, *[abs(float(x)) for x in vals])


def _test_points(prob, ref, K, rng):
    """K points at which the lemmas are checked: x*, x*_D and random points around x*."""
    d = prob.obj.d
    scale = max(float(np.linalg.norm(prob.x_star)), 1.0)
    pts = [prob.x_star, ref.x_D]
    radii = [0.1, 1.0, 0.3, 3.0, 0.03]
    for k in range(max(0, K - 2)):
        xi = rng.standard_normal(d)
        pts.append(prob.x_star + radii[k % len(radii)] * scale * xi / np.linalg.norm(xi))
    X = np.stack(pts[:K], axis=1)
    # a point equal to v makes both sides 0: move it off v
    same = np.linalg.norm(X - prob.v[:, None], axis=0) == 0
    X[:, same] += 0.1 * scale / math.sqrt(d)
    return X
