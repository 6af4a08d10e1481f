"""The table of experiment kinds: run, prune, delta.

Each kind declares its config class, how a config is validated and split into units
(``plan``: every error before any work), how one unit is computed (``compute``: a
picklable spec in, CSV text out), the file its units are assembled into, and the
metadata ``mast reproduce`` writes beside it.  The suite, the CLI and the unit loop
dispatch on this table, never on if-chains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..io.errors import MastError
from ..io.outputs import provenance
from .config import RunConfig
from .delta import DeltaConfig, compute_delta_unit, plan_delta
from .prune import PruneConfig, compute_prune_unit, plan_prune
from .run import compute_run_unit, plan_run, run_metadata

__all__ = ["Kind", "KINDS", "kind_of", "compute_unit"]


@dataclass(frozen=True)
class Kind:
    """One experiment kind.

    Attributes
    ----------
    name : str
    config : type
        The dataclass of its options (TOML ``[config]`` keys).
    plan : callable cfg -> (units, context)
        Validates and splits into units [(key, spec)]; ``context`` is passed to ``metadata``.
    compute : callable spec -> str
        One unit's CSV text.
    result_file : str
        The CSV its units are assembled into.
    metadata : callable (cfg, units, context, wall_time) -> dict
        The ``metadata.json`` of a ``mast reproduce`` experiment.
    """

    name: str
    config: type
    plan: Callable
    compute: Callable
    result_file: str
    metadata: Callable


def _run_meta(cfg, units, context, wall_time):
    problem, trajs = context
    return {**run_metadata(cfg, problem, trajs, len(units), wall_time), "command": "mast reproduce"}


def _prune_meta(cfg, units, context, wall_time):
    return {"command": "mast reproduce", "config": cfg.to_dict(), **provenance(),
            "dataset": context.dataset.summary()}


def _delta_meta(cfg, units, context, wall_time):
    return {"command": "mast reproduce", "config": cfg.to_dict(), **provenance()}


KINDS = {
    "run": Kind("run", RunConfig, plan_run, compute_run_unit, "trajectories.csv", _run_meta),
    "prune": Kind("prune", PruneConfig, plan_prune, compute_prune_unit, "pruning.csv", _prune_meta),
    "delta": Kind("delta", DeltaConfig, plan_delta, compute_delta_unit, "delta.csv", _delta_meta),
}


def kind_of(name, what="experiment kind"):
    """The :class:`Kind` called ``name``; a one-line error for an unknown one."""
    if name not in KINDS:
        raise MastError(f"unknown {what} '{name}'; choose run, prune or delta")
    return KINDS[name]


def compute_unit(spec):
    """Compute one unit of any kind and return its CSV text (picklable entry point)."""
    return kind_of(spec["kind"], "unit kind").compute(spec)
