"""Pruning robustness (Figs. 1/3/4): schema, check 23, batched mask evaluation."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mast_cli.cli import cli
from mast_cli.pruning import masked_accuracy
from mast_cli.sketches import Bernoulli, RandK


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    out = tmp_path_factory.mktemp("prune") / "p"
    res = CliRunner().invoke(cli, ["prune", "-d", "a1a", "--sketch", "bernoulli", "--sparsity", "0,0.5",
                                   "--masks", "30", "--iters", "60", "-q", "-o", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_schema_and_degenerate_zero_sparsity(pruned):                              # check 23
    df = pd.read_csv(pruned / "pruning.csv")
    for col in ("formulation", "selection", "sketch", "sparsity", "mask", "test_accuracy",
                "dense_test_accuracy"):
        assert col in df.columns
    assert set(zip(df.formulation, df.selection)) == {("erm", "exact"), ("mast", "last"),
                                                      ("mast", "best_masked_val")}
    assert (df.fD_gap >= -1e-12).all() and df.fD_gap.notna().all()
    assert len(df) == 3 * 2 * 30
    zero = df[df.sparsity == 0]
    for _, g in zero.groupby(["formulation", "selection"]):
        assert g.test_accuracy.nunique() == 1
        assert g.test_accuracy.iloc[0] == g.dense_test_accuracy.iloc[0]


def test_masked_equals_rescaled_masked_for_v0(a1a, rng):                          # check 23
    x = rng.standard_normal(a1a.d)
    v = np.zeros(a1a.d)
    for sk in (Bernoulli(a1a.d, 0.3), RandK(a1a.d, 20)):
        S = sk.sample(rng, 50)
        unscaled = (S != 0).astype(float)
        np.testing.assert_array_equal(masked_accuracy(a1a.X_test, a1a.y_test, x, v, S),
                                      masked_accuracy(a1a.X_test, a1a.y_test, x, v, unscaled))


def test_one_product_equals_per_mask_loop(a1a, rng):
    x, v = rng.standard_normal(a1a.d), rng.standard_normal(a1a.d) * 0.1
    S = Bernoulli(a1a.d, 0.5).sample(rng, 40)
    batched = masked_accuracy(a1a.X_test, a1a.y_test, x, v, S)
    loop = [np.mean(a1a.y_test * (a1a.X_test @ (v + s * (x - v))) > 0) for s in S]
    np.testing.assert_allclose(batched, loop, atol=1e-15)


def test_plot_pruning(pruned, tmp_path):
    res = CliRunner().invoke(cli, ["plot", str(pruned), "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    stats = pd.read_csv(tmp_path / "p-pruning.csv")
    df = pd.read_csv(pruned / "pruning.csv")
    med = df[(df.formulation == "mast") & (df.selection == "last") & (df.sparsity == 0.5)].test_accuracy.median()
    row = stats[(stats.panel == "last") & (stats.formulation == "mast") & (stats.sparsity == 0.5)]
    assert row["median"].iloc[0] == pytest.approx(med)
    assert (tmp_path / "p-pruning.png").stat().st_size > 1000


def test_masked_validation_selection_matches_naive_loop(tiny, rng):
    """train_mast keeps the logged iterate with the best mean masked validation accuracy
    (reference: the naive loop's iterates, one mask and one row at a time)."""
    from oracles import dsgd_reference
    from mast_cli.experiments.prune import train_mast

    sk, v = Bernoulli(tiny.d, 0.4), np.zeros(tiny.d)
    X_val, y_val = tiny.A[:80], tiny.b[:80]
    masks = sk.sample(rng, 7)
    x_last, x_best, it = train_mast(tiny, sk, 0.5, 40, 3, v, X_val, y_val, 1, masks)
    iterates = dsgd_reference(tiny, sk, 0.5, 3, 40)
    Xv = X_val.toarray() if hasattr(X_val, "toarray") else X_val
    score = [np.mean([np.mean(y_val * (Xv @ (m * x)) > 0) for m in masks]) for x in iterates]
    assert it == int(np.argmax(score))                     # first maximum
    np.testing.assert_allclose(x_best, iterates[it], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x_last, iterates[-1], rtol=1e-10, atol=1e-12)
    # the unmasked rule picks on another quantity: on this problem another iterate
    plain = [np.mean(y_val * (Xv @ x) > 0) for x in iterates]
    assert train_mast(tiny, sk, 0.5, 40, 3, v, X_val, y_val, 1)[2] == int(np.argmax(plain))


def test_pool_gaps_against_scipy(tiny, rng):
    """fD_gap = f_pool(x) − min f_pool: the minimum checked against L-BFGS on a plain loop."""
    from scipy.optimize import minimize

    from mast_cli.experiments.prune import pool_gaps

    S = RandK(tiny.d, 3).sample(rng, 12)
    v = np.zeros(tiny.d)
    A = tiny.A.toarray() if hasattr(tiny.A, "toarray") else tiny.A

    def f_pool(x):
        return np.mean([np.mean(np.logaddexp(0, -tiny.b * (A @ (s * x)))) + 0.5 * tiny.lam * np.sum((s * x) ** 2)
                        for s in S])

    ref = minimize(f_pool, np.zeros(tiny.d), method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15})
    x1 = rng.standard_normal(tiny.d)
    gaps, se, f_inf, x_inf, _ = pool_gaps(tiny, S, v, [x1, ref.x])
    assert f_inf == pytest.approx(ref.fun, abs=1e-9)
    assert gaps[0] == pytest.approx(f_pool(x1) - ref.fun, abs=1e-9) and gaps[0] > 1e-3
    assert abs(gaps[1]) < 1e-8 and se[0] > 0


def test_exact_solution_has_zero_gap(tmp_path):
    out = tmp_path / "p"
    res = CliRunner().invoke(cli, ["prune", "-d", "a1a", "--sparsity", "0.5", "--masks", "5", "--iters", "20",
                                   "--mast-solution", "exact", "--pool", "16", "-q", "-o", str(out)])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out / "pruning.csv")
    assert set(zip(df.formulation, df.selection)) == {("erm", "exact"), ("mast", "exact")}
    mast = df[df.formulation == "mast"]
    assert abs(mast.fD_gap.iloc[0]) < 1e-10 and mast.fD_inf_se.iloc[0] > 0
    assert df[df.formulation == "erm"].fD_gap.iloc[0] > 1e-3        # x_ERM does not solve MAST at 50%


@pytest.mark.parametrize("args, needle", [(["--mast-solution", "sgd"], "sgd"), (["--pool", "1"], "pool 1"),
                                          (["--val-masks", "0"], "val masks 0"), (["--gap-tol", "0"], "gap tol 0"),
                                          (["--masks", "0"], "masks 0"), (["--sparsity", "1.0"], "sparsity 1"),
                                          (["--val-fraction", "1.5"], "1.5"), (["--sketch", "x"], "'x'"),
                                          (["--step", "0.1,0.2"], "0.1,0.2"), (["--step", "-1"], "-1"),
                                          # the theory step needs L_S^max < ∞: refused before the
                                          # sparsity-0 level (σ = 0, finite) is computed
                                          (["--sketch", "gaussian", "--sparsity", "0,0.5"], "Gaussian")])
def test_bad_prune_input(tmp_path, args, needle):
    res = CliRunner().invoke(cli, ["prune", "-d", "a1a", "-o", str(tmp_path / "o")] + args)
    assert res.exit_code == 2 and needle in res.output and res.output.count("\n") == 1
    assert not (tmp_path / "o").exists()


TINY = ["prune", "-d", "a1a", "--sparsity", "0.5", "--masks", "4", "--iters", "10", "-q"]


@pytest.mark.parametrize("extra", [["--step", "0.1"], ["--step", "2x"], ["--step", "theory"],
                                   ["--shift", "half"], ["--shift", "lam:0.1"], ["--shift", "noisy:0.5"],
                                   ["--sketch", "gaussian", "--step", "0.05"]])
def test_prune_options(tmp_path, extra):
    """Every --step form and every --shift form of `mast prune --help` runs."""
    res = CliRunner().invoke(cli, TINY + ["-o", str(tmp_path / "o")] + extra)
    assert res.exit_code == 0, res.output
    df = pd.read_csv(tmp_path / "o" / "pruning.csv")
    assert len(df) == 3 * 4 and df.test_accuracy.between(0, 1).all()
    if extra[:2] == ["--step", "0.1"]:
        assert (df.step_size == 0.1).all()


def test_prune_config_file_takes_prune_keys(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text('masks = 3\nval_fraction = 0.1\niters = 10\nsparsity = [0.5]\ndropout_baseline = true\n')
    res = CliRunner().invoke(cli, ["prune", "--config", str(cfg), "-d", "a1a", "-o", str(tmp_path / "o"), "-q"])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(tmp_path / "o" / "pruning.csv")
    assert set(df["mask"]) == {0, 1, 2}
    assert {"dropout-scaled", "dropout-unscaled"} <= set(df.formulation)


def test_gaussian_param_is_sigma_as_in_run_rows():
    """A Gaussian sketch's ``param`` is its σ in prune rows, as in mast run rows (it was NaN)."""
    from mast_cli.experiments.prune import PruneConfig, compute_prune_unit, plan_prune
    from mast_cli.experiments.trajectories import sketch_param
    from mast_cli.io.outputs import read_results_csv
    from mast_cli.sketches import make_sketch

    cfg = PruneConfig(dataset="a1a", sketch="gaussian", sparsity=[0.5], masks=2, iters=5, step="0.1")
    (_, spec), = plan_prune(cfg)[0]
    rows = read_results_csv(compute_prune_unit(spec))
    sigma = make_sketch("gaussian", 119, sparsity=0.5).params()["sigma"]
    assert np.isfinite(sigma) and sigma > 0
    assert (rows["param"] == sigma).all()
    assert sketch_param(make_sketch("gaussian", 119, sparsity=0.5)) == sigma
