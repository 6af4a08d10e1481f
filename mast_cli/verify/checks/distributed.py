"""Algorithm 2 with M workers, every worker sketched by D_pool (F = f_pool exactly; §5).

Both checks run in the regime of :mod:`mast_cli.verify.regime` and report ``null``.
"""

from __future__ import annotations

import math

import numpy as np

from ...core import theory
from .. import regime
from .rates import gradient_start, _min_T

__all__ = ["alg2", "thm5", "worker_independence"]


def _split(ctx):
    from ... import algorithms

    M = min(ctx.cfg.workers, ctx.obj.n)
    part = algorithms.partition_rows(ctx.obj.n, M, "random", rng=np.random.default_rng([ctx.cfg.seed, 2]))
    return M, algorithms.WorkerSplit(ctx.obj, part)


def alg2(ctx):
    """Strongly convex Algorithm 2: E‖x^t − x*‖² ≤ (1 − γμ)^t r₀ + 2γA(F^inf − mean f_i^inf)/μ, every logged t."""
    from ... import algorithms
    from ...core.objective import make_objective
    from ...solvers.newton import solve_erm

    obj, v, R = ctx.obj, ctx.v, ctx.R
    M, split = _split(ctx)
    L_loc = split.local_smoothness()
    L_S, mu_D = ctx.L_S, ctx.mu_D
    # f_i = w_i·(mean logistic on P_i) + (λ/2)‖x‖² = w_i·LogisticL2(A_i, b_i, λ/w_i)
    f_i_inf = []
    for w_i, obj_i in split.local_objectives():
        o = make_objective(obj.name, obj_i.A, obj_i.b, obj.lam / w_i)
        xi, _ = solve_erm(o)
        f_i_inf.append(w_i * float(o.value(xi)))
    gap = ctx.ref.f_D_inf - float(np.mean(f_i_inf))
    A = float(np.max(L_loc * L_S))
    gam = theory.step_distributed(L_loc, [L_S] * M)
    mu = float(obj.mu) * mu_D
    rho = 1.0 - gam * mu
    nb = 2.0 * gam * A * gap / mu
    T = regime.linear_horizon(rho, ctx.cfg.iters, ctx.cfg.quick)
    x_D = ctx.ref.x_D
    x0, r0 = regime.far_start(x_D, np.zeros(obj.d), 2 * regime.TARGET_POWER * nb)
    h = algorithms.distributed_dsgd(obj, split, [ctx.pool] * R, [gam] * R, ctx.seeds + 5_000_000, T, x0=x0, v=v,
                                    log_every=regime.log_every(T),
                                    metrics_fn=lambda Xc: {"e": np.sum((Xc - x_D[:, None]) ** 2, axis=0)})
    bounds = theory.distributed_strongly_convex(h.iterations, gam, mu, r0, A, gap)
    return regime.logged_check(
        "alg2", f"Alg. 2 (M={M}): E‖x^t − x*‖² ≤ (1 − γμ)^t‖x⁰ − x*‖² + 2γA(F^inf − mean f_i^inf)/μ, t ≤ T={T}",
        h.iterations, h.metrics["e"], np.asarray(bounds, dtype=np.float64), r0, "Algorithm 2",
        f"γ = 1/max_i L_fi L_S^max = {gam:.4g}, gap = {gap:.4g}, neighbourhood {nb:.3g}, r₀ = {r0:.4g}")


def thm5(ctx):
    """Theorem 5 (non-convex): min_t<T' E‖∇F(x^t)‖² ≤ 6(F(x⁰) − ℓ)/(γT'), certified ℓ = 0, every logged T'."""
    from ... import algorithms
    from ...core.evaluation import grad_norm_sq_estimate

    obj, v, R = ctx.obj, ctx.v, ctx.R
    M, split = _split(ctx)
    L_loc = split.local_smoothness()
    D = float(np.max(L_loc * ctx.L_D) * np.max(L_loc * ctx.L_S))
    x0, g0, c = gradient_start(ctx, lambda x: 6.0 * float(ctx.P.value(x)) * math.sqrt(D))
    T = _min_T(g0 / c, ctx.cfg.iters, ctx.cfg.quick)
    gam = 1.0 / math.sqrt(D * T)
    F0 = float(ctx.P.value(x0))
    h = algorithms.distributed_dsgd(obj, split, [ctx.pool] * R, [gam] * R, ctx.seeds + 5_000_000, T, x0=x0, v=v,
                                    log_every=regime.log_every(T),
                                    metrics_fn=lambda Xc: {"g": grad_norm_sq_estimate(ctx.P, Xc, ctx.mrng)[0]})
    return regime.min_over_t_check(
        "thm5", f"Theorem 5 (M={M}): min_t<T' E‖∇F(x^t)‖² ≤ 6(F(x⁰) − F^inf)/(γT') + 2γD·gap, T' ≤ T={T}",
        h.iterations, h.metrics["g"], lambda Tp: theory.theorem5_distributed(Tp, gam, D, F0, 0.0), g0,
        "D = (max L_fi L_Di)(max L_fi L_Si^max) ≥ D_max; certified ℓ = 0 ≤ f_i")


#: Joint draws of the worker-independence check (quick, full).
WORKER_DRAWS = {True: 5000, False: 15000}


def worker_independence(ctx):
    """Algorithm 2's joint law with independent workers (``WorkerSketches(D, M).sample``, what the
    engine draws): E[s_i] = 1 for every worker, and E[s_{i,k} s_{j,k}] = E[s_i]E[s_j] = 1 for
    workers i ≠ j (independent, unbiased sketches), per coordinate k.  Two-sided z-tests on the
    sample means, Bonferroni over all comparisons and over the run's other stochastic rows
    (group ``stochastic``, family-wise 99%).  Workers sharing a stream or
    a seed make s_i = s_j and E[s_{i,k} s_{j,k}] = E[s_k²] = 1 + P_kk > 1."""
    from ...algorithms import WorkerSketches
    from ...core.sketches import PermK
    from .sketches import _zrow

    if isinstance(ctx.sketch, PermK):
        return []
    M = max(2, min(ctx.cfg.workers, ctx.obj.n))
    m = WORKER_DRAWS[bool(ctx.cfg.quick)]
    B = WorkerSketches(ctx.sketch, M).sample(np.random.default_rng([ctx.cfg.seed, 4245]), m)    # (m, M, d)
    i, j = np.triu_indices(M, 1)
    prod = B[:, i, :] * B[:, j, :]                                                           # (m, pairs, d)
    dev = np.concatenate([(B.mean(axis=0) - 1.0).ravel(), (prod.mean(axis=0) - 1.0).ravel()])
    se = np.concatenate([(B.std(axis=0, ddof=1) / math.sqrt(m)).ravel(),
                         (prod.std(axis=0, ddof=1) / math.sqrt(m)).ravel()])
    row = _zrow("alg2-workers", f"§5: Alg. 2's M={M} worker sketches are independent and unbiased: E[s_i] = 1, "
                "E[s_{i,k}s_{j,k}] = 1 for i ≠ j", dev, se, m, f"{i.size} worker pairs × d coordinates")
    return row
