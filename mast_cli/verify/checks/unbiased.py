"""The engines' expected step equals the gradient it estimates (exact over D_pool)."""

from __future__ import annotations

import numpy as np

from ..context import FixedSketch
from ..result import FD_TOL, CheckResult

__all__ = ["unbiased"]


def unbiased(ctx):
    """E_pool[g(x)] of the Algorithm 1 (I) engine vs central finite differences of f_pool.

    The engine runs one step from x with every pooled sketch held fixed (one trajectory per
    sketch), so the weighted mean of its steps is E_pool[g(x)] exactly; it is compared with
    Richardson-extrapolated central differences of f_pool (values only) along three directions.
    """
    from ... import algorithms

    obj, v, pool, P, rng = ctx.obj, ctx.v, ctx.pool, ctx.P, ctx.rng
    x = ctx.points[0][:, -1]
    N = pool.N
    out = np.empty((obj.d, N))
    per = max(1, (1 << 22) // max(1, obj.n))
    for a in range(0, N, per):
        b = min(N, a + per)
        h = algorithms.dsgd(obj, [FixedSketch(s) for s in pool.S[a:b]], np.ones(b - a),
                            np.arange(a, b), 1, x0=x, v=v)
        out[:, a:b] = x[:, None] - h.x_final
    g = out @ pool.weights
    gn = float(np.linalg.norm(g))
    U = [g / gn if gn > 0 else np.eye(obj.d)[0]]
    for _ in range(2):
        u = rng.standard_normal(obj.d)
        U.append(u / np.linalg.norm(u))
    U = np.stack(U, axis=1)
    hstep = 1e-3 * max(1.0, float(np.linalg.norm(x)))

    def dd(hh):
        Xp = np.concatenate([x[:, None] + hh * U, x[:, None] - hh * U], axis=1)
        vals = P.value(Xp)
        k = U.shape[1]
        return (vals[:k] - vals[k:]) / (2 * hh)

    fd = (4 * dd(hstep / 2) - dd(hstep)) / 3           # Richardson: O(h⁴)
    err = float(np.max(np.abs(U.T @ g - fd)) / max(float(np.abs(fd[0])), 1e-300))
    return CheckResult("unbiased", "§1.2: E_pool[g_S(x)] of the Alg. 1 engine = ∇f_D(x) (finite differences)",
                       err, FD_TOL, samples=N, recon=False,
                       notes=f"relative error over 3 directions, all {N} pooled sketches")
