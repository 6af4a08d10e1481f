"""Algorithm 3: L-SVRDSG, loopless SVRG over a finite set of sketches (mast-theory §4, §5).

[RECON] pseudocode (from L-SVRG, Kovalev et al. 2020; mast-theory §4 Algorithm 3): a
finite pool {S_1, …, S_N} with probabilities q (uniform unless given) replaces D, so
the objective is f_pool(x) = Σ_j q_j f(v + S_j(x − v)).  With ∇f_{S}(x) = Sᵀ∇f(v + S(x − v)):

    w_0 = x_0,  G_0 = (1/b) Σ_{j∈J_0} ∇f_{S_j}(w_0),   J_0 ⊂ [N], |J_0| = b (no replacement)
    for t = 0, 1, …:
        j_t ~ q
        g_t = ∇f_{S_{j_t}}(x_t) − ∇f_{S_{j_t}}(w_t) + G_t
        x_{t+1} = x_t − γ g_t
        with probability p:  w_{t+1} = x_t and G_{t+1} recomputed on a fresh J
        otherwise            w_{t+1} = w_t, G_{t+1} = G_t.

With b = N the reference is exact, G = ∇f_pool(w) = Σ_j q_j ∇f_{S_j}(w) (J = [N], no
draw), and x_t → x*_pool linearly with no neighbourhood (Theorem 18 [RECON]); with
b < N (uniform pool only) the reference is a minibatch estimate and the iterates
plateau at a neighbourhood ∝ (N − b)/(b(N − 1)) (mast-theory §5).

Batching: R trajectories are the columns of (d, R) arrays X, W (reference points)
and G.  One step evaluates ∇f_{S_j}(x_t) and ∇f_{S_j}(w_t) of every trajectory with
one product over A on 2R columns; the trajectories whose coin fires recompute their
reference gradient together in one product over all their (trajectory, j ∈ J) pairs,
summed per trajectory by a segmented reduction.  Randomness per trajectory, drawn in
chunks of :data:`~mast_cli.algorithms._engine.CHUNK` steps from
``SeedSequence(seed).spawn(4)``: [0] the indices j_t, [2] the coins, [3] the reference
batches J (a 4th stream; the first three are those of :func:`~._engine.streams`).
"""

from __future__ import annotations

import numpy as np

from ..io.errors import MastError, check
from ._engine import CHUNK, as_columns, run_steps, streams

__all__ = ["l_svrdsg", "pool_value_grad", "draw_ref_batches", "check_pool_weights"]


def draw_ref_batches(rng, N, b, k):
    """k reference batches: b distinct indices of [N] in increasing order, array (k, b).

    b = N takes all indices and draws nothing.
    """
    if b >= N:
        return np.broadcast_to(np.arange(N), (k, N))
    if k == 0:
        return np.zeros((0, b), dtype=np.int64)
    keys = rng.random((k, N))
    return np.sort(np.argpartition(keys, b - 1, axis=1)[:, :b], axis=1)


def _check_pool(pool, R):
    pool = np.asarray(pool, dtype=np.float64)
    if pool.ndim == 2:
        return pool, True
    check(pool.ndim == 3 and pool.shape[0] == R,
          f"pool must be (N, d) or (R={R}, N, d), got shape {pool.shape}")
    return pool, False


def check_pool_weights(weights, N):
    """Pool probabilities (N,) or None (uniform)."""
    if weights is None:
        return None
    q = np.asarray(weights, dtype=np.float64).ravel()
    check(q.shape == (N,), f"pool weights have {q.size} values, expected N={N}")
    check(np.all(q >= 0) and abs(q.sum() - 1.0) <= 1e-12, "pool weights must be probabilities")
    if np.all(q == q[0]):
        return None
    return q


def _check_ref(ref_prob, ref_batch, N, R):
    p = np.broadcast_to(np.asarray(ref_prob, dtype=np.float64), (R,)).copy()
    bad = p[~((p > 0) & (p <= 1))]
    if bad.size:
        raise MastError(f"ref_prob p={bad[0]:g} must be in (0, 1]")
    if ref_batch is None:
        b = np.full(R, N)
    else:
        raw = np.broadcast_to(np.asarray(ref_batch), (R,))
        for val in raw:
            if isinstance(val, (bool, np.bool_)) or not float(val).is_integer():
                raise MastError(f"ref_batch b={val} must be an integer")
        b = raw.astype(np.int64)
    for val in b:
        check(1 <= val <= N, f"ref_batch b={val} must be in [1, N={N}] (pool size)")
    return p, b


def pool_value_grad(obj, pool, v, weights=None):
    """f_pool and ∇f_pool at one point: the finite-sum MAST objective over a pool.

    f_pool(x) = Σ_j q_j f(v + s_j ⊙ (x − v)), ∇f_pool(x) = Σ_j q_j s_j ⊙ ∇f(v + s_j ⊙ (x − v)).

    Returns a callable x -> (value, gradient), one product over A on N columns per call.
    """
    pool = np.asarray(pool, dtype=np.float64)
    N = pool.shape[0]
    q = np.full(N, 1.0 / N) if weights is None else np.asarray(weights, dtype=np.float64)
    St = pool.T

    def value_grad(x):
        Y = v[:, None] + St * (x - v)[:, None]
        vals, G = obj.value_grad(Y)
        return float(vals @ q), (St * G) @ q

    return value_grad


class _VRBank:
    """Indices j_t, coins and reference batches of all trajectories, CHUNK steps at a time."""

    def __init__(self, N, p, b, q, rngs):
        self.N, self.p, self.b, self.q = N, p, b, q
        self.rngs = rngs                           # per trajectory (rng_j, rng_coin, rng_batch)
        self.R = len(rngs)
        self._pos = CHUNK

    def _weights(self, J, b):
        if self.q is None:
            return np.full(J.shape, 1.0 / b)
        return self.q[J]

    def initial(self):
        """Pairs (trajectory, j, weight) of the initial reference batches J_0."""
        tr, jj, ww = [], [], []
        for r, (_, _, rb) in enumerate(self.rngs):
            J = draw_ref_batches(rb, self.N, int(self.b[r]), 1)[0]
            tr.append(np.full(J.size, r))
            jj.append(J)
            ww.append(self._weights(J, int(self.b[r])))
        return np.concatenate(tr), np.concatenate(jj), np.concatenate(ww)

    def _refill(self):
        js, fires, pos, tr, jj, ww = [], [], [], [], [], []
        for r, (rj, rc, rb) in enumerate(self.rngs):
            if self.q is None:
                js.append(rj.integers(self.N, size=CHUNK))
            else:
                js.append(rj.choice(self.N, size=CHUNK, p=self.q))
            coins = rc.random(CHUNK) < self.p[r]
            fires.append(coins)
            at = np.flatnonzero(coins)
            J = draw_ref_batches(rb, self.N, int(self.b[r]), at.size)     # (k, b)
            pos.append(np.repeat(at, J.shape[1]))
            tr.append(np.full(J.size, r))
            jj.append(J.ravel())
            ww.append(self._weights(J, int(self.b[r])).ravel())
        self._j = np.stack(js, axis=1)                                   # (CHUNK, R)
        self._fire = np.stack(fires, axis=1)
        pos = np.concatenate(pos)
        order = np.argsort(pos, kind="stable")                           # by step, then trajectory
        self._pairs = [np.concatenate(a)[order] for a in (tr, jj, ww)]
        self._bounds = np.searchsorted(pos[order], np.arange(CHUNK + 1))
        self._pos = 0

    def next(self):
        """(j (R,), fire (R,) bool, (trajectory, j, weight) pairs of the firing ones)."""
        if self._pos == CHUNK:
            self._refill()
        t = self._pos
        lo, hi = self._bounds[t], self._bounds[t + 1]
        self._pos += 1
        return self._j[t], self._fire[t], tuple(a[lo:hi] for a in self._pairs)


def l_svrdsg(obj, pool, steps, seeds, iters, ref_prob, ref_batch=None, x0=None, v=None, *,
             pool_weights=None, log_every=1, metrics_fn=None, progress=None):
    """Run Algorithm 3 (L-SVRDSG) on R trajectories at once.

    Parameters
    ----------
    obj : objective
    pool : ndarray (N, d) or (R, N, d)
        The finite sketch set {s_1..s_N} (diagonals), shared by all trajectories or
        one per trajectory.
    steps : array-like (R,)
        Step size γ of each trajectory (theory: 1/(6 L_f L_S^max), Theorem 18).
    seeds : array-like of int (R,)
        Seed of each trajectory's streams (``SeedSequence(seed).spawn(4)``).
    iters : int
        Number of steps T.
    ref_prob : float or array-like (R,)
        Probability p ∈ (0, 1] of refreshing the reference point.
    ref_batch : int or array-like (R,), optional
        Reference batch size b ∈ [1, N]; ``None`` (or N) is the exact reference ∇f_pool.
    x0, v : ndarray (d,) or (d, R), optional
        Initial point and shift; zeros by default, and x0 defaults to v.
    pool_weights : ndarray (N,), optional
        Probabilities q_j of the pool's sketches (e.g. from ``Sketch.enumerate``);
        uniform when omitted.  Non-uniform weights need b = N.
    log_every : int or "geometric"
        As in :func:`~mast_cli.algorithms.dsgd.dsgd`.
    metrics_fn : callable X -> dict of (R,) arrays, optional
    progress : callable int -> None, optional

    Returns
    -------
    History
        ``extra`` holds ``W`` (last reference points) and ``refreshes`` (number of
        reference refreshes per trajectory).
    """
    R = len(np.atleast_1d(np.asarray(seeds)))
    d = obj.d
    pool, shared = _check_pool(pool, R)
    N = pool.shape[-2]
    check(pool.shape[-1] == d, f"pool sketches have dimension {pool.shape[-1]}, expected d={d}")
    q = check_pool_weights(pool_weights, N)
    p, b = _check_ref(ref_prob, ref_batch, N, R)
    if q is not None:
        check(np.all(b == N), "a pool with non-uniform weights needs the exact reference b = N")
    V = np.zeros((d, R)) if v is None else as_columns(v, d, R)
    X = V.copy() if x0 is None else as_columns(x0, d, R)
    gam = np.asarray(steps, dtype=np.float64).reshape(R)
    rngs = [streams(s, 4) for s in np.asarray(seeds).reshape(R)]
    bank = _VRBank(N, p, b, q, [(r[0], r[2], r[3]) for r in rngs])

    def sketches(tr, jj):
        return (pool[jj] if shared else pool[tr, jj]).T           # (d, m)

    def reference(Wp, tr, jj, ww):
        """Σ_{j∈J} w_j ∇f_{S_j}(w) per trajectory (segments of ``tr`` in increasing order)."""
        S = sketches(tr, jj)
        Vc = V[:, tr]
        Gs = S * obj.grad(Vc + S * (Wp[:, tr] - Vc))
        starts = np.flatnonzero(np.r_[True, tr[1:] != tr[:-1]])
        return np.add.reduceat(np.ascontiguousarray((Gs * ww).T), starts, axis=0).T

    W = X.copy()
    # cost columns: every ∇f_{S_j} is one pass over the data on a model with nnz(S_j) coordinates
    nnz = np.count_nonzero(pool, axis=-1).astype(np.float64)        # (N,) or (R, N)

    def pair_cost(tr, jj):
        """(passes, coordinates) per trajectory of the reference pairs (tr, jj)."""
        c = nnz[jj] if shared else nnz[tr, jj]
        return np.bincount(tr, minlength=R).astype(np.float64), np.bincount(tr, weights=c, minlength=R)

    pairs0 = bank.initial()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        G = reference(W, *pairs0)
    refreshes = np.zeros(R, dtype=np.int64)
    cols = np.arange(R)

    def step(X, t, alive):
        j, fire, (tr, jj, ww) = bank.next()
        S = sketches(cols, j)                                   # (d, R)
        Y = np.concatenate([V + S * (X - V), V + S * (W - V)], axis=1)
        Gc = obj.grad(Y)                                        # one product on 2R columns
        g = S * Gc[:, :R] - S * Gc[:, R:] + G
        if fire.any():
            W[:, fire] = X[:, fire]                             # w_{t+1} = x_t
        X -= (gam * alive) * g
        epochs, coords = 2.0, 2.0 * (nnz[j] if shared else nnz[cols, j])   # ∇f_S at x_t and w_t
        if fire.any():
            G[:, fire] = reference(W, tr, jj, ww)
            refreshes[fire] += 1
            e, c = pair_cost(tr, jj)
            epochs, coords = epochs + e, coords + c
        return epochs, coords

    return run_steps(step, X, iters, log_every, metrics_fn, progress,
                     lambda: {"W": W.copy(), "refreshes": refreshes}, costs=True,
                     cost0=pair_cost(pairs0[0], pairs0[1]))
