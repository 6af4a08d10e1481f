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
    if metric == "test_accuracy":     # x⁰ = 0 has accuracy 0: not plotted (see below)
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


def _info(png):
    """The figure description save_figure writes into the PNG (number of axes, legend, title)."""
    import json

    from PIL import Image

    text = Image.open(png).text
    return int(text["mast-axes"]), json.loads(text["mast-legend"]), text["mast-title"], \
        json.loads(text["mast-ylabels"])


def test_one_swept_parameter_is_one_axes(results, tmp_path):
    """`make run`'s shape: a sparsity sweep with the theory step (a different γ per level) is one
    axes with one curve per level, each named by its rule; the title names the run."""
    res = CliRunner().invoke(cli, ["plot", str(results), "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    n_axes, legend, title, ylabels = _info(tmp_path / "run-erm_loss.png")
    df = pd.read_csv(results / "trajectories.csv")
    assert df.step_size.nunique() == 2            # the two levels have different theory steps
    assert n_axes == 1
    curves = [t for t in legend if "seeds" not in t]
    assert len(curves) == 2
    for s, k in df.groupby("sparsity").param.first().items():
        want = f"$K = {int(k)}$ (sparsity {s:.0%})"
        assert any(want in t and "theory step $\\gamma = " in t for t in curves), (want, curves)
    for part in ("Algorithm 1 (I) on a1a", "rand-k sketch", "$\\lambda = 0.001$", "3\u00a0seeds", "10–90%"):
        assert part in title
    assert ylabels == ["$f(x^t) - f^{\\inf}$"]
    stats = pd.read_csv(tmp_path / "run-erm_loss.csv")
    assert stats.label.nunique() == 2 and "step_label" not in stats.columns[:2]


def test_accuracy_starts_where_it_means_something(results, tmp_path):
    """x⁰ = 0 classifies nothing (accuracy 0 at t = 0): the figure starts at the first t > 0 and
    says so; its median is the median over seeds of the CSV there."""
    res = CliRunner().invoke(cli, ["plot", str(results), "--metric", "test_accuracy", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(results / "trajectories.csv")
    assert (df[df.iteration == 0].test_accuracy == 0).all()
    stats = pd.read_csv(tmp_path / "run-test_accuracy.csv")
    first = df[df.iteration > 0].iteration.min()
    assert stats.iteration.min() == first
    for s, g in stats[stats.iteration == first].groupby("sparsity"):
        vals = df[(df.iteration == first) & (df.sparsity.round(10) == s)].test_accuracy
        assert g["median"].iloc[0] == pytest.approx(vals.median())
    assert "first logged t > 0" in _info(tmp_path / "run-test_accuracy.png")[2]


def test_two_swept_parameters_get_panels(tmp_path):
    """Sparsity × step rule: one panel per level, one colour per rule (named without γ, which
    differs per panel; each panel title gives the γ of its rules); and the heatmap."""
    out = tmp_path / "grid"
    res = CliRunner().invoke(cli, ["run", "-d", "a1a", "--sparsity", "0.2,0.8", "--step", "theory,2x",
                                   "--iters", "20", "--seeds", "2", "--eval-sketches", "0", "-q", "-o", str(out)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["plot", str(out), "-o", str(tmp_path / "p")])
    assert res.exit_code == 0, res.output
    n_axes, legend, title, _ = _info(tmp_path / "p" / "grid-erm_loss.png")
    assert n_axes == 2
    assert [t for t in legend if "seeds" not in t] == ["theory step", "2× theory step"]
    assert _info(tmp_path / "p" / "grid-erm_loss-heatmap.png")[0] == 1


def test_all_diverged_or_empty_results_are_refused(tmp_path):
    out = tmp_path / "div"
    res = CliRunner().invoke(cli, ["run", "-d", "a1a", "--sparsity", "0.5", "--step", "1e5", "--iters", "300",
                                   "--seeds", "2", "--eval-sketches", "0", "-q", "-o", str(out)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["plot", str(out), "-o", str(tmp_path / "p")])
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and "Error: every trajectory" in res.output and "diverged" in res.output
    assert not (tmp_path / "p").exists()
    head = (out / "trajectories.csv").read_text().splitlines()[0]
    (out / "trajectories.csv").write_text(head + "\n")
    res = CliRunner().invoke(cli, ["plot", str(out), "-o", str(tmp_path / "p")])
    assert res.exit_code == 2 and "holds no trajectories" in res.output and not (tmp_path / "p").exists()


def test_long_labels_are_wrapped(results, tmp_path):
    from mast_cli.plotting import wrap_label

    label = r"$f_{\mathcal{D}}(x^t) - f_{\mathcal{D}}^{\inf}$ (on fixed evaluation sketches)"
    assert wrap_label(label, 30, at_paren=True).split("\n") == [label.split(" (")[0],
                                                                  "(on fixed evaluation sketches)"]
    assert wrap_label("a $b c d$ e", 3) == "a\n$b c d$\ne"       # never inside mathtext
    res = CliRunner().invoke(cli, ["plot", str(results), "--metric", "mast_loss", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    (ylabel,) = _info(tmp_path / "run-mast_loss.png")[3]
    assert ylabel.count("\n") == 1
