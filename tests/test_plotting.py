import pandas as pd
import pytest
from click.testing import CliRunner

from mast_cli.cli import cli


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("res") / "run"
    res = CliRunner().invoke(cli, ["run", "-d", "a1a", "--sketch", "rand-k", "--sparsity", "0.3,0.7",
                                   "--iters", "30", "--seeds", "3", "--eval-sketches", "3", "-q",
                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    return out


@pytest.mark.parametrize("metric", ["erm_loss", "mast_loss", "dist_sq", "test_accuracy"])
def test_plot_writes_files(results, tmp_path, metric):
    res = CliRunner().invoke(cli, ["plot", str(results), "--metric", metric, "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    pdf, png, csv = (tmp_path / f"run-{metric}.{e}" for e in ("pdf", "png", "csv"))
    assert pdf.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    stats = pd.read_csv(csv)
    # the plotted median is the median over seeds of the CSV values (minus the optimum)
    df = pd.read_csv(results / "trajectories.csv")
    assert len(stats) == df.groupby(["sparsity", "iteration"]).ngroups
    assert (stats.q10 <= stats["median"] + 1e-15).all() and (stats["median"] <= stats.q90 + 1e-15).all()


def test_plot_errors(results, tmp_path):
    res = CliRunner().invoke(cli, ["plot", str(tmp_path / "none")])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = CliRunner().invoke(cli, ["plot", str(results), "--metric", "dist_sq_mast"])
    assert res.exit_code == 2 and "available" in res.output


def test_step_sparsity_heatmap_marks_divergence(tmp_path):
    out = tmp_path / "grid"
    res = CliRunner().invoke(cli, ["run", "-d", "a1a", "--sketch", "bernoulli", "--sparsity", "0.2,0.8",
                                   "--step", "0.5,1e5", "--iters", "150", "--seeds", "2", "--lam", "0.01",
                                   "--eval-sketches", "0", "-q", "-o", str(out)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["plot", str(out), "-o", str(tmp_path / "p")])
    assert res.exit_code == 0, res.output
    cells = pd.read_csv(tmp_path / "p" / "grid-erm_loss-heatmap.csv")
    assert len(cells) == 4
    assert cells[cells.step_label == "100000.0"].diverged.all()
    assert not cells[cells.step_label == "0.5"].diverged.any()
    df = pd.read_csv(out / "trajectories.csv")
    assert (df[df.step_label == "100000.0"].status == "diverged").all()
    assert (df[df.step_label == "100000.0"].diverged_at > 0).all()


def test_mast_loss_minus_its_exact_minimum(results):
    """metadata holds the exact minimum of each level's mast_loss estimate (pool Newton):
    no logged mast_loss can be below it."""
    import json

    meta = json.loads((results / "metadata.json").read_text())
    ref = meta["mast_loss_inf"]
    df = pd.read_csv(results / "trajectories.csv")
    assert len(ref) == 2
    for (sk, s), g in df.groupby(["sketch", "sparsity"]):
        key = f"{sk}|{round(float(s), 10)!r}"
        assert (g.mast_loss >= ref[key] - 1e-12).all() and ref[key] >= meta["f_inf"]
