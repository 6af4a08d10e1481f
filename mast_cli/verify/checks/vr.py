"""Algorithm 3 (L-SVRDSG) with the exact reference b = N (Theorem 18; mast-theory §5)."""

from __future__ import annotations

import numpy as np

from ...core import theory
from ..result import CheckResult, stochastic_final

__all__ = ["alg3_vr"]


def alg3_vr(ctx):
    """Theorem 18: Algorithm 3 with b = N, p = 1/N, γ = 1/(6 L_f L_S^max) on the uniform pool."""
    from ... import algorithms

    obj, v, pool, P = ctx.obj, ctx.v, ctx.pool, ctx.P
    R, T, N = ctx.R, ctx.T, pool.N
    L_f, mu = ctx.L_f, ctx.mu
    gam = theory.step_vr(L_f, pool.L_S_max)
    p = 1.0 / N
    x_D = ctx.ref.x_D
    x0 = np.zeros(obj.d)
    diff = P.sketched_grads(x0) - P.sketched_grads(x_D)
    phi0 = theory.vr_lyapunov(float(np.sum((x0 - x_D) ** 2)), float(np.sum(diff * diff)), gam, p, N)
    per = max(1, (1 << 23) // max(1, obj.n * N))
    seeds = ctx.seeds
    finals = []
    for a in range(0, R, per):
        b = min(R, a + per)
        h = algorithms.l_svrdsg(obj, pool.S, [gam] * (b - a), seeds[a:b] + 6_000_000, T, ref_prob=p,
                                x0=x0, v=v, log_every=ctx.log_every,
                                metrics_fn=lambda Xc: {"e": np.sum((Xc - x_D[:, None]) ** 2, axis=0)})
        finals.append(h.metrics["e"][-1:])
    m, se, nt = stochastic_final(np.concatenate(finals, axis=1), "Algorithm 3")
    bound = theory.theorem18_vr(T, gam, L_f, pool.L_S_max, mu, pool.mu_D, p, phi0)
    return CheckResult("alg3-vr", f"Theorem 18 (Alg. 3, b = N = {N}, p = 1/N): E‖x^T − x*_D‖² ≤ "
                       f"(1 − min(γμ_fμ_D, p/2))^T Φ⁰, T={T}", m, float(bound), kind="stochastic", se=se,
                       samples=R, notes=nt or f"γ = 1/(6 L_f L_S^max) = {gam:.4g}")
