"""Algorithm 1 (II)'s row sampling, read off the engine's own steps (mast-theory §5, variant (II)).

A diagonal probe problem makes every row's contribution to a step visible: A = Diag(c) with
n = d = 12 rows, c_i = 1, 2, 3, 4 repeating (so the per-row smoothness L_i = φ''_max c_i² + L_r
differ by up to 16×), labels ±1 alternating, the run's objective and λ.  Row i only touches
coordinate i, so one step of ``algorithms.dsgd`` from x = v = 0 with S = I and γ = 1 gives, in
coordinate i,

    (x⁰ − x¹)_i = m_i w_i · b_i c_i φ'(0)          (∇r(0) = 0)

with m_i the number of times row i was drawn and w_i its weight; φ'(0) = −1/2 (logistic) or −1
(squared loss) is known in closed form, so r_i = (x⁰ − x¹)_i / (b_i c_i φ'(0)) = m_i w_i is
read exactly from the product's step.  Then, for R one-step trajectories:

* uniform (τ rows without replacement, weights 1/τ): every step has exactly τ nonzero r_i, each
  equal to 1/τ (exact: a row drawn twice, a missing row or a wrong weight shows), and
  P(i ∈ B) = τ/n (z-test per row);
* importance (τ i.i.d. rows, q_i = L_i/ΣL_j, weights 1/(n q_i τ)): m_i = r_i n q_i τ is a
  non-negative integer with Σ_i m_i = τ for every step (exact: a weight 1/τ or q not ∝ L_i
  shows), and E[m_i] = τ q_i (z-test per row).

q_i is computed here from c, λ and the closed-form curvature bounds, not from the product.
The z-tests are two-sided, Bonferroni over the n rows and over the run's other stochastic rows
(:func:`~mast_cli.verify.result.bonferroni_groups`; the probe does not depend on the sketch, so
the rows of every sketch level repeat one test and count once).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from ..result import GROUP, CheckResult, z_bonferroni

__all__ = ["minibatch_sampling", "probe_applies"]

N_PROBE, TAU = 12, 3
#: One-step trajectories per sampling scheme (quick, full).
DRAWS = {True: 4000, False: 12000}
#: φ'(0) and sup φ'' of the data term, and the penalty's curvature at 0 / λ, per objective.
PHI1 = {"logreg": -0.5, "logreg-nonconvex": -0.5, "ridge": -1.0}
PHI2 = {"logreg": 0.25, "logreg-nonconvex": 0.25, "ridge": 1.0}
PEN = {"logreg": 1.0, "logreg-nonconvex": 2.0, "ridge": 1.0}


def probe_applies(ctx):
    return getattr(ctx.obj, "name", "") in PHI1


def _probe(ctx):
    from ...core.objective import make_objective

    c = 1.0 + (np.arange(N_PROBE) % 4)
    b = np.where(np.arange(N_PROBE) % 2 == 0, 1.0, -1.0)
    obj = make_objective(ctx.obj.name, sp.diags(c).tocsr(), b, ctx.obj.lam)
    L = PHI2[ctx.obj.name] * c * c + PEN[ctx.obj.name] * ctx.obj.lam
    return obj, c, b, L / L.sum()


def _ratios(ctx, obj, c, b, sampling, seed_base):
    from ... import algorithms
    from ...core.pool import EmpiricalSketch

    R = DRAWS[bool(ctx.cfg.quick)]
    ident = EmpiricalSketch(np.ones((1, N_PROBE)))
    x0 = np.zeros(N_PROBE)
    h = algorithms.dsgd(obj, [ident] * R, np.ones(R), np.arange(R) + seed_base + 1000 * ctx.cfg.seed, 1,
                        x0=x0, v=x0, batch_size=TAU, sampling=sampling)
    step = x0[:, None] - h.x_final                                         # (n, R)
    return step / (b * c * PHI1[ctx.obj.name])[:, None]                   # r_i = m_i w_i


def _z(dev, se):
    zs = np.where(se > 0, np.abs(dev) / np.where(se > 0, se, 1.0), np.where(np.abs(dev) > 1e-12, math.inf, 0.0))
    return zs, int(np.argmax(zs))


def minibatch_sampling(ctx):
    """Rows: uniform structure (exact), uniform inclusion (z), importance structure (exact),
    importance frequencies (z) — see the module docstring."""
    obj, c, b, q = _probe(ctx)
    n = N_PROBE
    rows = []
    # --- uniform without replacement ------------------------------------------------------
    r = _ratios(ctx, obj, c, b, "uniform", 30_000_000)
    R = r.shape[1]
    inc = np.abs(r) > 1e-12
    cnt = inc.sum(axis=0)
    werr = float(np.max(np.abs(r[inc] * TAU - 1.0), initial=0.0))
    bad = int(np.sum(cnt != TAU))
    rows.append(CheckResult("minibatch-uniform", f"§5 (II): every uniform minibatch has τ={TAU} distinct rows, "
                            "each weighted 1/τ (read off the engine's step, probe A = Diag(c))",
                            float(bad) + werr, 1e-9, samples=R, recon=False,
                            notes=f"{bad} of {R} steps without exactly τ distinct rows (counts "
                                  f"{int(cnt.min())}..{int(cnt.max())}); largest |w_iτ − 1| = {werr:.2g}"))
    p = TAU / n
    zs, k = _z(inc.mean(axis=1) - p, np.full(n, math.sqrt(p * (1 - p) / R)))
    rows.append(CheckResult("minibatch-uniform-rate", f"§5 (II): P(i ∈ B) = τ/n = {p:.4g} for every row",
                            float(zs[k]), z_bonferroni(2 * n), kind="stochastic", samples=R, recon=False,
                            bonferroni_group=GROUP, bonferroni_tests=2 * n, bonferroni_key="minibatch-uniform-rate",
                            notes=f"max |z| over {n} rows at row {k}: {inc[k].mean():.4f} vs {p:.4f} "
                                  "(two-sided, Bonferroni)"))
    # --- importance sampling ----------------------------------------------------------------
    r = _ratios(ctx, obj, c, b, "importance", 40_000_000)
    m = r * (n * q * TAU)[:, None]
    frac = float(np.max(np.abs(m - np.round(m))))
    tot = float(np.max(np.abs(np.round(m).sum(axis=0) - TAU)))
    neg = float(np.any(np.round(m) < 0))
    rows.append(CheckResult("minibatch-importance", f"§5 (II): importance minibatches: τ={TAU} i.i.d. rows with "
                            "weights 1/(n q_i τ), q_i = L_i/ΣL_j (every step: m_i = r_i n q_i τ integers summing to τ)",
                            frac + tot + neg, 1e-9, samples=R, recon=False,
                            notes=f"largest distance of m_i to an integer {frac:.2g}; largest |Σm_i − τ| {tot:.2g}; "
                                  f"q from L_i = φ''_max c_i² + L_r (q_max/q_min = {q.max() / q.min():.3g})"))
    mi = np.round(m)
    zs, k = _z(mi.mean(axis=1) - TAU * q, np.sqrt(TAU * q * (1 - q) / R))
    rows.append(CheckResult("minibatch-importance-rate", "§5 (II): E[m_i] = τ q_i (rows drawn ∝ L_i)",
                            float(zs[k]), z_bonferroni(2 * n), kind="stochastic", samples=R, recon=False,
                            bonferroni_group=GROUP, bonferroni_tests=2 * n,
                            bonferroni_key="minibatch-importance-rate",
                            notes=f"max |z| over {n} rows at row {k}: {mi[k].mean():.4f} vs {TAU * q[k]:.4f} "
                                  "(two-sided, Bonferroni)"))
    return rows
