"""``mast run``, ``mast prune`` and ``mast reproduce``: compute results folders."""

from __future__ import annotations

import os

import click

from ..io.errors import MastError
from ._common import (FLOATS, INTS, apply_threads, build_config, check_run_options, dataset_option, device_option,
                      explicit, lam_option, objective_option, precheck_dataset, progress_factory, sketch_options,
                      threads_option)
from ._outputs import check_claim, default_out


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True), default=None,
              help="TOML experiment file with the same keys as the options (options override it).")
@dataset_option
@lam_option
@objective_option
@click.option("--algorithm", "-a", default="dsgd", show_default=True,
              help="dsgd (Algorithm 1 (I)), dsgd-minibatch (1 (II)), distributed (2), vr (3).")
@sketch_options(default="bernoulli")
@click.option("--iters", "-T", type=int, default=300, show_default=True, help="Iterations T.")
@click.option("--seeds", type=int, default=3, show_default=True, help="Number of seeds (0..N-1).")
@click.option("--seed", "seed_list", type=INTS, default=None,
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
              help="Log metrics every N iterations (default: a geometric schedule, dense early: "
                   "0, 1, 2, 4, 8, ... and T).")
@click.option("--record-time", "record_time", is_flag=True, default=False,
              help="Add a 'time' column: wall seconds of the steps, metric evaluation excluded "
                   "(not reproducible bit for bit, so off by default).")
@click.option("--eval-sketches", "eval_sketches", type=int, default=20, show_default=True,
              help="Fixed evaluation sketches for the mast_loss estimate of f_D.")
@click.option("--split", default="random", show_default=True,
              help="distributed: row partition across workers, random or label-sorted.")
@click.option("--sketch-pool", "sketch_pool", type=int, default=None, help="vr: number N of pooled sketches.")
@click.option("--ref-prob", "ref_prob", type=float, default=None, help="vr: reference update probability p.")
@click.option("--ref-batch", "ref_batch", type=int, default=None, help="vr: reference batch b (b = N exact).")
@click.option("--unit-size", "unit_size", type=int, default=64, show_default=True,
              help="Trajectories advanced together per unit (results do not depend on it).")
@device_option
@threads_option
@click.option("--out", "-o", default=None,
              help="Output folder (default: a new folder results/run-<dataset>-<config hash>).")
@click.option("--force", is_flag=True,
              help="Recompute every unit, and replace the results of another configuration in --out.")
@click.option("--quiet", "-q", is_flag=True, help="No progress, only the final summary line.")
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
    apply_threads(ctx)
    precheck_dataset(opts["dataset"])
    values = dict(opts)
    values["step"] = step
    if values["batch_size"] is not None:
        toks = [t.strip() for t in values["batch_size"].split(",") if t.strip()]
        try:
            values["batch_size"] = [t if t == "n" else int(t) for t in toks]
        except ValueError:
            raise MastError(f"--batch-size {values['batch_size']} must be integers or 'n'") from None
    if seed_list is not None:
        if explicit(ctx, "seeds"):
            raise MastError(f"--seeds {opts['seeds']} and --seed {','.join(map(str, seed_list))} both "
                            "choose the seeds; give one of them")
        if any(x < 0 for x in seed_list):
            raise MastError(f"--seed {min(seed_list)} must be >= 0")
        values["seeds"] = list(seed_list)
        ctx.params["seeds"] = values["seeds"]
        from click.core import ParameterSource

        ctx.set_parameter_source("seeds", ParameterSource.COMMANDLINE)
    from ..experiments.config import RunConfig
    from ..experiments.run import run_experiment, validate_config

    cfg, cfg_out = build_config(ctx, config_path, values, RunConfig, "run")
    check_run_options(cfg, sketch_given=explicit(ctx, "sketch") or config_path is not None)
    validate_config(cfg)
    out_dir = _out_dir(ctx, out, cfg_out, "run", cfg.dataset, cfg.to_dict(), force, quiet)
    table = run_experiment(cfg, out_dir, progress_factory(quiet, "mast run"), force=force)
    n_div = table.loc[table.status == "diverged", ["sketch", "sparsity", "step_size", "seed"]] \
        .drop_duplicates().shape[0]
    click.echo(f"wrote {out_dir}/trajectories.csv ({len(table)} rows"
               f"{f', {n_div} diverged trajectories' if n_div else ''}) and metadata.json"
               f"{_reused(table)}", err=True)


def _out_dir(ctx, out, cfg_out, command, dataset, config, force, quiet):
    """The output folder: --out, else the config file's ``out``, else a new folder named by the
    config hash (announced); refused when it holds another configuration's results."""
    if out is None:
        out = cfg_out
    if out is None:
        out = default_out(command, dataset, config)
        if not quiet:
            click.echo(f"mast {command}: results go to {out}", err=True)
    check_claim(out, config, force=force)
    return out


def _reused(table):
    units = table.attrs.get("units")
    if not units:
        return ""
    reused, total = units
    return f"; reused {reused} of {total} units"


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True), default=None,
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
@device_option
@click.option("--mast-solution", "mast_solution", default="dsgd", show_default=True,
              help="MAST models: dsgd (trained iterates: last and best masked validation), exact (x*_D, "
                   "minimizer of f_D on a pool of --pool sketches), or dsgd,exact.")
@click.option("--pool", type=int, default=64, show_default=True,
              help="Sketches in the pool of x*_D and of the fD_gap evaluation.")
@click.option("--val-masks", "val_masks", type=int, default=20, show_default=True,
              help="Fixed validation masks per level for the best-masked-validation selection.")
@click.option("--gap-tol", "gap_tol", type=float, default=1e-3, show_default=True,
              help="A MAST model with f_D(x) − f_D^inf above this is marked unsolved in the figure.")
@click.option("--out", "-o", default=None,
              help="Output folder (default: a new folder results/prune-<dataset>-<config hash>).")
@click.option("--force", is_flag=True,
              help="Recompute finished levels, and replace the results of another configuration in --out.")
@click.option("--quiet", "-q", is_flag=True, help="No progress, only the final summary line.")
@threads_option
@click.pass_context
def prune(ctx, config_path, out, force, quiet, **opts):
    """Pruning robustness: accuracy of randomly sparsified ERM vs MAST models (Figures 1, 3, 4).

    Writes DIR/pruning.csv (formulation, selection, sketch, sparsity, mask, test_accuracy,
    dense_test_accuracy, fD_gap, ...) and metadata.json; `mast plot DIR` draws the boxplots.
    """
    apply_threads(ctx)
    precheck_dataset(opts["dataset"])
    from ..experiments.prune import PruneConfig, run_prune

    cfg, cfg_out = build_config(ctx, config_path, opts, PruneConfig, "prune")
    out_dir = _out_dir(ctx, out, cfg_out, "prune", cfg.dataset, cfg.to_dict(), force, quiet)
    table = run_prune(cfg, out_dir, progress_factory(quiet, "mast prune"), force=force)
    click.echo(f"wrote {out_dir}/pruning.csv and metadata.json{_reused(table)}", err=True)


@click.command()
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
@click.option("--claims/--no-claims", "claims", default=None,
              help="Evaluate the paper's claims (claims.csv, plots/README.md) on every bundled dataset with a "
                   "test split and --dataset.  Default: on without --only, off with it.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@threads_option
@click.pass_context
def reproduce(ctx, dataset, jobs, scheduler, only, experiments_dir, results_dir, plots_dir, force, claims, quiet):
    """Every paper figure: run the missing units of each experiment in experiments/, then plot.

    Resumable: finished units are stored under results/<experiment>/<unit hash>/ and skipped
    on the next run.  Parallel with --jobs (joblib) or --scheduler (dask.distributed).
    """
    if only:                          # before the heavy imports: a mistyped name fails at once
        from pathlib import Path

        folder = Path(experiments_dir) if experiments_dir is not None else \
            Path(__file__).resolve().parents[2] / "experiments"
        names = sorted(f.stem for f in folder.glob("*.toml")) if folder.is_dir() else []
        for name in only:
            if names and name not in names:
                raise MastError(f"unknown experiment '{name}'; available: {', '.join(names)}")
    from ..experiments.suite import load_suite, reproduce as run_suite

    if jobs < 1:
        raise MastError(f"--jobs {jobs} must be >= 1")
    max_jobs = max(64, 4 * (os.cpu_count() or 1))
    if jobs > max_jobs:
        raise MastError(f"--jobs {jobs} is more than {max_jobs} (4 per CPU); use --scheduler for a cluster")
    apply_threads(ctx, jobs)
    exps = load_suite(experiments_dir, dataset=dataset, only=list(only) or None)
    info = run_suite(exps, results_dir, plots_dir, jobs=jobs, scheduler=scheduler, force=force,
                     progress_factory=progress_factory(quiet, "mast reproduce (units)"))
    click.echo(f"{len(exps)} experiments, {info['units_run']} of {info['units_total']} units computed, "
               f"{len(info['figures'])} files in {plots_dir}/; wall time {info['wall_time_s']:.1f} s",
               err=True)
    if claims if claims is not None else not only:
        import time

        from ..experiments.suite import claim_datasets, run_claims

        t0 = time.time()
        table = run_claims(claim_datasets(dataset), dataset, experiments_dir, results_dir, plots_dir, jobs=jobs,
                           scheduler=scheduler, progress_factory=progress_factory(quiet, "mast reproduce (claims)"))
        if table is not None:
            counts = table.verdict.value_counts()
            click.echo(f"claims: {len(table)} rows ({', '.join(f'{n} {v}' for v, n in counts.items())}) in "
                       f"{results_dir}/claims.csv and {plots_dir}/README.md; {time.time() - t0:.1f} s", err=True)
