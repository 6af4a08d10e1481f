"""The paper's bounds and theory step sizes, one function per statement (mast-theory §3, §5).

All statements are [RECON] unless said otherwise: derived in mast-theory.md from
the fragments of the paper that could be read, with constants that may differ
from the paper's by small factors.
"""

from __future__ import annotations

import math

from .errors import MastError

__all__ = [
    "minibatch_coefficients",
    "abc_constant_minibatch",
    "step_dsgd",
    "step_dsgd_minibatch",
    "step_distributed",
    "step_vr",
]


def _finite_LSmax(L_S_max, what):
    if L_S_max is None or not math.isfinite(L_S_max):
        raise MastError(f"the theory step of {what} needs a finite L_S^max "
                        "(not defined for Gaussian sketches); give the step size explicitly")
    return L_S_max


def step_dsgd(L_f, L_S_max):
    """Theorem 2 step of Algorithm 1 (I): γ = 1/(L_f L_S^max) [READ-weak: S8; RECON]."""
    return 1.0 / (L_f * _finite_LSmax(L_S_max, "Algorithm 1 (I)"))


def minibatch_coefficients(n, tau):
    """a = n(τ−1)/(τ(n−1)) and b = (n−τ)/(τ(n−1)) of the τ-minibatch identity (§5, (II)).

    Sampling τ of n rows uniformly without replacement:
    E‖(1/τ)Σ_{i∈B} g_i‖² = a ‖ḡ‖² + b (1/n)Σ_i ‖g_i‖².
    """
    if n == 1:
        return 1.0, 0.0
    return n * (tau - 1) / (tau * (n - 1)), (n - tau) / (tau * (n - 1))


def abc_constant_minibatch(L_f, L_max, L_S_max, n, tau, sampling="uniform", L_mean=None):
    """A' of Algorithm 1 (II) (mast-theory §5, variant (II)) [RECON].

    uniform τ-minibatch without replacement: A' = L_S^max (a L_f + b L_max);
    importance sampling (τ i.i.d. draws, q_i ∝ L_i): A' = L_S^max (L̄/τ + (1 − 1/τ) L_f),
    with L̄ = mean_i L_i (single-sample constant max_i L_i/(n q_i) = L̄).
    """
    L_S_max = _finite_LSmax(L_S_max, "Algorithm 1 (II)")
    if sampling == "uniform":
        a, b = minibatch_coefficients(n, min(tau, n))
        return L_S_max * (a * L_f + b * L_max)
    if sampling == "importance":
        if L_mean is None:
            raise MastError("importance sampling needs the mean per-sample smoothness L_mean")
        return L_S_max * (L_mean / tau + (1.0 - 1.0 / tau) * L_f)
    raise MastError(f"unknown sampling '{sampling}'; choose uniform or importance")


def step_dsgd_minibatch(L_f, L_max, L_S_max, n, tau, sampling="uniform", L_mean=None):
    """Step of Algorithm 1 (II): γ = 1/A' (strongly convex (II) form, mast-theory §5) [RECON]."""
    return 1.0 / abc_constant_minibatch(L_f, L_max, L_S_max, n, tau, sampling, L_mean)


def step_distributed(L_f_local, L_S_max_local):
    """Step of Algorithm 2: γ = 1/max_i(L_{f_i} L_{S_i}^max) [RECON].

    The strongly convex distributed statement of mast-theory §5 (γ ≤ 1/A with
    A := max_i L_{f_i} L_{S_i}^max); L_{f_i} are the workers' smoothness constants
    and L_{S_i}^max their sketches' (heterogeneous D_i allowed).
    """
    A = max(float(Lf) * _finite_LSmax(float(Ls), "Algorithm 2")
            for Lf, Ls in zip(L_f_local, L_S_max_local))
    return 1.0 / A


def step_vr(L_f, L_S_max):
    """Theorem 18 step of Algorithm 3 (L-SVRDSG): γ = 1/(6 L_f L_S^max) [RECON]."""
    return 1.0 / (6.0 * L_f * _finite_LSmax(L_S_max, "Algorithm 3"))
