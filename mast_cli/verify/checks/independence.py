"""Independence of the trajectories' randomness, and standard errors that can be trusted.

Every stochastic check divides by the standard error of a mean over seeds; that is only a
standard error if the trajectories are independent.  The engine's one-step noise
ξ_r = g_r − ∇f_pool(x) (g_r the step of trajectory r from a fixed x, ∇f_pool(x) exact) is
zero-mean; for independent trajectories the products p_k = ⟨ξ_{2k}, ξ_{2k+1}⟩ of disjoint
pairs are i.i.d. with mean 0.  A two-sided t-type test (99%) of mean(p) = 0 rejects when the
seeds share their draws (identical seeding makes every p_k = ‖ξ‖² > 0).
"""

from __future__ import annotations

import math

import numpy as np

from ..context import FixedSketch  # noqa: F401  (re-exported for tests)
from ..result import GROUP, CheckResult, z_bonferroni

__all__ = ["independence", "se_positive"]

#: Trajectory pairs of the independence test (quick, full).
PAIRS = {True: 200, False: 400}


def _noise(ctx, batch):
    from ... import algorithms

    obj, v = ctx.obj, ctx.v
    R = 2 * PAIRS[bool(ctx.cfg.quick)]
    x = ctx.points[0][:, -1]
    seeds = np.arange(R) + 30_000_000 + 1000 * ctx.cfg.seed
    kw = {} if batch is None else {"batch_size": batch}
    h = algorithms.dsgd(obj, [ctx.pool] * R, np.ones(R), seeds, 1, x0=x, v=v, **kw)
    return (x[:, None] - h.x_final) - ctx.P.grad(x)[:, None]            # (d, R)


def independence(ctx):
    """Different seeds give uncorrelated one-step noise (Alg. 1 (I) sketches and Alg. 1 (II) rows)."""
    rows = []
    tau = min(ctx.cfg.batch, ctx.obj.n - 1)
    for label, batch in (("Alg. 1 (I), sketch streams", None), (f"Alg. 1 (II) τ={tau}, sketch + row streams", tau)):
        if batch is not None and batch < 1:
            continue
        xi = _noise(ctx, batch)
        p = np.sum(xi[:, 0::2] * xi[:, 1::2], axis=0)                   # (PAIRS,)
        m = p.size
        mean = float(p.mean())
        se = float(p.std(ddof=1) / math.sqrt(m))
        z = abs(mean) / se if se > 0 else (math.inf if mean != 0 else 0.0)
        scale = float(np.mean(np.sum(xi * xi, axis=0)))
        rows.append(CheckResult(
            "independence", f"{label}: E⟨ξ_r, ξ_r'⟩ = 0 for seeds r ≠ r' (noise ξ = g − ∇f_pool(x))", z,
            z_bonferroni(2), kind="stochastic", samples=m, recon=False, bonferroni_group=GROUP, bonferroni_tests=2,
            notes=f"|z| of the mean pair product {mean:.3g} ± {se:.2g} (two-sided); "
                  f"correlation {mean / scale if scale > 0 else float('nan'):.3g}"))
    return rows


def se_positive(ctx):
    """Every stochastic rate row so far has a standard error > 0 (R independent seeds really vary)."""
    rates = [r for r in ctx.rows if r.kind == "stochastic" and r.is_rate and math.isfinite(r.observed)]
    if not rates:
        return []
    zero = [r.check for r in rates if not r.se > 0]
    return CheckResult("se-positive", "every stochastic rate check has a standard error > 0 over its seeds",
                       float(len(zero)), 0.0, samples=len(rates), recon=False,
                       notes=("zero standard error: " + ", ".join(zero)) if zero else f"{len(rates)} rows, all se > 0")
