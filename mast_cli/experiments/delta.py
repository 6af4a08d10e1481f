"""The sparsification gap Δ(sparsity) = f_D^inf − f^inf (mast-theory §3.4, §5, §7.2).

Δ controls the neighbourhood of Theorem 2 and of Lemma 4's ABC bound; the paper never
measures it.  Per sparsity level, f_D is replaced by its sample-average approximation
over a fixed pool of N sketches (seeded), minimized exactly by Newton's method
(:func:`mast_cli.reference.solve_pool`).  Reported with the Monte Carlo standard error
of f_D at the pooled minimizer, and Theorem 1's bounds [RECON]:

    f^inf + (μ_f/2)(μ_D − 1)‖x*_D − v‖²  ≤  f_D^inf  ≤  f^inf + (L_f/2)(L_D − 1)‖x* − v‖².

With several ``shifts`` (pre-trained models v ≠ 0, :mod:`mast_cli.shifts`) the study shows
how Δ follows ‖x* − v‖²; with ``masks > 0`` it also reports the test accuracy of randomly
sparsified ERM and MAST solutions v + S(x̂ − v) (x̂_MAST = the pooled minimizer x*_D).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.evaluation import masked_accuracy
from ..core.sketches import SKETCHES, make_sketch
from ..io.errors import check
from ..io.outputs import CSV_FLOAT_FORMAT
from ..io.store import unit_key
from ..reference import pool_minimum
from ..shifts import resolve_shift
from .config import Config
from .problem import load_problem

__all__ = ["DeltaConfig", "validate_delta", "plan_delta", "plan_delta_units", "compute_delta_unit"]


@dataclass
class DeltaConfig(Config):
    """The Δ(sparsity) study (experiment kind ``delta``)."""

    dataset: str = "a1a"
    lam: float = 1e-3
    objective: str = "logreg"
    sketch: str = "bernoulli"
    sparsity: list = field(default_factory=lambda: [0.1, 0.3, 0.5, 0.7, 0.9])
    pool: int = 50
    seed: int = 0
    shifts: list = field(default_factory=lambda: ["zero"])
    masks: int = 0



def validate_delta(cfg):
    check(cfg.sketch in SKETCHES, f"unknown sketch '{cfg.sketch}'")
    check(isinstance(cfg.pool, int) and cfg.pool >= 1, f"pool {cfg.pool} must be an integer >= 1")
    check(isinstance(cfg.masks, int) and cfg.masks >= 0, f"masks {cfg.masks} must be an integer >= 0")
    check(isinstance(cfg.shifts, list) and len(cfg.shifts) >= 1, "shifts must be a non-empty list")
    check(np.isfinite(cfg.lam) and cfg.lam >= 0, f"lam {cfg.lam} must be a finite number >= 0")
    for s in cfg.sparsity:
        check(0 <= s < 1, f"sparsity {s} must be in [0, 1)")


def plan_delta(cfg):
    """Validate a Δ study and split it into units (shift × sparsity level).

    Returns
    -------
    units : list of (key, spec)
    context : None
    """
    validate_delta(cfg)
    return plan_delta_units(cfg), None


def plan_delta_units(cfg):
    units = []
    per_unit = {k: v for k, v in cfg.to_dict().items() if k not in ("sparsity", "shifts")}
    for shift in cfg.shifts:
        for s in cfg.sparsity:
            spec = {"kind": "delta", "config": cfg.to_dict(), "sparsity": float(s), "shift": str(shift)}
            units.append((unit_key(dict(spec, config=per_unit)), spec))
    return units


def compute_delta_unit(spec):
    """One sparsity level of the Δ study; returns CSV text."""
    import pandas as pd

    cfg = DeltaConfig(**spec["config"])
    s = float(spec["sparsity"])
    problem = load_problem(cfg.dataset, cfg.objective, cfg.lam)
    obj = problem.obj
    shift = spec.get("shift", "zero")
    v = resolve_shift(shift, problem)
    sk = make_sketch(cfg.sketch, obj.d, sparsity=s)
    S = sk.sample(np.random.default_rng([cfg.seed, int(round(s * 1_000_000)), 29]), cfg.pool)
    x_D, f_D_inf, se = pool_minimum(obj, S, v)
    L_f, mu = obj.smoothness(), float(obj.mu)
    dist_v = float(np.sum((problem.x_star - v) ** 2))
    row = {
        "shift": shift, "dist_sq_v_xstar": dist_v,
        "sketch": sk.name, "sparsity": s, "pool_size": cfg.pool, "f_inf": problem.f_inf,
        "f_D_inf": f_D_inf, "delta": f_D_inf - problem.f_inf, "delta_se": se,
        "thm1_upper": 0.5 * L_f * (sk.L_D - 1) * dist_v,
        "thm1_lower": 0.5 * mu * (sk.mu_D - 1) * float(np.sum((x_D - v) ** 2)),
        "dist_sq_xD_xstar": float(np.sum((x_D - problem.x_star) ** 2)),
        "thm1_dist_bound": (L_f / mu) * (sk.L_D - 1) * dist_v if mu > 0 else float("inf"),
        "L_D": sk.L_D, "mu_D": sk.mu_D,
    }
    ds = problem.dataset
    if cfg.masks and ds.X_test is not None:
        M = sk.sample(np.random.default_rng([cfg.seed, int(round(s * 1_000_000)), 31]), cfg.masks)
        for name, x_hat in (("erm", problem.x_star), ("mast", x_D)):
            acc = masked_accuracy(ds.X_test, ds.y_test, x_hat, v, M)
            row[f"{name}_acc_q10"], row[f"{name}_acc_median"], row[f"{name}_acc_q90"] = \
                np.percentile(acc, [10, 50, 90])
            row[f"{name}_acc_dense"] = masked_accuracy(ds.X_test, ds.y_test, x_hat, v,
                                                       np.ones((1, obj.d)))[0]
    return pd.DataFrame([row]).to_csv(index=False, float_format=CSV_FLOAT_FORMAT)
