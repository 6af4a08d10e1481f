"""The problem of an experiment: dataset + objective + exact ERM solution (cached per process)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..core.objective import make_objective
from ..io.data import load_dataset, validation_split
from ..io.errors import MastError
from ..solvers.newton import solve_erm

__all__ = ["Problem", "load_problem", "cached", "clear_cache", "CACHE_SIZE"]

#: Most entries of the per-process cache (problems, worker splits, sketch pools, x*_pool).
CACHE_SIZE = 16
_CACHE = OrderedDict()


def cached(key, make):
    """The one cache policy of the experiments: per process, least recently used out.

    Parameters
    ----------
    key : hashable
        What the value depends on (a tuple starting with its kind, e.g. ``"problem"``).
    make : callable
        () -> value, called when ``key`` is not cached (an exception caches nothing).

    Returns
    -------
    object
        The cached or new value; at most :data:`CACHE_SIZE` values are kept.
    """
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = make()
    _CACHE[key] = value
    if len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return value


def clear_cache():
    """Forget every cached value (problems, splits, pools) of this process."""
    _CACHE.clear()


@dataclass
class Problem:
    """Everything derived from (dataset, objective, λ) once per process: the data, f and x*.

    For a pruning experiment (``val_fraction`` given to :func:`load_problem`) ``obj`` is
    the objective of the training part and ``X_val``, ``y_val`` the validation split.
    """

    dataset: object
    obj: object
    x_star: np.ndarray
    f_inf: float
    erm_info: dict
    X_val: object = None
    y_val: np.ndarray | None = None


def load_problem(dataset, objective="logreg", lam=1e-3, val_fraction=None, seed=0):
    """Load the data, build the objective and solve the ERM problem exactly (cached per process).

    Parameters
    ----------
    dataset : str
        A dataset name or path (:func:`~mast_cli.io.data.load_dataset`).
    objective : str, default="logreg"
        An objective of :data:`~mast_cli.core.objective.OBJECTIVES`.
    lam : float, default=1e-3
        λ.
    val_fraction : float, optional
        Carve a validation split of this fraction (seeded by ``seed``) and build f on the
        remaining training rows (pruning, mast-theory §6.1); it needs a test split.
    seed : int, default=0
        Seed of the validation split.

    Returns
    -------
    Problem
        The dataset, f, x* = argmin f, f^inf and the solver's info.

    Raises
    ------
    MastError
        For an unknown dataset or objective, or a pruning problem without a test split.
    """
    def make():
        ds = load_dataset(dataset)
        X, y, X_val, y_val = ds.X, ds.y, None, None
        if val_fraction is not None:
            if ds.X_test is None:
                raise MastError(f"dataset '{dataset}' has no test split ({dataset}.t); pruning needs one")
            rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3])
            X, y, X_val, y_val = validation_split(ds.X, ds.y, val_fraction, rng)
        obj = make_objective(objective, X, y, lam)
        x_star, info = solve_erm(obj)
        return Problem(ds, obj, x_star, float(obj.value(x_star)), info, X_val, y_val)

    split = None if val_fraction is None else (val_fraction, seed)
    return cached(("problem", dataset, objective, lam, split), make)


load_problem.cache_clear = clear_cache      # the former functools.lru_cache's name, kept for callers
