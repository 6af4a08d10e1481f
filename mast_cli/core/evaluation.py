"""Evaluation: masked accuracy, the fixed evaluation sketches, MAST-loss estimates.

numpy/scipy only (mast-theory §6.1, §8).  Predictions are sign(aᵀx); a zero margin
counts as an error.
"""

from __future__ import annotations

import math

import numpy as np

from .kernels import col_accuracy
from .pool import MAX_BATCH_ENTRIES, PoolObjective

__all__ = ["EVAL_SEED", "EXACT_GRAD_WORK", "eval_sketches", "masked_accuracy", "mc_value",
           "grad_norm_sq_estimate"]

#: Seed of the fixed evaluation sketches (common random numbers for mast_loss).
EVAL_SEED = 20231127
#: Largest N · R · n for which :func:`grad_norm_sq_estimate` computes ∇f_pool exactly.
EXACT_GRAD_WORK = 1 << 25


def eval_sketches(sk, count):
    """The fixed evaluation sketches of one distribution (common random numbers).

    Parameters
    ----------
    sk : Sketch
        The sketch distribution D of one level.
    count : int
        N ≥ 0, the number of sketches.

    Returns
    -------
    ndarray of shape (N, d)
        ``count`` diagonals drawn with the seed :data:`EVAL_SEED`.
    """
    if count == 0:
        return np.zeros((0, sk.d))
    return sk.sample(np.random.default_rng(EVAL_SEED), count)


def masked_accuracy(X, y, x_hat, v, S):
    """Accuracy of the R masked models v + S_r(x̂ − v) on (X, y): one product X·W.

    Parameters
    ----------
    X : sparse matrix of shape (m, d)
        The rows to classify (a test or validation split).
    y : ndarray of shape (m,)
        Labels in {−1, +1}.
    x_hat : ndarray of shape (d,)
        The trained model x̂ (ERM, MAST, dropout).
    v : ndarray of shape (d,)
        The shift (pre-trained model), mast-theory §1.2.
    S : ndarray of shape (R, d)
        Sketch diagonals (the masks), mast-theory §6.1.

    Returns
    -------
    ndarray of shape (R,)
        Fraction of rows i with y_i a_iᵀ(v + S_r(x̂ − v)) > 0, for every mask r.
    """
    W = v[:, None] + S.T * (x_hat - v)[:, None]
    return col_accuracy(X, y, W)        # = col_mean((X @ W) * y > 0), in cache-sized row blocks


def mc_value(obj, sketch, v, X, m, rng):
    """Monte Carlo estimate of f_D at x (or at each column of X) with its standard error.

    Draws ``m`` fresh sketches (common to all columns) and averages f(v + s ⊙ (x − v))
    (mast-theory §8).

    Parameters
    ----------
    obj : LogisticObjective
        The objective f.
    sketch : Sketch
        The distribution D.
    v : ndarray of shape (d,)
        The shift.
    X : ndarray of shape (d,) or (d, R)
        One point or R points as columns.
    m : int
        Number of sketches.
    rng : numpy.random.Generator
        Draws the sketches.

    Returns
    -------
    mean : float or ndarray of shape (R,)
        Sample mean of f(v + s_j ⊙ (x − v)).
    se : float or ndarray of shape (R,)
        Standard error sd/√m (0 for m = 1).
    """
    S = sketch.sample(rng, int(m))
    vals = PoolObjective(obj, S, v).values(X)
    mean = vals.mean(axis=0)
    se = vals.std(axis=0, ddof=1) / math.sqrt(m) if m > 1 else np.zeros_like(mean)
    return mean, se


def grad_norm_sq_estimate(pool, X, rng, m=None, budget=EXACT_GRAD_WORK):
    """‖∇f_pool(x_r)‖² at each column of X: exact, or unbiased from m sketches.

    When N·R·n ≤ ``budget`` the pooled gradient is computed exactly.  Otherwise, with m
    sketches drawn from the pool per column (independently, with replacement),
    ‖Σ_k g_k‖² − Σ_k ‖g_k‖² divided by m(m − 1) is an unbiased estimate of
    ‖E g‖² = ‖∇f_pool(x)‖² (a U-statistic over the pairs k ≠ l; it can be negative).

    Parameters
    ----------
    pool : PoolObjective
        f_pool (mast-theory §8).
    X : ndarray of shape (d, R)
        R points as columns.
    rng : numpy.random.Generator
        Draws the sketches of the estimate.
    m : int, optional
        Sketches per column; by default as many as the budget allows (R·m·n ≤ budget),
        between 8 and 256 (the variance falls like 1/m).
    budget : int, default=EXACT_GRAD_WORK
        Largest N·R·n (dense entries) for the exact gradient.

    Returns
    -------
    estimate : ndarray of shape (R,)
        ‖∇f_pool(x_r)‖², exact or unbiased.
    exact : bool
        True when the gradient was computed exactly.
    """
    R, n = X.shape[1], pool.obj.n
    if m is None:
        m = int(np.clip(budget // max(1, R * n), 8, 256))
    if pool.N <= m or pool.N * R * n <= budget:
        G = pool.grad(X)
        return np.sum(G * G, axis=0), True
    idx = rng.choice(pool.N, size=(R, m), p=pool.w)                 # (R, m)
    est = np.empty(R)
    per = max(1, MAX_BATCH_ENTRIES // max(1, m * n))
    for a in range(0, R, per):
        b = min(R, a + per)
        S = pool.S[idx[a:b]]                                        # (r, m, d)
        D = X.T[a:b, None, :] - pool.v                              # (r, 1, d)
        Y = (pool.v + S * D).reshape((b - a) * m, -1).T             # (d, r·m)
        G = (pool.obj.grad(Y).T.reshape(b - a, m, -1)) * S          # (r, m, d)
        tot = G.sum(axis=1)
        est[a:b] = (np.sum(tot * tot, axis=1) - np.sum(G * G, axis=(1, 2))) / (m * (m - 1))
    return est, False
