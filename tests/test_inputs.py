"""Issue 16: input classes from public bug reports, each a minimal fixture.

Every case goes through the CLI in-process and must end either with exit 0 and
finite, certified numbers, or with exit 2 and one line ``Error: ...`` naming the
value (never exit 1, never a traceback, nothing written).
"""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from mast_cli.cli import cli

# --- the minimal inputs ----------------------------------------------------------------
UNSCALED = "+1 1:1e90 2:0.5\n-1 1:-1 2:1\n+1 2:0.5\n-1 1:0.3 2:-0.2\n+1 1:0.2 2:-1\n"
SEPARABLE = "+1 1:1\n-1 1:-1\n"
HUGE_INDEX = "+1 1:0.5\n-1 1000000000:1\n"
HUGE_VALUE = "+1 1:1e200 2:0.5\n-1 1:-1 2:1\n+1 2:0.5\n-1 1:0.3 2:-0.2\n"
NO_FEATURES = "+1\n-1\n+1 \n-1\n"
SIX = "+1 1:0.5 3:1 6:0.2\n-1 2:1 4:0.3\n+1 5:1 6:-0.4\n-1 1:-0.3 2:0.7\n+1 3:0.1 4:1\n-1 1:0.2 6:1\n"


def _mast(*args, env=None):
    res = CliRunner().invoke(cli, [str(a) for a in args], env=env)
    return res.exit_code, res.output


def _one_line_error(code, out, *needles):
    assert code == 2, out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), out
    assert "Traceback" not in out
    for needle in needles:
        assert needle in out, out


@pytest.fixture
def write(tmp_path):
    def make(name, text):
        p = tmp_path / name
        p.write_text(text)
        return p
    return make


# --- 5: names listed by `mast datasets` load by that name ---------------------------------------
def test_listed_txt_name_loads_by_name(tmp_path, monkeypatch, write):
    data = tmp_path / "data"
    data.mkdir()
    (data / "toy.txt").write_text(SIX)
    (data / "MANIFEST.tsv").write_text("name\tsha\ntoy.txt\t0\n")
    (data / "README.md").write_text("# my data\n")
    (data / "notes").write_text("These are notes, not data.\n")
    monkeypatch.chdir(tmp_path)           # toy.txt is not in the current folder
    env = {"MAST_DATA_DIR": str(data)}
    code, out = _mast("datasets", "--json", env=env)
    assert code == 0, out
    rows = {r["name"]: r for r in json.loads(out)}
    assert "MANIFEST.tsv" not in rows and "README.md" not in rows and "notes" not in rows
    assert rows["toy.txt"]["d"] == 6 and "unreadable" not in rows["toy.txt"]["where"]
    for name, row in rows.items():          # every listed name loads by that name
        if row["where"].startswith("MAST_DATA_DIR"):
            code, out = _mast("constants", "-d", name, "--json", env=env)
            assert code == 0, (name, out)
    code, out = _mast("constants", "-d", "missing.svm", env=env)
    _one_line_error(code, out, "missing.svm")


# --- 6: labels but no features ------------------------------------------------------------------
@pytest.mark.parametrize("text", [NO_FEATURES, "+1 1:0\n-1 2:0\n"])
def test_labels_without_features_refused(write, text):
    p = write("nofeat.svm", text)
    code, out = _mast("constants", "-d", p)
    _one_line_error(code, out, "no nonzero feature values")


# --- 7: published widths only for names ---------------------------------------------------------
def test_path_keeps_its_own_width(tmp_path, write):
    p = write("a1a", SIX)
    code, out = _mast("constants", "-d", p, "--json")
    assert code == 0, out
    assert json.loads(out)["d"] == 6


def test_expected_width_says_where_it_comes_from(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    lines = [f"{'+1' if i % 2 else '-1'} " + " ".join(f"{j}:{rng.random():.3f}" for j in range(1, 51))
             for i in range(10)]
    (data / "heart").write_text("\n".join(lines) + "\n")
    code, out = _mast("constants", "-d", "heart", env={"MAST_DATA_DIR": str(data)})
    _one_line_error(code, out, "50 features", "13", "published LIBSVM width of 'heart'")
    code, out = _mast("constants", "-d", data / "heart", "--json")
    assert code == 0 and json.loads(out)["d"] == 50, out


def test_explicit_n_features(write):
    p = write("six.svm", SIX)
    code, out = _mast("constants", "-d", p, "--n-features", "10", "--json")
    assert code == 0 and json.loads(out)["d"] == 10, out
    code, out = _mast("constants", "--n-features", "3", "-d", p)
    _one_line_error(code, out, "6 features", "--n-features 3")
    code, out = _mast("constants", "-d", p, "--n-features", "10", "--scale", "maxabs", "--json")
    assert code == 0 and json.loads(out)["d"] == 10 and json.loads(out)["dataset"].endswith("+maxabs"), out


# --- 8: explicit zeros dropped ------------------------------------------------------------------
def test_explicit_zeros_are_not_counted(write):
    from mast_cli.data import load_dataset

    p = write("zeros.svm", "+1 1:0 2:1 3:0.0\n-1 1:1 2:-0 3:0\n+1 3:2\n")
    ds = load_dataset(str(p))
    assert ds.nnz == 3 and np.all(ds.X.data != 0)


# --- 1: unconverged solves are never reported as exact ------------------------------------------
def _f(X, y, lam, x):
    z = y * (X @ x)
    return float(np.mean(np.logaddexp(0.0, -z)) + 0.5 * lam * x @ x)


def test_unscaled_feature_gets_the_certified_minimum(write):
    p = write("unscaled.svm", UNSCALED)
    code, out = _mast("constants", "-d", p, "--json")
    assert code == 0, out
    res = json.loads(out)
    assert res["grad_norm_at_x_star"] <= res["grad_tol_at_x_star"] <= 1e-10
    # the point (1.18523101, −0.68188822) has f = 0.46625...: the minimum is not above it
    from mast_cli.io.data import load_dataset

    ds = load_dataset(str(p))
    assert res["f_inf"] <= _f(ds.X, ds.y, 1e-3, np.array([1.18523101, -0.68188822])) + 1e-12
    assert res["f_inf"] < 0.4700           # the unconverged value was 0.47748


def test_uncertified_solve_stops_with_the_gradient_norm(monkeypatch):
    """If even the safeguarded retry fails, every consumer stops with exit 2 naming ‖∇‖."""
    from mast_cli.solvers import certify

    monkeypatch.setattr(certify, "robust_newton",
                        lambda vg, h, hp, x0, tol, max_iter=600, factor=None: (x0, {"grad_norm": 66.45}))
    monkeypatch.setattr(certify, "CERT_TOL", 1e-30)
    from mast_cli.experiments.problem import clear_cache

    clear_cache()
    for args in (["constants", "-d", "heart_scale"],
                 ["run", "-d", "heart_scale", "--sparsity", "0.5", "--iters", "5", "--seeds", "1", "-q", "-o", "unused-out"]):
        code, out = _mast(*args)
        _one_line_error(code, out, "did not converge", "‖∇‖ =")
    clear_cache()


def test_pool_solve_is_certified():
    from mast_cli.core.objective import make_objective
    from mast_cli.io.data import load_dataset
    from mast_cli.solvers.pool import solve_pool

    ds = load_dataset("heart_scale")
    obj = make_objective("logreg", ds.X, ds.y, 1e-3)
    S = np.random.default_rng(0).binomial(1, 0.5, size=(16, obj.d)) / 0.5
    x, info = solve_pool(obj, S, np.zeros(obj.d))
    assert info["certified"] and info["grad_norm"] <= info["grad_tol"] <= 1e-10


# --- 2: λ = 0 without a minimizer ------------------------------------------------------------
def test_lambda_zero_on_separable_data_refused(write):
    p = write("sep.svm", SEPARABLE)
    code, out = _mast("constants", "-d", p, "--lam", "0")
    _one_line_error(code, out, "separable", "no minimizer")
    code, out = _mast("run", "-d", p, "--lam", "0", "--iters", "5", "--seeds", "1", "-q", "-o", p.parent / "o")
    _one_line_error(code, out, "separable")
    assert not (p.parent / "o").exists()


def test_lambda_zero_rank_deficient_reports_minimum_norm(write):
    # columns 1 and 2 are equal: minimizers form a line; the minimum-norm one has x1 = x2
    p = write("rd.svm", "+1 1:1 2:1\n-1 1:1 2:1\n+1 1:-1 2:-1\n-1 1:2 2:2\n+1 1:0.5 2:0.5\n")
    code, out = _mast("constants", "-d", p, "--lam", "0", "--json")
    assert code == 0, out
    res = json.loads(out)
    assert res["minimizer"] == "minimum-norm"
    from mast_cli.core.objective import make_objective
    from mast_cli.io.data import load_dataset
    from mast_cli.solvers.newton import solve_erm

    ds = load_dataset(str(p))
    x, info = solve_erm(make_objective("logreg", ds.X, ds.y, 0.0))
    assert abs(x[0] - x[1]) <= 1e-10 * max(1, abs(x[0]))


# --- 3: memory estimated before allocating -------------------------------------------------
def test_huge_index_refused_quickly_with_the_estimate(write):
    import time

    p = write("huge.svm", HUGE_INDEX)
    t0 = time.perf_counter()
    code, out = _mast("constants", "-d", p, env={"MAST_MEMORY_LIMIT": "2G"})
    assert time.perf_counter() - t0 < 5
    _one_line_error(code, out, "memory", "available", "d = 1000000000")


@pytest.mark.parametrize("args, needle", [
    (["--seeds", "1000000000"], "1000000000 trajectories"),
    (["--eval-sketches", "100000000"], "evaluation sketches"),
    (["--iters", str(10 ** 20)], "iters"),
    (["-a", "vr", "--sketch", "rand-k", "--k", "3", "--sketch-pool", str(10 ** 8)], "pool"),
])
def test_astronomical_counts_refused(tmp_path, args, needle):
    out_dir = tmp_path / "o"
    base = ["run", "-d", "heart_scale", "--iters", "5", "--seeds", "1", "-q", "-o", out_dir]
    if "--sketch" not in args:
        base += ["--sketch", "bernoulli", "--p", "0.5"]
    code, out = _mast(*base, *args, env={"MAST_MEMORY_LIMIT": "4G"})
    _one_line_error(code, out, needle)
    assert not out_dir.exists()


def test_prune_masks_and_verify_seeds_refused(tmp_path):
    code, out = _mast("prune", "-d", "a1a", "--masks", str(10 ** 12), "--sparsity", "0.5", "-q",
                      "-o", tmp_path / "p", env={"MAST_MEMORY_LIMIT": "4G"})
    _one_line_error(code, out, "masks")
    code, out = _mast("verify", "-d", "heart_scale", "--seeds", str(10 ** 12), "-o", tmp_path / "v")
    _one_line_error(code, out, "--seeds")


def test_no_dense_d_by_d_path_for_large_d():
    """solve_pool in CG mode with d > DENSE_D uses a diagonal preconditioner, no d × d matrix."""
    import scipy.sparse as sp

    from mast_cli.core.objective import make_objective
    from mast_cli.core.pool import PoolObjective
    from mast_cli.solvers.pool import solve_pool

    rng = np.random.default_rng(1)
    n, d = 60, 5000
    A = sp.random(n, d, density=0.002, random_state=2, format="csr") + sp.eye(n, d, format="csr")
    obj = make_objective("logreg", A, np.where(rng.random(n) < 0.5, -1.0, 1.0), 1e-2)

    def boom(self, x):
        raise AssertionError("dense d × d preconditioner formed")

    orig = PoolObjective.preconditioner
    PoolObjective.preconditioner = boom
    try:
        S = rng.binomial(1, 0.5, size=(4, d)) / 0.5
        x, info = solve_pool(obj, S, np.zeros(d), hessian="cg")
    finally:
        PoolObjective.preconditioner = orig
    assert info["certified"]


# --- 4: huge finite values ------------------------------------------------------------------
def test_huge_finite_value_is_a_clear_error(write):
    import warnings

    p = write("huge_value.svm", HUGE_VALUE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, out = _mast("constants", "-d", p)
    _one_line_error(code, out, "1e+200", "--scale maxabs")
    assert "RuntimeWarning" not in out


# --- 9: interruption ----------------------------------------------------------------------------
def test_interrupted_prune_leaves_no_empty_folder(tmp_path, monkeypatch):
    from mast_cli.experiments import prune

    def interrupt(spec):
        raise KeyboardInterrupt

    monkeypatch.setattr(prune, "compute_prune_unit", interrupt)
    out_dir = tmp_path / "deep" / "prune"
    code, out = _mast("prune", "-d", "a1a", "--masks", "2", "--sparsity", "0.5", "--iters", "5", "-q",
                      "-o", out_dir)
    assert code == 130, out
    assert "nothing was written" in out and "resume" not in out
    assert not (tmp_path / "deep").exists()


def test_interrupted_verify_does_not_promise_a_resume(tmp_path, monkeypatch):
    import mast_cli.verify as verify_mod

    def interrupt(cfg, progress=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(verify_mod, "verify_dataset", interrupt)
    code, out = _mast("verify", "-d", "heart_scale", "--quick", "-o", tmp_path / "v")
    assert code == 130 and "resume" not in out and "nothing was written" in out, out


def test_verify_on_wide_data_refused_before_the_dense_pool_hessian(write, tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for i in range(40):
        idx = np.sort(rng.choice(np.arange(1, 40001), 5, replace=False))
        lines.append(("+1" if i % 2 else "-1") + " " + " ".join(f"{j}:{rng.random():.3f}" for j in idx))
    p = write("wide.svm", "\n".join(lines) + "\n")
    code, out = _mast("verify", "-d", p, "--quick", "-q", "-o", tmp_path / "v", env={"MAST_MEMORY_LIMIT": "4G"})
    _one_line_error(code, out, "sketch-pool reference", "GiB of memory", "available")
    assert not (tmp_path / "v").exists()
