"""Command-line interface: parse options, call library code, print or write results.

No mathematics lives here.  Heavy modules are imported inside the commands so
that ``mast --help`` stays instant.  Every user error is reported as one line
``Error: ...`` with exit code 2 (see :class:`MastGroup`).
"""

from __future__ import annotations

import json
import os
import sys

import click

from . import __version__
from .errors import MastError

__all__ = ["main", "cli"]


class _Interrupted(Exception):
    """Ctrl-C inside a command (re-raised so click does not print its own newline)."""


class MastGroup(click.Group):
    """Click group that reports every error as one line, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise _Interrupted() from None

    def main(self, args=None, prog_name=None, **extra):
        extra.pop("standalone_mode", None)
        try:
            rv = super().main(args=args, prog_name=prog_name, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except (click.exceptions.Abort, KeyboardInterrupt, _Interrupted):
            click.echo("Error: interrupted; finished work was kept, rerun to resume", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            msg = " ".join(exc.format_message().split())
            click.echo(f"Error: {msg}", err=True)
            sys.exit(exc.exit_code)
        except MastError as exc:
            click.echo(f"Error: {' '.join(str(exc).split())}", err=True)
            sys.exit(exc.exit_code)
        except OSError as exc:
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            click.echo(f"Error: {exc.strerror or exc}{where}", err=True)
            sys.exit(2)
        except Exception as exc:  # a bug: one line, the traceback on request
            if os.environ.get("MAST_DEBUG"):
                raise
            msg = " ".join(str(exc).split())[:300]
            click.echo(f"Error: internal error {type(exc).__name__}: {msg} "
                       "(rerun with MAST_DEBUG=1 for the traceback)", err=True)
            sys.exit(1)
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

    \b
    Typical use:
      mast constants -d a1a --sketch bernoulli --p 0.5
      mast run -d a1a --sketch rand-k --sparsity 0.5,0.9 --iters 500
      mast plot results/run
      mast prune -d a9a --sketch bernoulli --masks 100
      mast verify -d a1a --quick
      mast reproduce --jobs 2
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
        n_test = "-" if r["n_test"] is None and r["n"] is not None else fmt(r["n_test"])
        click.echo(f"{r['name']:<16} {fmt(r['n']):>8} {fmt(r['d']):>6} {fmt(r['nnz']):>9} "
                   f"{n_test:>8}  {r['where']}")


def _explicit(ctx, name):
    from click.core import ParameterSource

    return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)


def progress_factory(quiet, label):
    """A click progress bar on stderr (None when quiet)."""
    if quiet:
        return None

    def factory(total):
        return click.progressbar(length=max(total, 1), label=label, file=sys.stderr,
                                 show_eta=True, show_percent=True)

    return factory


def build_config(ctx, config_path, cli_values, cls, kind):
    """Merge defaults < TOML file < options given on the command line into ``cls``.

    ``kind`` is the command (``run`` or ``prune``): which experiment files it accepts,
    and for ``prune`` a single step size.  Returns the config object and the ``out``
    entry of the TOML file (or None).
    """
    import dataclasses

    from .experiments import load_config_file

    fields = {f.name for f in dataclasses.fields(cls)}
    values = load_config_file(config_path, fields, kind) if config_path is not None else {}
    for key, val in cli_values.items():
        if _explicit(ctx, key):
            values[key] = val
    out = values.pop("out", None)
    for key, val in list(values.items()):
        if key in ("p", "k", "sparsity", "batch_size") and val is not None and not isinstance(val, list):
            values[key] = [val]
        if key == "step" and isinstance(val, (str, int, float)):
            values[key] = [t.strip() for t in str(val).split(",") if t.strip()]
        if key == "step" and kind == "prune":       # mast prune trains with one step size
            if len(values[key]) != 1:
                raise MastError(f"--step {','.join(map(str, values[key]))}: give one step size")
            values[key] = str(values[key][0])
    try:
        return cls(**values), out
    except TypeError as exc:
        raise MastError(f"bad configuration: {' '.join(str(exc).split())}") from None


def _int_list(values, option):
    if values is None:
        return None
    bad = [x for x in values if not float(x).is_integer()]
    if bad:
        raise MastError(f"{option} {bad[0]:g} must be an integer")
    return [int(x) for x in values]


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML experiment file with the same keys as the options (options override it).")
@dataset_option
@lam_option
@objective_option
@click.option("--algorithm", "-a", default="dsgd", show_default=True,
              help="dsgd (Algorithm 1 (I)), dsgd-minibatch (1 (II)), distributed (2), vr (3).")
@sketch_options
@click.option("--iters", "-T", type=int, default=300, show_default=True, help="Iterations T.")
@click.option("--seeds", type=int, default=3, show_default=True, help="Number of seeds (0..N-1).")
@click.option("--seed", "seed_list", type=FLOATS, default=None,
              help="Explicit seeds instead of --seeds (e.g. --seed 3 or --seed 3,7).")
@click.option("--step", default="theory", show_default=True,
              help="Step sizes: 'theory', numbers, or multiples of the theory step ('4x'); comma list.")
@click.option("--batch-size", "batch_size", default=None,
              help="Minibatch sizes τ for dsgd-minibatch (comma list; 'n' = all rows; default 1).")
@click.option("--sampling", default="uniform", show_default=True,
              help="Row sampling of dsgd-minibatch: uniform (without replacement) or importance (q_i ∝ L_i).")
@click.option("--shift", default="zero", show_default=True,
              help="Shift v: zero, erm (x*_ERM), noisy:σ, lam:λ, half or a .npy file.")
@click.option("--log-every", "log_every", type=int, default=None,
              help="Log metrics every N iterations (default: T/100).")
@click.option("--eval-sketches", "eval_sketches", type=int, default=20, show_default=True,
              help="Fixed evaluation sketches for the mast_loss estimate of f_D.")
@click.option("--split", default="random", show_default=True,
              help="distributed: row partition across workers, random or label-sorted.")
@click.option("--sketch-pool", "sketch_pool", type=int, default=None, help="vr: number N of pooled sketches.")
@click.option("--ref-prob", "ref_prob", type=float, default=None, help="vr: reference update probability p.")
@click.option("--ref-batch", "ref_batch", type=int, default=None, help="vr: reference batch b (b = N exact).")
@click.option("--unit-size", "unit_size", type=int, default=64, show_default=True,
              help="Trajectories advanced together per unit (results do not depend on it).")
@click.option("--out", "-o", default="results/run", show_default=True, help="Output folder.")
@click.option("--force", is_flag=True, help="Recompute units already finished in --out.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def run(ctx, config_path, out, force, quiet, seed_list, step, **opts):
    """Run an algorithm on many trajectories; write trajectories.csv and metadata.json.

    Trajectories are the product of sketch families and levels (--sketch, --sparsity /
    --p / --k), step sizes, batch sizes and seeds.

    \b
    Examples:
      mast run -d a1a --sketch bernoulli --sparsity 0.1,0.5,0.9 --iters 500 --seeds 5
      mast run -d a9a -a dsgd-minibatch --sketch rand-k --sparsity 0.5 --batch-size 1,32,n
      mast run -d a9a -a distributed --workers 10 --sketch bernoulli --sparsity 0.5 --step 0.3,1
      mast run -d a1a -a vr --sketch rand-k --k 30 --sketch-pool 20 --ref-batch 20
      mast run --config experiments/fig5_minibatch.toml -o results/fig5
    """
    from .experiments import RunConfig, run_experiment, validate_config

    values = dict(opts)
    values["step"] = step
    values["k"] = _int_list(values["k"], "--k")
    if values["batch_size"] is not None:
        toks = [t.strip() for t in values["batch_size"].split(",") if t.strip()]
        try:
            values["batch_size"] = [t if t == "n" else int(t) for t in toks]
        except ValueError:
            raise MastError(f"--batch-size {values['batch_size']} must be integers or 'n'") from None
    if seed_list is not None:
        seeds = _int_list(seed_list, "--seed")
        if any(x < 0 for x in seeds):
            raise MastError(f"--seed {min(seeds)} must be >= 0")
        values["seeds"] = seeds
        ctx.params["seeds"] = seeds
        from click.core import ParameterSource

        ctx.set_parameter_source("seeds", ParameterSource.COMMANDLINE)
    cfg, cfg_out = build_config(ctx, config_path, values, RunConfig, "run")
    validate_config(cfg)
    out_dir = out if _explicit(ctx, "out") or cfg_out is None else cfg_out
    table = run_experiment(cfg, out_dir, progress_factory(quiet, "mast run"), force=force)
    if not quiet:
        n_div = table.loc[table.status == "diverged", ["sketch", "sparsity", "step_size", "seed"]] \
            .drop_duplicates().shape[0]
        click.echo(f"wrote {out_dir}/trajectories.csv ({len(table)} rows"
                   f"{f', {n_div} diverged trajectories' if n_div else ''}) and metadata.json", err=True)


@cli.command()
@click.argument("results", nargs=-1, required=True, type=click.Path())
@click.option("--metric", default="erm_loss", show_default=True,
              help="erm_loss, grad_norm_sq, dist_sq, mast_loss or test_accuracy.")
@click.option("--out", "-o", default="plots", show_default=True, help="Folder for the PDF/PNG files.")
@click.option("--name", default=None, help="File name stem (default: from the results folder).")
def plot(results, metric, out, name):
    """Draw figures from results folders (CSV only; nothing is recomputed)."""
    from .experiments import check_out_path
    from .plotting import plot_results

    check_out_path(out)
    written = plot_results([str(r) for r in results], metric=metric, out=out, name=name)
    for path in written:
        click.echo(str(path))


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML file with the same keys as the options (options override it).")
@dataset_option
@lam_option
@objective_option
@click.option("--sketch", "-s", default="bernoulli", show_default=True,
              help="bernoulli, rand-k, perm-k (sparsity s gives p = 1 − s, K = round((1 − s)d), M = round(1/(1 − s))).")
@click.option("--sparsity", type=FLOATS, default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9", show_default=True,
              help="Sparsity levels (share of zeroed weights).")
@click.option("--masks", "-R", type=int, default=100, show_default=True, help="Random masks per level.")
@click.option("--iters", "-T", type=int, default=500, show_default=True, help="MAST training iterations.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed (split, training, masks).")
@click.option("--step", default="theory", show_default=True, help="MAST step: theory, a number, or '4x'.")
@click.option("--val-fraction", "val_fraction", type=float, default=0.2, show_default=True,
              help="Share of training rows held out to pick the best-validation iterate.")
@click.option("--shift", default="zero", show_default=True,
              help="Shift v: zero, erm, noisy:σ, lam:λ, half or a .npy file.")
@click.option("--dropout-baseline", "dropout_baseline", is_flag=True, default=None,
              help="Also train classic unscaled dropout (Bernoulli only) and deploy it with/without weight scaling.")
@click.option("--out", "-o", default="results/prune", show_default=True, help="Output folder.")
@click.option("--force", is_flag=True, help="Recompute finished levels.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def prune(ctx, config_path, out, force, quiet, **opts):
    """Pruning robustness: accuracy of randomly sparsified ERM vs MAST models (Figures 1, 3, 4).

    Writes DIR/pruning.csv (formulation, selection, sketch, sparsity, mask, test_accuracy,
    dense_test_accuracy) and metadata.json; `mast plot DIR` draws the boxplots.
    """
    from .pruning import PruneConfig, run_prune

    cfg, cfg_out = build_config(ctx, config_path, opts, PruneConfig, "prune")
    out_dir = out if _explicit(ctx, "out") or cfg_out is None else cfg_out
    run_prune(cfg, out_dir, progress_factory(quiet, "mast prune"), force=force)
    if not quiet:
        click.echo(f"wrote {out_dir}/pruning.csv and metadata.json", err=True)


@cli.command()
@click.option("--dataset", "-d", default="a9a", show_default=True,
              help="Dataset for every experiment (bundled a9a with a9a.t; a5a is downloaded by libsvmdata).")
@click.option("--jobs", "-j", type=int, default=1, show_default=True, help="Parallel units (joblib processes).")
@click.option("--scheduler", default=None,
              help="dask.distributed scheduler address (tcp://host:port): run the units on that cluster.")
@click.option("--only", multiple=True, help="Run only this experiment (repeatable), e.g. fig1_pruning_bernoulli.")
@click.option("--experiments", "experiments_dir", default=None, type=click.Path(),
              help="Folder of experiment TOML files (default: the repository's experiments/).")
@click.option("--results", "results_dir", default="results", show_default=True, help="Results folder.")
@click.option("--plots", "plots_dir", default="plots", show_default=True, help="Figures folder.")
@click.option("--force", is_flag=True, help="Recompute every unit.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def reproduce(dataset, jobs, scheduler, only, experiments_dir, results_dir, plots_dir, force, quiet):
    """Every paper figure: run the missing units of each experiment in experiments/, then plot.

    Resumable: finished units are stored under results/<experiment>/<unit hash>/ and skipped
    on the next run.  Parallel with --jobs (joblib) or --scheduler (dask.distributed).
    """
    from .suite import load_suite, reproduce as run_suite

    if jobs < 1:
        raise MastError(f"--jobs {jobs} must be >= 1")
    max_jobs = max(64, 4 * (os.cpu_count() or 1))
    if jobs > max_jobs:
        raise MastError(f"--jobs {jobs} is more than {max_jobs} (4 per CPU); use --scheduler for a cluster")
    exps = load_suite(experiments_dir, dataset=dataset, only=list(only) or None)
    info = run_suite(exps, results_dir, plots_dir, jobs=jobs, scheduler=scheduler, force=force,
                     progress_factory=progress_factory(quiet, "mast reproduce (units)"))
    click.echo(f"{len(exps)} experiments, {info['units_run']} of {info['units_total']} units computed, "
               f"{len(info['figures'])} files in {plots_dir}/; wall time {info['wall_time_s']:.1f} s",
               err=True)


@cli.command()
@dataset_option
@lam_option
@objective_option
@click.option("--sketch", "-s", default="bernoulli,rand-k", show_default=True,
              help="Sketch families to check (comma list): bernoulli, rand-k, perm-k, gaussian, identity.")
@click.option("--sparsity", type=FLOATS, default="0.5", show_default=True,
              help="Sparsity levels; several levels run the battery per level (sweep of Δ and contraction).")
@click.option("--quick", is_flag=True, help="Small battery (pool N=32, R=16 seeds, T=200): the CI check.")
@click.option("--pool", "-N", type=int, default=None, help="Pool size N of the reference (default 32 quick / 128).")
@click.option("--seeds", "-R", type=int, default=None, help="Seeds per stochastic check (default 16 quick / 32).")
@click.option("--iters", "-T", type=int, default=None, help="Iterations of the rate checks (default 200 quick / 600).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Base seed (pool, points, trajectories).")
@click.option("--shift", default="zero", show_default=True, help="Shift v: zero or erm (x*).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of the table.")
@click.option("--out", "-o", default="results/verify", show_default=True,
              help="Folder for verify.csv and verify.json.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
def verify(dataset, lam, objective, sketch, sparsity, quick, pool, seeds, iters, seed, shift, as_json, out,
           quiet):
    """Check the paper's lemmas and theorems on a dataset; exit 1 if any check is violated.

    Prints `check | statement | observed | bound | slack (bound/observed) | verdict` and writes
    OUT/verify.csv and OUT/verify.json.  A stochastic (rate) check is violated only when its mean
    over seeds exceeds the bound beyond a one-sided 99% confidence interval.  Examples:

    \b
        mast verify -d a1a --quick
        mast verify -d a9a --sketch rand-k --sparsity 0.1,0.5,0.9
    """
    from .verify import VerifyConfig, format_table, result_json, verify_dataset, write_outputs

    _check_lam(lam)
    names = [t.strip() for t in sketch.split(",") if t.strip()]
    cfg = VerifyConfig(dataset=dataset, lam=lam, objective=objective, sketches=names, sparsity=sparsity,
                       quick=quick, pool=pool, seeds=seeds, iters=iters, seed=seed, shift=shift)
    cfg.validate()
    from .experiments import check_out_path

    check_out_path(out)          # before the battery, not after it
    say = None if quiet else (lambda msg: click.echo(f"mast verify: {msg}", err=True))
    result = verify_dataset(cfg, progress=say)
    csv_path, json_path = write_outputs(result, out)
    if as_json:
        click.echo(json.dumps(result_json(result), indent=2, default=float))
    else:
        click.echo(format_table(result))
        if not quiet:
            click.echo(f"wrote {csv_path} and {json_path}", err=True)
    return 1 if result["violated"] else 0


def main():
    """Console-script entry point."""
    cli.main(prog_name="mast")


if __name__ == "__main__":  # pragma: no cover
    main()
