"""``mast plot``: figures from results folders."""

from __future__ import annotations

from pathlib import Path

import click

from ..io.errors import MastError
from ._common import explicit

#: results files whose figure has no --metric choice (what each one plots)
_FIXED_METRIC = {"pruning.csv": "pruning results (boxplots of the sparsified models' test accuracy)",
                 "delta.csv": "Δ-study results (f_D^inf − f^inf against sparsity)"}


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path())
@click.option("--metric", default="erm_loss", show_default=True,
              help="Convergence metric of `mast run` results: erm_loss, grad_norm_sq, dist_sq, mast_loss "
                   "or test_accuracy.")
@click.option("--out", "-o", default="plots", show_default=True, help="Folder for the PDF/PNG files.")
@click.option("--name", default=None, help="File name stem (default: the results folder's name).")
@click.option("--x", "x_axis", type=click.Choice(["iteration", "epochs", "coords", "time"]), default="iteration",
              show_default=True, help="x axis of convergence figures: iterations, passes over the data, "
              "coordinates of sparse models computed (Σ nnz(S_t)), or wall time of the steps.")
@click.pass_context
def plot(ctx, results, metric, out, name, x_axis):
    """Draw figures from results folders (CSV only; nothing is recomputed).

    Writes OUT/<results folder>-<metric>.pdf/.png and the plotted numbers as .csv.
    """
    for r in results:                 # before the heavy imports: a mistyped path fails at once
        if not Path(r).is_dir():
            what = "is not a folder" if Path(r).exists() else "does not exist"
            raise MastError(f"results folder '{r}' {what}")
    if explicit(ctx, "metric"):
        for r in results:
            for fname, what in _FIXED_METRIC.items():
                if (Path(r) / fname).is_file():
                    raise MastError(f"--metric {metric} applies to `mast run` results; '{r}' holds {what}, "
                                    "drop --metric")
    from ..io.outputs import check_out_path
    from ..plotting import plot_results

    check_out_path(out)
    written = plot_results([str(r) for r in results], metric=metric, out=out, name=name, x=x_axis)
    for path in written:
        click.echo(str(path))
