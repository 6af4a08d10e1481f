"""Algorithm 2 with M workers, every worker sketched by D_pool (F = f_pool exactly; §5)."""

from __future__ import annotations

import math

import numpy as np

from ...core import theory
from ..result import CheckResult, stochastic_final, stochastic_min

__all__ = ["alg2", "thm5"]


def _split(ctx):
    from ... import algorithms

    M = min(ctx.cfg.workers, ctx.obj.n)
    part = algorithms.partition_rows(ctx.obj.n, M, "random", rng=np.random.default_rng([ctx.cfg.seed, 2]))
    return M, algorithms.WorkerSplit(ctx.obj, part)


def alg2(ctx):
    """Strongly convex Algorithm 2: E‖x^T − x*‖² ≤ (1 − γμ)^T r₀ + 2γA(F^inf − mean f_i^inf)/μ."""
    from ... import algorithms
    from ...core.objective import make_objective
    from ...solvers.newton import solve_erm

    obj, v, R, T = ctx.obj, ctx.v, ctx.R, ctx.T
    M, split = _split(ctx)
    L_loc = split.local_smoothness()
    L_S, mu_D = ctx.L_S, ctx.mu_D
    x0 = np.zeros(obj.d)
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
    x_D = ctx.ref.x_D
    h = algorithms.distributed_dsgd(obj, split, [ctx.pool] * R, [gam] * R, ctx.seeds + 5_000_000, T, x0=x0, v=v,
                                    log_every=ctx.log_every,
                                    metrics_fn=lambda Xc: {"e": np.sum((Xc - x_D[:, None]) ** 2, axis=0)})
    m, se, nt = stochastic_final(h.metrics["e"], "Algorithm 2")
    r0 = float(np.sum((x0 - x_D) ** 2))
    return CheckResult(
        "alg2", f"Alg. 2 (M={M}): E‖x^T − x*‖² ≤ (1 − γμ)^T‖x⁰ − x*‖² + 2γA(F^inf − mean f_i^inf)/μ, T={T}",
        m, float(theory.distributed_strongly_convex(T, gam, mu, r0, A, gap)), kind="stochastic", se=se,
        samples=R, notes=nt or f"γ = 1/max_i L_fi L_S^max = {gam:.4g}, gap = {gap:.4g}")


def thm5(ctx):
    """Theorem 5 (non-convex): min_t<T E‖∇F(x^t)‖² ≤ 6(F(x⁰) − ℓ)/(γT), certified ℓ = 0."""
    from ... import algorithms
    from ...core.evaluation import grad_norm_sq_estimate

    obj, v, R, T = ctx.obj, ctx.v, ctx.R, ctx.T
    M, split = _split(ctx)
    L_loc = split.local_smoothness()
    x0 = np.zeros(obj.d)
    D = float(np.max(L_loc * ctx.L_D) * np.max(L_loc * ctx.L_S))
    gam = 1.0 / math.sqrt(D * T)
    h = algorithms.distributed_dsgd(obj, split, [ctx.pool] * R, [gam] * R, ctx.seeds + 5_000_000, T, x0=x0, v=v,
                                    log_every=max(1, T // 10),
                                    metrics_fn=lambda Xc: {"g": grad_norm_sq_estimate(ctx.P, Xc, ctx.mrng)[0]})
    m, se, tstar = stochastic_min(h.iterations, h.metrics["g"], T)
    return CheckResult(
        "thm5", f"Theorem 5 (M={M}): min_t<T E‖∇F(x^t)‖² ≤ 6(F(x⁰) − F^inf)/(γT) + 2γD·gap, T={T}",
        m, theory.theorem5_distributed(T, gam, D, float(ctx.P.value(x0)), 0.0), kind="stochastic", se=se,
        samples=R, notes=(f"at t = {tstar}; " if tstar >= 0 else "diverged; ")
        + "D = (max L_fi L_Di)(max L_fi L_Si^max) ≥ D_max; certified ℓ = 0 ≤ f_i")
