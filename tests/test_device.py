"""The array backend and the device engine (``--device``), tested on the CPU.

The device code paths (Philox streams keyed per trajectory, device sketch draws, memory
planning and chunking, device metrics, masked accuracy on the device) run here on the
``fake`` backend: NumPy posing as a device.  The tests marked ``gpu`` run the same
checks on CUDA and skip cleanly where CuPy or a GPU is missing (``make gpu-check``
runs them on a GPU machine).
"""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mast_cli.algorithms import dsgd
from mast_cli.algorithms.device import device_agreement, dsgd_device, dsgd_memory
from mast_cli.core.backend import cuda_status, fake_backend, get_backend, plan_chunks
from mast_cli.core.device import DeviceObjective, DevicePool, DeviceSketches, device_masked_accuracy
from mast_cli.core.evaluation import masked_accuracy
from mast_cli.core.philox import philox4x32, seed_keys, uniforms
from mast_cli.core.pool import PoolObjective
from mast_cli.core.sketches import Bernoulli, DropoutUnscaled, Gaussian, Identity, PermK, RandK
from mast_cli.io.errors import MastError
from tests.conftest import cuda_backend

FAKE = fake_backend()


@pytest.fixture(autouse=True)
def _numpy_cpu_kernels(monkeypatch):
    """The CPU references here run the numpy/scipy path, which the fake (NumPy) device matches
    bit for bit; the fused numba kernels are checked against that path in test_fused.py."""
    from mast_cli.core import fused

    monkeypatch.setattr(fused, "ENABLED", False)




# --- Philox ------------------------------------------------------------------------------

# Random123 tests/kat_vectors (philox4x32 10): counter words, key words, expected output
KAT = [((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
       ((0xffffffff,) * 4, (0xffffffff,) * 2, (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
       ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
        (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1))]


@pytest.mark.parametrize("ctr,key,want", KAT)
def test_philox_known_answers(ctr, key, want):
    got = tuple(int(w) for w in philox4x32(np, *ctr, *key))
    assert got == want
    # fewer rounds is a different function: the KAT can fail
    assert tuple(int(w) for w in philox4x32(np, *ctr, *key, rounds=9)) != want


def test_uniforms_keyed_per_trajectory():
    keys = seed_keys(np, [3, 5, 2**40 + 7])
    U = uniforms(np, keys, t=11, stream=0, m=9)
    assert U.shape == (9, 3) and np.all((U >= 0) & (U < 1))
    # a column depends on its own seed only, not on its place or the batch
    V = uniforms(np, seed_keys(np, [2**40 + 7, 3]), t=11, stream=0, m=9)
    np.testing.assert_array_equal(V[:, 1], U[:, 0])
    np.testing.assert_array_equal(V[:, 0], U[:, 2])
    # m is a prefix: drawing more numbers does not change the first ones
    np.testing.assert_array_equal(uniforms(np, keys, 11, 0, 4), U[:4])
    # other steps / streams / seeds give other numbers
    assert not np.array_equal(uniforms(np, keys, 12, 0, 9), U)
    assert not np.array_equal(uniforms(np, keys, 11, 1, 9), U)
    assert not np.array_equal(U[:, 0], U[:, 1])


def test_uniforms_are_uniform():
    U = uniforms(np, seed_keys(np, np.arange(400)), t=0, stream=0, m=250).ravel()   # 100 000
    se = np.sqrt(1 / 12 / U.size)
    assert abs(U.mean() - 0.5) < 5 * se
    counts = np.histogram(U, bins=20, range=(0, 1))[0]
    exp = U.size / 20
    chi2 = np.sum((counts - exp) ** 2 / exp)
    assert chi2 < 50                 # 19 dof: P(chi2 > 50) ≈ 1e-4


# --- device sketch draws against the closed-form moments --------------------------------

@pytest.mark.parametrize("make", [lambda d: Bernoulli(d, 0.3), lambda d: RandK(d, 4), lambda d: PermK(d, 3),
                                  lambda d: Gaussian(d, 0.7), lambda d: DropoutUnscaled(d, 0.6),
                                  lambda d: Identity(d)])
def test_device_sketch_moments(make):
    d, R, T = 7, 500, 8
    sk = make(d)
    draws = DeviceSketches([sk] * R, seed_keys(np, np.arange(R)), FAKE)
    S = np.stack([draws.draw(t) for t in range(T)])                   # (T, d, R)
    flat = S.transpose(0, 2, 1).reshape(-1, d)                        # T·R sketches
    m = flat.shape[0]
    mean_se = flat.std(axis=0) / np.sqrt(m) + 1e-12
    assert np.all(np.abs(flat.mean(axis=0) - sk.mean()) <= 5 * mean_se + 1e-12)
    sq = flat ** 2
    sq_se = sq.std(axis=0) / np.sqrt(m) + 1e-12
    assert np.all(np.abs(sq.mean(axis=0) - sk.diag_second_moment()) <= 5 * sq_se + 1e-12)
    if isinstance(sk, RandK):
        assert np.all(np.count_nonzero(flat, axis=1) == sk.k)
    if isinstance(sk, PermK):       # one worker's block: its size is one of the q_i
        assert set(np.count_nonzero(flat, axis=1)) <= set(sk.q.tolist())


def test_device_sketches_mixed_batch():
    d = 9
    a, b = Bernoulli(d, 0.5), RandK(d, 2)
    mixed = DeviceSketches([a, b, a], seed_keys(np, [4, 5, 6]), FAKE).draw(3)
    alone_a = DeviceSketches([a, a], seed_keys(np, [4, 6]), FAKE).draw(3)
    alone_b = DeviceSketches([b], seed_keys(np, [5]), FAKE).draw(3)
    np.testing.assert_array_equal(mixed[:, [0, 2]], alone_a)
    np.testing.assert_array_equal(mixed[:, 1], alone_b[:, 0])


def test_device_refuses_unknown_sketch():
    class Odd(Identity):
        name = "odd"

    with pytest.raises(MastError, match="not available on the device"):
        DeviceSketches([Odd(3)], seed_keys(np, [0]), FAKE)


# --- memory planning ------------------------------------------------------------------------

def test_plan_chunks():
    assert plan_chunks(10, 100, 50, None) == [(0, 10)]
    ch = plan_chunks(10, 100, 50, 50 + 350)            # 3 per chunk -> 4 chunks, even sizes
    assert ch[0][0] == 0 and ch[-1][1] == 10
    assert all(b0 == a1 for (_, b0), (a1, _) in zip(ch, ch[1:]))
    assert max(b - a for a, b in ch) <= 3 and len(ch) == 4
    assert plan_chunks(5, 100, 0, 10**9) == [(0, 5)]
    with pytest.raises(MastError, match="device memory too small"):
        plan_chunks(5, 100, 50, 120)


def test_memory_estimate_grows_with_n_and_dtype(a1a_obj):
    fixed, per = dsgd_memory(a1a_obj)
    fixed32, per32 = dsgd_memory(a1a_obj, dtype=np.float32)
    assert fixed > 12 * a1a_obj.Ab.nnz and per >= 3 * 8 * a1a_obj.n
    assert per32 < per and fixed32 < fixed
    assert dsgd_memory(a1a_obj, extra_rows=10 * a1a_obj.n)[1] > per


# --- the device engine on the fake backend ------------------------------------------------

def test_identity_sketch_is_bit_exact(a1a_obj):
    R = 3
    sk = [Identity(a1a_obj.d)] * R
    steps = [1.0 / a1a_obj.smoothness()] * R
    v = np.linspace(-0.1, 0.1, a1a_obj.d)
    ref = dsgd(a1a_obj, sk, steps, [0, 1, 2], 25, v=v, log_every=5,
               metrics_fn=lambda X: {"f": a1a_obj.value(X)})
    dobj = DeviceObjective(a1a_obj, FAKE)
    dev = dsgd_device(dobj, sk, steps, [0, 1, 2], 25, v=v, log_every=5,
                      metrics_fn=lambda X, cols: {"f": dobj.value(X)})
    # the bar is 1e-12; today the fake device gives the reference's bits exactly
    np.testing.assert_allclose(dev.x_final, ref.x_final, rtol=0, atol=1e-12)
    np.testing.assert_allclose(dev.metrics["f"], ref.metrics["f"], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(dev.iterations, ref.iterations)


def test_chunked_equals_unchunked(a1a_obj):
    R = 7
    sks = [Bernoulli(a1a_obj.d, 0.5)] * 4 + [RandK(a1a_obj.d, 30)] * 3
    steps = np.linspace(0.5, 2.0, R)
    seeds = [11, 12, 13, 14, 15, 16, 17]
    whole = dsgd_device(a1a_obj, sks, steps, seeds, 30, backend=FAKE, log_every=10,
                        metrics_fn=lambda X, cols: {"c": np.asarray(cols.start + np.arange(X.shape[1]), float)})
    fixed, per = dsgd_memory(a1a_obj)
    tiny = fake_backend(fixed + 2 * per + per // 2)             # room for two trajectories
    parts = dsgd_device(a1a_obj, sks, steps, seeds, 30, backend=tiny, log_every=10,
                        metrics_fn=lambda X, cols: {"c": np.asarray(cols.start + np.arange(X.shape[1]), float)})
    assert whole.extra["chunks"] == [(0, R)]
    assert len(parts.extra["chunks"]) == 4
    np.testing.assert_array_equal(parts.x_final, whole.x_final)
    np.testing.assert_array_equal(parts.metrics["c"], whole.metrics["c"])
    np.testing.assert_array_equal(parts.metrics["c"][0], np.arange(R))   # columns in order


def test_divergence_on_device(a1a_obj):
    h = dsgd_device(a1a_obj, [Identity(a1a_obj.d)] * 2, [1e-3, 1e12], [0, 1], 50, backend=FAKE,
                    metrics_fn=lambda X, cols: {"f": a1a_obj.value(X)})
    ref = dsgd(a1a_obj, [Identity(a1a_obj.d)] * 2, [1e-3, 1e12], [0, 1], 50,
               metrics_fn=lambda X: {"f": a1a_obj.value(X)})
    np.testing.assert_array_equal(h.diverged_at, ref.diverged_at)
    assert h.diverged_at[0] == -1 and h.diverged_at[1] > 0
    np.testing.assert_array_equal(h.x_final, ref.x_final)


def test_progress_counts_whole_steps(a1a_obj):
    seen = []
    fixed, per = dsgd_memory(a1a_obj)
    dsgd_device(a1a_obj, [Bernoulli(a1a_obj.d, 0.5)] * 5, [0.1] * 5, range(5), 12,
                backend=fake_backend(fixed + 2 * per), progress=seen.append)
    assert sum(seen) == 12


def test_statistical_agreement_and_its_power(a1a_obj, monkeypatch):
    rows = device_agreement(a1a_obj, FAKE, Bernoulli(a1a_obj.d, 0.5), seeds=24, iters=40)
    assert all(r["ok"] for r in rows), rows
    assert rows[0]["observed"] == 0.0
    # a device sampler with the wrong keep probability must be caught
    import mast_cli.algorithms.device as dev

    real = dev.dsgd_device

    def biased(obj, sketches, *a, **k):
        return real(obj, [Bernoulli(obj.d, 0.15)] * len(sketches), *a, **k)

    monkeypatch.setattr(dev, "dsgd_device", biased)
    rows = dev.device_agreement(a1a_obj, FAKE, Bernoulli(a1a_obj.d, 0.5), seeds=24, iters=40)
    assert not rows[1]["ok"], rows


def test_device_pool_matches_pool_objective(a1a_obj, rng):
    S = RandK(a1a_obj.d, 20).sample(rng, 6)
    v = 0.01 * rng.standard_normal(a1a_obj.d)
    X = 0.1 * rng.standard_normal((a1a_obj.d, 3))
    w = rng.dirichlet(np.ones(6))
    ref = PoolObjective(a1a_obj, S, v, w)
    val, G = DevicePool(DeviceObjective(a1a_obj, FAKE), S, v, w, per=4).value_grad(X)
    np.testing.assert_allclose(val, ref.value(X), rtol=1e-12)
    np.testing.assert_allclose(G, ref.grad(X), rtol=1e-10, atol=1e-14)


def test_device_masked_accuracy(a1a, rng):
    x, v = rng.standard_normal(a1a.d), 0.1 * rng.standard_normal(a1a.d)
    S = Bernoulli(a1a.d, 0.4).sample(rng, 13)
    want = masked_accuracy(a1a.X_test, a1a.y_test, x, v, S)
    np.testing.assert_array_equal(device_masked_accuracy(FAKE, a1a.X_test, a1a.y_test, x, v, S, per=5), want)


def test_float32_device_gradient(a1a_obj, rng):
    X = 0.3 * rng.standard_normal((a1a_obj.d, 4))
    g64 = a1a_obj.grad(X)
    g32 = DeviceObjective(a1a_obj, FAKE, np.float32).grad(X)
    assert g32.dtype == np.float64
    err = np.linalg.norm(g32 - g64) / np.linalg.norm(g64)
    assert 0 < err < 1e-5


# --- experiments and the command line ---------------------------------------------------

def test_run_on_fake_device_equals_cpu_with_identity(tmp_path):
    from mast_cli.experiments.config import RunConfig
    from mast_cli.experiments.run import run_experiment

    kw = dict(dataset="a1a", sketch="identity", iters=20, seeds=2, step=["theory", "0.5x"], eval_sketches=3)
    run_experiment(RunConfig(**kw), tmp_path / "cpu")
    run_experiment(RunConfig(**kw, device="fake", unit_size=3), tmp_path / "fake")
    cpu = pd.read_csv(tmp_path / "cpu" / "trajectories.csv")
    fake = pd.read_csv(tmp_path / "fake" / "trajectories.csv")
    pd.testing.assert_frame_equal(cpu, fake, check_exact=False, rtol=1e-12, atol=1e-14)
    from mast_cli.algorithms import log_iterations

    assert len(cpu) == 2 * 2 * len(log_iterations(20, None))      # the default geometric schedule
    assert "device" not in RunConfig(**kw).to_dict()             # CPU unit keys unchanged
    assert RunConfig(**kw, device="cuda").to_dict()["device"] == "cuda"


def test_run_on_fake_device_bernoulli_is_close_to_cpu(tmp_path):
    from mast_cli.experiments.config import RunConfig
    from mast_cli.experiments.run import run_experiment

    kw = dict(dataset="a1a", sketch="bernoulli", sparsity=[0.5], iters=30, seeds=12, eval_sketches=2)
    cpu = run_experiment(RunConfig(**kw), tmp_path / "cpu")
    fake = run_experiment(RunConfig(**kw, device="fake"), tmp_path / "fake")
    last = lambda df: df[df.iteration == 30].erm_loss.to_numpy()        # noqa: E731
    a, b = last(cpu), last(fake)
    assert not np.array_equal(a, b)                  # other streams ...
    se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert abs(a.mean() - b.mean()) <= 4 * se         # ... same distribution


def test_prune_on_fake_device_equals_cpu(tmp_path):
    from mast_cli.experiments.prune import PruneConfig, run_prune

    kw = dict(dataset="a1a", sparsity=[0.5], masks=9, iters=20)
    run_prune(PruneConfig(**kw), tmp_path / "cpu")
    run_prune(PruneConfig(**kw, device="fake"), tmp_path / "fake")
    a = pd.read_csv(tmp_path / "cpu" / "pruning.csv")
    b = pd.read_csv(tmp_path / "fake" / "pruning.csv")
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("cmd", [["run", "--iters", "3", "--sparsity", "0.5"], ["prune", "--iters", "3"], ["verify", "--quick"]])
def test_cuda_without_gpu_is_one_line_exit_2(cmd, tmp_path):
    if cuda_status() is None:
        pytest.skip("a GPU is available here")
    from mast_cli.cli import cli

    out = tmp_path / "o"
    res = CliRunner().invoke(cli, cmd + ["-d", "a1a", "--device", "cuda", "-o", str(out)])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: --device cuda is not available"), res.output
    assert not out.exists()


def test_cuda_algorithm_restriction(monkeypatch):
    import mast_cli.experiments.device as ed

    monkeypatch.setattr(ed, "check_device", lambda device: None)        # pretend a GPU
    with pytest.raises(MastError, match="--algorithm newton does not run on --device cuda"):
        ed.check_run_device("cuda", "newton")
    for alg in ("dsgd", "dsgd-minibatch", "distributed", "vr"):
        ed.check_run_device("cuda", alg)
    from mast_cli.experiments.run import ALGORITHMS

    assert set(ed.DEVICE_RUNNERS) == set(ALGORITHMS)               # every algorithm has a device runner


# --- mast run -a distributed|vr on the fake device: the same code path as --device cuda -------

def _run_both(tmp_path, **kw):
    from mast_cli.experiments.config import RunConfig
    from mast_cli.experiments.run import run_experiment

    cpu = run_experiment(RunConfig(**kw), tmp_path / "cpu")
    fake = run_experiment(RunConfig(**kw, device="fake", unit_size=kw.get("unit_size", 64)), tmp_path / "fake")
    return cpu, fake


def _same_distribution(a, b, z=4.0):
    se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert abs(a.mean() - b.mean()) <= z * se, (a.mean(), b.mean(), se)


def test_run_distributed_identity_on_fake_device_equals_cpu(tmp_path):
    kw = dict(dataset="a1a", algorithm="distributed", workers=3, sketch="identity", iters=15, seeds=2,
              step=["theory"], eval_sketches=2)
    cpu, fake = _run_both(tmp_path, **kw)
    assert list(cpu.columns) == list(fake.columns)
    pd.testing.assert_frame_equal(cpu, fake, check_exact=False, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("extra", [dict(sketch="bernoulli", p=[0.3, 0.6, 0.9]),          # heterogeneous D_i
                                   dict(sketch="perm-k")])                                # one shared permutation
def test_run_distributed_on_fake_device_in_distribution(tmp_path, extra):
    kw = dict(dataset="a1a", algorithm="distributed", workers=3, iters=25, seeds=16, step=["theory"],
              eval_sketches=2, **extra)
    cpu, fake = _run_both(tmp_path, **kw)
    last = lambda df, col: df[df.iteration == 25][col].to_numpy()        # noqa: E731
    for col in ("erm_loss", "mast_loss"):
        a, b = last(cpu, col), last(fake, col)
        assert not np.array_equal(a, b)                  # other streams ...
        _same_distribution(a, b)                         # ... same distribution
    assert (cpu.worker_params == fake.worker_params).all()
    if extra["sketch"] == "perm-k":                      # the M blocks cover the d coordinates once
        assert np.array_equal(cpu.coords.to_numpy(), fake.coords.to_numpy())
    else:
        _same_distribution(last(cpu, "coords"), last(fake, "coords"))


def test_device_perm_k_blocks_partition_the_coordinates(a1a_obj):
    from mast_cli.algorithms.device import _WorkerDraws
    from mast_cli.core.sketches import PermK

    M, R = 3, 50
    draws = _WorkerDraws([PermK(a1a_obj.d, M)] * R, seed_keys(np, np.arange(R)), FAKE, M, a1a_obj.d)
    S = draws.draw(4)                                    # (M, d, R)
    assert S.shape == (M, a1a_obj.d, R)
    assert np.array_equal((S != 0).sum(axis=0), np.ones((a1a_obj.d, R)))   # disjoint, covering
    q = PermK(a1a_obj.d, M).q
    assert np.array_equal((S != 0).sum(axis=1), np.repeat(q[:, None], R, axis=1))
    assert np.allclose(S.mean(axis=2).mean(axis=1), 1.0, atol=0.15)         # unbiased per worker
    assert not np.array_equal(S, draws.draw(5))


def test_run_vr_identity_on_fake_device_equals_cpu(tmp_path):
    kw = dict(dataset="a1a", algorithm="vr", sketch="identity", iters=12, seeds=2, step=["theory"],
              eval_sketches=2)
    cpu, fake = _run_both(tmp_path, **kw)
    pd.testing.assert_frame_equal(cpu, fake, check_exact=False, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("ref_batch", [None, 3])
def test_run_vr_on_fake_device_in_distribution(tmp_path, ref_batch):
    kw = dict(dataset="a1a", algorithm="vr", sketch="bernoulli", sparsity=[0.5], sketch_pool=6, iters=25,
              seeds=16, step=["theory"], eval_sketches=2, ref_prob=0.3, ref_batch=ref_batch)
    cpu, fake = _run_both(tmp_path, **kw)
    last = lambda df, col: df[df.iteration == 25][col].to_numpy()        # noqa: E731
    for col in ("erm_loss", "dist_sq_mast", "epochs"):
        a, b = last(cpu, col), last(fake, col)
        _same_distribution(a, b)
    assert (fake.ref_batch == (6 if ref_batch is None else 3)).all()
    first = fake[fake.iteration == 0]
    assert (first.epochs == (6 if ref_batch is None else 3)).all()        # the reference G_0 is charged


def test_experiment_file_device_key(tmp_path):
    from mast_cli.experiments.config import load_config_file

    p = tmp_path / "e.toml"
    p.write_text('kind = "run"\n[config]\ndataset = "a1a"\ndevice = "cuda"\n')
    assert load_config_file(p)["device"] == "cuda"


# --- the same checks on a GPU (skipped without one) -------------------------------------

@pytest.mark.gpu
def test_gpu_philox_equals_numpy():
    be = cuda_backend()
    keys = seed_keys(np, [0, 1, 2**33 + 5])
    want = uniforms(np, keys, 7, 2, 11)
    dkeys = seed_keys(be.xp, [0, 1, 2**33 + 5])
    np.testing.assert_array_equal(be.to_host(uniforms(be.xp, dkeys, 7, 2, 11, fused=True)), want)
    np.testing.assert_array_equal(be.to_host(uniforms(be.xp, dkeys, 7, 2, 11, fused=False)), want)


@pytest.mark.gpu
def test_gpu_identity_and_statistical_agreement(a1a_obj):
    be = cuda_backend()
    rows = device_agreement(a1a_obj, be, Bernoulli(a1a_obj.d, 0.5), seeds=32, iters=60)
    assert all(r["ok"] for r in rows), rows


@pytest.mark.gpu
def test_gpu_chunked_equals_unchunked_and_reproducible(a1a_obj):
    be = cuda_backend()
    sks = [Bernoulli(a1a_obj.d, 0.5)] * 6
    a = dsgd_device(a1a_obj, sks, [1.0] * 6, range(6), 20, backend=be)
    b = dsgd_device(a1a_obj, sks, [1.0] * 6, range(6), 20, backend=be)
    # run to run: the Philox draws are bitwise identical (test_gpu_philox_equals_numpy), but
    # cuSPARSE's SpMM does not fix its reduction order, so iterates agree to rounding only
    # (measured on an H200: 2.8e-16 absolute, 1.1e-14 relative after 20 steps)
    np.testing.assert_allclose(a.x_final, b.x_final, rtol=0, atol=1e-12)
    fixed, per = dsgd_memory(a1a_obj)
    from mast_cli.core.backend import Backend

    small = Backend("cuda", be.xp, be.sparse, fixed + 2 * per)
    c = dsgd_device(a1a_obj, sks, [1.0] * 6, range(6), 20, backend=small)
    assert len(c.extra["chunks"]) == 3
    np.testing.assert_allclose(c.x_final, a.x_final, rtol=0, atol=1e-12)
    # the fake backend draws the same sketches (integer Philox): same iterates to rounding
    f = dsgd_device(a1a_obj, sks, [1.0] * 6, range(6), 20, backend=FAKE)
    np.testing.assert_allclose(a.x_final, f.x_final, rtol=0, atol=1e-10)


@pytest.mark.gpu
def test_gpu_masked_accuracy(a1a, rng):
    be = cuda_backend()
    x, v = rng.standard_normal(a1a.d), np.zeros(a1a.d)
    S = Bernoulli(a1a.d, 0.4).sample(rng, 50)
    want = masked_accuracy(a1a.X_test, a1a.y_test, x, v, S)
    got = device_masked_accuracy(be, a1a.X_test, a1a.y_test, x, v, S)
    assert np.max(np.abs(got - want)) <= 2.0 / a1a.X_test.shape[0]      # a margin at 0 may flip


# --- Algorithms 2 and 3 on the fake backend ----------------------------------------------

def test_distributed_device_identity_equals_cpu(a1a_obj):
    from mast_cli.algorithms import distributed_dsgd, partition_rows
    from mast_cli.algorithms.device import distributed_device

    parts = partition_rows(a1a_obj.n, 4, "random", rng=np.random.default_rng(0))
    sk = [Identity(a1a_obj.d)] * 2
    ref = distributed_dsgd(a1a_obj, parts, sk, [0.5, 1.0], [0, 1], 15)
    dev = distributed_device(a1a_obj, parts, sk, [0.5, 1.0], [0, 1], 15, backend=FAKE)
    np.testing.assert_allclose(dev.x_final, ref.x_final, rtol=0, atol=1e-12)
    # and with S = I it is gradient descent on f (the partition cancels)
    gd = dsgd(a1a_obj, sk, [0.5, 1.0], [0, 1], 15)
    np.testing.assert_allclose(dev.x_final, gd.x_final, rtol=0, atol=1e-12)


def test_distributed_device_bernoulli_in_distribution(a1a_obj):
    from mast_cli.algorithms import distributed_dsgd
    from mast_cli.algorithms.device import distributed_device, distributed_memory

    rng = np.random.default_rng(3)
    parts = np.array_split(rng.permutation(a1a_obj.n), 3)
    R = 16
    sk = [Bernoulli(a1a_obj.d, 0.5)] * R
    a = a1a_obj.value(distributed_dsgd(a1a_obj, parts, sk, [1.0] * R, range(R), 30).x_final)
    fixed, per = distributed_memory(a1a_obj, 3)
    dev = distributed_device(a1a_obj, parts, sk, [1.0] * R, range(R), 30, backend=fake_backend(fixed + 5 * per))
    assert len(dev.extra["chunks"]) == 4
    b = a1a_obj.value(dev.x_final)
    se = np.sqrt(a.var(ddof=1) / R + b.var(ddof=1) / R)
    assert abs(a.mean() - b.mean()) <= 4 * se


def test_vr_device_identity_pool_equals_cpu(a1a_obj):
    from mast_cli.algorithms import l_svrdsg
    from mast_cli.algorithms.device import l_svrdsg_device

    pool = np.ones((3, a1a_obj.d))
    ref = l_svrdsg(a1a_obj, pool, [1.0, 2.0], [0, 1], 20, 0.3)
    dev = l_svrdsg_device(a1a_obj, pool, [1.0, 2.0], [0, 1], 20, 0.3, backend=FAKE)
    np.testing.assert_allclose(dev.x_final, ref.x_final, rtol=0, atol=1e-12)


def test_vr_device_pool_in_distribution(a1a_obj, rng):
    from mast_cli.algorithms import l_svrdsg
    from mast_cli.algorithms.device import l_svrdsg_device

    S = RandK(a1a_obj.d, 40).sample(rng, 6)
    R, gam = 16, 0.5
    a = a1a_obj.value(l_svrdsg(a1a_obj, S, [gam] * R, range(R), 30, 0.2).x_final)
    b = a1a_obj.value(l_svrdsg_device(a1a_obj, S, [gam] * R, range(R), 30, 0.2, backend=FAKE).x_final)
    se = np.sqrt(a.var(ddof=1) / R + b.var(ddof=1) / R)
    assert abs(a.mean() - b.mean()) <= 4 * se


def test_verify_device_rows_on_fake_backend():
    from types import SimpleNamespace

    from mast_cli.cli.check import _device_checks

    cfg = SimpleNamespace(dataset="a1a", objective="logreg", lam=1e-3, sketches=["bernoulli", "identity"],
                          sparsity=[0.5])
    out = _device_checks({"rows": [], "violated": 0}, cfg, FAKE, None)
    names = [r.check for r in out["rows"]]
    assert names == ["device-identity-exact", "device-bernoulli-mean"]
    assert out["violated"] == 0 and all(r.verdict == "ok" for r in out["rows"])


def test_device_refuses_other_objectives(a1a_obj, monkeypatch):
    import mast_cli.experiments.device as ed

    class Other:
        name = "ridge"
        penalty = a1a_obj.penalty
        Ab = a1a_obj.Ab

    with pytest.raises(MastError, match="objective 'ridge' is not available on the device"):
        DeviceObjective(Other(), FAKE)
    with pytest.raises(MastError, match="--objective ridge does not run on --device fake"):
        ed.check_run_device("fake", "dsgd", "ridge")
    ed.check_run_device("fake", "dsgd", "logreg-nonconvex")


def test_nonconvex_objective_on_device(a1a, rng):
    from mast_cli.core.objective import LogisticNonconvex

    obj = LogisticNonconvex(a1a.X, a1a.y, 1e-2)
    X = rng.standard_normal((obj.d, 3))
    dobj = DeviceObjective(obj, FAKE)
    np.testing.assert_array_equal(dobj.value(X), obj.value(X))
    np.testing.assert_allclose(dobj.grad(X), obj.grad(X), rtol=1e-12, atol=1e-15)


# --- the GPU-only branches, run on NumPy (the ``sim`` backend) ------------------------------

def test_sim_backend_takes_the_gpu_branches(a1a_obj, rng):
    from mast_cli.core.backend import sim_backend

    sim = sim_backend()
    assert sim.is_gpu and sim.free_memory() is None
    dobj = DeviceObjective(a1a_obj, sim)
    assert dobj.AbT is not dobj.Ab and dobj.AbT.format == "csr"         # separate CSR copy of Aᵀ
    X = 0.2 * rng.standard_normal((a1a_obj.d, 5))
    val, G = dobj.value_grad(X)
    np.testing.assert_allclose(val, a1a_obj.value(X), rtol=1e-13)
    np.testing.assert_allclose(G, a1a_obj.grad(X), rtol=1e-12, atol=1e-16)
    from mast_cli.core.objective import LogisticNonconvex

    nc = LogisticNonconvex(a1a_obj.A, a1a_obj.b, 1e-2)
    np.testing.assert_allclose(DeviceObjective(nc, sim).value(X), nc.value(X), rtol=1e-13)


def test_sim_engines_equal_fake_engines(a1a_obj, rng):
    from mast_cli.algorithms.device import distributed_device, l_svrdsg_device
    from mast_cli.core.backend import sim_backend

    sim = sim_backend()
    R = 5
    sks = [Bernoulli(a1a_obj.d, 0.5)] * 3 + [PermK(a1a_obj.d, 3)] * 2
    kw = dict(log_every=4, metrics_fn=lambda X, cols: {"f": DeviceObjective(a1a_obj, FAKE).value(X)})
    a = dsgd_device(a1a_obj, sks, [1.0] * R, range(R), 12, backend=FAKE, **kw)
    b = dsgd_device(a1a_obj, sks, [1.0] * R, range(R), 12, backend=sim, **kw)
    np.testing.assert_allclose(b.x_final, a.x_final, rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.metrics["f"], a.metrics["f"], rtol=1e-12)
    parts = np.array_split(np.arange(a1a_obj.n), 3)
    a = distributed_device(a1a_obj, parts, sks, [1.0] * R, range(R), 8, backend=FAKE)
    b = distributed_device(a1a_obj, parts, sks, [1.0] * R, range(R), 8, backend=sim)
    np.testing.assert_allclose(b.x_final, a.x_final, rtol=0, atol=1e-12)
    pool = RandK(a1a_obj.d, 30).sample(rng, 4)
    a = l_svrdsg_device(a1a_obj, pool, [0.5] * R, range(R), 8, 0.3, backend=FAKE)
    b = l_svrdsg_device(a1a_obj, pool, [0.5] * R, range(R), 8, 0.3, backend=sim)
    np.testing.assert_allclose(b.x_final, a.x_final, rtol=0, atol=1e-12)


def test_run_and_prune_on_sim_device(tmp_path):
    from mast_cli.experiments.config import RunConfig
    from mast_cli.experiments.prune import PruneConfig, run_prune
    from mast_cli.experiments.run import run_experiment

    kw = dict(dataset="a1a", sketch="identity", iters=10, seeds=2, eval_sketches=2)
    run_experiment(RunConfig(**kw), tmp_path / "cpu")
    run_experiment(RunConfig(**kw, device="sim"), tmp_path / "sim")
    a = pd.read_csv(tmp_path / "cpu" / "trajectories.csv")
    b = pd.read_csv(tmp_path / "sim" / "trajectories.csv")
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=1e-14)
    kw = dict(dataset="a1a", sparsity=[0.5], masks=7, iters=10)
    run_prune(PruneConfig(**kw), tmp_path / "pc")
    run_prune(PruneConfig(**kw, device="sim"), tmp_path / "ps")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "pc" / "pruning.csv"),
                                  pd.read_csv(tmp_path / "ps" / "pruning.csv"))


@pytest.mark.gpu
@pytest.mark.parametrize("extra", [dict(algorithm="distributed", workers=3), dict(algorithm="vr"),
                                   dict(algorithm="dsgd-minibatch", batch_size=["n"])])
def test_gpu_run_distributed_and_vr_identity_equal_cpu(tmp_path, extra):
    cuda_backend()
    from mast_cli.experiments.config import RunConfig
    from mast_cli.experiments.run import run_experiment

    kw = dict(dataset="a1a", sketch="identity", iters=12, seeds=2, step=["theory"], eval_sketches=2, **extra)
    cpu = run_experiment(RunConfig(**kw), tmp_path / "cpu")
    gpu = run_experiment(RunConfig(**kw, device="cuda"), tmp_path / "gpu")
    pd.testing.assert_frame_equal(cpu, gpu, check_exact=False, rtol=1e-12, atol=1e-14)


@pytest.fixture
def pretend_gpu(monkeypatch):
    """``--device cuda`` served by the sim backend (NumPy taking every CUDA branch): the CLI
    wiring of run, prune and verify, end to end, without a GPU."""
    import mast_cli.algorithms.device as ad
    import mast_cli.core.backend as cb
    import mast_cli.experiments.device as ed
    from mast_cli.core.backend import sim_backend

    sim = sim_backend()
    monkeypatch.setattr(cb, "check_device", lambda device: None)
    monkeypatch.setattr(ed, "check_device", lambda device: None)
    monkeypatch.setattr(ed, "get_backend", lambda device: sim)
    monkeypatch.setattr(ad, "get_backend", lambda device: sim if device == "cuda" else get_backend(device))
    return sim


@pytest.mark.parametrize("args", [["run", "-a", "distributed", "--workers", "2", "--sketch", "perm-k"],
                                  ["run", "-a", "dsgd-minibatch", "--sparsity", "0.5", "--batch-size", "8,n"],
                                  ["run", "-a", "vr", "--sparsity", "0.5", "--sketch-pool", "4", "--ref-batch", "2"],
                                  ["prune", "--sparsity", "0.5", "--masks", "5"]])
def test_cli_device_cuda_end_to_end(tmp_path, pretend_gpu, args):
    from mast_cli.cli import cli

    out = tmp_path / "o"
    res = CliRunner().invoke(cli, args + ["-d", "a1a", "--iters", "5", "--device", "cuda", "-o", str(out)])
    assert res.exit_code == 0, res.output
    csv = out / ("pruning.csv" if args[0] == "prune" else "trajectories.csv")
    df = pd.read_csv(csv)
    assert len(df) and np.isfinite(df.select_dtypes("number").drop(columns=["param"], errors="ignore")
                                   .dropna(axis=1, how="all").to_numpy(dtype=float)).all()


def test_verify_device_rows_with_auto_lambda():
    """--lam auto leaves the config's λ None: the device rows take the battery's resolved λ."""
    from types import SimpleNamespace

    from mast_cli.cli.check import _device_checks

    cfg = SimpleNamespace(dataset="a1a", objective="logreg", lam=None, sketches=["bernoulli"], sparsity=[0.5])
    out = _device_checks({"rows": [], "violated": 0, "config": {"lam": 0.02}}, cfg, FAKE, None)
    assert [r.check for r in out["rows"]] == ["device-identity-exact", "device-bernoulli-mean"]
    assert out["violated"] == 0


@pytest.mark.slow
def test_cli_verify_device_cuda_end_to_end(tmp_path, pretend_gpu):
    from mast_cli.cli import cli

    out = tmp_path / "v"
    res = CliRunner().invoke(cli, ["verify", "-d", "a1a", "--quick", "--sketch", "bernoulli", "--device", "cuda",
                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    rows = pd.read_csv(out / "verify.csv")
    dev = rows[rows.check.str.startswith("device-")]
    assert len(dev) >= 2 and "device-identity-exact" in set(dev.check)


# --- Algorithm 1 (II) on the device --------------------------------------------------------------

def test_device_row_products_equal_grad_rows(a1a_obj, rng):
    from mast_cli.algorithms.device import _row_products
    from mast_cli.core.backend import sim_backend

    Y = rng.normal(size=(a1a_obj.d, 5)) * 0.3
    rows, cols, w = rng.integers(a1a_obj.n, size=23), rng.integers(5, size=23), rng.random(23)
    ref = a1a_obj.grad_rows(Y, rows, cols, w) - a1a_obj.penalty.grad(Y)
    for be in (FAKE, sim_backend()):
        G = _row_products(np, DeviceObjective(a1a_obj, be), Y, rows, cols, w)
        assert np.max(np.abs(G - ref)) <= 1e-13 * np.max(np.abs(ref))


@pytest.mark.parametrize("n,tau", [(50, 7), (50, 1), (50, 30), (1000, 40)])
def test_device_rows_are_uniform_subsets(n, tau):
    from mast_cli.algorithms.device import _distinct_rows

    R = 400
    rows = _distinct_rows(np, seed_keys(np, np.arange(R)), 5, n, tau)
    assert rows.shape == (tau, R) and rows.min() >= 0 and rows.max() < n
    assert all(len(set(rows[:, j])) == tau for j in range(R))             # without replacement
    counts = np.bincount(rows.ravel(), minlength=n)                       # each row: Binomial(R, τ/n)
    mean, sd = R * tau / n, np.sqrt(R * tau / n * (1 - tau / n))
    assert np.max(np.abs(counts - mean)) <= 5 * sd + 1
    assert not np.array_equal(rows, _distinct_rows(np, seed_keys(np, np.arange(R)), 6, n, tau))


def test_device_minibatch_full_batch_identity_equals_cpu(a1a_obj):
    from mast_cli.algorithms.device import dsgd_minibatch_device

    R = 3
    ident = [Identity(a1a_obj.d)] * R
    ref = dsgd(a1a_obj, ident, [1.0] * R, range(R), 15, batch_size=[a1a_obj.n] * R)
    dev = dsgd_minibatch_device(a1a_obj, ident, [1.0] * R, range(R), 15, [a1a_obj.n] * R, backend=FAKE)
    assert np.max(np.abs(ref.x_final - dev.x_final)) <= 1e-12
    assert np.array_equal(ref.metrics.get("epochs", np.zeros(1)), dev.metrics.get("epochs", np.zeros(1)))


@pytest.mark.parametrize("sampling", ["uniform", "importance"])
def test_run_minibatch_on_fake_device_in_distribution(tmp_path, sampling):
    kw = dict(dataset="a1a", algorithm="dsgd-minibatch", sketch="bernoulli", sparsity=[0.5], batch_size=[8, 64],
              sampling=sampling, iters=30, seeds=16, step=["theory"], eval_sketches=2)
    cpu, fake = _run_both(tmp_path, **kw)
    assert list(cpu.columns) == list(fake.columns)
    for tau in (8, 64):
        last = lambda df, col: df[(df.iteration == 30) & (df.batch_size == tau)][col].to_numpy()   # noqa: E731
        for col in ("erm_loss", "mast_loss", "epochs"):
            a, b = last(cpu, col), last(fake, col)
            _same_distribution(a, b)
