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

from .core.evaluation import mc_value
from .core.pool import EmpiricalSketch, PoolObjective, make_pool
from .io.errors import MastError
from .solvers.newton import solve_erm
from .solvers.pool import solve_pool

# Deprecated re-exports (for one release): these moved to core.pool, solvers.pool and
# core.evaluation; nothing inside mast_cli imports them from here.
from .core.evaluation import grad_norm_sq_estimate  # noqa: E402,F401
from .solvers.pool import solve_enumerated  # noqa: E402,F401

__all__ = ["Reference", "compute_reference", "pool_minimum"]


def pool_minimum(obj, S, v):
    """(x*_pool, f_pool^inf, standard error of f_D at x*_pool over the pool).

    Parameters
    ----------
    obj : LogisticObjective
        The objective f.
    S : ndarray of shape (N, d)
        A uniform pool of sketch diagonals.
    v : ndarray of shape (d,)
        Shift.

    Returns
    -------
    x : ndarray of shape (d,)
        x*_pool.
    f_pool_inf : float
        f_pool(x*_pool), the SAA estimate of f_D^inf (mast-theory §3.4).
    se : float
        Standard deviation of f(v + s_j ⊙ (x − v)) over the pool divided by √N (0 for N = 1).
    """
    x, info = solve_pool(obj, S, v)
    Y = v[:, None] + S.T * (x - v)[:, None]
    vals = obj.value(Y)
    se = float(vals.std(ddof=1) / np.sqrt(len(vals))) if len(vals) > 1 else 0.0
    return x, float(vals.mean()), se


@dataclass
class Reference:
    """Reference quantities of one (objective, sketch, shift).

    Parameters
    ----------
    pool : EmpiricalSketch
        D_pool (exact enumeration of D when ``pool.exact``).
    v : ndarray of shape (d,)
        The shift.
    x_star : ndarray of shape (d,)
        ERM minimizer x* (Newton, ‖∇f‖ ≤ tol).
    f_inf : float
        f^inf = f(x*).
    x_D : ndarray of shape (d,)
        Minimizer of f_pool (= x*_D when exact), mast-theory §3.3.
    f_D_inf : float
        Minimum of f_pool (= f_D^inf when exact).
    delta : float
        f_D_inf − f_inf (Δ of D_pool; the SAA estimate of Δ of D), mast-theory §3.4.
    se_f_D_inf : float
        Monte Carlo standard error of f_D^inf as an estimate for D: the standard
        deviation of f(y_j) at x_D over the pool divided by √N (0 when exact).
    fresh : dict
        f_D(x_D) re-estimated on ``m`` fresh sketches of D (independent of the pool):
        an unbiased estimate of f_D(x_D) ≥ f_D^inf, with its standard error.
    info : dict
        Newton diagnostics (``erm``, ``pool``).
    x_D_se : float
        Monte Carlo standard error of x_D as an estimate of x*_D, in norm:
        √(tr(H⁻¹ Σ H⁻¹)/N) with H = ∇²f_pool(x_D) and Σ the covariance of the per-sketch
        gradients s_j ⊙ ∇f(y_j) at x_D (M-estimator asymptotics; 0 when exact).
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
        """JSON-ready summary (no arrays).

        Returns
        -------
        dict
            Scalars: pool size, f^inf, f_D^inf and Δ with standard errors, distances,
            the pool's constants and the Newton gradient norms.
        """
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


def _check_reference_memory(obj, pool):
    """The SAA standard error needs the dense pool Hessian (d × d) and Hessian-product blocks:
    refuse before allocating when they cannot fit (issue 16 #3)."""
    if pool.exact:
        return
    from .core.pool import MAX_BATCH_ENTRIES
    from .io.memory import check_memory

    d, n, N = int(obj.d), int(obj.n), int(pool.N)
    block = min(d, max(1, MAX_BATCH_ENTRIES // max(1, n * N)))
    check_memory([(f"dense pool Hessian and its solve (3 × d × d, d = {d})", 24.0 * d * d),
                  (f"Hessian-product blocks (2 × d × {block} × N, N = {N})", 16.0 * d * block * N),
                  (f"per-sketch gradients (3 × d × N)", 24.0 * d * N)],
                 "the sketch-pool reference (x*_D and its standard error)")


def compute_reference(obj, sketch, v=None, N=64, rng=None, tol=1e-10, fresh=256, x_star=None,
                      enumerate_max=8192):
    """x*, f^inf, and x*_D, f_D^inf, Δ on the pool of ``sketch`` (or its exact enumeration).

    Parameters
    ----------
    obj : LogisticObjective
        The objective f.
    sketch : Sketch or EmpiricalSketch
        The distribution D (mast-theory §3.3).
    v : ndarray of shape (d,), optional
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
    x_star : ndarray of shape (d,), optional
        Known ERM minimizer.
    enumerate_max : int, default=8192
        Enumerate the support of D exactly when it has at most this many points.

    Returns
    -------
    Reference
        The reference quantities, with Newton diagnostics.

    Raises
    ------
    MastError
        When Newton on the pool does not reach ‖∇f_pool‖ ≤ tol.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    v = np.zeros(obj.d) if v is None else np.asarray(v, dtype=np.float64)
    if x_star is None:
        x_star, erm = solve_erm(obj, tol=min(tol, 1e-10))
    else:
        erm = {"grad_norm": float(np.linalg.norm(obj.grad(x_star)))}
    pool = make_pool(sketch, N, rng, enumerate_max=enumerate_max)
    _check_reference_memory(obj, pool)
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
