"""``mast constants`` and ``mast datasets``: look at a dataset before running anything."""

from __future__ import annotations

import json

import click

from ..io.errors import MastError
from ._common import (check_lam, dataset_option, lam_option, objective_option, one_value,
                      precheck_dataset, sketch_options)


@click.command()
@dataset_option
@lam_option
@objective_option
@sketch_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def constants(dataset, lam, objective, sketch, p, k, workers, sigma, sparsity, as_json):
    """Print the paper's constants (L_f, μ_f, L_D, μ_D, L_S^max, f^inf, ...) for a dataset."""
    check_lam(lam)
    precheck_dataset(dataset)
    if sketch is None and any(v is not None for v in (p, k, workers, sigma, sparsity)):
        raise MastError("sketch parameters were given without --sketch")
    from ..constants import compute_constants
    from ..core.objective import make_objective
    from ..core.sketches import make_sketch
    from ..io.data import load_dataset

    ds = load_dataset(dataset)
    obj = make_objective(objective, ds.X, ds.y, lam)
    sk = None
    if sketch is not None:
        sk = make_sketch(sketch, ds.d, p=one_value(p, "--p"), k=one_value(k, "--k"), workers=workers,
                         sigma=sigma, sparsity=one_value(sparsity, "--sparsity"))
    out = {"dataset": ds.name, **compute_constants(obj, sk)}
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    width = max(len(key) for key in out)
    for key, val in out.items():
        shown = f"{val:.6g}" if isinstance(val, float) else ("inf" if val is None else str(val))
        click.echo(f"{key:<{width}}  {shown}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def datasets(as_json):
    """List bundled, $MAST_DATA_DIR and libsvmdata-cached datasets (n, d, nnz, source).

    `scaled` says whether every feature value lies in [-1, 1]; for an unscaled set
    (e.g. breast-cancer) pass `--scale maxabs` to any command.
    """
    from ..io.listing import list_datasets

    def stats(name):                  # a file not in the size cache: parse it
        from ..io.data import dataset_stats

        return dataset_stats(name)

    rows = list_datasets(stats)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'name':<16} {'n':>8} {'d':>6} {'nnz':>9} {'n_test':>8}  {'scaled':<22}  where")
    for r in rows:
        fmt = lambda v: "?" if v is None else str(v)  # noqa: E731
        n_test = "-" if r["n_test"] is None and r["n"] is not None else fmt(r["n_test"])
        scaled = ("?" if r.get("scaled") is None else "yes" if r["scaled"]
                  else f"no (max |x| {r['max_abs']:.3g})")
        click.echo(f"{r['name']:<16} {fmt(r['n']):>8} {fmt(r['d']):>6} {fmt(r['nnz']):>9} "
                   f"{n_test:>8}  {scaled:<22}  {r['where']}")
