"""Two-sided checks against the exact oracles of the ridge objective (mast-theory §2.6).

On f = (1/2n)‖Ax − b‖² + λ/2‖x‖² the mean iterate of every unbiased method follows exact
gradient descent on f_D (:mod:`mast_cli.core.oracle`), and for Algorithm 1 (I) the second
moment E‖x^t − x*_D‖² = tr(P_t) is exact too.  These checks run the product's own engines
with the product's own samplers (the sketch classes as ``make_sketch`` builds them, Perm-K
with M ∤ d, the importance-sampling row bank) and compare, at every logged t, the Monte
Carlo mean over R seeds with the exact value, **two-sided**: a wrong scale, a missing Sᵀ, a
wrong weight, average or step moves the mean off the oracle's line in either direction.

Statistics (both rows report observed = the largest |t|, bound = the critical value):

* ``exact-mean`` (one row per algorithm): for K = 8 fixed unit directions u_k (the mean's
  displacement E[x^T] − x⁰ and 7 Gaussian directions) and every logged t ≥ 1, Student's
  t_{k,t} = ⟨x̄^t − E[x^t], u_k⟩ / (s_{k,t}/√R), s the sample standard deviation over the R
  seeds; the row fails when max |t_{k,t}| exceeds the two-sided t_{R−1} quantile at level
  0.01/(K·L) (Bonferroni over the K·L tests); in a ``mast verify`` run the level is split further
  over all the run's stochastic rows (:func:`~mast_cli.verify.result.bonferroni_groups`, Student
  t_{R−1} quantiles), so that any of them fires on a correct product with probability ≤ 1%.
  A projection with s = 0 (deterministic, e.g. S ≡ I) must match to 1e-9 relative.
* ``exact-second-moment`` (Algorithm 1 (I)): t_t = (mean_r ‖x_r^t − x*_D‖² − tr(P_t))/(s_t/√R)
  at every logged t ≥ 1, two-sided t_{R−1} quantile at level 0.01/L (Bonferroni over t).
* ``thm2-exact`` (deterministic): Theorem 2's bound ≥ the exact E‖x^t − x*_D‖² at every
  logged t; the row reports the t where bound/exact is smallest, and the sweep gets the
  whole curve (the exact tightness of Theorem 2, drawn by :func:`draw_tightness`).

``null`` is the statistic of a do-nothing algorithm (x^t = x⁰) measured with the same
standard errors, so ``power`` = null / critical value says how far a method that never
moves would land outside the region.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import t as student_t

from ...core import theory
from ..result import GROUP, CheckResult

__all__ = ["exact_mean", "exact_second_moment", "thm2_exact", "is_quadratic", "draw_tightness",
           "EXACT_SEEDS", "DIRECTIONS", "LEVEL"]

#: Smallest number of seeds of the exact-* checks (more than the rate checks': cheap on ridge).
EXACT_SEEDS = 32
#: Projection directions of ``exact-mean``.
DIRECTIONS = 8
#: Family-wise two-sided level of each row.
LEVEL = 0.01
#: Largest work (multiply-adds over the run) of the second-moment recursion.
SECOND_MOMENT_WORK = 4e9


def is_quadratic(ctx):
    """The objective has the exact oracles (ridge), f is strongly convex and L_S^max < ∞."""
    return (hasattr(ctx.obj, "quadratic") and ctx.convex and ctx.mu > 0
            and math.isfinite(float(ctx.sketch.L_S_max)))


#: Horizon of the exact-* checks when --iters is not given (the regime choice of the rate
#: checks does not apply: these checks are two-sided at every logged t, any T is informative).
DEFAULT_T = {True: 200, False: 600}


def _T(ctx):
    return int(ctx.cfg.iters) if ctx.cfg.iters else DEFAULT_T[bool(ctx.cfg.quick)]


def _R(ctx):
    return max(EXACT_SEEDS, ctx.cfg.seeds)


def _critical(R, m):
    """Two-sided Student t_{R−1} quantile for m simultaneous tests at family-wise level LEVEL."""
    return float(student_t.isf(LEVEL / (2.0 * max(1, m)), R - 1))


def _max_abs_t(samples, target, scale):
    """max |t| over rows of (L, R) samples vs (L,) targets; (stat, index, degenerate_ok)."""
    R = samples.shape[1]
    mean = samples.mean(axis=1)
    sd = samples.std(axis=1, ddof=1)
    diff = mean - target
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(sd > 0, np.abs(diff) / (sd / math.sqrt(R)), 0.0)
    exact_bad = (sd == 0) & (np.abs(diff) > 1e-9 * max(1.0, scale))
    t = np.where(exact_bad, np.inf, t)
    k = int(np.argmax(t))
    return float(t[k]), k, sd


def _directions(ctx, d, first):
    rng = np.random.default_rng([ctx.cfg.seed, 4242])
    U = rng.standard_normal((d, DIRECTIONS))
    if np.linalg.norm(first) > 0:
        U[:, 0] = first
    return U / np.linalg.norm(U, axis=0)


def _mean_row(ctx, label, run, quad, x0, gam, what):
    """Run ``run(metrics_fn, log_every)`` and compare its projections with E[x^t]."""
    from ...core.oracle import mean_trajectory

    T, R = _T(ctx), _R(ctx)
    its = np.array(_log_points(T, max(1, _T(ctx) // 20)))
    m = mean_trajectory(quad, x0, gam, its)                       # (L, d)
    U = _directions(ctx, quad.d, m[-1] - x0)
    h = run(lambda X: {f"p{k}": U[:, k] @ X for k in range(U.shape[1])}, max(1, _T(ctx) // 20))
    if np.any(h.diverged_at >= 0):
        stat, tstar, null = math.inf, -1, math.nan
        notes = f"{int(np.sum(h.diverged_at >= 0))} of {R} trajectories diverged"
    else:
        keep = h.iterations >= 1
        proj = np.concatenate([h.metrics[f"p{k}"][keep] for k in range(U.shape[1])])        # (K·L, R)
        target = np.concatenate([m[keep] @ U[:, k] for k in range(U.shape[1])])
        scale = float(np.max(np.abs(m)))
        stat, idx, sd = _max_abs_t(proj, target, scale)
        tstar = int(h.iterations[keep][idx % int(keep.sum())])
        x0p = np.concatenate([np.full(int(keep.sum()), x0 @ U[:, k]) for k in range(U.shape[1])])
        with np.errstate(divide="ignore", invalid="ignore"):
            nt = np.where(sd > 0, np.abs(x0p - target) / (sd / math.sqrt(R)), 0.0)
        null = float(np.max(nt))
        notes = (f"max |t| over {U.shape[1]} directions × {int(keep.sum())} logged t at t = {tstar}; "
                 f"E[x^t] = exact GD on f_D (§2.6); γ = {gam:.4g}")
    L = int(np.sum(h.iterations >= 1))
    crit = _critical(R, DIRECTIONS * L)
    return CheckResult("exact-mean", f"{label}: mean of R runs of x^t = E[x^t] (exact GD on f_D) at every "
                       f"logged t, two-sided (Bonferroni over {DIRECTIONS}×{L} and the run's stochastic rows)",
                       stat, crit, kind="stochastic", se=0.0, samples=R, recon=True, notes=f"{what}; {notes}",
                       null=null, t=tstar, bonferroni_group=GROUP, bonferroni_tests=2 * DIRECTIONS * max(1, L),
                       bonferroni_df=R - 1)


def _log_points(T, log_every):
    """The engines' logged iterations: 0, every ``log_every``, and T."""
    pts = list(range(0, T + 1, max(1, int(log_every))))
    return pts if pts[-1] == T else pts + [T]


def exact_mean(ctx):
    """``exact-mean`` for Algorithms 1 (I), 1 (II) uniform and importance, 2 (independent and
    Perm-K with M ∤ d where possible) and 3, each with the product's samplers."""
    from ... import algorithms
    from ...core.oracle import distributed_quadratic, quadratic_of
    from ...core.pool import EmpiricalSketch
    from ...core.sketches import PermK

    obj, v, T = ctx.obj, ctx.v, _T(ctx)
    R, sk, d, n = _R(ctx), ctx.sketch, ctx.obj.d, ctx.obj.n
    seeds = np.arange(R) + 1000 * ctx.cfg.seed + 7_000_000
    x0 = np.zeros(d)
    L_f, L_S = ctx.L_f, float(sk.L_S_max)
    rows = []
    quad = quadratic_of(obj, sk, v)

    g1 = theory.step_dsgd(L_f, L_S)
    rows.append(_mean_row(ctx, "Alg. 1 (I)", lambda mf, le: algorithms.dsgd(
        obj, [sk] * R, [g1] * R, seeds, T, x0=x0, v=v, log_every=le, metrics_fn=mf), quad, x0, g1,
        f"{sk.name} sampler"))

    tau = min(ctx.cfg.batch, n)
    Li = obj.smoothness_per_sample()
    for sampling in ("uniform", "importance"):
        g2 = theory.step_dsgd_minibatch(L_f, float(Li.max()), L_S, n, tau, sampling, float(Li.mean()))
        rows.append(_mean_row(ctx, f"Alg. 1 (II) {sampling}, τ={tau}", lambda mf, le, g2=g2, s=sampling:
                              algorithms.dsgd(obj, [sk] * R, [g2] * R, seeds + 1, T, x0=x0, v=v, batch_size=tau,
                                              sampling=s, log_every=le, metrics_fn=mf), quad, x0, g2,
                              f"{sk.name} sampler, {sampling} rows"))

    if n >= 2:
        M = min(ctx.cfg.workers, n, d)
        part = algorithms.partition_rows(n, M, "random", rng=np.random.default_rng([ctx.cfg.seed, 2]))
        split = algorithms.WorkerSplit(obj, part)
        L_loc = split.local_smoothness()
        for law in (sk, PermK(d, M)):
            ws = algorithms.WorkerSketches(law, M)
            gam = theory.step_distributed(L_loc, ws.L_S_max)
            q2 = distributed_quadratic(obj, split, ws.marginals(), v)
            what = (f"M={M} independent {sk.name}" if law is sk else
                    f"perm-k M={M} ({'M ∤ d' if d % M else 'M | d'}), blocks {sorted(set(int(q) for q in law.q))}")
            rows.append(_mean_row(ctx, f"Alg. 2 ({'independent' if law is sk else 'Perm-K'})",
                                  lambda mf, le, ws=ws, gam=gam: algorithms.distributed_dsgd(
                                      obj, split, [ws] * R, [gam] * R, seeds + 2, T, x0=x0, v=v, log_every=le,
                                      metrics_fn=mf), q2, x0, gam, what))

    pool = ctx.pool if ctx.pool.uniform else EmpiricalSketch(
        sk.sample(np.random.default_rng([ctx.cfg.seed, 77]), ctx.cfg.pool))
    N = pool.N
    b, p = min(N, 8), 0.1
    g3 = theory.step_vr(L_f, pool.L_S_max)
    q3 = quadratic_of(obj, pool, v)
    rows.append(_mean_row(ctx, f"Alg. 3 (b={b}, p={p:g})", lambda mf, le: algorithms.l_svrdsg(
        obj, pool.S, [g3] * R, seeds + 3, T, ref_prob=p, ref_batch=b, x0=x0, v=v, log_every=le, metrics_fn=mf),
        q3, x0, g3, f"uniform pool of N={N}"))
    return rows


def _second_moment_law(ctx):
    """(S, w, label) of the law Algorithm 1 (I) samples in ``exact-second-moment``: the
    enumeration of D when it is small, else the verify pool D_pool (the engine then runs on it)."""
    sk = ctx.sketch
    try:
        if sk.support_size() <= 8192:
            S, w = sk.enumerate()
            return S, w, sk, f"exact enumeration of {sk.name} (N={len(w)})"
    except Exception:      # noqa: BLE001 - not enumerable: use the pool
        pass
    pool = ctx.pool
    return pool.S, pool.weights, pool, f"D_pool (N={pool.N})"


def _second_moment(ctx):
    """Run Algorithm 1 (I) and the exact recursion once per context (shared by two rows)."""
    if hasattr(ctx, "_exact_second"):
        return ctx._exact_second
    from ... import algorithms
    from ...core.oracle import TENSOR_MAX_D, quadratic_of, second_moment_trajectory

    obj, v, T = ctx.obj, ctx.v, _T(ctx)
    R = max(2 * EXACT_SEEDS, ctx.cfg.seeds)
    S, w, law, label = _second_moment_law(ctx)
    quad = quadratic_of(obj, law, v)
    if obj.d <= TENSOR_MAX_D:
        work = obj.d ** 4 + len(S) * obj.d ** 4 / max(1, T)          # per step + the one-off tensor
    else:
        work = float(np.sum(2.0 * np.count_nonzero(S, axis=1) ** 3))
    if work * T > SECOND_MOMENT_WORK:
        out = None
    else:
        x0 = np.zeros(obj.d)
        gam = theory.step_dsgd(ctx.L_f, float(np.max(S * S)))
        its = _log_points(T, max(1, _T(ctx) // 20))
        ex = second_moment_trajectory(quad, S, w, x0, gam, its)
        x_D = quad.x_D
        seeds = np.arange(R) + 1000 * ctx.cfg.seed + 8_000_000
        h = algorithms.dsgd(obj, [law] * R, [gam] * R, seeds, T, x0=x0, v=v, log_every=max(1, _T(ctx) // 20),
                            metrics_fn=lambda X: {"e": np.sum((X - x_D[:, None]) ** 2, axis=0)})
        E2 = S * S
        mu_D, L_S = float(np.min(w @ E2)), float(np.max(E2))
        f_inf = float(obj.value(ctx.prob.x_star))
        delta = float(obj.value(x_D)) + float(quad.f_D_minus_f(x_D)) - f_inf
        bound = theory.theorem2(np.asarray(its), gam, ctx.L_f, ctx.mu, mu_D, L_S,
                                float(np.sum((x0 - x_D) ** 2)), delta)
        out = {"iterations": np.asarray(its), "exact": ex["second"], "mean_part": ex["mean_part"],
               "mc": h.metrics["e"], "bound": np.asarray(bound, dtype=float), "R": R, "gamma": gam,
               "law": label, "delta": delta, "diverged": int(np.sum(h.diverged_at >= 0))}
    ctx._exact_second = out
    return out


def exact_second_moment(ctx):
    """``exact-second-moment``: mean of ‖x^t − x*_D‖² over R seeds vs tr(P_t), two-sided."""
    out = _second_moment(ctx)
    stmt = "Alg. 1 (I): mean of ‖x^t − x*_D‖² = tr(P_t) (§2.6 recursion) at every logged t, two-sided"
    if out is None:
        return CheckResult("exact-second-moment", stmt, math.nan, math.nan, kind="stochastic",
                           applicable=False, notes=f"not applicable: d = {ctx.obj.d} makes the recursion too "
                           "costly (heart_scale-sized d, or a modest pool)")
    its, R = out["iterations"], out["R"]
    keep = its >= 1
    L = int(keep.sum())
    crit = _critical(R, L)
    if out["diverged"]:
        return CheckResult("exact-second-moment", stmt, math.inf, crit, kind="stochastic", samples=R,
                           bonferroni_group=GROUP, bonferroni_tests=2 * max(1, L), bonferroni_df=R - 1,
                           notes=f"{out['diverged']} trajectories diverged")
    mc, ex = out["mc"][keep], out["exact"][keep]
    stat, k, sd = _max_abs_t(mc, ex, float(np.max(ex)))
    with np.errstate(divide="ignore", invalid="ignore"):
        r0 = out["exact"][0]
        null = float(np.max(np.where(sd > 0, np.abs(r0 - ex) / (sd / math.sqrt(R)), 0.0)))
    out_t = int(its[keep][k])
    return CheckResult("exact-second-moment", stmt + f" (Bonferroni over {L} t and the run's stochastic rows)", stat,
                       crit, kind="stochastic", se=0.0, samples=R, null=null, t=out_t, bonferroni_group=GROUP,
                       bonferroni_tests=2 * max(1, L), bonferroni_df=R - 1,
                       notes=f"max |t| at t = {out_t}: mean {mc[k].mean():.6g} vs exact {ex[k]:.6g}; "
                             f"{out['law']}; γ = 1/(L_f L_S^max) = {out['gamma']:.4g}")


def thm2_exact(ctx):
    """Theorem 2's bound against the exact E‖x^t − x*_D‖² at every logged t (deterministic)."""
    out = _second_moment(ctx)
    stmt = "Theorem 2 vs the exact E‖x^t − x*_D‖² = tr(P_t) at every logged t"
    if out is None:
        return CheckResult("thm2-exact", stmt, math.nan, math.nan, applicable=False,
                           notes=f"not applicable: d = {ctx.obj.d} (see exact-second-moment)")
    its, ex, bnd = out["iterations"], out["exact"], out["bound"]
    ratio = bnd / np.where(ex > 0, ex, np.nan)
    k = int(np.nanargmin(ratio)) if np.any(np.isfinite(ratio)) else 0
    T = len(its) - 1
    ctx.sweep["thm2_exact_tightness"] = {
        "t": its.tolist(), "exact": ex.tolist(), "bound": bnd.tolist(),
        "mc_mean": out["mc"].mean(axis=1).tolist(),
        "mc_se": (out["mc"].std(axis=1, ddof=1) / math.sqrt(out["R"])).tolist(), "law": out["law"]}
    return CheckResult("thm2-exact", stmt, float(ex[k]), float(bnd[k]), kind="exact", t=int(its[k]),
                       tol=1e-9 * max(1.0, float(bnd[k])),
                       notes=f"tightness bound/exact: min {ratio[k]:.4g} at t = {int(its[k])}, "
                             f"{ratio[T]:.4g} at t = {int(its[T])}; Δ = {out['delta']:.4g}; {out['law']}")


def draw_tightness(result, path):
    """Figure of the exact tightness of Theorem 2, one panel pair per sketch level.

    Top: the exact E‖x^t − x*_D‖² (tr P_t), the Monte Carlo mean with its 99% band and
    Theorem 2's bound (log scale); bottom: bound / exact.  Returns the path, or None
    when no row carries the curve.
    """
    levels = [s for s in result["sweep"] if "thm2_exact_tightness" in s]
    if not levels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(levels), figsize=(5.2 * len(levels), 6.4), squeeze=False, sharex="col")
    for j, s in enumerate(levels):
        c = s["thm2_exact_tightness"]
        t = np.asarray(c["t"])
        ex, bnd = np.asarray(c["exact"]), np.asarray(c["bound"])
        mc, se = np.asarray(c["mc_mean"]), np.asarray(c["mc_se"])
        ax = axes[0, j]
        ax.plot(t, bnd, color="C3", label="Theorem 2 bound")
        ax.plot(t, ex, color="k", label="exact E‖x^t − x*_D‖² (tr P_t)")
        ax.fill_between(t, np.maximum(mc - 2.576 * se, 1e-300), mc + 2.576 * se, color="C0", alpha=0.3,
                        label="Monte Carlo mean ± 2.58 se")
        ax.plot(t, mc, "o", ms=3, color="C0")
        ax.set_yscale("log")
        ax.set_title(f"{result['dataset']['name']}: {s['sketch']} sparsity {s['sparsity']:.2g}", fontsize=10)
        ax.legend(fontsize=8)
        ax2 = axes[1, j]
        ax2.plot(t, bnd / ex, color="C3")
        ax2.set_yscale("log")
        ax2.set_xlabel("iteration t")
        ax2.set_ylabel("bound / exact")
        ax2.axhline(1.0, color="k", lw=0.8, ls="--")
        ax2.set_title(f"exact tightness of Theorem 2 ({c['law']})", fontsize=9)
    axes[0, 0].set_ylabel("E‖x^t − x*_D‖²")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
