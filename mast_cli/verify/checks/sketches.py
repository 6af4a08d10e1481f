"""The product's samplers against their closed forms (mast-theory §2, §3.1; §8 items 1–5).

These checks draw from the very objects the algorithms draw from (``sketch.sample``,
``PermK.sample_blocks``) and compare with the closed forms the constants come from
(``sketch.mean()``, ``diag_second_moment()``, ``second_moment()``, ``L_S_max``).  Monte Carlo
checks are two-sided z-tests, Bonferroni-corrected over the coordinates / pairs compared:
the row's ``observed`` is the largest standardized deviation |mean − closed form| / se and its
``bound`` the critical value.  All these rows of one ``mast verify`` run (every sketch, level
and family, and ``alg2-workers``: 30 in a default run) are in the multiple-testing group of
every stochastic row of the run (:data:`~mast_cli.verify.result.GROUP`), family-wise 99%:
:func:`~mast_cli.verify.result.bonferroni_groups` sets each bound for its comparisons × the
number of distinct stochastic rows.  (Each row alone is a 99% test; on
heart_scale, 28 such rows at 99% each had some row fire on 69 of 400 seeds of the correct
product, so the battery failed on 17% of seeds, e.g. seed 0: ``sketch-mean@perm-k:0.8``.)  Where the support is small
the closed forms are also compared with the exact enumeration (deterministic).
"""

from __future__ import annotations

import math

import numpy as np

from ..result import GROUP, CheckResult, z_bonferroni

__all__ = ["sketch_mean", "sketch_second_moment", "sketch_cross_moment", "sketch_support", "sketch_L_S_max",
           "sketch_enumeration", "pool_constants", "permk_blocks", "sketch_other_level"]

#: Monte Carlo draws of the sampler checks (quick, full).
DRAWS = {True: 20_000, False: 60_000}
#: Largest support compared exactly with the closed forms.
ENUM_MAX = 20_000
#: Pairs (j, k) of the off-diagonal check (all pairs when there are fewer).
PAIRS = 300


def _draws(ctx):
    """One fixed set of draws of the product's sampler, shared by the sampler checks."""
    if "sketch_draws" not in ctx.cache:
        rng = np.random.default_rng([ctx.cfg.seed, 4242])
        ctx.cache["sketch_draws"] = np.asarray(ctx.sketch.sample(rng, DRAWS[bool(ctx.cfg.quick)]), dtype=np.float64)
    return ctx.cache["sketch_draws"]


def _zrow(check_id, statement, dev, se, m, notes="", key=""):
    """Row of a two-sided Bonferroni z-test over len(dev) comparisons, in the group :data:`GROUP`
    (its bound here is the row's own 99% critical value; the run's group correction raises it)."""
    dev, se = np.asarray(dev, dtype=np.float64), np.asarray(se, dtype=np.float64)
    zs = np.where(se > 0, np.abs(dev) / np.where(se > 0, se, 1.0), np.where(np.abs(dev) > 1e-12, math.inf, 0.0))
    k = int(np.argmax(zs))
    crit = z_bonferroni(2 * zs.size)
    return CheckResult(check_id, statement, float(zs[k]), crit, kind="stochastic", se=0.0, samples=m, recon=False,
                       bonferroni_group=GROUP, bonferroni_tests=2 * zs.size, bonferroni_key=key,
                       notes=f"max |z| over {zs.size} comparisons (two-sided, Bonferroni) at index {k}; "
                             f"Monte Carlo, {m} draws of the product's sampler" + (f"; {notes}" if notes else ""))


def sketch_mean(ctx):
    """E[s_j] of ``sketch.sample`` = ``sketch.mean()`` (= 1, Assumption 1) for every j."""
    S = _draws(ctx)
    m = S.shape[0]
    mean = ctx.sketch.mean()
    var = ctx.sketch.diag_second_moment() - mean ** 2            # closed-form variance
    return _zrow("sketch-mean", "§2: E[s_j] of the sampler = closed form (1) for all j", S.mean(axis=0) - mean,
                 np.sqrt(np.maximum(var, 0) / m), m, "se from the closed-form variance E[s_j²] − 1")


def sketch_second_moment(ctx):
    """diag E[SᵀS] of the sampler = ``diag_second_moment()``."""
    S = _draws(ctx)
    m = S.shape[0]
    S2 = S * S
    return _zrow("sketch-second-moment", "§2: diag E[SᵀS] = E[s_j²] of the sampler = closed form for all j",
                 S2.mean(axis=0) - ctx.sketch.diag_second_moment(), S2.std(axis=0, ddof=1) / math.sqrt(m), m)


def sketch_cross_moment(ctx):
    """Off-diagonal E[s_j s_k] of the sampler = ``second_moment()[j, k]``."""
    S = _draws(ctx)
    m, d = S.shape
    if d < 2:
        return []
    rng = np.random.default_rng([ctx.cfg.seed, 4243])
    if d * (d - 1) // 2 <= PAIRS:
        j, k = np.triu_indices(d, 1)
    else:
        j = rng.integers(d, size=PAIRS)
        k = (j + 1 + rng.integers(d - 1, size=PAIRS)) % d
    prod = S[:, j] * S[:, k]
    closed = ctx.sketch.second_moment()[j, k]
    return _zrow("sketch-cross-moment", "§2: off-diagonal E[s_j s_k] of the sampler = closed form",
                 prod.mean(axis=0) - closed, prod.std(axis=0, ddof=1) / math.sqrt(m), m, f"{j.size} pairs")


def sketch_support(ctx):
    """Kept coordinates per draw and their values: Rand-K exactly K at d/K; Bernoulli kept at 1/p_j,
    count per draw with mean Σp_j (z-test); Perm-K (one worker's block) q_i at d/q_i."""
    from ...core.sketches import Bernoulli, PermK, RandK

    sk, S = ctx.sketch, _draws(ctx)
    m, d = S.shape
    kept = S != 0
    if isinstance(sk, RandK):
        cnt = kept.sum(axis=1)
        wrong = np.abs(S[kept] - d / sk.k).max(initial=0.0) / (d / sk.k) + float(np.any(cnt != sk.k))
        return CheckResult("sketch-support", f"§2.2: every Rand-K draw keeps exactly K={sk.k} coordinates, "
                           "each scaled d/K", wrong, 1e-12, samples=m, recon=False,
                           notes=f"kept per draw in [{cnt.min()}, {cnt.max()}]; observed = relative scale error "
                                 "+ 1 if any count ≠ K")
    if isinstance(sk, Bernoulli):
        scale = np.broadcast_to(1.0 / sk.p, S.shape)[kept]
        wrong = float(np.max(np.abs(S[kept] - scale) / scale, initial=0.0))
        cnt = kept.sum(axis=1)
        dev = cnt.mean() - sk.p.sum()
        se = math.sqrt(float(np.sum(sk.p * (1 - sk.p))) / m)
        z = abs(dev) / se if se > 0 else (math.inf if abs(dev) > 0 else 0.0)
        rows = [CheckResult("sketch-support", "§2.1: every kept Bernoulli coordinate is scaled 1/p_j", wrong, 1e-12,
                            samples=m, recon=False, notes="observed = largest relative scale error"),
                CheckResult("sketch-keep-rate", "§2.1: kept coordinates per draw have mean Σ_j p_j", z,
                            z_bonferroni(2), kind="stochastic", samples=m, recon=False,
                            bonferroni_group=GROUP, bonferroni_tests=2,
                            notes=f"|z| of the mean count {cnt.mean():.4f} vs {sk.p.sum():.4f} (two-sided)")]
        return rows
    if isinstance(sk, PermK):
        cnt = kept.sum(axis=1)
        vals = S[kept]
        ok_counts = np.isin(cnt, sk.q)
        scales = d / sk.q.astype(np.float64)
        wrong = float(np.min(np.abs(vals[:, None] - scales[None, :]) / scales[None, :], axis=1).max(initial=0.0))
        return CheckResult("sketch-support", "§2.3: every Perm-K draw keeps a block of q_i coordinates at d/q_i",
                           wrong + float(not ok_counts.all()), 1e-12, samples=m, recon=False)
    return []


def sketch_L_S_max(ctx):
    """L_S^max = sup λ_max(SᵀS) = max_j s_j²: the closed form equals the largest value drawn
    (discrete families attain it), two-sided (an over-estimate only loosens bounds but is a bug)."""
    sk, S = ctx.sketch, _draws(ctx)
    if not math.isfinite(sk.L_S_max):
        return []
    top = float(np.max(S * S))
    if not _discrete(sk):       # a continuous support (a plug-in's): the supremum need not be drawn
        return CheckResult("sketch-L_S_max", "§3.1: max over draws of max_j s_j² ≤ L_S^max (closed form; "
                           "continuous support, supremum not attained)", max(top - sk.L_S_max, 0.0) / sk.L_S_max,
                           1e-12, samples=S.shape[0], recon=False,
                           notes=f"closed form {sk.L_S_max:.6g}, largest drawn {top:.6g}; relative excess")
    return CheckResult("sketch-L_S_max", "§3.1: L_S^max (closed form) = max over draws of max_j s_j² (attained)",
                       abs(top - sk.L_S_max) / sk.L_S_max, 1e-12, samples=S.shape[0], recon=False,
                       notes=f"closed form {sk.L_S_max:.6g}, largest drawn {top:.6g}; relative difference")


def _discrete(sk):
    """Whether the sketch has a finite support (built-in Bernoulli / Rand-K / Perm-K / identity)."""
    try:
        return math.isfinite(sk.support_size())
    except Exception:                                            # pragma: no cover - defensive
        return False


def sketch_enumeration(ctx):
    """Exact: E[s] and E[ssᵀ] over ``sketch.enumerate()`` = the closed forms (small supports)."""
    sk = ctx.sketch
    try:
        size = sk.support_size()
    except Exception:                                            # pragma: no cover - defensive
        return []
    if not size <= ENUM_MAX:
        return []
    S, w = sk.enumerate()
    err_mean = float(np.max(np.abs(w @ S - sk.mean())))
    M2 = (S.T * w) @ S
    err_m2 = float(np.max(np.abs(M2 - sk.second_moment())) / max(1.0, float(np.max(np.abs(M2)))))
    top = float(np.max(S * S))
    err_ls = abs(top - sk.L_S_max) / sk.L_S_max if math.isfinite(sk.L_S_max) else 0.0
    return CheckResult("sketch-enumeration", f"§2: over all {S.shape[0]} sketches, E[s], E[ssᵀ], L_S^max = closed forms",
                       max(err_mean, err_m2, err_ls), 1e-10, samples=S.shape[0], recon=False,
                       notes=f"max errors: mean {err_mean:.1e}, second moment {err_m2:.1e}, L_S^max {err_ls:.1e}")


def pool_constants(ctx):
    """The pool's own L_D, μ_D, L_S^max against the closed forms of the sketch class.

    Exact enumeration: equal to rounding.  Balanced SAA pool: equal up to the rounding of the
    keep counts and the per-coordinate renormalization (tolerance 3 L_D/N relative).  The rate checks use the
    conservative combination (max of the L's, min of μ_D), so a wrong closed form shows here.
    """
    sk, pool = ctx.sketch, ctx.pool
    if not math.isfinite(sk.L_S_max):
        return []
    # the pool's constants read off its own draws and weights here, not through the pool's
    # properties (which a sketch base class shares with the closed forms: a wrong base-class
    # formula would otherwise agree with itself)
    S, wts = np.asarray(pool.S, dtype=float), np.asarray(pool.weights, dtype=float)
    E2 = wts @ (S * S)
    pairs = {"L_D": (float(np.max(E2)), sk.L_D), "μ_D": (float(np.min(E2)), sk.mu_D),
             "L_S^max": (float(np.max(S * S)), sk.L_S_max)}
    if not pool.exact and not _discrete(sk):
        # a continuous support renormalized to E_pool[S] = I moves its extreme values: the pool's
        # L_S^max is its own (the rate checks use the larger one), only the moments are compared
        del pairs["L_S^max"]
    rel = {k: abs(a - b) / abs(b) for k, (a, b) in pairs.items()}
    # SAA: keep counts are rounded to integers (relative error ≤ 1/(p_keep N) per coordinate,
    # p_keep = 1/L_D the keep rate of Bernoulli / Rand-K), squared in L_S^max
    tol = 1e-10 if pool.exact else 3.0 * sk.L_D / pool.N + 1e-10
    worst = max(rel, key=rel.get)
    return CheckResult("pool-constants", "§3.1: the pool's L_D, μ_D, L_S^max = the sketch class's closed forms",
                       rel[worst], tol, samples=pool.N, recon=False,
                       notes=f"{'exact enumeration' if pool.exact else f'SAA pool of N={pool.N}'}; worst {worst}: "
                             f"pool {pairs[worst][0]:.6g} vs closed form {pairs[worst][1]:.6g}")


def _permk_for(d):
    """A Perm-K with M ∤ d (the smallest M ≥ 3 that does not divide d), or None."""
    for M in range(3, d + 1):
        if d % M:
            return M
    return None


def permk_blocks(ctx):
    """Perm-K with M ∤ d on ``PermK.sample_blocks`` (Algorithm 2's joint draw): every draw splits
    [d] into disjoint blocks of sizes q_i scaled d/q_i, and E[S_i] = I per worker (z-test)."""
    from ...core.sketches import PermK

    d = ctx.obj.d
    M = _permk_for(d)
    if M is None:
        return []
    pk = PermK(d, M)
    m = DRAWS[bool(ctx.cfg.quick)] // 4
    B = pk.sample_blocks(np.random.default_rng([ctx.cfg.seed, 4244]), m)       # (m, M, d)
    kept = B != 0
    scale = d / pk.q.astype(np.float64)
    structure = float(np.any(kept.sum(axis=1) != 1)) \
        + float(np.any(kept.sum(axis=2) != pk.q[None, :])) \
        + float(np.max(np.abs(np.where(kept, B, scale[None, :, None]) - scale[None, :, None]) / scale[None, :, None]))
    rows = [CheckResult("permk-structure", f"§2.3: Perm-K (M={M} ∤ d={d}) blocks are disjoint, cover [d], sizes q_i, "
                        "scale d/q_i", structure, 1e-12, samples=m, recon=False,
                        notes=f"q = {sorted(set(pk.q.tolist()))}")]
    mean = B.mean(axis=0)                                                      # (M, d)
    var = scale[:, None] - 1.0                                                 # E[s²] = d/q_i
    rows.append(_zrow("permk-mean", f"§2.3: E[S_i] = I for every worker of Perm-K (M={M} ∤ d={d})",
                      (mean - 1.0).ravel(), np.sqrt(np.broadcast_to(var, mean.shape) / m).ravel(), m,
                      key="permk-mean"))        # the same draws at every sketch level of a run: one test
    rows[-1].check = "permk-mean"
    return rows


#: The second sparsity level of :func:`sketch_other_level` (0.3 when the run's level is 0.8).
ALT_SPARSITY = 0.8


def sketch_other_level(ctx):
    """The sampler checks above again at a second sparsity level of the same family (Bernoulli,
    Rand-K): a bug symmetric at the run's level (keep probability p ↔ 1 − p, K ↔ d − K at
    sparsity 0.5) shows at the other.  Rows are named ``<check>@<level>``."""
    from ...core.sketches import Bernoulli, RandK, make_sketch

    if not isinstance(ctx.sketch, (Bernoulli, RandK)):
        return []
    alt = _other_level(float(ctx.sketch.sparsity))
    sk = make_sketch(ctx.sketch.name, ctx.obj.d, sparsity=alt)
    return _sampler_rows(ctx, sk, f"{alt:g}", f"{sk.name} at sparsity {alt:g} ({_param(sk)})")


def _other_level(level):
    """The second sparsity level of the sampler checks: :data:`ALT_SPARSITY`, or 0.3 when the
    run's level is that one."""
    return ALT_SPARSITY if abs(level - ALT_SPARSITY) > 1e-9 else 0.3


def _sampler_rows(ctx, sk, tag, note):
    """The sampler checks (mean, moments, support, L_S^max, enumeration) on the sketch ``sk``
    instead of the run's, rows named ``<check>@<tag>`` and their notes prefixed by ``note``."""
    from types import SimpleNamespace

    sub = SimpleNamespace(sketch=sk, cfg=ctx.cfg, cache={}, obj=ctx.obj)
    rows = []
    for f in (sketch_mean, sketch_second_moment, sketch_cross_moment, sketch_support, sketch_L_S_max,
              sketch_enumeration):
        out = f(sub)
        for r in (out if isinstance(out, list) else [out]):
            r.check = f"{r.check}@{tag}"
            r.notes = f"{note}; " + r.notes
            rows.append(r)
    return rows


def _param(sk):
    k = getattr(sk, "k", None)
    if k is not None:
        return f"K = {k}"
    p = np.atleast_1d(getattr(sk, "p", np.nan))
    return f"p = {float(p.mean()):.3g}"


#: Families whose samplers ``sketch_other_families`` checks when the run does not use them.
OTHER_FAMILIES = ("bernoulli", "rand-k", "perm-k", "gaussian")


def sketch_other_families(ctx):
    """The sampler checks on the families the run does not select (Perm-K's one-worker
    marginal ``PermK.sample``, Gaussian, ...) at the run's level, so that a sampler bug in a
    family the CI battery does not run still fails it; at the run's level and at
    :data:`ALT_SPARSITY` (Gaussian: σ² = 1 at 0.5, where σ and σ² coincide).  Run once per battery
    (with the first sketch of ``--sketch``); rows are named ``<check>@<family>:<level>``."""
    from ...core.sketches import make_sketch

    chosen = list(getattr(ctx.cfg, "sketches", []) or [])
    if chosen and ctx.sketch.name != chosen[0]:
        return []
    rows = []
    level = float(ctx.sketch.sparsity)
    for fam in OTHER_FAMILIES:
        if fam in chosen:
            continue
        for s in sorted({level, _other_level(level)}):
            sk = make_sketch(fam, ctx.obj.d, sparsity=s)
            rows += _sampler_rows(ctx, sk, f"{fam}:{s:g}", f"{fam} at sparsity {s:g}")
    return rows
