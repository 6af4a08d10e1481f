"""``mast run --algorithm dsgd|dsgd-minibatch``: the sweep, runner and metadata of Algorithm 1."""

from __future__ import annotations

from ..algorithms import dsgd
from ..core import theory
from ..core.evaluation import eval_sketches
from ..reference import pool_minimum
from ..io.outputs import mast_loss_key
from ..shifts import resolve_shift
from .config import parse_step
from .trajectories import level_representatives, sketch_levels, sketch_param

__all__ = ["expand_dsgd", "run_dsgd", "metadata_dsgd", "mast_loss_reference"]


def expand_dsgd(cfg, problem):
    """Trajectories of Algorithm 1: sketch level × step × batch size × seed (list of dicts)."""
    obj = problem.obj
    L_f = obj.smoothness()
    L_i = obj.smoothness_per_sample()
    rows = []
    batches = [None]
    if cfg.algorithm == "dsgd-minibatch":
        batches = [obj.n if b == "n" else min(int(b), obj.n) for b in (cfg.batch_size or [1])]
    for lvl_idx, (labels, sk) in enumerate(sketch_levels(cfg, obj.d)):
        for tok in cfg.step:
            kind, mult = parse_step(tok)
            for tau in batches:
                if kind == "fixed":
                    gamma = mult
                elif tau is None:
                    gamma = mult * theory.step_dsgd(L_f, sk.L_S_max)
                else:
                    gamma = mult * theory.step_dsgd_minibatch(
                        L_f, float(L_i.max()), sk.L_S_max, obj.n, min(tau, obj.n),
                        cfg.sampling, float(L_i.mean()))
                for seed in cfg.seed_list():
                    rows.append({
                        "level": lvl_idx, "sketch_obj": sk, "sketch": sk.name,
                        "sparsity": float(sk.sparsity), "param": sketch_param(sk),
                        "step_label": str(tok), "step_size": float(gamma),
                        "batch_size": tau, "seed": int(seed), **labels,
                    })
    return rows


def run_dsgd(problem, cfg, trajs, v, metrics_fn, progress):
    batch = None
    if cfg.algorithm == "dsgd-minibatch":
        batch = [t["batch_size"] for t in trajs]
    return dsgd(problem.obj, [t["sketch_obj"] for t in trajs], [t["step_size"] for t in trajs],
                [t["seed"] for t in trajs], cfg.iters, v=v, batch_size=batch,
                sampling=cfg.sampling, log_every=cfg.effective_log_every(),
                metrics_fn=metrics_fn, progress=progress)


def metadata_dsgd(cfg, problem, trajs):
    """metadata.json entries of Algorithm 1: the exact minimum of each level's mast_loss."""
    if not cfg.eval_sketches:
        return {}
    return mast_loss_reference(cfg, problem, trajs)


def mast_loss_reference(cfg, problem, trajs):
    """f_D^inf of the fixed evaluation sketches of each level of a run (for mast_loss plots).

    mast_loss is the pool objective over the ``eval_sketches`` fixed sketches, so its exact
    minimum is the pool minimum: returns ``{"mast_loss_inf": {"<sketch>|<sparsity>": value}}``.
    """
    if cfg.eval_sketches == 0:
        return {}
    v = resolve_shift(cfg.shift, problem)
    out = {}
    for t in level_representatives(trajs):
        S = eval_sketches(t["sketch_obj"], cfg.eval_sketches)
        out[mast_loss_key(t["sketch"], t["sparsity"])] = pool_minimum(problem.obj, S, v)[1]
    return {"mast_loss_inf": out}
