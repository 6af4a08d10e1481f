"""Exact constants of the logistic objectives (mast-theory §3.2).

For the logistic loss the data term's Hessian is (1/n)Aᵀ Diag(σ(1−σ)) A ⪯ AᵀA/(4n), with
equality at x = 0 (all margins 0, σ(1−σ) = 1/4).  So L_f = sup_x λ_max(∇²f(x)) is attained at 0
and equals λ_max(AᵀA/(4n) + c I) exactly, c the penalty's curvature at 0 (λ for ℓ2, 2λ for
λΣx²/(1+x²)).  These are compared with the product's constants to 1e-8 relative.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..result import CheckResult

__all__ = ["exact_L_f", "exact_L_i", "exact_ridge", "is_logistic", "is_ridge"]

#: Penalty curvature at 0 per objective name (the independent reference).
PEN_CURV_AT_0 = {"logreg": 1.0, "logreg-nonconvex": 2.0}
RTOL = 1e-8


def is_logistic(ctx):
    return getattr(ctx.obj, "name", "") in PEN_CURV_AT_0


def _reference_hessian_at_0(obj):
    G = obj.A.T @ obj.A
    G = G.toarray() if sp.issparse(G) else np.asarray(G)
    return G / (4.0 * obj.n) + PEN_CURV_AT_0[obj.name] * obj.lam * np.eye(obj.d)


def exact_L_f(ctx):
    """L_f = λ_max(∇²f(0)) = λ_max(AᵀA/(4n) + cI) to 1e-8 relative, and the product's ∇²f(0) equals it."""
    obj = ctx.obj
    H0 = _reference_hessian_at_0(obj)
    top = float(np.linalg.eigvalsh(H0)[-1])
    L_f = float(obj.smoothness())
    err_L = abs(L_f - top) / top
    Hp = obj.hessian(np.zeros(obj.d))
    err_H = float(np.max(np.abs(Hp - H0)) / max(1e-300, float(np.max(np.abs(H0)))))
    return CheckResult("const-L_f", "§3.2: L_f = λ_max(∇²f(0)) = λ_max(AᵀA/(4n) + λI) (exact; and ∇²f(0) itself)",
                       max(err_L, err_H), RTOL, recon=False,
                       notes=f"L_f {L_f:.12g} vs top eigenvalue {top:.12g}; relative errors: L_f {err_L:.1e}, "
                             f"∇²f(0) {err_H:.1e}")


def exact_L_i(ctx):
    """L_max = max_i ‖a_i‖²/4 + c (Algorithm 1 (II) steps) and μ_f = λ (ℓ2), exact."""
    obj = ctx.obj
    c = PEN_CURV_AT_0[obj.name] * obj.lam
    row = np.asarray(obj.A.multiply(obj.A).sum(axis=1)).ravel() / 4.0 + c
    Li = np.asarray(obj.smoothness_per_sample(), dtype=np.float64)
    err = float(np.max(np.abs(Li - row) / row))
    mu_ref = obj.lam if obj.name == "logreg" else 0.0
    err_mu = abs(float(obj.mu) - mu_ref) / max(mu_ref, 1e-300) if mu_ref > 0 else abs(float(obj.mu))
    return CheckResult("const-L_i", "§3.2: L_i = ‖a_i‖²/4 + λ for every row, μ_f = λ (exact)", max(err, err_mu), RTOL,
                       recon=False, notes=f"relative errors: L_i {err:.1e}, μ_f {err_mu:.1e}")


def is_ridge(ctx):
    return getattr(ctx.obj, "name", "") == "ridge"


def exact_ridge(ctx):
    """Ridge: L_f = λ_max(H), μ_f = λ_min(H) with H = AᵀA/n + λI (mast-theory §2.6), to 1e-8 relative,
    H built here from A and λ (dense eigensolver), and the per-row L_i = ‖a_i‖² + λ."""
    obj = ctx.obj
    G = obj.A.T @ obj.A
    G = G.toarray() if sp.issparse(G) else np.asarray(G)
    ev = np.linalg.eigvalsh(G / obj.n + obj.lam * np.eye(obj.d))
    lo, hi = float(ev[0]), float(ev[-1])
    err_L = abs(float(obj.smoothness()) - hi) / hi
    err_mu = abs(float(obj.mu) - lo) / hi                     # relative to L_f: λ_min may be ≈ λ only
    row = np.asarray(obj.A.multiply(obj.A).sum(axis=1)).ravel() + obj.lam
    err_i = float(np.max(np.abs(np.asarray(obj.smoothness_per_sample(), dtype=np.float64) - row) / row))
    return CheckResult("const-ridge", "§2.6: ridge L_f = λ_max(H), μ_f = λ_min(H), H = AᵀA/n + λI; L_i = ‖a_i‖² + λ "
                       "(exact)", max(err_L, err_mu, err_i), RTOL, recon=False,
                       notes=f"L_f {float(obj.smoothness()):.10g} vs {hi:.10g}, μ_f {float(obj.mu):.10g} vs {lo:.10g}; "
                             f"relative errors L_f {err_L:.1e}, μ_f {err_mu:.1e} (of L_f), L_i {err_i:.1e}")
