"""The paper's qualitative claims, measured on the results of ``mast reproduce`` (issue 17).

Each claim gets a measured effect, a bootstrap 95% interval and a verdict (``holds``,
``does not hold``, ``inconclusive``), one row of ``claims.csv`` per (dataset, claim,
experiment, MAST model).  The claims (mast-theory §6.1, §7; READ-weak sources S1/S3/S8):

(a) ``pruned_mast_beats_erm``: at high sparsity (levels ≥ :data:`HIGH_SPARSITY`) the median
    test accuracy of randomly pruned MAST models is higher than that of pruned ERM models.
    Effect: the smallest, over the high levels, of median(MAST) − median(ERM) (the same
    masks for both; the bootstrap resamples the masks, paired).  Holds when the interval's
    lower end is > 0, does not hold when its upper end is < 0.  The per-level medians and
    interquartile ranges are in ``detail``.
(b) ``sparse_mast_beats_dense_erm``: some sparse MAST models (a level whose masks zero weights,
    some mask) have a
    higher test accuracy than the dense ERM model.  Effect: the share of such (level, mask)
    models; bootstrap over masks.  Holds when the lower end is > 0, does not hold when the
    share is 0.
(c) ``delta_grows``: Δ = f_D^inf − f^inf grows with sparsity.  Effect: Spearman's ρ between
    sparsity and Δ; the interval is a parametric bootstrap, Δ_s ~ N(Δ̂_s, se_s).  Holds when
    the lower end is > 0, does not hold when the upper end is ≤ 0.
(d) ``alg1_slows`` / ``alg1_noisier``: Algorithm 1 (theory step) converges more slowly and more
    noisily as sparsity grows.  Slowness: −log10 of the reduction of the MAST-loss gap
    f_D(x_T) − f_D^inf relative to f_D(x_0) − f_D^inf; noise: the standard deviation of the
    successive differences of log10 of that gap over the second half of the run.  Effect:
    Spearman's ρ of each against sparsity (medians over seeds); bootstrap over seeds.
(e) ``alg2_wide_steps`` / ``alg2_smaller_steps``: Algorithm 2 converges over a wide step range at
    moderate sparsity (≤ :data:`MODERATE_SPARSITY`) and needs smaller steps at the most extreme
    level.  A (step, sparsity) cell converges when no seed diverged and the median final
    f(x_T) − f^inf is below half of f(x_0) − f^inf.  Effects: log10(γ_max/γ_min) of the
    converging steps at the moderate levels (wide: ≥ 1, an order of magnitude), and
    log10 γ_max(moderate) − log10 γ_max(extreme) (> 0: smaller steps needed); bootstrap
    over seeds per cell.

A claim whose results are missing (experiment not run) is not reported.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["evaluate_claims", "CLAIM_EXPERIMENTS", "claims_table_markdown", "CLAIM_COLUMNS"]

#: sparsity levels counted as "high" in claim (a)
HIGH_SPARSITY = 0.7
#: levels counted as "moderate" in claim (e)
MODERATE_SPARSITY = 0.5
#: bootstrap resamples and seed
BOOT = 1000
BOOT_SEED = 20240617

#: experiment files whose results the claims read: experiment name -> claims
CLAIM_EXPERIMENTS = {
    "fig1_pruning_bernoulli": "ab", "fig3_pruning_randk": "ab", "fig4_pruning_permk": "ab",
    "delta_sparsity": "c", "claims_dsgd_sparsity": "d", "fig2_distributed_bernoulli": "e",
}

CLAIM_COLUMNS = ["dataset", "claim", "experiment", "mast_solution", "effect", "ci_low", "ci_high",
                 "verdict", "measure", "detail"]

CLAIM_TEXT = {
    "pruned_mast_beats_erm": "(a) pruned MAST > pruned ERM at high sparsity (median)",
    "sparse_mast_beats_dense_erm": "(b) some sparse MAST models beat the dense ERM model",
    "delta_grows": "(c) Δ = f_D^inf − f^inf grows with sparsity",
    "alg1_slows": "(d) Algorithm 1 converges more slowly as sparsity grows",
    "alg1_noisier": "(d) Algorithm 1 converges more noisily as sparsity grows",
    "alg2_wide_steps": "(e) Algorithm 2 converges over a wide step range at moderate sparsity",
    "alg2_smaller_steps": "(e) Algorithm 2 needs smaller steps at extreme sparsity",
}


def _verdict(lo, hi):
    """holds: the interval is above 0; does not hold: below 0; inconclusive otherwise."""
    if lo > 0:
        return "holds"
    if hi < 0:
        return "does not hold"
    return "inconclusive"


def _ci(samples):
    samples = np.asarray(samples, dtype=float)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return np.nan, np.nan
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return float(lo), float(hi)


def _spearman(x, y):
    from scipy.stats import spearmanr

    if len(x) < 3 or np.all(np.asarray(y) == np.asarray(y)[0]):
        return np.nan
    return float(spearmanr(x, y).statistic)


def _row(dataset, claim, experiment, solution, effect, lo, hi, verdict, measure, detail):
    return {"dataset": dataset, "claim": claim, "experiment": experiment, "mast_solution": solution,
            "effect": effect, "ci_low": lo, "ci_high": hi, "verdict": verdict, "measure": measure,
            "detail": detail}


# --- (a), (b): pruning -------------------------------------------------------------------------

def _pruning_claims(dataset, name, df, rng):
    rows = []
    erm = df[df.formulation == "erm"]
    dense_erm = float(erm.dense_test_accuracy.iloc[0])
    sels = [s for s in ("exact", "last", "best_masked_val", "best_val")
            if ((df.formulation == "mast") & (df.selection == s)).any()]
    levels = sorted(df.sparsity.unique())
    high = [s for s in levels if s >= HIGH_SPARSITY - 1e-12]
    for sel in sels:
        mast = df[(df.formulation == "mast") & (df.selection == sel)]
        label = "dsgd:" + sel if sel != "exact" else "exact"
        gap = mast.groupby("sparsity").fD_gap.first() if "fD_gap" in mast.columns else None
        # (a) per high level: paired bootstrap over masks of median(MAST) − median(ERM)
        if high:
            diffs, boots, parts = [], [], []
            for s in high:
                e = erm[erm.sparsity == s].sort_values("mask").test_accuracy.to_numpy()
                m = mast[mast.sparsity == s].sort_values("mask").test_accuracy.to_numpy()
                idx = rng.integers(0, len(e), size=(BOOT, len(e)))
                diffs.append(np.median(m) - np.median(e))
                boots.append(np.median(m[idx], axis=1) - np.median(e[idx], axis=1))
                qe, qm = np.percentile(e, [25, 50, 75]), np.percentile(m, [25, 50, 75])
                g = f", gap {gap[s]:.1e}" if gap is not None else ""
                parts.append(f"{s:.0%}: MAST {qm[1]:.3f} [IQR {qm[0]:.3f}–{qm[2]:.3f}] vs ERM {qe[1]:.3f} "
                             f"[{qe[0]:.3f}–{qe[2]:.3f}]{g}")
            k = int(np.argmin(diffs))
            effect = float(diffs[k])
            lo, hi = _ci(np.min(np.vstack(boots), axis=0))
            rows.append(_row(dataset, "pruned_mast_beats_erm", name, label, effect, lo, hi,
                             _verdict(lo, hi), "min over high levels of median(MAST) − median(ERM)",
                             "; ".join(parts)))
        # (b) share of sparse MAST (level, mask) models above the dense ERM accuracy
        # sparse levels: those whose masks zero weights (Perm-K with M = round(1/(1 − s)) = 1 is the
        # identity up to 30%: every mask then gives the dense accuracy)
        really = [s for s, g in mast.groupby("sparsity")
                  if s > 0 and not np.all(g.test_accuracy.to_numpy() == g.dense_test_accuracy.to_numpy())]
        sparse = mast[mast.sparsity.isin(really)]
        if len(sparse):
            wins = (sparse.test_accuracy.to_numpy() > dense_erm).astype(float)
            share = float(wins.mean())
            idx = rng.integers(0, wins.size, size=(BOOT, wins.size))
            lo, hi = _ci(wins[idx].mean(axis=1))
            best = sparse.groupby("sparsity").test_accuracy.max()
            verdict = "holds" if lo > 0 else ("does not hold" if share == 0 else "inconclusive")
            rows.append(_row(dataset, "sparse_mast_beats_dense_erm", name, label, share, lo, hi, verdict,
                             "share of sparse MAST models (level > 0, mask) above dense ERM accuracy",
                             f"dense ERM {dense_erm:.4f}; best sparse MAST per level: "
                             + ", ".join(f"{s:.0%} {a:.4f}" for s, a in best.items())))
    return rows


# --- (c): Δ -------------------------------------------------------------------------------------

def _delta_claim(dataset, name, df, rng):
    df = df.sort_values("sparsity")
    if "shift" in df.columns:
        df = df[df["shift"] == df["shift"].iloc[0]]
    s, d, se = df.sparsity.to_numpy(), df.delta.to_numpy(), df.delta_se.to_numpy()
    rho = _spearman(s, d)
    sims = d[None, :] + se[None, :] * rng.standard_normal((BOOT, len(d)))
    lo, hi = _ci([_spearman(s, row) for row in sims])
    verdict = "holds" if lo > 0 else ("does not hold" if hi <= 0 else "inconclusive")
    return [_row(dataset, "delta_grows", name, "exact (pool minimum)", rho, lo, hi, verdict,
                 "Spearman ρ(sparsity, Δ)",
                 ", ".join(f"{a:.0%}: {b:.2e}±{c:.0e}" for a, b, c in zip(s, d, se)))]


# --- (d): Algorithm 1 ---------------------------------------------------------------------------

def _alg1_claims(dataset, name, df, meta, rng):
    from ..io.outputs import mast_loss_key

    ref = meta.get("mast_loss_inf") or {}
    df = df[df.status == "ok"].copy()
    df["ref"] = [ref.get(mast_loss_key(k, s), np.nan) for k, s in zip(df.sketch, df.sparsity)]
    df["gap"] = np.maximum(df.mast_loss - df.ref, 1e-300)
    per = []                                     # (sparsity, seed, slowness, noise)
    for (s, seed), g in df.groupby(["sparsity", "seed"]):
        g = g.sort_values("iteration")
        lg = np.log10(g.gap.to_numpy())
        half = lg[len(lg) // 2:]
        per.append((s, seed, -(lg[0] - lg[-1]), float(np.std(np.diff(half)))))
    per = np.array(per)
    levels = np.unique(per[:, 0])
    rows = []
    for col, claim, measure in ((2, "alg1_slows", "Spearman ρ(sparsity, −log10 gap reduction)"),
                                (3, "alg1_noisier", "Spearman ρ(sparsity, std of Δlog10 gap, 2nd half)")):
        by_level = [per[per[:, 0] == s, col] for s in levels]
        med = [np.median(v) for v in by_level]
        rho = _spearman(levels, med)
        boots = []
        for _ in range(BOOT):
            boots.append(_spearman(levels, [np.median(v[rng.integers(0, len(v), len(v))]) for v in by_level]))
        lo, hi = _ci(boots)
        verdict = "holds" if lo > 0 else ("does not hold" if hi <= 0 else "inconclusive")
        rows.append(_row(dataset, claim, name, "dsgd (theory step)", rho, lo, hi, verdict, measure,
                         ", ".join(f"{s:.0%}: {m:.3g}" for s, m in zip(levels, med))))
    return rows


# --- (e): Algorithm 2 ---------------------------------------------------------------------------

def _alg2_claims(dataset, name, df, meta, rng):
    f_inf = float(meta.get("f_inf", 0.0))
    df = df.copy()
    df["gap"] = df.erm_loss - f_inf
    first = df[df.iteration == 0].groupby(["step_size", "sparsity"]).gap.median()
    last = df.sort_values("iteration").groupby(["step_size", "sparsity", "seed"]).tail(1)
    # a diverged trajectory has its rows after divergence dropped: its last row is not final
    cells = {}
    for (g, s), c in last.groupby(["step_size", "sparsity"]):
        final = np.where(c.status.to_numpy() == "diverged", np.inf, c.gap.to_numpy())
        cells[(g, s)] = (final, float(first.get((g, s), np.nan)))
    steps = sorted({g for g, _ in cells})
    levels = sorted({s for _, s in cells})
    moderate = [s for s in levels if s <= MODERATE_SPARSITY + 1e-12]
    extreme = levels[-1]
    if not moderate or extreme <= MODERATE_SPARSITY:
        return []

    def stats(draw):
        conv = {k: np.median(draw(v[0])) < 0.5 * v[1] for k, v in cells.items()}
        mod = [g for g in steps if all(conv[(g, s)] for s in moderate)]
        ext = [g for g in steps if conv[(g, extreme)]]
        width = np.log10(max(mod) / min(mod)) if mod else -np.inf
        shrink = (np.log10(max(mod)) if mod else -np.inf) - (np.log10(max(ext)) if ext else np.log10(steps[0]) - 1)
        return width, shrink, mod, ext

    width, shrink, mod, ext = stats(lambda a: a)
    boots = [stats(lambda a: a[rng.integers(0, len(a), len(a))])[:2] for _ in range(BOOT)]
    boots = np.array(boots, dtype=float)
    rows = []
    lo, hi = _ci(np.clip(boots[:, 0], -10, 10))
    rows.append(_row(dataset, "alg2_wide_steps", name, "—", float(width), lo, hi,
                     "holds" if lo >= 1 else ("does not hold" if hi < 1 else "inconclusive"),
                     f"log10(γ_max/γ_min) of steps converging at every level ≤ {MODERATE_SPARSITY:.0%}",
                     f"converging steps at moderate sparsity: {', '.join(f'{g:g}' for g in mod) or 'none'}; "
                     f"at {extreme:.0%}: {', '.join(f'{g:g}' for g in ext) or 'none'}"))
    lo, hi = _ci(np.clip(boots[:, 1], -10, 10))
    rows.append(_row(dataset, "alg2_smaller_steps", name, "—", float(shrink), lo, hi,
                     "holds" if lo > 0 else ("does not hold" if hi <= 0 else "inconclusive"),
                     f"log10 γ_max(≤ {MODERATE_SPARSITY:.0%}) − log10 γ_max({extreme:.0%}) "
                     f"(no converging step: one grid decade below the smallest)",
                     f"grid {', '.join(f'{g:g}' for g in steps)}; levels {', '.join(f'{s:.0%}' for s in levels)}"))
    return rows


def evaluate_claims(folders):
    """Claims from results folders.

    Parameters
    ----------
    folders : dict dataset -> dict experiment name -> Path of its results folder

    Returns
    -------
    pandas.DataFrame with :data:`CLAIM_COLUMNS` (one row per dataset, claim, experiment, MAST model)
    """
    import pandas as pd

    from ..io.outputs import read_results_csv

    rows = []
    for dataset, exps in folders.items():
        rng = np.random.default_rng(BOOT_SEED)
        for name, folder in exps.items():
            folder = Path(folder)
            kind = CLAIM_EXPERIMENTS.get(name, "")
            meta_path = folder / "metadata.json"
            meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
            if "a" in kind and (folder / "pruning.csv").is_file():
                rows += _pruning_claims(dataset, name, read_results_csv(folder / "pruning.csv"), rng)
            elif kind == "c" and (folder / "delta.csv").is_file():
                rows += _delta_claim(dataset, name, read_results_csv(folder / "delta.csv"), rng)
            elif kind == "d" and (folder / "trajectories.csv").is_file():
                rows += _alg1_claims(dataset, name, read_results_csv(folder / "trajectories.csv"), meta, rng)
            elif kind == "e" and (folder / "trajectories.csv").is_file():
                rows += _alg2_claims(dataset, name, read_results_csv(folder / "trajectories.csv"), meta, rng)
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def claims_table_markdown(table):
    """The claims as a Markdown table (for plots/README.md)."""
    lines = ["| dataset | claim | experiment | MAST model | effect [95% CI] | verdict |",
             "|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        lines.append(f"| {r.dataset} | {CLAIM_TEXT.get(r.claim, r.claim)} | `{r.experiment}` | {r.mast_solution} "
                     f"| {r.effect:.3g} [{r.ci_low:.3g}, {r.ci_high:.3g}] | **{r.verdict}** |")
    return "\n".join(lines)
