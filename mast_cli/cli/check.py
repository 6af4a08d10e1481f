"""``mast verify``: check the paper's lemmas and theorems numerically."""

from __future__ import annotations

import json

import click

from ._common import (FLOATS, check_lam, dataset_option, device_option, objective_option,
                      precheck_dataset)
from ._outputs import check_claim, default_out


@click.command()
@dataset_option
@click.option("--lam", default="auto", show_default=True,
              help="ℓ2 regularization λ, or auto: λ = λ_max(AᵀA)/(4n)/9 (ridge: λ_max(AᵀA)/n/9; L_f/λ = 10), the regime in which "
                   "every rate check has power ≥ 2.")
@objective_option
@click.option("--sketch", "-s", default="bernoulli,rand-k", show_default=True,
              help="Sketch families to check (comma list): bernoulli, rand-k, perm-k, gaussian, identity.")
@click.option("--sparsity", type=FLOATS, default="0.5", show_default=True,
              help="Sparsity levels; several levels run the battery per level (sweep of Δ and contraction).")
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
def verify(dataset, lam, objective, sketch, sparsity, quick, pool, seeds, iters, seed, shift, as_json, out,
           force, quiet, device):
    """Check the paper's lemmas and theorems on a dataset; exit 1 if any check is violated.

    Prints `check | statement | observed | bound | slack (bound/observed) | verdict` and writes
    OUT/verify.csv and OUT/verify.json.  A stochastic (rate) check is violated only when its mean
    over seeds exceeds the bound beyond a one-sided 99% confidence interval.  Examples:

    \b
        mast verify -d a1a --quick
        mast verify -d a9a --sketch rand-k --sparsity 0.1,0.5,0.9
    """
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

    names = [t.strip() for t in sketch.split(",") if t.strip()]
    cfg = VerifyConfig(dataset=dataset, lam=lam, objective=objective, sketches=names, sparsity=sparsity,
                       quick=quick, pool=pool, seeds=seeds, iters=iters, seed=seed, shift=shift)
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


def _device_checks(result, cfg, device, say):
    """``--device cuda``: the battery ran on the CPU; add the CPU-vs-device agreement checks
    (identity sketch exact to 1e-12, each sketch's E f(x_T) equal within confidence) as rows."""
    from ..algorithms.device import device_agreement
    from ..core.sketches import make_sketch
    from ..experiments.problem import load_problem
    from ..verify.result import CheckResult

    conf = result.get("config") or {}
    lam = conf.get("lam", cfg.lam)            # the battery's resolved λ (--lam auto leaves cfg.lam None)
    obj = load_problem(cfg.dataset, cfg.objective, lam).obj
    rows = list(result["rows"])
    s = float(cfg.sparsity[0])
    for name in cfg.sketches:
        if name == "identity":
            continue
        if say:
            say(f"device agreement ({device}, {name})")
        for r in device_agreement(obj, device, make_sketch(name, obj.d, sparsity=s)):
            rows.append(CheckResult(check=f"device-{r['check']}", statement=r["statement"],
                                    observed=r["observed"], bound=r["bound"], recon=False,
                                    notes=f"--device {device}", sketch=name, sparsity=s))
    return dict(result, rows=rows, violated=int(sum(r.violated for r in rows)),
                uninformative=int(sum(r.uninformative for r in rows)), failed=int(sum(r.failed for r in rows)))
