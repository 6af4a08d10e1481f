"""Algorithms 1 (I), 2 and 3 on an array backend (``--device cuda``; the ``fake`` backend on the CPU).

The same update as :func:`mast_cli.algorithms.dsgd.dsgd` (mast-theory §4, Algorithm 1 (I)):

    y_t = v + S_t(x_t − v),   x_{t+1} = x_t − γ S_tᵀ ∇f(y_t),

for R trajectories as the columns of a (d, R) device array, with three differences
that make it a device loop:

* sketches come from Philox streams keyed by each trajectory's seed
  (:mod:`mast_cli.core.philox`), drawn for all trajectories in one elementwise pass per
  step (no Python loop over trajectories, no host round trip);
* the steps run in the engine loop of every algorithm
  (:func:`mast_cli.algorithms._engine.run_steps`) with a :class:`DeviceRecorder`: divergence
  bookkeeping stays on the device (masks and ``copyto``), so a step never waits for the
  host; metrics are computed and copied back at log points only;
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
from ..core.fused_device import FusedLogistic
from ..core.philox import seed_keys, uniforms
from ..io.errors import check
from ._engine import History, Recorder, as_columns, log_iterations, run_steps

__all__ = ["dsgd_device", "dsgd_memory", "distributed_device", "distributed_memory", "l_svrdsg_device",
           "dsgd_minibatch_device", "minibatch_memory",
           "vr_memory", "device_loop", "DeviceRecorder", "device_agreement"]


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
    parts = [_run_chunk(dobj, be, sketches[a:b], gam[a:b], seeds[a:b], X0[:, a:b], V[:, a:b], iters, log_every,
                        (lambda X, a=a, b=b: metrics_fn(X, slice(a, b))) if metrics_fn else None,
                        lambda w=b - a: bar.step(w))
             for a, b in chunks]
    metrics = {k: np.hstack([p[0][k] for p in parts]) for k in parts[0][0]}
    return History(np.array(points), metrics, np.hstack([p[1] for p in parts]),
                   np.concatenate([p[2] for p in parts]), {"chunks": chunks})


def _run_chunk(dobj, be, sketches, gam, seeds, X0, V0, iters, log_every, metrics_fn, tick):
    """Algorithm 1 (I) on one chunk of columns."""
    draws = DeviceSketches(sketches, seed_keys(be.xp, seeds), be)
    V = be.xp.asarray(V0)

    def step(t, X, ga):
        S = draws.draw(t)
        Y = V + S * (X - V)
        X -= ga * (S * dobj.grad(Y))
        return X, (1.0, (S != 0).sum(axis=0))            # one pass, nnz(S_t) coordinates

    return device_loop(be, step, X0, gam, iters, log_every, metrics_fn, tick)


def _distinct_rows(xp, keys, t, n, tau):
    """τ distinct rows of [n] per trajectory (uniform τ-subsets, in draw order): (τ, R) int64.

    Rejection: τ i.i.d. uniform indices per column (Philox stream 1 at step t); the columns
    with a repeated index are redrawn whole (stream 1 + 4k at the k-th redraw) until every
    column is distinct.  Conditioning i.i.d. draws on being distinct gives the uniform law on
    ordered τ-tuples of distinct rows (the CPU's uniform sampling without replacement).
    When τ² > 2n (redraws would be frequent) the τ smallest of n uniforms are taken instead.
    """
    from ..core.philox import STREAM_ROWS

    R = keys[0].shape[0]
    if tau * tau > 2 * n:
        U = uniforms(xp, keys, t, STREAM_ROWS, n)                             # (n, R)
        return xp.argsort(U, axis=0)[:tau].astype(xp.int64)

    def draw(sub, k):
        U = uniforms(xp, sub, t, STREAM_ROWS + 4 * k, tau)
        return xp.minimum((U * n).astype(xp.int64), n - 1)

    rows = draw(keys, 0)
    todo = xp.arange(R)
    for k in range(1, 10000):
        srt = xp.sort(rows[:, todo], axis=0)
        bad = (srt[1:] == srt[:-1]).any(axis=0) if tau > 1 else xp.zeros(todo.shape[0], dtype=bool)
        todo = todo[bad]
        if int(todo.shape[0]) == 0:
            return rows
        rows[:, todo] = draw((keys[0][todo], keys[1][todo]), k)
    raise RuntimeError("row sampling did not produce distinct rows")     # probability ~0


def _row_products(xp, dobj, Y, rows, cols, weights):
    """Σ_k w_k ∇φ_{rows_k}(y_{cols_k}) per column of Y (d, R): the minibatch data gradient.

    The selected rows of Ab are laid out as one CSR matrix B (K × d·R) whose row k holds
    row ``rows_k`` of Ab in column block ``cols_k``; with y = vec(Yᵀ), z = B y are the K
    margins and Bᵀ(w ⊙ −σ(−z)) the gradients, two sparse matrix-vector products.
    """
    be = dobj.backend
    d, R = Y.shape
    Ab = dobj.Ab
    indptr = xp.asarray(Ab.indptr).astype(xp.int64)
    start = indptr[rows]
    cnt = indptr[rows + 1] - start                                          # nnz of each selected row
    ptr = xp.concatenate([xp.zeros(1, dtype=xp.int64), xp.cumsum(cnt)])
    nnz = int(ptr[-1])
    e = xp.arange(nnz, dtype=xp.int64)
    k = xp.searchsorted(ptr[1:], e, side="right")                           # selected row of entry e
    src = start[k] + (e - ptr[k])
    data = xp.asarray(Ab.data)[src]
    idx = xp.asarray(Ab.indices).astype(xp.int64)[src] + d * cols[k]
    itype = xp.int32 if max(nnz, d * R) < 2**31 - 1 else xp.int64          # cuSPARSE wants int32
    B = be.sparse.csr_matrix((data, idx.astype(itype), ptr.astype(itype)), shape=(int(rows.shape[0]), d * R))
    y = dobj.cast(xp.ascontiguousarray(Y.T).reshape(-1))
    g = weights * dobj.neg_sigmoid(B @ y)
    G = B.T @ dobj.cast(g)
    return xp.asarray(G, dtype=xp.float64).reshape(R, d).T


def minibatch_memory(obj, tau, dtype=np.float64):
    """Device bytes of one Algorithm 1 (II) launch: (fixed, per trajectory); see :func:`dsgd_memory`.

    Per trajectory: τ selected rows of Ab (their entries, indices, the margins) and the (d,)
    columns of :func:`dsgd_memory`; τ = n adds the full product's (n,) columns.
    """
    isz = np.dtype(dtype).itemsize
    row_nnz = obj.Ab.nnz / max(1, obj.n)
    per = int(tau * (row_nnz * (isz + 8 + 8 + 8 + 8) + 6 * 8)) + 8 * 20 * obj.d + 8 * 12 * (obj.d // 2 + 1)
    per += isz * 3 * obj.n if tau >= obj.n else 0
    if tau * tau > 2 * obj.n:
        per += 16 * obj.n                                   # the n uniforms of the argsort path
    return objective_bytes(obj, isz), per


def dsgd_minibatch_device(obj, sketches, steps, seeds, iters, batch_size, x0=None, v=None, *,
                          sampling="uniform", log_every=1, metrics_fn=None, progress=None, backend="cuda",
                          dtype=np.float64, memory=None):
    """Algorithm 1 (II) (double sketched minibatch SGD) on R trajectories on a device backend.

    As :func:`mast_cli.algorithms.dsgd` with ``batch_size`` (mast-theory §4):

        y_t = v + S_t(x_t − v),   x_{t+1} = x_t − γ S_t (Σ_{i∈B_t} w_i ∇φ_i(y_t) + ∇r(y_t)),

    B_t: τ rows uniformly without replacement (w_i = 1/τ; :func:`_distinct_rows`) or τ
    i.i.d. rows with q_i ∝ L_i (``sampling='importance'``, w_i = 1/(n q_i τ), inverse CDF of
    Philox stream 1).  A trajectory with τ ≥ n and uniform sampling takes the exact full
    gradient (as on the CPU).  Sketches as :func:`dsgd_device` (stream 0).

    Parameters
    ----------
    batch_size : int or array-like (R,)
        τ of each trajectory (≥ 1).
    sampling : {'uniform', 'importance'}
    Other parameters as :func:`dsgd_device`.

    Returns
    -------
    History

    Raises
    ------
    MastError
        A batch size < 1 or an unknown sampling.
    """
    from ..core.philox import STREAM_ROWS

    dobj, be, R, V, X0, gam, seeds = _prepare(obj, backend, dtype, sketches, steps, seeds, x0, v)
    xp, n = be.xp, dobj.n
    taus = np.broadcast_to(np.asarray(batch_size), (R,)).astype(np.int64)
    check(bool(np.all(taus >= 1)), f"batch size {int(taus.min())} must be >= 1")
    check(sampling in ("uniform", "importance"), f"unknown sampling '{sampling}'; choose uniform or importance")
    q = None
    if sampling == "importance":
        L = dobj.obj.smoothness_per_sample()
        q = L / L.sum()
    cdf = None if q is None else xp.asarray(np.cumsum(q))
    qd = None if q is None else xp.asarray(q)
    full = (taus >= n) & (sampling == "uniform")
    fixed, per = minibatch_memory(dobj.obj, int(min(taus.max(), n)), dobj.dtype)
    chunks = plan_chunks(R, per, fixed, memory if memory is not None else be.free_memory())
    points = log_iterations(iters, log_every)
    bar = _Progress(progress, R)
    pass_cost = np.where(full, 1.0, np.minimum(taus, n) / n)

    def run(a, b):
        draws = DeviceSketches(sketches[a:b], seed_keys(xp, seeds[a:b]), be)
        keys = seed_keys(xp, seeds[a:b])
        Vc = xp.asarray(V[:, a:b])
        Rc = b - a
        groups = []                                     # (τ, columns) of the minibatch trajectories
        for tau in np.unique(taus[a:b][~full[a:b]]):
            cols = np.flatnonzero((taus[a:b] == tau) & ~full[a:b])
            groups.append((int(tau), xp.asarray(cols), (keys[0][xp.asarray(cols)], keys[1][xp.asarray(cols)])))
        full_cols = xp.asarray(np.flatnonzero(full[a:b]))
        n_full = int(full[a:b].sum())
        cost = xp.asarray(pass_cost[a:b])

        def batch(t):
            rows, cols, w = [], [], []
            for tau, cc, kk in groups:
                if q is None:
                    rr = _distinct_rows(xp, kk, t, n, tau)                          # (τ, k)
                    ww = xp.full(rr.shape, 1.0 / tau)
                else:
                    U = uniforms(xp, kk, t, STREAM_ROWS, tau)
                    rr = xp.minimum(xp.searchsorted(cdf, U.reshape(-1), side="right"), n - 1).reshape(U.shape)
                    ww = 1.0 / (n * qd[rr] * tau)
                rows.append(rr.T.reshape(-1))                                     # trajectory-major
                cols.append(xp.repeat(cc, tau))
                w.append(ww.T.reshape(-1))
            return xp.concatenate(rows), xp.concatenate(cols), xp.concatenate(w)

        def step(t, X, ga):
            S = draws.draw(t)
            Y = Vc + S * (X - Vc)
            G = xp.empty_like(Y)
            if groups:
                G[...] = _row_products(xp, dobj, Y, *batch(t)) + dobj.penalty.grad(Y)
            if n_full == Rc:
                G = dobj.grad(Y)
            elif n_full:
                G[:, full_cols] = dobj.grad(Y[:, full_cols])
            X -= ga * (S * G)
            return X, (cost, (S != 0).sum(axis=0))

        mf = (lambda X: metrics_fn(X, slice(a, b))) if metrics_fn else None
        return device_loop(be, step, X0[:, a:b], gam[a:b], iters, log_every, mf, lambda: bar.step(Rc))

    return _assemble([run(a, b) for a, b in chunks], points, chunks)


class DeviceRecorder(Recorder):
    """:class:`~._engine.Recorder` with its state on the device: the divergence check of a
    step needs no host round trip (masks and ``copyto``); metrics are copied to the host
    at the log points only.  Same rules as the CPU recorder."""

    def __init__(self, be, X, iters, log_every, metrics_fn):
        xp = be.xp
        self.be, self.xp = be, xp
        self.points = log_iterations(iters, log_every)
        self._next = 0
        self.metrics_fn = metrics_fn
        self.R = X.shape[1]
        self.diverged_at = xp.full(self.R, -1, dtype=xp.int64)
        self.alive = xp.ones(self.R, dtype=bool)
        self.last_good = X.copy()
        self.rows = {}
        self.costs = False
        self.epochs = xp.zeros(self.R)
        self.coords = xp.zeros(self.R)

    def check(self, X, t, finite=None):
        xp = self.xp
        bad = self.alive & ~(xp.isfinite(X).all(axis=0) if finite is None else finite)
        self.diverged_at = xp.where(bad, t, self.diverged_at)
        self.alive &= ~bad
        xp.copyto(X, self.last_good, where=bad[None, :])
        return bad

    def log(self, X, t):
        xp, be = self.xp, self.be
        xp.copyto(self.last_good, X, where=self.alive[None, :])
        if self._next < len(self.points) and self.points[self._next] == t:
            self._next += 1
            if self.metrics_fn is not None:
                vals = {k: np.array(be.to_host(v), dtype=np.float64) for k, v in self.metrics_fn(X).items()}
                if self.costs:
                    vals["epochs"] = np.array(be.to_host(self.epochs), dtype=np.float64)
                    vals["coords"] = np.array(be.to_host(self.coords), dtype=np.float64)
                live = be.to_host(self.alive).copy()
                bad = live & ~np.all([np.isfinite(v) for v in vals.values()], axis=0)
                if bad.any():
                    dv = be.to_host(self.diverged_at).copy()
                    dv[bad] = t
                    live &= ~bad
                    self.diverged_at, self.alive = xp.asarray(dv), xp.asarray(live)
                for name, v in vals.items():
                    v[~live] = np.nan
                    self.rows.setdefault(name, []).append(v)

    def history(self, extra=None):
        metrics = {k: np.vstack(v) for k, v in self.rows.items()}
        return History(np.array(self.points), metrics, self.be.to_host(self.last_good).copy(),
                       self.be.to_host(self.diverged_at).astype(int), extra or {})


def device_loop(be, step, X0, gam, iters, log_every, metrics_fn=None, tick=None, cost0=None):
    """Run a device step ``(t, X, γ ⊙ alive) -> (X, (epochs, coords))`` with the engine loop
    (:func:`mast_cli.algorithms._engine.run_steps`) and a :class:`DeviceRecorder`; the step's
    cost feeds the ``epochs`` / ``coords`` columns (``cost0``: spent before the first step).

    Returns
    -------
    (metrics dict of (L, R) host arrays, last finite iterates (d, R), diverged_at (R,))
    """
    xp = be.xp
    X = xp.asarray(X0).copy()
    g = xp.asarray(gam)

    def one(X, t, alive):
        out, cost = step(t, X, g * alive)
        if out is not X:
            X[...] = out
        return cost

    h = run_steps(one, X, iters, log_every, metrics_fn, None if tick is None else (lambda k: tick()),
                  recorder=lambda X_, it, le, mf: DeviceRecorder(be, X_, it, le, mf), costs=True, cost0=cost0)
    return h.metrics, h.x_final, h.diverged_at


def _prepare(obj, backend, dtype, sketches_or_R, steps, seeds, x0, v):
    if isinstance(obj, DeviceObjective):
        dobj, be = obj, obj.backend
    else:
        be = get_backend(backend)
        dobj = DeviceObjective(obj, be, dtype)
    R = sketches_or_R if isinstance(sketches_or_R, int) else len(sketches_or_R)
    d = dobj.d
    check(R >= 1, "no trajectories to run")
    V = np.zeros((d, R)) if v is None else as_columns(v, d, R)
    X0 = V.copy() if x0 is None else as_columns(x0, d, R)
    gam = np.asarray(steps, dtype=np.float64).reshape(R)
    return dobj, be, R, V, X0, gam, np.asarray(seeds).reshape(R)


def _assemble(parts, points, chunks):
    metrics = {k: np.hstack([p[0][k] for p in parts]) for k in parts[0][0]}
    return History(np.array(points), metrics, np.hstack([p[1] for p in parts]),
                   np.concatenate([p[2] for p in parts]), {"chunks": chunks})


def distributed_memory(obj, M, dtype=np.float64):
    """Device bytes of one Algorithm 2 launch: (fixed, per trajectory); see :func:`dsgd_memory`."""
    isz = np.dtype(dtype).itemsize
    per = isz * 3 * obj.n + 8 * (8 * M * obj.d + 10 * obj.d) + 8 * 12 * M * (obj.d // 2 + 1)
    return 2 * objective_bytes(obj, isz), per


class _WorkerDraws:
    """The M workers' sketches of every trajectory at step t: (M, d, R) on the device.

    Trajectory r has a :class:`~mast_cli.algorithms.distributed.WorkerSketches` (or one
    sketch used independently by every worker).  Independent workers: worker i draws from
    its own D_i (heterogeneous allowed) on Philox stream σ = 4(i + 1).  Perm-K (joint): one
    permutation per trajectory and step from stream 4 (d uniforms, ranked), worker i keeping
    the ranks in its block [off_i, off_{i+1}) scaled by d/q_i, as
    :meth:`~mast_cli.core.sketches.PermK.sample_blocks`.
    """

    def __init__(self, wss, keys, be, M, d):
        from .distributed import WorkerSketches

        xp = be.xp
        self.xp, self.M, self.d = xp, M, d
        wss = [ws if isinstance(ws, WorkerSketches) else WorkerSketches(ws, M) for ws in wss]
        for ws in wss:
            check(ws.M == M, f"worker sketches for M={ws.M} workers, but the partition has M={M}")
        self.R = len(wss)
        joint = np.array([ws.joint is not None for ws in wss])
        self.joint_cols = np.flatnonzero(joint)
        self.ind_cols = np.flatnonzero(~joint)

        def sub(cols):
            if cols.size == self.R:
                return keys
            idx = xp.asarray(cols)
            return keys[0][idx], keys[1][idx]

        self.ind = None
        if self.ind_cols.size:
            k = sub(self.ind_cols)
            self.ind = [DeviceSketches([wss[r].sketches[i] for r in self.ind_cols], k, be) for i in range(M)]
        self.jkeys = None
        if self.joint_cols.size:
            offs = {tuple(wss[r].joint.offsets) for r in self.joint_cols}
            check(len(offs) == 1, "perm-k trajectories of one batch must share the block sizes")
            pk = wss[self.joint_cols[0]].joint
            self.jkeys = sub(self.joint_cols)
            self.lo = xp.asarray(pk.offsets[:-1])[:, None, None]
            self.hi = xp.asarray(pk.offsets[1:])[:, None, None]
            self.scale = xp.asarray(d / pk.q.astype(np.float64))[:, None, None]
        self.ind_idx = xp.asarray(self.ind_cols)
        self.joint_idx = xp.asarray(self.joint_cols)

    def _joint(self, t):
        xp = self.xp
        U = uniforms(xp, self.jkeys, t, 4, self.d)                    # (d, Rj)
        ranks = xp.argsort(xp.argsort(U, axis=0), axis=0)[None]       # (1, d, Rj)
        return xp.where((ranks >= self.lo) & (ranks < self.hi), self.scale, 0.0)

    def _independent(self, t):
        return self.xp.stack([self.ind[i].draw(t, stream=4 * (i + 1)) for i in range(self.M)])

    def draw(self, t):
        """(M, d, R) diagonals of step t."""
        if self.jkeys is None:
            return self._independent(t)
        if self.ind is None:
            return self._joint(t)
        S = self.xp.empty((self.M, self.d, self.R))
        S[:, :, self.ind_idx] = self._independent(t)
        S[:, :, self.joint_idx] = self._joint(t)
        return S


def distributed_device(obj, partition, sketches, steps, seeds, iters, x0=None, v=None, *, log_every=1,
                       metrics_fn=None, progress=None, backend="cuda", dtype=np.float64, memory=None):
    """Algorithm 2 (Distributed Double Sketched GD) on a device backend.

    x_{t+1} = x_t − γ (1/M) Σ_i S_{i,t} ∇f_i(v + S_{i,t}(x_t − v)),  f_i = (M/n) Σ_{j∈P_i} φ_j + r
    (mast-theory §4; as :func:`mast_cli.algorithms.distributed_dsgd`).  Worker sketches as
    :class:`_WorkerDraws`: independent (possibly heterogeneous) D_i, worker i on Philox
    stream σ = 4(i + 1), or one shared Perm-K permutation.  The workers' margins come from
    one product with the block-diagonal B = blockdiag(Ab_{P_1}, …, Ab_{P_M}) (n × M·d), as
    on the CPU (the fused kernel when forced with ``MAST_DEVICE_KERNEL=fused`` or when its
    M·d accumulator fits 48 KB).

    Parameters
    ----------
    partition : list of M int arrays
        The workers' rows (shared by all trajectories).
    sketches : list, length R, of Sketch or WorkerSketches
        Each trajectory's joint law of (S_1, …, S_M): a plain sketch is used
        independently by every worker.
    Other parameters as :func:`dsgd_device`.

    Returns
    -------
    History

    Raises
    ------
    MastError
        Worker sketches for another M; perm-k trajectories with different block sizes in one
        call; a sketch family the device does not draw.
    """
    import scipy.sparse as sp

    dobj, be, R, V, X0, gam, seeds = _prepare(obj, backend, dtype, sketches, steps, seeds, x0, v)
    xp, cpu, d, n = be.xp, dobj.obj, dobj.d, dobj.n
    parts_rows = [np.asarray(P) for P in partition]
    M = len(parts_rows)
    B = sp.block_diag([cpu.Ab[P] for P in parts_rows], format="csr")
    Bd = be.csr(B, dobj.dtype)
    BdT = be.csr(B.T, dobj.dtype) if be.is_gpu else Bd.T
    fused = FusedLogistic.create(Bd, be, dobj.dtype, dobj.kernel_mode, strict=False)
    fixed, per = distributed_memory(cpu, M, dobj.dtype)
    chunks = plan_chunks(R, per, fixed, memory if memory is not None else be.free_memory())
    points = log_iterations(iters, log_every)
    bar = _Progress(progress, R)
    scale = M / n

    def run(a, b):
        draws = _WorkerDraws(sketches[a:b], seed_keys(xp, seeds[a:b]), be, M, d)
        Vc = xp.asarray(V[:, a:b])
        Rc = b - a

        def step(t, X, ga):
            S = draws.draw(t)                                                        # (M, d, Rc)
            Y = Vc[None] + S * (X - Vc)[None]
            if fused is not None:
                G = fused(Y.reshape(M * d, Rc))
            else:
                G = (BdT @ dobj.neg_sigmoid(Bd @ dobj.cast(Y.reshape(M * d, Rc)))).astype(np.float64)
            G = G.reshape(M, d, Rc) * scale + dobj.penalty.grad(Y)
            X -= ga * ((S * G).sum(axis=0) / M)
            return X, (1.0, (S != 0).sum(axis=(0, 1)))    # M workers: n rows, Σ_i nnz(S_i)

        mf = (lambda X: metrics_fn(X, slice(a, b))) if metrics_fn else None
        return device_loop(be, step, X0[:, a:b], gam[a:b], iters, log_every, mf, lambda: bar.step(Rc))

    return _assemble([run(a, b) for a, b in chunks], points, chunks)


def vr_memory(obj, dtype=np.float64):
    """Device bytes of one Algorithm 3 launch: (fixed, per trajectory); see :func:`dsgd_memory`."""
    isz = np.dtype(dtype).itemsize
    per = isz * 6 * obj.n + 8 * 30 * obj.d
    return objective_bytes(obj, isz), per


def l_svrdsg_device(obj, pool, steps, seeds, iters, ref_prob, x0=None, v=None, *, pool_weights=None,
                    ref_batch=None, log_every=1, metrics_fn=None, progress=None, backend="cuda",
                    dtype=np.float64, memory=None):
    """Algorithm 3 (L-SVRDSG) on a device backend.

    As :func:`mast_cli.algorithms.l_svrdsg` (mast-theory §4, §5):

        j_t ~ q,  g_t = ∇f_{S_j}(x_t) − ∇f_{S_j}(w_t) + G_t,  x_{t+1} = x_t − γ g_t,
        with probability p: w_{t+1} = x_t and G_{t+1} = (1/b) Σ_{j∈J} ∇f_{S_j}(x_t),

    J ⊂ [N] of size b drawn without replacement (b = N: J = [N] with the weights q, the
    exact ∇f_pool, no draw).  j_t comes from Philox stream 0 (inverse CDF of q), the coin
    from stream 2, J (b < N) as the b smallest of N uniforms of stream 3 (counter 0 for
    J_0, t + 1 for the refresh after step t).  The reference gradients of the trajectories
    whose coin fired are recomputed together, one pooled sketch at a time (memory: (n,
    fired) margins).

    Parameters
    ----------
    pool : ndarray (N, d)
        The sketch pool, shared by all trajectories.
    ref_prob : float
        p ∈ (0, 1].
    pool_weights : ndarray (N,), optional
    ref_batch : int, optional
        b ∈ [1, N] (default N); b < N needs a uniform pool.
    Other parameters as :func:`dsgd_device`.

    Raises
    ------
    MastError
        Bad pool shape, p or b, or b < N with non-uniform weights.
    """
    from ..core.philox import STREAM_BATCH, STREAM_COIN
    from ..core.pool import EmpiricalSketch

    dobj, be, R, V, X0, gam, seeds = _prepare(obj, backend, dtype, len(seeds), steps, seeds, x0, v)
    xp = be.xp
    pool = np.asarray(pool, dtype=np.float64)
    check(pool.ndim == 2 and pool.shape[1] == dobj.d, f"pool must be (N, {dobj.d}), got shape {pool.shape}")
    p = float(ref_prob)
    check(0 < p <= 1, f"ref_prob p={p:g} must be in (0, 1]")
    N = pool.shape[0]
    b = N if ref_batch is None else ref_batch
    check(not isinstance(b, bool) and float(b).is_integer() and 1 <= b <= N,
          f"ref_batch b={b} must be an integer in [1, N={N}] (pool size)")
    b = int(b)
    emp = EmpiricalSketch(pool, pool_weights)
    check(b == N or np.all(emp.weights == emp.weights[0]),
          f"ref_batch b={b} < N={N} needs a uniform pool (non-uniform pool weights given)")
    fixed, per = vr_memory(dobj.obj, dobj.dtype)
    chunks = plan_chunks(R, per, fixed, memory if memory is not None else be.free_memory())
    points = log_iterations(iters, log_every)
    bar = _Progress(progress, R)

    pool_nnz = np.count_nonzero(pool, axis=1).astype(np.float64)      # coordinates of each pooled model
    ref_nnz = float(pool_nnz.sum()) if b == N else None

    def run(a, c):
        keys = seed_keys(xp, seeds[a:c])
        draws = DeviceSketches([emp] * (c - a), keys, be)
        Vc = xp.asarray(V[:, a:c])
        Sd = xp.asarray(pool)
        nnz_d = xp.asarray(pool_nnz)
        state = {}

        def batch_weights(cols, counter):
            """(N, len(cols)) weights of the reference batch J of these trajectories."""
            if b == N:
                return None
            sub = (keys[0][cols], keys[1][cols])
            U = uniforms(xp, sub, counter, STREAM_BATCH, N)                   # (N, k)
            kth = xp.partition(U, b - 1, axis=0)[b - 1]
            return (U <= kth[None, :]) / float(b)

        def pool_grad(Xs, Vs, Wt):
            # (1/b) Σ_{j∈J} s_j ∇f(v + s_j(x − v)) per column (Wt None: Σ_j q_j …, exact)
            G = xp.zeros_like(Xs)
            for j in range(N):
                s = Sd[j][:, None]
                w = float(emp.weights[j]) if Wt is None else Wt[j][None, :]
                G += w * (s * dobj.grad(Vs + s * (Xs - Vs)))
            return G

        def ref_cost(Wt):
            if Wt is None:
                return float(N), ref_nnz
            sel = Wt > 0
            return float(b), (sel * nnz_d[:, None]).sum(axis=0)      # (k,) for the k fired

        def step(t, X, ga):
            if not state:
                allc = xp.arange(X.shape[1])
                Wt0 = batch_weights(allc, 0)
                state["W"] = X.copy()
                state["G"] = pool_grad(X, Vc, Wt0)
            W, G = state["W"], state["G"]
            S = draws.draw(t)
            Y = xp.concatenate([Vc + S * (X - Vc), Vc + S * (W - Vc)], axis=1)
            H = dobj.grad(Y)
            Rc = X.shape[1]
            g = S * H[:, :Rc] - S * H[:, Rc:] + G
            fire = uniforms(xp, keys, t, STREAM_COIN, 1)[0] < p
            idx = xp.flatnonzero(fire)
            fired = fire.astype(np.float64)
            ref_e, ref_c = 0.0, 0.0
            if int(idx.size):
                Wt = batch_weights(idx, t + 1)
                W[:, idx] = X[:, idx]
                G[:, idx] = pool_grad(X[:, idx], Vc[:, idx], Wt)
                e, cc = ref_cost(Wt)
                ref_e = e * fired
                if Wt is None:
                    ref_c = cc * fired
                else:
                    ref_c = xp.zeros(Rc)
                    ref_c[idx] = cc
            # cost: ∇f_S at x_t and w_t, plus the b pooled gradients of a recomputed reference
            return X - ga * g, (2.0 + ref_e, 2.0 * (S != 0).sum(axis=0) + ref_c)

        if b == N:
            cost0 = (float(N), ref_nnz)
        else:          # J_0's cost per trajectory (the same draw as the first step's state)
            W0 = batch_weights(xp.arange(c - a), 0)
            cost0 = (float(b), (W0 > 0).T.astype(np.float64) @ nnz_d)
        mf = (lambda X: metrics_fn(X, slice(a, c))) if metrics_fn else None
        return device_loop(be, step, X0[:, a:c], gam[a:c], iters, log_every, mf, lambda: bar.step(c - a),
                           cost0=cost0)

    return _assemble([run(a, c) for a, c in chunks], points, chunks)


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
