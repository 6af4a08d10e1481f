"""``mast plot``: figures from results folders."""

from __future__ import annotations

import click


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path())
@click.option("--metric", default="erm_loss", show_default=True,
              help="erm_loss, grad_norm_sq, dist_sq, mast_loss or test_accuracy.")
@click.option("--out", "-o", default="plots", show_default=True, help="Folder for the PDF/PNG files.")
@click.option("--name", default=None, help="File name stem (default: from the results folder).")
@click.option("--x", "x_axis", type=click.Choice(["iteration", "epochs", "coords", "time"]), default="iteration",
              show_default=True, help="x axis of convergence figures: iterations, passes over the data, "
              "coordinates of sparse models computed (Σ nnz(S_t)), or wall time of the steps.")
def plot(results, metric, out, name, x_axis):
    """Draw figures from results folders (CSV only; nothing is recomputed)."""
    from ..io.outputs import check_out_path
    from ..plotting import plot_results

    check_out_path(out)
    written = plot_results([str(r) for r in results], metric=metric, out=out, name=name, x=x_axis)
    for path in written:
        click.echo(str(path))
