"""`mast run`: CSV schema, metadata, seed/batch independence, determinism, TOML configs."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mast_cli.algorithms import dsgd
from mast_cli.cli import cli
from mast_cli.experiments import load_problem
from mast_cli.sketches import Bernoulli

BASE = ["run", "-d", "a1a", "--sketch", "bernoulli", "--iters", "40", "--log-every", "10",
        "--eval-sketches", "4", "-q"]


def run(args):
    res = CliRunner().invoke(cli, args, prog_name="mast")
    return res


def test_run_writes_schema_and_metadata(tmp_path):
    out = tmp_path / "r"
    res = run(BASE + ["--sparsity", "0.2,0.8", "--seeds", "2", "-o", str(out)])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out / "trajectories.csv")
    for col in ("algorithm", "sketch", "sparsity", "step_size", "seed", "iteration", "erm_loss",
                "grad_norm_sq", "dist_sq", "mast_loss", "status", "test_accuracy"):
        assert col in df.columns
    assert len(df) == 2 * 2 * 5 and set(df.iteration) == {0, 10, 20, 30, 40}
    assert (df.status == "ok").all() and set(df.sparsity.round(6)) == {0.2, 0.8}
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["dataset"]["name"] == "a1a" and len(meta["dataset"]["sha256"]) == 64
    assert meta["dataset"]["n"] == 1605 and meta["dataset"]["d"] == 123
    for key in ("numpy", "scipy", "sklearn", "mast"):
        assert key in meta["versions"]
    for key in ("L_f", "mu_f", "L_D", "L_S_max", "f_inf"):
        assert key in meta["constants"]
    # the theory step is 1/(L_f L_S^max) per level
    lv = {round(c["sparsity"], 6): c for c in meta["constants"]["levels"]}
    for s, g in df.groupby("sparsity"):
        c = lv[round(s, 6)]
        assert g.step_size.iloc[0] == pytest.approx(1 / (c["L_f"] * c["L_S_max"]), rel=1e-11)
    # f(x) ≥ f^inf and the ERM loss at x = 0 is log 2
    assert (df.erm_loss >= meta["f_inf"] - 1e-12).all()
    assert df[df.iteration == 0].erm_loss.to_numpy() == pytest.approx(np.log(2))


def test_csv_values_match_engine(tmp_path):
    out = tmp_path / "r"
    assert run(BASE + ["--p", "0.5", "--seed", "3", "--step", "0.2", "-o", str(out)]).exit_code == 0
    df = pd.read_csv(out / "trajectories.csv")
    prob = load_problem("a1a")
    h = dsgd(prob.obj, [Bernoulli(prob.obj.d, 0.5)], [0.2], [3], 40,
             metrics_fn=lambda X: {"f": prob.obj.value(X)}, log_every=10)
    np.testing.assert_allclose(df.erm_loss, h.metrics["f"][:, 0], rtol=1e-11)


def test_seed_alone_equals_seed_in_sweep_and_determinism(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert run(BASE + ["--sparsity", "0.5,0.9", "--seeds", "5", "--step", "theory,2x",
                       "--unit-size", "3", "-o", str(a)]).exit_code == 0
    assert run(BASE + ["--sparsity", "0.9", "--seed", "3", "--step", "2x", "-o", str(b)]).exit_code == 0
    assert run(BASE + ["--sparsity", "0.5,0.9", "--seeds", "5", "--step", "theory,2x",
                       "-o", str(c)]).exit_code == 0
    big = pd.read_csv(a / "trajectories.csv", dtype=str)
    one = pd.read_csv(b / "trajectories.csv", dtype=str)
    sel = big[(big.seed == "3") & (big.step_label == "2x") & (big.sparsity == one.sparsity[0])]
    pd.testing.assert_frame_equal(sel.reset_index(drop=True), one)
    # same command, different unit sizes: byte-identical CSV
    assert (a / "trajectories.csv").read_bytes() == (c / "trajectories.csv").read_bytes()


def test_minibatch_and_importance_run(tmp_path):
    out = tmp_path / "m"
    res = run(BASE + ["--algorithm", "dsgd-minibatch", "--p", "0.5", "--batch-size", "1,32",
                      "--sampling", "importance", "--seeds", "2", "-o", str(out)])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out / "trajectories.csv")
    assert set(df.batch_size) == {1, 32}
    steps = df.groupby("batch_size").step_size.first()
    assert steps[1] < steps[32]  # the (II) theory step grows with τ


def test_shift_erm_and_npy(tmp_path):
    prob = load_problem("a1a")
    out = tmp_path / "s"
    assert run(BASE + ["--p", "0.5", "--shift", "erm", "--seeds", "1", "-o", str(out)]).exit_code == 0
    df = pd.read_csv(out / "trajectories.csv")
    # x⁰ = v = x*: a fixed point of f_S(x) = f(v + S(x−v)) since every S maps v to v
    assert df.dist_sq.max() < 1e-20 and df.erm_loss.to_numpy() == pytest.approx(prob.f_inf, rel=1e-12)
    np.save(tmp_path / "v.npy", prob.x_star)
    out2 = tmp_path / "s2"
    assert run(BASE + ["--p", "0.5", "--shift", str(tmp_path / "v.npy"), "--seeds", "1",
                       "-o", str(out2)]).exit_code == 0
    assert (out2 / "trajectories.csv").read_bytes() == (out / "trajectories.csv").read_bytes()


def test_toml_config_and_override(tmp_path):
    cfg = tmp_path / "exp.toml"
    cfg.write_text('dataset = "a1a"\nsketch = "rand-k"\nsparsity = [0.5]\niters = 20\nseeds = [1, 2]\n'
                   'log-every = 10\neval-sketches = 2\nstep = ["theory"]\nout = "%s"\n' % (tmp_path / "t"))
    res = run(["run", "--config", str(cfg), "-q"])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(tmp_path / "t" / "trajectories.csv")
    assert set(df.seed) == {1, 2} and set(df.sketch) == {"rand-k"} and df.iteration.max() == 20
    res = run(["run", "--config", str(cfg), "--iters", "30", "-o", str(tmp_path / "u"), "-q"])
    assert pd.read_csv(tmp_path / "u" / "trajectories.csv").iteration.max() == 30


def test_suite_experiment_file_as_run_config(tmp_path):
    """An experiments/*.toml file (kind, figure, caption, metric + [config]) feeds `mast run
    --config`; a prune experiment is refused with a pointer to the right command."""
    from mast_cli.suite import default_experiments_dir

    exp = default_experiments_dir()
    res = run(["run", "--config", str(exp / "fig5_minibatch.toml"), "-d", "a1a", "--iters", "4",
               "--seeds", "1", "-o", str(tmp_path / "f5"), "-q"])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(tmp_path / "f5" / "trajectories.csv")
    assert set(df.algorithm) == {"dsgd-minibatch"} and df.batch_size.nunique() == 4
    res = run(["run", "--config", str(exp / "fig1_pruning_bernoulli.toml"), "-o", str(tmp_path / "x")])
    assert res.exit_code == 2 and "'prune' experiment" in res.output and "mast prune" in res.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("args, needle", [
    (["--p", "1.5"], "p=1.5"),
    (["--p", "0.5", "--iters", "0"], "iters 0"),
    (["--p", "0.5", "--seeds", "0"], "seeds 0"),
    (["--p", "0.5", "--step", "-1"], "step -1"),
    (["--p", "0.5", "--step", "nan"], "step nan"),
    (["--p", "0.5", "--step", "fast"], "step 'fast'"),
    (["--p", "0.5", "--algorithm", "adam"], "adam"),
    (["--p", "0.5", "--shift", "nowhere.npy"], "nowhere.npy"),
    (["--sparsity", "1.2"], "1.2"),
])
def test_bad_run_input(tmp_path, args, needle):
    out = tmp_path / "bad"
    res = run(BASE + args + ["-o", str(out)])
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and needle in res.output and "Traceback" not in res.output
    assert not out.exists() or not any(out.iterdir())


def test_bad_toml(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("iters = [\n")
    res = run(["run", "--config", str(bad), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "not valid TOML" in res.output
    bad.write_text("iterations = 5\n")
    res = run(["run", "--config", str(bad), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "unknown key 'iterations'" in res.output
    assert not (tmp_path / "o").exists()
