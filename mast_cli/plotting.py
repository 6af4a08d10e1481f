"""Figures drawn from results folders alone (CSV + metadata.json; nothing is recomputed).

Each figure is written as PDF and PNG together with a CSV of the plotted numbers.
Matplotlib runs on the Agg backend (no display needed).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .io.errors import MastError

__all__ = ["plot_results", "plot_convergence", "PLOTTERS", "save_figure"]

METRIC_LABELS = {
    "erm_loss": ("f(x^t) − f^inf", True),
    "mast_loss": ("f_D(x^t) − f_D^inf (fixed evaluation sketches)", True),
    "grad_norm_sq": ("‖∇f(x^t)‖²", True),
    "dist_sq": ("‖x^t − x*_ERM‖²", True),
    "dist_sq_mast": ("‖x^t − x*_pool‖²", True),
    "test_accuracy": ("test accuracy", False),
}

#: results-file name -> plotting function(folder, metric, out, name, x=...) -> list of paths
PLOTTERS = {}

#: short x labels for panels side by side
X_SHORT = {"iteration": "iteration t", "epochs": "epochs", "coords": "Σ_t nnz(S_t)", "time": "step time (s)"}

#: x axes of the convergence figures: column of trajectories.csv -> axis label (issue 17)
X_AXES = {
    "iteration": "iteration t",
    "epochs": "passes over the data (epochs; workers counted)",
    "coords": "coordinates of sparse models computed, Σ_t nnz(S_t)",
    "time": "wall time of the steps (s; metric evaluation excluded)",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out, stem, table=None):
    """Write ``stem``.pdf/.png (and ``stem``.csv of the plotted numbers) into ``out``."""
    from .io.outputs import CSV_FLOAT_FORMAT
    from .io.store import atomic_write_text, public_mode

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MastError(f"cannot create plot folder '{out}': {exc.strerror or exc}") from None
    paths = []
    import os
    import tempfile

    for ext in ("pdf", "png"):
        path = out / f"{stem}.{ext}"
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp.{ext}", dir=out)
        os.close(fd)
        try:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight",
                        metadata={"CreationDate": None} if ext == "pdf" else None)
            public_mode(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        paths.append(path)
    if table is not None:
        path = out / f"{stem}.csv"
        atomic_write_text(path, table.to_csv(index=False, float_format=CSV_FLOAT_FORMAT))
        paths.append(path)
    _pyplot().close(fig)
    return paths


def _read_meta(folder):
    meta_path = Path(folder) / "metadata.json"
    if meta_path.is_file():
        return json.loads(meta_path.read_text())
    return {}


def _optimum(metric, meta):
    if metric in ("erm_loss", "mast_loss"):
        return meta.get("f_inf", 0.0)
    return 0.0


def _curve_label(key, cols):
    parts = []
    for c, v in zip(cols, key):
        if c == "sparsity":
            parts.append(f"sparsity {v:.0%}")
        elif c == "step_size":
            parts.append(f"γ={v:.3g}")
        elif c == "batch_size" and v >= 0:
            parts.append(f"τ={int(v)}")
        elif c == "workers":
            parts.append(f"M={int(v)}")
        elif c == "ref_batch":
            parts.append(f"b={int(v)}")
        elif c == "sketch":
            parts.append(str(v))
    return ", ".join(parts)


def plot_convergence(folder, metric="erm_loss", out="plots", name=None, x="iteration"):
    """Metric (minus its optimum) vs iteration (or a cost): median over seeds and a 10–90% band.

    One colour per sparsity level (and step size / batch size where swept); a log
    y-axis for losses and distances.  Writes PDF, PNG and the plotted numbers (CSV).
    With a step-size × sparsity grid it also draws the final-value heatmap.

    ``x`` is a column of :data:`X_AXES` (``iteration``, ``epochs``, ``coords``, ``time``)
    or a list of them: the first gives the figure ``name``, each further one a figure
    ``name-<x>`` (e.g. a coordinates figure beside the iteration one); without ``name``
    a cost axis adds ``-<x>`` to the default name.  A cost axis plots
    each curve against the median cost over seeds at each logged iteration.
    """
    import warnings

    xs = [x] if isinstance(x, str) else list(x)
    for ax_name in xs:
        if ax_name not in X_AXES:
            raise MastError(f"--x '{ax_name}' is not an x axis; choose one of {', '.join(X_AXES)}")
    # huge but finite losses of nearly diverged runs overflow matplotlib's log-axis maths
    with np.errstate(over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        paths = []
        for i, ax_name in enumerate(xs):
            stem = name if i == 0 or name is None else f"{name}-{ax_name}"
            paths += _plot_convergence(folder, metric, out, stem, ax_name, heatmap=i == 0,
                                       suffix="" if ax_name == "iteration" else f"-{ax_name}")
        return paths


def _metric_frame(folder, metric, x):
    """Read ``trajectories.csv`` of ``folder``: the frame with ``value`` = metric − optimum.

    Returns ``(df, meta, label, logy, opt)``; raises MastError when the metric or the x column
    is missing.
    """
    import pandas as pd

    df = pd.read_csv(folder / "trajectories.csv")
    if "sparsity" in df.columns:   # 1 − 0.7 and a variance-matched 0.3 are one level
        df["sparsity"] = df["sparsity"].round(10)
    if metric not in df.columns or df[metric].isna().all():
        have = [c for c in METRIC_LABELS if c in df.columns and not df[c].isna().all()]
        raise MastError(f"metric '{metric}' is not in {folder}/trajectories.csv; available: {', '.join(have)}")
    if x not in df.columns:
        raise MastError(f"--x {x}: {folder}/trajectories.csv has no '{x}' column (written by a mast "
                        f"that did not record it; rerun the experiment)")
    meta = _read_meta(folder)
    label, logy = METRIC_LABELS.get(metric, (metric, True))
    opt = _optimum(metric, meta)
    by_level = meta.get("mast_loss_inf") if metric == "mast_loss" else None
    if by_level:
        from .io.outputs import mast_loss_key

        ref = [by_level.get(mast_loss_key(k, s), np.nan) for k, s in zip(df.sketch, df.sparsity)]
        df = df.assign(value=df[metric] - np.array(ref))
        opt = float(np.nanmean(list(by_level.values())))
    else:
        df = df.assign(value=df[metric] - opt)
        if metric == "mast_loss":
            label = "MAST loss estimate − f^inf (its own minimum is not known for this run)"
    return df, meta, label, logy, opt


def _curve_stats(df, x):
    """Median and 10–90% quantiles of ``value`` per curve and iteration (plus the x cost).

    Returns ``(group_cols, stats, logx)``: the swept columns, the quantile table and whether the
    cost axis is drawn on a log scale (total costs differing by more than 20×).
    """
    group_cols = [c for c in ("sketch", "sparsity", "step_size", "batch_size", "workers", "ref_batch")
                  if c in df.columns and df[c].nunique() > 1]
    if not group_cols:
        group_cols = ["sketch"]
    grouped = df.groupby(group_cols + ["iteration"])
    stats = (grouped["value"]
             .quantile([0.1, 0.5, 0.9]).unstack().reset_index()
             .rename(columns={0.1: "q10", 0.5: "median", 0.9: "q90"}))
    logx = False
    if x != "iteration":            # the cost at each logged iteration: median over seeds
        stats[x] = grouped[x].median().to_numpy()
        # curves whose total costs differ by orders of magnitude (Fig. 5: τ = 1 vs τ = n)
        # share a log x axis, which drops the cost-0 start point
        finals = stats.groupby(group_cols)[x].max()
        logx = bool(finals.min() > 0 and finals.max() / finals.min() > 20)
        if logx:
            stats = stats[stats[x] > 0]
    return group_cols, stats, logx


def _plot_convergence(folder, metric, out, name, x="iteration", heatmap=True, suffix=""):
    folder = Path(folder)
    df, meta, label, logy, opt = _metric_frame(folder, metric, x)
    group_cols, stats, logx = _curve_stats(df, x)
    plt = _pyplot()
    # a sparsity sweep crossed with another swept parameter (Fig. 2: step sizes) gets one
    # panel per sparsity level, so that each panel holds a readable handful of curves
    facet = "sparsity" if "sparsity" in group_cols and len(group_cols) > 1 else None
    curve_cols = [c for c in group_cols if c != facet]
    panels = sorted(stats[facet].unique()) if facet else [None]
    ncols = min(len(panels), 5)
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.4 if ncols == 1 else 3.0 * ncols + 0.6,
                                                    4.2 if nrows == 1 else 2.9 * nrows + 0.9),
                             sharex=True, sharey=True, squeeze=False)
    keys = sorted(stats[curve_cols].drop_duplicates().itertuples(index=False, name=None))
    cmap = plt.get_cmap("viridis", max(len(keys), 2))
    colours = {k: cmap(i / max(len(keys) - 1, 1)) for i, k in enumerate(keys)}
    floor = 1e-16 * max(1.0, abs(opt))
    for ax, level in zip(axes.flat, panels):
        sub = stats if facet is None else stats[stats[facet] == level]
        groups = {(k if isinstance(k, tuple) else (k,)): g for k, g in sub.groupby(curve_cols, sort=True)}
        for key in [k for k in keys if k in groups]:        # legend order: by value (steps by γ)
            g = groups[key]
            y, lo, hi = g["median"].to_numpy(), g["q10"].to_numpy(), g["q90"].to_numpy()
            if logy:   # capped at 1e100: a diverging run's last logged values can reach 1e300,
                # where matplotlib's log-axis ticks overflow (the run is marked diverged anyway)
                y, lo, hi = (np.clip(a, floor, 1e100) for a in (y, lo, hi))
            ax.plot(g[x], y, color=colours[key], label=_curve_label(key, curve_cols))
            ax.fill_between(g[x], lo, hi, color=colours[key], alpha=0.2, linewidth=0)
        if logy:
            ax.set_yscale("log")
        if logx:
            ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)
        if facet:
            ax.set_title(_curve_label((level,), [facet]), fontsize=9)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[-1]:             # panels side by side get the short label
        ax.set_xlabel(X_AXES[x] if ncols == 1 else X_SHORT[x])
    for ax in axes[:, 0]:
        ax.set_ylabel(label if nrows == 1 else label.split(" (")[0])
    cfg = meta.get("config", {})
    title = f"{cfg.get('algorithm', '')} on {meta.get('dataset', {}).get('name', folder.name)}"
    if facet:
        fig.suptitle(title + " — median over seeds, 10–90% band", fontsize=10)
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=colours[k]) for k in keys]
        labels = [_curve_label(k, curve_cols) for k in keys]
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8,
                   frameon=False)
        fig.tight_layout(rect=(0, 0.05 + 0.03 * ((len(labels) - 1) // 6), 1, 1))
    else:
        axes[0, 0].set_title(title + " — median over seeds, 10–90% band", fontsize=9)
        axes[0, 0].legend(fontsize=7, loc="best")
    stem = name or f"{folder.name}-{metric}{suffix}"
    paths = save_figure(fig, out, stem, stats)
    if heatmap and df.step_label.nunique() > 1 and df.sparsity.nunique() > 1:
        paths += plot_step_grid(df, metric, opt, label, out, f"{stem}-heatmap", title)
    return paths


def plot_step_grid(df, metric, opt, label, out, stem, title=""):
    """Final metric per (step size × sparsity) cell: median over seeds; diverged cells marked.

    The step-size/sparsity robustness study of Figs. 2 and 6.  A cell is *diverged*
    when any of its seeds diverged (status column); it is drawn hatched with a ×.
    """
    import pandas as pd

    plt = _pyplot()
    last = df.sort_values("iteration").groupby(["step_label", "sparsity", "seed"]).tail(1)
    cells = (last.groupby(["step_label", "sparsity"])
             .agg(value=("value", "median"), diverged=("status", lambda s: bool((s == "diverged").any())),
                  step_size=("step_size", "median"))
             .reset_index())
    steps = sorted(cells.step_label.unique(), key=lambda t: cells[cells.step_label == t].step_size.iloc[0])
    levels = sorted(cells.sparsity.unique())
    grid = np.full((len(steps), len(levels)), np.nan)
    div = np.zeros_like(grid, dtype=bool)
    for _, c in cells.iterrows():
        i, j = steps.index(c.step_label), levels.index(c.sparsity)
        grid[i, j] = c.value
        div[i, j] = c.diverged or not np.isfinite(c.value)
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(levels), 1.0 + 0.55 * len(steps)))
    shown = np.where(div, np.nan, grid)
    logv = np.log10(np.maximum(shown, 1e-16)) if np.nanmin(np.abs(shown)) >= 0 else shown
    im = ax.imshow(logv, aspect="auto", cmap="viridis_r", origin="lower")
    for i in range(len(steps)):
        for j in range(len(levels)):
            if div[i, j]:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="xx",
                                           edgecolor="red", lw=0))
                ax.text(j, i, "diverged", ha="center", va="center", fontsize=6, color="red")
            elif np.isfinite(grid[i, j]):
                light = im.norm(logv[i, j]) < 0.4   # yellow end of viridis_r
                ax.text(j, i, f"{grid[i, j]:.1e}", ha="center", va="center", fontsize=6,
                        color="black" if light else "white")
    ax.set_xticks(range(len(levels)), [f"{s:.0%}" for s in levels])
    ax.set_yticks(range(len(steps)), steps)
    ax.set_xlabel("sparsity")
    ax.set_ylabel("step size γ")
    fig.colorbar(im, ax=ax, label=f"log10 final {label}")
    ax.set_title(f"{title}: final value (median over seeds)", fontsize=8)
    table = cells.assign(metric=metric, optimum=opt)
    return save_figure(fig, out, stem, pd.DataFrame(table))


PLOTTERS["trajectories.csv"] = plot_convergence


#: panels of the pruning figure: MAST selection -> title (those present in pruning.csv are drawn)
PRUNE_PANELS = {
    "exact": "MAST: x*_D (minimizer of f_D on a sketch pool)",
    "last": "MAST: DSGD last iterate",
    "best_masked_val": "MAST: DSGD iterate with best masked validation accuracy",
    "best_val": "MAST: DSGD iterate with best (unmasked) validation accuracy",
}


def plot_pruning(folder, metric=None, out="plots", name=None, x=None):
    """Figs. 1/3/4: boxplots of the test accuracy of randomly sparsified solutions.

    Per sparsity level, ERM (exact solution) and MAST side by side; one panel per MAST
    model of the results (:data:`PRUNE_PANELS`: x*_D, the DSGD last iterate, the DSGD
    iterate selected on masked validation accuracy).  Above each MAST box its optimality
    gap f_D(x̂) − f_D^inf (``fD_gap``), red when above the tolerance of the run (a model
    that does not solve the MAST problem).  The dashed line is the unsparsified ERM
    accuracy.  The plotted numbers (quartiles, whiskers, medians, gaps) are written as CSV.
    """
    import pandas as pd

    folder = Path(folder)
    df = pd.read_csv(folder / "pruning.csv")
    meta = _read_meta(folder)
    cfg = meta.get("config", {})
    tol = float(cfg.get("gap_tol", 1e-3))
    plt = _pyplot()
    levels = sorted(df.sparsity.unique())
    erm = df[df.formulation == "erm"]
    sels = [k for k in PRUNE_PANELS if ((df.formulation == "mast") & (df.selection == k)).any()]
    fig, axes = plt.subplots(1, len(sels), figsize=(5.6 * len(sels), 4.6), sharey=True, squeeze=False)
    axes = axes[0]
    rows = []
    for ax, sel in zip(axes, sels):
        mast = df[(df.formulation == "mast") & (df.selection == sel)]
        data_e = [erm[erm.sparsity == s].test_accuracy.to_numpy() for s in levels]
        data_m = [mast[mast.sparsity == s].test_accuracy.to_numpy() for s in levels]
        series = [("ERM", data_e, "#d95f02", erm), ("MAST", data_m, "#1b9e77", mast)]
        drop = df[(df.formulation == "dropout-scaled") & (df.selection == sel)]
        if len(drop):
            series.append(("Dropout", [drop[drop.sparsity == s].test_accuracy.to_numpy() for s in levels],
                           "#7570b3", drop))
        width = 3.0 if len(series) == 2 else 4.0
        pos_e = np.arange(len(levels)) * width
        for k, (label, data, colour, part) in enumerate(series):
            pos = pos_e + k
            keep = [i for i, dd in enumerate(data) if len(dd)]
            data, pos = [data[i] for i in keep], pos[keep]
            bp = ax.boxplot(data, positions=pos, widths=0.8, patch_artist=True, showfliers=True,
                            flierprops={"markersize": 2})
            for patch in bp["boxes"]:
                patch.set_facecolor(colour)
                patch.set_alpha(0.6)
            ax.plot([], [], color=colour, lw=6, alpha=0.6, label=label)
            for s, vals, ps in zip([levels[i] for i in keep], data, pos):
                q1, med, q3 = np.percentile(vals, [25, 50, 75])
                gap = float(part[part.sparsity == s].fD_gap.iloc[0]) if "fD_gap" in part.columns else np.nan
                rows.append({"panel": sel, "formulation": label.lower(), "sparsity": s, "q1": q1,
                             "median": med, "q3": q3, "min": vals.min(), "max": vals.max(),
                             "mean": vals.mean(), "masks": len(vals), "fD_gap": gap})
                if label == "MAST" and np.isfinite(gap):
                    ax.annotate(f"{gap:.0e}", (ps, 1.0), xycoords=("data", "axes fraction"),
                                xytext=(0, -2), textcoords="offset points", ha="center", va="top",
                                fontsize=5.5, rotation=90, color="red" if gap > tol else "#1b9e77")
        dense = erm.dense_test_accuracy.iloc[0] if len(erm) else np.nan
        ax.axhline(dense, ls="--", color="grey", lw=1, label="ERM, no pruning")
        ax.set_xticks(pos_e + 0.5 * (len(series) - 1), [f"{s:.0%}" for s in levels])
        ax.set_xlabel("sparsity (share of zeroed weights)")
        worst = mast.groupby("sparsity").fD_gap.first().max() if "fD_gap" in mast.columns else np.nan
        state = "" if not np.isfinite(worst) else \
            f"\nmax f_D gap {worst:.1e} ({'above' if worst > tol else 'below'} tol {tol:g})"
        ax.set_title(PRUNE_PANELS[sel] + state, fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        ax.margins(y=0.12)
    axes[0].set_ylabel("test accuracy of the sparsified model")
    # the legend on the panel with the most series (the dropout baseline has no x*_D panel)
    max(axes, key=lambda a: len(a.get_legend_handles_labels()[0])).legend(fontsize=7, loc="lower left")
    fig.suptitle(f"Pruning robustness, {cfg.get('sketch', '')} masks on "
                 f"{meta.get('dataset', {}).get('name', folder.name)} "
                 f"({cfg.get('masks', '?')} masks per level, T = {cfg.get('iters', '?')}; "
                 f"numbers above MAST boxes: f_D(x̂) − f_D^inf, red above tol)", fontsize=9)
    fig.tight_layout()
    stem = name or f"{folder.name}-pruning"
    return save_figure(fig, out, stem, pd.DataFrame(rows))


PLOTTERS["pruning.csv"] = plot_pruning


def plot_delta(folder, metric=None, out="plots", name=None, x=None):
    """Δ(sparsity) = f_D^inf − f^inf with ±2 standard errors and Theorem 1's upper bound."""
    import pandas as pd

    folder = Path(folder)
    df = pd.read_csv(folder / "delta.csv").sort_values("sparsity")
    if "shift" in df.columns and df["shift"].nunique() > 1:
        return plot_shift_study(folder, df, out, name)
    meta = _read_meta(folder)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for sk, g in df.groupby("sketch"):
        ax.errorbar(g.sparsity, g.delta, yerr=2 * g.delta_se, marker="o", capsize=3,
                    label=f"measured Δ, {sk} (pool of {int(g.pool_size.iloc[0])})")
        if (g.thm1_upper > 0).any():
            ax.plot(g.sparsity, g.thm1_upper, ls="--", label=f"Theorem 1 bound (L_f/2)(L_D−1)‖x*−v‖², {sk}")
    ax.set_yscale("log")
    ax.set_xlabel("sparsity (share of zeroed weights)")
    ax.set_ylabel("Δ = f_D^inf − f^inf")
    ds = meta.get("config", {}).get("dataset", folder.name)
    ax.set_title(f"Sparsification gap on {ds} (error bars: ±2 s.e.)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, out, name or f"{folder.name}-delta", df)


def plot_shift_study(folder, df, out="plots", name=None):
    """Pre-trained shifts v ≠ 0: measured Δ against Theorem 1's bound (L_f/2)(L_D − 1)‖x* − v‖²,
    and the median test accuracy of sparsified ERM / MAST solutions, against ‖x* − v‖²."""
    plt = _pyplot()
    has_acc = "mast_acc_median" in df.columns
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(11 if has_acc else 6.4, 4.2))
    axes = np.atleast_1d(axes)
    ax = axes[0]
    cmap = plt.get_cmap("viridis", max(df.sparsity.nunique(), 2))
    for i, (s, g) in enumerate(df.groupby("sparsity")):
        g = g.sort_values("dist_sq_v_xstar")
        c = cmap(i / max(df.sparsity.nunique() - 1, 1))
        x = g.dist_sq_v_xstar
        ax.errorbar(x, np.maximum(g.delta, 1e-16), yerr=2 * g.delta_se, marker="o", color=c, capsize=2,
                    label=f"Δ measured, sparsity {s:.0%}")
        ax.plot(x, np.maximum(g.thm1_upper, 1e-16), ls="--", color=c, lw=1)
    ax.set_xscale("symlog", linthresh=1e-2)
    ax.set_yscale("log")
    ax.set_xlabel("‖x* − v‖² (shift's distance to the ERM solution; symlog)")
    ax.set_ylabel("Δ = f_D^inf − f^inf   (dashed: Theorem 1 bound)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    if has_acc:
        ax = axes[1]
        for i, (s, g) in enumerate(df.groupby("sparsity")):
            g = g.sort_values("dist_sq_v_xstar")
            c = cmap(i / max(df.sparsity.nunique() - 1, 1))
            x = g.dist_sq_v_xstar
            ax.plot(x, g.mast_acc_median, marker="o", color=c, label=f"MAST x*_D, {s:.0%}")
            ax.plot(x, g.erm_acc_median, marker="s", ls=":", color=c, label=f"ERM x*, {s:.0%}")
        ax.set_xscale("symlog", linthresh=1e-2)
        ax.set_xlabel("‖x* − v‖² (symlog)")
        ax.set_ylabel("median test accuracy of v + S(x̂ − v)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
    for _, r in df.drop_duplicates("shift").iterrows():
        axes[0].annotate(str(r["shift"]), (r.dist_sq_v_xstar, max(r.delta, 1e-16)),
                         fontsize=6, alpha=0.7)
    ds = _read_meta(folder).get("config", {}).get("dataset", folder.name)
    fig.suptitle(f"Pre-trained shift v ≠ 0 on {ds}", fontsize=10)
    return save_figure(fig, out, name or f"{folder.name}-shift", df)


PLOTTERS["delta.csv"] = plot_delta


def plot_results(folders, metric="erm_loss", out="plots", name=None, x="iteration"):
    """Recognize each results folder by its CSV and draw its figure(s).

    ``x`` (convergence figures only): ``iteration``, ``epochs``, ``coords`` or ``time``.

    Returns the list of written paths.
    """
    if name is not None and (not str(name).strip() or Path(str(name)).name != str(name)
                             or str(name).startswith(".")):
        raise MastError(f"--name '{name}' must be a plain file name (no folders)")
    written = []
    plan = []
    for folder in folders:          # every folder is checked before any figure is written
        folder = Path(folder)
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise MastError(f"results folder '{folder}' {what}")
        found = [fname for fname in PLOTTERS if (folder / fname).is_file()]
        if not found:
            raise MastError(f"'{folder}' has no results file ({', '.join(PLOTTERS)})")
        plan.append((folder, found))
    for folder, found in plan:
        for fname in found:
            try:
                written += PLOTTERS[fname](folder, metric=metric, out=out, name=name, x=x)
            except MastError:
                raise
            except (ValueError, KeyError, AttributeError, UnicodeDecodeError, IndexError) as exc:
                # a corrupt or foreign CSV / metadata.json (pandas' ParserError and json's
                # JSONDecodeError are ValueErrors)
                raise MastError(f"cannot plot '{folder / fname}': it is not a mast results file "
                                f"({type(exc).__name__}: {' '.join(str(exc).split())[:120]})") from None
    return written
