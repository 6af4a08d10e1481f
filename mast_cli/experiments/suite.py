"""The experiment suite behind ``mast reproduce``: every paper figure from TOML files.

Each file in ``experiments/`` describes one figure::

    kind = "prune"                 # run | prune | delta
    figure = "Fig. 1"
    caption = "Test accuracies distributions of sparsified solutions ..."
    metric = "erm_loss"            # for kind = run: what the figure plots
    x = ["iteration", "coords"]    # for kind = run: x axes (iteration, epochs, coords, time)
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
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..io.errors import MastError
from ..io.outputs import NullProgress, check_out_path, prepare_out_dir, read_results_csv
from ..io.store import UnitStore, atomic_write_text
from ..plotting import METRIC_LABELS, PLOTTERS
from .config import EXPERIMENT_FILE_KEYS
from .kinds import KINDS, compute_unit, kind_of
from .units import parallel_backend, pending, run_units, write_metadata, write_table

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
    x: object = "iteration"
    source: str = ""


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
    cls = kind_of(kind).config
    metric = raw.get("metric", "erm_loss")
    if kind == "run":
        if metric not in METRIC_LABELS:
            raise MastError(f"experiment file '{path}': unknown metric '{metric}'; choose one of "
                            f"{', '.join(METRIC_LABELS)}")
    x_axes = raw.get("x", "iteration")
    from ..plotting import X_AXES

    for ax_name in [x_axes] if isinstance(x_axes, str) else x_axes if isinstance(x_axes, list) else [x_axes]:
        if ax_name not in X_AXES:
            raise MastError(f"experiment file '{path}': unknown x axis {ax_name!r}; choose one of "
                            f"{', '.join(X_AXES)}")
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
                      x=x_axes, source=str(path))


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


def plan_suite(experiments):
    """Units of every experiment: list of (experiment, [(key, spec)], context)."""
    return [(exp, *kind_of(exp.kind).plan(exp.config)) for exp in experiments]


RESULT_FILES = {name: kind.result_file for name, kind in KINDS.items()}


def assemble(exp, units, context, results_root, wall_time):
    """Concatenate an experiment's unit results into its CSV + metadata.json."""
    kind = kind_of(exp.kind)
    folder = Path(results_root) / exp.name
    keep = ("time",) if getattr(exp.config, "record_time", False) else ()
    table = write_table(UnitStore(folder), units, folder / kind.result_file, keep=keep)
    meta = kind.metadata(exp.config, units, context, wall_time)
    if "timing" in table.attrs:
        meta["timing"] = table.attrs["timing"]
    meta.update({"experiment": exp.name, "figure": exp.figure, "caption": exp.caption,
                 "experiment_file": exp.source})
    write_metadata(folder / "metadata.json", meta)
    return folder


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
    t0 = time.time()
    plan = plan_suite(experiments)
    results_root = Path(results_root)
    if plot:
        check_out_path(plots_root)                   # refused before any unit is computed
    backend, n_jobs = parallel_backend(jobs, scheduler)     # an unreachable scheduler writes nothing
    prepare_out_dir(results_root)
    tasks = [t for exp, units, _ in plan for t in pending(UnitStore(results_root / exp.name), units, force)]
    total = sum(len(u) for _, u, _ in plan)
    with (progress_factory(len(tasks)) if progress_factory else NullProgress()) as bar, backend:
        if tasks:
            run_units(tasks, compute_unit, bar, n_jobs, scheduler is not None, force)
    figures = []
    for exp, units, context in plan:
        folder = assemble(exp, units, context, results_root, time.time() - t0)
        if plot:
            plotter = PLOTTERS[kind_of(exp.kind).result_file]
            figures += plotter(folder, metric=exp.metric, out=plots_root, name=exp.name, x=exp.x)
    if plot:
        write_plots_readme(plan, plots_root, results_root)
    return {"units_total": total, "units_run": len(tasks), "wall_time_s": time.time() - t0,
            "figures": figures}


def claim_datasets(main=None):
    """Datasets the claims report covers: every bundled dataset with a test split (``NAME.t``),
    plus ``main``."""
    from ..io.data import bundled_dir

    names = sorted(p.name[:-len(".t.bz2")] for p in Path(bundled_dir()).glob("*.t.bz2"))
    if main is not None and main not in names:
        names.append(main)
    return names


def run_claims(datasets, main_dataset, experiments_dir=None, results_root="results", plots_root="plots",
               jobs=1, scheduler=None, progress_factory=None):
    """The claims report (:mod:`mast_cli.claims`) on ``datasets``: compute the missing units of
    the experiments the claims read (``main_dataset`` in ``results_root``, the others in
    ``results_root/claims/<dataset>``, no figures), then write ``results_root/claims.csv``,
    ``plots_root/claims.csv`` and the claims section of ``plots_root/README.md``.

    Returns the claims table (pandas.DataFrame).
    """
    from .claims import CLAIM_EXPERIMENTS, claims_table_markdown, evaluate_claims
    from ..io.outputs import CSV_FLOAT_FORMAT
    from ..io.store import atomic_write_text

    folder = Path(experiments_dir) if experiments_dir is not None else default_experiments_dir()
    names = [n for n in CLAIM_EXPERIMENTS if (folder / f"{n}.toml").is_file()]
    if not names:
        return None
    folders = {}
    for ds in datasets:
        root = Path(results_root) if ds == main_dataset else Path(results_root) / "claims" / ds
        exps = load_suite(folder, dataset=ds, only=names)
        reproduce(exps, root, plots_root, jobs=jobs, scheduler=scheduler, progress_factory=progress_factory,
                  plot=False)
        folders[ds] = {e.name: root / e.name for e in exps}
    table = evaluate_claims(folders)
    text = table.to_csv(index=False, float_format=CSV_FLOAT_FORMAT)
    atomic_write_text(Path(results_root) / "claims.csv", text)
    Path(plots_root).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(plots_root) / "claims.csv", text)
    readme = Path(plots_root) / "README.md"
    body = readme.read_text(encoding="utf-8") if readme.is_file() else "# Figures\n"
    body = body.split(CLAIMS_HEADER)[0].rstrip("\n") + "\n\n"
    section = [CLAIMS_HEADER, "",
               "Made by `mast reproduce` (module `mast_cli.experiments.claims`; definitions of each effect, interval and",
               "verdict there and in the README). One row per dataset, claim, experiment and MAST model:",
               "`exact` is x*_D (pool minimizer), `dsgd:last` / `dsgd:best_masked_val` the trained iterates.",
               "Bootstrap 95% intervals; `claims.csv` has the measure and per-level details.", "",
               claims_table_markdown(table), ""]
    atomic_write_text(readme, body + "\n".join(section))
    return table


CLAIMS_HEADER = "## Claims report"


def _gap_lines(exp, results_root):
    """Per-level optimality gaps f_D(x̂) − f_D^inf of a pruning experiment's MAST models."""
    if exp.kind != "prune" or results_root is None:
        return []
    path = Path(results_root) / exp.name / "pruning.csv"
    if not path.is_file():
        return []
    df = read_results_csv(path)
    if "fD_gap" not in df.columns:
        return []
    mast = df[df.formulation == "mast"]
    tol = getattr(exp.config, "gap_tol", 1e-3)
    lines = [f"- MAST models and their f_D gap f_D(x̂) − f_D^inf per level (pool of "
             f"{int(df.pool_size.iloc[0])} sketches; tolerance {tol:g}; DSGD iterate selection: best mean "
             f"masked validation accuracy over {getattr(exp.config, 'val_masks', '?')} fixed masks):"]
    for sel, g in mast.groupby("selection", sort=False):
        gaps = g.groupby("sparsity").fD_gap.first()
        over = int((gaps > tol).sum())
        lines.append(f"  - `{sel}`: " + ", ".join(f"{s:.0%} {v:.1e}" for s, v in gaps.items())
                     + (f" ({over} levels above tolerance)" if over else " (all below tolerance)"))
    return lines


def write_plots_readme(plan, plots_root, results_root=None):
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
    claims = ""
    if readme.is_file():
        old = readme.read_text(encoding="utf-8")
        if CLAIMS_HEADER in old:                    # the claims report of an earlier run is kept
            old, claims = old.split(CLAIMS_HEADER, 1)
            claims = CLAIMS_HEADER + claims
        for block in old.split("\n## ")[1:]:
            m = re.match(r".*: `([^`]+)`\n", block)
            if m and any(Path(plots_root).glob(f"{m.group(1)}*.png")):
                entries[m.group(1)] = "## " + block.rstrip("\n") + "\n"
    for exp, _, _ in plan:
        lines = [f"## {exp.figure or exp.name}: `{exp.name}`", "",
                 f"> {exp.caption}" if exp.caption else "", "",
                 f"- config: `{Path(exp.source).relative_to(Path(exp.source).parent.parent)}`"
                 if exp.source else "",
                 f"- dataset: `{exp.config.dataset}`", *_gap_lines(exp, results_root), ""]
        entries[exp.name] = "\n".join(lines)
    order = sorted(entries, key=lambda name: (not name.startswith("fig"), name))
    Path(plots_root).mkdir(parents=True, exist_ok=True)
    atomic_write_text(readme, "\n".join(header) + "\n" + "\n".join(entries[k] for k in order)
                      + ("\n" + claims if claims else ""))
