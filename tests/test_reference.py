"""reference.py: pool / enumeration solver for x*_D, f_D^inf, Δ and the Monte Carlo estimates."""

import math

import numpy as np
import pytest

from mast_cli.objectives import solve_erm
from mast_cli.reference import (EmpiricalSketch, PoolObjective, compute_reference, grad_norm_sq_estimate,
                                make_pool, mc_value, solve_enumerated, solve_pool)
from mast_cli.sketches import Bernoulli, Gaussian, RandK


class Quadratic:
    """f(x) = ½xᵀAx − bᵀx (n = 1 'row'): f_D has a closed form (mast-theory §2.5)."""

    n = 1

    def __init__(self, A, b):
        self.A_, self.b_ = A, b
        self.d = len(b)

    def value(self, X):
        return 0.5 * np.sum(X * (self.A_ @ X), axis=0) - self.b_ @ X


@pytest.mark.parametrize("sk", [Bernoulli(5, [0.9, 0.3, 0.6, 0.5, 0.8]), RandK(5, 2)], ids=["bern", "randk"])
def test_enumerated_pool_is_exact_for_quadratics(sk):                  # check 11
    rng = np.random.default_rng(0)
    B = rng.normal(size=(5, 5))
    A = B @ B.T + np.eye(5)
    q = Quadratic(A, rng.normal(size=5))
    v = rng.normal(size=5)
    pool = make_pool(sk, 10, rng)
    assert pool.exact and pool.N == sk.support_size()
    P = PoolObjective(q, pool, v)
    X = rng.normal(size=(5, 4))
    closed = q.value(X) + 0.5 * np.sum((X - v[:, None]) * ((sk.sandwich(A) - A) @ (X - v[:, None])), axis=0)
    np.testing.assert_allclose(P.value(X), closed, rtol=1e-13)


def test_empirical_sketch_constants_match_enumerated_distribution():
    sk = Bernoulli(4, [0.9, 0.3, 0.6, 0.5])
    pool = make_pool(sk, 8, np.random.default_rng(0))
    np.testing.assert_allclose(pool.mean(), 1.0, atol=1e-14)
    np.testing.assert_allclose(pool.second_moment(), sk.second_moment(), atol=1e-13)
    assert pool.L_D == pytest.approx(sk.L_D) and pool.mu_D == pytest.approx(sk.mu_D)
    assert pool.L_S_max == pytest.approx(sk.L_S_max)
    assert pool.sparsity == pytest.approx(sk.sparsity)
    # sampling frequencies follow the (non-uniform) weights
    m = 40_000
    draws = pool.sample(np.random.default_rng(1), m)
    counts = np.array([np.all(draws == s, axis=1).sum() for s in pool.S])
    sd = np.sqrt(m * pool.weights * (1 - pool.weights))
    assert np.all(np.abs(counts - m * pool.weights) <= 5 * sd)


@pytest.mark.parametrize("sk", [Bernoulli(123, 0.5), Bernoulli(123, 0.25), RandK(123, 40), Gaussian(20, 0.7)],
                         ids=["bern0.5", "bern0.25", "randk", "gauss"])
def test_drawn_pool_is_unbiased_and_balanced(sk):
    pool = make_pool(sk, 64, np.random.default_rng(2))
    assert not pool.exact and pool.N == 64
    np.testing.assert_allclose(pool.mean(), 1.0, atol=1e-12)            # Assumption 1 exactly
    assert pool.unbiased
    if not isinstance(sk, Gaussian):
        # balanced designs: the pool's constants are D's (Bernoulli with integer pN exactly)
        assert pool.L_D == pytest.approx(sk.L_D, rel=0.05)
        assert pool.L_S_max == pytest.approx(sk.L_S_max, rel=0.1)
    if isinstance(sk, Bernoulli):
        assert pool.L_D == pytest.approx(1 / 0.5 if sk.p[0] == 0.5 else 1 / 0.25)
    if isinstance(sk, RandK):
        assert np.all((pool.S > 0).sum(axis=1) == 40)                   # each sketch keeps K coordinates


def test_biased_sketch_is_refused():
    from mast_cli.errors import MastError
    from mast_cli.sketches import DropoutUnscaled

    with pytest.raises(MastError, match="Assumption 1"):
        make_pool(DropoutUnscaled(50, 0.5), 16, np.random.default_rng(0))


def test_solve_pool_dense_and_cg_agree_and_are_stationary(a1a_obj):
    pool = make_pool(Bernoulli(a1a_obj.d, 0.5), 24, np.random.default_rng(0))
    v = np.linspace(-0.2, 0.2, a1a_obj.d)
    x1, i1 = solve_pool(a1a_obj, pool, v, hessian="dense")
    x2, i2 = solve_pool(a1a_obj, pool, v, hessian="cg")
    assert i1["converged"] and i2["converged"] and i2["hvps"] > 0
    np.testing.assert_allclose(x1, x2, atol=1e-9)
    P = PoolObjective(a1a_obj, pool, v)
    assert np.linalg.norm(P.grad(x2)) <= 1e-10
    # the dense Hessian equals the Hessian-vector product
    u = np.random.default_rng(1).normal(size=a1a_obj.d)
    np.testing.assert_allclose(P.hessian(x2) @ u, P.hessp(x2, u), atol=1e-12)
    # and the gradient matches finite differences of the values
    h = 1e-6
    fd = (P.value(x2 + h * u) - P.value(x2 - h * u)) / (2 * h)
    assert fd == pytest.approx(float(P.grad(x2 + 0.0) @ u), abs=1e-7)


def test_solve_pool_matches_newton_on_explicit_weights(tiny):
    sk = RandK(6, 2)
    v = np.full(6, 0.3)
    x, info = solve_enumerated(tiny, sk, v)
    S, w = sk.enumerate()
    # stationarity of the exact f_D: Σ_j w_j s_j ⊙ ∇f(v + s_j ⊙ (x − v)) = 0
    G = np.array([s * tiny.grad(v + s * (x - v)) for s in S])
    assert np.linalg.norm(w @ G) <= 1e-10
    assert info["value"] >= float(tiny.value(solve_erm(tiny)[0]))       # f_D^inf ≥ f^inf


def test_interpolation_shift_is_the_pool_minimizer(tiny):               # check 10
    xs, _ = solve_erm(tiny, tol=1e-13)
    pool = make_pool(Bernoulli(6, 0.5), 8, np.random.default_rng(0))
    x, info = solve_pool(tiny, pool, xs, x0=np.zeros(6))
    np.testing.assert_allclose(x, xs, atol=1e-9)
    assert info["value"] == pytest.approx(float(tiny.value(xs)), rel=1e-13)


def test_mc_value_and_reference_standard_errors(tiny):
    sk = Bernoulli(6, 0.5)
    S, w = sk.enumerate()
    v = np.zeros(6)
    x = np.linspace(-1, 1, 6)
    exact = float(PoolObjective(tiny, S, v, w).value(x))
    mean, se = mc_value(tiny, sk, v, x, 4000, np.random.default_rng(3))
    assert se > 0 and abs(mean - exact) <= 4 * se
    ref_exact = compute_reference(tiny, sk, v)
    assert ref_exact.pool.exact and ref_exact.se_f_D_inf == 0 and ref_exact.fresh == {}
    ref = compute_reference(tiny, sk, v, N=200, rng=np.random.default_rng(4), enumerate_max=10)
    assert not ref.pool.exact and ref.pool.N == 200 and ref.se_f_D_inf > 0
    vals = PoolObjective(tiny, ref.pool, v).values(ref.x_D)
    assert ref.se_f_D_inf == pytest.approx(vals.std(ddof=1) / math.sqrt(200))
    # the SAA estimate of Δ is within a few standard errors of the exact Δ
    assert abs(ref.delta - ref_exact.delta) <= 5 * ref.se_f_D_inf
    # fresh sketches: an unbiased estimate of f_D(x_pool) ≥ f_D^inf
    assert ref.fresh["f_D_at_xD"] >= ref_exact.f_D_inf - 4 * ref.fresh["f_D_at_xD_se"]
    s = ref.summary()
    assert s["N"] == 200 and s["delta_se"] == ref.se_f_D_inf


def test_grad_norm_sq_estimate_is_unbiased(a1a_obj):
    pool = make_pool(RandK(a1a_obj.d, 30), 40, np.random.default_rng(0))
    P = PoolObjective(a1a_obj, pool, np.zeros(a1a_obj.d))
    X = np.random.default_rng(1).normal(scale=0.1, size=(a1a_obj.d, 3))
    exact, is_exact = grad_norm_sq_estimate(P, X, np.random.default_rng(0), m=200)
    assert is_exact
    Xr = np.repeat(X, 200, axis=1)                                       # 600 columns: estimated
    est, is_exact = grad_norm_sq_estimate(P, Xr, np.random.default_rng(2), m=8, budget=0)
    assert not is_exact
    est = est.reshape(3, 200)
    se = est.std(axis=1, ddof=1) / math.sqrt(200)
    assert np.all(np.abs(est.mean(axis=1) - exact) <= 4.5 * se)


def test_empirical_sketch_accepts_weights_and_checks_them():
    from mast_cli.errors import MastError

    S = np.array([[2.0, 0.0], [0.0, 2.0]])
    es = EmpiricalSketch(S, [0.5, 0.5])
    np.testing.assert_allclose(es.mean(), 1.0)
    assert es.L_S_max == 4.0 and es.L_D == 2.0
    with pytest.raises(MastError):
        EmpiricalSketch(S, [0.7, 0.7])


def test_hessian_from_hvps_matches_stacked_gram(a1a_obj):
    pool = make_pool(RandK(a1a_obj.d, 50), 12, np.random.default_rng(5))
    P = PoolObjective(a1a_obj, pool, np.full(a1a_obj.d, 0.05))
    x = np.random.default_rng(6).normal(scale=0.2, size=a1a_obj.d)
    np.testing.assert_allclose(P.hessian_hvp(x, block=7), P.hessian(x), atol=1e-12)


def test_x_D_standard_error_matches_spread_over_pools(tiny):
    """The sandwich standard error of x_pool predicts its spread over independent pools."""
    sk = Bernoulli(6, 0.5)
    v = np.zeros(6)
    refs = [compute_reference(tiny, sk, v, N=100, rng=np.random.default_rng(s), enumerate_max=10, fresh=0)
            for s in range(12)]
    exact = compute_reference(tiny, sk, v)
    assert exact.x_D_se == 0
    rms = math.sqrt(np.mean([np.sum((r.x_D - exact.x_D) ** 2) for r in refs]))
    se = np.mean([r.x_D_se for r in refs])
    # balanced pools are at least as accurate as i.i.d. ones: the i.i.d. formula is conservative
    assert 0 < rms <= 2.0 * se and se <= 10 * rms
