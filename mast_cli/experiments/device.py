"""``--device cuda`` for experiments: units of Algorithms 1 (I), 2 and 3 and their metrics on a device.

:func:`run_dsgd_device`, :func:`run_distributed_device` and :func:`run_vr_device` are the
device twins of :func:`mast_cli.experiments.alg1.run_dsgd`,
:func:`~mast_cli.experiments.alg23.run_distributed` and :func:`~mast_cli.experiments.alg23.run_vr`
(same trajectories, same metric formulas, same extra columns; Philox instead of PCG64
draws); :func:`run_dsgd_device` also runs Algorithm 1 (II) (``dsgd-minibatch``);
:func:`make_device_metrics` computes the metrics of
:func:`mast_cli.experiments.trajectories.make_metrics` (erm_loss, grad_norm_sq, dist_sq,
mast_loss, test_accuracy) with the same formulas on the device, one evaluation sketch at
a time so that the (n, R) margins are never multiplied by N.
"""

from __future__ import annotations

import numpy as np

from ..algorithms.device import distributed_device, dsgd_device, dsgd_minibatch_device, l_svrdsg_device
from ..core.backend import check_device, fake_backend, get_backend, sim_backend
from ..core.device import DEVICE_OBJECTIVES, DeviceObjective
from ..io.errors import MastError

__all__ = ["DEVICE_ALGORITHMS", "check_run_device", "backend_of", "make_device_metrics", "run_dsgd_device",
           "run_distributed_device", "run_vr_device", "run_device", "DEVICE_RUNNERS"]

#: NumPy backends posing as a device (tests; :mod:`mast_cli.core.backend`), accepted in configs.
TEST_DEVICES = ("fake", "sim")
#: ``mast run --algorithm`` values that run on a device.
DEVICE_ALGORITHMS = ("dsgd", "dsgd-minibatch", "distributed", "vr")


def backend_of(device):
    """The backend of a config's ``device`` (``cpu``, ``cuda``, or ``fake``/``sim`` for tests)."""
    if device in TEST_DEVICES:
        return fake_backend() if device == "fake" else sim_backend()
    return get_backend(device)


def check_run_device(device, algorithm=None, objective=None):
    """Validate a config's ``device`` (one-line :class:`MastError`, exit 2).

    ``fake`` and ``sim`` (NumPy posing as a device) are accepted for tests and dry runs.
    """
    if device not in TEST_DEVICES:
        check_device(device)
    if device == "cpu":
        return
    if algorithm is not None and algorithm not in DEVICE_ALGORITHMS:
        raise MastError(f"--algorithm {algorithm} does not run on --device {device}; "
                        f"use {', '.join(DEVICE_ALGORITHMS)} or --device cpu")
    if objective is not None and objective not in DEVICE_OBJECTIVES:
        raise MastError(f"--objective {objective} does not run on --device {device}; "
                        f"use {', '.join(DEVICE_OBJECTIVES)} or --device cpu")


def make_device_metrics(problem, v, eval_sets, dobj, test=True):
    """Metric function for :func:`dsgd_device`: (X (d, R_c) on the device, cols) -> dict.

    Parameters
    ----------
    problem : Problem
        Its ``x_star`` and dataset (test split).
    v : ndarray (d,) or (d, R)
    eval_sets : ndarray (N, d, R)
        Each column's fixed evaluation sketches (host).
    dobj : DeviceObjective
    """
    be, xp = dobj.backend, dobj.xp
    ds = problem.dataset
    xs = xp.asarray(problem.x_star)[:, None]
    Vh = v if v.ndim == 2 else np.repeat(v[:, None], eval_sets.shape[2], axis=1)
    Xt = yt = None
    if test and ds.X_test is not None:
        Xt = be.csr(ds.X_test)
        yt = xp.asarray(np.asarray(ds.y_test, dtype=np.float64))[:, None]
    cache = {}

    def metrics(X, cols):
        key = (cols.start, cols.stop)
        if key not in cache:
            cache.clear()
            cache[key] = (xp.asarray(eval_sets[:, :, cols]), xp.asarray(Vh[:, cols]))
        E, V = cache[key]
        vals, G = dobj.value_grad(X)
        D = X - xs
        out = {"erm_loss": vals, "grad_norm_sq": dobj.col_sum(G * G), "dist_sq": dobj.col_sum(D * D)}
        N = E.shape[0]
        if N:
            fv = xp.stack([dobj.value(V + E[j] * (X - V)) for j in range(N)])     # (N, R_c)
            out["mast_loss"] = dobj.col_sum(fv) / N if be.is_gpu else \
                np.add.reduce(np.ascontiguousarray(fv.T), axis=1) / N
        if Xt is not None:
            z = (Xt @ X) * yt
            out["test_accuracy"] = xp.count_nonzero(z > 0, axis=0) / z.shape[0]
        return out

    return metrics


def run_dsgd_device(problem, cfg, trajs, v, eval_sets, progress):
    """One unit of ``mast run --algorithm dsgd|dsgd-minibatch --device cuda`` (History on the host)."""
    be = backend_of(cfg.device)
    dobj = DeviceObjective(problem.obj, be)
    metrics = make_device_metrics(problem, v, eval_sets, dobj)
    ds = problem.dataset
    extra = 0 if ds.X_test is None else ds.X_test.shape[0]
    if cfg.algorithm == "dsgd-minibatch":
        return dsgd_minibatch_device(dobj, [t["sketch_obj"] for t in trajs], [t["step_size"] for t in trajs],
                                     [t["seed"] for t in trajs], cfg.iters, [t["batch_size"] for t in trajs], v=v,
                                     sampling=cfg.sampling, log_every=cfg.effective_log_every(),
                                     metrics_fn=metrics, progress=progress, backend=be)
    return dsgd_device(dobj, [t["sketch_obj"] for t in trajs], [t["step_size"] for t in trajs],
                       [t["seed"] for t in trajs], cfg.iters, v=v, log_every=cfg.effective_log_every(),
                       metrics_fn=metrics, progress=progress, backend=be, extra_rows=extra)


def run_distributed_device(problem, cfg, trajs, v, eval_sets, progress):
    """One unit of ``mast run --algorithm distributed --device cuda`` (History on the host).

    Metrics as :func:`mast_cli.experiments.alg23.run_distributed`: the base metrics on the
    device, and ``mast_loss`` = F(x) = (1/N) Σ_m (1/M) Σ_i f_i(v + S_i^m(x − v)) over the same
    fixed joint evaluation draws (EVAL_SEED) as on the CPU.
    """
    import scipy.sparse as sp

    from ..core.evaluation import EVAL_SEED
    from .alg23 import _workers, worker_split

    be = backend_of(cfg.device)
    dobj = DeviceObjective(problem.obj, be)
    xp, obj = be.xp, problem.obj
    M = _workers(cfg, obj)
    split = worker_split(problem, M, cfg.split)
    R = len(trajs)
    base = make_device_metrics(problem, v, np.zeros((0, obj.d, R)), dobj)
    N = cfg.eval_sketches
    S_eval = None
    if N:
        S_eval = np.stack([t["worker_sketches"].sample(np.random.default_rng(EVAL_SEED), N) for t in trajs],
                          axis=-1)                                   # (N, M, d, R)
        Bd = be.csr(sp.block_diag([obj.Ab[P] for P in split.partition], format="csr"))
    Vh = np.repeat(np.asarray(v, dtype=np.float64).reshape(-1, 1), R, axis=1)
    cache = {}

    def metrics(X, cols):
        out = base(X, cols)
        if S_eval is not None:
            key = (cols.start, cols.stop)
            if key not in cache:
                cache.clear()
                cache[key] = (xp.asarray(S_eval[..., cols]), xp.asarray(Vh[:, cols]))
            S, V = cache[key]
            F = xp.zeros(X.shape[1])
            for m in range(N):
                Y = V[None] + S[m] * (X - V)[None]                          # (M, d, R_c)
                data = dobj.loss_mean(Bd @ Y.reshape(M * obj.d, -1))
                pen = sum(dobj.penalty_value(Y[i]) for i in range(M)) / M
                F += data + pen
            out["mast_loss"] = F / N
        return out

    hist = distributed_device(dobj, split.partition, [t["worker_sketches"] for t in trajs],
                              [t["step_size"] for t in trajs], [t["seed"] for t in trajs], cfg.iters, v=v,
                              log_every=cfg.effective_log_every(), metrics_fn=metrics, progress=progress,
                              backend=be)
    hist.extra["columns"] = {"workers": M, "split": cfg.split,
                             "worker_params": [t["worker_params"] for t in trajs]}
    return hist


def run_vr_device(problem, cfg, trajs, v, eval_sets, progress):
    """One unit of ``mast run --algorithm vr --device cuda`` (History on the host).

    One engine call per sketch level of the unit (its pool shared), as
    :func:`mast_cli.experiments.alg23.run_vr`; metrics: the base metrics and ``dist_sq_mast``
    = ‖x − x*_pool‖² on the device.
    """
    from .alg23 import _merge, _pool, level_groups, level_progress, pool_minimizer

    be = backend_of(cfg.device)
    dobj = DeviceObjective(problem.obj, be)
    xp = be.xp
    R = len(trajs)
    groups = level_groups(trajs)
    make_progress = level_progress(progress, R)

    hists = []
    for idx in groups:
        group = [trajs[r] for r in idx]
        sk = group[0]["sketch_obj"]
        S, w = _pool(cfg, sk)
        xp_pool = xp.asarray(pool_minimizer(problem, v, sk, cfg)[0])[:, None]
        base = make_device_metrics(problem, v, eval_sets[:, :, idx], dobj)

        def metrics(X, cols, base=base, xp_pool=xp_pool):
            out = base(X, cols)
            D = X - xp_pool
            out["dist_sq_mast"] = dobj.col_sum(D * D)
            return out

        ps = {t["ref_prob"] for t in group}
        bs = {t["ref_batch"] for t in group}
        if len(ps) != 1 or len(bs) != 1:
            raise MastError("--device cuda runs one --ref-prob and --ref-batch per sketch level")
        hists.append(l_svrdsg_device(dobj, S, [t["step_size"] for t in group], [t["seed"] for t in group],
                                     cfg.iters, ps.pop(), v=v, pool_weights=w, ref_batch=bs.pop(),
                                     log_every=cfg.effective_log_every(), metrics_fn=metrics,
                                     progress=make_progress(len(idx)), backend=be))
    cols = {key: [t[key] for t in trajs] for key in ("pool_size", "ref_batch", "ref_prob")}
    return _merge(hists, cols)


#: Device runner of each ``mast run --algorithm`` that has one.
DEVICE_RUNNERS = {"dsgd": run_dsgd_device, "dsgd-minibatch": run_dsgd_device, "distributed": run_distributed_device,
                  "vr": run_vr_device}


def run_device(problem, cfg, trajs, v, eval_sets, progress):
    """One unit of ``mast run --device cuda`` (any algorithm of :data:`DEVICE_ALGORITHMS`)."""
    if cfg.algorithm not in DEVICE_RUNNERS:
        raise MastError(f"--algorithm {cfg.algorithm} does not run on --device {cfg.device}; "
                        f"use {', '.join(DEVICE_ALGORITHMS)} or --device cpu")
    return DEVICE_RUNNERS[cfg.algorithm](problem, cfg, trajs, v, eval_sets, progress)
