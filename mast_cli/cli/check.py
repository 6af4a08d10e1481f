"""``mast verify``: check the paper's lemmas and theorems numerically."""

from __future__ import annotations

import json

import click

from ._common import (apply_threads, check_lam, dataset_option, device_option, explicit, objective_option,
                      precheck_dataset, sketch_options, threads_option)
from ._outputs import check_claim, default_out


@click.command()
@dataset_option
@click.option("--lam", default="auto", show_default=True,
              help="ℓ2 regularization λ, or auto: λ = λ_max(AᵀA)/(4n)/9 (ridge: λ_max(AᵀA)/n/9; L_f/λ = 10), the regime in which "
                   "every rate check has power ≥ 2.")
@objective_option
@sketch_options(default="bernoulli,rand-k",
                sketch_help="Sketch families to check (comma list): bernoulli, rand-k, perm-k, gaussian, identity, "
                            "or a plug-in's name; with --p/--k/--sigma and no --sketch: the families they set.",
                sparsity_help="Sparsity levels (default 0.5 for a family without its own --p/--k/--sigma/"
                              "--workers); several levels run the battery per level (sweep of Δ and contraction).")
@click.option("--quick", is_flag=True, help="Small battery (pool N=32, R=16 seeds, T=200): the CI check.")
@click.option("--pool", "-N", type=int, default=None, help="Pool size N of the reference (default 32 quick / 128).")
@click.option("--seeds", "-R", type=int, default=None, help="Seeds per stochastic check (default 16 quick / 32).")
@click.option("--iters", "-T", type=int, default=None, help="Iterations of the rate checks (default: chosen per check for power ≥ 2).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Base seed (pool, points, trajectories).")
@click.option("--shift", default="zero", show_default=True, help="Shift v: zero or erm (x*).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of the table.")
@click.option("--out", "-o", default=None,
              help="Folder for verify.csv and verify.json (default: a new folder "
                   "results/verify-<dataset>-<config hash>).")
@click.option("--force", is_flag=True, help="Replace the results of another configuration in --out.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr, only the final summary line.")
@device_option
@threads_option
@click.pass_context
def verify(ctx, dataset, lam, objective, sketch, p, k, workers, sigma, sparsity, quick, pool, seeds, iters, seed,
           shift, as_json, out, force, quiet, device):
    """Check the paper's lemmas and theorems on a dataset; exit 1 if any check is violated.

    Prints one table per sketch level, `check | observed | bound | power | slack | verdict` (under
    100 columns; statements and notes are in OUT/verify.csv), and writes OUT/verify.csv and
    OUT/verify.json.  A stochastic (rate) check is violated only when its mean
    over seeds exceeds the bound beyond a one-sided confidence interval; all the stochastic
    rows of a run are one family-wise 99% family (Bonferroni).  Examples:

    \b
        mast verify -d a1a --quick
        mast verify -d a9a --sketch rand-k --sparsity 0.1,0.5,0.9
        mast verify -d a1a --quick --p 0.3 --k 20      # bernoulli p = 0.3 and rand-k K = 20
        mast verify -d a1a --quick --sketch perm-k --workers 3
    """
    apply_threads(ctx)
    if str(lam).strip().lower() == "auto":
        lam = None
    else:
        from ..io.errors import MastError

        try:
            lam = float(lam)
        except ValueError:
            raise MastError(f"--lam {lam} must be a number >= 0 or auto") from None
        check_lam(lam)
    precheck_dataset(dataset)
    if device != "cpu":
        from ..core.backend import check_device

        check_device(device)          # one line, exit 2, before any work
    from ..verify import VerifyConfig, format_table, result_json, verify_dataset, write_outputs

    names = _families(ctx, sketch, p, k, workers, sigma, sparsity)
    if sparsity is None and p is None and k is None and sigma is None and not (workers and "perm-k" in names):
        sparsity = [0.5]               # the default level (recorded as such in verify.json)
    cfg = VerifyConfig(dataset=dataset, lam=lam, objective=objective, sketches=names, sparsity=sparsity,
                       p=p, k=k, sigma=sigma, workers=workers, quick=quick, pool=pool, seeds=seeds, iters=iters,
                       seed=seed, shift=shift)
    cfg.validate()
    from dataclasses import asdict

    from ..io.memory import check_count
    from ..io.outputs import check_out_path

    for name, val in (("--pool", pool), ("--seeds", seeds), ("--iters", iters)):
        check_count(val, name)

    if out is None:
        out = default_out("verify", dataset, asdict(cfg))
        if not quiet:
            click.echo(f"mast verify: results go to {out}", err=True)
    check_out_path(out)          # before the battery, not after it
    check_claim(out, asdict(cfg), force=force)
    say = None if quiet else (lambda msg: click.echo(f"mast verify: {msg}", err=True))
    result = verify_dataset(cfg, progress=say)
    if device != "cpu":
        result = _device_checks(result, cfg, device, say)
    csv_path, json_path = write_outputs(result, out)
    if as_json:
        click.echo(json.dumps(result_json(result), indent=2, default=float))
    else:
        click.echo(format_table(result))
    if not (as_json and quiet):      # with --json the printed result is the summary
        click.echo(f"wrote {csv_path} and {json_path}", err=True)
    return 1 if result["failed"] else 0


#: the level option of each built-in family (a plug-in family reads the options it takes itself)
_LEVEL = {"p": ("bernoulli",), "k": ("rand-k",), "sigma": ("gaussian",)}


def _families(ctx, sketch, p, k, workers, sigma, sparsity):
    """The sketch families of ``mast verify`` and the refusals of option combinations, as in
    ``mast run``: --p/--k/--sigma with --sparsity, --workers with --sparsity for perm-k, and a level
    option that no listed family uses.  Without --sketch, --p/--k/--sigma choose the families."""
    from ..core.sketches import SKETCHES
    from ..io.errors import MastError

    given = {"p": p, "k": k, "sigma": sigma}
    names = [t.strip() for t in sketch.split(",") if t.strip()]
    if not explicit(ctx, "sketch") and any(v is not None for v in given.values()):
        names = [_LEVEL[o][0] for o, v in given.items() if v is not None]
    fmt = {o: ",".join(f"{x:g}" for x in (v if isinstance(v, list) else [v])) for o, v in given.items() if v is not None}
    if sparsity is not None:
        for opt in fmt:
            raise MastError(f"--{opt} {fmt[opt]} and --sparsity {','.join(f'{x:g}' for x in sparsity)} both set "
                            "the sketch level; give one of them")
        if workers is not None and "perm-k" in names:
            raise MastError(f"--workers {workers} and --sparsity {','.join(f'{x:g}' for x in sparsity)} both set "
                            "perm-k's number of blocks M; give one of them")
    plugins = [n for n in names if n in SKETCHES and SKETCHES.is_plugin(n)]
    for opt in fmt:
        if not plugins and not any(n in _LEVEL[opt] for n in names):
            raise MastError(f"--{opt} {fmt[opt]} is used by --sketch {_LEVEL[opt][0]} (or a plug-in) only, "
                            f"not by --sketch {','.join(names)}")
    return names


def _device_checks(result, cfg, device, say):
    """``--device cuda``: the battery ran on the CPU; add the CPU-vs-device agreement checks
    (identity sketch exact to 1e-12, each sketch's E f(x_T) equal within confidence) as rows."""
    from ..algorithms.device import device_agreement
    from ..experiments.problem import load_problem
    from ..verify import sketch_levels
    from ..verify.result import CheckResult

    conf = result.get("config") or {}
    lam = conf.get("lam", cfg.lam)            # the battery's resolved λ (--lam auto leaves cfg.lam None)
    obj = load_problem(cfg.dataset, cfg.objective, lam).obj
    rows = list(result["rows"])
    first = {}
    for _, sk in sketch_levels(cfg, obj.d):       # the first level of each family
        first.setdefault(sk.name, sk)
    for name, sk in first.items():
        if name == "identity":
            continue
        s = float(sk.sparsity)
        if say:
            say(f"device agreement ({device}, {name})")
        for r in device_agreement(obj, device, sk):
            rows.append(CheckResult(check=f"device-{r['check']}", statement=r["statement"],
                                    observed=r["observed"], bound=r["bound"], recon=False,
                                    notes=f"--device {device}", sketch=name, sparsity=s))
    return dict(result, rows=rows, violated=int(sum(r.violated for r in rows)),
                uninformative=int(sum(r.uninformative for r in rows)), failed=int(sum(r.failed for r in rows)))
