"""The battery: run every applicable check of :data:`~.registry.CHECKS` per sketch level."""

from __future__ import annotations

import math
import time
from dataclasses import asdict

from ..io.errors import MastError, NotEnumerable
from .config import sketch_levels
from .context import Context, load_verify_problem
from .result import Z99, CheckResult, bonferroni_groups

__all__ = ["run_battery", "verify_dataset"]


def run_battery(prob, sketch, cfg, progress=None, checks=None):
    """All applicable checks for one objective and one sketch distribution.

    Parameters
    ----------
    prob : Problem
        From :func:`~mast_cli.verify.context.load_verify_problem`.
    sketch : Sketch
    cfg : VerifyConfig (resolved)
    progress : callable str -> None, optional
        Called with a short label as each group of checks starts.
    checks : sequence of Check, optional
        The table to run (default :data:`~mast_cli.verify.registry.CHECKS`).

    Returns
    -------
    rows : list of CheckResult
        Rows of the multiple-testing group (every stochastic row) still carry their own 99%
        critical values; :func:`verify_dataset` corrects them over all its levels.
    info : dict
        Reference quantities (:meth:`Reference.summary`) and what the checks added (e.g. the
        measured and predicted contraction factors).
    """
    from .registry import CHECKS

    say = progress or (lambda s: None)
    ctx = Context(prob, sketch, cfg)
    say("reference")
    ctx.ref                                     # noqa: B018  (draws the pool first, as always)
    ctx.sweep.update({"sketch": sketch.name, "sparsity": float(sketch.sparsity), **ctx.ref.summary()})
    rows = ctx.rows
    table = CHECKS if checks is None else checks
    if getattr(cfg, "checks", None) is not None:
        table = [c for c in table if c.id in cfg.checks]
    for chk in table:
        if not chk.when(ctx):
            continue
        say(chk.progress or chk.id)
        try:
            out = chk.run(ctx)
        except NotEnumerable as exc:       # e.g. a continuous plug-in sketch: exact enumeration only
            out = CheckResult(chk.id, "skipped: not enumerable", math.nan, math.nan, kind=chk.kind,
                              applicable=False, notes=f"skipped: not enumerable ({exc})", recon=False)
        except MastError as exc:
            # a statement's own condition refused by the product (e.g. a theory step above the
            # theorem's limit, raised by core/theory.py): a violation of that check (exit 1), not
            # an input error (exit 2)
            out = CheckResult(chk.id, f"{chk.id}: the product refused the statement's own conditions", math.inf,
                              0.0, kind="exact", notes=f"raised: {exc}")
        for r in (out if isinstance(out, list) else [out]):
            r.kind = r.kind or chk.kind
            rows.append(r)
    for r in rows:
        r.sketch, r.sparsity = sketch.name, float(sketch.sparsity)
        if r.kind == "exact" and abs(r.bound) <= r.tol and abs(r.observed) <= r.tol:
            r.notes = "degenerate: both sides are 0 up to rounding (e.g. v = x*)" + (
                f"; {r.notes}" if r.notes else "")
    return rows, ctx.sweep


def _mark_not_applicable(rows, sketch):
    """Sketches with unbounded support (Gaussian: L_S^max = ∞) fall outside the theorems that
    need L_S^max; their rows are kept for information (computed for the finite pool) but
    reported "n/a" and never count as violations.  Checks that use only L_D, μ_D still run."""
    from .registry import NEEDS_L_S_MAX

    for r in rows:
        if r.check in NEEDS_L_S_MAX:
            r.applicable = False
            r.notes = (f"not applicable: L_S^max = ∞ for {sketch.name} (values shown are for the "
                       f"finite pool); " + r.notes).strip("; ")


def verify_dataset(cfg, progress=None):
    """Run the battery for every sketch × sparsity level of ``cfg`` on its dataset.

    Parameters
    ----------
    cfg : VerifyConfig
    progress : callable str -> None, optional
        Called with a short label per sketch level and per group of checks.

    Returns
    -------
    dict
        ``config``, ``dataset`` (n, d), ``rows`` (list of CheckResult; the bounds of a
        multiple-testing group corrected over the whole run, :func:`~.result.bonferroni_groups`),
        ``sweep`` (one dict per sketch level: reference quantities with N and standard errors,
        measured and predicted contraction), ``violated`` (count), ``uninformative`` (count),
        ``failed`` (violated + uninformative), ``confidence`` (0.99, family-wise over all the
        stochastic rows), ``family_tests`` (the distinct stochastic rows the level is split over),
        ``wall_time_s``.

    Raises
    ------
    MastError
        On invalid options (see :meth:`VerifyConfig.validate`).
    """
    given = cfg                                   # before the defaults: an explicit --workers is perm-k's M
    cfg = cfg.resolved()
    cfg.validate()
    t0 = time.perf_counter()
    prob = load_verify_problem(cfg)
    cfg.lam = float(prob.obj.lam)                 # the resolved λ (auto or given)
    rows, sweep = [], []
    for s, sk in sketch_levels(given, prob.obj.d):
        level = f"{sk.name} sparsity {sk.sparsity:g}"
        if progress is not None:
            progress(level)
        r, info = run_battery(prob, sk, cfg,
                              progress=None if progress is None else (lambda m, lv=level: progress(f"{lv}: {m}")))
        if not math.isfinite(sk.L_S_max):
            _mark_not_applicable(r, sk)
        info["sparsity_level"] = s
        rows.extend(r)
        sweep.append(info)
    # every stochastic row of every level and family: one family-wise 99% group (Bonferroni over tests)
    family = bonferroni_groups(rows)
    return {
        "config": asdict(cfg),
        "dataset": {"name": prob.name, "n": int(prob.obj.n), "d": int(prob.obj.d),
                    "f_inf": prob.f_inf, "erm_grad_norm": float(prob.erm_info["grad_norm"])},
        "rows": rows,
        "sweep": sweep,
        "violated": int(sum(r.violated for r in rows)),
        "uninformative": int(sum(r.uninformative for r in rows)),
        "failed": int(sum(r.failed for r in rows)),
        "confidence": 0.99,
        "z": Z99,
        "family_tests": int(sum(family.values())),
        "wall_time_s": time.perf_counter() - t0,
    }
