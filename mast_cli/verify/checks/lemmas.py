"""Lemmas 1(iii), 2, 3(iii) and 4 at K test points (exact for D_pool; mast-theory §3.3, §3.5)."""

from __future__ import annotations

import numpy as np

from ...core import theory
from ..result import CheckResult

__all__ = ["lemma1_iii", "lemma2", "lemma3_iii", "lemma4"]


def _note(ctx):
    return f"worst of {ctx.points[0].shape[1]} points (x*, x*_D, random around x*)"


def lemma1_iii(ctx):
    """Lemma 1(iii): f_D(x) − f(x) ≤ (L_f/2)‖x − v‖²_P at the worst test point."""
    X, fX, fDX, pn = ctx.points
    K = X.shape[1]
    obs = fDX - fX
    bnd = np.array([theory.lemma1_iii(fX[k], ctx.L_f, pn[k]) for k in range(K)]) - fX
    k = int(np.argmin(bnd - obs))
    return CheckResult("lemma1-iii", "Lemma 1(iii): f_D(x) − f(x) ≤ (L_f/2)‖x − v‖²_P", float(obs[k]),
                       float(bnd[k]), tol=ctx.tol_for(fX[k], fDX[k]), samples=K, notes=_note(ctx))


def lemma2(ctx):
    """Lemma 2: f_D(x) ≥ f(x) (f convex), as f(x) − f^inf ≤ f_D(x) − f^inf, at the test points
    other than x*_D (at x*_D this is Theorem 1's ``thm1-f-xD``)."""
    X, fX, fDX, pn = ctx.points
    idx = np.array([k for k in range(X.shape[1]) if k != 1])         # column 1 is x*_D
    obs = fX[idx] - ctx.prob.f_inf
    bnd = fDX[idx] - ctx.prob.f_inf
    j = int(np.argmin(bnd - obs))
    k = int(idx[j])
    return CheckResult("lemma2", "Lemma 2: f(x) − f^inf ≤ f_D(x) − f^inf (f_D ≥ f)", float(obs[j]), float(bnd[j]),
                       tol=ctx.tol_for(fX[k], fDX[k]), samples=idx.size,
                       notes=f"worst of {idx.size} points (x*, random around x*; x*_D is thm1-f-xD)")


def lemma3_iii(ctx):
    """Lemma 3(iii): (μ_f/2)‖x − v‖²_P ≤ f_D(x) − f(x)."""
    X, fX, fDX, pn = ctx.points
    K = X.shape[1]
    obs = np.array([theory.lemma3_iii(fX[k], ctx.mu, pn[k]) for k in range(K)]) - fX
    bnd = fDX - fX
    k = int(np.argmin(bnd - obs))
    return CheckResult("lemma3-iii", "Lemma 3(iii): (μ_f/2)‖x − v‖²_P ≤ f_D(x) − f(x)", float(obs[k]),
                       float(bnd[k]), tol=ctx.tol_for(fX[k], fDX[k]), samples=K, notes=_note(ctx))


def lemma4(ctx):
    """Lemma 4: E‖∇f_S(x)‖² ≤ 2 L_f L_S^max (f_D(x) − f^inf) (certified ℓ = 0 when non-convex)."""
    X, fX, fDX, pn = ctx.points
    K = X.shape[1]
    G = ctx.sketched_grads_at_points                          # (d, N, K)
    obs = np.einsum("dnk,n->k", G * G, ctx.pool.weights)
    bnd = np.array([theory.lemma4(ctx.L_f, ctx.L_S, fDX[k], ctx.f_low) for k in range(K)])
    k = int(np.argmin(bnd - obs))
    return CheckResult("lemma4", "Lemma 4: E‖∇f_S(x)‖² ≤ 2 L_f L_S^max (f_D(x) − f^inf)", float(obs[k]),
                       float(bnd[k]), tol=ctx.tol_for(obs[k], bnd[k]), samples=K,
                       notes=_note(ctx) + ("" if ctx.convex else "; ℓ = 0 ≤ f in place of f^inf"))
