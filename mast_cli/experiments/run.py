"""Experiments: configuration, expansion into trajectories, metrics, resumable CSV output.

``mast run`` is a thin wrapper around :func:`run_experiment`:

1. a :class:`RunConfig` (from CLI options or a TOML file) is validated *before*
   anything is written;
2. it expands into a table of trajectories (sketch level × step size × batch size
   × seed), each with its own random streams;
3. trajectories are grouped into units of at most ``unit_size`` columns that the
   batched engine advances together; each finished unit is written atomically to
   ``DIR/.parts/<hash>.csv``, so an interrupted run resumes where it stopped (and a
   rerun of a finished run only reassembles; ``--force`` recomputes);
4. the parts are assembled into ``DIR/trajectories.csv`` (written to a temporary
   file and renamed) and ``DIR/metadata.json``.

A trajectory's numbers do not depend on which unit it ran in, so the final CSV
is byte-identical whatever the unit size, the interruption points or the order.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..constants import compute_constants
from ..core.evaluation import eval_sketches
from ..core.objective import OBJECTIVES
from ..core.sketches import SKETCHES
from ..io.errors import MastError, check
from ..io.outputs import CSV_FLOAT_FORMAT, prepare_out_dir, provenance
from ..io.store import UnitStore, unit_key
from .budget import check_run_counts, check_run_memory
from ..shifts import resolve_shift
from . import alg1, alg23
from .config import RunConfig, is_number, parse_step, sketch_names
from .device import check_run_device, run_device
from .problem import load_problem
from .trajectories import history_frame, level_representatives, make_metrics
from .units import compute_missing, write_metadata, write_table

__all__ = ["Algorithm", "ALGORITHMS", "validate_config", "plan_run", "expand_trajectories", "plan_run_units",
           "compute_run_unit", "run_metadata", "run_experiment"]


@dataclass(frozen=True)
class Algorithm:
    """How ``mast run`` sweeps, runs and documents one algorithm.

    Attributes
    ----------
    expand : callable (cfg, problem) -> list of dict
        The trajectories of a config.
    run : callable (problem, cfg, trajectories, v, metrics_fn, progress) -> History
        Runs one unit of trajectories.
    metadata : callable (cfg, problem, trajectories) -> dict
        Entries merged into metadata.json.
    """

    expand: Callable
    run: Callable
    metadata: Callable


#: The algorithms of ``mast run --algorithm`` (Algorithm 1 (I)/(II), 2 and 3).
ALGORITHMS = {
    "dsgd": Algorithm(alg1.expand_dsgd, alg1.run_dsgd, alg1.metadata_dsgd),
    "dsgd-minibatch": Algorithm(alg1.expand_dsgd, alg1.run_dsgd, alg1.metadata_dsgd),
    "distributed": Algorithm(alg23.expand_distributed, alg23.run_distributed, alg23.metadata_distributed),
    "vr": Algorithm(alg23.expand_vr, alg23.run_vr, alg23.metadata_vr),
}


def validate_config(cfg):
    """Check every field of a :class:`RunConfig`; raise :class:`MastError` naming the bad value."""
    for key in ("algorithm", "objective", "sampling", "split", "shift", "dataset"):
        val = getattr(cfg, key, "")
        check(val is None or isinstance(val, str), f"{key} {val!r} must be a name (a string)")
    check(cfg.algorithm in ALGORITHMS,
          f"unknown algorithm '{cfg.algorithm}'; choose one of {', '.join(ALGORITHMS)}")
    check(cfg.objective in OBJECTIVES,
          f"unknown objective '{cfg.objective}'; choose one of {', '.join(OBJECTIVES)}")
    names = sketch_names(cfg)
    check(len(names) >= 1, f"sketch '{cfg.sketch}': give at least one sketch name")
    for name in names:
        check(name in SKETCHES, f"unknown sketch '{name}'; choose one of {', '.join(SKETCHES)}")
    check(isinstance(cfg.step, list) and len(cfg.step) >= 1, f"step {cfg.step!r}: give at least one step size")
    for key in ("p", "k", "sparsity"):
        vals = getattr(cfg, key)
        if vals is not None:
            check(isinstance(vals, list) and len(vals) >= 1, f"{key} {vals!r}: give at least one value")
            for val in vals:
                check(is_number(val), f"{key} {val!r} must be a number")
    check(isinstance(cfg.lam, (int, float)) and math.isfinite(cfg.lam) and cfg.lam >= 0,
          f"lam {cfg.lam} must be a finite number >= 0")
    check(isinstance(cfg.iters, int) and not isinstance(cfg.iters, bool) and cfg.iters >= 1,
          f"iters {cfg.iters} must be an integer >= 1")
    if isinstance(cfg.seeds, (list, tuple)):
        check(len(cfg.seeds) >= 1 and all(isinstance(s, int) and s >= 0 for s in cfg.seeds),
              f"seeds {cfg.seeds} must be non-negative integers")
        check(len(set(cfg.seeds)) == len(cfg.seeds), f"seeds {cfg.seeds} has duplicates")
    else:
        check(isinstance(cfg.seeds, int) and not isinstance(cfg.seeds, bool) and cfg.seeds >= 1,
              f"seeds {cfg.seeds} must be an integer >= 1")
    check(cfg.log_every is None or (isinstance(cfg.log_every, int) and cfg.log_every >= 1),
          f"log_every {cfg.log_every} must be an integer >= 1")
    check(isinstance(cfg.record_time, bool), f"record_time {cfg.record_time!r} must be true or false")
    check(isinstance(cfg.eval_sketches, int) and cfg.eval_sketches >= 0,
          f"eval_sketches {cfg.eval_sketches} must be an integer >= 0")
    check(isinstance(cfg.unit_size, int) and cfg.unit_size >= 1,
          f"unit_size {cfg.unit_size} must be an integer >= 1")
    check_run_device(cfg.device, cfg.algorithm, cfg.objective)
    check(cfg.sampling in ("uniform", "importance"),
          f"unknown sampling '{cfg.sampling}'; choose uniform or importance")
    for tok in cfg.step:
        parse_step(tok)
    if cfg.sparsity is not None:
        for s in cfg.sparsity:
            check(isinstance(s, (int, float)) and 0 <= s < 1, f"sparsity {s} must be in [0, 1)")
    if cfg.batch_size is not None:
        for b in cfg.batch_size:
            check(b == "n" or (isinstance(b, (int, float)) and float(b).is_integer() and b >= 1),
                  f"batch size {b} must be an integer >= 1 or 'n'")


def plan_run(cfg):
    """Validate a run and split it into units; every error is raised before work starts.

    Returns
    -------
    units : list of (key, spec)
    context : (Problem, list of trajectories)
    """
    validate_config(cfg)
    check_run_counts(cfg)
    problem = load_problem(cfg.dataset, cfg.objective, cfg.lam)
    check_run_memory(cfg, problem.obj.n, problem.obj.d)
    resolve_shift(cfg.shift, problem)
    trajs = expand_trajectories(cfg, problem)
    return plan_run_units(cfg, problem, trajs), (problem, trajs)


def expand_trajectories(cfg, problem):
    """All trajectories of a config as a list of dicts (sketch, step, batch, seed, labels)."""
    return ALGORITHMS[cfg.algorithm].expand(cfg, problem)


def plan_run_units(cfg, problem, trajs):
    """Split the trajectories into units of ``cfg.unit_size``: list of (key, spec)."""
    conf = {k: v for k, v in cfg.to_dict().items() if k != "unit_size"}
    units = []
    for i in range(0, len(trajs), cfg.unit_size):
        spec = {"kind": "run", "config": conf, "start": i, "stop": min(i + cfg.unit_size, len(trajs)),
                "dataset_sha256": problem.dataset.sha256}
        key_spec = dict(spec, trajectories=[{k: v for k, v in t.items() if k != "sketch_obj"}
                                            for t in trajs[spec["start"]:spec["stop"]]])
        key_spec.pop("start"), key_spec.pop("stop")
        units.append((unit_key(key_spec), spec))
    return units


def compute_run_unit(spec, progress=None):
    """Run one unit of a ``mast run`` experiment; returns its CSV text.

    Pure function of ``spec`` (a plain dict, picklable), so it can run in another
    process or on a dask worker: the problem is rebuilt there (cached per process).
    """
    cfg = RunConfig(**spec["config"])
    problem = load_problem(cfg.dataset, cfg.objective, cfg.lam)
    if spec.get("dataset_sha256") not in (None, problem.dataset.sha256):
        raise MastError(f"dataset '{cfg.dataset}' changed since the unit was planned")
    v = resolve_shift(cfg.shift, problem)
    unit = expand_trajectories(cfg, problem)[spec["start"]:spec["stop"]]
    eval_sets = np.stack([eval_sketches(t["sketch_obj"], cfg.eval_sketches) for t in unit], axis=-1)
    R = len(unit)
    step_cb = None if progress is None else (lambda k: progress(k * R))
    if cfg.device != "cpu":
        hist = run_device(problem, cfg, unit, v, eval_sets, step_cb)
    else:
        metrics_fn = make_metrics(problem, v, eval_sets)
        hist = ALGORITHMS[cfg.algorithm].run(problem, cfg, unit, v, metrics_fn, step_cb)
    df = history_frame(cfg, unit, hist, hist.extra.get("columns"))
    return df.to_csv(index=False, float_format=CSV_FLOAT_FORMAT)


def run_metadata(cfg, problem, trajs, n_units, wall_time):
    """metadata.json content of a run: config, constants per level, dataset, provenance."""
    levels = [compute_constants(problem.obj, t["sketch_obj"], x_star=problem.x_star)
              for t in level_representatives(trajs)]
    return {
        "command": "mast run",
        "config": cfg.to_dict(),
        "dataset": problem.dataset.summary(),
        "constants": levels[0] if len(levels) == 1 else levels[0] | {"levels": levels},
        "f_inf": problem.f_inf,
        "erm_grad_norm": problem.erm_info["grad_norm"],
        "n_trajectories": len(trajs),
        "units": n_units,
        "wall_time_s": round(wall_time, 3),
        **ALGORITHMS[cfg.algorithm].metadata(cfg, problem, trajs),
        **provenance(),
    }


def run_experiment(cfg, out, progress_factory=None, force=False):
    """Run a validated :class:`RunConfig` and write ``trajectories.csv`` + ``metadata.json``.

    Parameters
    ----------
    cfg : RunConfig
    out : path
        Output folder (created).  Finished units are kept in ``out/.parts`` and
        reused by a rerun unless ``force``.
    progress_factory : callable total -> context manager with ``update(n)``, optional

    Returns
    -------
    pandas.DataFrame
        The trajectories table that was written.
    """
    t0 = time.time()
    units, (problem, trajs) = plan_run(cfg)
    out = prepare_out_dir(out)
    reused = 0 if force else sum(UnitStore(out / ".parts").has(k) for k, _ in units)
    store = compute_missing(units, out / ".parts", compute_run_unit, progress_factory, force,
                            work=lambda spec: cfg.iters * (spec["stop"] - spec["start"]))
    table = write_table(store, units, out / "trajectories.csv", keep=("time",) if cfg.record_time else ())
    table.attrs["units"] = (reused, len(units))        # for the CLI's "reused K of N units"
    meta = run_metadata(cfg, problem, trajs, len(units), time.time() - t0)
    if "timing" in table.attrs:
        from ..core import fused

        # the kernels' threads of this invocation (units reused from an earlier run keep theirs)
        meta["timing"] = {**table.attrs["timing"], "threads": fused.threads()}
    write_metadata(out / "metadata.json", meta)
    return table
