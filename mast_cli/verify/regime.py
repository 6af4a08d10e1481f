"""Regimes of the rate checks: horizon, start point and logging chosen for power ≥ 2.

A rate check compares a statistic with a bound; it can only tell a broken algorithm from a
working one if the bound is well below what a do-nothing algorithm (γ = 0) shows, the
*null*.  Power = null / bound.  Every rate check here is checked at every logged t, and its
regime is chosen from the theorem's own constants so that power ≥ :data:`TARGET_POWER`
(and never below :data:`~mast_cli.verify.result.MIN_POWER`):

* linear rates, bound(t) = ρ^t r₀ + N (Theorems 2 (I, II), interpolation, Algorithm 2,
  Theorem 18): the horizon T makes ρ^T ≤ 1/(2·target), and the start x⁰ lies on the ray
  from the centre (x*_D or x*) through the default start, far enough that r₀ ≥ 2·target·N;
* "min over t" rates, bound(T) = c/√T (Theorems 3–5 with their theory steps): the start
  x⁰ = x*_D + r u maximises null / c over a few radii r along the top curvature direction u,
  and T = ⌈(target · c / null)²⌉.

T is capped (:data:`T_CAP`); an explicit ``--iters`` overrides the choice (and may leave a
check uninformative, which the report then says).
"""

from __future__ import annotations

import math

import numpy as np

from .result import GROUP, CheckResult, MIN_POWER, z_bonferroni, z_excess

__all__ = ["TARGET_POWER", "T_CAP", "LOG_POINTS", "linear_horizon", "far_start", "logged_check",
           "min_over_t_check", "auto_lambda", "KAPPA_TARGET"]

#: Power the regimes aim at (≥ MIN_POWER with margin for Monte Carlo slack).
TARGET_POWER = 4.0
#: Largest automatic horizon (quick, full).
T_CAP = {True: 3000, False: 6000}
#: Logged points per trajectory (plus t = 0 and T).
LOG_POINTS = 20
#: Condition number L_f/λ of the automatic λ (``--lam auto``).
KAPPA_TARGET = 10.0
#: λ / L_data of the automatic λ for the non-convex objective.
NONCONVEX_LAMBDA_FACTOR = 3.0


def auto_lambda(A, objective="logreg"):
    """The automatic λ of ``mast verify`` (``--lam auto``), from L_data = λ_max(AᵀA)/(4n)
    (logistic objectives) or λ_max(AᵀA)/n (``ridge``).

    ``logreg`` and ``ridge``: λ = L_data/(κ − 1), so L_f/λ = κ = :data:`KAPPA_TARGET`: the rate theorems
    contract like 1 − μ_D/(κ L_S^max) per step, and κ ≈ 10 keeps the horizons that give power ≥ 2
    at a few hundred steps on every bundled dataset.  ``logreg-nonconvex``: λ = 3 L_data, so that
    near 0 the penalty λΣx²/(1 + x²) dominates and ‖∇f‖²/f (what the certified Theorems 3–5
    compare) is large enough for power ≥ 2 within the horizon cap.
    """
    from ..core.kernels import spectral_norm_sq

    # the data term's curvature bound: sup σ' = 1/4 for the logistic loss, 1 for the squared loss
    # (ridge: L_f = λ_max(AᵀA)/n + λ; with the logistic 1/4 ridge would get κ ≈ 37 and Algorithm 3
    # would need ~8000 steps to reach vr-exact's 1e-20 on a1a instead of ~3000)
    L_data = spectral_norm_sq(A) / ((1.0 if objective == "ridge" else 4.0) * A.shape[0])
    if objective == "logreg-nonconvex":
        return float(NONCONVEX_LAMBDA_FACTOR * L_data)
    return float(L_data / (KAPPA_TARGET - 1.0))


def linear_horizon(rho, T_given, quick, target=TARGET_POWER):
    """Smallest T with ρ^T ≤ 1/(2·target) (at least 20, at most the cap), or ``T_given``."""
    if T_given is not None:
        return int(T_given)
    if not (0 < rho < 1):
        return T_CAP[bool(quick)]
    T = math.ceil(math.log(2.0 * target) / -math.log(rho))
    return int(min(max(T, 20), T_CAP[bool(quick)]))


def far_start(center, x_default, r_needed):
    """A start on the ray from ``center`` through ``x_default`` with ‖x⁰ − center‖² ≥ r_needed."""
    u = np.asarray(x_default, dtype=np.float64) - center
    r = float(u @ u)
    if r >= r_needed:
        return np.array(x_default, dtype=np.float64), r
    if r == 0:
        u = np.ones_like(center)
        r = float(u @ u)
    x0 = center + u * math.sqrt(r_needed / r)
    return x0, float(np.sum((x0 - center) ** 2))


def log_every(T):
    return max(1, T // LOG_POINTS)


def logged_check(check_id, statement, iterations, metric, bounds, null, what, notes=""):
    """A "statistic(t) ≤ bound(t) for every logged t" row (means over the seeds, 99% family-wise).

    Parameters
    ----------
    iterations : ndarray (L,)
    metric : ndarray (L, R)
        The statistic per logged t and seed (NaN after divergence).
    bounds : ndarray (L,)
        The bound at each logged t.
    null : float
        The statistic of the do-nothing algorithm (its value at t = 0 for distance statistics).

    Returns
    -------
    CheckResult
        Reported at the last logged t (where the power is largest); ``violated_at_some_t`` is
        set when mean − z·se > bound at any logged t, z Bonferroni-corrected over the L points;
        ``z_excess`` = max over t of (mean − bound)/se, so the row is violated iff z_excess > z.
        The row is in the run's multiple-testing group (L one-sided tests), whose correction
        raises z (:func:`~mast_cli.verify.result.bonferroni_groups`).
    """
    R = metric.shape[1]
    bad = ~np.all(np.isfinite(metric), axis=0)
    T = int(iterations[-1])
    L = len(iterations)
    if bad.any():
        return CheckResult(check_id, statement, math.inf, float(bounds[-1]), kind="stochastic", samples=R,
                           null=null, t=T, z_excess=math.inf, bonferroni_group=GROUP, bonferroni_tests=L,
                           notes=f"{int(bad.sum())} of {R} {what} trajectories diverged")
    means = metric.mean(axis=1)
    ses = metric.std(axis=1, ddof=1) / math.sqrt(R)
    z = z_bonferroni(L)
    # floating-point slack: at t = 0 the statistic equals the bound's ρ⁰r₀ term up to rounding
    exc = z_excess(means, ses, bounds, 1e-12 * np.maximum(np.abs(bounds), abs(float(null))))
    k = int(np.argmax(exc))
    note = (f"largest (mean − bound)/se over the {L} logged t: {exc[k]:.4g} at t = {int(iterations[k])} "
            f"(mean {means[k]:.4g} ± {ses[k]:.2g}, bound {bounds[k]:.4g}; violated when > z); "
            f"z = {z:.3f} for the {L} logged t")
    return CheckResult(check_id, statement, float(means[-1]), float(bounds[-1]), kind="stochastic", se=float(ses[-1]),
                       samples=R, null=float(null), z=z, t=T, violated_at_some_t=bool(exc[k] > z),
                       z_excess=float(exc[k]), bonferroni_group=GROUP, bonferroni_tests=L,
                       notes=note + (f"; {notes}" if notes else ""))


def min_over_t_check(check_id, statement, iterations, metric, bound_of_T, null, notes=""):
    """"min_{t<T'} E[g_t] ≤ bound(T') for every logged T' ≥ 1" (Theorems 3–5 hold for every
    horizon T' ≤ T with the step chosen for T, since the step condition only gets looser).

    A horizon T' is violated when mean − z·se > bound(T') at *every* logged t < T' (z
    Bonferroni-corrected over the logged t), i.e. when z < min_{t<T'} (mean_t − bound(T'))/se_t;
    ``z_excess`` is the largest of these over T', so the row is violated iff z_excess > z (the
    run's group correction raises z, :func:`~mast_cli.verify.result.bonferroni_groups`).  The row
    reports the final horizon T, the logged t < T with the smallest mean − z·se, and null = the
    statistic at x⁰ (γ = 0).
    """
    R = metric.shape[1]
    T = int(iterations[-1])
    L = len(iterations)
    if not np.all(np.isfinite(metric)):
        return CheckResult(check_id, statement, math.inf, float(bound_of_T(T)), kind="stochastic", samples=R,
                           null=null, t=T, z_excess=math.inf, bonferroni_group=GROUP, bonferroni_tests=L,
                           notes="diverged")
    means = metric.mean(axis=1)
    ses = metric.std(axis=1, ddof=1) / math.sqrt(R)
    z = z_bonferroni(L)
    low = means - z * ses
    best, best_T = -math.inf, int(iterations[1]) if L > 1 else T
    for k in range(1, L):
        Tp = int(iterations[k])
        b = float(bound_of_T(Tp))
        e = float(np.min(z_excess(means[:k], ses[:k], b, 1e-12 * abs(b))))
        if e > best:
            best, best_T = e, Tp
    keep = iterations < T
    k = int(np.argmin(low[keep]))
    note = (f"largest over the horizons T' of min_t<T' (mean − bound(T'))/se: {best:.4g} at T' = {best_T} "
            f"(violated when > z); min at t = {int(iterations[keep][k])}; checked for {L - 1} horizons, "
            f"z = {z:.3f} for the {L} logged t")
    return CheckResult(check_id, statement, float(means[keep][k]), float(bound_of_T(T)), kind="stochastic",
                       se=float(ses[keep][k]), samples=R, null=float(null), z=z, t=T,
                       violated_at_some_t=bool(best > z), z_excess=best, bonferroni_group=GROUP, bonferroni_tests=L,
                       notes=note + (f"; {notes}" if notes else ""))
