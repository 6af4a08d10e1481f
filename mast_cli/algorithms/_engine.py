"""Shared machinery of the batched engine: per-trajectory random streams, chunked
sketch/row sampling, divergence bookkeeping and logging.

R trajectories are the columns of one (d, R) array.  Randomness is drawn per
trajectory from its own stream, ``SeedSequence(seed).spawn(3)`` (sketches, data
rows, algorithm coins), in chunks of :data:`CHUNK` steps: the Python loop over
trajectories runs once per chunk, never once per step, and a trajectory's draws
depend only on its seed and its own parameters, not on the batch it runs in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..core import fused
from ..core.sketches import Bernoulli
from ..io.errors import check

__all__ = ["as_columns", "CHUNK", "streams", "SketchBank", "RowBank", "History", "Recorder", "log_iterations",
           "run_steps"]

#: Steps drawn ahead per trajectory (fixed: the draws must not depend on the batch).
CHUNK = 32


def streams(seed, n=3):
    """Independent generators of one trajectory: ``SeedSequence(seed).spawn(n)``.

    Index 0 draws sketches, 1 data rows, 2 algorithm coins (Algorithm 3).
    """
    return [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(n)]


class SketchBank:
    """Sketch diagonals for all trajectories, refilled every :data:`CHUNK` steps.

    Parameters
    ----------
    sketches : list of Sketch, length R
    rngs : list of numpy.random.Generator, length R
    draw : callable (sketch, rng, size) -> array (size, ...), optional
        How one trajectory draws ``size`` steps' worth of sketches; defaults to
        ``sketch.sample``.  Algorithm 2 passes one that draws M per step.
    """

    def __init__(self, sketches, rngs, draw=None):
        self.sketches, self.rngs = sketches, rngs
        self.draw = draw or (lambda sk, rng, size: sk.sample(rng, size))
        self._bank, self._pos = None, CHUNK
        #: nonzero coordinates of the sketches last returned by :meth:`next`, (R,)
        self.nnz = None
        # Bernoulli sketches (the paper's dropout, the common case): each trajectory's
        # uniforms drawn into one (R, CHUNK, d) array, then one pass lays the bank out and
        # counts its non-zeros (the same numbers and bits as Bernoulli.sample)
        self._uniforms = None
        if draw is None and sketches and all(type(sk) is Bernoulli for sk in sketches):
            d = sketches[0].d
            self._uniforms = np.empty((len(sketches), CHUNK, d))
            self._P = np.array([sk.p for sk in sketches])
            self._bank = np.empty((CHUNK, d, len(sketches)))
            self._nnz = np.empty((CHUNK, len(sketches)), dtype=np.int64)

    def _refill(self):
        """Draw the next CHUNK steps' sketches of every trajectory into the bank."""
        if self._uniforms is not None:
            for r, rng in enumerate(self.rngs):
                rng.random(out=self._uniforms[r])       # = rng.random((CHUNK, d))
            fused.bernoulli_bank(self._uniforms, self._P, self._bank, self._nnz)
            return
        parts = [self.draw(sk, rng, CHUNK) for sk, rng in zip(self.sketches, self.rngs)]
        # R arrays (CHUNK, ..., d) -> one C-contiguous (CHUNK, ..., d, R), so that each
        # step's sketches are one contiguous (…, d, R) block like the iterates; written
        # trajectory by trajectory (10× faster than a transposing copy of their stack)
        self._bank = np.empty(parts[0].shape + (len(parts),), dtype=np.result_type(*parts))
        for r, part in enumerate(parts):
            self._bank[..., r] = part
        # nnz per step and trajectory, summed over workers for (CHUNK, M, d, R) banks
        self._nnz = np.count_nonzero(self._bank.reshape(CHUNK, -1, len(parts)), axis=1)

    def next(self):
        """The next step's sketches: array (..., d, R) (last axis = trajectory)."""
        if self._pos == CHUNK:
            self._refill()
            self._pos = 0
        out = self._bank[self._pos]
        self.nnz = self._nnz[self._pos]
        self._pos += 1
        return out


def sample_rows_without_replacement(rng, n, tau, size):
    """``size`` independent uniform τ-subsets of [n] (rows of an int array (size, τ)).

    Floyd's algorithm vectorized over the ``size`` subsets for τ ≤ n/4, random keys
    otherwise.
    """
    if tau >= n:
        return np.broadcast_to(np.arange(n), (size, n)).copy()
    if 4 * tau > n:
        return np.argpartition(rng.random((size, n)), tau - 1, axis=1)[:, :tau]
    out = np.empty((size, tau), dtype=np.int64)
    for c, j in enumerate(range(n - tau, n)):
        t = rng.integers(0, j + 1, size=size)
        dup = (out[:, :c] == t[:, None]).any(axis=1)
        out[:, c] = np.where(dup, j, t)
    return out


class RowBank:
    """Minibatch rows and weights for all trajectories (Algorithm 1 (II)).

    ``sampling='uniform'``: τ rows without replacement, weights 1/τ.
    ``sampling='importance'``: τ i.i.d. rows with q_i ∝ L_i, weights 1/(n q_i τ).
    Both give an unbiased estimate of ∇f at any point.
    """

    def __init__(self, n, taus, rngs, sampling="uniform", q=None):
        self.n, self.taus, self.rngs = n, list(taus), rngs
        self.sampling, self.q = sampling, q
        self._bank, self._pos = None, CHUNK

    def _draw(self, tau, rng):
        if self.sampling == "uniform":
            rows = sample_rows_without_replacement(rng, self.n, tau, CHUNK)
            return rows, np.full(rows.shape, 1.0 / tau)
        rows = rng.choice(self.n, size=(CHUNK, tau), p=self.q)
        return rows, 1.0 / (self.n * self.q[rows] * tau)

    def next(self):
        """(rows, cols, weights) flat arrays for one step, cols = trajectory index."""
        if self._pos == CHUNK:
            self._bank = [self._draw(t, r) for t, r in zip(self.taus, self.rngs)]
            self._pos = 0
        rows, cols, w = [], [], []
        for r, (rr, ww) in enumerate(self._bank):
            rows.append(rr[self._pos])
            w.append(ww[self._pos])
            cols.append(np.full(rr.shape[1], r))
        self._pos += 1
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(w)


#: Growth ratio of the default log schedule (:func:`log_iterations` with ``"geometric"``).
#: 2 (powers of two) rather than benchopt's 1.5: a log point costs about six steps' worth of
#: metric evaluation (the MAST loss on 20 sketches), and at 1.5 the default T = 300 run spent
#: ~24% of its time logging, at 2 ~18% (benchmarks/README.md, figure 8).
GEOMETRIC_RATIO = 2.0


def log_iterations(iters, log_every):
    """Iterations at which metrics are logged, always including 0 and the last, T.

    Parameters
    ----------
    iters : int
        T, the number of steps.
    log_every : int or {"geometric", None}
        An int k logs every k steps.  ``"geometric"`` (or ``None``) logs densely early and
        sparsely late, benchopt's rule t_1 = 1, t_{j+1} = max(t_j + 1, ⌊ρ t_j⌋) with
        ρ = :data:`GEOMETRIC_RATIO` = 2, i.e. the powers of two below T (11 points for
        T = 300, 12 for T = 1000, 16 for T = 10⁴, with 0 and T).

    Returns
    -------
    list of int, increasing
    """
    if log_every is None or log_every == "geometric":
        pts, t = [0], 1
        while t < iters:
            pts.append(t)
            t = max(t + 1, int(t * GEOMETRIC_RATIO))
        if iters > 0:
            pts.append(int(iters))
        return pts
    pts = list(range(0, iters + 1, max(1, int(log_every))))
    if pts[-1] != iters:
        pts.append(iters)
    return pts


@dataclass
class History:
    """Logged metrics of R trajectories.

    Attributes
    ----------
    iterations : ndarray (L,)
    metrics : dict name -> ndarray (L, R)  (NaN after a trajectory diverged)
    x_final : ndarray (d, R)  (last finite iterate of each trajectory)
    diverged_at : ndarray (R,) int  (first iteration with a non-finite iterate, −1 if none)
    extra : dict  (algorithm-specific arrays, e.g. best-validation iterates)
    times : ndarray (L,) or None
        Wall seconds spent in the steps up to each logged iteration, metric evaluation
        excluded (the whole batch's time: trajectories advance together).
    metric_time : float
        Wall seconds spent evaluating the metrics (all log points).
    metric_times : ndarray (L,) or None
        Wall seconds spent evaluating the metrics up to and including each logged iteration
        (cumulative; the last entry is ``metric_time``).
    """

    iterations: np.ndarray
    metrics: dict
    x_final: np.ndarray
    diverged_at: np.ndarray
    extra: dict = field(default_factory=dict)
    times: np.ndarray | None = None
    metric_time: float = 0.0
    metric_times: np.ndarray | None = None

    @property
    def status(self):
        """'ok' or 'diverged' per trajectory."""
        return np.where(self.diverged_at >= 0, "diverged", "ok")


class Recorder:
    """Divergence tracking and metric logging shared by the algorithms.

    With ``costs=True`` every logged point also records two cumulative cost columns
    per trajectory (mast-theory §6; issue 17), charged by the algorithm through
    :meth:`charge`:

    ``epochs``
        passes over the data: full-data gradient evaluations, a τ-row minibatch counting
        τ/n, the M workers of Algorithm 2 together one pass per round;
    ``coords``
        coordinates of the sparse models computed, Σ_t nnz(S_t) (Algorithm 2: summed over
        the workers, i.e. the coordinates the server sends).
    """

    def __init__(self, X, iters, log_every, metrics_fn, costs=False):
        self.points = log_iterations(iters, log_every)
        self._next = 0
        self.metrics_fn = metrics_fn
        self.R = X.shape[1]
        self.diverged_at = np.full(self.R, -1)
        self.alive = np.ones(self.R, dtype=bool)
        self.last_good = X.copy()
        self.rows = {}
        self.costs = costs
        self.epochs = np.zeros(self.R)
        self.coords = np.zeros(self.R)
        self.times = []                 # step seconds (metrics excluded) at each log point
        self.metric_times = []          # metric seconds up to and including each log point
        self._t0 = None
        self._metric_s = 0.0

    def charge(self, epochs, coords):
        """Add one step's cost per trajectory: ``epochs`` and ``coords`` scalars or (R,)."""
        self.epochs += epochs
        self.coords += coords

    def check(self, X, t, finite=None):
        """Mark columns of X that became non-finite at iteration t; reset them to their
        last finite value so the batch stays finite (their later values are ignored).
        ``finite`` (R,) bool: whether each column of X is all finite, when the step already
        knows it (:func:`~mast_cli.core.fused.sketched_step`)."""
        bad = self.alive & ~(np.isfinite(X).all(axis=0) if finite is None else finite)
        if bad.any():
            self.diverged_at[bad] = t
            self.alive &= ~bad
            X[:, bad] = self.last_good[:, bad]
        return bad

    def log(self, X, t):
        """Record metrics at iteration t if it is a log point; remember finite iterates."""
        if self.alive.all():                # no column diverged yet: a plain copy
            np.copyto(self.last_good, X)
        else:
            self.last_good[:, self.alive] = X[:, self.alive]
        now = time.perf_counter()
        if self._t0 is None:
            self._t0 = now
        if self._next < len(self.points) and self.points[self._next] == t:
            self._next += 1
            self.times.append(now - self._t0 - self._metric_s)
            if self.metrics_fn is not None:
                vals = {k: np.array(v, dtype=np.float64) for k, v in self.metrics_fn(X).items()}
                if self.costs:
                    vals["epochs"], vals["coords"] = self.epochs.copy(), self.coords.copy()
                # a non-finite metric (e.g. an overflowing loss) is divergence too
                bad = self.alive & ~np.all([np.isfinite(v) for v in vals.values()], axis=0)
                if bad.any():
                    self.diverged_at[bad] = t
                    self.alive &= ~bad
                for name, v in vals.items():
                    v[~self.alive] = np.nan
                    self.rows.setdefault(name, []).append(v)
            self._metric_s += time.perf_counter() - now
            self.metric_times.append(self._metric_s)

    def history(self, extra=None):
        metrics = {k: np.vstack(v) for k, v in self.rows.items()}
        return History(np.array(self.points), metrics, self.last_good.copy(),
                       self.diverged_at.copy(), extra or {}, np.array(self.times), self._metric_s,
                       np.array(self.metric_times))


def as_columns(x, d, R):
    """A start point or shift as a fresh (d, R) float64 array.

    A (d,) vector is repeated over the R trajectories; a (d, R) array is copied.
    Anything else is a :class:`~mast_cli.io.errors.MastError` naming the shape."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        check(x.shape == (d,), f"expected {d} values, got {x.size}")
        return np.repeat(x[:, None], R, axis=1)
    check(x.shape == (d, R), f"expected shape ({d}, {R}), got {x.shape}")
    return x.copy()


def run_steps(step, X, iters, log_every, metrics_fn=None, progress=None, extra=None, recorder=Recorder,
              costs=False, cost0=None, finite=None):
    """The engine loop of every algorithm: step, divergence check, logging, progress.

    For t = 0, …, T − 1: ``step(X, t, alive)`` applies the algorithm's update x_t → x_{t+1}
    to the (d, R) array ``X`` in place (columns with ``alive`` False must not move: the
    step multiplies its step sizes by ``alive``); then non-finite columns are marked
    diverged, metrics are logged at the log points, and ``progress(1)`` is called.

    Parameters
    ----------
    step : callable
        (X, t, alive) -> None, the paper's update (Algorithm 1, 2 or 3).
    X : ndarray of shape (d, R)
        The starting points x⁰, one column per trajectory (updated in place).
    iters : int
        Number of steps T.
    log_every : int
        Log metrics every this many steps (and at 0 and T).
    metrics_fn : callable, optional
        X -> dict of ndarray of shape (R,).
    progress : callable, optional
        Called with 1 after every step.
    extra : callable, optional
        () -> dict of algorithm-specific arrays stored in the history.
    recorder : callable, default=Recorder
        (X, iters, log_every, metrics_fn) -> a :class:`Recorder`; the device engine
        (:mod:`mast_cli.algorithms.device`) passes one that keeps its state on the device.
    costs : bool, default=False
        Log the cumulative cost columns ``epochs`` and ``coords`` (see :class:`Recorder`);
        ``step`` then returns its step's (epochs, coords), scalars or arrays of shape (R,).
    cost0 : tuple, optional
        (epochs, coords) spent before the first step (Algorithm 3's reference G_0).
    finite : ndarray of shape (R,) of bool, optional
        Written by ``step`` at every step: whether each column of the new X is all finite
        (saves the divergence check a pass over X).

    Returns
    -------
    History
        The logged metrics, last finite iterates and divergence iterations.
    """
    rec = recorder(X, iters, log_every, metrics_fn)
    if costs:
        rec.costs = True
        if cost0 is not None:
            rec.charge(*cost0)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        rec.log(X, 0)
        for t in range(iters):
            cost = step(X, t, rec.alive)
            if costs:
                rec.charge(*cost)
            rec.check(X, t + 1, finite)
            rec.log(X, t + 1)
            if progress is not None:
                progress(1)
    return rec.history(extra() if extra is not None else None)
