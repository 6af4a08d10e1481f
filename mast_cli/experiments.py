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

import dataclasses
import functools
import json
import math
import os
import platform
import subprocess
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import MastError, check
from .store import UnitStore, atomic_write_text, unit_key

__all__ = [
    "RunConfig",
    "Problem",
    "load_problem",
    "expand_trajectories",
    "run_experiment",
    "load_config_file",
    "atomic_write_text",
    "ALGORITHMS",
    "CSV_FLOAT_FORMAT",
]

#: Floats in every CSV are written with this format (deterministic bytes).
CSV_FLOAT_FORMAT = "%.17g"
#: Seed of the fixed evaluation sketches (common random numbers for mast_loss).
EVAL_SEED = 20231127

ALGORITHMS = {}   # name -> runner, filled below (and by the Algorithm 2/3 integration)
#: name -> (cfg, problem) -> trajectories, for algorithms with their own sweep (Algorithms 2/3)
EXPANDERS = {}
#: name -> (cfg, problem, trajectories) -> dict merged into metadata.json
METADATA_HOOKS = {}


@dataclass
class RunConfig:
    """One experiment: what ``mast run`` options and TOML files describe.

    List-valued fields are swept (their product gives the trajectories).
    """

    dataset: str = "a1a"
    lam: float = 1e-3
    objective: str = "logreg"
    algorithm: str = "dsgd"
    sketch: str = "bernoulli"
    p: list | None = None
    k: list | None = None
    workers: int | None = None
    sigma: float | None = None
    sparsity: list | None = None
    iters: int = 300
    seeds: int | list = 3
    step: list = field(default_factory=lambda: ["theory"])
    batch_size: list | None = None
    sampling: str = "uniform"
    shift: str = "zero"
    log_every: int | None = None
    eval_sketches: int = 20
    unit_size: int = 64
    # Algorithm 2 / 3 options (used by those algorithms only)
    split: str = "random"
    sketch_pool: int | None = None
    ref_prob: float | None = None
    ref_batch: int | None = None

    def seed_list(self):
        """The seeds: ``seeds = N`` means 0..N−1, a list is taken as given."""
        if isinstance(self.seeds, (list, tuple)):
            return [int(s) for s in self.seeds]
        return list(range(int(self.seeds)))

    def effective_log_every(self):
        return self.log_every or max(1, self.iters // 100)

    def to_dict(self):
        return dataclasses.asdict(self)


CONFIG_KEYS = {f.name for f in dataclasses.fields(RunConfig)}

#: top-level keys of an experiment file of ``experiments/`` (its options are in ``[config]``)
EXPERIMENT_FILE_KEYS = {"kind", "figure", "caption", "metric", "config"}


def _listify(v):
    if v is None or isinstance(v, list):
        return v
    if isinstance(v, tuple):
        return list(v)
    return [v]


def load_config_file(path, keys=None, kind="run"):
    """Read a TOML experiment file into a dict of config fields.

    Keys are the option names of the command with ``-`` or ``_`` (``eval-sketches`` or
    ``eval_sketches``), at the top level, in a ``[run]`` table, or in the ``[config]``
    table of an experiment file of ``experiments/`` (whose ``kind`` must then be
    ``kind``; ``figure``, ``caption`` and ``metric`` are ignored).  An unknown key or
    malformed TOML is a one-line error.

    Parameters
    ----------
    path : str or Path
    keys : set of str, optional
        Allowed field names (default: those of :class:`RunConfig`).
    kind : str
        The experiment kind of the command reading it (``run``, ``prune``).
    """
    keys = CONFIG_KEYS if keys is None else set(keys)
    path = Path(path)
    if not path.is_file():
        raise MastError(f"config file '{path}' does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MastError(f"config file '{path}' is not valid TOML: {' '.join(str(exc).split())}") from None
    if isinstance(raw.get("config"), dict):       # an experiment file of the suite
        other = raw.get("kind", "run")
        if other != kind:
            raise MastError(f"config file '{path}' is a '{other}' experiment, not '{kind}'; "
                            f"use `mast {other}` or `mast reproduce --only {path.stem}`")
        extra = set(raw) - EXPERIMENT_FILE_KEYS
        if extra:
            raise MastError(f"config file '{path}': unknown key '{sorted(extra)[0]}'")
        raw = raw["config"]
    if kind in raw and isinstance(raw[kind], dict):
        raw = {**{k: v for k, v in raw.items() if k != kind}, **raw[kind]}
    out = {}
    for key, val in raw.items():
        name = key.replace("-", "_")
        if name not in keys and name != "out":
            raise MastError(f"config file '{path}': unknown key '{key}'")
        out[name] = val
    return out


def validate_config(cfg):
    """Check every field of a :class:`RunConfig`; raise :class:`MastError` naming the bad value."""
    from .objectives import OBJECTIVES
    from .sketches import SKETCHES

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
    check(isinstance(cfg.eval_sketches, int) and cfg.eval_sketches >= 0,
          f"eval_sketches {cfg.eval_sketches} must be an integer >= 0")
    check(isinstance(cfg.unit_size, int) and cfg.unit_size >= 1,
          f"unit_size {cfg.unit_size} must be an integer >= 1")
    check(cfg.sampling in ("uniform", "importance"),
          f"unknown sampling '{cfg.sampling}'; choose uniform or importance")
    for tok in cfg.step:
        _parse_step(tok)
    if cfg.sparsity is not None:
        for s in cfg.sparsity:
            check(isinstance(s, (int, float)) and 0 <= s < 1, f"sparsity {s} must be in [0, 1)")
    if cfg.batch_size is not None:
        for b in cfg.batch_size:
            check(b == "n" or (isinstance(b, (int, float)) and float(b).is_integer() and b >= 1),
                  f"batch size {b} must be an integer >= 1 or 'n'")


def _parse_step(tok):
    """'theory' -> ('theory', 1.0); '4x' -> ('theory', 4.0); '0.5' -> ('fixed', 0.5)."""
    if isinstance(tok, (int, float)) and not isinstance(tok, bool):
        val, kind = float(tok), "fixed"
    else:
        s = str(tok).strip().lower()
        if s == "theory":
            return ("theory", 1.0)
        kind = "theory" if s.endswith("x") else "fixed"
        try:
            val = float(s[:-1] if kind == "theory" else s)
        except ValueError:
            raise MastError(f"step '{tok}' is not 'theory', a number or a multiple like '4x'") from None
    if not math.isfinite(val) or val <= 0:
        raise MastError(f"step {tok} must be a finite number > 0")
    return (kind, val)


# --- the problem: dataset + objective + exact ERM solution -----------------------

@dataclass
class Problem:
    """Everything derived from (dataset, objective, λ) once per run."""

    dataset: object
    obj: object
    x_star: np.ndarray
    f_inf: float
    erm_info: dict


@functools.lru_cache(maxsize=8)
def load_problem(dataset, objective="logreg", lam=1e-3):
    """Load the data, build the objective and solve the ERM problem exactly (cached per process)."""
    from .data import load_dataset
    from .objectives import make_objective, solve_erm

    ds = load_dataset(dataset)
    obj = make_objective(objective, ds.X, ds.y, lam)
    x_star, info = solve_erm(obj)
    return Problem(ds, obj, x_star, float(obj.value(x_star)), info)


def resolve_shift(shift, problem):
    """Shift v from its specification (zero, erm, noisy:σ, lam:λ, half, a .npy file).

    See :mod:`mast_cli.shifts`.
    """
    from .shifts import resolve_shift as _resolve

    return _resolve(shift, problem)


# --- expansion into trajectories ----------------------------------------------------

def is_number(v):
    """A real number as a config value (int or float; a TOML ``true`` is not one)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def sketch_names(cfg):
    """The sketch families of a config: ``sketch`` may be one name, a comma list or a list."""
    names = cfg.sketch if isinstance(cfg.sketch, (list, tuple)) else str(cfg.sketch).split(",")
    for n in names:
        check(isinstance(n, str), f"sketch {n!r} must be a name")
    return [n.strip() for n in names if str(n).strip()]


def sketch_levels(cfg, d):
    """The sketch distributions to sweep: list of (label dict, Sketch).

    The product of the sketch families (``sketch``) and their levels: ``sparsity``
    (mapped per family, so Gaussian sketches get the Bernoulli-matched variance
    σ² = 1/(1 − s) − 1), or explicit ``p`` / ``k`` lists, or one fixed parameter.
    """
    from .sketches import make_sketch

    levels = []
    for name in sketch_names(cfg):
        if cfg.sparsity is not None:
            for s in cfg.sparsity:
                sk = make_sketch(name, d, workers=cfg.workers if name != "perm-k" else None,
                                 sparsity=float(s))
                levels.append(({"sparsity_level": float(s)}, sk))
        elif name in ("bernoulli", "dropout-unscaled") and cfg.p is not None:
            levels += [({}, make_sketch(name, d, p=float(p))) for p in cfg.p]
        elif name == "rand-k" and cfg.k is not None:
            levels += [({}, make_sketch(name, d, k=k)) for k in cfg.k]
        else:
            levels.append(({}, make_sketch(name, d, p=_one_or_none(cfg.p), k=_one_or_none(cfg.k),
                                           workers=cfg.workers, sigma=cfg.sigma)))
    return levels


def _one_or_none(values):
    return None if not values else values[0]


def _sketch_param(sk):
    for key in ("p", "k", "workers", "sigma"):
        if key in sk.params():
            val = sk.params()[key]
            return float(val) if not isinstance(val, list) else float("nan")
    return float("nan")


def expand_trajectories(cfg, problem):
    """All trajectories of a config as a list of dicts (sketch, step, batch, seed, labels)."""
    from . import theory

    if cfg.algorithm in EXPANDERS:
        return EXPANDERS[cfg.algorithm](cfg, problem)

    obj = problem.obj
    L_f = obj.smoothness()
    L_i = obj.smoothness_per_sample()
    rows = []
    batches = [None]
    if cfg.algorithm == "dsgd-minibatch":
        batches = [obj.n if b == "n" else min(int(b), obj.n) for b in (cfg.batch_size or [1])]
    for lvl_idx, (labels, sk) in enumerate(sketch_levels(cfg, obj.d)):
        for tok in cfg.step:
            kind, mult = _parse_step(tok)
            for tau in batches:
                if kind == "fixed":
                    gamma = mult
                elif tau is None:
                    gamma = mult * theory.step_dsgd(L_f, sk.L_S_max)
                else:
                    gamma = mult * theory.step_dsgd_minibatch(
                        L_f, float(L_i.max()), sk.L_S_max, obj.n, min(tau, obj.n),
                        cfg.sampling, float(L_i.mean()))
                for seed in cfg.seed_list():
                    rows.append({
                        "level": lvl_idx, "sketch_obj": sk, "sketch": sk.name,
                        "sparsity": float(sk.sparsity), "param": _sketch_param(sk),
                        "step_label": str(tok), "step_size": float(gamma),
                        "batch_size": tau, "seed": int(seed), **labels,
                    })
    return rows


# --- metrics ---------------------------------------------------------------------------

def eval_sketches(sk, count):
    """The fixed evaluation sketches of one distribution (common random numbers)."""
    if count == 0:
        return np.zeros((0, sk.d))
    return sk.sample(np.random.default_rng(EVAL_SEED), count)


def make_metrics(problem, v, eval_sets, test=True):
    """Metric function for the engine: X (d, R) -> dict of (R,) arrays.

    ``eval_sets`` is an array (N, d, R): the evaluation sketches of each column's
    distribution.  mast_loss(x) = (1/N) Σ_j f(v + s_j ⊙ (x − v)) (common random numbers:
    the same sketches at every iteration).  Every reduction is per column, so the
    numbers do not depend on the batch.
    """
    from .objectives import col_mean, col_sum

    obj, x_star = problem.obj, problem.x_star
    ds = problem.dataset
    Vc = v if v.ndim == 2 else v[:, None]

    def metrics(X):
        vals, G = obj.value_grad(X)
        out = {
            "erm_loss": vals,
            "grad_norm_sq": col_sum(G * G),
            "dist_sq": col_sum((X - x_star[:, None]) ** 2),
        }
        N = eval_sets.shape[0]
        if N:
            R = X.shape[1]
            Y = Vc[None] + eval_sets * (X - Vc)[None]                # (N, d, R)
            Yflat = np.moveaxis(Y, 0, 1).reshape(obj.d, N * R)       # column j*R + r
            fv = obj.value(Yflat).reshape(N, R)
            out["mast_loss"] = col_mean(fv)
        if test and ds.X_test is not None:
            z = ds.X_test @ X * ds.y_test[:, None]
            out["test_accuracy"] = col_mean((z > 0).astype(np.float64))
        return out

    return metrics


# --- algorithm runners -------------------------------------------------------------------

def _run_dsgd(problem, cfg, trajs, v, metrics_fn, progress):
    from .algorithms import dsgd

    batch = None
    if cfg.algorithm == "dsgd-minibatch":
        batch = [t["batch_size"] for t in trajs]
    return dsgd(problem.obj, [t["sketch_obj"] for t in trajs], [t["step_size"] for t in trajs],
                [t["seed"] for t in trajs], cfg.iters, v=v, batch_size=batch,
                sampling=cfg.sampling, log_every=cfg.effective_log_every(),
                metrics_fn=metrics_fn, progress=progress)


ALGORITHMS["dsgd"] = _run_dsgd
ALGORITHMS["dsgd-minibatch"] = _run_dsgd


# --- files ----------------------------------------------------------------------------------

def check_out_path(out):
    """Refuse an output folder that could not be created or written, without creating it.

    An empty path, an existing non-folder, or a missing folder whose nearest existing
    parent is not writable is a one-line error; nothing is written.
    """
    if str(out).strip() == "":
        raise MastError("output path '' is empty; name a folder")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MastError(f"output path '{out}' exists and is not a directory")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise MastError(f"output path '{out}': '{parent}' is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise MastError(f"cannot write to output folder '{out}': '{parent}' is not writable")
    return out


def prepare_out_dir(out):
    """Create the output folder (or check it is writable) with a one-line error."""
    out = check_out_path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out, prefix=".probe", delete=True)
        probe.close()
    except OSError as exc:
        raise MastError(f"cannot write to output folder '{out}': {exc.strerror or exc}") from None
    return out


def _git_info():
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "mast_cli"],
                                    capture_output=True, text=True, timeout=5).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, dirty if commit else None


def provenance():
    """Package versions, git commit and platform (written to metadata.json)."""
    from importlib.metadata import PackageNotFoundError, version

    import pandas
    import scipy
    import sklearn

    from . import __version__

    try:
        click_version = version("click")
    except PackageNotFoundError:  # pragma: no cover
        click_version = None

    commit, dirty = _git_info()
    return {
        "versions": {"mast": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
                     "sklearn": sklearn.__version__, "pandas": pandas.__version__,
                     "click": click_version, "python": platform.python_version()},
        "git_commit": commit, "git_dirty": dirty, "platform": platform.platform(),
    }


TRAJ_COLUMNS = ["algorithm", "sketch", "sparsity", "param", "step_label", "step_size", "batch_size",
                "seed", "iteration", "erm_loss", "grad_norm_sq", "dist_sq", "mast_loss",
                "test_accuracy", "status", "diverged_at"]


def history_frame(cfg, trajs, hist, extra_cols=None):
    """Tidy rows (trajectory × logged iteration) of one unit as a DataFrame.

    Rows after a trajectory diverged are dropped; the trajectory keeps status
    ``diverged`` and the iteration in ``diverged_at``.
    """
    import pandas as pd

    L = len(hist.iterations)
    frames = []
    for r, t in enumerate(trajs):
        keep = np.ones(L, dtype=bool)
        if hist.diverged_at[r] >= 0:
            keep = hist.iterations < hist.diverged_at[r]
        data = {
            "algorithm": cfg.algorithm, "sketch": t["sketch"], "sparsity": t["sparsity"],
            "param": t["param"], "step_label": t["step_label"], "step_size": t["step_size"],
            "batch_size": -1 if t["batch_size"] is None else t["batch_size"], "seed": t["seed"],
            "iteration": hist.iterations[keep],
        }
        for name, arr in hist.metrics.items():
            data[name] = arr[keep, r]
        data["status"] = "diverged" if hist.diverged_at[r] >= 0 else "ok"
        data["diverged_at"] = int(hist.diverged_at[r])
        for key, val in (extra_cols or {}).items():
            data[key] = val[r] if isinstance(val, (list, np.ndarray)) else val
        frames.append(pd.DataFrame(data))
    df = pd.concat(frames, ignore_index=True)
    cols = [c for c in TRAJ_COLUMNS if c in df.columns] + [c for c in df.columns if c not in TRAJ_COLUMNS]
    return df[cols]


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
    metrics_fn = make_metrics(problem, v, eval_sets)
    R = len(unit)
    step_cb = None if progress is None else (lambda k: progress(k * R))
    hist = ALGORITHMS[cfg.algorithm](problem, cfg, unit, v, metrics_fn, step_cb)
    df = history_frame(cfg, unit, hist, hist.extra.get("columns"))
    return df.to_csv(index=False, float_format=CSV_FLOAT_FORMAT)


def read_results_csv(text_or_path):
    """Read a results CSV written by mast (``nan`` stays NaN, strings stay strings)."""
    import io

    import pandas as pd

    src = io.StringIO(text_or_path) if isinstance(text_or_path, str) and "\n" in text_or_path \
        else text_or_path
    return pd.read_csv(src, keep_default_na=False, na_values=["nan", "NaN"])


def run_metadata(cfg, problem, trajs, n_units, wall_time):
    """metadata.json content of a run: config, constants per level, dataset, provenance."""
    from .constants import compute_constants

    levels, seen = [], set()
    for t in trajs:
        if t["level"] not in seen:
            seen.add(t["level"])
            levels.append(compute_constants(problem.obj, t["sketch_obj"], x_star=problem.x_star))
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
        **(METADATA_HOOKS[cfg.algorithm](cfg, problem, trajs) if cfg.algorithm in METADATA_HOOKS else {}),
        **_mast_loss_reference(cfg, problem, trajs),
        **provenance(),
    }


def _mast_loss_reference(cfg, problem, trajs):
    """Exact minimum of each level's mast_loss estimate (Algorithm 1 runs; see delta.py)."""
    if cfg.algorithm not in ("dsgd", "dsgd-minibatch") or not cfg.eval_sketches:
        return {}
    from .delta import mast_loss_reference

    return mast_loss_reference(cfg, problem, trajs)


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
    import pandas as pd

    validate_config(cfg)
    t0 = time.time()
    problem = load_problem(cfg.dataset, cfg.objective, cfg.lam)
    resolve_shift(cfg.shift, problem)
    trajs = expand_trajectories(cfg, problem)
    units = plan_run_units(cfg, problem, trajs)
    out = prepare_out_dir(out)
    store = UnitStore(out / ".parts")
    store.clean_temporary()
    todo = [(k, s) for k, s in units if force or not store.has(k)]
    total = cfg.iters * sum(s["stop"] - s["start"] for _, s in todo)
    ctx = progress_factory(total) if progress_factory else _NullProgress()
    with ctx as bar:
        for key, spec in todo:
            if force:
                store.discard(key)
            store.save(key, compute_run_unit(spec, bar.update), spec)
    table = pd.concat([read_results_csv(store.path(k)) for k, _ in units], ignore_index=True)
    atomic_write_text(out / "trajectories.csv", table.to_csv(index=False, float_format=CSV_FLOAT_FORMAT))
    meta = run_metadata(cfg, problem, trajs, len(units), time.time() - t0)
    atomic_write_text(out / "metadata.json", json.dumps(meta, indent=2, default=_json_default) + "\n")
    return table


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return str(o)


class _NullProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass


from . import experiments_alg23  # noqa: E402,F401  (registers Algorithms 2 and 3)
