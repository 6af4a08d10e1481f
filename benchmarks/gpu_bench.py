"""Device timing table of ``make gpu-check`` (issue 20): microseconds per trajectory-step.

For R = 1e2, 1e3, 1e4, 5e4 trajectories on a9a, in float64 and float32 (data products;
iterates stay float64), times one step of

* Algorithm 1 (I)  (:func:`mast_cli.algorithms.device.dsgd_device`, Bernoulli p = 0.5),
* Algorithm 1 (II) (:func:`~mast_cli.algorithms.device.dsgd_minibatch_device`, τ = 64 rows),
* Algorithm 2      (:func:`~mast_cli.algorithms.device.distributed_device`, M = 4 workers),
* Algorithm 3      (:func:`~mast_cli.algorithms.device.l_svrdsg_device`, pool N = 8, p = 1/8),
* the pruning evaluation (:func:`mast_cli.core.device.device_masked_accuracy`, R masks on a9a.t;
  time per mask),

Algorithm 1 (I) is timed with both kernels (``fused``: :mod:`mast_cli.core.fused_device`;
``cusparse``: the CuPy/cuSPARSE reference path), after a check of the fused kernel against
the reference path (gradient at random points and iterates after 5 steps with the identity
sketch and Bernoulli, float64 bound 1e-12, float32 1e-5; bitwise reproducibility).  Each time is
(time of T + 2 steps − time of 2 steps) / (T·R) after a warm-up run (compilation and handles
stay out), with device synchronization before reading the clock; the median of 3.  Every part
runs in try/except (errors are recorded in the results, the rest goes on) and the whole stays
within ``--total-s`` (measurements not started by then are listed as skipped).
The CPU engine's time per trajectory-step (``dsgd``, same problem, R = 1000) is measured in
the same process for the speed-up column.  Writes OUT/gpu_results.json (every number,
device, versions, the memory estimate against the allocator's peak) and OUT/gpu_results.md
(the table), rewriting both after every measurement so that a timeout keeps what was done.

``--backend fake`` runs the same code on NumPy (a dry run of the script, tiny sizes).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mast_cli.algorithms import dsgd  # noqa: E402
from mast_cli.algorithms.device import (distributed_device, dsgd_device, dsgd_memory,  # noqa: E402
                                        dsgd_minibatch_device, l_svrdsg_device)
from mast_cli.core.backend import fake_backend, get_backend  # noqa: E402
from mast_cli.core.device import DeviceObjective, device_masked_accuracy  # noqa: E402
from mast_cli.core.objective import LogisticL2  # noqa: E402
from mast_cli.core.sketches import Bernoulli  # noqa: E402
from mast_cli.io.data import load_dataset  # noqa: E402

TARGET_US = 2.0        # Algorithm 1 (I), a9a, R = 1e4, float64 (issue 20)
TARGET_SPEEDUP = 100.0
T0 = time.time()


def log(msg):
    """A progress line with the UTC time and the seconds since start."""
    print(f"gpu_bench {time.strftime('%H:%M:%S', time.gmtime())} +{time.time() - T0:5.1f}s: {msg}", flush=True)


def timed(be, fn):
    be.synchronize()
    t0 = time.perf_counter()
    fn()
    be.synchronize()
    return time.perf_counter() - t0


def err_text(exc):
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def measurements(Rs, fused=True):
    """(algorithm, kernel, R) in the order they run: the target first, cheap before costly.
    ``fused`` False leaves out the rows that force the fused kernel."""
    big = [R for R in Rs if R <= 10000]
    kernels = ("fused", "cusparse") if fused else ("cusparse",)
    out = [("alg1-I", k, R) for R in Rs for k in kernels]
    out += [("alg3", "auto", R) for R in big]
    out += [("alg1-II", "auto", R) for R in big if R >= 1000 or len(big) < 3]
    out += [("alg2", k, R) for R in big if R >= 1000 or len(big) < 3 for k in ("auto", "fused")[:1 + fused]]
    out += [("prune-eval", "-", R) for R in Rs]
    return out


def fused_check(obj, be, sk, gamma, R=64, steps=5):
    """Fused kernel vs the cuSPARSE reference path, float64 (and float32): the gradient at
    random points, and the iterates after ``steps`` steps with the identity sketch and with
    Bernoulli; plus bitwise reproducibility of the fused gradient."""
    from mast_cli.core.sketches import Identity

    rows = []
    rng = np.random.default_rng(3)
    for dtype, bound in ((np.float64, 1e-12), (np.float32, 1e-5)):
        name = np.dtype(dtype).name
        try:
            fu = DeviceObjective(obj, be, dtype, kernel="fused")
            cs = DeviceObjective(obj, be, dtype, kernel="cusparse")
            Y = be.xp.asarray(rng.normal(size=(obj.d, R)) * 0.3)
            g1, g2, g0 = (be.to_host(fu.grad(Y)), be.to_host(fu.grad(Y)), be.to_host(cs.grad(Y)))
            rel = float(np.max(np.abs(g1 - g0)) / np.max(np.abs(g0)))
            rows.append({"check": "gradient", "dtype": name, "kernel": fu.kernel, "max_rel_diff": rel,
                         "bound": bound, "ok": bool(rel <= bound), "bitwise_reproducible": bool(np.array_equal(g1, g2))})
            for sname, sks, g in (("identity", [Identity(obj.d)] * R, 1.0 / obj.smoothness()),
                                  ("bernoulli-0.5", [sk] * R, gamma)):
                xa = dsgd_device(fu, sks, [g] * R, range(R), steps, log_every=10**9).x_final
                xb = dsgd_device(cs, sks, [g] * R, range(R), steps, log_every=10**9).x_final
                rel = float(np.max(np.abs(xa - xb)) / np.max(np.abs(xb)))
                rows.append({"check": f"iterates after {steps} steps, {sname}", "dtype": name,
                             "max_rel_diff": rel, "bound": bound, "ok": bool(rel <= bound)})
        except Exception as exc:  # report and go on
            rows.append({"check": "fused vs cusparse", "dtype": name, "error": err_text(exc), "ok": False})
        for r in rows[-3:]:
            log("fused check " + json.dumps(r))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/gpu_results", help="folder for gpu_results.{md,json}")
    ap.add_argument("--backend", default="cuda", choices=["cuda", "fake"])
    ap.add_argument("--dataset", default="a9a")
    ap.add_argument("--R", default="100,1000,10000,50000")
    ap.add_argument("--steps", type=int, default=8, help="timed steps T per measurement")
    ap.add_argument("--budget-s", type=float, default=25.0,
                    help="skip the larger R of an (algorithm, kernel, dtype) once one measurement took longer")
    ap.add_argument("--check-only", action="store_true",
                    help="only the fused-kernel check: write OUT/fused_check.json, exit 0 when it passed")
    ap.add_argument("--check-from", default=None,
                    help="take the fused-kernel check from this JSON (written by --check-only) instead of rerunning it")
    ap.add_argument("--no-fused", action="store_true",
                    help="leave out the rows that force the fused kernel (with MAST_DEVICE_KERNEL=cusparse: "
                         "after a failed check, so that a broken kernel cannot poison the CUDA context)")
    ap.add_argument("--total-s", type=float, default=130.0,
                    help="skip every measurement not started within this many seconds of the start")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {"dataset": args.dataset, "steps": args.steps, "backend": args.backend, "rows": [],
           "python": platform.python_version(), "numpy": np.__version__,
           "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    write(out, res)
    try:
        return run(args, out, res)
    except Exception as exc:  # set-up failed: keep what was written, say why
        res["error"] = err_text(exc)
        log("FAILED " + res["error"])
        write(out, res)
        return 1


def run(args, out, res):
    be = fake_backend() if args.backend == "fake" else get_backend("cuda")
    Rs = [int(float(r)) for r in args.R.split(",")]
    ds = load_dataset(args.dataset)
    obj = LogisticL2(ds.X, ds.y, 1e-3)
    gamma = 1.0 / (obj.smoothness() * 4.0)               # theory step at p = 0.5 (L_S^max = 4)
    T = args.steps
    res.update(n=obj.n, d=obj.d, nnz=int(obj.Ab.nnz), backend=be.name)
    if be.name == "cuda":
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        res["device"] = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        res["cupy"] = cupy.__version__
        res["device_memory_GiB"] = round(props["totalGlobalMem"] / 2**30, 1)
    log(f"{args.dataset} n={obj.n} d={obj.d} nnz={obj.Ab.nnz} backend={be.name} {res.get('device', '')}")
    sk = Bernoulli(obj.d, 0.5)

    # 1. the fused kernel against the cuSPARSE reference path (before any timing)
    if args.check_from and Path(args.check_from).is_file():
        res["fused_check"] = json.loads(Path(args.check_from).read_text())
    else:
        res["fused_check"] = fused_check(obj, be, sk, gamma)
    if args.check_only:
        (out / "fused_check.json").write_text(json.dumps(res["fused_check"], indent=2) + "\n")
        ok = bool(res["fused_check"]) and all(c.get("ok") for c in res["fused_check"])
        log(f"fused check {'passed' if ok else 'FAILED'}")
        return 0 if ok else 1
    res["fused_disabled"] = bool(args.no_fused)
    write(out, res)

    # 2. CPU reference: the engine's time per trajectory-step at R = 1000 (or the largest R asked)
    try:
        Rc = min(1000, max(Rs))
        dsgd(obj, [sk] * Rc, [gamma] * Rc, range(Rc), 1, log_every=10**9)
        t = time.perf_counter()
        dsgd(obj, [sk] * Rc, [gamma] * Rc, range(Rc), 2, log_every=10**9)
        res["cpu_us_per_traj_step"] = (time.perf_counter() - t) / (2 * Rc) * 1e6
        res["cpu_R"] = Rc
        log(f"CPU engine (dsgd, R={Rc}): {res['cpu_us_per_traj_step']:.1f} us per trajectory-step")
    except Exception as exc:  # report and go on
        res["cpu_error"] = err_text(exc)
    write(out, res)

    # 3. the device timings
    rng = np.random.default_rng(0)
    parts = np.array_split(rng.permutation(obj.n), 4)
    pool = Bernoulli(obj.d, 0.5).sample(rng, 8)
    S_masks = sk.sample(np.random.default_rng(1), max(Rs))
    x_mask = np.linspace(-0.5, 0.5, obj.d)
    A_test = be.csr(ds.X_test) if ds.X_test is not None else be.csr(ds.X)
    y_test = ds.y_test if ds.X_test is not None else ds.y
    dobjs = {}

    def runner(alg, kernel, R, dtype):
        if alg == "prune-eval":
            return lambda k: [device_masked_accuracy(be, A_test, y_test, x_mask, np.zeros(obj.d), S_masks[:R])
                              for _ in range(k)]
        key = (kernel, np.dtype(dtype).name)
        if key not in dobjs:
            dobjs[key] = DeviceObjective(obj, be, dtype, kernel=None if kernel == "auto" else kernel)
        dobj = dobjs[key]
        sks, steps, seeds = [sk] * R, [gamma] * R, range(R)
        if alg == "alg1-I":
            return lambda k: dsgd_device(dobj, sks, steps, seeds, k, log_every=10**9)
        if alg == "alg2":
            return lambda k: distributed_device(dobj, parts, sks, steps, seeds, k, log_every=10**9)
        if alg == "alg1-II":
            return lambda k: dsgd_minibatch_device(dobj, sks, steps, seeds, k, [64] * R, log_every=10**9)
        return lambda k: l_svrdsg_device(dobj, pool, [gamma / 6] * R, seeds, k, 1 / 8, log_every=10**9)

    skip = {}
    for alg, kernel, R in measurements(Rs, fused=not args.no_fused):
        for dtype in (np.float64, np.float32):
            if alg == "prune-eval" and dtype == np.float32:
                continue                                  # masked accuracy runs in float64 only
            key = (alg, kernel, np.dtype(dtype).name)
            row = {"algorithm": alg, "kernel": kernel, "R": R, "dtype": np.dtype(dtype).name}
            if time.time() - T0 > args.total_s:
                row["skipped"] = f"past --total-s {args.total_s:g}"
            elif key in skip:
                row["skipped"] = skip[key]
            else:
                measure(be, runner, alg, kernel, R, dtype, T, row, obj)
                if "error" in row:
                    skip[key] = "an error at a smaller R"
                elif row["wall_s"] > args.budget_s:
                    skip[key] = f"a smaller R took longer than --budget-s {args.budget_s:g}"
            res["rows"].append(row)
            log(json.dumps(row))
            write(out, res)
    res["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    write(out, res)
    print((out / "gpu_results.md").read_text(), flush=True)
    bad = [r for r in res["rows"] if "error" in r] + [r for r in res["fused_check"] if not r.get("ok")]
    return 1 if bad else 0


def measure(be, runner, alg, kernel, R, dtype, T, row, obj):
    """Time one (algorithm, kernel, R, dtype) into ``row`` (errors recorded, never raised)."""
    try:
        fn = runner(alg, kernel, R, dtype)
        if be.name == "cuda":
            be.xp.get_default_memory_pool().free_all_blocks()
        t_start = time.perf_counter()
        fn(1)                                     # warm-up: compilation, handles
        if alg == "prune-eval":          # one evaluation of R masks per call
            times = [timed(be, lambda: fn(1)) for _ in range(3)]
            us = float(np.median(times)) / R * 1e6
        else:                            # interleaved short/long runs, medians differenced
            k0, short, long = 2, [], []
            for _ in range(3):
                short.append(timed(be, lambda: fn(k0)))
                long.append(timed(be, lambda: fn(k0 + T)))
            diff = float(np.median(long) - np.median(short))
            if diff > 0:
                us = diff / (T * R) * 1e6
            else:                        # noise larger than T steps: an upper bound
                us = float(np.median(long)) / ((k0 + T) * R) * 1e6
                row["note"] = "upper bound (setup not subtracted)"
            times = long
        row.update(us=us, calls_s=[float(t) for t in times], wall_s=time.perf_counter() - t_start)
        if alg == "alg1-I" and be.name == "cuda":
            fixed, per = dsgd_memory(obj, dtype=dtype)
            row["estimate_MiB"] = (fixed + R * per) / 2**20
            row["pool_total_MiB"] = be.xp.get_default_memory_pool().total_bytes() / 2**20
    except Exception as exc:  # report and go on: one failure must not lose the table
        row["error"] = err_text(exc)
        row["wall_s"] = 0.0


def write(out, res):
    (out / "gpu_results.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "gpu_results.md").write_text(table(res))


def table(res):
    cpu = res.get("cpu_us_per_traj_step")
    lines = [f"GPU timing ({res.get('device', res['backend'])}; {res['dataset']} n={res.get('n')} d={res.get('d')} "
             f"nnz={res.get('nnz')}; {res['started']}; cupy {res.get('cupy', '-')})", ""]
    if res.get("error"):
        lines += [f"FAILED: {res['error']}", ""]
    if res.get("fused_check"):
        lines += ["Fused kernel vs cuSPARSE path (max relative difference):", ""]
        for c in res["fused_check"]:
            if "error" in c:
                lines.append(f"- {c['check']} ({c['dtype']}): ERROR {c['error']}")
            else:
                rep = f", bitwise reproducible: {c['bitwise_reproducible']}" if "bitwise_reproducible" in c else ""
                lines.append(f"- {c['check']} ({c['dtype']}): {c['max_rel_diff']:.2e} (bound {c['bound']:g}) "
                             f"{'ok' if c['ok'] else 'FAIL'}{rep}")
        lines.append("")
    if res.get("fused_disabled"):
        lines += ["The fused kernel was left out (its check failed): cuSPARSE path only.", ""]
    if cpu:
        lines += [f"CPU engine (dsgd, R={res.get('cpu_R')}): {cpu:.1f} µs per trajectory-step", ""]
    lines += ["| algorithm | kernel | R | float64 µs/traj-step | float32 µs/traj-step | speed-up vs CPU (f64) |",
              "|---|---|---|---|---|---|"]
    by = {}
    for r in res["rows"]:
        by.setdefault((r["algorithm"], r.get("kernel", "-"), r["R"]), {})[r["dtype"]] = r

    def cell(r):
        if r is None:
            return "-"
        if "us" in r:
            return f"{r['us']:.3g}"
        return "error" if "error" in r else "skipped"

    for (alg, kernel, R), d in by.items():
        r64 = d.get("float64")
        speed = f"{cpu / r64['us']:.0f}x" if cpu and r64 and "us" in r64 and alg != "prune-eval" else "-"
        lines.append(f"| {alg} | {kernel} | {R} | {cell(r64)} | {cell(d.get('float32'))} | {speed} |")
    for kernel in ("fused", "cusparse"):
        tgt = by.get(("alg1-I", kernel, 10000), {}).get("float64")
        if tgt and "us" in tgt:
            ok = tgt["us"] <= TARGET_US and bool(cpu) and cpu / tgt["us"] >= TARGET_SPEEDUP
            sp = f", {cpu / tgt['us']:.0f}x" if cpu else ""
            lines += ["", f"Target (Algorithm 1 (I), R = 1e4, float64, {kernel}): <= {TARGET_US} µs and "
                          f">= {TARGET_SPEEDUP:.0f}x the CPU engine: measured {tgt['us']:.3g} µs{sp} -> "
                          f"{'met' if ok else 'not met'}"]
    errs = [r for r in res["rows"] if "error" in r]
    if errs:
        lines += ["", "Errors:"] + [f"- {r['algorithm']} {r.get('kernel')} R={r['R']} {r['dtype']}: {r['error']}"
                                    for r in errs]
    lines += ["", "kernel: fused = the fused CUDA kernel (mast_cli/core/fused_device.py), cusparse = the CuPy/"
                  "cuSPARSE reference path, auto = what --device cuda picks (Algorithm 2 on a9a: cusparse, its "
                  "M·d accumulator exceeds 48 KB; fused there uses opt-in shared memory).",
              "prune-eval: µs per mask (one product A_test·W for R masks), float64.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
