"""`mast run --algorithm distributed|vr`: CSV columns, values = engine, seed independence, bad input."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mast_cli.algorithms import WorkerSplit, distributed_dsgd, l_svrdsg, partition_rows
from mast_cli.reference import solve_pool
from mast_cli.cli import cli
from mast_cli.experiments import load_problem
from mast_cli.experiments_alg23 import POOL_SEED, SPLIT_SEED
from mast_cli.sketches import Bernoulli, RandK

COMMON = ["run", "-d", "a1a", "--iters", "30", "--log-every", "10", "--eval-sketches", "3", "-q"]
DIST = COMMON + ["-a", "distributed", "--workers", "4", "--sketch", "bernoulli"]
VR = COMMON + ["-a", "vr", "--sketch", "rand-k", "--k", "40", "--sketch-pool", "12"]


def run(args):
    return CliRunner().invoke(cli, args, prog_name="mast")


def test_distributed_csv_and_metadata(tmp_path):
    out = tmp_path / "d"
    res = run(DIST + ["--p", "0.9,0.5,0.5,0.1", "--split", "label-sorted", "--seeds", "2", "-o", str(out)])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out / "trajectories.csv")
    for col in ("erm_loss", "mast_loss", "dist_sq", "workers", "split", "worker_params", "status"):
        assert col in df.columns
    assert (df.algorithm == "distributed").all() and (df.workers == 4).all()
    assert (df.worker_params == "0.9,0.5,0.5,0.1").all() and df.param.isna().all()
    assert len(df) == 2 * 4 and (df.status == "ok").all()
    meta = json.loads((out / "metadata.json").read_text())
    dm = meta["distributed"]
    assert dm["workers"] == 4 and sum(dm["worker_sizes"]) == 1605 and dm["split_seed"] == SPLIT_SEED
    assert sorted(dm["worker_positive_fraction"])[:3] == [0.0, 0.0, 0.0]       # heterogeneous split
    assert [w["p"] for w in dm["levels"][0]["worker_sketches"]] == [0.9, 0.5, 0.5, 0.1]
    # theory step 1/max_i(L_{f_i} L_{S_i}^max), L_{S_i}^max = 1/p_i²
    A = max(L / p ** 2 for L, p in zip(dm["L_f_local"], [0.9, 0.5, 0.5, 0.1]))
    assert df.step_size.iloc[0] == pytest.approx(1 / A, rel=1e-12)
    # values = the engine's, with the same partition
    prob = load_problem("a1a")
    P = partition_rows(prob.obj.n, 4, "label-sorted", y=prob.obj.b, rng=np.random.default_rng(SPLIT_SEED))
    sks = [Bernoulli(prob.obj.d, p) for p in (0.9, 0.5, 0.5, 0.1)]
    h = distributed_dsgd(prob.obj, P, [sks], [df.step_size.iloc[0]], [1], 30,
                         metrics_fn=lambda X: {"f": prob.obj.value(X)}, log_every=10)
    np.testing.assert_allclose(df[df.seed == 1].erm_loss, h.metrics["f"][:, 0], rtol=1e-13)


def test_distributed_mast_loss_is_F_and_identity_is_gd(tmp_path):
    """With S_i ≡ I the distributed MAST loss column equals the ERM loss, and the run is GD."""
    out = tmp_path / "i"
    res = run(COMMON + ["-a", "distributed", "--workers", "3", "--sketch", "identity", "--step", "0.5",
                        "--seed", "0", "-o", str(out)])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out / "trajectories.csv")
    np.testing.assert_allclose(df.mast_loss, df.erm_loss, rtol=1e-14)
    prob = load_problem("a1a")
    x = np.zeros(prob.obj.d)
    for _ in range(30):
        x = x - 0.5 * prob.obj.grad(x)
    assert df.erm_loss.iloc[-1] == pytest.approx(prob.obj.value(x), rel=1e-13)


def test_distributed_seed_independent_of_sweep(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(DIST + ["--sparsity", "0.3,0.6", "--seeds", "3", "-o", str(a)]).exit_code == 0
    assert run(DIST + ["--sparsity", "0.6", "--seed", "2", "-o", str(b)]).exit_code == 0
    da, db = pd.read_csv(a / "trajectories.csv"), pd.read_csv(b / "trajectories.csv")
    sel = da[(da.seed == 2) & (da.sparsity.round(6) == 0.6)].reset_index(drop=True)
    pd.testing.assert_frame_equal(sel[db.columns], db, check_exact=True)


def test_distributed_perm_k(tmp_path):
    out = tmp_path / "p"
    res = run(COMMON + ["-a", "distributed", "--workers", "3", "--sketch", "perm-k", "--seed", "0",
                        "-o", str(out)])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out / "trajectories.csv")
    assert (df.worker_params == "41,41,41").all() and df.sparsity.iloc[0] == pytest.approx(2 / 3)
    assert df.erm_loss.iloc[-1] < df.erm_loss.iloc[0]


def test_distributed_sketch_families(tmp_path):
    out = tmp_path / "f"
    res = run(COMMON + ["-a", "distributed", "--workers", "2", "--sketch", "bernoulli,rand-k",
                        "--sparsity", "0.5", "--seed", "0", "-o", str(out)])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out / "trajectories.csv")
    assert set(df.sketch) == {"bernoulli", "rand-k"}
    assert set(df.worker_params) == {"0.5,0.5", "62,62"}


def test_vr_csv_metadata_and_values(tmp_path):
    out = tmp_path / "v"
    res = run(VR + ["--ref-batch", "4", "--ref-prob", "0.2", "--step", "4x", "--seed", "5", "-o", str(out)])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out / "trajectories.csv")
    for col in ("dist_sq_mast", "pool_size", "ref_batch", "ref_prob", "erm_loss", "mast_loss"):
        assert col in df.columns
    assert (df.pool_size == 12).all() and (df.ref_batch == 4).all() and (df.ref_prob == 0.2).all()
    meta = json.loads((out / "metadata.json").read_text())
    lv = meta["vr"]["levels"][0]
    assert lv["pool_seed"] == POOL_SEED and lv["x_pool_grad_norm"] <= 1e-12
    prob = load_problem("a1a")
    d = prob.obj.d
    pool = RandK(d, 40).sample(np.random.default_rng(POOL_SEED), 12)
    gam = 4 / (6 * prob.obj.smoothness() * (d / 40) ** 2)
    assert df.step_size.iloc[0] == pytest.approx(gam, rel=1e-12)
    x_pool = solve_pool(prob.obj, pool, np.zeros(d), tol=1e-13)[0]
    h = l_svrdsg(prob.obj, pool, [gam], [5], 30, 0.2, 4, log_every=10,
                 metrics_fn=lambda X: {"e": ((X - x_pool[:, None]) ** 2).sum(0)})
    np.testing.assert_allclose(df.dist_sq_mast, h.metrics["e"][:, 0], rtol=1e-10)


def test_vr_enumerated_pool_exact_reference(tmp_path):
    """No --sketch-pool on an enumerable sketch (Rand-1 on d = 123: N = 123): exact reference,
    p = 1/N by default; the distance to x*_pool keeps shrinking."""
    out = tmp_path / "e"
    res = run(COMMON[:4] + ["400", "--log-every", "100", "--eval-sketches", "0", "-q", "-a", "vr",
                            "--sketch", "rand-k", "--k", "1", "--seed", "0", "--lam", "0.1",
                            "--step", "6x", "-o", str(out)])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out / "trajectories.csv")
    assert (df.pool_size == 123).all() and (df.ref_batch == 123).all()
    assert df.ref_prob.iloc[0] == pytest.approx(1 / 123)
    e = df.dist_sq_mast.to_numpy()
    assert np.all(np.diff(e) < 0) and e[-1] < 0.5 * e[0]


def test_vr_seed_independent_of_sweep(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(VR[:-4] + ["--k", "30,60", "--sketch-pool", "12", "--seeds", "2", "-o", str(a)]).exit_code == 0
    assert run(VR[:-4] + ["--k", "60", "--sketch-pool", "12", "--seed", "1", "-o", str(b)]).exit_code == 0
    da, db = pd.read_csv(a / "trajectories.csv"), pd.read_csv(b / "trajectories.csv")
    sel = da[(da.seed == 1) & (da.param == 60)].reset_index(drop=True)
    pd.testing.assert_frame_equal(sel[db.columns], db, check_exact=True)


@pytest.mark.parametrize("args, needle", [
    (DIST[:-4], "needs --workers M"),
    (DIST + ["--p", "0.5"] + ["--workers", "0"], "--workers M=0 must be >= 1"),
    (DIST + ["--p", "0.5"] + ["--workers", "-3"], "--workers M=-3 must be >= 1"),
    (DIST + ["--p", "0.5"] + ["--workers", "1606"], "--workers M=1606 must be <= n=1605"),
    (DIST + ["--p", "0.5,0.5,0.5"], "--p has 3 values; give 1 or one per worker (M=4)"),
    (DIST + ["--p", "0.9,0.5,0.5,1.5"], "p=1.5 must be in (0, 1]"),
    (DIST + ["--p", "0.9,0,0.5,0.5"], "p=0 must be in (0, 1]"),
    (DIST + ["--p", "0.5", "--split", "sorted"], "unknown split 'sorted'"),
    (COMMON + ["-a", "distributed", "--workers", "4", "--sketch", "rand-k", "--k", "5,6"],
     "--k has 2 values; give 1 or one per worker (M=4)"),
    (COMMON + ["-a", "distributed", "--workers", "200", "--sketch", "perm-k"], "M=200 > d=123"),
    (VR + ["--ref-batch", "13"], "--ref-batch b=13 must be in [1, N=12]"),
    (VR + ["--ref-batch", "0"], "--ref-batch b=0 must be in [1, N=12]"),
    (VR + ["--ref-prob", "0"], "--ref-prob p=0.0 must be in (0, 1]"),
    (VR + ["--ref-prob", "1.01"], "--ref-prob p=1.01 must be in (0, 1]"),
    (VR[:-2] + ["--sketch-pool", "0"], "--sketch-pool N=0 must be an integer >= 1"),
    (VR[:-2], "needs --sketch-pool N"),
    (COMMON + ["-a", "vr", "--sketch", "bernoulli", "--p", "0.5"], "needs --sketch-pool N"),
])
def test_bad_input(tmp_path, args, needle):
    out = tmp_path / "bad"
    res = run(args + ["-o", str(out)])
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and res.output.startswith("Error: ") and needle in res.output
    assert "Traceback" not in res.output
    assert not out.exists() or not any(out.iterdir())


def test_worker_split_cache_is_the_partition():
    from mast_cli.experiments_alg23 import worker_split

    prob = load_problem("a1a")
    s = worker_split(prob, 5, "random")
    assert isinstance(s, WorkerSplit) and worker_split(prob, 5, "random") is s
    P = partition_rows(prob.obj.n, 5, "random", rng=np.random.default_rng(SPLIT_SEED))
    assert all(np.array_equal(a, b) for a, b in zip(s.partition, P))
