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
    if metric == "test_accuracy":      # x⁰ = 0 classifies nothing: t = 0 is left out (issue 18)
        df = df[df.iteration > 0]
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


# --- issue 18: what the figures show ---------------------------------------------------------

def _plot(folder, tmp_path, *extra):
    res = CliRunner().invoke(cli, ["plot", str(folder), "-o", str(tmp_path / "fig"), *extra])
    return res


def test_sparsity_sweep_is_one_axes_one_colour_per_level(results, tmp_path):
    """The theory step differs per level, but only sparsity is swept: one axes, labels name the rule."""
    assert _plot(results, tmp_path).exit_code == 0
    stats = pd.read_csv(tmp_path / "fig" / "run-erm_loss.csv")
    assert set(stats["axes"]) == {0}
    df = pd.read_csv(results / "trajectories.csv")
    assert stats.curve.nunique() == df.sparsity.nunique() == 2
    for s, g in stats.groupby("sparsity"):
        gamma = df[(df.sparsity - s).abs() < 1e-9].step_size.iloc[0]
        assert g.curve.nunique() == 1
        assert g.curve.iloc[0] == f"sparsity {s:.0%}, theory step γ = {gamma:.3g}"
    # the plotted median is the median over seeds of f(x) − f^inf
    import json

    f_inf = json.loads((results / "metadata.json").read_text())["f_inf"]
    last = df[df.iteration == df.iteration.max()]
    for s, g in last.groupby("sparsity"):
        row = stats[((stats.sparsity - s).abs() < 1e-9) & (stats.iteration == df.iteration.max())]
        assert abs(row["median"].iloc[0] - (g.erm_loss - f_inf).median()) <= 1e-12


def test_accuracy_starts_after_t0_when_x0_is_zero(results, tmp_path):
    assert _plot(results, tmp_path, "--metric", "test_accuracy").exit_code == 0
    stats = pd.read_csv(tmp_path / "fig" / "run-test_accuracy.csv")
    assert stats.iteration.min() > 0 and stats["median"].min() > 0.5


def test_step_and_sparsity_sweep_is_one_panel_per_level(tmp_path):
    out = tmp_path / "grid2"
    res = CliRunner().invoke(cli, ["run", "-d", "heart_scale", "--sketch", "bernoulli", "--sparsity", "0.2,0.6",
                                   "--step", "theory,2x", "--iters", "20", "--seeds", "2", "-q", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert _plot(out, tmp_path).exit_code == 0
    stats = pd.read_csv(tmp_path / "fig" / "grid2-erm_loss.csv")
    assert set(stats["axes"]) == {0, 1}
    assert {c.split(" (")[0] for c in stats.curve} == {"theory step", "2× theory step"}


def test_all_diverged_and_empty_results_are_clear_errors(tmp_path):
    out = tmp_path / "div"
    res = CliRunner().invoke(cli, ["run", "-d", "a1a", "--sketch", "bernoulli", "--p", "0.5", "--step", "1e6",
                                   "--lam", "0.01", "--iters", "200", "--seeds", "2", "--eval-sketches", "2",
                                   "-q", "-o", str(out)])
    assert res.exit_code == 0, res.output
    res = _plot(out, tmp_path)
    assert res.exit_code == 2 and "all 2 trajectories" in res.output and "diverged" in res.output
    assert not (tmp_path / "fig").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    header = (out / "trajectories.csv").read_text().splitlines()[0]
    (empty / "trajectories.csv").write_text(header + "\n")
    res = _plot(empty, tmp_path)
    assert res.exit_code == 2 and "has no rows" in res.output
