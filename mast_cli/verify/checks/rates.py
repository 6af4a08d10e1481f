"""Rate theorems of Algorithm 1: Theorems 2 (I and II forms), 3 and 4 (mast-theory §5).

Each check runs in the regime of :mod:`mast_cli.verify.regime` (horizon and start chosen for
power ≥ 2), is checked at every logged t, and reports ``null`` (the statistic for γ = 0).
"""

from __future__ import annotations

import math

import numpy as np

from ...core import theory
from .. import regime
from ..result import CheckResult

__all__ = ["thm2", "thm2_interp", "thm2_II", "thm3", "thm4", "gradient_start"]


def _dist_metric(center):
    return lambda Xc: {"e": np.sum((Xc - center[:, None]) ** 2, axis=0)}


def thm2(ctx):
    """Theorem 2, Algorithm 1 (I), γ = 1/(L_f L_S^max), at every logged t."""
    from ... import algorithms

    obj, v, R, x_D = ctx.obj, ctx.v, ctx.R, ctx.ref.x_D
    gam = theory.step_dsgd(ctx.L_f, ctx.L_S)
    rho = theory.contraction_dsgd(gam, ctx.mu, ctx.mu_D)
    nb = theory.theorem2_neighbourhood(gam, ctx.L_f, ctx.mu, ctx.mu_D, ctx.L_S, ctx.ref.delta)
    T = regime.linear_horizon(rho, ctx.cfg.iters, ctx.cfg.quick)
    x0, r0 = regime.far_start(x_D, np.zeros(obj.d), 2 * regime.TARGET_POWER * nb)
    h = algorithms.dsgd(obj, [ctx.pool] * R, [gam] * R, ctx.seeds, T, x0=x0, v=v, log_every=regime.log_every(T),
                        metrics_fn=_dist_metric(x_D))
    bounds = theory.theorem2(h.iterations, gam, ctx.L_f, ctx.mu, ctx.mu_D, ctx.L_S, r0, ctx.ref.delta)
    return regime.logged_check(
        "thm2", f"Theorem 2: E‖x^t − x*_D‖² ≤ ρ^t‖x⁰ − x*_D‖² + 2γL_fL_S^maxΔ/(μ_fμ_D), t ≤ T={T}",
        h.iterations, h.metrics["e"], bounds, r0, "Algorithm 1",
        f"γ = 1/(L_f L_S^max) = {gam:.4g}, ρ = {rho:.6f}, neighbourhood {nb:.3g}, ‖x⁰ − x*_D‖² = {r0:.4g}")


def thm2_interp(ctx):
    """Theorem 2 under interpolation: v = x*, Δ = 0, linear rate (and measured contraction)."""
    from ... import algorithms

    obj, R, d = ctx.obj, ctx.R, ctx.obj.d
    gam = theory.step_dsgd(ctx.L_f, ctx.L_S)
    rho = theory.contraction_dsgd(gam, ctx.mu, ctx.mu_D)
    T = regime.linear_horizon(rho, ctx.cfg.iters, ctx.cfg.quick)
    xs = ctx.prob.x_star
    xi0 = np.zeros(d) if np.linalg.norm(xs) > 0 else np.full(d, 1.0 / math.sqrt(d))
    r0i = float(np.sum((xi0 - xs) ** 2))
    h = algorithms.dsgd(obj, [ctx.pool] * R, [gam] * R, ctx.seeds + 1_000_000, T, x0=xi0, v=xs,
                        log_every=regime.log_every(T), metrics_fn=_dist_metric(xs))
    bounds = theory.theorem2(h.iterations, gam, ctx.L_f, ctx.mu, ctx.mu_D, ctx.L_S, r0i, 0.0)
    row = regime.logged_check(
        "thm2-interp", f"Theorem 2, v = x* (Δ = 0): E‖x^t − x*‖² ≤ (1 − γμ_fμ_D)^t‖x⁰ − x*‖², t ≤ T={T}",
        h.iterations, h.metrics["e"], bounds, r0i, "interpolation", f"ρ = {rho:.6f}")
    e_mean = np.nanmean(h.metrics["e"], axis=1)
    it = h.iterations
    j0 = int(np.argmin(np.abs(it - T // 2)))
    if e_mean[-1] > 0 and e_mean[j0] > 0 and it[-1] > it[j0]:
        rho_meas = float((e_mean[-1] / e_mean[j0]) ** (1.0 / (it[-1] - it[j0])))
    else:
        rho_meas = float("nan")
    ctx.sweep.update(rho_predicted=rho, rho_measured=rho_meas, gamma=gam,
                     rate_predicted=-math.log(rho) if rho > 0 else math.inf,
                     rate_measured=-math.log(rho_meas) if rho_meas > 0 else float("nan"))
    return row


def thm2_II(ctx):
    """Theorem 2, variant (II) form: τ-minibatch without replacement, γ = 1/A', every logged t."""
    from ... import algorithms
    from ...core.objective import per_sample_inf

    obj, v, R, n = ctx.obj, ctx.v, ctx.R, ctx.obj.n
    ref, L_f, L_S = ctx.ref, ctx.L_f, ctx.L_S
    tau = min(ctx.cfg.batch, n)
    L_max = float(obj.smoothness_per_sample().max())
    A1 = theory.abc_constant_minibatch(L_f, L_max, L_S, n, tau)
    _, bar_f_inf = per_sample_inf(obj)
    C1 = theory.abc_C_minibatch(L_f, L_max, L_S, n, tau, ref.delta, ref.f_D_inf - bar_f_inf)
    g2 = 1.0 / A1
    rho = 1.0 - g2 * ctx.mu * ctx.mu_D
    nb = g2 * C1 / (ctx.mu * ctx.mu_D)
    T = regime.linear_horizon(rho, ctx.cfg.iters, ctx.cfg.quick)
    x0, r0 = regime.far_start(ref.x_D, np.zeros(obj.d), 2 * regime.TARGET_POWER * nb)
    h = algorithms.dsgd(obj, [ctx.pool] * R, [g2] * R, ctx.seeds + 2_000_000, T, x0=x0, v=v, batch_size=tau,
                        log_every=regime.log_every(T), metrics_fn=_dist_metric(ref.x_D))
    bounds = theory.theorem2_II(h.iterations, g2, ctx.mu, ctx.mu_D, r0, A1, C1)
    return regime.logged_check(
        "thm2-II", f"Theorem 2 (II), τ={tau}: E‖x^t − x*_D‖² ≤ ρ^t‖x⁰ − x*_D‖² + γC'/(μ_fμ_D), t ≤ T={T}",
        h.iterations, h.metrics["e"], bounds, r0, "Algorithm 1 (II)",
        f"γ = 1/A' = {g2:.4g}, \\barΔ = {ref.f_D_inf - bar_f_inf:.4g}, neighbourhood {nb:.3g}, r₀ = {r0:.4g}")


def _top_direction(ctx, iters=30):
    """Unit top eigenvector of ∇²f_pool(x*_D) (power iteration on Hessian-vector products)."""
    rng = np.random.default_rng([ctx.cfg.seed, 99])
    u = rng.standard_normal(ctx.obj.d)
    u /= np.linalg.norm(u)
    for _ in range(iters):
        w = ctx.P.hessp(ctx.ref.x_D, u)
        nw = float(np.linalg.norm(w))
        if nw == 0:
            break
        u = w / nw
    return u


def gradient_start(ctx, cost):
    """The start of a "min over t" check: x⁰ = x*_D + r u maximising ‖∇f_pool(x⁰)‖² / cost(x⁰).

    ``cost(x)`` is the numerator c of the bound c/√T at x (e.g. L_f√(L_DL_S^max)(6δ₀ + 2Δ));
    r runs over a geometric grid from 1e-6 to 3 times max(1, ‖x*_D‖) along ±u, u the top curvature
    direction (badly scaled data keep their top curvature only very close to x*_D).
    Returns (x0, g0 = ‖∇f_pool(x0)‖², cost(x0)).
    """
    x_D = ctx.ref.x_D
    u = _top_direction(ctx)
    s = max(1.0, float(np.linalg.norm(x_D)))
    best = None
    for r in 10.0 ** np.arange(-6.0, 0.6, 0.5):
        for sign in (1.0, -1.0):
            x = x_D + sign * r * s * u
            g = ctx.P.grad(x)
            g0 = float(g @ g)
            c = float(cost(x))
            if c > 0 and (best is None or g0 / c > best[1] / best[2]):
                best = (x, g0, c)
    return best


def _min_T(ratio, T_given, quick):
    """Horizon for a bound c/√T: (target·c/null)², at least 20, capped; or the given one."""
    if T_given is not None:
        return int(T_given)
    T = math.ceil((regime.TARGET_POWER / ratio) ** 2) if ratio > 0 else regime.T_CAP[bool(quick)]
    return int(min(max(T, 20), regime.T_CAP[bool(quick)]))


def _grad_metric(ctx):
    from ...core.evaluation import grad_norm_sq_estimate

    return lambda Xc: {"g": grad_norm_sq_estimate(ctx.P, Xc, ctx.mrng)[0]}


def thm3(ctx):
    """Theorem 3, Algorithm 1 (I): min_t<T' E‖∇f_D(x^t)‖² ≤ 6δ₀/(γT') + 2γL_f²L_DL_S^maxΔ for every
    logged T' ≤ T, γ = 1/(L_f √(L_D L_S^max T))."""
    from ... import algorithms

    obj, v, R = ctx.obj, ctx.v, ctx.R
    L_f, L_D, L_S = ctx.L_f, ctx.L_D, ctx.L_S
    lo = ctx.ref.f_D_inf if ctx.convex else 0.0
    dl = ctx.ref.delta if ctx.convex else 0.0
    c_of = lambda x: L_f * math.sqrt(L_D * L_S) * (6.0 * (float(ctx.P.value(x)) - lo) + 2.0 * dl)  # noqa: E731
    x0, g0, c = gradient_start(ctx, c_of)
    T = _min_T(g0 / c, ctx.cfg.iters, ctx.cfg.quick)
    g3 = theory.step_theorem3(L_f, L_D, L_S, T)
    d0 = float(ctx.P.value(x0)) - lo
    h = algorithms.dsgd(obj, [ctx.pool] * R, [g3] * R, ctx.seeds + 3_000_000, T, x0=x0, v=v,
                        log_every=regime.log_every(T), metrics_fn=_grad_metric(ctx))
    form = "δ₀ = f_D(x⁰) − f_D^inf" if ctx.convex else "certified ℓ = 0 ≤ f: δ₀ = f_D(x⁰), no Δ term"
    return regime.min_over_t_check(
        "thm3", f"Theorem 3: min_t<T' E‖∇f_D(x^t)‖² ≤ 6δ₀/(γT') + 2γL_f²L_DL_S^maxΔ, T' ≤ T={T}",
        h.iterations, h.metrics["g"], lambda Tp: theory.theorem3(Tp, g3, L_f, L_D, L_S, d0, dl), g0,
        f"{form}; x⁰ = x*_D + r·(top curvature direction)")


def thm4(ctx):
    """Theorem 4, Algorithm 1 (II), certified form (non-convex objective), every logged T'."""
    from ... import algorithms

    obj, v, R, n = ctx.obj, ctx.v, ctx.R, ctx.obj.n
    tau = min(ctx.cfg.batch, n)
    L_max = float(obj.smoothness_per_sample().max())
    A1 = theory.abc_constant_minibatch(ctx.L_f, L_max, ctx.L_S, n, tau)
    c_of = lambda x: 6.0 * float(ctx.P.value(x)) * math.sqrt(ctx.L_f * ctx.L_D * A1)  # noqa: E731
    x0, g0, c = gradient_start(ctx, c_of)
    T = _min_T(g0 / c, ctx.cfg.iters, ctx.cfg.quick)
    g4 = theory.step_theorem4(ctx.L_f, ctx.L_D, A1, T)
    f0 = float(ctx.P.value(x0))
    h = algorithms.dsgd(obj, [ctx.pool] * R, [g4] * R, ctx.seeds + 4_000_000, T, x0=x0, v=v, batch_size=tau,
                        log_every=regime.log_every(T), metrics_fn=_grad_metric(ctx))
    return regime.min_over_t_check(
        "thm4", f"Theorem 4 (II), τ={tau}: min_t<T' E‖∇f_D(x^t)‖² ≤ 6δ₀/(γT') + γL_fL_DC', T' ≤ T={T}",
        h.iterations, h.metrics["g"], lambda Tp: theory.theorem4(Tp, g4, ctx.L_f, ctx.L_D, A1, f0, 0.0), g0,
        "certified ℓ = 0 ≤ f, f_i: C' = 0")


