"""Algorithm 1: Double Sketched (S)GD, "DSGD" (mast-theory §4).

For t = 0, 1, ...: draw S_t ~ D, form the sparse model y_t = v + S_t(x_t − v), and step

    (I)  x_{t+1} = x_t − γ S_tᵀ ∇f(y_t)                             (exact, full data)
    (II) x_{t+1} = x_t − γ S_tᵀ Σ_{i∈B_t} w_i ∇f_i(y_t)              (subsampled rows)

[READ: S5 lines 1–4 of Algorithm 1; the rest RECON.]  R trajectories advance
together as the columns of a (d, R) array: per step one sparse·dense product A·Y
and one Aᵀ·W for (I), and one product on the τR sampled rows for (II).
"""

from __future__ import annotations

import numpy as np

from ..core import fused
from ._engine import RowBank, SketchBank, as_columns, run_steps, streams

__all__ = ["dsgd"]


def dsgd(obj, sketches, steps, seeds, iters, x0=None, v=None, *, batch_size=None,
         sampling="uniform", log_every=1, metrics_fn=None, progress=None, dtype=None, threads=1):
    """Run Algorithm 1 on R trajectories at once.

    Parameters
    ----------
    obj : objective
        Provides ``margins``-based ``grad`` (variant I) and ``grad_rows`` (variant II).
    sketches : list of Sketch, length R
        The distribution D of each trajectory (e.g. one per sparsity level).
    steps : array-like (R,)
        Step size γ of each trajectory.
    seeds : array-like of int (R,)
        Seed of each trajectory's streams (``SeedSequence(seed).spawn``).
    iters : int
        Number of steps T.
    x0, v : ndarray (d,) or (d, R), optional
        Initial point and shift; zeros by default, and x0 defaults to v.
    batch_size : int or array-like (R,), optional
        τ for variant (II); ``None`` runs variant (I) (full gradient at y_t).
    sampling : {'uniform', 'importance'}
        Row sampling of variant (II): uniform without replacement, or i.i.d. with
        q_i ∝ L_i and weights 1/(n q_i τ).
    log_every : int or "geometric"
        Log metrics every this many steps, or on the geometric schedule of
        :func:`~mast_cli.algorithms._engine.log_iterations` (always at 0 and T).
    metrics_fn : callable X -> dict of (R,) arrays, optional
    progress : callable int -> None, optional
        Called with the number of steps done since the last call.
    dtype : {None, numpy.float32}, optional
        Opt-in fast mode of the full gradients (variant I): margins and sigmoids in
        float32, gradients accumulated and iterates kept in float64 (see
        ``LogisticL2.grad`` and benchmarks/README.md for its accuracy).  ``None``
        (default) computes everything in float64.
    threads : int, default=1
        Threads sharing the full gradients (variant I) by groups of columns; the
        trajectories are the same, bit for bit, for any value.

    Returns
    -------
    History
    """
    R = len(sketches)
    d = obj.d
    v = np.zeros((d, R)) if v is None else as_columns(v, d, R)
    X = v.copy() if x0 is None else as_columns(x0, d, R)
    gam = np.asarray(steps, dtype=np.float64).reshape(R)
    rngs = [streams(s) for s in np.asarray(seeds).reshape(R)]
    bank = SketchBank(sketches, [r[0] for r in rngs])
    rows = None
    full = np.ones(R, dtype=bool)      # columns that use the exact full-data gradient
    if batch_size is not None:
        taus = np.broadcast_to(np.asarray(batch_size), (R,))
        q = None
        if sampling == "importance":
            L = obj.smoothness_per_sample()
            q = L / L.sum()
        # τ = n without replacement is exactly the full gradient: those columns take the
        # (much cheaper) variant-(I) path; the others draw rows from their own streams.
        full = (taus >= obj.n) & (sampling == "uniform")
        sub = np.flatnonzero(~full)
        if sub.size:
            rows = RowBank(obj.n, [int(taus[r]) for r in sub], [rngs[r][1] for r in sub], sampling, q)
    grad = obj.grad if dtype is None and threads == 1 else (lambda Y: obj.grad(Y, dtype=dtype, threads=threads))
    # passes over the data per step: 1 for the full gradient, τ/n for a τ-row minibatch
    pass_cost = np.ones(R) if batch_size is None else np.where(full, 1.0, np.minimum(taus, obj.n) / obj.n)

    Y = np.empty((d, R))                         # the sparse models, rewritten every step
    finite = np.ones(R, dtype=bool)

    def step(X, t, alive):
        S = bank.next()                          # (d, R)
        fused.sketched_model(X, v, S, Y)         # Y = v + S(X − v), one pass
        if rows is None:
            G = grad(Y)
        elif not full.any():
            G = obj.grad_rows(Y, *rows.next())
        else:
            G = np.empty_like(Y)
            G[:, full] = grad(Y[:, full])
            G[:, sub] = obj.grad_rows(Y[:, sub], *rows.next())
        fused.sketched_step(X, S, G, gam * alive, finite)      # X −= (γ alive) S G, one pass
        return pass_cost, bank.nnz

    return run_steps(step, X, iters, log_every, metrics_fn, progress, costs=True, finite=finite)
