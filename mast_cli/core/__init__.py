"""Layer 1 — the paper's objects, numpy/scipy only (imports only :mod:`mast_cli.io`).

- :mod:`~mast_cli.core.kernels` — blocked sparse products, sigmoid/log-loss, column reductions.
- :mod:`~mast_cli.core.pools` — thread pools that survive fork (the kernels' threads).
- :mod:`~mast_cli.core.datafit` — the logistic data term: value, gradient, Hessians, per-row pieces.
- :mod:`~mast_cli.core.fused` — the same hot loops fused in numba (vectorized exp), used when available.
- :mod:`~mast_cli.core.penalties` — the penalties r(x) (L2, smooth non-convex) as public objects.
- :mod:`~mast_cli.core.objective` — f = logistic datafit + penalty; ``make_objective``.
- :mod:`~mast_cli.core.sketches` — one class per sketch family: sampler + closed-form moments.
- :mod:`~mast_cli.core.pool` — D_pool (an empirical sketch distribution) and f_pool.
- :mod:`~mast_cli.core.theory` — one function per lemma / theorem bound and theory step.
- :mod:`~mast_cli.core.evaluation` — masked accuracy, evaluation sketches, MAST-loss estimates.
"""
