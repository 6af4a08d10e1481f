"""The exact oracles of mast-theory §2.6 against brute-force enumeration and Monte Carlo.

Brute force: every sequence of sketches (and rows) over a few steps, weighted by its
probability, stepped with the product's own gradient code; Monte Carlo: the batched
engines over many seeds, compared within 5 standard errors."""

import itertools

import numpy as np
import pytest

from mast_cli import algorithms
from mast_cli.algorithms import WorkerSketches, WorkerSplit, partition_rows
from mast_cli.io.data import load_dataset
from mast_cli.core.objective import RidgeL2
from mast_cli.solvers.newton import solve_erm
from mast_cli.core.oracle import (FourthMoments, Quadratic, distributed_quadratic, mean_trajectory, quadratic_of,
                             second_moment_trajectory)
from mast_cli.core.pool import EmpiricalSketch
from mast_cli.solvers.pool import solve_pool
from mast_cli.core.sketches import Bernoulli, PermK, RandK


@pytest.fixture(scope="module")
def small():
    """Ridge on 40 rows and 4 columns of heart_scale (d = 4, λ = 0.05)."""
    ds = load_dataset("heart_scale")
    return RidgeL2(ds.X[:40, :4], ds.y[:40], 0.05)


def paths(S, w, T):
    """All T-step sketch sequences with their probabilities."""
    for combo in itertools.product(range(len(w)), repeat=T):
        yield [S[k] for k in combo], float(np.prod([w[k] for k in combo]))


def test_x_D_and_f_D_are_the_pool_minimum(small):
    sk = Bernoulli(small.d, np.array([0.5, 0.7, 0.4, 0.9]))
    v = np.array([0.1, -0.2, 0.3, 0.0])
    quad = quadratic_of(small, sk, v)
    S, w = sk.enumerate()
    x, info = solve_pool(small, S, v, weights=w, tol=1e-13)
    np.testing.assert_allclose(quad.x_D, x, rtol=1e-9, atol=1e-11)
    for z in (x, np.ones(4), -v):
        fD = sum(wi * small.value(v + s * (z - v)) for s, wi in zip(S, w))
        assert fD - small.value(z) == pytest.approx(quad.f_D_minus_f(z), rel=1e-10, abs=1e-13)


def test_biased_sketch_mean_and_f_D(small):
    """Without Assumption 1 (E[s] ≠ 1) the formulas keep the mean term."""
    S = np.array([[1.0, 0, 2, 1], [0, 1.5, 0, 1], [2, 1, 1, 0.5]])
    w = np.array([0.2, 0.5, 0.3])
    pool = EmpiricalSketch(S, w)
    v = np.array([0.3, 0.1, -0.4, 0.2])
    quad = quadratic_of(small, pool, v)
    z = np.array([0.5, -1.0, 0.2, 0.7])
    fD = sum(wi * small.value(v + s * (z - v)) for s, wi in zip(S, w))
    assert fD - small.value(z) == pytest.approx(quad.f_D_minus_f(z), rel=1e-10)
    g = sum(wi * s * small.grad(v + s * (z - v)) for s, wi in zip(S, w))
    np.testing.assert_allclose(quad.grad_D(z), g, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("mode", ["tensor", "pool"])
def test_alg1_moments_by_enumeration(small, mode):
    sk = Bernoulli(small.d, np.array([0.5, 0.7, 0.4, 0.9]))
    S, w = sk.enumerate()
    v = np.array([0.2, 0.0, -0.3, 0.1])
    x0 = np.array([1.0, -0.5, 0.3, 0.0])
    gam, T = 0.3 / (small.smoothness() * sk.L_S_max), 3
    quad = quadratic_of(small, sk, v)
    Ex = np.zeros(4)
    Ee2 = 0.0
    for seq, p in paths(S, w, T):
        x = x0.copy()
        for s in seq:
            x = x - gam * s * small.grad(v + s * (x - v))
        Ex += p * x
        Ee2 += p * np.sum((x - quad.x_D) ** 2)
    np.testing.assert_allclose(mean_trajectory(quad, x0, gam, [T])[0], Ex, rtol=1e-11, atol=1e-13)
    sec = second_moment_trajectory(quad, S, w, x0, gam, [0, 1, T], mode=mode)
    assert sec["second"][-1] == pytest.approx(Ee2, rel=1e-10)
    assert sec["second"][0] == pytest.approx(np.sum((x0 - quad.x_D) ** 2), rel=1e-12)
    assert sec["mean_part"][-1] == pytest.approx(np.sum((Ex - quad.x_D) ** 2), rel=1e-10)


def test_fourth_moment_modes_agree(small, rng):
    H = small.hessian_bound()
    S, w = RandK(4, 2).enumerate()
    P = rng.standard_normal((4, 4))
    P = P @ P.T
    want = sum(wi * (np.outer(s, s) * H) @ P @ (np.outer(s, s) * H) for s, wi in zip(S, w))
    for mode in ("tensor", "pool"):
        np.testing.assert_allclose(FourthMoments(H, S, w, mode).kpk(P), want, rtol=1e-12, atol=1e-14)


def test_alg1_engine_mean_and_second_moment_monte_carlo(small):
    sk = RandK(small.d, 2)
    v = np.zeros(4)
    x0 = np.array([1.0, -1.0, 0.5, 0.5])
    gam, T, R = 1.0 / (small.smoothness() * sk.L_S_max), 30, 4000
    quad = quadratic_of(small, sk, v)
    h = algorithms.dsgd(small, [sk] * R, [gam] * R, np.arange(R), T, x0=x0, v=v, log_every=10,
                        metrics_fn=lambda X: {"e": np.sum((X - quad.x_D[:, None]) ** 2, axis=0)})
    m = mean_trajectory(quad, x0, gam, [T])[0]
    xs = h.x_final
    se = xs.std(axis=1, ddof=1) / np.sqrt(R)
    assert np.all(np.abs(xs.mean(axis=1) - m) <= 5 * se + 1e-12)
    S, w = sk.enumerate()
    sec = second_moment_trajectory(quad, S, w, x0, gam, h.iterations)
    e = h.metrics["e"]
    se2 = e.std(axis=1, ddof=1) / np.sqrt(R)
    assert np.all(np.abs(e.mean(axis=1) - sec["second"]) <= 5 * se2 + 1e-12)


@pytest.mark.parametrize("sampling", ["uniform", "importance"])
def test_alg1_II_mean_by_enumeration(small, sampling):
    """τ = 1: every (sketch, row) sequence over two steps (5 rows, d = 3)."""
    small = RidgeL2(small.A[:5, :3], small.b[:5], small.lam)
    sk = Bernoulli(small.d, 0.6)
    S, w = sk.enumerate()
    n = small.n
    L = small.smoothness_per_sample()
    q = np.full(n, 1.0 / n) if sampling == "uniform" else L / L.sum()
    v = np.array([0.1, 0.1, -0.1])
    x0 = np.array([0.5, -0.5, 1.0])
    gam = 0.5 / (small.smoothness() * sk.L_S_max)
    quad = quadratic_of(small, sk, v)
    Ex = np.zeros(3)
    steps = [(s, i, ws * q[i]) for s, ws in zip(S, w) for i in range(n)]
    for (s1, i1, p1), (s2, i2, p2) in itertools.product(steps, repeat=2):
        x = x0.copy()
        for s, i in ((s1, i1), (s2, i2)):
            y = v + s * (x - v)
            g = small.grad_rows(y[:, None], np.array([i]), np.array([0]), np.array([1.0 / (n * q[i])]))[:, 0]
            x = x - gam * s * g
        Ex += p1 * p2 * x
    np.testing.assert_allclose(mean_trajectory(quad, x0, gam, [2])[0], Ex, rtol=1e-10, atol=1e-13)


def test_alg1_II_engine_importance_monte_carlo(small):
    sk = Bernoulli(small.d, 0.5)
    x0 = np.array([1.0, -1.0, 0.5, 0.5])
    v = np.zeros(4)
    gam, T, R = 0.05, 20, 3000
    quad = quadratic_of(small, sk, v)
    h = algorithms.dsgd(small, [sk] * R, [gam] * R, np.arange(R), T, x0=x0, v=v, batch_size=2,
                        sampling="importance", log_every=T)
    xs = h.x_final
    se = xs.std(axis=1, ddof=1) / np.sqrt(R)
    assert np.all(np.abs(xs.mean(axis=1) - mean_trajectory(quad, x0, gam, [T])[0]) <= 5 * se)


@pytest.mark.parametrize("law", ["independent", "perm-k"])
def test_alg2_mean_by_enumeration(small, law):
    small = RidgeL2(small.A[:, :3], small.b, small.lam)
    M = 2                                                  # M ∤ d = 3 for Perm-K
    split = WorkerSplit(small, partition_rows(small.n, M, rng=np.random.default_rng(1)))
    ws = WorkerSketches(Bernoulli(small.d, 0.6) if law == "independent" else PermK(small.d, M), M)
    S, w = ws.enumerate()
    v = np.array([0.0, 0.2, -0.2])
    x0 = np.array([0.4, 0.3, -0.2])
    gam, T = 0.05, 2
    quad = distributed_quadratic(small, split, ws.marginals(), v)
    Ex = np.zeros(3)
    for seq, p in paths(S, w, T):
        x = x0.copy()
        for s in seq:
            x = x - gam * split.sketched_grad(x[:, None], v[:, None], s[:, :, None])[:, 0]
        Ex += p * x
    np.testing.assert_allclose(mean_trajectory(quad, x0, gam, [T])[0], Ex, rtol=1e-10, atol=1e-13)
    # its fixed point: the minimizer of F (the pooled objective with S_i ≡ I is f)
    x_star, _ = solve_erm(small)
    q_id = distributed_quadratic(small, split, [Bernoulli(small.d, 1.0)] * M, v)
    np.testing.assert_allclose(q_id.x_D, x_star, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("b", [None, 2])
def test_alg3_engine_mean_monte_carlo(small, b):
    """Algorithm 3 on a pool: the mean follows GD on f_pool for any p and reference batch b."""
    rng = np.random.default_rng(3)
    pool = RandK(small.d, 2).sample(rng, 5)
    v = np.zeros(4)
    x0 = np.array([1.0, -1.0, 0.5, 0.5])
    gam, T, R = 0.05, 25, 3000
    quad = quadratic_of(small, EmpiricalSketch(pool), v)
    h = algorithms.l_svrdsg(small, pool, [gam] * R, np.arange(R), T, ref_prob=0.3, ref_batch=b, x0=x0, v=v,
                            log_every=T)
    xs = h.x_final
    se = xs.std(axis=1, ddof=1) / np.sqrt(R)
    assert np.all(np.abs(xs.mean(axis=1) - mean_trajectory(quad, x0, gam, [T])[0]) <= 5 * se)


def test_oracle_catches_a_wrong_scale(small):
    """The Monte Carlo mean of a mis-scaled sampler (d/(K+1)) leaves the oracle's line."""
    sk = RandK(small.d, 2)

    class Wrong(RandK):
        def sample(self, rng, size):
            return RandK.sample(self, rng, size) * 2 / 3

    x0 = np.array([1.0, -1.0, 0.5, 0.5])
    quad = quadratic_of(small, sk, np.zeros(4))
    R, T, gam = 2000, 30, 0.1
    h = algorithms.dsgd(small, [Wrong(4, 2)] * R, [gam] * R, np.arange(R), T, x0=x0, log_every=T)
    se = h.x_final.std(axis=1, ddof=1) / np.sqrt(R)
    assert np.max(np.abs(h.x_final.mean(axis=1) - mean_trajectory(quad, x0, gam, [T])[0]) / se) > 10


def test_quadratic_needs_positive_definite_or_ridge(small):
    from mast_cli.io.errors import MastError
    from mast_cli.core.objective import LogisticL2

    with pytest.raises(MastError, match="not quadratic"):
        quadratic_of(LogisticL2(small.A, small.b, 0.1), Bernoulli(4, 0.5), np.zeros(4))
    with pytest.raises(MastError):
        Quadratic(np.eye(2), np.ones(2))
