"""Naive one-trajectory loops of Algorithms 1–3: the oracles for the batched engines.

Slow and obviously correct (the scikit-learn ``test_sag.py`` pattern): plain 1-D
NumPy/SciPy products, one trajectory, one sketch at a time, drawing from the same
streams in the same chunks as the engines, so the iterates must agree.  They live in
the tests, not in the library.
"""

import numpy as np

from mast_cli.algorithms import WorkerSketches
from mast_cli.algorithms._engine import CHUNK, streams
from mast_cli.algorithms.vr import check_pool_weights, draw_ref_batches


def dsgd_reference(obj, sketch, step, seed, iters, x0=None, v=None):
    """Naive one-trajectory loop of Algorithm 1 (I): the oracle for the batched engine.

    Draws its sketches from the same stream as :func:`mast_cli.algorithms.dsgd` (so the iterates must agree)
    but one at a time with plain 1-D NumPy/SciPy calls.  Returns the iterates (T+1, d).
    """
    d = obj.d
    v = np.zeros(d) if v is None else np.asarray(v, dtype=np.float64)
    x = v.copy() if x0 is None else np.asarray(x0, dtype=np.float64).copy()
    rng = streams(seed)[0]
    out = [x.copy()]
    S_all = np.vstack([sketch.sample(rng, CHUNK) for _ in range(-(-iters // CHUNK))])
    for t in range(iters):
        s = S_all[t]
        y = v + s * (x - v)
        z = obj.b * (obj.A @ y)
        g = obj.A.T @ (obj.b * -1.0 / (1.0 + np.exp(z))) / obj.n + obj.penalty.grad(y)
        x = x - step * s * g
        out.append(x.copy())
    return np.array(out)


def distributed_reference(obj, partition, worker_sketches, step, seed, iters, x0=None, v=None):
    """Naive one-trajectory loop of Algorithm 2: the oracle for :func:`mast_cli.algorithms.distributed_dsgd`.

    Loops over the workers with plain 1-D products on each worker's own rows, drawing
    the sketches from the same stream in the same chunks.  Returns the iterates (T+1, d).
    """
    d, n = obj.d, obj.n
    parts = [np.asarray(p) for p in partition]
    M = len(parts)
    ws = worker_sketches if isinstance(worker_sketches, WorkerSketches) else WorkerSketches(worker_sketches, M)
    v = np.zeros(d) if v is None else np.asarray(v, dtype=np.float64)
    x = v.copy() if x0 is None else np.asarray(x0, dtype=np.float64).copy()
    rng = streams(seed)[0]
    S_all = np.concatenate([ws.sample(rng, CHUNK) for _ in range(-(-iters // CHUNK))])
    local = [(obj.A[p], obj.b[p]) for p in parts]
    out = [x.copy()]
    for t in range(iters):
        g = np.zeros(d)
        for i, (Ai, bi) in enumerate(local):
            s = S_all[t, i]
            y = v + s * (x - v)
            z = bi * (Ai @ y)
            grad_i = (M / n) * (Ai.T @ (bi * -1.0 / (1.0 + np.exp(z)))) + obj.penalty.grad(y)
            g += s * grad_i
        x = x - step * g / M
        out.append(x.copy())
    return np.array(out)


def l_svrdsg_reference(obj, pool, step, seed, iters, ref_prob, ref_batch=None, x0=None, v=None,
                       pool_weights=None):
    """Naive one-trajectory loop of Algorithm 3: the oracle for :func:`mast_cli.algorithms.l_svrdsg`.

    Plain 1-D products, one sketch gradient at a time; draws j_t, the coins and the
    reference batches from the same streams in the same chunks.  Returns the iterates
    (T+1, d).
    """
    pool = np.asarray(pool, dtype=np.float64)
    N, d = pool.shape
    q = check_pool_weights(pool_weights, N)
    b = N if ref_batch is None else int(ref_batch)
    v = np.zeros(d) if v is None else np.asarray(v, dtype=np.float64)
    x = v.copy() if x0 is None else np.asarray(x0, dtype=np.float64).copy()
    rs = streams(seed, 4)
    rj, rc, rb = rs[0], rs[2], rs[3]

    def grad_S(s, z):
        y = v + s * (z - v)
        m = obj.b * (obj.A @ y)
        return s * (obj.A.T @ (obj.b * -1.0 / (1.0 + np.exp(m))) / obj.n + obj.penalty.grad(y))

    def ref(wp, J):
        wts = np.full(len(J), 1.0 / b) if q is None else q[J]
        return sum(wt * grad_S(pool[jx], wp) for jx, wt in zip(J, wts))

    w = x.copy()
    G = ref(w, draw_ref_batches(rb, N, b, 1)[0])
    out = [x.copy()]
    for t in range(iters):
        if t % CHUNK == 0:
            js = rj.integers(N, size=CHUNK) if q is None else rj.choice(N, size=CHUNK, p=q)
            coins = rc.random(CHUNK) < ref_prob
            batches = iter(draw_ref_batches(rb, N, b, int(coins.sum())))
        s = pool[js[t % CHUNK]]
        g = grad_S(s, x) - grad_S(s, w) + G
        x_old = x
        x = x - step * g
        if coins[t % CHUNK]:
            w = x_old
            G = ref(w, next(batches))
        out.append(x.copy())
    return np.array(out)
