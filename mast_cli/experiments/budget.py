"""Size and memory estimates of experiments, checked before anything large is allocated.

Called by ``mast run`` / ``mast prune`` right after their configuration is validated
(counts) and after the problem is loaded (memory, which needs n and d).  See
:mod:`mast_cli.io.memory` for the guard itself.
"""

from __future__ import annotations

from ..io.memory import check_count, check_memory

__all__ = ["check_run_counts", "check_run_memory", "check_prune_budget"]


def check_run_counts(cfg):
    """Refuse astronomically large counts of a RunConfig (before any list of trajectories exists)."""
    for name in ("iters", "seeds", "eval_sketches", "sketch_pool", "ref_batch", "log_every", "unit_size"):
        check_count(getattr(cfg, name, None), f"{name.replace('_', '-')}")


def _n_trajectories(cfg):
    from .trajectories import sketch_names

    seeds = len(cfg.seeds) if isinstance(cfg.seeds, (list, tuple)) else int(cfg.seeds)
    levels = [len(v) for v in (cfg.sparsity, cfg.p, cfg.k) if isinstance(v, list) and v]
    per_family = max(levels) if levels else 1
    batches = len(cfg.batch_size) if isinstance(cfg.batch_size, list) and cfg.batch_size else 1
    return len(sketch_names(cfg)) * per_family * len(cfg.step) * batches * seeds


def check_run_memory(cfg, n, d):
    """Estimated memory of a ``mast run`` (d × R iterates, n × R margins, evaluation sketches,
    pool N × d, the trajectory table); :class:`MastError` when it does not fit."""
    R = _n_trajectories(cfg)
    Ru = min(R, int(cfg.unit_size))
    E = int(cfg.eval_sketches or 0)
    N = int(cfg.sketch_pool or 0)
    from ..algorithms import log_iterations

    logs = len(log_iterations(int(cfg.iters), cfg.effective_log_every()))
    check_memory([
        (f"iterates, gradients and sketches (8 × d × R, d = {d}, R = {Ru} per unit)", 64.0 * d * Ru),
        (f"margins (2 × n × R, n = {n})", 16.0 * n * Ru),
        (f"evaluation sketches (E × R × (d + n), E = {E})", 8.0 * E * Ru * (d + n)),
        (f"sketch pool (4 × N × d, N = {N})", 32.0 * N * d),
        (f"trajectory table ({R} trajectories × {logs} logged iterations)", 400.0 * R * logs),
    ], f"mast run ({R} trajectories)")


def check_prune_budget(cfg, n, d, n_test):
    """Counts and memory of ``mast prune`` (masks R × d, models, accuracies on the test split)."""
    for name in ("iters", "masks", "log_every"):
        check_count(getattr(cfg, name, None), name.replace("_", "-"))
    R = int(cfg.masks)
    check_memory([
        (f"masks and masked models (4 × R × d, R = {R}, d = {d})", 32.0 * R * d),
        (f"MAST training vectors (16 × d, d = {d})", 128.0 * d),
        (f"accuracy blocks and table (R × levels, n_test = {n_test})", 200.0 * R * len(cfg.sparsity) + 8.0 * n),
    ], f"mast prune ({R} masks per level)")
