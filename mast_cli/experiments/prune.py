"""Pruning robustness (Figs. 1, 3, 4 of the paper; mast-theory §6.1).

Protocol [RECON from the figure captions and S5]:

1. carve a validation split from the training data (``val_fraction``, seeded);
2. x_ERM = argmin f on the remaining training rows (exact Newton solve);
3. for each sparsity level, train x_MAST with Algorithm 1 (I) from x⁰ = v (theory
   step 1/(L_f L_S^max) unless given) and keep both the **last** iterate and the
   iterate with the **best validation accuracy**;
4. draw R masks S_1..S_R of that level (the same masks for every formulation) and
   record the test accuracy of v + S_r(x̂ − v) for each x̂.  The R masked models are
   evaluated with one sparse·dense product A_test·W, W of shape (d, R).

Predictions are sign(aᵀx); a zero margin counts as an error.  For v = 0 and
uniform-scale sketches the rescaling (1/p, d/K) does not change the sign, so the
masked and the masked-and-rescaled models have the same accuracy (check 23).

Optional dropout baseline (reviewer Lu4H; mast-theory §7.1): classic dropout trains
E f(v + c ⊙ (x̃ − v)) with unscaled masks c ~ Bernoulli(p) (biased, outside Assumption 1)
and is deployed with test-time weight scaling v + p(x̃ − v) or without it.  For v = 0 and
uniform p it is MAST after the change of variables x = p x̃ (with the step γ/p²); the
theory steps 1/(L_f L_S^max) of the two coincide, so the two solutions agree.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import numpy as np

from ..algorithms import dsgd
from ..core.device import device_masked_accuracy
from ..core.evaluation import masked_accuracy
from ..core.objective import OBJECTIVES, make_objective
from ..core.sketches import SKETCHES, make_sketch
from ..core.theory import step_dsgd
from ..io.data import load_dataset, validation_split
from ..io.errors import MastError, check
from ..io.outputs import CSV_FLOAT_FORMAT, prepare_out_dir, provenance
from ..io.store import unit_key
from .budget import check_prune_budget
from ..shifts import resolve_shift
from ..solvers.newton import solve_erm
from .config import is_number as number
from .config import Config, parse_step
from .device import backend_of, check_run_device
from .trajectories import sketch_param
from .units import compute_missing, write_metadata, write_table

__all__ = ["PruneConfig", "validate_prune", "train_mast", "check_prune", "plan_prune", "compute_prune_unit",
           "run_prune", "PRUNE_COLUMNS"]

PRUNE_COLUMNS = ["formulation", "selection", "sketch", "sparsity", "param", "mask", "test_accuracy",
                 "dense_test_accuracy", "best_iteration"]


@dataclass
class PruneConfig(Config):
    """A pruning-robustness experiment (``mast prune`` options / TOML keys)."""

    dataset: str = "a1a"
    lam: float = 1e-3
    objective: str = "logreg"
    sketch: str = "bernoulli"
    sparsity: list = field(default_factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    masks: int = 100
    iters: int = 500
    seed: int = 0
    step: str = "theory"
    val_fraction: float = 0.2
    shift: str = "zero"
    log_every: int | None = None
    #: also train classic (unscaled) dropout, E f(c ⊙ x̃) with c ~ Bernoulli(p), and deploy it
    #: with test-time weight scaling p·x̃ ("dropout-scaled") and without ("dropout-unscaled")
    dropout_baseline: bool = False
    #: where the masked models are evaluated: cpu (reference) or cuda; training (one
    #: trajectory) and the ERM solve stay on the CPU
    device: str = "cpu"


def validate_prune(cfg):
    """One-line errors for every bad field (before anything is written)."""
    check(isinstance(cfg.sketch, str) and cfg.sketch in SKETCHES,
          f"unknown sketch '{cfg.sketch}'; choose one of {', '.join(SKETCHES)}")
    check(isinstance(cfg.objective, str) and cfg.objective in OBJECTIVES, f"unknown objective '{cfg.objective}'")
    check(number(cfg.lam) and np.isfinite(cfg.lam) and cfg.lam >= 0, f"lam {cfg.lam} must be a finite number >= 0")
    check(isinstance(cfg.sparsity, list) and all(number(s) for s in cfg.sparsity),
          f"sparsity {cfg.sparsity!r} must be a list of numbers")
    check(number(cfg.val_fraction), f"val fraction {cfg.val_fraction!r} must be a number")
    check(isinstance(cfg.dropout_baseline, bool), f"dropout_baseline {cfg.dropout_baseline!r} must be true or false")
    check(isinstance(cfg.masks, int) and cfg.masks >= 1, f"masks {cfg.masks} must be an integer >= 1")
    check(isinstance(cfg.iters, int) and cfg.iters >= 1, f"iters {cfg.iters} must be an integer >= 1")
    check(isinstance(cfg.seed, int) and cfg.seed >= 0, f"seed {cfg.seed} must be an integer >= 0")
    check(0 <= cfg.val_fraction < 1, f"val fraction {cfg.val_fraction} must be in [0, 1)")
    check(len(cfg.sparsity) >= 1, "at least one sparsity level is needed")
    check(not cfg.dropout_baseline or cfg.sketch == "bernoulli",
          f"the dropout baseline needs --sketch bernoulli, not '{cfg.sketch}'")
    for s in cfg.sparsity:
        check(0 <= s < 1, f"sparsity {s} must be in [0, 1)")
    parse_step(cfg.step)
    check_run_device(cfg.device, objective=cfg.objective)


def train_mast(obj, sketch, step, iters, seed, v, X_val, y_val, log_every):
    """Algorithm 1 (I) from x⁰ = v; returns (x_last, x_best_val, best_iteration)."""
    best = {"acc": -np.inf, "x": v.copy(), "call": 0, "calls": 0}
    ones = np.ones((1, obj.d))

    def metrics(X):
        acc = masked_accuracy(X_val, y_val, X[:, 0], np.zeros_like(v), ones)[0] if X_val.shape[0] else 0.0
        if acc > best["acc"]:
            best.update(acc=acc, x=X[:, 0].copy(), call=best["calls"])
        best["calls"] += 1
        return {"val_accuracy": np.array([acc])}

    hist = dsgd(obj, [sketch], [step], [seed], iters, v=v, log_every=log_every, metrics_fn=metrics)
    if hist.diverged_at[0] >= 0:
        raise MastError(f"MAST training diverged at iteration {hist.diverged_at[0]} "
                        f"(sparsity {sketch.sparsity:g}, step {step:g}); use a smaller --step")
    return hist.x_final[:, 0], best["x"], int(hist.iterations[best["call"]])


@functools.lru_cache(maxsize=8)
def _prune_problem(dataset, objective, lam, val_fraction, seed):
    """(objective on the training part, validation split, test split, x_ERM) — cached."""
    ds = load_dataset(dataset)
    if ds.X_test is None:
        raise MastError(f"dataset '{dataset}' has no test split ({dataset}.t); pruning needs one")
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3])
    Xtr, ytr, Xval, yval = validation_split(ds.X, ds.y, val_fraction, rng)
    obj = make_objective(objective, Xtr, ytr, lam)
    x_erm, info = solve_erm(obj)
    return ds, obj, Xval, yval, x_erm


def compute_prune_unit(spec):
    """One sparsity level of a pruning experiment; returns its CSV text (picklable spec)."""
    import pandas as pd

    cfg = PruneConfig(**spec["config"])
    s = float(spec["sparsity"])
    ds, obj, Xval, yval, x_erm = _prune_problem(cfg.dataset, cfg.objective, cfg.lam, cfg.val_fraction,
                                                cfg.seed)
    v = resolve_shift(cfg.shift, _ShiftProblem(obj, x_erm))
    sk = make_sketch(cfg.sketch, obj.d, sparsity=s)
    kind, mult = parse_step(cfg.step)
    gamma = mult * step_dsgd(obj.smoothness(), sk.L_S_max) if kind == "theory" else mult
    log_every = cfg.log_every or max(1, cfg.iters // 100)
    x_last, x_best, best_it = train_mast(obj, sk, gamma, cfg.iters, cfg.seed, v, Xval, yval, log_every)
    mask_rng = np.random.default_rng([cfg.seed, int(round(s * 1_000_000)), 23])
    S = sk.sample(mask_rng, cfg.masks)
    Xt, yt = ds.X_test, ds.y_test
    ones = np.ones((1, obj.d))
    frames = []
    param = sketch_param(sk)        # σ for a Gaussian sketch, as in mast run rows
    models = [("erm", "exact", x_erm, -1), ("mast", "last", x_last, cfg.iters),
              ("mast", "best_val", x_best, best_it)]
    if cfg.dropout_baseline and s > 0:
        # classic dropout: GD on E f(v + c ⊙ (x̃ − v)), unscaled masks, theory step 1/(L_f · 1)
        p = 1.0 - s
        drop = make_sketch("dropout-unscaled", obj.d, p=p)
        gd = mult * step_dsgd(obj.smoothness(), drop.L_S_max) if kind == "theory" else mult
        d_last, d_best, d_it = train_mast(obj, drop, gd, cfg.iters, cfg.seed, v, Xval, yval, log_every)
        for sel, xt, it in (("last", d_last, cfg.iters), ("best_val", d_best, d_it)):
            models.append(("dropout-scaled", sel, v + p * (xt - v), it))
            models.append(("dropout-unscaled", sel, xt, it))
    if cfg.device == "cpu":
        evaluate = functools.partial(masked_accuracy, Xt, yt)
    else:                    # the R masked models on the device (test matrix copied once)
        be = backend_of(cfg.device)
        evaluate = functools.partial(device_masked_accuracy, be, be.csr(Xt), yt)
    for form, sel, x_hat, it in models:
        acc = evaluate(x_hat, v, S)
        dense = evaluate(x_hat, v, ones)[0]
        frames.append(pd.DataFrame({
            "formulation": form, "selection": sel, "sketch": sk.name, "sparsity": s, "param": param,
            "mask": np.arange(cfg.masks), "test_accuracy": acc, "dense_test_accuracy": dense,
            "best_iteration": it, "step_size": gamma,
        }))
    return pd.concat(frames, ignore_index=True).to_csv(index=False, float_format=CSV_FLOAT_FORMAT)


@dataclass
class _ShiftProblem:
    """Adapter so :func:`shifts.resolve_shift` sees the training objective and its x*_ERM
    (``lam:λ`` and ``half`` re-solve the ERM problem on the training part)."""

    obj: object
    x_star: np.ndarray


def check_prune(cfg):
    """Every check of a pruning experiment that needs the data, before any unit runs.

    Validates the fields, loads the problem, resolves the shift, and builds every
    level's sketch and (for ``step = theory``) its step, so that a bad value fails
    here with a one-line error and not after some units were computed.  Used by
    ``mast prune`` and ``mast reproduce``.  Returns :func:`_prune_problem`'s
    (dataset, training objective, X_val, y_val, x_ERM).
    """
    validate_prune(cfg)
    problem = _prune_problem(cfg.dataset, cfg.objective, cfg.lam, cfg.val_fraction, cfg.seed)
    _, obj, _, _, x_erm = problem
    resolve_shift(cfg.shift, _ShiftProblem(obj, x_erm))
    kind, _ = parse_step(cfg.step)
    for s in cfg.sparsity:
        sk = make_sketch(cfg.sketch, obj.d, sparsity=float(s))
        if kind == "theory":
            step_dsgd(obj.smoothness(), sk.L_S_max)
    return problem


def plan_prune_units(cfg, sha256):
    units = []
    for s in cfg.sparsity:
        spec = {"kind": "prune", "config": cfg.to_dict(), "sparsity": float(s), "dataset_sha256": sha256}
        per_level = {k: v for k, v in cfg.to_dict().items() if k != "sparsity"}
        key = unit_key(dict(spec, config=per_level))
        units.append((key, spec))
    return units


def plan_prune(cfg):
    """Check a pruning experiment (:func:`check_prune`) and split it into units (one per level).

    Returns
    -------
    units : list of (key, spec)
    context : :func:`check_prune`'s (dataset, training objective, X_val, y_val, x_ERM)
    """
    problem = check_prune(cfg)
    ds, obj = problem[0], problem[1]
    check_prune_budget(cfg, obj.n, obj.d, ds.X_test.shape[0])
    return plan_prune_units(cfg, problem[0].sha256), problem


def run_prune(cfg, out, progress_factory=None, force=False):
    """Run a pruning experiment: ``out/pruning.csv`` + ``out/metadata.json`` (resumable)."""
    t0 = time.time()
    units, (ds, obj, Xval, _, x_erm) = plan_prune(cfg)
    out = prepare_out_dir(out)
    store = compute_missing(units, out / ".parts", compute_prune_unit, progress_factory, force)
    table = write_table(store, units, out / "pruning.csv")
    write_metadata(out / "metadata.json", {
        "command": "mast prune", "config": cfg.to_dict(), "dataset": ds.summary(),
        "n_train": int(obj.n), "n_val": int(Xval.shape[0]), "f_inf": float(obj.value(x_erm)),
        "wall_time_s": round(time.time() - t0, 3), **provenance()})
    return table
