"""``--device cuda`` for experiments: Algorithm 1 (I) units and their metrics on a device.

:func:`run_dsgd_device` is the device twin of :func:`mast_cli.experiments.alg1.run_dsgd`;
:func:`make_device_metrics` computes the metrics of
:func:`mast_cli.experiments.trajectories.make_metrics` (erm_loss, grad_norm_sq, dist_sq,
mast_loss, test_accuracy) with the same formulas on the device, one evaluation sketch at
a time so that the (n, R) margins are never multiplied by N.
"""

from __future__ import annotations

import numpy as np

from ..algorithms.device import dsgd_device
from ..core.backend import check_device, fake_backend, get_backend, sim_backend
from ..core.device import DEVICE_OBJECTIVES, DeviceObjective
from ..io.errors import MastError

__all__ = ["DEVICE_ALGORITHMS", "check_run_device", "backend_of", "make_device_metrics", "run_dsgd_device"]

#: NumPy backends posing as a device (tests; :mod:`mast_cli.core.backend`), accepted in configs.
TEST_DEVICES = ("fake", "sim")
#: ``mast run --algorithm`` values that run on a device.
DEVICE_ALGORITHMS = ("dsgd",)


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
        raise MastError(f"--algorithm {algorithm} does not run on --device {device} yet; "
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
    """One unit of ``mast run --algorithm dsgd --device cuda`` (History on the host)."""
    be = backend_of(cfg.device)
    dobj = DeviceObjective(problem.obj, be)
    metrics = make_device_metrics(problem, v, eval_sets, dobj)
    ds = problem.dataset
    extra = 0 if ds.X_test is None else ds.X_test.shape[0]
    return dsgd_device(dobj, [t["sketch_obj"] for t in trajs], [t["step_size"] for t in trajs],
                       [t["seed"] for t in trajs], cfg.iters, v=v, log_every=cfg.effective_log_every(),
                       metrics_fn=metrics, progress=progress, backend=be, extra_rows=extra)
