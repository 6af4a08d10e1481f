"""Trajectories of ``mast run``: sketch levels, metrics, and the tidy rows of one unit.

A trajectory is a dict (sketch, step, batch, seed, labels); R trajectories run together
as the columns of one (d, R) array, and :func:`history_frame` turns their logged history
into one row per (trajectory, logged iteration).
"""

from __future__ import annotations

import numpy as np

from ..core.kernels import col_accuracy, col_mean, col_sum
from ..core.sketches import make_sketch
from .config import sketch_names

__all__ = ["level_representatives", "sketch_levels", "sketch_param", "make_metrics", "TRAJ_COLUMNS", "history_frame"]


def sketch_levels(cfg, d):
    """The sketch distributions to sweep: list of (label dict, Sketch).

    The product of the sketch families (``sketch``) and their levels: ``sparsity``
    (mapped per family, so Gaussian sketches get the Bernoulli-matched variance
    σ² = 1/(1 − s) − 1), or explicit ``p`` / ``k`` lists, or one fixed parameter.
    """
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


def sketch_param(sk):
    """The first of a sketch's parameters p, k, workers, σ (NaN when none or a list)."""
    for key in ("p", "k", "workers", "sigma"):
        if key in sk.params():
            val = sk.params()[key]
            return float(val) if not isinstance(val, list) else float("nan")
    return float("nan")


def make_metrics(problem, v, eval_sets, test=True):
    """Metric function for the engine: X (d, R) -> dict of (R,) arrays.

    ``eval_sets`` is an array (N, d, R): the evaluation sketches of each column's
    distribution.  mast_loss(x) = (1/N) Σ_j f(v + s_j ⊙ (x − v)) (common random numbers:
    the same sketches at every iteration).  Every reduction is per column, so the
    numbers do not depend on the batch.
    """
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
            out["test_accuracy"] = col_accuracy(ds.X_test, ds.y_test, X)   # the same counts, blocked
        return out

    return metrics


TRAJ_COLUMNS = ["algorithm", "sketch", "sparsity", "param", "step_label", "step_size", "batch_size",
                "seed", "iteration", "time", "metric_time", "epochs", "coords", "erm_loss", "grad_norm_sq", "dist_sq", "mast_loss",
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
        # always in the unit's part; trajectories.csv keeps `time` only with record_time
        # (wall seconds differ from run to run) and metadata.json sums both (write_table)
        if hist.times is not None and len(hist.times) == L:
            data["time"] = hist.times[keep]
            mt = getattr(hist, "metric_times", None)
            if mt is not None and len(mt) == L:
                data["metric_time"] = mt[keep]
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


def level_representatives(trajs):
    """The first trajectory of each sketch level, in order (for per-level metadata)."""
    seen, out = set(), []
    for t in trajs:
        if t["level"] not in seen:
            seen.add(t["level"])
            out.append(t)
    return out
