"""Algorithm 2 engine: batched == naive loop, seed independence, exact reductions (checks 18, 22)."""

import numpy as np
import pytest

from mast_cli.algorithms import WorkerSketches, WorkerSplit, distributed_dsgd, partition_rows
from mast_cli.errors import MastError
from mast_cli.sketches import Bernoulli, Identity, PermK, RandK
from oracles import distributed_reference


def _gd(obj, gam, T, x=None):
    x = np.zeros(obj.d) if x is None else x.copy()
    for _ in range(T):
        x = x - gam * obj.grad(x[:, None])[:, 0]
    return x


# --- partition ------------------------------------------------------------------------------

def test_partition_random_is_balanced_and_deterministic(a1a_obj):
    n = a1a_obj.n
    P = partition_rows(n, 4, "random", rng=np.random.default_rng(7))
    Q = partition_rows(n, 4, "random", rng=np.random.default_rng(7))
    assert all(np.array_equal(p, q) for p, q in zip(P, Q))
    assert np.array_equal(np.sort(np.concatenate(P)), np.arange(n))
    sizes = [p.size for p in P]
    assert max(sizes) - min(sizes) <= 1 and all(np.all(np.diff(p) > 0) for p in P)
    other = partition_rows(n, 4, "random", rng=np.random.default_rng(8))
    assert not np.array_equal(P[0], other[0])


def test_partition_label_sorted_is_heterogeneous(a1a_obj):
    y = a1a_obj.b
    P = partition_rows(a1a_obj.n, 4, "label-sorted", y=y, rng=np.random.default_rng(0))
    R = partition_rows(a1a_obj.n, 4, "random", rng=np.random.default_rng(0))
    frac_sorted = [np.mean(y[p] > 0) for p in P]
    frac_random = [np.mean(y[p] > 0) for p in R]
    # a1a is ~25% positive: label-sorted gives 3 all-negative workers and one mostly positive
    assert sum(f == 0.0 for f in frac_sorted) == 3 and max(frac_sorted) > 0.9
    assert np.ptp(frac_random) < 0.1


@pytest.mark.parametrize("M, split, msg", [(0, "random", "M=0 must be >= 1"),
                                           (-2, "random", "M=-2 must be >= 1"),
                                           (1606, "random", "M=1606 must be <= n=1605"),
                                           (2.5, "random", "M=2.5 must be an integer"),
                                           (2, "sorted", "unknown split 'sorted'")])
def test_partition_bad_input(M, split, msg):
    with pytest.raises(MastError, match=msg):
        partition_rows(1605, M, split, y=np.ones(1605))


def test_worker_split_rejects_bad_partitions(tiny):
    with pytest.raises(MastError, match="cover"):
        WorkerSplit(tiny, [np.arange(100), np.arange(99, 200)])
    with pytest.raises(MastError, match="at least one row"):
        WorkerSplit(tiny, [np.arange(200), np.array([], dtype=int)])


def test_worker_sketches_bad_input(tiny):
    with pytest.raises(MastError, match="3 worker sketches given for M=2"):
        WorkerSketches([Bernoulli(6, 0.5)] * 3, 2)
    with pytest.raises(MastError, match="perm-k has M=3 blocks but there are 2 workers"):
        WorkerSketches(PermK(6, 3), 2)


# --- batched engine vs naive oracle ------------------------------------------------------------

def test_batched_equals_naive_loop(a1a_obj):
    d = a1a_obj.d
    P = partition_rows(a1a_obj.n, 4, "label-sorted", y=a1a_obj.b, rng=np.random.default_rng(1))
    sks = [[Bernoulli(d, p) for p in (0.9, 0.5, 0.5, 0.1)], PermK(d, 4), RandK(d, 30), Identity(d)]
    steps, seeds = [0.02, 0.05, 0.05, 0.5], [3, 4, 5, 6]
    v = np.linspace(-0.1, 0.1, d)
    h = distributed_dsgd(a1a_obj, P, sks, steps, seeds, 70, v=v)
    for r in range(len(sks)):
        ref = distributed_reference(a1a_obj, P, sks[r], steps[r], seeds[r], 70, v=v)
        np.testing.assert_allclose(h.x_final[:, r], ref[-1], atol=1e-12, rtol=0)


def test_trajectory_independent_of_batch(a1a_obj):
    d = a1a_obj.d
    P = partition_rows(a1a_obj.n, 3, rng=np.random.default_rng(2))
    split = WorkerSplit(a1a_obj, P)
    sks = [RandK(d, 20), [Bernoulli(d, p) for p in (0.3, 0.6, 0.9)], PermK(d, 3)]
    f = lambda X: {"f": a1a_obj.value(X)}  # noqa: E731
    full = distributed_dsgd(a1a_obj, split, sks, [0.02, 0.03, 0.04], [1, 2, 3], 40, metrics_fn=f,
                            log_every=10)
    alone = distributed_dsgd(a1a_obj, split, sks[1:2], [0.03], [2], 40, metrics_fn=f, log_every=10)
    assert np.array_equal(alone.x_final[:, 0], full.x_final[:, 1])
    assert np.array_equal(alone.metrics["f"][:, 0], full.metrics["f"][:, 1])


def test_divergence_is_isolated(a1a_obj):
    P = partition_rows(a1a_obj.n, 2)
    sks = [Bernoulli(a1a_obj.d, 0.5)] * 2
    h = distributed_dsgd(a1a_obj, P, sks, [1e5, 0.2], [1, 2], 200,
                         metrics_fn=lambda X: {"f": a1a_obj.value(X)}, log_every=50)
    alone = distributed_dsgd(a1a_obj, P, sks[1:], [0.2], [2], 200)
    assert list(h.status) == ["diverged", "ok"]
    assert np.array_equal(h.x_final[:, 1], alone.x_final[:, 0])


# --- exact reductions (check 18) ------------------------------------------------------------------

def test_identity_single_worker_is_gd_bit_for_bit(a1a_obj):
    h = distributed_dsgd(a1a_obj, partition_rows(a1a_obj.n, 1), [Identity(a1a_obj.d)], [0.5], [0], 25)
    assert np.array_equal(h.x_final[:, 0], _gd(a1a_obj, 0.5, 25))


@pytest.mark.parametrize("split", ["random", "label-sorted"])
def test_identity_many_workers_is_gd(a1a_obj, split):
    """S_i ≡ I: (1/M)Σ_i ∇f_i = ∇f for any partition (unequal sizes included); the iterates
    are GD's up to the order of the floating-point sums (workers' partial sums)."""
    P = partition_rows(a1a_obj.n, 7, split, y=a1a_obj.b, rng=np.random.default_rng(3))
    assert len({p.size for p in P}) == 2                      # 1605 = 7·229 + 2: unequal sizes
    h = distributed_dsgd(a1a_obj, P, [Identity(a1a_obj.d)], [0.5], [0], 25)
    x = _gd(a1a_obj, 0.5, 25)
    np.testing.assert_allclose(h.x_final[:, 0], x, rtol=1e-13, atol=1e-15)


def test_perm_k_with_zero_shift_is_ist(a1a_obj):
    """Perm-K, v = 0, M | d: x⁺ = (1/M)Σ_i [S_i x − γ S_i ∇f_i(S_i x)] (IST, mast-theory §2.3)."""
    obj, M, gam, T, seed = a1a_obj, 3, 0.1, 40, 11           # d = 123 = 3·41, n = 1605 = 3·535
    P = partition_rows(obj.n, M, rng=np.random.default_rng(4))
    h = distributed_dsgd(obj, P, [PermK(obj.d, M)], [gam], [seed], T, log_every=1,
                         metrics_fn=lambda X: {f"x{j}": X[j] for j in range(obj.d)})
    from mast_cli.algorithms._engine import CHUNK, streams

    rng = streams(seed)[0]
    blocks = np.concatenate([PermK(obj.d, M).sample_blocks(rng, CHUNK) for _ in range(2)])
    local = [obj.with_rows(p) for p in P]                   # equal sizes: f_i = mean on P_i
    x = np.zeros(obj.d)
    for t in range(T):
        S = blocks[t]
        assert np.array_equal(S.sum(axis=0) / M, np.ones(obj.d))   # perfect reconstruction
        x = sum(S[i] * x - gam * S[i] * local[i].grad(S[i] * x) for i in range(M)) / M
        got = np.array([h.metrics[f"x{j}"][t + 1, 0] for j in range(obj.d)])
        np.testing.assert_allclose(got, x, rtol=1e-12, atol=1e-15)


# --- unbiasedness by exact enumeration (check 22) ----------------------------------------------------

def _local_grad(weight, sub, y):
    """∇f_i(y) = weight·(mean logistic gradient on P_i) + ∇r(y)."""
    pen = sub.penalty.grad(y)
    return weight * (sub.grad(y) - pen) + pen


def _local_value(weight, sub, y):
    pen = sub.penalty.value(y)
    return weight * (sub.value(y) - pen) + pen


@pytest.mark.parametrize("M, spec", [
    (2, [Bernoulli(6, [0.7, 0.4, 0.9, 0.5, 0.6, 0.8]), Bernoulli(6, 0.3)]),
    (3, [RandK(6, 1), RandK(6, 2), RandK(6, 4)]),
    (2, PermK(6, 2)),
    (3, PermK(6, 3)),
])
def test_aggregated_estimator_unbiased_exact(tiny, rng, M, spec):
    """E[(1/M)Σ_i S_i ∇f_i(v + S_i(x − v))] = ∇F(x) over the joint law (correlated for Perm-K),
    with F(x) = (1/M)Σ_i E_{D_i} f_i(v + S_i(x − v)) from the marginals; E of the sketched
    loss = F; and ∇F matches central differences of F."""
    split = WorkerSplit(tiny, partition_rows(tiny.n, M, rng=rng))     # n = 200: unequal for M = 3
    ws = WorkerSketches(spec, M)
    S, w = ws.enumerate()                                             # (m, M, d), (m,)
    assert w.sum() == pytest.approx(1.0, abs=1e-14)
    v = rng.standard_normal(6) * 0.3
    x = rng.standard_normal(6)
    m = len(w)
    Xc, Vc = np.repeat(x[:, None], m, 1), np.repeat(v[:, None], m, 1)
    Sc = np.moveaxis(S, 0, -1)                                        # (M, d, m)
    E_g = split.sketched_grad(Xc, Vc, Sc) @ w
    E_f = split.sketched_value(Xc, Vc, Sc) @ w
    local = split.local_objectives()

    def F(z):
        tot = 0.0
        for (wt, sub), D in zip(local, ws.marginals()):
            Si, wi = D.enumerate()
            tot += sum(q * _local_value(wt, sub, v + s * (z - v)) for s, q in zip(Si, wi))
        return tot / M

    grad_F = np.zeros(6)
    for (wt, sub), D in zip(local, ws.marginals()):
        Si, wi = D.enumerate()
        grad_F += sum(q * s * _local_grad(wt, sub, v + s * (x - v)) for s, q in zip(Si, wi))
    grad_F /= M
    np.testing.assert_allclose(E_g, grad_F, rtol=1e-12, atol=1e-14)
    assert E_f == pytest.approx(F(x), rel=1e-13)
    h = 1e-5
    fd = np.array([(F(x + h * e) - F(x - h * e)) / (2 * h) for e in np.eye(6)])
    np.testing.assert_allclose(E_g, fd, rtol=0, atol=1e-8)


def test_mast_loss_with_identity_is_erm_loss(a1a_obj, rng):
    """F with S_i ≡ I equals f exactly (the ERM loss Fig. 2 plots)."""
    split = WorkerSplit(a1a_obj, partition_rows(a1a_obj.n, 5, rng=rng))
    X = rng.standard_normal((a1a_obj.d, 3)) * 0.1
    S = np.ones((4, 5, a1a_obj.d, 3))
    np.testing.assert_allclose(split.mast_loss(X, np.zeros_like(X), S), a1a_obj.value(X), rtol=1e-14)


def test_local_smoothness_bounds_local_hessians(tiny, rng):
    split = WorkerSplit(tiny, partition_rows(tiny.n, 3, rng=rng))
    for L, (wt, sub) in zip(split.local_smoothness(), split.local_objectives()):
        x = rng.standard_normal(6)
        H = wt * (sub.hessian(x) - tiny.lam * np.eye(6)) + tiny.lam * np.eye(6)
        assert np.linalg.eigvalsh(H)[-1] <= L
