"""Layer 4 — experiments: config → units → CSV + metadata.json.

- :mod:`~mast_cli.experiments.config` — ``RunConfig``, TOML files, step and sketch tokens.
- :mod:`~mast_cli.experiments.problem` — ``Problem`` (dataset + objective + x*), cached.
- :mod:`~mast_cli.experiments.trajectories` — sketch levels, metrics, tidy rows of a unit.
- :mod:`~mast_cli.experiments.alg1`, :mod:`~mast_cli.experiments.alg23` — sweeps, runners
  and metadata of Algorithms 1, 2 and 3.
- :mod:`~mast_cli.experiments.run` — ``mast run``: the algorithm table and the resumable run.
- :mod:`~mast_cli.experiments.prune` — ``mast prune``: pruning robustness (Figs. 1, 3, 4).
- :mod:`~mast_cli.experiments.delta` — the Δ(sparsity) study.
- :mod:`~mast_cli.experiments.kinds` — the table of experiment kinds (run, prune, delta).
- :mod:`~mast_cli.experiments.units` — the one resumable unit loop (store, force, progress,
  joblib/dask).
- :mod:`~mast_cli.experiments.suite` — ``mast reproduce``: every figure from ``experiments/``.

The names below were the public surface of the former module ``mast_cli.experiments``;
they are re-exported here for compatibility.  Code inside :mod:`mast_cli` imports them
from their modules.
"""

from ..core.evaluation import EVAL_SEED, eval_sketches
from ..io.outputs import (CSV_FLOAT_FORMAT, check_out_path, prepare_out_dir, provenance,
                          read_results_csv)
from ..io.store import atomic_write_text
from ..shifts import resolve_shift
from .config import EXPERIMENT_FILE_KEYS, RunConfig, is_number, load_config_file, sketch_names
from .problem import Problem, load_problem
from .run import (ALGORITHMS, compute_run_unit, expand_trajectories, plan_run_units, run_experiment,
                  run_metadata, validate_config)
from .trajectories import history_frame, make_metrics, sketch_levels

__all__ = [
    "RunConfig", "Problem", "load_problem", "expand_trajectories", "run_experiment", "load_config_file",
    "atomic_write_text", "ALGORITHMS", "CSV_FLOAT_FORMAT", "EVAL_SEED", "EXPERIMENT_FILE_KEYS",
    "check_out_path", "compute_run_unit", "eval_sketches", "history_frame", "is_number", "make_metrics",
    "plan_run_units", "prepare_out_dir", "provenance", "read_results_csv", "resolve_shift", "run_metadata",
    "sketch_levels", "sketch_names", "validate_config",
]
