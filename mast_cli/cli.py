"""Command-line interface: parse options, call library code, print or write results.

No mathematics lives here.  Heavy modules are imported inside the commands so
that ``mast --help`` stays instant.  Every user error is reported as one line
``Error: ...`` with exit code 2 (see :class:`MastGroup`).
"""

from __future__ import annotations

import json
import sys

import click

from . import __version__
from .errors import MastError

__all__ = ["main", "cli"]


class MastGroup(click.Group):
    """Click group that reports every error as one line, never a traceback."""

    def main(self, args=None, prog_name=None, **extra):
        extra.pop("standalone_mode", None)
        try:
            rv = super().main(args=args, prog_name=prog_name, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except (click.exceptions.Abort, KeyboardInterrupt):
            click.echo("Error: interrupted; finished work was kept, rerun to resume", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            msg = " ".join(exc.format_message().split())
            click.echo(f"Error: {msg}", err=True)
            sys.exit(exc.exit_code)
        except MastError as exc:
            click.echo(f"Error: {' '.join(str(exc).split())}", err=True)
            sys.exit(exc.exit_code)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
        sys.exit(0)


class FloatList(click.ParamType):
    """A comma-separated list of floats (``0.1,0.5,0.9``)."""

    name = "FLOATS"

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple)):
            return [float(v) for v in value]
        if isinstance(value, (int, float)):
            return [float(value)]
        out = []
        for tok in str(value).split(","):
            tok = tok.strip()
            try:
                out.append(float(tok))
            except ValueError:
                self.fail(f"'{tok}' is not a number", param, ctx)
        if not out:
            self.fail("empty list", param, ctx)
        return out


FLOATS = FloatList()


def dataset_option(f):
    return click.option("--dataset", "-d", default="a1a", show_default=True,
                        help="LIBSVM name (bundled, $MAST_DATA_DIR or libsvmdata) or a file path.")(f)


def lam_option(f):
    return click.option("--lam", type=float, default=1e-3, show_default=True,
                        help="ℓ2 regularization λ (mean-loss convention).")(f)


def objective_option(f):
    return click.option("--objective", default="logreg", show_default=True,
                        help="logreg (ℓ2-logistic) or logreg-nonconvex.")(f)


def sketch_options(f):
    opts = [
        click.option("--sketch", "-s", default=None,
                     help="identity, bernoulli, rand-k, perm-k, gaussian, dropout-unscaled."),
        click.option("--p", "p", type=FLOATS, default=None,
                     help="Bernoulli keep probability in (0,1] (a list gives one value per level/worker)."),
        click.option("--k", "k", type=FLOATS, default=None, help="Rand-K: number of kept coordinates K."),
        click.option("--workers", "workers", type=int, default=None, help="Perm-K / distributed: workers M."),
        click.option("--sigma", type=float, default=None, help="Gaussian sketch: standard deviation σ."),
        click.option("--sparsity", type=FLOATS, default=None,
                     help="Sparsity levels (p = 1 − s, K = round((1 − s) d), M = round(1/(1 − s)))."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _check_lam(lam):
    if lam is None or not (lam >= 0) or lam == float("inf"):
        raise MastError(f"--lam {lam} must be a finite number >= 0")


def _one(values, what):
    if values is None:
        return None
    if len(values) != 1:
        raise MastError(f"{what} takes one value here, got {len(values)}")
    return values[0]


@click.group(cls=MastGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mast")
def cli():
    """mast: reproduce and check MAST (Model-Agnostic Sparsified Training, arXiv 2311.16086).

    Typical use: `mast constants -d a1a --sketch bernoulli --p 0.5`,
    `mast run -d a1a --sketch rand-k --sparsity 0.5,0.9 --iters 500`, `mast plot results/run`.
    """


@cli.command()
@dataset_option
@lam_option
@objective_option
@sketch_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def constants(dataset, lam, objective, sketch, p, k, workers, sigma, sparsity, as_json):
    """Print the paper's constants (L_f, μ_f, L_D, μ_D, L_S^max, f^inf, ...) for a dataset."""
    from .constants import compute_constants
    from .data import load_dataset
    from .objectives import make_objective
    from .sketches import make_sketch

    _check_lam(lam)
    ds = load_dataset(dataset)
    obj = make_objective(objective, ds.X, ds.y, lam)
    sk = None
    if sketch is not None:
        sk = make_sketch(sketch, ds.d, p=_one(p, "--p"), k=_one(k, "--k"), workers=workers,
                         sigma=sigma, sparsity=_one(sparsity, "--sparsity"))
    elif any(v is not None for v in (p, k, workers, sigma, sparsity)):
        raise MastError("sketch parameters were given without --sketch")
    out = {"dataset": ds.name, **compute_constants(obj, sk)}
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    width = max(len(key) for key in out)
    for key, val in out.items():
        shown = f"{val:.6g}" if isinstance(val, float) else ("inf" if val is None else str(val))
        click.echo(f"{key:<{width}}  {shown}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def datasets(as_json):
    """List bundled, $MAST_DATA_DIR and libsvmdata-cached datasets (n, d, nnz, source)."""
    from .data import list_datasets

    rows = list_datasets()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'name':<16} {'n':>8} {'d':>6} {'nnz':>9} {'n_test':>8}  where")
    for r in rows:
        fmt = lambda v: "?" if v is None else str(v)  # noqa: E731
        click.echo(f"{r['name']:<16} {fmt(r['n']):>8} {fmt(r['d']):>6} {fmt(r['nnz']):>9} "
                   f"{fmt(r['n_test']):>8}  {r['where']}")


def main():
    """Console-script entry point."""
    cli.main(prog_name="mast")


if __name__ == "__main__":  # pragma: no cover
    main()
