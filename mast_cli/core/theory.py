"""The paper's bounds and theory step sizes, one function per statement (mast-theory §3, §5).

All statements are [RECON] unless said otherwise: derived in mast-theory.md from
the fragments of the paper that could be read, with constants that may differ
from the paper's by small factors.
"""

from __future__ import annotations

import math

import numpy as np

from ..io.errors import MastError

__all__ = [
    "minibatch_coefficients",
    "abc_constant_minibatch",
    "step_dsgd",
    "step_dsgd_minibatch",
    "step_distributed",
    "step_vr",
    "p_norm_sq",
    "lemma1_iii",
    "lemma1_iii_weak",
    "lemma2",
    "lemma3_iii",
    "lemma3_iii_weak",
    "theorem1_upper",
    "theorem1_upper_weak",
    "theorem1_lower",
    "theorem1_distance",
    "theorem1_distance_via_f",
    "lemma4",
    "contraction_dsgd",
    "theorem2",
    "theorem2_neighbourhood",
    "abc_C_minibatch",
    "theorem2_II",
    "step_theorem3",
    "theorem3",
    "step_theorem4",
    "theorem4",
    "distributed_strongly_convex",
    "theorem5_distributed",
    "vr_lyapunov",
    "theorem18_vr",
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


# --- Lemmas 1–4 and Theorem 1 (mast-theory §3.3–3.5) -------------------------------------
# Notation: P := E[SᵀS] − I ⪰ 0, ‖u‖²_P := uᵀPu.  For diagonal sketches P = Diag(E[s²] − 1).

def p_norm_sq(u, Es2):
    """‖u‖²_P = Σ_k (E[s_k²] − 1) u_k² for a diagonal sketch with E[s_k²] = ``Es2[k]``."""
    u = np.asarray(u, dtype=np.float64)
    return float(np.sum((np.asarray(Es2, dtype=np.float64) - 1.0) * u * u))


def lemma1_iii(f_x, L_f, pnorm_sq):
    """Lemma 1(iii), upper bound on f_D(x) [RECON, mast-theory §3.3].

    f_D(x) ≤ f(x) + (L_f/2) ‖x − v‖²_P.  Needs only L_f-smoothness of f and E[S] = I.

    Parameters
    ----------
    f_x : float
        f(x).
    L_f : float
    pnorm_sq : float
        ‖x − v‖²_P (see :func:`p_norm_sq`).
    """
    return f_x + 0.5 * L_f * pnorm_sq


def lemma1_iii_weak(f_x, L_f, L_D, dist_sq):
    """Lemma 1(iii), weaker form: f_D(x) ≤ f(x) + (L_f/2)(L_D − 1)‖x − v‖² [RECON]."""
    return f_x + 0.5 * L_f * (L_D - 1.0) * dist_sq


def lemma2(f_x):
    """Lemma 2 (convex f), lower bound on f_D(x): f_D(x) ≥ f(x) (Jensen, E[v + S(x − v)] = x) [RECON]."""
    return f_x


def lemma3_iii(f_x, mu_f, pnorm_sq):
    """Lemma 3(iii), lower bound on f_D(x): f_D(x) ≥ f(x) + (μ_f/2)‖x − v‖²_P [RECON, §3.3]."""
    return f_x + 0.5 * mu_f * pnorm_sq


def lemma3_iii_weak(f_x, mu_f, mu_D, dist_sq):
    """Lemma 3(iii), weaker form: f_D(x) ≥ f(x) + (μ_f/2)(μ_D − 1)‖x − v‖² [RECON]."""
    return f_x + 0.5 * mu_f * (mu_D - 1.0) * dist_sq


def theorem1_upper(f_inf, L_f, pnorm_sq_xstar):
    """Theorem 1, upper side: f_D^inf ≤ f^inf + (L_f/2)‖x* − v‖²_P [RECON, mast-theory §3.4].

    (Lemma 1(iii) at x = x*.)  ``pnorm_sq_xstar`` = ‖x* − v‖²_P.
    """
    return f_inf + 0.5 * L_f * pnorm_sq_xstar


def theorem1_upper_weak(f_inf, L_f, L_D, dist_sq_xstar):
    """Theorem 1, upper side, weak form: f_D^inf ≤ f^inf + (L_f/2)(L_D − 1)‖x* − v‖² [RECON]."""
    return f_inf + 0.5 * L_f * (L_D - 1.0) * dist_sq_xstar


def theorem1_lower(f_inf, mu_f, mu_D, dist_sq_xD):
    """Theorem 1, lower side (μ_f > 0): f_D^inf ≥ f^inf + (μ_f/2)(μ_D − 1)‖x*_D − v‖² [RECON].

    Together with f^inf ≤ f(x*_D) ≤ f_D^inf (Lemma 2 at x*_D).
    """
    return f_inf + 0.5 * mu_f * (mu_D - 1.0) * dist_sq_xD


def theorem1_distance(L_f, mu_f, L_D, dist_sq_xstar):
    """Theorem 1, distance of the minimizers: ‖x*_D − x*‖² ≤ (L_f/μ_f)(L_D − 1)‖x* − v‖² [RECON]."""
    if mu_f <= 0:
        return math.inf
    return (L_f / mu_f) * (L_D - 1.0) * dist_sq_xstar


def theorem1_distance_via_f(mu_f, f_xD, f_inf):
    """Theorem 1(3), middle step: ‖x*_D − x*‖² ≤ (2/μ_f)(f(x*_D) − f^inf) [RECON]."""
    if mu_f <= 0:
        return math.inf
    return 2.0 / mu_f * (f_xD - f_inf)


def lemma4(L_f, L_S_max, f_D_x, f_inf):
    """Lemma 4 (ABC bound): E‖∇f_S(x)‖² ≤ 2 L_f L_S^max (f_D(x) − f^inf) [RECON, mast-theory §3.5].

    Any lower bound of f may stand in for f^inf (the bound only grows).
    """
    return 2.0 * L_f * L_S_max * (f_D_x - f_inf)


# --- Theorem 2 and its (II) form: strongly convex Algorithm 1 (mast-theory §5) --------------

def _check_step(gamma, limit, what):
    if not gamma <= limit * (1 + 1e-12):
        raise MastError(f"{what} needs γ ≤ {limit:.6g}, got γ = {gamma:.6g}")


def contraction_dsgd(gamma, mu_f, mu_D):
    """Per-step contraction factor 1 − γ μ_f μ_D of Theorem 2 [READ-weak: S8; RECON]."""
    return 1.0 - gamma * mu_f * mu_D


def theorem2_neighbourhood(gamma, L_f, mu_f, mu_D, L_S_max, delta):
    """Neighbourhood of Theorem 2: 2γ L_f L_S^max Δ / (μ_f μ_D) [RECON]."""
    return 2.0 * gamma * L_f * L_S_max * delta / (mu_f * mu_D)


def theorem2(t, gamma, L_f, mu_f, mu_D, L_S_max, r0, delta):
    """Theorem 2, Algorithm 1 (I), μ_f > 0 and 0 < γ ≤ 1/(L_f L_S^max) [READ-weak: S8; RECON]:

        E‖x^t − x*_D‖² ≤ (1 − γ μ_f μ_D)^t ‖x⁰ − x*_D‖² + 2γ L_f L_S^max Δ / (μ_f μ_D),

    with Δ = f_D^inf − f^inf.  Under interpolation (Δ = 0, e.g. v = x*) the rate is
    linear to x*_D exactly.

    Parameters
    ----------
    t : int or ndarray
        Iteration(s).
    r0 : float
        ‖x⁰ − x*_D‖².

    Returns
    -------
    float or ndarray (the bound at each t)
    """
    _check_step(gamma, 1.0 / (L_f * _finite_LSmax(L_S_max, "Theorem 2")), "Theorem 2")
    rho = contraction_dsgd(gamma, mu_f, mu_D)
    return rho ** np.asarray(t, dtype=np.float64) * r0 \
        + theorem2_neighbourhood(gamma, L_f, mu_f, mu_D, L_S_max, delta)


def abc_C_minibatch(L_f, L_max, L_S_max, n, tau, delta, delta_bar):
    """C' of Algorithm 1 (II) with a uniform τ-minibatch without replacement [RECON, §5 (II)]:

        E‖g‖² ≤ 2A'(f_D(x) − f_D^inf) + C',   A' = L_S^max (a L_f + b L_max),
        C' = 2 L_S^max (a L_f Δ + b L_max \\barΔ),

    from E‖(1/τ)Σ_{i∈B}∇f_i‖² = a‖∇f‖² + b (1/n)Σ‖∇f_i‖², ‖∇f(y)‖² ≤ 2L_f(f(y) − f^inf)
    and ‖∇f_i(y)‖² ≤ 2L_max(f_i(y) − f_i^inf); \\barΔ = f_D^inf − (1/n)Σ_i f_i^inf ≥ Δ.
    At τ = 1 this is ≤ 2A'\\barΔ (the spec's single-sample C').
    """
    a, b = minibatch_coefficients(n, min(tau, n))
    return 2.0 * _finite_LSmax(L_S_max, "Algorithm 1 (II)") * (a * L_f * delta + b * L_max * delta_bar)


def theorem2_II(t, gamma, mu_f, mu_D, r0, A_prime, C_prime):
    """Theorem 2, (II) form (general sampling), 0 < γ ≤ 1/A' [RECON, mast-theory §5 (II)]:

        E‖x^t − x*_D‖² ≤ (1 − γ μ_f μ_D)^t ‖x⁰ − x*_D‖² + γ C' / (μ_f μ_D).
    """
    _check_step(gamma, 1.0 / A_prime, "Theorem 2 (II)")
    rho = contraction_dsgd(gamma, mu_f, mu_D)
    return rho ** np.asarray(t, dtype=np.float64) * r0 + gamma * C_prime / (mu_f * mu_D)


# --- Theorems 3–4: non-convex Algorithm 1 (mast-theory §5) ---------------------------------

def step_theorem3(L_f, L_D, L_S_max, T):
    """Theorem 3 step: γ = 1/(L_f √(L_D L_S^max T)) [READ-weak: S8; RECON]."""
    return 1.0 / (L_f * math.sqrt(L_D * _finite_LSmax(L_S_max, "Theorem 3") * T))


def theorem3(T, gamma, L_f, L_D, L_S_max, delta0, delta):
    """Theorem 3, non-convex Algorithm 1 (I) [RECON, Khaled–Richtárik with L = L_f L_D,
    A = L_f L_S^max, B = 0, C = 2AΔ]: for γ ≤ 1/(L_f √(L_D L_S^max T)),

        min_{0≤t<T} E‖∇f_D(x^t)‖² ≤ 6δ₀/(γT) + 2γ L_f² L_D L_S^max Δ,

    δ₀ = f_D(x⁰) − f_D^inf, Δ = f_D^inf − f^inf.  The proof uses f^inf and f_D^inf only as
    lower bounds: any ℓ ≤ f^inf may replace both (δ₀ = f_D(x⁰) − ℓ, Δ = 0), a weaker
    but certified form when the infima are unknown (non-convex f).
    """
    _check_step(gamma, step_theorem3(L_f, L_D, L_S_max, T), "Theorem 3")
    return 6.0 * delta0 / (gamma * T) + 2.0 * gamma * L_f ** 2 * L_D * L_S_max * delta


def step_theorem4(L_f, L_D, A_prime, T):
    """Theorem 4 step (B' = 0): γ = 1/√(L_f L_D A' T) [RECON]."""
    return 1.0 / math.sqrt(L_f * L_D * A_prime * T)


def theorem4(T, gamma, L_f, L_D, A_prime, delta0, C_prime):
    """Theorem 4, non-convex Algorithm 1 (II) [RECON]: for γ ≤ 1/√(L_f L_D A' T),

        min_{0≤t<T} E‖∇f_D(x^t)‖² ≤ 6δ₀/(γT) + γ L_f L_D C'.
    """
    _check_step(gamma, step_theorem4(L_f, L_D, A_prime, T), "Theorem 4")
    return 6.0 * delta0 / (gamma * T) + gamma * L_f * L_D * C_prime


# --- Algorithm 2 (distributed) and Algorithm 3 (VR) ----------------------------------------

def distributed_strongly_convex(t, gamma, mu, r0, A, gap):
    """Strongly convex Algorithm 2 [RECON, mast-theory §5, likely one of Theorems 12/15/17]:
    with A := max_i L_{f_i} L_{S_i}^max, γ ≤ 1/A and μ ≤ (1/M)Σ_i μ_{f_i} μ_{D_i},

        E‖x^t − x*‖² ≤ (1 − γμ)^t ‖x⁰ − x*‖² + 2γA (F^inf − (1/M)Σ_i f_i^inf) / μ,

    x* = argmin F, F(x) = (1/M)Σ_i E f_i(v + S_i(x − v)); ``gap`` = F^inf − (1/M)Σ_i f_i^inf.
    """
    _check_step(gamma, 1.0 / A, "Algorithm 2")
    return (1.0 - gamma * mu) ** np.asarray(t, dtype=np.float64) * r0 + 2.0 * gamma * A * gap / mu


def theorem5_distributed(T, gamma, D, delta0, gap):
    """Theorem 5, non-convex Algorithm 2 [READ-weak: S8 (D_max, the gap); RECON]:

        min_t E‖∇F(x^t)‖² ≤ 6(F(x⁰) − F^inf)/(γT) + 2γ D (F^inf − (1/M)Σ_i f_i^inf),

    γ ≈ 1/√(D T).  **Caveat (mast-theory §5):** the derivation here needs
    D = (max_i L_{f_i} L_{D_i})(max_i L_{f_i} L_{S_i}^max) ≥ D_max; the paper's sharper
    D_max = max_i L_{f_i}² L_{D_i} L_{S_i}^max could not be verified.
    """
    _check_step(gamma, 1.0 / math.sqrt(D * T), "Theorem 5")
    return 6.0 * delta0 / (gamma * T) + 2.0 * gamma * D * gap


def vr_lyapunov(dist_sq, grad_diff_sq_sum, gamma, p, N):
    """Φ = ‖x − x*_D‖² + (4γ²/(pN)) Σ_j ‖∇f_{S_j}(w) − ∇f_{S_j}(x*_D)‖² (Theorem 18) [RECON]."""
    return dist_sq + 4.0 * gamma ** 2 / (p * N) * grad_diff_sq_sum


def theorem18_vr(t, gamma, L_f, L_S_max, mu_f, mu_D, p, phi0):
    """Theorem 18, Algorithm 3 (L-SVRDSG) with the exact reference b = N [RECON, from L-SVRG]:
    uniform pool of N sketches, each f_{S_j} convex and L_f L_{S_j}-smooth, γ ≤ 1/(6 L_f L_S^max):

        E Φ^t ≤ (1 − min{γ μ_f μ_D, p/2})^t Φ⁰   (linear convergence to x*_D, no Δ),

    so E‖x^t − x*_D‖² ≤ the same bound (Φ ≥ ‖x − x*_D‖², :func:`vr_lyapunov`).
    """
    _check_step(gamma, step_vr(L_f, L_S_max), "Theorem 18")
    rho = 1.0 - min(gamma * mu_f * mu_D, p / 2.0)
    return rho ** np.asarray(t, dtype=np.float64) * phi0
