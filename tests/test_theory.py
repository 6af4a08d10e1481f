"""theory.py: the bound functions against exact enumeration (mast-theory §3, §5, §8 checks 7-13)."""

import math

import numpy as np
import pytest

from mast_cli import theory
from mast_cli.errors import MastError
from mast_cli.reference import PoolObjective, solve_enumerated
from mast_cli.sketches import Bernoulli, RandK


@pytest.fixture(scope="module", params=["bernoulli", "rand-k"])
def exact_problem(request, tiny):
    """The tiny real problem (d = 6) with an exactly enumerated D and a random shift."""
    sk = Bernoulli(6, [0.9, 0.3, 0.6, 0.5, 0.8, 0.4]) if request.param == "bernoulli" else RandK(6, 3)
    v = np.random.default_rng(3).normal(scale=0.5, size=6)
    S, w = sk.enumerate()
    P = PoolObjective(tiny, S, v, w)
    from mast_cli.objectives import solve_erm

    xs, _ = solve_erm(tiny)
    xD, info = solve_enumerated(tiny, sk, v, tol=1e-12)
    assert info["converged"]
    return tiny, sk, v, P, xs, xD


def test_lemmas_1_2_3_hold_exactly_at_random_points(exact_problem):     # checks 7, 8, 9
    obj, sk, v, P, xs, xD = exact_problem
    L_f, mu = obj.smoothness(), obj.mu
    Es2 = sk.diag_second_moment()
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = xs + rng.normal(scale=2.0, size=obj.d)
        fx, fD = float(obj.value(x)), float(P.value(x))
        pn, dist = theory.p_norm_sq(x - v, Es2), float(np.sum((x - v) ** 2))
        assert theory.lemma2(fx) <= fD + 1e-12
        assert theory.lemma3_iii_weak(fx, mu, sk.mu_D, dist) <= theory.lemma3_iii(fx, mu, pn) + 1e-12
        assert theory.lemma3_iii(fx, mu, pn) <= fD + 1e-12
        assert fD <= theory.lemma1_iii(fx, L_f, pn) + 1e-12
        assert theory.lemma1_iii(fx, L_f, pn) <= theory.lemma1_iii_weak(fx, L_f, sk.L_D, dist) + 1e-12


def test_fD_at_shift_equals_f(exact_problem):                           # check 10
    obj, sk, v, P, xs, xD = exact_problem
    assert P.value(v) == pytest.approx(float(obj.value(v)), rel=1e-14)


def test_theorem1_sandwich_and_distance(exact_problem):                 # check 12
    obj, sk, v, P, xs, xD = exact_problem
    L_f, mu = obj.smoothness(), obj.mu
    f_inf, fD_inf = float(obj.value(xs)), float(P.value(xD))
    Es2 = sk.diag_second_moment()
    d_xs_v = float(np.sum((xs - v) ** 2))
    assert theory.theorem1_lower(f_inf, mu, sk.mu_D, float(np.sum((xD - v) ** 2))) <= fD_inf
    assert f_inf <= float(obj.value(xD)) <= fD_inf
    assert fD_inf <= theory.theorem1_upper(f_inf, L_f, theory.p_norm_sq(xs - v, Es2))
    assert theory.theorem1_upper(f_inf, L_f, theory.p_norm_sq(xs - v, Es2)) <= \
        theory.theorem1_upper_weak(f_inf, L_f, sk.L_D, d_xs_v) + 1e-15
    dist = float(np.sum((xD - xs) ** 2))
    assert dist <= theory.theorem1_distance_via_f(mu, float(obj.value(xD)), f_inf)
    assert theory.theorem1_distance_via_f(mu, float(obj.value(xD)), f_inf) <= \
        theory.theorem1_distance(L_f, mu, sk.L_D, d_xs_v)


def test_lemma4_exact_second_moment(exact_problem):                    # check 13
    obj, sk, v, P, xs, xD = exact_problem
    rng = np.random.default_rng(1)
    f_inf = float(obj.value(xs))
    for _ in range(10):
        x = xs + rng.normal(size=obj.d)
        G = P.sketched_grads(x)                     # (d, N)
        second = float(np.sum(G * G, axis=0) @ P.w)
        assert second <= theory.lemma4(obj.smoothness(), sk.L_S_max, float(P.value(x)), f_inf)


def test_theorem2_shape_and_step_condition():
    b = theory.theorem2(np.arange(5), 0.1, 2.0, 0.5, 1.5, 4.0, r0=3.0, delta=0.2)
    nb = theory.theorem2_neighbourhood(0.1, 2.0, 0.5, 1.5, 4.0, 0.2)
    assert b[0] == pytest.approx(3.0 + nb)
    assert np.all(np.diff(b) < 0)
    assert b[-1] == pytest.approx((1 - 0.1 * 0.5 * 1.5) ** 4 * 3.0 + nb)
    with pytest.raises(MastError, match="needs γ"):
        theory.theorem2(10, 0.2, 2.0, 0.5, 1.5, 4.0, 3.0, 0.2)       # γ > 1/(L_f L_S^max) = 0.125
    assert theory.theorem2(7, 0.1, 2.0, 0.5, 1.5, 4.0, 3.0, 0.0) == pytest.approx(
        theory.contraction_dsgd(0.1, 0.5, 1.5) ** 7 * 3.0)


def test_minibatch_C_limits():
    L_f, L_max, L_S, n, dl, dlb = 1.5, 4.0, 3.0, 50, 0.1, 0.3
    # τ = n: full gradient, C' = 2 L_S^max L_f Δ (the (I) constant)
    assert theory.abc_C_minibatch(L_f, L_max, L_S, n, n, dl, dlb) == pytest.approx(2 * L_S * L_f * dl)
    # τ = 1: C' = 2 L_S^max L_max \barΔ = 2A'\barΔ (the spec's single-sample form)
    A1 = theory.abc_constant_minibatch(L_f, L_max, L_S, n, 1)
    assert theory.abc_C_minibatch(L_f, L_max, L_S, n, 1, dl, dlb) == pytest.approx(2 * A1 * dlb)
    # in between: ≤ 2A'\barΔ since Δ ≤ \barΔ
    for tau in (2, 7, 30):
        A = theory.abc_constant_minibatch(L_f, L_max, L_S, n, tau)
        assert theory.abc_C_minibatch(L_f, L_max, L_S, n, tau, dl, dlb) <= 2 * A * dlb


def test_theorem3_equality_step_form():
    """With γ = 1/(L_f √(L_D L_S^max T)) the bound is L_f √(L_D L_S^max)(6δ₀ + 2Δ)/√T (§5)."""
    L_f, L_D, L_S, T, d0, dl = 2.0, 3.0, 9.0, 400, 0.7, 0.05
    g = theory.step_theorem3(L_f, L_D, L_S, T)
    assert theory.theorem3(T, g, L_f, L_D, L_S, d0, dl) == pytest.approx(
        L_f * math.sqrt(L_D * L_S) * (6 * d0 + 2 * dl) / math.sqrt(T))
    with pytest.raises(MastError):
        theory.theorem3(T, 2 * g, L_f, L_D, L_S, d0, dl)


def test_distributed_one_worker_is_theorem2():
    """M = 1, f_1 = f: A = L_f L_S^max, μ = μ_f μ_D, gap = Δ, so the bound is Theorem 2's."""
    L_f, mu_f, mu_D, L_S, r0, dl = 2.0, 0.1, 2.0, 4.0, 5.0, 0.3
    g = theory.step_distributed([L_f], [L_S])
    assert theory.distributed_strongly_convex(50, g, mu_f * mu_D, r0, L_f * L_S, dl) == pytest.approx(
        theory.theorem2(50, g, L_f, mu_f, mu_D, L_S, r0, dl))


def test_theorem18_rate_and_lyapunov():
    g = theory.step_vr(2.0, 4.0)
    assert g == pytest.approx(1 / 48)
    # γμμ_D < p/2: the rate is γμμ_D; otherwise p/2
    assert theory.theorem18_vr(10, g, 2.0, 4.0, 0.1, 2.0, 0.5, 1.0) == pytest.approx((1 - g * 0.2) ** 10)
    assert theory.theorem18_vr(10, g, 2.0, 4.0, 10.0, 2.0, 0.01, 1.0) == pytest.approx(0.995 ** 10)
    assert theory.vr_lyapunov(1.0, 2.0, 0.1, 0.5, 4) == pytest.approx(1.0 + 4 * 0.01 / 2 * 2.0)
