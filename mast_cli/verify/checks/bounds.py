"""The bound formulas of :mod:`mast_cli.core.theory` against an independent transcription.

Every rate and lemma check compares a measured statistic with a bound computed by
``core/theory.py``; a bound that is wrong but *looser* than the truth (a neighbourhood with a
factor 2 too many, a contraction 1 − γμ_f instead of 1 − γμ_fμ_D, a Lyapunov term with p² for p)
would make those checks pass.  This check re-writes each statement of mast-theory §3 and §5
here, from the formulas of the spec, and evaluates both at the run's constants (L_f, μ_f, L_D,
μ_D, L_S^max, n, τ) and a few fixed values of the other arguments (t, γ below each step limit,
r₀, Δ, \\barΔ, δ₀, p, N): they must agree to 1e-12 relative.
"""

from __future__ import annotations

import math

import numpy as np

from ...core import theory
from ...io.errors import MastError
from ..result import CheckResult

__all__ = ["theory_bounds"]

RTOL = 1e-12


def _cases(ctx):
    """{statement: (product's value, value transcribed here)} (scalars or arrays)."""
    L_f, mu, L_D, mu_D, L_S, n = ctx.L_f, max(ctx.mu, 1e-3 * ctx.L_f), ctx.L_D, ctx.mu_D, ctx.L_S, ctx.obj.n
    tau = min(ctx.cfg.batch, n)
    Li = np.asarray(ctx.obj.smoothness_per_sample(), dtype=np.float64)
    L_max, L_mean = float(Li.max()), float(Li.mean())
    fx, fi, r0, dl, dlb, d0, pn, dist = 0.7, 0.4, 2.0, 0.05, 0.08, 0.9, 0.6, 1.3
    t = np.array([0.0, 1.0, 10.0, 100.0])
    T, p, N = 1000, 0.07, 32
    a = n * (tau - 1) / (tau * (n - 1)) if n > 1 else 1.0
    b = (n - tau) / (tau * (n - 1)) if n > 1 else 0.0
    A1 = L_S * (a * L_f + b * L_max)
    C1 = 2.0 * L_S * (a * L_f * dl + b * L_max * dlb)
    g2, gII = 0.5 / (L_f * L_S), 0.5 / A1
    g3 = 0.5 / (L_f * math.sqrt(L_D * L_S * T))
    g4 = 0.5 / math.sqrt(L_f * L_D * A1 * T)
    gvr = 0.5 / (6.0 * L_f * L_S)
    A, D = L_f * L_S, (L_f * L_D) * (L_f * L_S)
    gA, gD = 0.5 / A, 0.5 / math.sqrt(D * T)
    Es2 = np.array([1.0, 2.0, 4.0])
    u = np.array([0.3, -1.0, 0.5])
    return {
        "p_norm_sq": (theory.p_norm_sq(u, Es2), float(np.sum((Es2 - 1.0) * u * u))),
        "Lemma 1(iii)": (theory.lemma1_iii(fx, L_f, pn), fx + L_f / 2 * pn),
        "Lemma 1(iii) weak": (theory.lemma1_iii_weak(fx, L_f, L_D, dist), fx + L_f / 2 * (L_D - 1) * dist),
        "Lemma 3(iii)": (theory.lemma3_iii(fx, mu, pn), fx + mu / 2 * pn),
        "Lemma 3(iii) weak": (theory.lemma3_iii_weak(fx, mu, mu_D, dist), fx + mu / 2 * (mu_D - 1) * dist),
        "Theorem 1 upper": (theory.theorem1_upper(fi, L_f, pn), fi + L_f / 2 * pn),
        "Theorem 1 upper weak": (theory.theorem1_upper_weak(fi, L_f, L_D, dist), fi + L_f / 2 * (L_D - 1) * dist),
        "Theorem 1 lower": (theory.theorem1_lower(fi, mu, mu_D, dist), fi + mu / 2 * (mu_D - 1) * dist),
        "Theorem 1 distance": (theory.theorem1_distance(L_f, mu, L_D, dist), L_f / mu * (L_D - 1) * dist),
        "Theorem 1 distance via f": (theory.theorem1_distance_via_f(mu, fx, fi), 2 / mu * (fx - fi)),
        "Lemma 4": (theory.lemma4(L_f, L_S, fx, fi), 2 * L_f * L_S * (fx - fi)),
        "Theorem 2 contraction": (theory.contraction_dsgd(g2, mu, mu_D), 1 - g2 * mu * mu_D),
        "Theorem 2 neighbourhood": (theory.theorem2_neighbourhood(g2, L_f, mu, mu_D, L_S, dl),
                                    2 * g2 * L_f * L_S * dl / (mu * mu_D)),
        "Theorem 2": (theory.theorem2(t, g2, L_f, mu, mu_D, L_S, r0, dl),
                      (1 - g2 * mu * mu_D) ** t * r0 + 2 * g2 * L_f * L_S * dl / (mu * mu_D)),
        "minibatch a, b": (np.array(theory.minibatch_coefficients(n, tau)), np.array([a, b])),
        "A' uniform": (theory.abc_constant_minibatch(L_f, L_max, L_S, n, tau), A1),
        "A' importance": (theory.abc_constant_minibatch(L_f, L_max, L_S, n, tau, "importance", L_mean),
                          L_S * (L_mean / tau + (1 - 1 / tau) * L_f)),
        "C' uniform": (theory.abc_C_minibatch(L_f, L_max, L_S, n, tau, dl, dlb), C1),
        "Theorem 2 (II)": (theory.theorem2_II(t, gII, mu, mu_D, r0, A1, C1),
                           (1 - gII * mu * mu_D) ** t * r0 + gII * C1 / (mu * mu_D)),
        "Theorem 3": (theory.theorem3(T, g3, L_f, L_D, L_S, d0, dl),
                      6 * d0 / (g3 * T) + 2 * g3 * L_f ** 2 * L_D * L_S * dl),
        "Theorem 4": (theory.theorem4(T, g4, L_f, L_D, A1, d0, C1), 6 * d0 / (g4 * T) + g4 * L_f * L_D * C1),
        "Alg. 2 strongly convex": (theory.distributed_strongly_convex(t, gA, mu, r0, A, dl),
                                   (1 - gA * mu) ** t * r0 + 2 * gA * A * dl / mu),
        "Theorem 5": (theory.theorem5_distributed(T, gD, D, d0, dl), 6 * d0 / (gD * T) + 2 * gD * D * dl),
        "Theorem 18 Lyapunov": (theory.vr_lyapunov(r0, dist, gvr, p, N), r0 + 4 * gvr ** 2 / (p * N) * dist),
        "Theorem 18": (theory.theorem18_vr(t, gvr, L_f, L_S, mu, mu_D, p, d0),
                       (1 - min(gvr * mu * mu_D, p / 2)) ** t * d0),
        "Theorem 18, small p": (theory.theorem18_vr(t, gvr, L_f, L_S, mu, mu_D, p * 1e-3, d0),
                                (1 - min(gvr * mu * mu_D, p * 1e-3 / 2)) ** t * d0),
    }


def theory_bounds(ctx):
    """Every bound of ``core/theory.py`` equals its transcription here (exact, relative 1e-12).

    ``observed`` is the largest relative difference over the statements (a step refused by
    the product's own step condition counts as a difference of 1).
    """
    try:
        cases = _cases(ctx)
    except MastError as e:
        return CheckResult("theory-bounds", "§3, §5: the bounds of core/theory.py = their transcription here",
                           1.0, RTOL, notes=f"the product refused a step below its theorem's limit: {e}")
    dev = {}
    for k, (got, ref) in cases.items():
        got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
        if got.shape != ref.shape:
            dev[k] = math.inf
            continue
        dev[k] = float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-300)))
    worst = max(dev, key=dev.get)
    return CheckResult("theory-bounds", "§3, §5: every lemma/theorem bound of core/theory.py = its transcription "
                       "from the spec, at the run's constants", dev[worst], RTOL,
                       notes=f"{len(dev)} statements; worst: {worst} (relative difference {dev[worst]:.1e}; "
                             f"product {np.ravel(cases[worst][0])[-1]:.6g} vs {np.ravel(cases[worst][1])[-1]:.6g})")
