"""The problem of an experiment: dataset + objective + exact ERM solution (cached per process)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..core.objective import make_objective
from ..io.data import load_dataset
from ..solvers.newton import solve_erm

__all__ = ["Problem", "load_problem"]


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
    ds = load_dataset(dataset)
    obj = make_objective(objective, ds.X, ds.y, lam)
    x_star, info = solve_erm(obj)
    return Problem(ds, obj, x_star, float(obj.value(x_star)), info)
