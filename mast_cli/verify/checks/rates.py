"""Rate theorems of Algorithm 1: Theorems 2 (I and II forms), 3 and 4 (mast-theory §5)."""

from __future__ import annotations

import math

import numpy as np

from ...core import theory
from ..result import CheckResult, stochastic_final, stochastic_min

__all__ = ["thm2", "thm2_interp", "thm2_II", "thm3", "thm4"]


def _dist_metric(center):
    return lambda Xc: {"e": np.sum((Xc - center[:, None]) ** 2, axis=0)}


def thm2(ctx):
    """Theorem 2, Algorithm 1 (I), γ = 1/(L_f L_S^max)."""
    from ... import algorithms

    obj, v, R, T, x_D = ctx.obj, ctx.v, ctx.R, ctx.T, ctx.ref.x_D
    gam = theory.step_dsgd(ctx.L_f, ctx.L_S)
    x0 = np.zeros(obj.d)
    r0 = float(np.sum((x0 - x_D) ** 2))
    h = algorithms.dsgd(obj, [ctx.pool] * R, [gam] * R, ctx.seeds, T, x0=x0, v=v, log_every=ctx.log_every,
                        metrics_fn=_dist_metric(x_D))
    m, se, nt = stochastic_final(h.metrics["e"], "Algorithm 1")
    return CheckResult("thm2", f"Theorem 2: E‖x^T − x*_D‖² ≤ ρ^T‖x⁰ − x*_D‖² + 2γL_fL_S^maxΔ/(μ_fμ_D), T={T}",
                       m, theory.theorem2(T, gam, ctx.L_f, ctx.mu, ctx.mu_D, ctx.L_S, r0, ctx.ref.delta),
                       kind="stochastic", se=se, samples=R, notes=nt or f"γ = 1/(L_f L_S^max) = {gam:.4g}")


def thm2_interp(ctx):
    """Theorem 2 under interpolation: v = x*, Δ = 0, linear rate (and measured contraction)."""
    from ... import algorithms

    obj, R, T, d = ctx.obj, ctx.R, ctx.T, ctx.obj.d
    gam = theory.step_dsgd(ctx.L_f, ctx.L_S)
    xs = ctx.prob.x_star
    xi0 = np.zeros(d) if np.linalg.norm(xs) > 0 else np.full(d, 1.0 / math.sqrt(d))
    r0i = float(np.sum((xi0 - xs) ** 2))
    h = algorithms.dsgd(obj, [ctx.pool] * R, [gam] * R, ctx.seeds + 1_000_000, T, x0=xi0, v=xs,
                        log_every=ctx.log_every, metrics_fn=_dist_metric(xs))
    m, se, nt = stochastic_final(h.metrics["e"], "interpolation")
    rho = theory.contraction_dsgd(gam, ctx.mu, ctx.mu_D)
    row = CheckResult("thm2-interp", f"Theorem 2, v = x* (Δ = 0): E‖x^T − x*‖² ≤ (1 − γμ_fμ_D)^T‖x⁰ − x*‖², T={T}",
                      m, theory.theorem2(T, gam, ctx.L_f, ctx.mu, ctx.mu_D, ctx.L_S, r0i, 0.0), kind="stochastic",
                      se=se, samples=R, notes=nt)
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
    """Theorem 2, variant (II) form: τ-minibatch without replacement, γ = 1/A'."""
    from ... import algorithms
    from ...core.objective import per_sample_inf

    obj, v, R, T, n = ctx.obj, ctx.v, ctx.R, ctx.T, ctx.obj.n
    ref, L_f, L_S = ctx.ref, ctx.L_f, ctx.L_S
    tau = min(ctx.cfg.batch, n)
    L_max = float(obj.smoothness_per_sample().max())
    A1 = theory.abc_constant_minibatch(L_f, L_max, L_S, n, tau)
    _, bar_f_inf = per_sample_inf(obj)
    C1 = theory.abc_C_minibatch(L_f, L_max, L_S, n, tau, ref.delta, ref.f_D_inf - bar_f_inf)
    g2 = 1.0 / A1
    x0 = np.zeros(obj.d)
    r0 = float(np.sum((x0 - ref.x_D) ** 2))
    h = algorithms.dsgd(obj, [ctx.pool] * R, [g2] * R, ctx.seeds + 2_000_000, T, x0=x0, v=v, batch_size=tau,
                        log_every=ctx.log_every, metrics_fn=_dist_metric(ref.x_D))
    m, se, nt = stochastic_final(h.metrics["e"], "Algorithm 1 (II)")
    return CheckResult("thm2-II", f"Theorem 2 (II), τ={tau}: E‖x^T − x*_D‖² ≤ ρ^T‖x⁰ − x*_D‖² + γC'/(μ_fμ_D)",
                       m, theory.theorem2_II(T, g2, ctx.mu, ctx.mu_D, r0, A1, C1), kind="stochastic", se=se,
                       samples=R, notes=nt or f"γ = 1/A' = {g2:.4g}, \\barΔ = {ref.f_D_inf - bar_f_inf:.4g}")


def _grad_metric(ctx):
    from ...core.evaluation import grad_norm_sq_estimate

    return lambda Xc: {"g": grad_norm_sq_estimate(ctx.P, Xc, ctx.mrng)[0]}


def thm3(ctx):
    """Theorem 3, Algorithm 1 (I): min_t<T E‖∇f_D(x^t)‖², γ = 1/(L_f √(L_D L_S^max T))."""
    from ... import algorithms

    obj, v, R, T = ctx.obj, ctx.v, ctx.R, ctx.T
    g3 = theory.step_theorem3(ctx.L_f, ctx.L_D, ctx.L_S, T)
    x0 = np.zeros(obj.d)
    h = algorithms.dsgd(obj, [ctx.pool] * R, [g3] * R, ctx.seeds + 3_000_000, T, x0=x0, v=v,
                        log_every=max(1, T // 10), metrics_fn=_grad_metric(ctx))
    f_x0 = float(ctx.P.value(x0))
    if ctx.convex:
        d0, dl, form = f_x0 - ctx.ref.f_D_inf, ctx.ref.delta, "δ₀ = f_D(x⁰) − f_D^inf"
    else:
        d0, dl, form = f_x0, 0.0, "certified ℓ = 0 ≤ f: δ₀ = f_D(x⁰), no Δ term"
    m, se, tstar = stochastic_min(h.iterations, h.metrics["g"], T)
    return CheckResult("thm3", f"Theorem 3: min_t<T E‖∇f_D(x^t)‖² ≤ 6δ₀/(γT) + 2γL_f²L_DL_S^maxΔ, T={T}", m,
                       theory.theorem3(T, g3, ctx.L_f, ctx.L_D, ctx.L_S, d0, dl), kind="stochastic", se=se,
                       samples=R, notes=(f"at t = {tstar}; " if tstar >= 0 else "diverged; ") + form)


def thm4(ctx):
    """Theorem 4, Algorithm 1 (II), certified form (non-convex objective)."""
    from ... import algorithms

    obj, v, R, T, n = ctx.obj, ctx.v, ctx.R, ctx.T, ctx.obj.n
    tau = min(ctx.cfg.batch, n)
    L_max = float(obj.smoothness_per_sample().max())
    A1 = theory.abc_constant_minibatch(ctx.L_f, L_max, ctx.L_S, n, tau)
    g4 = theory.step_theorem4(ctx.L_f, ctx.L_D, A1, T)
    x0 = np.zeros(obj.d)
    h = algorithms.dsgd(obj, [ctx.pool] * R, [g4] * R, ctx.seeds + 4_000_000, T, x0=x0, v=v, batch_size=tau,
                        log_every=max(1, T // 10), metrics_fn=_grad_metric(ctx))
    m, se, tstar = stochastic_min(h.iterations, h.metrics["g"], T)
    return CheckResult("thm4", f"Theorem 4 (II), τ={tau}: min_t<T E‖∇f_D(x^t)‖² ≤ 6δ₀/(γT) + γL_fL_DC', T={T}", m,
                       theory.theorem4(T, g4, ctx.L_f, ctx.L_D, A1, float(ctx.P.value(x0)), 0.0), kind="stochastic",
                       se=se, samples=R, notes=(f"at t = {tstar}; " if tstar >= 0 else "diverged; ")
                       + "certified ℓ = 0 ≤ f, f_i: C' = 0")
