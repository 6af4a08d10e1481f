"""Algorithm 3 (L-SVRDSG) engine: batched == naive loop, seed independence, check 20."""

import numpy as np
import pytest

from mast_cli.algorithms import dsgd, l_svrdsg, pool_value_grad
from mast_cli.errors import MastError
from mast_cli.objectives import minimize_newton
from mast_cli.sketches import Bernoulli, RandK
from oracles import l_svrdsg_reference


def _pool_hessian(obj, S, v, q):
    def hess(x):
        return sum(qj * np.outer(s, s) * obj.hessian(v + s * (x - v)) for s, qj in zip(S, q))
    return hess


def _x_pool(obj, S, v, q=None):
    """x*_pool by Newton on the pool objective (exact oracle for the tests)."""
    q = np.full(len(S), 1.0 / len(S)) if q is None else q
    x, info = minimize_newton(pool_value_grad(obj, S, v, q), _pool_hessian(obj, S, v, q), v.copy(),
                              tol=1e-14)
    assert info["converged"]
    return x


@pytest.fixture(scope="module")
def randk_pool(tiny):
    """All C(6, 3) = 20 Rand-3 sketches: the pool is D itself, x*_pool = x*_D."""
    S, w = RandK(6, 3).enumerate()
    v = np.zeros(6)
    return S, v, _x_pool(tiny, S, v)


def _dist(xs):
    return lambda X: {"e": ((X - xs[:, None]) ** 2).sum(axis=0)}


def test_batched_equals_naive_loop(a1a_obj):
    pool = RandK(a1a_obj.d, 30).sample(np.random.default_rng(0), 25)
    v = np.linspace(-0.1, 0.1, a1a_obj.d)
    steps, seeds, probs, batches = [0.05, 0.1, 0.1, 0.08], [1, 2, 3, 4], [0.1, 0.3, 0.05, 1.0], [25, 5, 1, 7]
    h = l_svrdsg(a1a_obj, pool, steps, seeds, 100, ref_prob=probs, ref_batch=batches, v=v)
    assert h.extra["refreshes"][3] == 100 and 0 < h.extra["refreshes"][2] < 30
    for r in range(4):
        ref = l_svrdsg_reference(a1a_obj, pool, steps[r], seeds[r], 100, probs[r], batches[r], v=v)
        np.testing.assert_allclose(h.x_final[:, r], ref[-1], atol=1e-12, rtol=0)


def test_batched_equals_naive_weighted_pool(tiny):
    S, w = Bernoulli(6, [0.9, 0.3, 0.6, 0.5, 0.8, 0.4]).enumerate()     # non-uniform weights
    h = l_svrdsg(tiny, S, [0.02, 0.03], [5, 6], 80, ref_prob=[0.1, 0.5], pool_weights=w)
    for r, (g, s, p) in enumerate([(0.02, 5, 0.1), (0.03, 6, 0.5)]):
        ref = l_svrdsg_reference(tiny, S, g, s, 80, p, pool_weights=w)
        np.testing.assert_allclose(h.x_final[:, r], ref[-1], atol=1e-12, rtol=0)


def test_per_trajectory_pools(a1a_obj):
    rng = np.random.default_rng(1)
    pools = np.stack([Bernoulli(a1a_obj.d, 0.5).sample(rng, 12) for _ in range(2)])
    h = l_svrdsg(a1a_obj, pools, [0.02, 0.02], [7, 8], 50, ref_prob=0.2, ref_batch=[12, 3])
    for r in range(2):
        ref = l_svrdsg_reference(a1a_obj, pools[r], 0.02, [7, 8][r], 50, 0.2, [12, 3][r])
        np.testing.assert_allclose(h.x_final[:, r], ref[-1], atol=1e-12, rtol=0)


def test_trajectory_independent_of_batch(a1a_obj):
    pool = Bernoulli(a1a_obj.d, 0.5).sample(np.random.default_rng(2), 16)
    f = lambda X: {"f": a1a_obj.value(X)}  # noqa: E731
    full = l_svrdsg(a1a_obj, pool, [0.02, 0.03, 0.04], [1, 2, 3], 60, ref_prob=[0.1, 0.2, 0.3],
                    ref_batch=[16, 4, 2], metrics_fn=f, log_every=10)
    alone = l_svrdsg(a1a_obj, pool, [0.03], [2], 60, ref_prob=0.2, ref_batch=4, metrics_fn=f,
                     log_every=10)
    assert np.array_equal(alone.x_final[:, 0], full.x_final[:, 1])
    assert np.array_equal(alone.metrics["f"][:, 0], full.metrics["f"][:, 1])


def test_exact_reference_converges_linearly_to_pool_minimizer(tiny, randk_pool):   # check 20
    """b = N, γ = 1/(6 L_f L_S^max), p = 1/N: ‖x^t − x*_pool‖² → ≤ 1e-20 (no neighbourhood),
    while Algorithm 1 (I) with the same step and D = uniform over the pool stalls."""
    S, v, xs = randk_pool
    gam = 1.0 / (6 * tiny.smoothness() * RandK(6, 3).L_S_max)
    seeds = [0, 1, 2, 3]
    h = l_svrdsg(tiny, S, [gam] * 4, seeds, 1500, ref_prob=1 / 20, metrics_fn=_dist(xs), log_every=100)
    e = h.metrics["e"]
    assert np.all(e[-1] <= 1e-20)
    # linear: the error keeps shrinking geometrically on the way down (mean over seeds)
    m = e.mean(axis=1)
    assert m[5] < 1e-3 * m[0] and m[10] < 1e-6 * m[5]
    alg1 = dsgd(tiny, [RandK(6, 3)] * 4, [gam] * 4, seeds, 1500, metrics_fn=_dist(xs), log_every=100)
    assert np.all(alg1.metrics["e"][-5:] > 1e-8)


def test_minibatch_reference_plateau_shrinks_with_b(tiny, randk_pool):
    """b < N plateaus; the plateau (mean of ‖x − x*_pool‖² over the second half and 8 seeds)
    decreases monotonically in b and vanishes at b = N."""
    S, v, xs = randk_pool
    gam = 1.0 / (6 * tiny.smoothness() * RandK(6, 3).L_S_max)
    bs, seeds = [1, 4, 10, 20], list(range(8))
    R = len(bs) * len(seeds)
    h = l_svrdsg(tiny, S, [gam] * R, seeds * len(bs), 1500, ref_prob=0.2,
                 ref_batch=np.repeat(bs, len(seeds)), metrics_fn=_dist(xs), log_every=10)
    e = h.metrics["e"]
    plateau = e[75:].mean(axis=0).reshape(len(bs), len(seeds)).mean(axis=1)
    assert np.all(np.diff(plateau) < 0), plateau
    assert plateau[2] > 1e-6 and plateau[3] < 1e-6 * plateau[2]
    assert np.all(e[-1, -len(seeds):] <= 1e-20)                  # b = N: no plateau at all
    assert plateau[0] > 5 * plateau[2]


@pytest.mark.parametrize("kw, msg", [
    (dict(ref_prob=0.0), r"ref_prob p=0 must be in \(0, 1\]"),
    (dict(ref_prob=1.5), r"ref_prob p=1.5 must be in \(0, 1\]"),
    (dict(ref_prob=0.5, ref_batch=9), r"ref_batch b=9 must be in \[1, N=8\]"),
    (dict(ref_prob=0.5, ref_batch=0), r"ref_batch b=0 must be in \[1, N=8\]"),
    (dict(ref_prob=0.5, ref_batch=2.5), "must be an integer"),
])
def test_bad_input(tiny, kw, msg):
    pool = RandK(6, 2).sample(np.random.default_rng(0), 8)
    with pytest.raises(MastError, match=msg):
        l_svrdsg(tiny, pool, [0.1], [0], 5, **kw)


def test_weighted_pool_needs_exact_reference(tiny):
    S, w = Bernoulli(6, [0.9, 0.3, 0.6, 0.5, 0.8, 0.4]).enumerate()
    with pytest.raises(MastError, match="needs the exact reference"):
        l_svrdsg(tiny, S, [0.1], [0], 5, ref_prob=0.5, ref_batch=3, pool_weights=w)
