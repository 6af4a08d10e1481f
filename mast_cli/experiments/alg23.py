"""``mast run --algorithm distributed|vr``: sweeps, runners and metadata of Algorithms 2 and 3.

Declared in the algorithm table :data:`mast_cli.experiments.run.ALGORITHMS`; everything
else (units, caching, resume, CSV and metadata files) is the shared ``mast run`` machinery.

distributed (Algorithm 2)
    ``--workers M`` workers, rows split by ``--split random|label-sorted`` with the fixed
    seed :data:`SPLIT_SEED` (the partition is part of the problem: the same for every
    trajectory and unit).  Sketches: ``--p`` / ``--k`` with one value (all workers) or
    M values (heterogeneous D_i), ``--sparsity`` levels (same level on every worker),
    ``perm-k`` (one shared permutation, M blocks), ``identity``, ``gaussian``.
    Theory step 1/max_i(L_{f_i} L_{S_i}^max).  ``mast_loss`` is the distributed MAST
    loss F(x) = (1/M)Σ_i E f_i(v + S_i(x − v)) on ``--eval-sketches`` fixed joint draws;
    ``erm_loss`` is f(x) (= F with S_i ≡ I).  Extra columns ``workers``, ``split``,
    ``worker_params``.
vr (Algorithm 3)
    A pool of ``--sketch-pool N`` sketches drawn once per sketch level with the fixed
    seed :data:`POOL_SEED` (without it: all sketches of an enumerable distribution, with
    their probabilities), ``--ref-prob p`` (default 1/N), ``--ref-batch b`` (default N:
    exact reference).  Theory step 1/(6 L_f L_S^max) with L_S^max over the pool.
    x*_pool is computed by Newton on the pool; extra columns ``pool_size``, ``ref_batch``,
    ``ref_prob`` and ``dist_sq_mast`` = ‖x − x*_pool‖².
"""

from __future__ import annotations

import numpy as np

from ..algorithms import History, WorkerSketches, WorkerSplit, distributed_dsgd, l_svrdsg, partition_rows
from ..constants import compute_constants
from ..core import theory
from ..core.evaluation import EVAL_SEED, eval_sketches
from ..core.kernels import col_sum
from ..core.sketches import MAX_ENUMERATION, PermK, make_sketch
from ..io.errors import MastError, check
from ..shifts import resolve_shift
from ..solvers.pool import solve_pool
from .config import parse_step, sketch_names
from .problem import cached
from .trajectories import level_representatives, make_metrics, sketch_levels, sketch_param

__all__ = ["SPLIT_SEED", "POOL_SEED", "worker_split", "sketch_pool", "pool_minimizer", "expand_distributed",
           "run_distributed", "metadata_distributed", "expand_vr", "run_vr", "metadata_vr"]

#: Seed of the row partition of Algorithm 2.
SPLIT_SEED = 20231128
#: Seed of the sketch pools of Algorithm 3.
POOL_SEED = 20231129

def _problem_key(problem):
    return (problem.dataset.sha256, problem.obj.name, problem.obj.lam)


# --- Algorithm 2 ----------------------------------------------------------------------------

def _workers(cfg, obj):
    M = cfg.workers
    if M is None:
        raise MastError("algorithm 'distributed' needs --workers M")
    if isinstance(M, bool) or not float(M).is_integer():
        raise MastError(f"--workers M={M} must be an integer")
    M = int(M)
    check(M >= 1, f"--workers M={M} must be >= 1")
    check(M <= obj.n, f"--workers M={M} must be <= n={obj.n} (every worker needs a row)")
    return M


def worker_split(problem, M, split):
    """The :class:`~mast_cli.algorithms.WorkerSplit` of a run (cached per process)."""
    def make():
        obj = problem.obj
        parts = partition_rows(obj.n, M, split, y=obj.b, rng=np.random.default_rng(SPLIT_SEED))
        return WorkerSplit(obj, parts)

    return cached(("split", _problem_key(problem), M, split), make)


def _per_worker(values, M, option):
    """One value per worker from a list of 1 or M values."""
    if len(values) == 1:
        return list(values) * M
    if len(values) != M:
        raise MastError(f"{option} has {len(values)} values; give 1 or one per worker (M={M})")
    return list(values)


def _distributed_levels(cfg, d, M):
    """list of (labels, WorkerSketches) for the distributed sweep (every sketch family of
    ``--sketch``, then its levels)."""
    levels = []
    for name in sketch_names(cfg):
        if name == "perm-k":
            check(cfg.sparsity is None,
                  "perm-k's sparsity is fixed by --workers M (1 − 1/M); drop --sparsity")
            levels.append(({}, WorkerSketches(PermK(d, M), M)))
        elif cfg.sparsity is not None:
            levels += [({"sparsity_level": float(s)},
                        WorkerSketches(make_sketch(name, d, sparsity=float(s)), M)) for s in cfg.sparsity]
        elif name in ("bernoulli", "dropout-unscaled") and cfg.p is not None:
            levels.append(({}, WorkerSketches([make_sketch(name, d, p=float(p))
                                               for p in _per_worker(cfg.p, M, "--p")], M)))
        elif name == "rand-k" and cfg.k is not None:
            levels.append(({}, WorkerSketches([make_sketch(name, d, k=k)
                                               for k in _per_worker(cfg.k, M, "--k")], M)))
        else:
            levels.append(({}, WorkerSketches(make_sketch(name, d, sigma=cfg.sigma), M)))
    return levels


def _worker_param(ws):
    if isinstance(ws.joint, PermK):
        return ",".join(str(int(q)) for q in ws.joint.q)
    vals = [sketch_param(sk) for sk in ws.sketches]
    return ",".join(f"{v:g}" for v in vals)


def expand_distributed(cfg, problem):
    obj = problem.obj
    M = _workers(cfg, obj)
    split = worker_split(problem, M, cfg.split)
    rows = []
    for lvl, (labels, ws) in enumerate(_distributed_levels(cfg, obj.d, M)):
        rep = ws.joint if ws.joint is not None else ws.sketches[0]
        params = [sketch_param(sk) for sk in ws.marginals()]
        uniform = all(p == params[0] for p in params)
        for tok in cfg.step:
            kind, mult = parse_step(tok)
            gamma = mult if kind == "fixed" else \
                mult * theory.step_distributed(split.local_smoothness(), ws.L_S_max)
            for seed in cfg.seed_list():
                rows.append({
                    "level": lvl, "sketch_obj": rep, "worker_sketches": ws, "sketch": rep.name,
                    "sparsity": float(np.mean([sk.sparsity for sk in ws.marginals()])),
                    "param": sketch_param(rep) if uniform else float("nan"),
                    "step_label": str(tok), "step_size": float(gamma), "batch_size": None,
                    "seed": int(seed), "worker_params": _worker_param(ws), **labels,
                })
    return rows


def run_distributed(problem, cfg, trajs, v, metrics_fn, progress):
    """Runner of Algorithm 2.  ``metrics_fn`` is replaced by the same base metrics with
    ``mast_loss`` = the distributed MAST loss F (fixed joint evaluation draws)."""
    obj = problem.obj
    M = _workers(cfg, obj)
    split = worker_split(problem, M, cfg.split)
    R = len(trajs)
    base = make_metrics(problem, v, np.zeros((0, obj.d, R)))
    N = cfg.eval_sketches
    S_eval = None
    if N:
        S_eval = np.stack([t["worker_sketches"].sample(np.random.default_rng(EVAL_SEED), N) for t in trajs],
                          axis=-1)                                   # (N, M, d, R)
    V = np.repeat(v[:, None], R, axis=1)

    def metrics(X):
        out = base(X)
        if S_eval is not None:
            out["mast_loss"] = split.mast_loss(X, V, S_eval)
        return out

    hist = distributed_dsgd(obj, split, [t["worker_sketches"] for t in trajs],
                            [t["step_size"] for t in trajs], [t["seed"] for t in trajs], cfg.iters,
                            v=v, log_every=cfg.effective_log_every(), metrics_fn=metrics,
                            progress=progress)
    hist.extra["columns"] = {"workers": M, "split": cfg.split,
                             "worker_params": [t["worker_params"] for t in trajs]}
    return hist


def metadata_distributed(cfg, problem, trajs):
    M = _workers(cfg, problem.obj)
    split = worker_split(problem, M, cfg.split)
    levels = []
    for t in level_representatives(trajs):
        ws = t["worker_sketches"]
        levels.append({
            "worker_sketches": [compute_constants(problem.obj, sk, x_star=problem.x_star, draws=200)
                                for sk in ws.marginals()],
            "L_S_max_local": ws.L_S_max.tolist(),
            "joint": "perm-k (one shared permutation)" if ws.joint is not None else "independent",
        })
    return {"distributed": {
        "workers": M, "split": cfg.split, "split_seed": SPLIT_SEED,
        "worker_sizes": split.sizes.tolist(), "L_f_local": split.local_smoothness().tolist(),
        "worker_positive_fraction": [float(np.mean(problem.obj.b[p] > 0)) for p in split.partition],
        "levels": levels,
    }}


# --- Algorithm 3 ----------------------------------------------------------------------------

def sketch_pool(sk, size=None):
    """The finite sketch set of one level: (pool (N, d), weights (N,) or None).

    ``size`` draws N sketches with :data:`POOL_SEED`; ``None`` enumerates the support
    (uniform weights are returned as None).
    """
    if size is not None:
        if isinstance(size, bool) or not float(size).is_integer() or size < 1:
            raise MastError(f"--sketch-pool N={size} must be an integer >= 1")
        return sk.sample(np.random.default_rng(POOL_SEED), int(size)), None
    n_support = sk.support_size()
    if n_support > MAX_ENUMERATION:
        raise MastError(f"algorithm 'vr' needs --sketch-pool N: the support of {sk.name} "
                        f"({n_support:.3g} sketches) is too large to enumerate")
    S, w = sk.enumerate()
    return S, (None if np.all(w == w[0]) else w)


def _pool(cfg, sk):
    return cached(("pool", repr(sk), cfg.sketch_pool), lambda: sketch_pool(sk, cfg.sketch_pool))


def pool_minimizer(problem, v, sk, cfg):
    """(x*_pool, info) of one level: Newton on Σ_j q_j f(v + S_j(x − v)) (cached per process)."""
    def make():
        S, w = _pool(cfg, sk)
        # tight: dist_sq_mast must resolve the exact (b = N) linear convergence to ~1e-20
        return solve_pool(problem.obj, S, v, weights=w, tol=1e-13)

    key = ("xpool", _problem_key(problem), v.tobytes(), repr(sk), cfg.sketch_pool)
    return cached(key, make)


def _vr_ref(cfg, N):
    p = 1.0 / N if cfg.ref_prob is None else cfg.ref_prob
    check(isinstance(p, (int, float)) and not isinstance(p, bool) and 0 < p <= 1,
          f"--ref-prob p={p} must be in (0, 1]")
    b = N if cfg.ref_batch is None else cfg.ref_batch
    if isinstance(b, bool) or not isinstance(b, (int, float, np.integer)) or not float(b).is_integer():
        raise MastError(f"--ref-batch b={b} must be an integer")
    b = int(b)
    check(1 <= b <= N, f"--ref-batch b={b} must be in [1, N={N}] (the pool size)")
    return float(p), b


def expand_vr(cfg, problem):
    obj = problem.obj
    L_f = obj.smoothness()
    rows = []
    for lvl, (labels, sk) in enumerate(sketch_levels(cfg, obj.d)):
        S, w = _pool(cfg, sk)
        N = S.shape[0]
        p, b = _vr_ref(cfg, N)
        check(w is None or b == N, f"the enumerated {sk.name} pool has non-uniform probabilities; "
                                   f"--ref-batch must be N={N} (or use --sketch-pool)")
        L_S_pool = float(np.max(S * S))
        for tok in cfg.step:
            kind, mult = parse_step(tok)
            gamma = mult if kind == "fixed" else mult * theory.step_vr(L_f, L_S_pool)
            for seed in cfg.seed_list():
                rows.append({
                    "level": lvl, "sketch_obj": sk, "sketch": sk.name, "sparsity": float(sk.sparsity),
                    "param": sketch_param(sk), "step_label": str(tok), "step_size": float(gamma),
                    "batch_size": None, "seed": int(seed), "pool_size": N, "ref_batch": b,
                    "ref_prob": p, **labels,
                })
    return rows


def _merge(hists, extra_cols):
    if len(hists) == 1:
        h = hists[0]
    else:
        h = History(hists[0].iterations,
                    {k: np.hstack([g.metrics[k] for g in hists]) for k in hists[0].metrics},
                    np.hstack([g.x_final for g in hists]), np.concatenate([g.diverged_at for g in hists]))
    h.extra["columns"] = extra_cols
    return h


def level_groups(trajs):
    """Indices of ``trajs`` in runs of equal sketch level (one engine call per run)."""
    groups = []
    for r, t in enumerate(trajs):
        if groups and trajs[groups[-1][0]]["level"] == t["level"]:
            groups[-1].append(r)
        else:
            groups.append([r])
    return groups


def level_progress(progress, R):
    """``make_progress(Rg)``: a per-level engine callback reporting whole trajectories of R
    to ``progress`` (``None`` when there is no progress bar)."""
    done = [0, 0]                                  # trajectory-steps done, progress units reported

    def make_progress(Rg):
        if progress is None:
            return None

        def cb(k):
            done[0] += k * Rg
            whole = done[0] // R
            if whole > done[1]:
                progress(whole - done[1])
                done[1] = whole
        return cb
    return make_progress


def run_vr(problem, cfg, trajs, v, metrics_fn, progress):
    """Runner of Algorithm 3, one engine call per sketch level of the unit (one shared pool
    each).  ``metrics_fn`` is rebuilt per level (same base metrics) plus ``dist_sq_mast``."""
    obj = problem.obj
    R = len(trajs)
    groups = level_groups(trajs)
    make_progress = level_progress(progress, R)

    hists = []
    for idx in groups:
        group = [trajs[r] for r in idx]
        sk = group[0]["sketch_obj"]
        S, w = _pool(cfg, sk)
        x_pool = pool_minimizer(problem, v, sk, cfg)[0]
        eval_sets = np.stack([eval_sketches(t["sketch_obj"], cfg.eval_sketches) for t in group], axis=-1)
        base = make_metrics(problem, v, eval_sets)

        def metrics(X, base=base, x_pool=x_pool):
            out = base(X)
            out["dist_sq_mast"] = col_sum((X - x_pool[:, None]) ** 2)
            return out

        hists.append(l_svrdsg(obj, S, [t["step_size"] for t in group], [t["seed"] for t in group],
                              cfg.iters, [t["ref_prob"] for t in group], [t["ref_batch"] for t in group],
                              v=v, pool_weights=w, log_every=cfg.effective_log_every(),
                              metrics_fn=metrics, progress=make_progress(len(idx))))
    cols = {key: [t[key] for t in trajs] for key in ("pool_size", "ref_batch", "ref_prob")}
    return _merge(hists, cols)


def metadata_vr(cfg, problem, trajs):
    v = resolve_shift(cfg.shift, problem)
    levels = []
    for t in level_representatives(trajs):
        sk = t["sketch_obj"]
        S, w = _pool(cfg, sk)
        x_pool, info = pool_minimizer(problem, v, sk, cfg)
        levels.append({
            "sketch": sk.params(), "pool_size": int(S.shape[0]), "pool_seed": None if cfg.sketch_pool is None
            else POOL_SEED, "pool": "drawn" if cfg.sketch_pool is not None else "enumerated",
            "pool_L_S_max": float(np.max(S * S)), "ref_batch": t["ref_batch"], "ref_prob": t["ref_prob"],
            "f_pool_inf": float(info["value"]), "x_pool_grad_norm": float(info["grad_norm"]),
            "x_pool_newton_iterations": int(info["iterations"]),
            "x_pool_dist_sq_to_erm": float(np.sum((x_pool - problem.x_star) ** 2)),
        })
    return {"vr": {"levels": levels}}
