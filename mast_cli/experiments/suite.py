"""The experiment suite behind ``mast reproduce``: every paper figure from TOML files.

Each file in ``experiments/`` describes one figure::

    kind = "prune"                 # run | prune | delta
    figure = "Fig. 1"
    caption = "Test accuracies distributions of sparsified solutions ..."
    metric = "erm_loss"            # for kind = run: what the figure plots
    [config]                       # the keys of `mast run` / `mast prune` / the delta study
    sketch = "bernoulli"
    ...

``mast reproduce`` expands every experiment into units (groups of trajectories, one
sparsity level, ...), computes the units whose results are missing, and assembles
each experiment's CSV and figure.  A unit's result is stored under
``results/<experiment>/<unit hash>/`` atomically (see :mod:`mast_cli.io.store`), so an
interrupted suite resumes where it stopped and yields the same final CSV files as an
uninterrupted one.  Units run in parallel with joblib (``--jobs``) or on a
dask.distributed cluster (``--scheduler``) through the same joblib code path.
"""

from __future__ import annotations

import dataclasses
import json
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..io.data import load_dataset
from ..io.errors import MastError
from ..io.outputs import CSV_FLOAT_FORMAT, NullProgress, check_out_path, json_default, prepare_out_dir, provenance
from ..io.outputs import read_results_csv
from ..io.store import UnitStore, atomic_write_text
from ..plotting import METRIC_LABELS, PLOTTERS
from ..shifts import resolve_shift
from .config import EXPERIMENT_FILE_KEYS, RunConfig
from .delta import DeltaConfig, compute_delta_unit, plan_delta_units, validate_delta
from .problem import load_problem
from .prune import PruneConfig, check_prune, compute_prune_unit, plan_prune_units
from .run import compute_run_unit, expand_trajectories, plan_run_units, run_metadata, validate_config

__all__ = ["Experiment", "load_suite", "plan_suite", "compute_unit", "reproduce", "KINDS",
           "default_experiments_dir"]


def default_experiments_dir():
    """The repository's ``experiments/`` folder."""
    return Path(__file__).resolve().parents[2] / "experiments"


@dataclass
class Experiment:
    """One figure of the suite."""

    name: str
    kind: str
    config: object
    figure: str = ""
    caption: str = ""
    metric: str = "erm_loss"
    source: str = ""


def _config_class(kind):
    if kind == "run":
        return RunConfig
    if kind == "prune":
        return PruneConfig
    if kind == "delta":
        return DeltaConfig
    raise MastError(f"unknown experiment kind '{kind}'; choose run, prune or delta")


KINDS = ("run", "prune", "delta")


def load_experiment(path, dataset=None, overrides=None):
    """Read one experiment TOML file; ``dataset`` replaces its dataset."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MastError(f"experiment file '{path}' is not valid TOML: {' '.join(str(exc).split())}") from None
    unknown = set(raw) - EXPERIMENT_FILE_KEYS
    if unknown:
        raise MastError(f"experiment file '{path}': unknown key '{sorted(unknown)[0]}'")
    kind = raw.get("kind", "run")
    cls = _config_class(kind)
    metric = raw.get("metric", "erm_loss")
    if kind == "run":
        if metric not in METRIC_LABELS:
            raise MastError(f"experiment file '{path}': unknown metric '{metric}'; choose one of "
                            f"{', '.join(METRIC_LABELS)}")
    conf = {k.replace("-", "_"): v for k, v in raw.get("config", {}).items()}
    fields = {f.name for f in dataclasses.fields(cls)}
    bad = set(conf) - fields
    if bad:
        raise MastError(f"experiment file '{path}': unknown config key '{sorted(bad)[0]}'")
    if dataset is not None:
        conf["dataset"] = dataset
    conf.update(overrides or {})
    return Experiment(name=path.stem, kind=kind, config=cls(**conf), figure=raw.get("figure", ""),
                      caption=raw.get("caption", ""), metric=raw.get("metric", "erm_loss"),
                      source=str(path))


def load_suite(folder=None, dataset=None, only=None, overrides=None):
    """All experiments of ``folder`` (default: the repository's ``experiments/``)."""
    folder = Path(folder) if folder is not None else default_experiments_dir()
    if not folder.is_dir():
        raise MastError(f"experiments folder '{folder}' does not exist")
    files = sorted(folder.glob("*.toml"))
    if only:
        names = {f.stem for f in files}
        for name in only:
            if name not in names:
                raise MastError(f"unknown experiment '{name}'; available: {', '.join(sorted(names))}")
        files = [f for f in files if f.stem in only]
    if not files:
        raise MastError(f"no experiment files (*.toml) in '{folder}'")
    return [load_experiment(f, dataset, overrides) for f in files]


def _validate_and_plan(exp):
    """(units, context) of one experiment; every error is raised before work starts."""
    if exp.kind == "run":
        validate_config(exp.config)
        problem = load_problem(exp.config.dataset, exp.config.objective, exp.config.lam)
        resolve_shift(exp.config.shift, problem)
        trajs = expand_trajectories(exp.config, problem)
        return plan_run_units(exp.config, problem, trajs), (problem, trajs)
    if exp.kind == "prune":
        ds = check_prune(exp.config)[0]
        return plan_prune_units(exp.config, ds.sha256), None
    validate_delta(exp.config)
    return plan_delta_units(exp.config), None


def plan_suite(experiments):
    """Units of every experiment: list of (experiment, [(key, spec)], context)."""
    return [(exp, *_validate_and_plan(exp)) for exp in experiments]


def compute_unit(spec):
    """Compute one unit (any kind) and return its CSV text.  Picklable entry point."""
    kind = spec["kind"]
    if kind == "run":
        return compute_run_unit(spec)
    if kind == "prune":
        return compute_prune_unit(spec)
    if kind == "delta":
        return compute_delta_unit(spec)
    raise MastError(f"unknown unit kind '{kind}'")


def _compute_and_store(root, key, spec):
    """Worker task: compute a unit and publish it atomically; returns its key."""
    UnitStore(root).save(key, compute_unit(spec), spec)
    return key


RESULT_FILES = {"run": "trajectories.csv", "prune": "pruning.csv", "delta": "delta.csv"}


def assemble(exp, units, context, results_root, wall_time):
    """Concatenate an experiment's unit results into its CSV + metadata.json."""
    import pandas as pd

    folder = Path(results_root) / exp.name
    store = UnitStore(folder)
    table = pd.concat([read_results_csv(store.path(k)) for k, _ in units], ignore_index=True)
    atomic_write_text(folder / RESULT_FILES[exp.kind], table.to_csv(index=False, float_format=CSV_FLOAT_FORMAT))
    if exp.kind == "run":
        problem, trajs = context
        meta = run_metadata(exp.config, problem, trajs, len(units), wall_time)
        meta["command"] = "mast reproduce"
    else:
        meta = {"command": "mast reproduce", "config": exp.config.to_dict(), **provenance()}
        if exp.kind == "prune":
            meta["dataset"] = load_dataset(exp.config.dataset).summary()
    meta.update({"experiment": exp.name, "figure": exp.figure, "caption": exp.caption,
                 "experiment_file": exp.source})
    atomic_write_text(folder / "metadata.json", json.dumps(meta, indent=2, default=json_default) + "\n")
    return folder


def _backend(jobs, scheduler):
    """A context manager selecting joblib's backend: local processes or a dask cluster."""
    import contextlib

    import joblib

    if scheduler is None:
        return contextlib.nullcontext(), jobs
    try:
        from dask.distributed import Client
    except ImportError:
        raise MastError("--scheduler needs dask.distributed: pip install '.[dask]'") from None
    try:
        client = Client(scheduler, timeout="10s") if isinstance(scheduler, str) else scheduler
    except (OSError, TimeoutError, ValueError) as exc:
        raise MastError(f"cannot reach the dask scheduler at '{scheduler}': {exc}") from None

    @contextlib.contextmanager
    def ctx():
        try:
            with joblib.parallel_config(backend="dask"):
                yield
        finally:
            if isinstance(scheduler, str):
                client.close()

    return ctx(), -1


def reproduce(experiments, results_root="results", plots_root="plots", jobs=1, scheduler=None,
              force=False, progress_factory=None, plot=True, log=None):
    """Run every missing unit of ``experiments``, assemble their CSVs and draw their figures.

    Parameters
    ----------
    experiments : list of Experiment
    results_root, plots_root : path
    jobs : int
        joblib workers (local processes); ignored with ``scheduler``.
    scheduler : str or dask.distributed.Client, optional
        ``tcp://host:port`` of a dask.distributed scheduler (or a client): units go to the
        cluster through joblib's dask backend — the same code path.
    force : bool
        Recompute every unit.

    Returns
    -------
    dict with ``units_total``, ``units_run``, ``wall_time_s``, ``figures`` (paths).
    """
    from joblib import Parallel, delayed

    t0 = time.time()
    plan = plan_suite(experiments)
    results_root = Path(results_root)
    if plot:
        check_out_path(plots_root)                   # refused before any unit is computed
    backend, n_jobs = _backend(jobs, scheduler)     # an unreachable scheduler writes nothing
    prepare_out_dir(results_root)
    tasks = []
    for exp, units, _ in plan:
        store = UnitStore(results_root / exp.name)
        store.clean_temporary()
        for key, spec in units:
            if force:
                store.discard(key)
            if not store.has(key):
                tasks.append((str(store.root), key, spec))
    total = sum(len(u) for _, u, _ in plan)
    ctx = progress_factory(len(tasks)) if progress_factory else NullProgress()
    with ctx as bar, backend:
        if tasks:
            if n_jobs == 1 and scheduler is None:
                for root, key, spec in tasks:
                    _compute_and_store(root, key, spec)
                    bar.update(1)
            else:
                par = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
                for _ in par(delayed(_compute_and_store)(*t) for t in tasks):
                    bar.update(1)
    figures = []
    for exp, units, context in plan:
        folder = assemble(exp, units, context, results_root, time.time() - t0)
        if plot:
            fname = RESULT_FILES[exp.kind]
            figures += PLOTTERS[fname](folder, metric=exp.metric, out=plots_root, name=exp.name)
    if plot:
        write_plots_readme(plan, plots_root)
    return {"units_total": total, "units_run": len(tasks), "wall_time_s": time.time() - t0,
            "figures": figures}


def write_plots_readme(plan, plots_root):
    """``plots/README.md``: each figure with the paper caption it reproduces and its config.

    Entries of experiments outside ``plan`` (an earlier ``--only`` run) are kept; the
    paper's figures come first, then the other studies, each group by name.
    """
    import re

    readme = Path(plots_root) / "README.md"
    header = ["# Figures", "",
              "Made by `make reproduce` (`mast reproduce`) from the experiment files in `experiments/`.",
              "Each figure has a PDF, a PNG and a CSV of the plotted numbers; the raw results are in",
              "`results/<experiment>/`. Rerun `mast plot results/<experiment>` to redraw one.", ""]
    entries = {}
    if readme.is_file():
        for block in readme.read_text(encoding="utf-8").split("\n## ")[1:]:
            m = re.match(r".*: `([^`]+)`\n", block)
            if m and any(Path(plots_root).glob(f"{m.group(1)}*.png")):
                entries[m.group(1)] = "## " + block.rstrip("\n") + "\n"
    for exp, _, _ in plan:
        lines = [f"## {exp.figure or exp.name}: `{exp.name}`", "",
                 f"> {exp.caption}" if exp.caption else "", "",
                 f"- config: `{Path(exp.source).relative_to(Path(exp.source).parent.parent)}`"
                 if exp.source else "",
                 f"- dataset: `{exp.config.dataset}`", ""]
        entries[exp.name] = "\n".join(lines)
    order = sorted(entries, key=lambda name: (not name.startswith("fig"), name))
    Path(plots_root).mkdir(parents=True, exist_ok=True)
    atomic_write_text(readme, "\n".join(header) + "\n" + "\n".join(entries[k] for k in order))
