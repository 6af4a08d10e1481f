"""`mast reproduce`: a miniature suite end to end, resume after interruption, joblib == dask."""

import shutil

import pytest
from click.testing import CliRunner

from mast_cli import suite
from mast_cli.cli import cli

PRUNE = """kind = "prune"
figure = "Fig. 1"
caption = "tiny pruning"
[config]
sketch = "bernoulli"
sparsity = [0.0, 0.5, 0.8]
masks = 10
iters = 30
"""
RUN = """kind = "run"
figure = "Fig. X"
caption = "tiny run"
metric = "erm_loss"
[config]
sketch = "rand-k"
sparsity = [0.3, 0.7]
step = ["theory", "2x"]
iters = 20
seeds = 2
log_every = 5
eval_sketches = 2
unit_size = 3
"""


@pytest.fixture
def exp_dir(tmp_path):
    d = tmp_path / "experiments"
    d.mkdir()
    (d / "tiny_prune.toml").write_text(PRUNE)
    (d / "tiny_run.toml").write_text(RUN)
    return d


def _csvs(root):
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.glob("*/*.csv"))}


def _reproduce(exp_dir, tmp_path, tag, **kw):
    exps = suite.load_suite(exp_dir, dataset="a1a")
    return suite.reproduce(exps, tmp_path / f"res-{tag}", tmp_path / f"plots-{tag}", **kw)


def test_cli_reproduce_end_to_end(exp_dir, tmp_path):
    res = CliRunner().invoke(cli, ["reproduce", "-d", "a1a", "--experiments", str(exp_dir), "--results",
                                   str(tmp_path / "r"), "--plots", str(tmp_path / "p"), "-q"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "tiny_prune" / "pruning.csv").is_file()
    assert (tmp_path / "r" / "tiny_run" / "trajectories.csv").is_file()
    for stem in ("tiny_prune", "tiny_run"):
        assert (tmp_path / "p" / f"{stem}.png").stat().st_size > 1000
        assert (tmp_path / "p" / f"{stem}.pdf").is_file() and (tmp_path / "p" / f"{stem}.csv").is_file()
    readme = (tmp_path / "p" / "README.md").read_text()
    assert "tiny pruning" in readme and "tiny_run.toml" in readme
    assert "wall time" in res.output
    # a second run computes nothing
    res = CliRunner().invoke(cli, ["reproduce", "-d", "a1a", "--experiments", str(exp_dir), "--results",
                                   str(tmp_path / "r"), "--plots", str(tmp_path / "p")])
    assert "0 of 6 units computed" in res.output
    # an --only run keeps the other experiments' entries in plots/README.md
    res = CliRunner().invoke(cli, ["reproduce", "-d", "a1a", "--experiments", str(exp_dir), "--results",
                                   str(tmp_path / "r"), "--plots", str(tmp_path / "p"), "--only", "tiny_run"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "p" / "README.md").read_text() == readme


def test_interrupted_suite_resumes_to_same_result(exp_dir, tmp_path, monkeypatch):
    full = _reproduce(exp_dir, tmp_path, "full", plot=False)
    assert full["units_run"] == 6
    calls = {"n": 0}
    real = suite.compute_unit

    def flaky(spec):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(spec)

    monkeypatch.setattr(suite, "compute_unit", flaky)
    with pytest.raises(KeyboardInterrupt):
        _reproduce(exp_dir, tmp_path, "cut", plot=False)
    monkeypatch.setattr(suite, "compute_unit", real)
    done = list((tmp_path / "res-cut").glob("*/*/result.csv"))
    assert len(done) == 4 and not list((tmp_path / "res-cut").glob("*/.*.tmp"))
    again = _reproduce(exp_dir, tmp_path, "cut", plot=False)
    assert again["units_run"] == 2
    assert _csvs(tmp_path / "res-full") == _csvs(tmp_path / "res-cut")


def test_joblib_and_dask_equal(exp_dir, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    a = _reproduce(exp_dir, tmp_path, "jobs", jobs=2, plot=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        b = _reproduce(exp_dir, tmp_path, "dask", scheduler=client, plot=False)
    assert a["units_run"] == b["units_run"] == 6
    seq = _reproduce(exp_dir, tmp_path, "seq", plot=False)
    assert _csvs(tmp_path / "res-jobs") == _csvs(tmp_path / "res-dask") == _csvs(tmp_path / "res-seq")


def test_bad_suite_input(exp_dir, tmp_path):
    (exp_dir / "broken.toml").write_text("kind = 'prune'\n[config]\nmasks = 0\n")
    res = CliRunner().invoke(cli, ["reproduce", "-d", "a1a", "--experiments", str(exp_dir),
                                   "--results", str(tmp_path / "r")])
    assert res.exit_code == 2 and "masks 0" in res.output and not (tmp_path / "r").exists()
    # the checks of `mast prune` that need the data (here: the theory step of a Gaussian sketch at
    # sparsity 0.5) run before the first unit, also for the sparsity-0 level that would succeed
    (exp_dir / "broken.toml").write_text("kind = 'prune'\n[config]\nsketch = 'gaussian'\nsparsity = [0.0, 0.5]\n")
    res = CliRunner().invoke(cli, ["reproduce", "-d", "a1a", "--experiments", str(exp_dir),
                                   "--results", str(tmp_path / "r")])
    assert res.exit_code == 2 and "Gaussian" in res.output and not (tmp_path / "r").exists()
    res = CliRunner().invoke(cli, ["reproduce", "--experiments", str(exp_dir), "--only", "nope"])
    assert res.exit_code == 2 and "unknown experiment 'nope'" in res.output
    shutil.rmtree(exp_dir)
    res = CliRunner().invoke(cli, ["reproduce", "--experiments", str(exp_dir)])
    assert res.exit_code == 2 and "does not exist" in res.output
