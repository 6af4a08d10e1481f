"""The product's theory step sizes against each theorem's step condition (mast-theory §5).

The rate checks run with the product's theory steps (:mod:`mast_cli.core.theory`), and the
bound functions there test the step against the same module's step functions, so a wrong
theory step (a lost factor 6 in Theorem 18's 1/(6 L_f L_S^max), a Theorem 3 step without its
√T) would make every rate check run outside its theorem without any of them noticing (a
larger step often still converges).  This check recomputes every step condition here, in
closed form from the constants alone, and requires the product's step to *equal* the largest
step its theorem allows (relative 1e-12): larger violates the theorem, smaller is not what
``--step theory`` documents (the largest allowed step).
"""

from __future__ import annotations

import math

import numpy as np

from ...core import theory
from ..result import CheckResult

__all__ = ["theory_steps"]

#: Horizon at which the T-dependent steps (Theorems 3, 4) are compared.
T_REF = 1000
RTOL = 1e-12


def _limits(ctx):
    """{statement: (product's step, the theorem's largest step computed here)}."""
    L_f, L_D, L_S, n = ctx.L_f, ctx.L_D, ctx.L_S, ctx.obj.n
    tau = min(ctx.cfg.batch, n)
    Li = np.asarray(ctx.obj.smoothness_per_sample(), dtype=np.float64)
    L_max, L_mean = float(Li.max()), float(Li.mean())
    # τ-minibatch without replacement: E‖ĝ‖² = a‖ḡ‖² + b·mean‖g_i‖², a = n(τ−1)/(τ(n−1)), b = (n−τ)/(τ(n−1))
    a = n * (tau - 1) / (tau * (n - 1)) if n > 1 else 1.0
    b = (n - tau) / (tau * (n - 1)) if n > 1 else 0.0
    A_unif = L_S * (a * L_f + b * L_max)
    A_imp = L_S * (L_mean / tau + (1.0 - 1.0 / tau) * L_f)
    T = T_REF
    return {
        "Thm 2 (I): γ = 1/(L_f L_S^max)": (theory.step_dsgd(L_f, L_S), 1.0 / (L_f * L_S)),
        f"Thm 2 (II) uniform τ={tau}: γ = 1/A', A' = L_S^max(aL_f + bL_max)":
            (theory.step_dsgd_minibatch(L_f, L_max, L_S, n, tau, "uniform"), 1.0 / A_unif),
        f"Thm 2 (II) importance τ={tau}: γ = 1/A', A' = L_S^max(L̄/τ + (1 − 1/τ)L_f)":
            (theory.step_dsgd_minibatch(L_f, L_max, L_S, n, tau, "importance", L_mean), 1.0 / A_imp),
        f"Thm 3 (T={T}): γ = 1/(L_f √(L_D L_S^max T))":
            (theory.step_theorem3(L_f, L_D, L_S, T), 1.0 / (L_f * math.sqrt(L_D * L_S * T))),
        f"Thm 4 (T={T}): γ = 1/√(L_f L_D A' T)":
            (theory.step_theorem4(L_f, L_D, A_unif, T), 1.0 / math.sqrt(L_f * L_D * A_unif * T)),
        "Thm 18 (Alg. 3): γ = 1/(6 L_f L_S^max)": (theory.step_vr(L_f, L_S), 1.0 / (6.0 * L_f * L_S)),
        "Alg. 2: γ = 1/max_i L_{f_i}L_{S_i}^max":
            (theory.step_distributed([L_f, 0.5 * L_f], [L_S, 2.0 * L_S]), 1.0 / (L_f * L_S)),
    }


def theory_steps(ctx):
    """Every theory step equals its theorem's largest allowed step (exact, relative 1e-12).

    ``observed`` is the largest |γ_product/γ_theorem − 1| over the statements; the notes name
    the worst one and say whether it is too large (the theorem does not hold) or too small.
    """
    lim = _limits(ctx)
    dev = {k: abs(g / ref - 1.0) for k, (g, ref) in lim.items()}
    worst = max(dev, key=dev.get)
    g, ref = lim[worst]
    side = "too large: outside the theorem" if g > ref else "too small: not the theory step"
    return CheckResult("theory-steps", "§5: each theory step = its theorem's largest step (Thms 2 (I, II), 3, 4, 18, "
                       "Alg. 2), recomputed here in closed form", dev[worst], RTOL, recon=True,
                       notes=f"{len(lim)} steps; worst: {worst}: product {g:.6g} vs {ref:.6g}"
                             + (f" ({side})" if dev[worst] > RTOL else ""))
