"""The one resumable unit loop of every experiment kind (run, prune, delta; mast run,
mast prune, mast reproduce).

A unit is a picklable ``spec`` (a plain dict) whose result is CSV text.  Finished units
live in a :class:`~mast_cli.io.store.UnitStore`; a unit already there is not recomputed
(unless ``force``), so an interrupted experiment resumes where it stopped.  Units run in
this process, in joblib worker processes, or on a dask.distributed cluster through
joblib's dask backend: the same code path.
"""

from __future__ import annotations

import contextlib
import json

from ..io.errors import MastError
from ..io.outputs import CSV_FLOAT_FORMAT, NullProgress, json_default, read_results_csv
from ..io.store import UnitStore, atomic_write_text

__all__ = ["pending", "compute_and_store", "run_units", "compute_missing", "write_table", "write_metadata",
           "parallel_backend", "timing_summary", "TIMING_COLUMNS"]


def pending(store, units, force=False):
    """The tasks (root, key, spec) of ``units`` whose results are not in ``store`` (all with ``force``).

    Leftover temporary folders of interrupted units are removed first.
    """
    store.clean_temporary()
    return [(str(store.root), key, spec) for key, spec in units if force or not store.has(key)]


def compute_and_store(root, key, spec, compute, force=False, progress=None):
    """Compute one unit with ``compute(spec[, progress])`` and publish it atomically; returns its key."""
    store = UnitStore(root)
    if force:
        store.discard(key)
    store.save(key, compute(spec) if progress is None else compute(spec, progress), spec)
    return key


def run_units(tasks, compute, bar, n_jobs=1, distributed=False, force=False, steps=False):
    """Compute every task (root, key, spec), reporting to the progress bar ``bar``.

    ``steps``: ``compute`` reports its own progress (``compute(spec, bar.update)``, serial
    only); otherwise ``bar.update(1)`` after each unit.  ``n_jobs > 1`` or ``distributed``:
    joblib workers (under the backend selected by :func:`parallel_backend`).
    """
    if n_jobs == 1 and not distributed:
        for root, key, spec in tasks:
            compute_and_store(root, key, spec, compute, force, bar.update if steps else None)
            if not steps:
                bar.update(1)
        return
    from joblib import Parallel, delayed

    par = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    for _ in par(delayed(compute_and_store)(root, key, spec, compute, force) for root, key, spec in tasks):
        bar.update(1)


def compute_missing(units, root, compute, progress_factory=None, force=False, work=None):
    """Compute (in this process) the units of one experiment missing from ``root``.

    ``work(spec)``: the progress units of one unit (``compute`` then reports them itself);
    by default one per unit.  Returns the :class:`UnitStore`.
    """
    store = UnitStore(root)
    tasks = pending(store, units, force)
    total = len(tasks) if work is None else sum(work(spec) for _, _, spec in tasks)
    with (progress_factory(total) if progress_factory else NullProgress()) as bar:
        run_units(tasks, compute, bar, force=force, steps=work is not None)
    return store


#: Wall-clock columns of the units' results (``mast run``): kept in the units' parts, left
#: out of the assembled CSV (whose bytes must not depend on the machine's load) unless asked.
TIMING_COLUMNS = ("time", "metric_time")


def timing_summary(parts):
    """Seconds spent in the steps and in metric evaluation, summed over units.

    ``parts``: the units' tables; a unit's totals are the largest values of its cumulative
    ``time`` / ``metric_time`` columns.  None when no part has them (prune, delta, parts
    written before they existed).
    """
    steps = metric = 0.0
    found = False
    for df in parts:
        if "time" in df.columns and "metric_time" in df.columns and len(df):
            steps += float(df["time"].max())
            metric += float(df["metric_time"].max())
            found = True
    if not found:
        return None
    total = steps + metric
    return {"steps_s": round(steps, 3), "metrics_s": round(metric, 3),
            "metric_share": round(metric / total, 4) if total > 0 else 0.0}


def write_table(store, units, path, keep=()):
    """Concatenate the units' CSV results, in plan order, into ``path``; returns the table.

    Columns of :data:`TIMING_COLUMNS` not in ``keep`` are left out of the file and of the
    returned table; their totals are in ``table.attrs["timing"]`` (:func:`timing_summary`).
    """
    import pandas as pd

    parts = [read_results_csv(store.path(k)) for k, _ in units]
    table = pd.concat(parts, ignore_index=True)
    timing = timing_summary(parts)
    table = table.drop(columns=[c for c in TIMING_COLUMNS if c in table.columns and c not in keep])
    atomic_write_text(path, table.to_csv(index=False, float_format=CSV_FLOAT_FORMAT))
    if timing is not None:
        table.attrs["timing"] = timing
    return table


def write_metadata(path, meta):
    """Write ``metadata.json`` (indented, NumPy values encoded by :func:`json_default`)."""
    atomic_write_text(path, json.dumps(meta, indent=2, default=json_default) + "\n")


def parallel_backend(jobs, scheduler):
    """(context manager, n_jobs): joblib's backend, local processes or a dask cluster.

    ``scheduler``: None (``jobs`` local processes), an address ``tcp://host:port`` or a
    ``dask.distributed.Client``.  An unreachable scheduler is a one-line error.
    """
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
