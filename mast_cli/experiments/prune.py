"""Pruning robustness (Figs. 1, 3, 4 of the paper; mast-theory §6.1).

Protocol [RECON from the figure captions and S5]:

1. carve a validation split from the training data (``val_fraction``, seeded);
2. x_ERM = argmin f on the remaining training rows (exact Newton solve);
3. for each sparsity level, the MAST model(s) of ``mast_solution`` (issue 17):

   ``dsgd``
       Algorithm 1 (I) from x⁰ = v (theory step 1/(L_f L_S^max) unless given), keeping the
       **last** iterate and the iterate with the best **masked** validation accuracy
       (``best_masked_val``): the mean accuracy on the validation rows of v + S(x − v) over
       ``val_masks`` fixed masks of that level, the same masks for every logged iterate;
       the model is judged on masked accuracy, so it is selected on it;
   ``exact``
       x*_D, the minimizer of the sample-average MAST loss over a pool of ``pool`` sketches
       of that level (Newton, :func:`mast_cli.solvers.pool.solve_pool`), with the Monte Carlo
       standard error of f_D at x*_D over the pool (``fD_inf_se``);

4. every model x̂ (ERM included) gets its optimality gap ``fD_gap`` = f_D(x̂) − f_D^inf on the
   evaluation pool (the pool of x*_D; f_D^inf is its minimum, so x*_D has gap 0 there and its
   Monte Carlo error is ``fD_inf_se``), with the standard error of the paired differences over
   the pool (``fD_gap_se``); a model with a gap above ``gap_tol`` is not a solution of the
   MAST problem and the figure marks it;
5. draw R masks S_1..S_R of that level (the same masks for every formulation) and
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
from ..core.objective import OBJECTIVES
from ..core.sketches import SKETCHES, make_sketch
from ..core.theory import step_dsgd
from ..io.errors import MastError, check
from ..io.outputs import CSV_FLOAT_FORMAT, prepare_out_dir, provenance
from ..io.store import UnitStore, unit_key
from ..shifts import resolve_shift
from ..solvers.pool import solve_pool
from .budget import check_prune_budget
from .config import is_number as number
from .config import Config, parse_step
from .device import backend_of, check_run_device
from .problem import load_problem
from .trajectories import sketch_param
from .units import compute_missing, write_metadata, write_table

__all__ = ["PruneConfig", "validate_prune", "train_mast", "load_prune_problem", "check_prune", "plan_prune",
           "compute_prune_unit", "run_prune", "PRUNE_COLUMNS", "MAST_SOLUTIONS", "pool_gaps"]

PRUNE_COLUMNS = ["formulation", "selection", "sketch", "sparsity", "param", "mask", "test_accuracy",
                 "dense_test_accuracy", "best_iteration", "step_size", "fD_gap", "fD_gap_se", "fD_inf",
                 "fD_inf_se", "pool_size"]

#: values of ``mast_solution``: DSGD iterates (last, best masked validation) and/or x*_D
MAST_SOLUTIONS = ("dsgd", "exact")


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
    #: MAST models: "dsgd" (trained iterates), "exact" (pool minimizer x*_D) or "dsgd,exact"
    mast_solution: str = "dsgd"
    #: sketches in the pool of x*_D and in the (independent) evaluation pool of fD_gap
    pool: int = 64
    #: fixed validation masks per level for the best-masked-validation selection
    val_masks: int = 20
    #: optimality-gap tolerance: a MAST model with fD_gap above it is marked unsolved
    gap_tol: float = 1e-3

    def solutions(self):
        """The ``mast_solution`` values as a list (``"dsgd,exact"`` or a TOML list)."""
        vals = self.mast_solution if isinstance(self.mast_solution, (list, tuple)) \
            else str(self.mast_solution).split(",")
        return [str(v).strip() for v in vals if str(v).strip()]



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
    sols = cfg.solutions()
    check(len(sols) >= 1 and all(v in MAST_SOLUTIONS for v in sols) and len(set(sols)) == len(sols),
          f"mast solution {cfg.mast_solution!r} must be dsgd, exact or dsgd,exact")
    check(isinstance(cfg.pool, int) and not isinstance(cfg.pool, bool) and cfg.pool >= 2,
          f"pool {cfg.pool!r} must be an integer >= 2")
    check(isinstance(cfg.val_masks, int) and not isinstance(cfg.val_masks, bool) and cfg.val_masks >= 1,
          f"val masks {cfg.val_masks!r} must be an integer >= 1")
    check(number(cfg.gap_tol) and cfg.gap_tol > 0, f"gap tol {cfg.gap_tol!r} must be a number > 0")
    check("dsgd" in sols or not cfg.dropout_baseline, "the dropout baseline needs --mast-solution dsgd")
    parse_step(cfg.step)
    check_run_device(cfg.device, objective=cfg.objective)


def train_mast(obj, sketch, step, iters, seed, v, X_val, y_val, log_every, val_masks=None):
    """Algorithm 1 (I) from x⁰ = v; returns (x_last, x_best_val, best_iteration).

    The best iterate maximizes the mean validation accuracy of the masked models
    v + S_r(x − v) over the fixed masks ``val_masks`` (R_v, d) (the same masks at every
    logged iteration); without masks, of the unmasked model x.  Ties keep the earliest.
    """
    best = {"acc": -np.inf, "x": v.copy(), "call": 0, "calls": 0}
    masks = np.ones((1, obj.d)) if val_masks is None else val_masks
    shift = v if val_masks is not None else np.zeros_like(v)

    def metrics(X):
        acc = float(masked_accuracy(X_val, y_val, X[:, 0], shift, masks).mean()) if X_val.shape[0] else 0.0
        if acc > best["acc"]:
            best.update(acc=acc, x=X[:, 0].copy(), call=best["calls"])
        best["calls"] += 1
        return {"val_accuracy": np.array([acc])}

    hist = dsgd(obj, [sketch], [step], [seed], iters, v=v, log_every=log_every, metrics_fn=metrics)
    if hist.diverged_at[0] >= 0:
        raise MastError(f"MAST training diverged at iteration {hist.diverged_at[0]} "
                        f"(sparsity {sketch.sparsity:g}, step {step:g}); use a smaller --step")
    return hist.x_final[:, 0], best["x"], int(hist.iterations[best["call"]])


def load_prune_problem(cfg):
    """The :class:`~mast_cli.experiments.problem.Problem` of a pruning experiment (cached):
    f on the training part, the validation split, x_ERM."""
    return load_problem(cfg.dataset, cfg.objective, cfg.lam, cfg.val_fraction, cfg.seed)


def _level_pools(cfg, sk, s):
    """(evaluation pool, validation masks, test masks) of one level: seeded, independent
    draws, the same for every formulation."""
    tag = int(round(s * 1_000_000))
    pool = sk.sample(np.random.default_rng([cfg.seed, tag, 37]), cfg.pool)
    val = sk.sample(np.random.default_rng([cfg.seed, tag, 43]), cfg.val_masks)
    test = sk.sample(np.random.default_rng([cfg.seed, tag, 23]), cfg.masks)
    return pool, val, test


def pool_gaps(obj, S_eval, v, models, x_inf=None):
    """f_D gap of each model on the pool ``S_eval``: f_pool(x̂) − f_pool^inf and its standard error.

    Parameters
    ----------
    obj : objective; S_eval : ndarray (N, d) pooled sketch diagonals; v : ndarray (d,) shift;
    models : list of ndarray (d,)
    x_inf : ndarray (d,), optional
        The pool's minimizer if already solved (else Newton here).

    Returns
    -------
    gaps : ndarray (len(models),) ; se : ndarray (len(models),) (paired over the pool's
    sketches, ddof 1) ; f_inf : float (the pool's minimum, Newton) ; x_inf : ndarray (d,)
    (the pool minimizer x*_D) ; f_inf_se : float (Monte Carlo standard error of f_D at x_inf)
    """
    if x_inf is None:
        x_inf, _ = solve_pool(obj, S_eval, v, tol=1e-9)
    base = obj.value(v[:, None] + S_eval.T * (x_inf - v)[:, None])          # (N,)
    f_inf_se = float(base.std(ddof=1) / np.sqrt(base.size))
    gaps, ses = [], []
    for x in models:
        diff = obj.value(v[:, None] + S_eval.T * (x - v)[:, None]) - base
        gaps.append(float(diff.mean()))
        ses.append(float(diff.std(ddof=1) / np.sqrt(diff.size)))
    return np.array(gaps), np.array(ses), float(base.mean()), x_inf, f_inf_se


def compute_prune_unit(spec):
    """One sparsity level of a pruning experiment; returns its CSV text (picklable spec)."""
    import pandas as pd

    cfg = PruneConfig(**spec["config"])
    s = float(spec["sparsity"])
    sols = cfg.solutions()
    problem = load_prune_problem(cfg)
    ds, obj, Xval, yval, x_erm = problem.dataset, problem.obj, problem.X_val, problem.y_val, problem.x_star
    v = resolve_shift(cfg.shift, problem)
    sk = make_sketch(cfg.sketch, obj.d, sparsity=s)
    kind, mult = parse_step(cfg.step)
    gamma = mult * step_dsgd(obj.smoothness(), sk.L_S_max) if kind == "theory" else mult
    log_every = cfg.log_every or max(1, cfg.iters // 100)
    pool, val_masks, S = _level_pools(cfg, sk, s)
    x_D, _ = solve_pool(obj, pool, v, tol=1e-9)
    param = sketch_param(sk)        # σ for a Gaussian sketch, as in mast run rows
    # (formulation, selection, model, iteration, f_D^inf s.e. of the model's own pool)
    models = [("erm", "exact", x_erm, -1, np.nan)]
    if "exact" in sols:
        vals = obj.value(v[:, None] + pool.T * (x_D - v)[:, None])
        models.append(("mast", "exact", x_D, -1, float(vals.std(ddof=1) / np.sqrt(vals.size))))
    if "dsgd" in sols:
        x_last, x_best, best_it = train_mast(obj, sk, gamma, cfg.iters, cfg.seed, v, Xval, yval, log_every,
                                             val_masks)
        models += [("mast", "last", x_last, cfg.iters, np.nan),
                   ("mast", "best_masked_val", x_best, best_it, np.nan)]
    if cfg.dropout_baseline and s > 0:
        # classic dropout: GD on E f(v + c ⊙ (x̃ − v)), unscaled masks, theory step 1/(L_f · 1)
        p = 1.0 - s
        drop = make_sketch("dropout-unscaled", obj.d, p=p)
        gd = mult * step_dsgd(obj.smoothness(), drop.L_S_max) if kind == "theory" else mult
        d_last, d_best, d_it = train_mast(obj, drop, gd, cfg.iters, cfg.seed, v, Xval, yval, log_every,
                                          val_masks)
        for sel, xt, it in (("last", d_last, cfg.iters), ("best_masked_val", d_best, d_it)):
            models.append(("dropout-scaled", sel, v + p * (xt - v), it, np.nan))
            models.append(("dropout-unscaled", sel, xt, it, np.nan))
    gaps, gap_se, f_D_inf, _, _ = pool_gaps(obj, pool, v, [m[2] for m in models], x_inf=x_D)
    Xt, yt = ds.X_test, ds.y_test
    ones = np.ones((1, obj.d))
    frames = []
    if cfg.device == "cpu":
        evaluate = functools.partial(masked_accuracy, Xt, yt)
    else:                    # the R masked models on the device (test matrix copied once)
        be = backend_of(cfg.device)
        evaluate = functools.partial(device_masked_accuracy, be, be.csr(Xt), yt)
    for (form, sel, x_hat, it, own_se), gap, gse in zip(models, gaps, gap_se):
        acc = evaluate(x_hat, v, S)
        dense = evaluate(x_hat, v, ones)[0]
        frames.append(pd.DataFrame({
            "formulation": form, "selection": sel, "sketch": sk.name, "sparsity": s, "param": param,
            "mask": np.arange(cfg.masks), "test_accuracy": acc, "dense_test_accuracy": dense,
            "best_iteration": it, "step_size": gamma,
            "fD_gap": gap, "fD_gap_se": gse, "fD_inf": f_D_inf, "fD_inf_se": own_se,
            "pool_size": cfg.pool,
        }))
    return pd.concat(frames, ignore_index=True).to_csv(index=False, float_format=CSV_FLOAT_FORMAT)


def check_prune(cfg):
    """Every check of a pruning experiment that needs the data, before any unit runs.

    Validates the fields, loads the problem, resolves the shift, and builds every
    level's sketch and (for ``step = theory``) its step, so that a bad value fails
    here with a one-line error and not after some units were computed.  Used by
    ``mast prune`` and ``mast reproduce``.  Returns the experiment's
    :class:`~mast_cli.experiments.problem.Problem`.
    """
    validate_prune(cfg)
    problem = load_prune_problem(cfg)
    obj = problem.obj
    resolve_shift(cfg.shift, problem)
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
    context : Problem
        :func:`check_prune`'s problem (training objective, validation split, x_ERM).
    """
    problem = check_prune(cfg)
    check_prune_budget(cfg, problem.obj.n, problem.obj.d, problem.dataset.X_test.shape[0])
    return plan_prune_units(cfg, problem.dataset.sha256), problem


def run_prune(cfg, out, progress_factory=None, force=False):
    """Run a pruning experiment: ``out/pruning.csv`` + ``out/metadata.json`` (resumable)."""
    t0 = time.time()
    units, problem = plan_prune(cfg)
    out = prepare_out_dir(out)
    reused = 0 if force else sum(UnitStore(out / ".parts").has(k) for k, _ in units)
    store = compute_missing(units, out / ".parts", compute_prune_unit, progress_factory, force)
    table = write_table(store, units, out / "pruning.csv")
    table.attrs["units"] = (reused, len(units))        # for the CLI's "reused K of N units"
    write_metadata(out / "metadata.json", {
        "command": "mast prune", "config": cfg.to_dict(), "dataset": problem.dataset.summary(),
        "n_train": int(problem.obj.n), "n_val": int(problem.X_val.shape[0]), "f_inf": problem.f_inf,
        "wall_time_s": round(time.time() - t0, 3), **provenance()})
    return table
