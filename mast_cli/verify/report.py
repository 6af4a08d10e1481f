"""The report of a battery: the printed table, verify.csv and verify.json."""

from __future__ import annotations

import math

from .result import EXACT_RTOL, MIN_POWER, Z99, _num

__all__ = ["CSV_COLUMNS", "format_table", "result_json", "write_outputs"]

CSV_COLUMNS = ["dataset", "objective", "lam", "sketch", "sparsity", "check", "statement", "recon",
               "kind", "observed", "se", "samples", "bound", "null", "power", "slack", "verdict", "t", "notes"]


def _fmt(x, digits=3):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "inf" if (x is not None and x > 0) else ("-inf" if x is not None and x < 0 else "nan")
    return f"{x:.{digits}e}" if (abs(x) < 1e-2 or abs(x) >= 1e4) and x != 0 else f"{x:.{digits + 1}g}"


def _failures(result):
    return [r for r in result["rows"] if r.failed]


#: the printed report's width (columns); long lines are wrapped, long texts are in verify.csv
WIDTH = 98


def _wrap(text, indent="", width=WIDTH):
    import textwrap

    return textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_on_hyphens=False) or [indent]


def format_table(result):
    """The human-readable report: reference quantities, the checks table, the decision rules.

    At most :data:`WIDTH` columns: one table per sketch level; each check's statement and notes
    are in verify.csv (and printed below the table for failed checks).
    """
    cfg = result["config"]
    ds = result["dataset"]
    lines = _wrap(f"mast verify: {ds['name']} (n={ds['n']}, d={ds['d']}), {cfg['objective']} λ={cfg['lam']:g}, "
                  f"shift v={cfg['shift']}, {'quick' if cfg['quick'] else 'full'} battery "
                  f"(R={cfg['seeds']} seeds, T={cfg['iters'] or 'per check'} steps)")
    lines.append("")
    lines += _wrap("reference quantities (D_pool: exact enumeration of D, or N balanced draws of D with "
                   "E_pool[S] = I; ± = Monte Carlo standard error as an estimate for D, i.i.d. formula, "
                   "conservative for the balanced pool)")
    if cfg["objective"] == "logreg-nonconvex":
        lines += _wrap("(non-convex f: f^inf and f_D^inf below are the values at the stationary points Newton "
                       "finds from x*; the bounds use the certified ℓ = 0 ≤ f instead)", "  ")
    for s in result["sweep"]:
        src = "exact enumeration" if s["exact_enumeration"] else "SAA"
        fresh = ""
        if "fresh_f_D_at_xD" in s:
            fresh = (f"; fresh f_D(x*_D) − f^inf = {_fmt(s['fresh_delta_upper'])} ± "
                     f"{_fmt(s['fresh_f_D_at_xD_se'], 1)} (m={s['fresh_m']})")
        contr = ""
        if "rho_measured" in s:
            contr = (f"; contraction/step measured {s['rho_measured']:.8f} vs predicted "
                     f"{s['rho_predicted']:.8f}")
        lines += _wrap(f"{s['sketch']} sparsity {s['sparsity']:.3g}: N={s['N']} ({src}), "
                       f"f^inf={s['f_inf']:.8g}, f_D^inf={s['f_D_inf']:.8g}, "
                       f"Δ={_fmt(s['delta'])} ± {_fmt(s['delta_se'], 1)}, "
                       f"‖x*_D − x*‖²={_fmt(s['dist_sq_xD_xstar'])} (x*_D ± {_fmt(s['x_D_se'], 1)} in norm)"
                       f"{fresh}; "
                       f"L_D={s['pool_L_D']:.4g}, μ_D={s['pool_mu_D']:.4g}, L_S^max={s['pool_L_S_max']:.4g}"
                       f"{contr}", "  ")
    if len(result["sweep"]) > len({s["sketch"] for s in result["sweep"]}):     # several levels of a family
        lines.append("")
        lines.append("sweep: Δ(sparsity) and contraction per step (interpolation run, second half)")
        lines.append(f"  {'sketch':<10} {'sparsity':>8} {'N':>5} {'Δ':>11} {'se':>9} "
                     f"{'ρ measured':>12} {'ρ predicted':>12}")
        for s in result["sweep"]:
            lines.append(f"  {s['sketch']:<10} {s['sparsity']:>8.3g} {s['N']:>5} {_fmt(s['delta']):>11} "
                         f"{_fmt(s['delta_se'], 1):>9} {s.get('rho_measured', float('nan')):>12.8f} "
                         f"{s.get('rho_predicted', float('nan')):>12.8f}")
    lines += _check_tables(result["rows"])
    lines.append("")
    fam = result.get("family_tests")
    lines += _wrap(f"* stochastic: mean ± standard error over R={cfg['seeds']} seeds; violated only when the "
                   f"observed mean exceeds the bound beyond a one-sided confidence interval "
                   f"(mean − z·se > bound at some logged t; z in the notes, {Z99:.3f} for one test). The other "
                   f"stochastic rows are z- or t-tests (observed = largest |z|, bound = critical value). "
                   + (f"All stochastic rows are one family, Bonferroni over its {fam} distinct tests: on a "
                      f"correct product any of them fires with probability ≤ 1% (family-wise 99%). " if fam else "")
                   + f"Exact checks: violated when observed > bound + "
                   f"{EXACT_RTOL:g}·scale (floating point). slack = bound/observed.")
    lines += _wrap(f"rate checks: power = null/bound, null = the statistic of a do-nothing algorithm (γ = 0); "
                   f"power < {MIN_POWER:g} is 'uninformative' and fails the battery. Each check's statement, "
                   "null and notes: verify.csv.", "  ")
    skipped = {}
    for r in result["rows"]:
        if r.verdict == "skipped":
            skipped.setdefault(r.notes, []).append(f"{r.check} [{r.sketch}]")
    for why, which in skipped.items():
        lines += _wrap(f"{why}: {', '.join(which)}")
    fails = _failures(result)
    for r in fails:
        lines += _wrap(f"{r.verdict}: {r.check} [{r.sketch} {r.sparsity:.2g}]: {r.statement}"
                       f"{' [RECON]' if r.recon else ''}{'; ' + r.notes if r.notes else ''}")
    nv, nu = result["violated"], result.get("uninformative", 0)
    lines += _wrap(f"{len(result['rows'])} checks, {nv} violated, {nu} uninformative"
                   f"{'' if not fails else ': ' + ', '.join(r.check + ' [' + r.sketch + ']' for r in fails)}"
                   f"; {result['wall_time_s']:.1f} s")
    return "\n".join(lines)


def _check_tables(rows):
    """One table per sketch level: check | observed | bound | power | slack | verdict."""
    head = ["check", "observed", "bound", "power", "slack", "verdict"]
    levels = {}
    for r in rows:
        levels.setdefault((r.sketch, r.sparsity), []).append(r)
    table = {}
    for key, rs in levels.items():
        cells = []
        for r in rs:
            if r.verdict == "skipped":
                cells.append([r.check, "", "", "", "", "skipped"])
                continue
            obs = _fmt(r.observed, 2)
            if r.kind == "stochastic":
                obs += f" ± {_fmt(r.se, 1)}*"
            cells.append([r.check + (" [R]" if r.recon else ""), obs, _fmt(r.bound, 2),
                          "" if not r.is_rate else _fmt(r.power, 2), _fmt(r.slack, 2), r.verdict])
        table[key] = cells
    allcells = [c for cs in table.values() for c in cs]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *allcells)]

    def row(cells):
        return " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    out = []
    for (sketch, sparsity), cells in table.items():
        out.append("")
        out.append(f"{sketch} sparsity {sparsity:.3g}  ([R] = [RECON] statement, derived in mast-theory)")
        out.append(row(head))
        out.append("-+-".join("-" * w for w in widths))
        out += [row(c) for c in cells]
    return out


def result_json(result):
    """JSON-ready dict of a :func:`~mast_cli.verify.verify_dataset` result."""
    import copy

    out = copy.copy(result)
    out["rows"] = [r.to_dict() for r in result["rows"]]
    out["sweep"] = [{k: (_num(v) if isinstance(v, float) else v) for k, v in s.items()} for s in result["sweep"]]
    return out


def write_outputs(result, out_dir):
    """Write ``verify.csv`` (one row per check) and ``verify.json`` into ``out_dir``.

    Returns
    -------
    (Path, Path)
        The two files written.
    """
    import csv
    import io
    import json
    from pathlib import Path

    from ..io.store import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = result["config"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in result["rows"]:
        d = r.to_dict()
        w.writerow({"dataset": result["dataset"]["name"], "objective": cfg["objective"], "lam": cfg["lam"],
                    **{k: d.get(k) for k in CSV_COLUMNS if k not in ("dataset", "objective", "lam")},
                    "slack": d["slack"] if d["slack"] is not None else ("inf" if r.slack > 0 else "nan"),
                    "t": "" if r.t < 0 else r.t})
    atomic_write_text(out / "verify.csv", buf.getvalue())
    atomic_write_text(out / "verify.json", json.dumps(result_json(result), indent=2, default=float) + "\n")
    from .checks.exact import draw_tightness

    draw_tightness(result, out / "thm2-exact.png")      # ridge only: the exact tightness of Theorem 2
    return out / "verify.csv", out / "verify.json"
