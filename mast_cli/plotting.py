"""Figures drawn from results folders alone (CSV + metadata.json; nothing is recomputed).

Each figure is written as PDF and PNG together with a CSV of the plotted numbers.  The PNG
carries what the figure shows as text metadata (``mast-axes``: number of data axes,
``mast-legend``: legend labels, ``mast-title``), so tests can check a figure without image
processing.  Matplotlib runs on the Agg backend (no display needed).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .io.errors import MastError

__all__ = ["plot_results", "plot_convergence", "PLOTTERS", "save_figure", "wrap_label", "figure_info"]

METRIC_LABELS = {
    "erm_loss": (r"$f(x^t) - f^{\inf}$", True),
    "mast_loss": (r"$f_{\mathcal{D}}(x^t) - f_{\mathcal{D}}^{\inf}$ (on fixed evaluation sketches)", True),
    "grad_norm_sq": (r"$\|\nabla f(x^t)\|^2$", True),
    "dist_sq": (r"$\|x^t - x^\star_{\mathrm{ERM}}\|^2$", True),
    "dist_sq_mast": (r"$\|x^t - x^\star_{\mathrm{pool}}\|^2$", True),
    "test_accuracy": ("test accuracy", False),
}

#: results-file name -> plotting function(folder, metric, out, name, x=...) -> list of paths
PLOTTERS = {}

#: short x labels for panels side by side
X_SHORT = {"iteration": "iteration $t$", "epochs": "epochs", "coords": r"$\Sigma_t\,\mathrm{nnz}(S_t)$",
           "time": "step time (s)"}

#: x axes of the convergence figures: column of trajectories.csv -> axis label (issue 17)
X_AXES = {
    "iteration": "iteration $t$",
    "epochs": "passes over the data (epochs; workers counted)",
    "coords": r"coordinates of sparse models computed, $\Sigma_t\,\mathrm{nnz}(S_t)$",
    "time": "wall time of the steps (s; metric evaluation excluded)",
}

#: algorithm column -> how figure titles name it
ALGORITHM_NAMES = {"dsgd": "Algorithm 1 (I)", "dsgd-minibatch": "Algorithm 1 (II), minibatches",
                   "distributed": "Algorithm 2 (distributed)", "vr": "Algorithm 3 (variance reduced)"}

#: sketch family -> (mathtext symbol of its level parameter, integer-valued)
SKETCH_PARAMS = {"bernoulli": ("p", False), "dropout-unscaled": ("p", False), "rand-k": ("K", True),
                 "perm-k": ("M", True), "gaussian": (r"\sigma", False)}

#: columns that can be swept in a run, in legend order (the step by its rule, not its value:
#: a theory step differs per sketch level without being a second swept parameter)
SWEPT = ("sketch", "sparsity", "step_label", "batch_size", "workers", "ref_batch")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def wrap_label(text, width, at_paren=False):
    """``text`` broken at spaces into lines of at most ``width`` characters (a longer word keeps
    its own line), never inside a ``$…$`` mathtext span; with ``at_paren`` a too long text first
    breaks before its first parenthesis (axis labels: the quantity, then its qualification)."""
    head, sep, tail = str(text).partition(" (")
    if at_paren and sep and _shown_len(str(text)) > width:
        return wrap_label(head, width) + "\n" + wrap_label("(" + tail, width)
    words, inside = [], False
    for tok in str(text).split(" "):
        if inside:
            words[-1] += " " + tok
        else:
            words.append(tok)
        if tok.count("$") % 2:
            inside = not inside
    def greedy(limit):
        lines, cur = [], ""
        for w in words:
            if cur and _shown_len(cur) + 1 + _shown_len(w) > limit:
                lines.append(cur)
                cur = w
            else:
                cur = f"{cur} {w}" if cur else w
        return lines + [cur]

    lines = greedy(width)
    n = len(lines)
    for limit in range(-(-_shown_len(" ".join(words)) // n), width):    # balanced: no orphan word
        if len(greedy(limit)) == n:
            return "\n".join(greedy(limit))
    return "\n".join(lines)


def _shown_len(text):
    """Approximate printed width of ``text`` in characters (a mathtext command is one glyph)."""
    import re

    return len(re.sub(r"[${}^_]", "", re.sub(r"\\[a-zA-Z]+", "x", text)))


def figure_info(fig):
    """What a figure shows, as the PNG text metadata :func:`save_figure` writes.

    Returns
    -------
    dict of str -> str
        ``mast-axes`` (number of visible data axes; colour bars excluded), ``mast-legend`` (JSON
        list of legend labels, figure and axes legends), ``mast-title`` (the figure's title, else
        the first axes' title) and ``mast-ylabels`` (JSON list, one per data axes).
    """
    axes = [a for a in fig.axes if a.get_visible() and a.get_label() != "<colorbar>"]
    legends = list(fig.legends) + [a.get_legend() for a in axes if a.get_legend() is not None]
    labels = [t.get_text() for leg in legends for t in leg.get_texts()]
    title = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) is not None else (
        axes[0].get_title() if axes else "")
    return {"mast-axes": str(len(axes)), "mast-legend": json.dumps(labels, ensure_ascii=False),
            "mast-title": title, "mast-ylabels": json.dumps([a.get_ylabel() for a in axes], ensure_ascii=False)}


def save_figure(fig, out, stem, table=None):
    """Write ``stem``.pdf/.png (and ``stem``.csv of the plotted numbers) into ``out``.

    The PNG carries :func:`figure_info` as text metadata.
    """
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

    info = figure_info(fig)
    for ext in ("pdf", "png"):
        path = out / f"{stem}.{ext}"
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp.{ext}", dir=out)
        os.close(fd)
        try:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight",
                        metadata={"CreationDate": None} if ext == "pdf" else info)
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


def _step_text(label, gamma=None):
    """The rule of a step size: ``theory step γ = 0.52``, ``4× theory step γ = 2.1``, ``γ = 0.05``
    (without ``gamma``: the rule alone)."""
    label = str(label)
    g = "" if gamma is None else f" $\\gamma = {gamma:.3g}$"
    if label == "theory":
        return f"theory step{g}"
    if label.endswith("x"):
        return f"{label[:-1]}× theory step{g}"
    return f"$\\gamma = {float(label):.3g}$" if gamma is None else g.strip()


def _level_text(sketch, sparsity, param):
    """A sketch level by its rule: ``p = 0.9 (sparsity 10%)``, ``K = 62 (sparsity 50%)``."""
    sym, integer = SKETCH_PARAMS.get(str(sketch), (None, False))
    if sym is None or not np.isfinite(param):
        return f"sparsity {sparsity:.0%}"
    val = f"{int(round(param))}" if integer else f"{param:.3g}"
    return f"${sym} = {val}$ (sparsity {sparsity:.0%})"


def _curve_label(row, cols, n=None, gamma=True):
    """Legend text of one curve: the values of the swept columns ``cols``, each named by its rule
    (``gamma=False``: a step rule without its value, which differs between panels)."""
    parts = []
    for c in cols:
        v = row[c]
        if c == "sketch":
            parts.append(str(v))
        elif c == "sparsity":
            parts.append(_level_text(row["sketch"], v, row.get("param", np.nan)))
        elif c == "step_label":
            parts.append(_step_text(v, row["step_size"] if gamma else None))
        elif c == "batch_size" and v >= 0:
            parts.append(r"$\tau = n$" if n is not None and int(v) == int(n) else f"$\\tau = {int(v)}$")
        elif c == "workers":
            parts.append(f"$M = {int(v)}$")
        elif c == "ref_batch":
            parts.append(f"$b = {int(v)}$")
    return ", ".join(parts)


def plot_convergence(folder, metric="erm_loss", out="plots", name=None, x="iteration"):
    """Metric (minus its optimum) vs iteration (or a cost): median over seeds and a 10–90% band.

    A sweep of one parameter is one axes with one colour per value; a sparsity sweep crossed
    with another swept parameter gets one panel per sparsity level.  Legends name each value
    by its rule (``p = 0.9 (sparsity 10%)``, ``theory step γ = …``); the title carries the
    dataset, algorithm, sketch, λ and number of seeds.  A log y-axis for losses and distances.
    Writes PDF, PNG and the plotted numbers (CSV).  With a step-size × sparsity grid it also
    draws the final-value heatmap.

    ``x`` is a column of :data:`X_AXES` (``iteration``, ``epochs``, ``coords``, ``time``)
    or a list of them: the first gives the figure ``name``, each further one a figure
    ``name-<x>`` (e.g. a coordinates figure beside the iteration one); without ``name``
    a cost axis adds ``-<x>`` to the default name.  A cost axis plots
    each curve against the median cost over seeds at each logged iteration.

    Raises
    ------
    MastError
        Unknown x axis or metric, no trajectories, or every trajectory diverged.
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

    Returns ``(df, meta, label, logy, opt, note)``; ``note`` says why points were left out
    (accuracy at x⁰ = 0) or is empty.  Raises MastError when the file has no rows, the metric or
    the x column is missing, or every trajectory diverged.
    """
    import pandas as pd

    df = pd.read_csv(folder / "trajectories.csv")
    if df.empty:
        raise MastError(f"{folder}/trajectories.csv holds no trajectories: nothing to plot")
    if "sparsity" in df.columns:   # 1 − 0.7 and a variance-matched 0.3 are one level
        df["sparsity"] = df["sparsity"].round(10)
    if "step_label" in df.columns:
        df["step_label"] = df["step_label"].astype(str)
    if metric not in df.columns or df[metric].isna().all():
        have = [c for c in METRIC_LABELS if c in df.columns and not df[c].isna().all()]
        raise MastError(f"metric '{metric}' is not in {folder}/trajectories.csv; available: {', '.join(have)}")
    if x not in df.columns:
        raise MastError(f"--x {x}: {folder}/trajectories.csv has no '{x}' column (written by a mast "
                        f"that did not record it; rerun the experiment)")
    if "status" in df.columns and (df["status"] == "diverged").all():
        first = int(df["diverged_at"].min()) if "diverged_at" in df.columns else -1
        raise MastError(f"every trajectory in {folder} diverged (the first at t = {first}): nothing to "
                        "plot; rerun with a smaller --step")
    note = ""
    start = df[df.iteration == 0][metric]
    if metric == "test_accuracy" and len(start) and (start == 0).all() and (df.iteration > 0).any():
        # x⁰ = v = 0 gives every test point a zero margin, counted as an error
        df = df[df.iteration > 0]
        note = "accuracy from the first logged t > 0 (x⁰ = 0: every margin is 0)"
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
            label = r"MAST loss estimate $- f^{\inf}$ (its own minimum is not known for this run)"
    return df, meta, label, logy, opt, note


def _curve_stats(df, x):
    """Median and 10–90% quantiles of ``value`` per curve and iteration (plus the x cost).

    Returns ``(group_cols, stats, logx)``: the swept columns (:data:`SWEPT`), the quantile
    table (with each curve's sketch, sparsity, param, step rule and step size, and whether
    all its seeds diverged) and whether the cost axis is drawn on a log scale (total costs
    differing by more than 20×).
    """
    group_cols = [c for c in SWEPT if c in df.columns and df[c].nunique() > 1] or ["sketch"]
    grouped = df.groupby(group_cols + ["iteration"])
    stats = (grouped["value"]
             .quantile([0.1, 0.5, 0.9]).unstack().reset_index()
             .rename(columns={0.1: "q10", 0.5: "median", 0.9: "q90"}))
    per_curve = {c: (c, "first") for c in ("sketch", "sparsity", "param", "step_label", "step_size")
                 if c in df.columns and c not in group_cols}
    if "status" in df.columns:
        per_curve["diverged"] = ("status", lambda s: bool((s == "diverged").all()))
    if per_curve:
        info = df.groupby(group_cols).agg(**per_curve).reset_index()
        stats = stats.merge(info, on=group_cols, how="left")
    logx = False
    if x != "iteration":            # the cost at each logged iteration: median over seeds
        cost = grouped[x].median().rename(x).reset_index()
        stats = stats.merge(cost, on=group_cols + ["iteration"], how="left")
        # curves whose total costs differ by orders of magnitude (Fig. 5: τ = 1 vs τ = n)
        # share a log x axis, which drops the cost-0 start point
        finals = stats.groupby(group_cols)[x].max()
        logx = bool(finals.min() > 0 and finals.max() / finals.min() > 20)
        if logx:
            stats = stats[stats[x] > 0]
    return group_cols, stats, logx


def _title(meta, df, folder, extra=""):
    """Dataset, algorithm, sketch, λ and number of seeds of a run (one or two lines)."""
    cfg = meta.get("config", {})
    alg = str(df["algorithm"].iloc[0]) if "algorithm" in df.columns else cfg.get("algorithm", "")
    sketches = sorted(df["sketch"].astype(str).unique()) if "sketch" in df.columns else []
    ds = meta.get("dataset", {}).get("name", folder.name)
    lam = cfg.get("lam")
    seeds = int(df["seed"].nunique()) if "seed" in df.columns else 0
    parts = [f"{ALGORITHM_NAMES.get(alg, alg)} on {ds}",
             f"{' and '.join(sketches)} sketch{'es' if len(sketches) > 1 else ''}"]
    plist = cfg.get("p")
    if alg == "distributed" and isinstance(plist, list) and len(plist) > 1 and not cfg.get("sparsity"):
        parts[-1] += f" ($p_i$ = {', '.join(f'{v:g}' for v in plist)} per worker)"
    elif len(sketches) == 1 and "sparsity" in df.columns and df["sparsity"].nunique() == 1:
        parts[-1] += " " + _level_text(sketches[0], float(df["sparsity"].iloc[0]),
                                       float(df["param"].iloc[0]) if "param" in df.columns else np.nan)
    if alg == "distributed" and "workers" in df.columns and df["workers"].nunique() == 1:
        parts.append(f"$M = {int(df['workers'].iloc[0])}$ workers")
    if alg == "distributed" and cfg.get("split") not in (None, "random"):
        parts.append(f"{cfg['split']} rows")
    if lam is not None:
        parts.append(f"$\\lambda = {float(lam):g}$")
    parts.append(f"{seeds}\u00a0seed{'s' if seeds != 1 else ''}")   # never "3 / seeds"
    if extra:
        parts.append(extra)
    band = "median over seeds, shaded: 10–90% of seeds" if seeds > 1 else "one seed (no band)"
    return ", ".join(parts) + "\n" + band


def _step_info(stats, curve_cols, where):
    """Step text shared by the curves of ``where`` (a boolean mask of stats), or ''."""
    if "step_label" in curve_cols or "step_size" not in stats.columns:
        return ""
    sub = stats[where] if where is not None else stats
    if sub["step_size"].nunique() != 1:
        return ""
    return _step_text(sub["step_label"].iloc[0], float(sub["step_size"].iloc[0]))


def _plot_convergence(folder, metric, out, name, x="iteration", heatmap=True, suffix=""):
    folder = Path(folder)
    df, meta, label, logy, opt, note = _metric_frame(folder, metric, x)
    group_cols, stats, logx = _curve_stats(df, x)
    plt = _pyplot()
    # a sparsity sweep crossed with another swept parameter (Fig. 2: step sizes) gets one
    # panel per sparsity level, so that each panel holds a readable handful of curves
    facet = "sparsity" if "sparsity" in group_cols and len(group_cols) > 1 else None
    curve_cols = [c for c in group_cols if c != facet]
    panels = sorted(stats[facet].unique()) if facet else [None]
    ncols = min(len(panels), 5)
    nrows = -(-len(panels) // ncols)
    height = 4.4 if nrows == 1 else 2.9 * nrows + 1.1
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.4 if ncols == 1 else 3.0 * ncols + 0.6, height),
                             sharex=True, sharey=True, squeeze=False)
    n = meta.get("dataset", {}).get("n")
    shared_step = _step_info(stats, curve_cols, None)
    keys = _curve_order(stats, curve_cols)
    # a step rule whose γ differs between panels (theory step per level) is named without γ
    gamma = not facet or "step_label" not in curve_cols or stats.groupby("step_label")["step_size"].nunique().max() == 1
    cmap = plt.get_cmap("viridis")
    colours = {k: cmap(0.78 * i / max(len(keys) - 1, 1)) for i, k in enumerate(keys)}   # no pale yellow
    floor = 1e-16 * max(1.0, abs(opt))
    stats["label"] = ""
    for ax, level in zip(axes.flat, panels):
        in_panel = np.ones(len(stats), bool) if facet is None else (stats[facet] == level).to_numpy()
        sub = stats[in_panel]
        groups = {(k if isinstance(k, tuple) else (k,)): g for k, g in sub.groupby(curve_cols, sort=True)}
        for key in [k for k in keys if k in groups]:        # legend order: by value (steps by γ)
            g = groups[key]
            text = _curve_label(g.iloc[0], curve_cols, n, gamma)
            if not facet and not shared_step:
                text = ", ".join(t for t in (text, _step_info(g, curve_cols, None)) if t)
            dead = "diverged" in g.columns and bool(g["diverged"].all())
            if dead:
                text += " (diverged)"
            stats.loc[g.index, "label"] = text
            y, lo, hi = g["median"].to_numpy(), g["q10"].to_numpy(), g["q90"].to_numpy()
            if logy:   # capped at 1e100: a diverging run's last logged values can reach 1e300,
                # where matplotlib's log-axis ticks overflow (the run is marked diverged anyway)
                y, lo, hi = (np.clip(a, floor, 1e100) for a in (y, lo, hi))
            ax.plot(g[x], y, color=colours[key], lw=1.6, ls="--" if dead else "-", label=text)
            ax.fill_between(g[x], lo, hi, color=colours[key], alpha=0.25, linewidth=0)
        if logy:
            ax.set_yscale("log")
        elif len(stats):            # accuracy: the axis spans the medians (a band may be clipped)
            lo, hi = float(stats["median"].min()), float(max(stats["median"].max(), stats["q90"].max()))
            pad = 0.05 * max(hi - lo, 1e-3)
            ax.set_ylim(lo - pad, hi + pad)
        if logx:
            ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)
        if facet:
            lvl = sub.iloc[0]
            step = "" if shared_step else _step_info(stats, curve_cols, in_panel)
            if not gamma:       # the γ of each step rule in this panel
                rules = sub.drop_duplicates("step_label").sort_values("step_size")
                step = "; ".join(_step_text(r.step_label, r.step_size) for r in rules.itertuples())
            where = f"sparsity {level:.0%}" if "sketch" in curve_cols else _level_text(
                lvl["sketch"], level, lvl.get("param", np.nan))
            ax.set_title(wrap_label(", ".join(t for t in (where, step) if t), 40), fontsize=8)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[-1]:             # panels side by side get the short label
        ax.set_xlabel(X_AXES[x] if ncols == 1 else X_SHORT[x])
    for ax in axes[:, 0]:
        ax.set_ylabel(wrap_label(label, int(height * 9), at_paren=True))
    title = _title(meta, df, folder, shared_step) + (f"\n{note}" if note else "")
    _legend(fig, axes, facet, keys, colours, stats, curve_cols, title)
    stem = name or f"{folder.name}-{metric}{suffix}"
    paths = save_figure(fig, out, stem, stats)
    if heatmap and df.step_label.nunique() > 1 and df.sparsity.nunique() > 1:
        paths += plot_step_grid(df, metric, opt, label, out, f"{stem}-heatmap", title.split("\n")[0])
    return paths


def _curve_order(stats, curve_cols):
    """The curves' keys (tuples of ``curve_cols`` values) in legend order: by value, step rules
    by their step size."""
    rows = stats.drop_duplicates(curve_cols)

    def sort_key(row):
        return tuple(float(row["step_size"]) if c == "step_label" else row[c] for c in curve_cols)

    return [tuple(r[c] for c in curve_cols) for _, r in sorted(rows.iterrows(), key=lambda t: sort_key(t[1]))]


def _legend(fig, axes, facet, keys, colours, stats, curve_cols, title):
    """One legend per figure (under the panels when faceted), with the 10–90% band named."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    band = Patch(color="grey", alpha=0.25, label="10–90% of seeds")
    if facet:
        first, rest = title.split("\n", 1)
        fig.suptitle(wrap_label(first, 40 * axes.shape[1]) + "\n" + rest, fontsize=10)
        labels = {}
        for k in keys:
            g = stats[(stats[curve_cols].apply(tuple, axis=1) == k)]
            labels[k] = g["label"].iloc[0] if len(g) else _curve_label(g, curve_cols)
        handles = [Line2D([], [], color=colours[k], lw=1.6) for k in keys] + [band]
        texts = [labels[k] for k in keys] + [band.get_label()]
        ncol = min(len(texts), 4)
        fig.legend(handles, texts, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.06 + 0.04 * ((len(texts) - 1) // ncol), 1, 1))
    else:
        ax = axes[0, 0]
        first, rest = title.split("\n", 1)
        ax.set_title(wrap_label(first, 95) + "\n" + rest, fontsize=9)
        handles, texts = ax.get_legend_handles_labels()
        ax.legend(handles + [band], texts + [band.get_label()], fontsize=7, loc="best")
        fig.tight_layout()


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
    width, height = max(4.8, 1.6 + 0.9 * len(levels)), max(3.4, 1.4 + 0.55 * len(steps))
    fig, ax = plt.subplots(figsize=(width, height))
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
    ax.set_yticks(range(len(steps)), [f"{t[:-1]}× theory" if t.endswith("x") else t for t in steps])
    ax.set_xlabel("sparsity")
    ax.set_ylabel(r"step size $\gamma$")
    fig.colorbar(im, ax=ax, label=wrap_label(f"log10 of the final {label}", int(height * 9), at_paren=True))
    ax.set_title(wrap_label(f"{title}: final value (median over seeds)", int(width * 11)), fontsize=8)
    table = cells.assign(metric=metric, optimum=opt)
    return save_figure(fig, out, stem, pd.DataFrame(table))


PLOTTERS["trajectories.csv"] = plot_convergence


#: panels of the pruning figure: MAST selection -> title (those present in pruning.csv are drawn)
PRUNE_PANELS = {
    "exact": r"MAST: $x^\star_{\mathcal{D}}$ (minimizer of $f_{\mathcal{D}}$ on a sketch pool)",
    "last": "MAST: DSGD last iterate",
    "best_masked_val": "MAST: DSGD iterate with best masked validation accuracy",
    "best_val": "MAST: DSGD iterate with best (unmasked) validation accuracy",
}


#: formulation of pruning.csv -> (legend label, box colour); medians are drawn in black
PRUNE_SERIES = {"erm": ("ERM $x^\\star$", "#e6842a"), "mast": ("MAST", "#1b9e77"),
                "dropout-scaled": ("dropout, deployed scaled ($p\\,\\tilde{x}$)", "#7570b3"),
                "dropout-unscaled": ("dropout, deployed unscaled ($\\tilde{x}$)", "#e7298a")}


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
        series = [("erm", data_e, erm), ("mast", data_m, mast)]
        for form in ("dropout-scaled", "dropout-unscaled"):
            drop = df[(df.formulation == form) & (df.selection == sel)]
            if len(drop):
                series.append((form, [drop[drop.sparsity == s].test_accuracy.to_numpy() for s in levels], drop))
        width = len(series) + 1.0
        pos_e = np.arange(len(levels)) * width
        for k, (form, data, part) in enumerate(series):
            label, colour = PRUNE_SERIES[form]
            pos = pos_e + k
            keep = [i for i, dd in enumerate(data) if len(dd)]
            data, pos = [data[i] for i in keep], pos[keep]
            bp = ax.boxplot(data, positions=pos, widths=0.8, patch_artist=True, showfliers=True,
                            flierprops={"markersize": 2, "markeredgecolor": colour},
                            medianprops={"color": "black", "linewidth": 1.5})
            for patch in bp["boxes"]:
                patch.set_facecolor(colour)
                patch.set_alpha(0.55)
            ax.plot([], [], color=colour, lw=6, alpha=0.6, label=label)
            for s, vals, ps in zip([levels[i] for i in keep], data, pos):
                q1, med, q3 = np.percentile(vals, [25, 50, 75])
                gap = float(part[part.sparsity == s].fD_gap.iloc[0]) if "fD_gap" in part.columns else np.nan
                rows.append({"panel": sel, "formulation": form, "sparsity": s, "q1": q1,
                             "median": med, "q3": q3, "min": vals.min(), "max": vals.max(),
                             "mean": vals.mean(), "masks": len(vals), "fD_gap": gap})
                if form == "mast" and np.isfinite(gap):
                    ax.annotate(f"{gap:.0e}", (ps, 1.0), xycoords=("data", "axes fraction"),
                                xytext=(0, -2), textcoords="offset points", ha="center", va="top",
                                fontsize=5.5, rotation=90, color="red" if gap > tol else "#1b9e77")
        dense = erm.dense_test_accuracy.iloc[0] if len(erm) else np.nan
        ax.axhline(dense, ls="--", color="grey", lw=1, label="ERM, no pruning")
        ax.set_xticks(pos_e + 0.5 * (len(series) - 1), [f"{s:.0%}" for s in levels])
        ax.set_xlabel("sparsity (share of zeroed weights)")
        worst = mast.groupby("sparsity").fD_gap.first().max() if "fD_gap" in mast.columns else np.nan
        state = "" if not np.isfinite(worst) else \
            f"\nmax $f_{{\\mathcal{{D}}}}$ gap {worst:.1e} ({'above' if worst > tol else 'below'} tol {tol:g})"
        ax.set_title(PRUNE_PANELS[sel] + state, fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        ax.margins(y=0.12)
    axes[0].set_ylabel("test accuracy of the sparsified model")
    # the legend on the panel with the most series (the dropout baseline has no x*_D panel)
    max(axes, key=lambda a: len(a.get_legend_handles_labels()[0])).legend(fontsize=7, loc="lower left")
    lam = f", $\\lambda = {float(cfg['lam']):g}$" if cfg.get("lam") is not None else ""
    title = (f"Pruning robustness, {cfg.get('sketch', '')} masks on "
             f"{meta.get('dataset', {}).get('name', folder.name)}{lam} "
             f"({cfg.get('masks', '?')} masks per level, T = {cfg.get('iters', '?')}); numbers above MAST "
             r"boxes: $f_{\mathcal{D}}(\hat{x}) - f_{\mathcal{D}}^{\inf}$, red above tol")
    fig.suptitle(wrap_label(title, 58 * len(sels)), fontsize=9)
    fig.tight_layout()
    stem = name or f"{folder.name}-pruning"
    return save_figure(fig, out, stem, pd.DataFrame(rows))


PLOTTERS["pruning.csv"] = plot_pruning


DELTA = r"$\Delta = f_{\mathcal{D}}^{\inf} - f^{\inf}$"
THM1 = r"$\frac{L_f}{2}(L_{\mathcal{D}} - 1)\|x^\star - v\|^2$"


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
            ax.plot(g.sparsity, g.thm1_upper, ls="--", label=f"Theorem 1 bound {THM1}, {sk}")
    ax.set_yscale("log")
    ax.set_xlabel("sparsity (share of zeroed weights)")
    ax.set_ylabel(DELTA)
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
    cmap = plt.get_cmap("viridis")
    for i, (s, g) in enumerate(df.groupby("sparsity")):
        g = g.sort_values("dist_sq_v_xstar")
        c = cmap(0.8 * i / max(df.sparsity.nunique() - 1, 1))
        x = g.dist_sq_v_xstar
        ax.errorbar(x, np.maximum(g.delta, 1e-16), yerr=2 * g.delta_se, marker="o", color=c, capsize=2,
                    label=f"Δ measured, sparsity {s:.0%}")
        ax.plot(x, np.maximum(g.thm1_upper, 1e-16), ls="--", color=c, lw=1)
    ax.set_xscale("symlog", linthresh=1e-2)
    ax.set_yscale("log")
    ax.set_xlabel(r"$\|x^\star - v\|^2$ (the shift's distance to the ERM solution; symlog)")
    ax.set_ylabel(DELTA + "\n(dashed: Theorem 1 bound)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    if has_acc:
        ax = axes[1]
        for i, (s, g) in enumerate(df.groupby("sparsity")):
            g = g.sort_values("dist_sq_v_xstar")
            c = cmap(0.8 * i / max(df.sparsity.nunique() - 1, 1))
            x = g.dist_sq_v_xstar
            ax.plot(x, g.mast_acc_median, marker="o", color=c, label=f"MAST $x^\\star_{{\\mathcal{{D}}}}$, {s:.0%}")
            ax.plot(x, g.erm_acc_median, marker="s", ls=":", color=c, label=f"ERM $x^\\star$, {s:.0%}")
        ax.set_xscale("symlog", linthresh=1e-2)
        ax.set_xlabel(r"$\|x^\star - v\|^2$ (symlog)")
        ax.set_ylabel(r"median test accuracy of $v + S(\hat{x} - v)$")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
    # each shift named under its lowest point, neighbours staggered so that close ones stay legible
    lowest = df.loc[df.groupby("shift").delta.idxmin()].sort_values("dist_sq_v_xstar")
    for i, (_, r) in enumerate(lowest.iterrows()):
        axes[0].annotate(str(r["shift"]), (r.dist_sq_v_xstar, max(r.delta, 1e-16)), xytext=(0, -9 - 8 * (i % 3)),
                         textcoords="offset points", ha="center", va="top", fontsize=6, alpha=0.8)
    cfg = _read_meta(folder).get("config", {})
    lam = f", $\\lambda = {float(cfg['lam']):g}$" if cfg.get("lam") is not None else ""
    fig.suptitle(f"Pre-trained shift $v \\neq 0$ on {cfg.get('dataset', folder.name)}: "
                 f"{cfg.get('sketch', '')} sketches{lam}", fontsize=10)
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
