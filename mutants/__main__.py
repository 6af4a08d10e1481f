"""``python -m mutants`` (``make mutants``): run ``mast verify --quick`` against every mutant.

For each mutant of :data:`mutants.catalogue.MUTANTS` (or ``--only`` / ``--quick``), run
``mast verify --quick`` in a fresh subprocess with the mutant applied, on each CI
configuration in turn (heart_scale then a1a; ridge, whose exact-* checks compare with exact
oracles, then logreg), stopping at the first run that fails.  A mutant is *killed* when a
verify run exits non-zero: checks violated or uninformative (the table lists them), or a
crash (listed as such).  The unmutated product runs first on every configuration and must
pass, otherwise nothing is measured (exit 2).

Prints one table row per mutant (mutant, area, runs, checks that fired) and a final line
``mutants killed: K/N``; exits 1 when K < N.
"""

from __future__ import annotations

import argparse
import csv
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .catalogue import MUTANTS, QUICK, by_name

ROOT = Path(__file__).resolve().parents[1]


def run_verify(name, dataset, objective, extra, workdir):
    """One ``mast verify --quick`` with mutant ``name`` applied: (rc, fired checks, seconds, error)."""
    out = Path(workdir) / f"{name.replace('/', '_')}-{dataset}-{objective}"
    cmd = [sys.executable, "-m", "mutants.apply", name, "verify", "--dataset", dataset, "--objective", objective,
           "--quick", "--quiet", "--out", str(out), *extra]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    fired, err = [], ""
    csv_path = out / "verify.csv"
    if csv_path.is_file():
        with csv_path.open() as fh:
            for row in csv.DictReader(fh):
                if row.get("verdict") in ("VIOLATED", "uninformative"):
                    tag = f"{row['check']}[{row['sketch']}]" + ("?" if row["verdict"] == "uninformative" else "")
                    if tag not in fired:
                        fired.append(tag)
    if p.returncode != 0 and not fired:
        lines = (p.stderr or p.stdout).strip().splitlines()
        err = lines[-1] if lines else f"exit {p.returncode}"
    return p.returncode, fired, dt, err


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m mutants", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"only the quick subset {', '.join(QUICK)}")
    ap.add_argument("--only", default="", help="comma list of mutant names")
    ap.add_argument("--datasets", default="heart_scale,a1a", help="CI datasets, in the order tried")
    ap.add_argument("--objectives", default="ridge,logreg", help="objectives, in the order tried")
    ap.add_argument("--verify-args", default="", help="extra arguments for mast verify (quoted)")
    ap.add_argument("--list", action="store_true", help="list the catalogue and exit")
    args = ap.parse_args(argv)
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:34s} {m.area:28s} {m.doc}")
        return 0
    names = [n for n in args.only.split(",") if n] or (list(QUICK) if args.quick else [m.name for m in MUTANTS])
    mutants = [by_name(n) for n in names]
    configs = [(d, o) for o in args.objectives.split(",") if o for d in args.datasets.split(",") if d]
    extra = shlex.split(args.verify_args)
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mast-mutants-") as tmp:
        for ds, obj in configs:
            rc, fired, dt, err = run_verify("none", ds, obj, extra, tmp)
            print(f"baseline {ds} {obj}: exit {rc} ({dt:.0f} s){' ' + err if err else ''}"
                  f"{' fired: ' + ' '.join(fired) if fired else ''}", flush=True)
            if rc != 0:
                print("the unmutated product fails mast verify: nothing to measure", file=sys.stderr)
                return 2
        rows = []
        for m in mutants:
            fired, runs, err, total = [], [], "", 0.0
            for ds, obj in configs:
                rc, f, dt, e = run_verify(m.name, ds, obj, extra, tmp)
                total += dt
                runs.append(f"{ds}/{obj}")
                if rc != 0:
                    fired, err = f, e
                    break
            killed = bool(fired or err)
            rows.append((m, killed, runs, fired, err, total))
            what = " ".join(fired) if fired else (f"crash: {err}" if err else "-")
            print(f"  {'killed  ' if killed else 'SURVIVED'} {m.name}: {what} ({total:.0f} s)", flush=True)
    print()
    w = max(len(m.name) for m in mutants)
    print(f"{'mutant':<{w}}  {'area':<27}  {'killed':<6}  {'by run':<22}  checks that fired")
    print(f"{'-' * w}  {'-' * 27}  {'-' * 6}  {'-' * 22}  {'-' * 40}")
    for m, killed, runs, fired, err, total in rows:
        what = " ".join(fired) if fired else (f"crash: {err}" if err else "(none)")
        print(f"{m.name:<{w}}  {m.area:<27}  {'yes' if killed else 'NO':<6}  "
              f"{(runs[-1] if killed else 'all ' + str(len(runs))):<22}  {what}")
    K, N = sum(r[1] for r in rows), len(rows)
    print(f"\n{time.perf_counter() - t_start:.0f} s")
    print(f"mutants killed: {K}/{N}")
    return 0 if K == N else 1


if __name__ == "__main__":
    sys.exit(main())
