"""Algorithm 1 (I) on an array backend (``--device cuda``; the ``fake`` backend on the CPU).

The same update as :func:`mast_cli.algorithms.dsgd.dsgd` (mast-theory §4, Algorithm 1 (I)):

    y_t = v + S_t(x_t − v),   x_{t+1} = x_t − γ S_tᵀ ∇f(y_t),

for R trajectories as the columns of a (d, R) device array, with three differences
that make it a device loop:

* sketches come from Philox streams keyed by each trajectory's seed
  (:mod:`mast_cli.core.philox`), drawn for all trajectories in one elementwise pass per
  step (no Python loop over trajectories, no host round trip);
* divergence bookkeeping stays on the device (masks and ``where``), so a step never
  waits for the host; metrics are computed and copied back at log points only;
* before launching, the device memory a trajectory needs is estimated
  (:func:`dsgd_memory`) and R is split into chunks that fit
  (:func:`mast_cli.core.backend.plan_chunks`).  Trajectories are independent and their
  streams depend on their seeds only, so chunked and unchunked runs give the same
  numbers.

With the identity sketch no random number is drawn, and on the ``fake`` backend
(NumPy) the iterates equal the reference engine's bit for bit.
"""

from __future__ import annotations

import numpy as np

from ..core.backend import get_backend, plan_chunks
from ..core.device import DeviceObjective, DeviceSketches, objective_bytes
from ..core.philox import seed_keys
from ..io.errors import check
from ._engine import History, as_columns, log_iterations

__all__ = ["dsgd_device", "dsgd_memory", "device_agreement"]


def dsgd_memory(obj, extra_rows=0, dtype=np.float64):
    """Device bytes of one Algorithm 1 (I) launch: (fixed, per trajectory).

    Per trajectory: the (n,) margins, sigmoid and loss columns in ``dtype`` (three), the
    (d,) float64 columns of X, v, S, Y, G, the last finite iterate and temporaries
    (sixteen), the Philox words of one step's draws (twelve (d/2,) uint64 columns), and
    ``extra_rows`` (e.g. a test set's rows for the accuracy metric).

    Returns
    -------
    (int, int)
        Bytes independent of R, bytes per trajectory.
    """
    isz = np.dtype(dtype).itemsize
    per = isz * 3 * max(obj.n, extra_rows) + 8 * 16 * obj.d + 8 * 12 * (obj.d // 2 + 1)
    return objective_bytes(obj, isz), per


class _Progress:
    """Turns chunk steps into whole steps of the full batch for a ``progress(k)`` callback."""

    def __init__(self, progress, R):
        self.progress, self.R, self.acc, self.done = progress, R, 0.0, 0

    def step(self, width):
        if self.progress is None:
            return
        self.acc += width / self.R
        k = int(self.acc + 1e-9) - self.done
        if k > 0:
            self.done += k
            self.progress(k)


def dsgd_device(obj, sketches, steps, seeds, iters, x0=None, v=None, *, log_every=1, metrics_fn=None,
                progress=None, backend="cuda", dtype=np.float64, memory=None, extra_rows=0):
    """Run Algorithm 1 (I) on R trajectories on a device backend.

    Parameters
    ----------
    obj : LogisticObjective or DeviceObjective
        The objective (its data is copied to the device once unless already there).
    sketches : list of Sketch, length R
        Families in :data:`mast_cli.core.device.DEVICE_SKETCHES`.
    steps : array-like (R,)
        Step sizes γ.
    seeds : array-like of int (R,)
        Philox key of each trajectory.
    iters : int
        Steps T.
    x0, v : ndarray (d,) or (d, R), optional
        Start point and shift (zeros; x0 defaults to v).
    log_every : int
    metrics_fn : callable (X, cols) -> dict of (R_c,) arrays, optional
        Called at log points with the device iterates X (d, R_c) of a chunk and the
        ``slice`` of its columns in the full batch; values may be device or host arrays.
    progress : callable int -> None, optional
        Called with whole steps of the full batch as they complete.
    backend : str or Backend
        ``'cuda'`` or a :class:`~mast_cli.core.backend.Backend` (e.g. ``fake_backend()``).
    dtype : numpy.float64 or numpy.float32
        Precision of the data products (iterates stay float64).
    memory : int, optional
        Memory budget in bytes (default: the backend's).
    extra_rows : int
        Rows of any extra data the metrics multiply by (for the memory estimate).

    Returns
    -------
    History
        As :func:`mast_cli.algorithms.dsgd` (host arrays); ``extra['chunks']`` lists the
        column ranges that ran together.
    """
    if isinstance(obj, DeviceObjective):
        dobj, be = obj, obj.backend
    else:
        be = get_backend(backend)
        dobj = DeviceObjective(obj, be, dtype)
    obj, dtype = dobj.obj, dobj.dtype
    R, d = len(sketches), obj.d
    check(R >= 1, "no trajectories to run")
    V = np.zeros((d, R)) if v is None else as_columns(v, d, R)
    X0 = V.copy() if x0 is None else as_columns(x0, d, R)
    gam = np.asarray(steps, dtype=np.float64).reshape(R)
    seeds = np.asarray(seeds).reshape(R)
    fixed, per = dsgd_memory(obj, extra_rows, dtype)
    budget = memory if memory is not None else be.free_memory()
    chunks = plan_chunks(R, per, fixed, budget)
    points = log_iterations(iters, log_every)
    bar = _Progress(progress, R)
    parts = [_run_chunk(dobj, be, sketches[a:b], gam[a:b], seeds[a:b], X0[:, a:b], V[:, a:b], iters, points,
                        (lambda X, a=a, b=b: metrics_fn(X, slice(a, b))) if metrics_fn else None,
                        lambda w=b - a: bar.step(w))
             for a, b in chunks]
    metrics = {k: np.hstack([p[0][k] for p in parts]) for k in parts[0][0]}
    return History(np.array(points), metrics, np.hstack([p[1] for p in parts]),
                   np.concatenate([p[2] for p in parts]), {"chunks": chunks})


def _run_chunk(dobj, be, sketches, gam, seeds, X0, V0, iters, points, metrics_fn, tick):
    xp = be.xp
    R = len(sketches)
    draws = DeviceSketches(sketches, seed_keys(xp, seeds), be)
    X, V = xp.asarray(X0), xp.asarray(V0)
    g = xp.asarray(gam)
    alive = xp.ones(R, dtype=bool)
    diverged = xp.full(R, -1, dtype=xp.int64)
    last = X.copy()
    rows = {}
    nxt = 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for t in range(iters + 1):
            if t:
                S = draws.draw(t - 1)
                Y = V + S * (X - V)
                G = dobj.grad(Y)
                X -= (g * alive) * (S * G)
                bad = alive & ~xp.isfinite(X).all(axis=0)
                diverged = xp.where(bad, t, diverged)
                alive &= ~bad
                X = xp.where(bad[None, :], last, X)
                tick()
            last = xp.where(alive[None, :], X, last)
            if nxt < len(points) and points[nxt] == t:
                nxt += 1
                if metrics_fn is not None:
                    vals = {k: np.array(be.to_host(val), dtype=np.float64) for k, val in metrics_fn(X).items()}
                    live = be.to_host(alive)
                    bad = live & ~np.all([np.isfinite(val) for val in vals.values()], axis=0)
                    if bad.any():
                        dv = be.to_host(diverged).copy()
                        dv[bad] = t
                        diverged = xp.asarray(dv)
                        alive = xp.asarray(live & ~bad)
                        live = live & ~bad
                    for name, val in vals.items():
                        val[~live] = np.nan
                        rows.setdefault(name, []).append(val)
    metrics = {k: np.vstack(val) for k, val in rows.items()}
    return metrics, be.to_host(last).copy(), be.to_host(diverged).astype(int)


def device_agreement(obj, backend, sketch, seeds=32, iters=60, step=None, exact_seeds=4, z_max=4.0):
    """CPU engine vs device engine on one problem: exact with the identity sketch, in
    distribution with ``sketch``.

    1. Identity sketch (no random draw): the device iterates after ``iters`` steps
       must equal the reference engine's to 1e-12 (max absolute difference).
    2. ``sketch``: f(x_T) over ``seeds`` seeds on each side (PCG64 streams on the CPU,
       Philox on the device) must have equal means: |z| ≤ ``z_max`` for Welch's
       z = (m_cpu − m_dev) / sqrt(se_cpu² + se_dev²) (a false alarm about 1 in 16 000
       at z_max = 4 when the means are equal).

    Parameters
    ----------
    obj : LogisticObjective
    backend : str or Backend
    sketch : Sketch
    seeds : int
    iters : int
    step : float, optional
        Step size (default 1/(L_f L_S^max), the theory step of Algorithm 1).

    Returns
    -------
    list of dict
        One row per check: name, observed, bound, ok.
    """
    from ..core.sketches import Identity
    from .dsgd import dsgd

    be = get_backend(backend)
    gamma = step if step is not None else 1.0 / (obj.smoothness() * min(sketch.L_S_max, 1e12))
    ident = [Identity(obj.d)] * exact_seeds
    g1 = 1.0 / obj.smoothness()
    ref = dsgd(obj, ident, [g1] * exact_seeds, list(range(exact_seeds)), iters)
    dev = dsgd_device(obj, ident, [g1] * exact_seeds, list(range(exact_seeds)), iters, backend=be)
    diff = float(np.max(np.abs(ref.x_final - dev.x_final)))
    rows = [{"check": "identity-exact", "statement": "device iterates = CPU iterates, S = I",
             "observed": diff, "bound": 1e-12, "ok": bool(diff <= 1e-12)}]
    sks = [sketch] * seeds
    f_cpu = obj.value(dsgd(obj, sks, [gamma] * seeds, list(range(seeds)), iters).x_final)
    f_dev = obj.value(dsgd_device(obj, sks, [gamma] * seeds, list(range(seeds)), iters, backend=be).x_final)
    se = np.sqrt(np.var(f_cpu, ddof=1) / seeds + np.var(f_dev, ddof=1) / seeds)
    z = float(abs(f_cpu.mean() - f_dev.mean()) / se) if se > 0 else float(f_cpu.mean() != f_dev.mean()) * np.inf
    rows.append({"check": f"{sketch.name}-mean", "statement": f"E f(x_T) equal on CPU and device ({seeds} seeds each)",
                 "observed": z, "bound": z_max, "ok": bool(z <= z_max),
                 "cpu_mean": float(f_cpu.mean()), "device_mean": float(f_dev.mean())})
    return rows
