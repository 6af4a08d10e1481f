"""Theorem 1: the minima of f and f_D (exact for D_pool; mast-theory §3.4)."""

from __future__ import annotations

import numpy as np

from ...core import theory
from ..result import CheckResult

__all__ = ["thm1_upper", "thm1_lower", "thm1_f_xD", "thm1_dist"]


def thm1_upper(ctx):
    """Δ = f_D^inf − f^inf ≤ (L_f/2)‖x* − v‖²_P."""
    p, ref = ctx.prob, ctx.ref
    bound = theory.theorem1_upper(p.f_inf, ctx.L_f, theory.p_norm_sq(p.x_star - ctx.v, ctx.Es2)) - p.f_inf
    return CheckResult("thm1-upper", "Theorem 1: Δ = f_D^inf − f^inf ≤ (L_f/2)‖x* − v‖²_P", ref.delta, bound,
                       tol=ctx.tol_for(p.f_inf, ref.f_D_inf))


def thm1_lower(ctx):
    """(μ_f/2)(μ_D − 1)‖x*_D − v‖² ≤ Δ."""
    p, ref = ctx.prob, ctx.ref
    obs = theory.theorem1_lower(p.f_inf, ctx.mu, ctx.mu_D, float(np.sum((ref.x_D - ctx.v) ** 2))) - p.f_inf
    return CheckResult("thm1-lower", "Theorem 1: (μ_f/2)(μ_D − 1)‖x*_D − v‖² ≤ Δ", obs, ref.delta,
                       tol=ctx.tol_for(p.f_inf, ref.f_D_inf))


def thm1_f_xD(ctx):
    """f(x*_D) − f^inf ≤ Δ."""
    p, ref = ctx.prob, ctx.ref
    return CheckResult("thm1-f-xD", "Theorem 1: f(x*_D) − f^inf ≤ Δ", float(ctx.obj.value(ref.x_D)) - p.f_inf,
                       ref.delta, tol=ctx.tol_for(p.f_inf, ref.f_D_inf))


def thm1_dist(ctx):
    """‖x*_D − x*‖² ≤ (L_f/μ_f)(L_D − 1)‖x* − v‖²."""
    p, ref = ctx.prob, ctx.ref
    dist_xs_v = float(np.sum((p.x_star - ctx.v) ** 2))
    return CheckResult("thm1-dist", "Theorem 1: ‖x*_D − x*‖² ≤ (L_f/μ_f)(L_D − 1)‖x* − v‖²",
                       float(np.sum((ref.x_D - p.x_star) ** 2)),
                       theory.theorem1_distance(ctx.L_f, ctx.mu, ctx.L_D, dist_xs_v),
                       tol=1e-12 * max(1.0, dist_xs_v))
