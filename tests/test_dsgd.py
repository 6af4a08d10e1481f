"""Algorithm 1 engine: batched == naive loop, seed independence, exact reductions."""

import numpy as np
import pytest

from mast_cli.algorithms import dsgd
from mast_cli.sketches import Bernoulli, Identity, PermK, RandK
from oracles import dsgd_reference


def test_batched_equals_naive_loop(a1a_obj):
    sks = [Bernoulli(a1a_obj.d, 0.5), RandK(a1a_obj.d, 30), PermK(a1a_obj.d, 4)]
    L = a1a_obj.smoothness()
    steps = [1 / (L * s.L_S_max) for s in sks]
    seeds = [3, 4, 5]
    v = np.linspace(-0.1, 0.1, a1a_obj.d)
    h = dsgd(a1a_obj, sks, steps, seeds, 70, v=v)
    for r in range(3):
        ref = dsgd_reference(a1a_obj, sks[r], steps[r], seeds[r], 70, v=v)
        np.testing.assert_allclose(h.x_final[:, r], ref[-1], atol=1e-12, rtol=0)


def test_trajectory_independent_of_batch(a1a_obj):
    sks = [Bernoulli(a1a_obj.d, p) for p in (0.3, 0.6, 0.9)]
    f = lambda X: {"f": a1a_obj.value(X)}  # noqa: E731
    full = dsgd(a1a_obj, sks, [0.2, 0.3, 0.4], [1, 2, 3], 40, metrics_fn=f, log_every=10)
    alone = dsgd(a1a_obj, sks[1:2], [0.3], [2], 40, metrics_fn=f, log_every=10)
    assert np.array_equal(alone.x_final[:, 0], full.x_final[:, 1])
    assert np.array_equal(alone.metrics["f"][:, 0], full.metrics["f"][:, 1])


def test_identity_sketch_is_plain_gd(a1a_obj):                                   # check 18
    gam = 0.5
    h = dsgd(a1a_obj, [Identity(a1a_obj.d)], [gam], [0], 25)
    x = np.zeros(a1a_obj.d)
    for _ in range(25):
        x = x - gam * a1a_obj.grad(x[:, None])[:, 0]
    assert np.array_equal(h.x_final[:, 0], x)


def test_identity_minibatch_is_plain_sgd(a1a_obj):                               # check 18
    from mast_cli.algorithms._engine import CHUNK, sample_rows_without_replacement, streams

    gam, tau, T = 0.3, 16, 20
    h = dsgd(a1a_obj, [Identity(a1a_obj.d)], [gam], [7], T, batch_size=tau)
    rng = streams(7)[1]
    rows = np.vstack([sample_rows_without_replacement(rng, a1a_obj.n, tau, CHUNK)])
    x = np.zeros((a1a_obj.d, 1))
    for t in range(T):
        r = rows[t]
        x = x - gam * a1a_obj.grad_rows(x, r, np.zeros(tau, int), np.full(tau, 1 / tau))
    assert np.array_equal(h.x_final[:, 0], x[:, 0])


def test_divergence_is_isolated(a1a_obj):
    sks = [Bernoulli(a1a_obj.d, 0.5)] * 2
    h = dsgd(a1a_obj, sks, [1e5, 0.2], [1, 2], 300, metrics_fn=lambda X: {"f": a1a_obj.value(X)},
             log_every=50)
    alone = dsgd(a1a_obj, sks[1:], [0.2], [2], 300)
    assert list(h.status) == ["diverged", "ok"] and h.diverged_at[0] > 0
    assert np.isnan(h.metrics["f"][-1, 0]) and np.isfinite(h.metrics["f"][:, 1]).all()
    assert np.array_equal(h.x_final[:, 1], alone.x_final[:, 0])


@pytest.mark.parametrize("sampling", ["uniform", "importance"])
def test_minibatch_estimator_unbiased_exact(tiny, rng, sampling):                  # check 21
    """Average of the (II) estimator over all (S, minibatch) pairs equals ∇f_D (exact)."""
    import itertools

    from mast_cli.algorithms._engine import RowBank

    sk = RandK(tiny.d, 2)
    S, w = sk.enumerate()
    sub = tiny.with_rows(np.arange(6))
    v = rng.standard_normal(sub.d) * 0.2
    x = rng.standard_normal(sub.d)
    grad_D = sum(wi * s * sub.grad(v + s * (x - v)) for s, wi in zip(S, w))
    tau = 2
    est = np.zeros(sub.d)
    if sampling == "uniform":
        pairs = list(itertools.combinations(range(sub.n), tau))
        for s, wi in zip(S, w):
            y = (v + s * (x - v))[:, None]
            for B in pairs:
                g = sub.grad_rows(y, np.array(B), np.zeros(tau, int), np.full(tau, 1 / tau))[:, 0]
                est += wi * s * g / len(pairs)
    else:
        L = sub.smoothness_per_sample()
        q = L / L.sum()
        for s, wi in zip(S, w):
            y = (v + s * (x - v))[:, None]
            for B in itertools.product(range(sub.n), repeat=tau):
                B = np.array(B)
                g = sub.grad_rows(y, B, np.zeros(tau, int), 1 / (sub.n * q[B] * tau))[:, 0]
                est += wi * np.prod(q[B]) * s * g
        # the engine's importance weights are exactly these
        bank = RowBank(sub.n, [tau], [rng], "importance", q)
        rows, cols, wts = bank.next()
        np.testing.assert_allclose(wts, 1 / (sub.n * q[rows] * tau))
    np.testing.assert_allclose(est, grad_D, atol=1e-12)


def test_rows_without_replacement_are_uniform(rng):
    from mast_cli.algorithms._engine import sample_rows_without_replacement

    for n, tau in [(50, 5), (50, 30), (10, 10)]:
        rows = sample_rows_without_replacement(rng, n, tau, 20000)
        assert all(len(set(r)) == tau for r in rows[:200])
        freq = np.bincount(rows.ravel(), minlength=n) / rows.size
        np.testing.assert_allclose(freq, 1 / n, atol=5 * np.sqrt(1 / n / rows.size) + 1e-12)


def test_minibatch_of_all_rows_is_gd_and_batch_independent(a1a_obj):
    """τ = n (uniform, without replacement) is the exact full gradient: equals variant (I),
    alone or next to sampled trajectories."""
    sks = [Bernoulli(a1a_obj.d, 0.5)] * 2
    exact = dsgd(a1a_obj, sks[:1], [0.2], [4], 30)
    full = dsgd(a1a_obj, sks[:1], [0.2], [4], 30, batch_size=a1a_obj.n)
    mixed = dsgd(a1a_obj, sks, [0.2, 0.2], [4, 5], 30, batch_size=[a1a_obj.n, 8])
    alone = dsgd(a1a_obj, sks[1:], [0.2], [5], 30, batch_size=8)
    assert np.array_equal(full.x_final[:, 0], exact.x_final[:, 0])
    assert np.array_equal(mixed.x_final[:, 0], exact.x_final[:, 0])
    assert np.array_equal(mixed.x_final[:, 1], alone.x_final[:, 0])


def test_float32_mode_tracks_float64(a1a_obj):
    """dsgd(dtype=float32) follows the float64 trajectories to 1e-6 relative (benchmarks/README.md)."""
    sks = [Bernoulli(a1a_obj.d, p) for p in (0.2, 0.5, 0.9)]
    L = a1a_obj.smoothness()
    steps = [1 / (L * s.L_S_max) for s in sks]
    h = dsgd(a1a_obj, sks, steps, [1, 2, 3], 200)
    h32 = dsgd(a1a_obj, sks, steps, [1, 2, 3], 200, dtype=np.float32)
    rel = np.linalg.norm(h32.x_final - h.x_final, axis=0) / np.linalg.norm(h.x_final, axis=0)
    assert rel.max() <= 1e-6 and not np.array_equal(h32.x_final, h.x_final)


def test_threads_do_not_change_trajectories(a1a_obj):
    """Columns are independent: splitting them over threads gives the same bits."""
    sks = [Bernoulli(a1a_obj.d, p) for p in (0.2, 0.5, 0.7, 0.9, 1.0)]
    h1 = dsgd(a1a_obj, sks, [0.3] * 5, range(5), 30)
    h3 = dsgd(a1a_obj, sks, [0.3] * 5, range(5), 30, threads=3)
    assert np.array_equal(h1.x_final, h3.x_final)


def test_bernoulli_bank_matches_per_trajectory_samples():
    """The batched Bernoulli bank (one pass over all trajectories' uniforms) gives each
    trajectory the sketches Bernoulli.sample draws from its own stream, bit for bit, with
    their non-zero counts; also with per-coordinate p and in the numpy fallback."""
    from mast_cli.algorithms._engine import CHUNK, SketchBank, streams
    from mast_cli.core import fused

    d = 11
    sks = [Bernoulli(d, 0.3), Bernoulli(d, np.linspace(0.1, 1.0, d)), Bernoulli(d, 1.0)]
    seeds = [7, 8, 9]
    for enabled in (fused.ENABLED, False):
        saved, fused.ENABLED = fused.ENABLED, enabled
        try:
            bank = SketchBank(sks, [streams(s)[0] for s in seeds])
            assert bank._uniforms is not None                   # the batched path is the one tested
            got = [bank.next().copy() for _ in range(CHUNK + 5)]
            nnz = bank.nnz.copy()
        finally:
            fused.ENABLED = saved
        for r, (sk, s) in enumerate(zip(sks, seeds)):
            rng = streams(s)[0]
            ref = np.vstack([sk.sample(rng, CHUNK), sk.sample(rng, CHUNK)])[:CHUNK + 5]
            assert np.array_equal(np.array([g[:, r] for g in got]), ref)
            assert nnz[r] == np.count_nonzero(ref[-1])


def test_sketched_model_and_step_are_numpy_bits(rng):
    """The one-pass model y = v + S(x − v) and step x −= γ S g equal numpy's expressions bit
    for bit, and the step reports exactly the columns that became non-finite."""
    from mast_cli.core import fused

    d, R = 13, 6
    X, v, G = rng.standard_normal((3, d, R))
    S = (rng.random((d, R)) < 0.5) / 0.5
    coef = rng.random(R)
    G[2, 1], G[0, 4] = np.inf, np.nan
    S[2, 1] = S[0, 4] = 2.0                                  # kept: columns 1 and 4 diverge
    Y = fused.sketched_model(X, v, S, np.empty((d, R)))
    assert np.array_equal(Y, v + S * (X - v))
    ref = X.copy()
    with np.errstate(invalid="ignore"):
        ref -= coef * (S * G)
        for enabled in (fused.ENABLED, False):
            saved, fused.ENABLED = fused.ENABLED, enabled
            try:
                Xs = X.copy()
                finite = fused.sketched_step(Xs, S, G, coef)
            finally:
                fused.ENABLED = saved
            assert np.array_equal(Xs, ref, equal_nan=True)
            assert np.array_equal(finite, np.isfinite(ref).all(axis=0))
    assert list(np.flatnonzero(~finite)) == [1, 4]
