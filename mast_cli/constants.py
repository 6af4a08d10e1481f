"""The paper's constants for an objective and a sketch (mast-theory §3).

Function constants: L_f, μ_f, L_i, L_max, f^inf.  Sketch constants: L_D, μ_D, κ_D,
L_S^max, and the tighter, sketch-aware smoothness bound λ_max(E[S H S]) with
H = AᵀA/(4n) + λI ⪰ ∇²f(x) [RECON, §3.2].
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse.linalg as spla

from .solvers.newton import solve_erm

__all__ = ["tight_smoothness", "empirical_sketch_constants", "compute_constants"]


def tight_smoothness(obj, sketch):
    """λ_max(E[S H S]) ≥ L_{f_D}, with H = sup φ''·AᵀA/n + L_r I (AᵀA/(4n) + L_r I for
    logistic, the exact Hessian for ridge; mast-theory §3.2, §2.6, [RECON]).

    Dense for d ≤ 2000 (H ⊙ E[s sᵀ]); otherwise ARPACK on the matrix-free product
    E[SHS]u = c u ⊙ H(u ⊙ x) + e ⊙ diag(H) ⊙ x.
    """
    if obj.d <= 2000:
        return float(np.linalg.eigvalsh(sketch.sandwich(obj.hessian_bound()))[-1])
    A, lr = obj.A, obj.penalty.smoothness()
    k = obj.datafit.curvature_bound / obj.n
    diagH = np.asarray(A.multiply(A).sum(axis=0)).ravel() * k + lr

    def Hmv(u):
        return A.T @ (A @ u) * k + lr * u

    op = spla.LinearOperator((obj.d, obj.d), dtype=np.float64,
                             matvec=lambda x: sketch.sandwich_matvec(Hmv, diagH, x))
    return float(spla.eigsh(op, k=1, which="LA", return_eigenvectors=False, tol=1e-10)[0])


def empirical_sketch_constants(sketch, rng, draws=1000):
    """Mean/min/max over ``draws`` sampled sketches of L_S = max_j s_j² and μ_S = min_j s_j²."""
    S2 = sketch.sample(rng, draws) ** 2
    L_S, mu_S = S2.max(axis=1), S2.min(axis=1)
    return {
        "L_S_mean": float(L_S.mean()), "L_S_min": float(L_S.min()), "L_S_max_seen": float(L_S.max()),
        "mu_S_mean": float(mu_S.mean()), "mu_S_min": float(mu_S.min()), "mu_S_max": float(mu_S.max()),
        "draws": int(draws),
    }


def _finite(x):
    return None if x is None or not math.isfinite(x) else float(x)


def compute_constants(obj, sketch=None, x_star=None, rng=None, draws=1000):
    """All constants as a flat dict (the ``mast constants --json`` object).

    Parameters
    ----------
    obj : objective (LogisticL2 or LogisticNonconvex)
    sketch : Sketch, optional
    x_star : ndarray, optional
        ERM solution; computed when not given.
    rng : numpy.random.Generator, optional
        For the empirical L_S, μ_S statistics (seed 0 when omitted).

    Returns
    -------
    dict
        Keys ``n, d, lam, objective, L_f, mu_f, L_max, f_inf, grad_norm_at_x_star`` and,
        with a sketch, ``sketch, sparsity, L_D, mu_D, kappa_D, L_S_max, L_fD_tight,
        L_f_L_D, mu_f_mu_D`` plus the empirical ``L_S_*``/``mu_S_*`` statistics.
        Infinite values (L_S^max of Gaussian sketches) are written as ``null``.
    """
    if x_star is None:
        x_star, info = solve_erm(obj)
    else:
        info = {"grad_norm": float(np.linalg.norm(obj.grad(x_star)))}
    L_f = obj.smoothness()
    out = {
        "n": int(obj.n), "d": int(obj.d), "lam": obj.lam, "objective": obj.name,
        "L_f": L_f, "mu_f": float(obj.mu), "L_max": float(obj.smoothness_per_sample().max()),
        "f_inf": float(obj.value(x_star)), "grad_norm_at_x_star": float(info["grad_norm"]),
        "grad_tol_at_x_star": float(info.get("grad_tol", 1e-10)),
        **({"minimizer": info["minimizer"]} if "minimizer" in info else {}),
    }
    if sketch is not None:
        rng = np.random.default_rng(0) if rng is None else rng
        out.update(sketch.params())
        out.update({
            "sketch": sketch.name,
            "sparsity": float(sketch.sparsity),
            "L_D": sketch.L_D, "mu_D": sketch.mu_D, "kappa_D": sketch.kappa_D,
            "L_S_max": _finite(sketch.L_S_max),
            "L_fD_tight": tight_smoothness(obj, sketch),
            "L_f_L_D": L_f * sketch.L_D,
            "mu_f_mu_D": float(obj.mu) * sketch.mu_D,
        })
        out.update(empirical_sketch_constants(sketch, rng, draws))
    return out
