"""mast performance benchmarks (issues 8, 19): eight figures, each measured side by side in one process.

    .venv/bin/python benchmarks/run.py            # full run (`make bench`), about 5 minutes
    .venv/bin/python benchmarks/run.py --quick    # about a minute (`make bench QUICK=1`)
    .venv/bin/python benchmarks/run.py --only 2,3 # some figures only

Writes ``benchmarks/results.json`` (``--out``) and prints a table.  Every ratio compares two
things timed in the same process, repetitions interleaved (A, B, A, B, ...), medians reported
(minimums are stored too).  The machine this was written on has 2 cores shared with other
jobs: read single numbers with care, ratios are what the file is for.  What was tried and what
each change gave: benchmarks/README.md.

Figures
-------
1. Batched engine (Algorithm 1 (I), R trajectories as columns) vs the straightforward
   per-trajectory loop (one A·y and one Aᵀ·r per trajectory per step).
2. One engine step vs the bare cost of its two sparse products (A·Y, Aᵀ·Z), layouts compared.
3. ``solve_erm`` vs scikit-learn's newton-cg at tol 1e-12.
4. Pruning evaluation: R masks with one product (``masked_accuracy``) vs a per-mask loop.
5. Scaling of the engine step with R and with n.
6. End to end: wall time and peak memory of ``mast reproduce`` on a9a (all experiments).
7. How cost grows: generated sparse data (scipy.sparse.random, cached), n = 1e4..1e6,
   d = 1e2..1e5, nnz up to 1e7: time per nnz per trajectory-step and peak memory.
8. Logging share: metric evaluation time / run time of ``mast run`` with default logging.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mast_cli.algorithms import dsgd  # noqa: E402
from mast_cli.algorithms._engine import CHUNK, streams  # noqa: E402
from mast_cli.core import fused  # noqa: E402
from mast_cli.core.kernels import neg_sigmoid, thread_pool  # noqa: E402
from mast_cli.core.objective import LogisticL2  # noqa: E402
from mast_cli.core.sketches import Bernoulli  # noqa: E402
from mast_cli.io.data import load_dataset  # noqa: E402
from mast_cli.io.memory import usable_cpus  # noqa: E402
from mast_cli.solvers.newton import solve_erm  # noqa: E402

SHARED = REPO.parent / "shared" / "datasets" / "libsvm"
LAM = 1e-3


# --- helpers -------------------------------------------------------------------------

#: Clock of :func:`interleaved`: wall time, or (``--clock cpu``) this process's CPU time, which
#: other jobs on a shared machine inflate much less (threads' CPU times add up, so a 2-thread
#: figure is then its total work, not its wall time).
CLOCK = time.perf_counter


def interleaved(fns, reps, warmup=1, clock=None):
    """Time each callable ``reps`` times, round-robin; returns name -> {median, min, runs} (s).

    ``clock``: :data:`CLOCK` by default; threaded figures pass the wall clock."""
    clock = clock or CLOCK
    for _ in range(warmup):
        for f in fns.values():
            f()
    runs = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            t0 = clock()
            f()
            runs[k].append(clock() - t0)
    return {k: {"median": float(np.median(v)), "min": float(np.min(v)), "runs": [float(x) for x in v]}
            for k, v in runs.items()}


_DATA = {}
LABEL = {}                                          # name -> what was actually loaded


def dataset(name):
    """(train Dataset, LogisticL2) by name; ``w1a.t`` comes from ../shared (bundled w1a if absent)."""
    if name not in _DATA:
        arg, LABEL[name] = name, name
        if name == "w1a.t":
            path = SHARED / "w1a.t.bz2"
            arg = str(path) if path.is_file() else "w1a"
            if arg == "w1a":
                LABEL[name] = "w1a (bundled: ../shared/datasets/libsvm/w1a.t.bz2 not found)"
        ds = load_dataset(arg)
        _DATA[name] = (ds, LogisticL2(ds.X, ds.y, LAM))
    return _DATA[name]


def bernoulli_batch(obj, R):
    """R Bernoulli sketches cycling through sparsity 0.1..0.9, theory steps 1/(L_f L_S^max)."""
    sparsity = np.resize(np.round(np.arange(0.1, 1.0, 0.1), 1), R)
    sks = [Bernoulli(obj.d, 1.0 - s) for s in sparsity]
    L = obj.smoothness()
    return sks, [1.0 / (L * s.L_S_max) for s in sks], list(range(R))


def exp_in_blocks(Z, buf=None):
    """exp of every entry of Z (n, R), in 64 Ki-entry blocks into one reused buffer: the
    cost of the exponentials alone, as the engine pays it (no n × R allocation)."""
    flat = Z.reshape(-1)
    buf = np.empty(1 << 16, dtype=Z.dtype) if buf is None else buf
    for s in range(0, flat.size, buf.size):
        part = flat[s:s + buf.size]
        np.exp(part, out=buf[:part.size])


def ms(t):
    return round(1e3 * t, 3)


def status(ratio, target, better):
    ok = ratio >= target if better == "higher" else ratio <= target
    return "met" if ok else "not met"


def jit_latency():
    """Seconds to compile every fused kernel in a fresh interpreter: from an empty numba
    cache (first use after install) and from the disk cache it then wrote (every later run)."""
    if not fused.ENABLED:
        return {}
    code = ("import time; t, c = time.perf_counter(), time.process_time(); from mast_cli.core import fused; "
            "fused.warmup(); print(time.perf_counter() - t, time.process_time() - c)")
    out = {}
    with tempfile.TemporaryDirectory(prefix="mast-numba-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("jit_first_call_cold", "jit_first_call_cached"):
            r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO)
            if r.returncode == 0:
                wall, cpu = map(float, r.stdout.strip().splitlines()[-1].split())
                out[label + "_s"], out[label + "_cpu_s"] = round(wall, 2), round(cpu, 2)
    return out


# --- 1. batched engine vs naive loop -------------------------------------------------

def naive_trajectory(obj, sketch, step, seed, iters):
    """What one writes by hand: per step y = S x, z = A y, g = Aᵀ r / n + λ y, x -= γ S g.

    Sketches come from the engine's stream (drawn CHUNK at a time) so that the final iterate
    can be checked against the engine's; the cost of drawing is the same either way.
    """
    A, AT, b, n, lam = obj.A, obj.A.T, obj.b, obj.n, obj.lam
    rng = streams(seed)[0]
    x = np.zeros(obj.d)
    S = None
    for t in range(iters):
        if t % CHUNK == 0:
            S = sketch.sample(rng, CHUNK)
        s = S[t % CHUNK]
        y = s * x
        z = A @ y                                   # one A·y
        r = -b / (1.0 + np.exp(b * z))              # −b ⊙ σ(−b ⊙ z)
        g = AT @ r / n + lam * y                    # one Aᵀ·r
        x = x - step * s * g
    return x


def bench_engine_vs_naive(quick):
    ds, obj = dataset("a9a")
    R, T = 100, (32 if quick else 200)
    sks, steps, seeds = bernoulli_batch(obj, R)
    k = 4 if quick else 10                          # trajectories run by the naive loop
    sub = np.linspace(0, R - 1, k).astype(int)
    out = {}

    def engine():
        out["engine"] = dsgd(obj, sks, steps, seeds, T, log_every=T).x_final

    def engine32():
        out["engine32"] = dsgd(obj, sks, steps, seeds, T, log_every=T, dtype=np.float32).x_final

    # the CLI's default, --threads auto: the usable CPUs (one process)
    auto = usable_cpus()
    thr = max(2, auto)

    def engine_thr():
        out["engine_thr"] = dsgd(obj, sks, steps, seeds, T, log_every=T, threads=thr).x_final

    def naive():
        out["naive"] = np.column_stack([naive_trajectory(obj, sks[r], steps[r], seeds[r], T) for r in sub])

    jit = jit_latency()
    engine()                                        # compiled (or loaded) before timing
    t = interleaved({"engine": engine, "engine32": engine32, "naive": naive},
                    reps=2 if quick else 3, warmup=0)
    naive_R = t["naive"]["median"] * R / k          # trajectories are independent: cost is linear
    # threads: always by the wall clock (CPU time would add the threads' times up), the
    # one-thread engine and the loop timed again alongside
    engine_thr()
    # 5 repetitions: on a shared/virtual machine the two-thread wall time varies ±10% run to run
    tw = interleaved({"engine": engine, "engine threads": engine_thr, "naive": naive},
                     reps=2 if quick else 5, warmup=0, clock=time.perf_counter)
    naive_wall = tw["naive"]["median"] * R / k
    err = float(np.abs(out["naive"] - out["engine"][:, sub]).max())
    err32 = float(np.abs(out["engine32"] - out["engine"]).max() / np.abs(out["engine"]).max())
    ratio = naive_R / t["engine"]["median"]
    # Bound: in float64 the engine evaluates exp on n numbers per trajectory-step, as the loop
    # does; it cannot beat (loop cost per trajectory-step) / (cost of those exps).
    Y = np.zeros((obj.d, R)) + 0.01
    Z = obj.margins(Y)
    tf = interleaved({"exp": lambda: exp_in_blocks(Z), "A@Y": lambda: obj.Ab @ Y,
                      "AT@Z": lambda: obj.AbT @ Z}, reps=3 if quick else 7)
    te = tf["exp"]["median"]
    products = tf["A@Y"]["median"] + tf["AT@Z"]["median"]
    per_traj_step_naive = naive_R / (R * T)
    bound = per_traj_step_naive / (te / R)
    # tighter: the loop's step against the batched products plus the exponentials
    bound_floor = per_traj_step_naive / ((products + te) / R)
    # what 15x would need, in measured pieces: the fused sigmoid on an L1-resident block
    # (n per trajectory-step) and the 2·nnz multiply-adds per trajectory-step at the dense
    # GEMM rate of this core (the best any product could do); the naive loop's own pieces
    pieces = kernel_pieces(obj, R)
    gemm = gemm_rate()
    fma_ceiling_s = 2.0 * obj.A.nnz / (gemm["gflops"] / 2 * 1e9)     # 1 FMA = 2 flops
    sig_s = obj.n * pieces["sigmoid_in_cache_ns_per_element"] * 1e-9
    ceiling = per_traj_step_naive / (fma_ceiling_s + sig_s)
    x1 = np.full(obj.d, 0.01)
    z1 = obj.A @ x1
    tn = interleaved({"A@y": lambda: obj.A @ x1, "AT@r": lambda: obj.A.T @ z1,
                      "sigmoid n": lambda: -obj.b / (1.0 + np.exp(obj.b * z1))}, reps=20 if not quick else 5)
    return {
        "id": 1, "name": "batched engine vs naive loop",
        "setup": f"a9a (n={obj.n}, d={obj.d}), Algorithm 1 (I), R={R} Bernoulli (sparsity 0.1-0.9), "
                 f"T={T}; naive loop timed on {k} of the R trajectories and scaled by R/{k}",
        "engine_s": t["engine"]["median"], "engine_float32_s": t["engine32"]["median"],
        "naive_s": naive_R, "naive_per_trajectory_step_ms": ms(per_traj_step_naive),
        "engine_per_trajectory_step_ms": ms(t["engine"]["median"] / (R * T)),
        "max_abs_diff_naive_vs_engine": err, "float32_rel_diff": err32,
        "exp_nR_in_cache_ms": ms(te),
        "ratio": ratio, "ratio_float32": naive_R / t["engine32"]["median"],
        "threads": thr, "threads_auto": auto,
        "ratio_wall_1_thread": naive_wall / tw["engine"]["median"],
        "ratio_2_threads": naive_wall / tw["engine threads"]["median"],
        "engine_threads_per_trajectory_step_ms": ms(tw["engine threads"]["median"] / (R * T)),
        "threads_identical": bool(np.array_equal(out["engine_thr"], out["engine"])),
        "bound_float64": bound, "bound_float64_products_plus_exp": bound_floor,
        "batched_products_ms": ms(products),
        "kernel_pieces_R100_ms": pieces,
        "ceiling_ratio_at_gemm_rate": ceiling,
        "ceiling_detail": {"gemm_gflops_1_thread": gemm["gflops"],
                           "products_at_gemm_rate_us_per_traj_step": round(1e6 * fma_ceiling_s, 1),
                           "sigmoid_in_cache_us_per_traj_step": round(1e6 * sig_s, 1),
                           "engine_us_per_traj_step": round(1e6 * t["engine"]["median"] / (R * T), 1),
                           "naive_us_per_traj_step": round(1e6 * per_traj_step_naive, 1),
                           "naive_pieces_us": {k: round(1e6 * v["median"], 1) for k, v in tn.items()}},
        "kernels": "fused numba" if fused.ENABLED else "numpy/scipy", **jit,
        "target": ">= 15x", "status": status(max(ratio, naive_wall / tw["engine threads"]["median"]), 15, "higher"),
        "timings": t, "timings_wall_threads": tw,
    }


def kernel_pieces(obj, R):
    """The fused gradient kernel taken apart on a9a (CPU ms per call, R columns): margins only,
    sigmoid only (on the cache-resident block), scatter only; and the sigmoid's cost per
    element on one L1-resident block of 4096 (fused exp, vectorized)."""
    if not fused.ENABLED:
        return {}
    from numba import njit

    from mast_cli.core.fused import SCATTER_ROWS, _buffer, _margins, _prepared, _scatter, _sig_rows

    @njit(nogil=True, error_model="numpy")
    def kern(ptr, idx, val, blk, scol, sptr, trow, tval, rows, Y, G, do_m, do_e, do_s):
        n, w = ptr.size - 1, Y.shape[1]
        Z, W, tmp = _buffer(rows, w), _buffer(rows, w), np.empty(16)
        Z[:] = 0.0
        W[:] = 0.0
        for s in range(0, n, rows):
            e = min(s + rows, n)
            if do_m:
                _margins(ptr, idx, val, Y, s, e, Z)
            zf, wf = Z.reshape(-1), W.reshape(-1)
            if do_e:
                _sig_rows(zf, wf, (e - s) * w, tmp)
            if do_s:
                _scatter(blk, scol, sptr, trow, tval, W, s // rows, G)

    @njit(nogil=True, error_model="numpy")
    def sig_blocks(x, out, reps):
        tmp = np.empty(16)
        for _ in range(reps):
            _sig_rows(x, out, x.size, tmp)

    _, (ptr, idx, val), blocked = _prepared(obj.Ab)
    R = fused._padded_width(R)                 # the width the engine runs (zero columns added)
    Y = fused._aligned_zeros((obj.d, R))       # 64-byte aligned, as the engine's copies
    Y[:] = np.random.default_rng(0).standard_normal((obj.d, R)) * 0.1
    G = fused._aligned_zeros((obj.d, R))
    x, out = np.random.default_rng(1).standard_normal(4096), np.empty(4096)
    reps = max(1, obj.n * R // 4096)
    t = interleaved({"all": lambda: kern(ptr, idx, val, *blocked, SCATTER_ROWS, Y, G, True, True, True),
                     "margins": lambda: kern(ptr, idx, val, *blocked, SCATTER_ROWS, Y, G, True, False, False),
                     "sigmoid": lambda: kern(ptr, idx, val, *blocked, SCATTER_ROWS, Y, G, False, True, False),
                     "scatter": lambda: kern(ptr, idx, val, *blocked, SCATTER_ROWS, Y, G, False, False, True),
                     "sigmoid L1": lambda: sig_blocks(x, out, reps)}, reps=5)
    res = {k: ms(v["median"]) for k, v in t.items() if k != "sigmoid L1"}
    res["sigmoid_in_cache_ns_per_element"] = round(1e9 * t["sigmoid L1"]["median"] / (reps * 4096), 3)
    mad = obj.Ab.nnz * R
    res["margins_gmuladd_per_s"] = round(mad / t["margins"]["median"] / 1e9, 2)
    res["scatter_gmuladd_per_s"] = round(mad / t["scatter"]["median"] / 1e9, 2)
    return res


_GEMM = {}


def gemm_rate(n=1536, reps=5):
    """Memoized :func:`_gemm_rate` (figures 1 and 2 share one measurement)."""
    if (n, reps) not in _GEMM:
        _GEMM[n, reps] = _gemm_rate(n, reps)
    return _GEMM[n, reps]


def _gemm_rate(n=1536, reps=5):
    """Measured FLOP ceiling: dense float64 GEMM (n × n) on one BLAS thread, GFLOP/s.

    Run in a subprocess with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed (they slow a
    current OpenBLAS down on this machine, see the env notes); the kernel OpenBLAS then
    picked is reported (threadpoolctl)."""
    code = f"""
import json, time, numpy as np
from threadpoolctl import threadpool_limits, threadpool_info
a = np.random.default_rng(0).standard_normal(({n}, {n})); b = a.T.copy()
with threadpool_limits(1):
    a @ b; ts = []
    for _ in range({reps}):
        t = time.process_time(); a @ b; ts.append(time.process_time() - t)   # one thread: CPU = busy time
info = [{{k: i.get(k) for k in ("internal_api", "version", "architecture")}} for i in threadpool_info()]
print(json.dumps({{"gflops": 2 * {n}**3 / min(ts) / 1e9, "n": {n}, "blas": info}}))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["env_removed"] = [k for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ]
    return out


# --- 2. engine step vs the sparse-product floor --------------------------------------

def bench_floor(quick):
    from threadpoolctl import threadpool_limits

    ds, obj = dataset("a9a")
    R, T = 100, (16 if quick else 64)
    reps = 3 if quick else 7
    sks, steps, seeds = bernoulli_batch(obj, R)
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((obj.d, R)) * 0.1
    Z = obj.margins(Y)
    A, AT = obj.Ab, obj.AbT                       # CSR, and its transpose as a CSC view
    AT_csr = AT.tocsr()
    YF, ZF = np.asfortranarray(Y), np.asfortranarray(Z)
    A32, Y32, Z32 = A.astype(np.float32), Y.astype(np.float32), Z.astype(np.float32)
    AT32 = A32.T
    fns = {
        "engine setup (T=0)": lambda: dsgd(obj, sks, steps, seeds, 0),
        "engine step": lambda: dsgd(obj, sks, steps, seeds, T, log_every=T),
        "engine step float32": lambda: dsgd(obj, sks, steps, seeds, T, log_every=T, dtype=np.float32),
        "grad (blocked)": lambda: obj.grad(Y),
        "grad (unblocked, before)": lambda: obj.back(neg_sigmoid(obj.margins(Y))) + obj.penalty.grad(Y),
        "A@Y csr": lambda: A @ Y,
        "A@Y csr, Y F-order": lambda: A @ YF,
        "AT@Z csc view": lambda: AT @ Z,
        "AT@Z csc view, Z F-order": lambda: AT @ ZF,
        "AT@Z csr copy": lambda: AT_csr @ Z,
        "A@Y float32": lambda: A32 @ Y32,
        "AT@Z float32": lambda: AT32 @ Z32,
        "exp(Z) n x R": lambda: np.exp(Z),
        "exp(Z) in cache blocks": lambda: exp_in_blocks(Z),
        "exp(Z) float32": lambda: np.exp(Z32),
    }
    # two threads: the engine splits the R columns in two groups (same bits); its floor
    # is the same two products, each split the same way over the same pool

    pool, half = thread_pool(2), R // 2
    Ys = [np.ascontiguousarray(Y[:, :half]), np.ascontiguousarray(Y[:, half:])]
    Zs = [np.ascontiguousarray(Z[:, :half]), np.ascontiguousarray(Z[:, half:])]
    fns["engine step, 2 threads"] = lambda: dsgd(obj, sks, steps, seeds, T, log_every=T, threads=2)
    fns["A@Y, 2 threads"] = lambda: list(pool.map(lambda P: A @ P, Ys))
    fns["AT@Z, 2 threads"] = lambda: list(pool.map(lambda P: AT @ P, Zs))
    t = interleaved(fns, reps)
    gemm = gemm_rate()
    setup = t.pop("engine setup (T=0)")["median"]     # streams, recorder: not part of a step
    per = {k: (v["median"] - setup) / T if k.startswith("engine") else v["median"] for k, v in t.items()}
    with threadpool_limits(1):
        t1 = interleaved({"A@Y csr": fns["A@Y csr"], "AT@Z csc view": fns["AT@Z csc view"]}, reps)
    fwd = min(per["A@Y csr"], per["A@Y csr, Y F-order"])
    bwd = min(per["AT@Z csc view"], per["AT@Z csc view, Z F-order"], per["AT@Z csr copy"])
    floor = fwd + bwd
    floor32 = per["A@Y float32"] + per["AT@Z float32"]
    floor_mixed = per["A@Y float32"] + bwd          # the products the float32 mode does
    ratio = per["engine step"] / floor
    flops = 4.0 * obj.A.nnz * R                     # two products, one multiply-add each per nnz and column
    return {
        "id": 2, "name": "engine step vs sparse-product floor and FLOP ceiling",
        "setup": f"a9a, R={R}; engine step = (dsgd time for T={T} - for T=0) / T (sketch draws included); floor = "
                 "A·Y + Aᵀ·Z timed alone, fastest layout of each",
        "per_call_ms": {k: ms(v) for k, v in per.items()},
        "blas_1_thread_ms": {k: ms(v["median"]) for k, v in t1.items()},
        "floor_ms": ms(floor), "floor_float32_ms": ms(floor32), "floor_float32_mode_ms": ms(floor_mixed),
        "floor_plus_exp_ms": ms(floor + per["exp(Z) in cache blocks"]),
        "engine_step_ms": ms(per["engine step"]), "engine_step_float32_ms": ms(per["engine step float32"]),
        "ratio": ratio,
        "ratio_float32_vs_its_floor": per["engine step float32"] / floor_mixed,
        "ratio_float32_vs_float32_floor": per["engine step float32"] / floor32,
        "ratio_float32_vs_float64_floor": per["engine step float32"] / floor,
        "floor_2_threads_ms": ms(per["A@Y, 2 threads"] + per["AT@Z, 2 threads"]),
        "engine_step_2_threads_ms": ms(per["engine step, 2 threads"]),
        "ratio_2_threads": per["engine step, 2 threads"] / (per["A@Y, 2 threads"] + per["AT@Z, 2 threads"]),
        "ratio_2_threads_vs_1_thread_floor": per["engine step, 2 threads"] / floor,
        "ratio_vs_floor_plus_exp": per["engine step"] / (floor + per["exp(Z) in cache blocks"]),
        "bound_float64": (floor + per["exp(Z) in cache blocks"]) / floor,
        "engine_gflops": flops / per["engine step"] / 1e9, "floor_gflops": flops / floor / 1e9,
        "gemm_ceiling": gemm,
        "fraction_of_gemm": flops / per["engine step"] / 1e9 / gemm["gflops"],
        "target": "<= 1.3x",
        "status": ("met" if ratio <= 1.3 else
                   "met by the float32 opt-in only" if per["engine step float32"] / floor_mixed <= 1.3
                   else "not met"),
        "timings": t,
    }


# --- 3. ERM solver vs scikit-learn ---------------------------------------------------

def bench_erm(quick):
    import warnings

    from sklearn.linear_model import LogisticRegression

    rows, worst = [], 0.0
    for name in ["a1a", "a9a", "w1a.t"]:
        ds, obj0 = dataset(name)
        res = {}

        def ours():
            obj = LogisticL2(ds.X, ds.y, LAM)       # fresh object: its caches are part of the cost
            res["ours"] = solve_erm(obj)[0]

        def sk():
            clf = LogisticRegression(solver="newton-cg", tol=1e-12, fit_intercept=False,
                                     C=1.0 / (obj0.n * LAM), max_iter=1000)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf.fit(ds.X, ds.y)
            res["sklearn"] = clf.coef_.ravel()

        t = interleaved({"ours": ours, "sklearn": sk}, reps=2 if quick else 5)
        g_o = float(np.linalg.norm(obj0.grad(res["ours"])))
        g_s = float(np.linalg.norm(obj0.grad(res["sklearn"])))
        r = t["ours"]["median"] / t["sklearn"]["median"]
        worst = max(worst, r)
        rows.append({"dataset": LABEL[name], "n": obj0.n, "d": obj0.d, "nnz": int(obj0.A.nnz),
                     "ours_s": t["ours"]["median"], "sklearn_s": t["sklearn"]["median"], "ratio": r,
                     "ours_grad_norm": g_o, "sklearn_grad_norm": g_s,
                     "f_ours_minus_f_sklearn": float(obj0.value(res["ours"]) - obj0.value(res["sklearn"])),
                     "timings": t})
    ok = all(r["ours_grad_norm"] <= 1e-12 and r["ours_grad_norm"] <= max(r["sklearn_grad_norm"], 1e-15)
             for r in rows)
    return {
        "id": 3, "name": "solve_erm vs sklearn newton-cg",
        "setup": "LogisticRegression(solver='newton-cg', tol=1e-12, fit_intercept=False, C=1/(n λ)), "
                 "λ=1e-3; time = median of fit / solve_erm (objects built inside)",
        "rows": rows, "ratio": worst, "accuracy_equal_or_better": ok,
        "target": "<= 1x (each dataset)", "status": "met" if worst <= 1.0 and ok else "not met",
    }


# --- 4. pruning evaluation -----------------------------------------------------------

def bench_pruning(quick):
    from mast_cli.core.evaluation import masked_accuracy

    ds, obj = dataset("a9a")
    x, _ = solve_erm(obj)
    Xt, yt = ds.X_test, ds.y_test
    R = 1000
    S = Bernoulli(obj.d, 0.5).sample(np.random.default_rng(0), R)
    v = np.zeros(obj.d)
    out = {}

    def batched():
        out["batched"] = masked_accuracy(Xt, yt, x, v, S)

    def loop():
        acc = np.empty(R)
        for r in range(R):
            w = v + S[r] * (x - v)
            acc[r] = np.mean((Xt @ w) * yt > 0)
        out["loop"] = acc

    W = v[:, None] + S.T * (x - v)[:, None]
    t = interleaved({"one product": batched, "per-mask loop": loop, "product X·W alone": lambda: Xt @ W},
                    reps=2 if quick else 5)
    ratio = t["per-mask loop"]["median"] / t["one product"]["median"]
    return {
        "id": 4, "name": "pruning evaluation: one product vs per-mask loop",
        "setup": f"a9a.t (m={Xt.shape[0]}), R={R} Bernoulli masks (sparsity 0.5) of the ERM solution",
        "one_product_ms": ms(t["one product"]["median"]), "loop_ms": ms(t["per-mask loop"]["median"]),
        "product_alone_ms": ms(t["product X·W alone"]["median"]),
        "identical": bool(np.array_equal(out["batched"], out["loop"])),
        "ratio": ratio,
        "bound": t["per-mask loop"]["median"] / t["product X·W alone"]["median"],
        "target": ">= 5x", "status": status(ratio, 5, "higher"), "timings": t,
    }


# --- 5. scaling ----------------------------------------------------------------------

def bench_scaling(quick):
    ds, obj = dataset("a9a")
    reps = 2 if quick else 3
    by_R = []
    for R in (1, 10, 100, 1000):
        T = {1: 128, 10: 64, 100: 16, 1000: 4}[R] if quick else {1: 256, 10: 128, 100: 32, 1000: 32}[R]
        sks, steps, seeds = bernoulli_batch(obj, R)
        tt = interleaved({"run": lambda: dsgd(obj, sks, steps, seeds, T, log_every=T),
                          "setup": lambda: dsgd(obj, sks, steps, seeds, 0)}, reps)
        step = (tt["run"]["median"] - tt["setup"]["median"]) / T
        by_R.append({"R": R, "T": T, "step_ms": ms(step), "setup_ms": ms(tt["setup"]["median"]),
                     "per_trajectory_step_us": round(1e6 * step / R, 2)})
    by_n = []
    for name in ["a1a", "a9a", "w1a.t"]:
        _, o = dataset(name)
        R, T = 100, (16 if quick else 32)
        sks, steps, seeds = bernoulli_batch(o, R)
        tt = interleaved({"run": lambda: dsgd(o, sks, steps, seeds, T, log_every=T),
                          "setup": lambda: dsgd(o, sks, steps, seeds, 0)}, reps)
        per = (tt["run"]["median"] - tt["setup"]["median"]) / (T * R)
        by_n.append({"dataset": LABEL[name], "n": o.n, "d": o.d, "nnz": int(o.A.nnz), "step_ms": ms(per * R),
                     "per_trajectory_step_us": round(1e6 * per, 2),
                     "per_trajectory_step_per_nnz_ns": round(1e9 * per / o.A.nnz, 3),
                     "per_trajectory_step_per_row_ns": round(1e9 * per / o.n, 2)})
    pts = [r["per_trajectory_step_us"] for r in by_R]
    flat = all(b <= 1.1 * a for a, b in zip(pts, pts[1:]))
    return {
        "id": 5, "name": "scaling of the engine step",
        "setup": "(dsgd time for T steps - for T=0) / (T·R), Bernoulli sketches; vs R on a9a, vs n at R=100",
        "by_R": by_R, "by_n": by_n, "ratio": pts[0] / pts[-1],
        "target": "time per trajectory-step flat or falling with R (within 10%)",
        "status": "met" if flat else "not met",
    }


# --- 6. end to end -------------------------------------------------------------------

QUICK_TOML = """kind = "prune"
figure = "quick"
caption = "benchmark smoke run"

[config]
sketch = "bernoulli"
sparsity = [0.0, 0.5]
masks = 50
iters = 100
"""


def _tree_rss(pid):
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p] + p.children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.Error:
            pass
    return total


def bench_e2e(quick):
    tmp = Path(tempfile.mkdtemp(prefix="mast-bench-"))
    cmd = [str(REPO / ".venv" / "bin" / "mast"), "reproduce", "--dataset", "a9a", "--jobs", "2",
           "--results", str(tmp / "results"), "--plots", str(tmp / "plots"), "--quiet"]
    if not Path(cmd[0]).exists():
        cmd[0] = shutil.which("mast") or "mast"
    if quick:
        (tmp / "exp").mkdir()
        (tmp / "exp" / "quick_prune.toml").write_text(QUICK_TOML)
        cmd[3] = "a1a"
        cmd += ["--experiments", str(tmp / "exp")]
    load0 = list(os.getloadavg())
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    peak_tree = 0
    try:
        import psutil  # noqa: F401
        sample = True
    except ImportError:
        sample = False
    while proc.poll() is None:
        if sample:
            peak_tree = max(peak_tree, _tree_rss(proc.pid))
        time.sleep(0.2)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_proc = ru.ru_maxrss * 1024                                       # largest single process
    cpu = ru.ru_utime + ru.ru_stime          # CPU seconds of all finished children (shared machines)
    ran = sorted(p.name for p in (tmp / "results").iterdir() if p.is_dir()) if (tmp / "results").is_dir() else []
    plots = sorted(p.name for p in (tmp / "plots").rglob("*") if p.is_file()) if (tmp / "plots").is_dir() else []
    timing = {}                                 # each run experiment's own steps/metrics split
    for meta in sorted((tmp / "results").glob("*/metadata.json")) if (tmp / "results").is_dir() else []:
        tm = json.loads(meta.read_text()).get("timing")
        if tm:
            timing[meta.parent.name] = tm
    load1 = list(os.getloadavg())
    shutil.rmtree(tmp, ignore_errors=True)
    peak = max(peak_tree, peak_proc)
    ok = proc.returncode == 0 and wall < 166 and peak <= 2 * 1024 ** 3
    return {
        "id": 6, "name": "end to end: mast reproduce on a9a" + (" (quick: one small prune on a1a)" if quick else ""),
        "setup": " ".join(cmd[1:]).replace(str(tmp), "$TMP"),
        "exit_code": proc.returncode, "wall_s": round(wall, 1), "children_cpu_s": round(cpu, 1),
        "peak_rss_tree_mb": round(peak_tree / 2 ** 20, 1), "peak_rss_largest_process_mb": round(peak_proc / 2 ** 20, 1),
        "experiments_with_results": ran, "plots": plots,
        "loadavg_start": load0, "loadavg_end": load1,
        "run_timing": timing,
        "metric_share_of_run_experiments": (
            sum(v["metrics_s"] for v in timing.values())
            / max(1e-12, sum(v["metrics_s"] + v["steps_s"] for v in timing.values())) if timing else None),
        "stderr_tail": err[-2000:], "ratio": wall,
        "target": "< 166 s (before issue 19) and <= 2 GB" + (" (full run only)" if quick else ""),
        "status": ("n/a (quick)" if quick else ("met" if ok else "not met")),
    }


# --- 7. how cost grows: generated sparse data ---------------------------------------

#: (n, d, nnz) of the generated problems; the last is the issue's R = 10, T = 10 case.
SCALING_CASES = [(10_000, 100, 100_000), (100_000, 1_000, 1_000_000), (100_000, 10_000, 1_000_000),
                 (1_000_000, 10_000, 10_000_000), (1_000_000, 100_000, 10_000_000)]
CACHE = Path(os.environ.get("MAST_BENCH_CACHE", Path.home() / ".cache" / "mast-bench"))


def generated(n, d, nnz):
    """scipy.sparse.random(n, d) with nnz non-zeros (uniform values) and random ±1 labels,
    written once to CACHE as .npz and read from there afterwards."""
    import scipy.sparse as sp

    path = CACHE / f"random_n{n}_d{d}_nnz{nnz}.npz"
    lab = path.with_suffix(".labels.npy")
    if not (path.is_file() and lab.is_file()):
        CACHE.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        A = sp.random(n, d, density=nnz / (n * d), format="csr", random_state=rng)
        y = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        tmp = path.with_name(path.stem + ".tmp.npz")
        sp.save_npz(tmp, A)
        np.save(lab, y)
        os.replace(tmp, path)
    return sp.load_npz(path).tocsr(), np.load(lab)


def scaling_case(n, d, nnz, R=10, T=10):
    """One case of figure 7, meant to run in a fresh process (its peak RSS is the case's)."""
    A, y = generated(n, d, nnz)
    t0 = time.perf_counter()
    obj = LogisticL2(A, y, LAM)
    build = time.perf_counter() - t0
    sks = [Bernoulli(d, 0.5)] * R
    steps, seeds = [1e-3] * R, list(range(R))
    dsgd(obj, sks, steps, seeds, 1, log_every=1)          # kernels loaded, caches built
    t = interleaved({"run": lambda: dsgd(obj, sks, steps, seeds, T, log_every=T),
                     "setup": lambda: dsgd(obj, sks, steps, seeds, 0)}, reps=3, warmup=0)
    step = max(t["run"]["median"] - t["setup"]["median"], 1e-12) / T
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"n": n, "d": d, "nnz": int(A.nnz), "R": R, "T": T, "objective_build_s": round(build, 2),
            "step_ms": ms(step), "per_trajectory_step_per_nnz_ns": round(1e9 * step / (R * A.nnz), 3),
            "run_s": round(t["run"]["median"], 2), "peak_rss_mb": round(rss / 2 ** 20, 1)}


def bench_generated(quick):
    cases = SCALING_CASES[:2] if quick else SCALING_CASES
    rows = []
    for n, d, nnz in cases:
        generated(n, d, nnz)                                 # generation is not part of the case
        clock = ["--clock", "cpu"] if CLOCK is time.process_time else []
        r = subprocess.run([sys.executable, str(Path(__file__)), "--scaling-case", f"{n},{d},{nnz}", *clock],
                           capture_output=True, text=True, cwd=REPO)
        if r.returncode != 0:
            rows.append({"n": n, "d": d, "nnz": nnz, "error": r.stderr[-500:]})
            continue
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
    big = [x for x in rows if x["n"] == 1_000_000 and x["d"] == 100_000]
    ok = bool(big) and "error" not in big[0] and big[0]["peak_rss_mb"] <= 4096
    return {
        "id": 7, "name": "how cost grows: generated sparse data",
        "setup": "scipy.sparse.random (uniform values, ±1 labels, cached in " + str(CACHE) + "), "
                 "Algorithm 1 (I), R=10 Bernoulli(0.5), T=10; each case in a fresh process (peak RSS = the case's)",
        "rows": rows, "ratio": max((x.get("per_trajectory_step_per_nnz_ns", 0) for x in rows), default=0),
        "target": "R=10, T=10 at n=1e6, d=1e5 (nnz 1e7) within 4 GB" + (" (full run only)" if quick else ""),
        "status": "n/a (quick)" if quick else ("met" if ok else "not met"),
    }


# --- 8. logging share -----------------------------------------------------------------

def bench_logging(quick):
    """Metric evaluation / run time of `mast run` units with default logging (geometric schedule,
    20 evaluation sketches, test accuracy), measured inside the engine (History.metric_time)."""
    from mast_cli.core.evaluation import eval_sketches
    from mast_cli.experiments.config import RunConfig
    from mast_cli.experiments.problem import load_problem
    from mast_cli.experiments.run import ALGORITHMS, expand_trajectories
    from mast_cli.experiments.trajectories import make_metrics
    from mast_cli.shifts import resolve_shift
    from mast_cli.algorithms import _engine

    default_ratio = _engine.GEOMETRIC_RATIO
    configs = {
        "README a9a dsgd, 3 levels, T=300": RunConfig(dataset="a9a", sketch="bernoulli", sparsity=[0.1, 0.5, 0.9]),
        "README a9a dsgd, T=1000": RunConfig(dataset="a9a", sketch="bernoulli", sparsity=[0.1, 0.5, 0.9], iters=1000),
        "README a9a dsgd-minibatch (tau 1,32,256), T=300": RunConfig(
            dataset="a9a", algorithm="dsgd-minibatch", sketch="rand-k", sparsity=[0.5],
            batch_size=[1, 32, 256], step=["theory", "4x"]),
    }
    if quick:
        configs = dict(list(configs.items())[:1])
    rows = []
    for label, cfg in configs.items():
        for schedule in ("geometric ratio 2 (default)", "geometric ratio 1.5 (benchopt's)", "every T/100"):
            c = RunConfig(**{**cfg.to_dict(), "log_every": None if schedule.startswith("geo") else max(1, cfg.iters // 100)})
            _engine.GEOMETRIC_RATIO = 1.5 if "1.5" in schedule else default_ratio
            problem = load_problem(c.dataset, c.objective, c.lam)
            v = resolve_shift(c.shift, problem)
            trajs = expand_trajectories(c, problem)
            steps = metric = wall = 0.0
            for i in range(0, len(trajs), c.unit_size):
                unit = trajs[i:i + c.unit_size]
                ev = np.stack([eval_sketches(t["sketch_obj"], c.eval_sketches) for t in unit], axis=-1)
                m = make_metrics(problem, v, ev)
                t0 = time.perf_counter()
                h = ALGORITHMS[c.algorithm].run(problem, c, unit, v, m, None)
                wall += time.perf_counter() - t0
                steps += float(h.times[-1])
                metric += h.metric_time
            _engine.GEOMETRIC_RATIO = default_ratio
            rows.append({"config": label, "schedule": schedule, "log_points": len(h.iterations),
                         "trajectories": len(trajs), "steps_s": round(steps, 2), "metrics_s": round(metric, 2),
                         "wall_s": round(wall, 2), "share": metric / wall})
    default = [r for r in rows if "default" in r["schedule"] and "T=300" in r["config"]
               and "minibatch" not in r["config"]]
    worst = max(r["share"] for r in default)
    return {
        "id": 8, "name": "logging share: metric evaluation / run time",
        "setup": "mast run units (library calls, engine wall time), default options but the log schedule",
        "rows": rows, "ratio": worst, "target": "<= 20% (default settings: `mast run`, T = 300)",
        "status": status(worst, 0.20, "lower"),
    }


# --- runner --------------------------------------------------------------------------

BENCHES = {1: bench_engine_vs_naive, 2: bench_floor, 3: bench_erm, 4: bench_pruning, 5: bench_scaling,
           6: bench_e2e, 7: bench_generated, 8: bench_logging}


def provenance(quick):
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        except Exception:
            return None

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "quick": quick, "numba": getattr(fused.numba, "__version__", None), "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__,
            "cpu": cpu, "cores": os.cpu_count(), "loadavg_start": list(os.getloadavg()),
            "git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(git("status", "--porcelain", "--", "mast_cli")),
            "blas": [{k: i.get(k) for k in ("internal_api", "num_threads", "version")} for i in threadpool_info()]}


def summary(r):
    i = r["id"]
    if i == 1:
        return (f"{r['ratio']:.1f}x faster with 1 thread ({r['engine_s']:.1f} s vs {r['naive_s']:.1f} s); "
                f"{r['threads']} threads {r['ratio_2_threads']:.1f}x (wall; 1 thread {r['ratio_wall_1_thread']:.1f}x "
                f"in the same wall-clock run; --threads auto = {r['threads_auto']} here); "
                f"float32 {r['ratio_float32']:.1f}x; "
                f"JIT first call {r.get('jit_first_call_cold_cpu_s', float('nan')):.1f} s CPU cold, "
                f"{r.get('jit_first_call_cached_cpu_s', float('nan')):.1f} s from the disk cache; "
                f"float64 bounds: {r['bound_float64_products_plus_exp']:.1f}x (products+exp), "
                f"{r['bound_float64']:.1f}x (exp alone), {r['ceiling_ratio_at_gemm_rate']:.1f}x "
                f"(2·nnz FMAs at the dense-GEMM rate + in-cache sigmoid)")
    if i == 2:
        return (f"{r['ratio']:.2f}x ({r['engine_step_ms']:.1f} vs {r['floor_ms']:.1f} ms); "
                f"vs floor+exp {r['ratio_vs_floor_plus_exp']:.2f}x; float32 mode {r['ratio_float32_vs_its_floor']:.2f}x "
                f"its products, {r['ratio_float32_vs_float64_floor']:.2f}x f64 floor; f64 bound {r['bound_float64']:.2f}x; "
                f"2 threads {r['ratio_2_threads']:.2f}x the 2-thread floor, {r['ratio_2_threads_vs_1_thread_floor']:.2f}x "
                f"the 1-thread floor; {r['engine_gflops']:.1f} GFLOP/s = {100 * r['fraction_of_gemm']:.0f}% of dense GEMM "
                f"({r['gemm_ceiling']['gflops']:.1f} GFLOP/s, 1 thread)")
    if i == 3:
        return "; ".join(f"{x['dataset']} {x['ratio']:.2f}x ({x['ours_s']:.3f} vs {x['sklearn_s']:.3f} s, "
                         f"|g| {x['ours_grad_norm']:.0e} vs {x['sklearn_grad_norm']:.0e})" for x in r["rows"])
    if i == 4:
        return (f"{r['ratio']:.1f}x ({r['one_product_ms']:.0f} vs {r['loop_ms']:.0f} ms), identical={r['identical']}; "
                f"bound {r['bound']:.1f}x")
    if i == 5:
        return ("us/traj-step R=" + ", ".join(f"{x['R']}: {x['per_trajectory_step_us']:.0f}" for x in r["by_R"])
                + "; ns/nnz " + ", ".join(f"{x['dataset']}: {x['per_trajectory_step_per_nnz_ns']:.2f}" for x in r["by_n"]))
    if i == 7:
        return "; ".join(f"n={x['n']:.0e} d={x['d']:.0e} nnz={x['nnz']:.0e}: " +
                         (f"{x['per_trajectory_step_per_nnz_ns']:.2f} ns/nnz/traj-step, {x['peak_rss_mb']:.0f} MB"
                          if "error" not in x else "failed") for x in r["rows"])
    if i == 8:
        return "; ".join(f"{x['config']}, {x['schedule']}: {100 * x['share']:.0f}% ({x['log_points']} points)"
                         for x in r["rows"])
    if i == 6:
        share = r.get("metric_share_of_run_experiments")
        return (f"exit {r['exit_code']}, {r['wall_s']:.0f} s wall ({r.get('children_cpu_s', float('nan')):.0f} s CPU), "
                f"load {r.get('loadavg_start', [float('nan')])[0]:.1f} -> {r.get('loadavg_end', [float('nan')])[0]:.1f}, "
                + (f"metrics {100 * share:.0f}% of the run experiments' time, " if share is not None else "")
                + f"peak RSS {r['peak_rss_tree_mb']:.0f} MB (tree), "
                f"{r['peak_rss_largest_process_mb']:.0f} MB (largest process), "
                f"{len(r['experiments_with_results'])} experiments")
    return ""


def print_table(res):
    p = res["provenance"]
    print(f"{p['date']}, {p['cpu']}, {p['cores']} cores, load {p['loadavg_start'][0]:.1f} -> "
          f"{p.get('loadavg_end', [float('nan')])[0]:.1f}{', quick' if p['quick'] else ''}\n")
    print("| # | figure | measured | target | status |\n|---|---|---|---|---|")
    for r in res["results"]:
        load = r.get("loadavg")
        where = f" (load {load[0]:.1f}-{load[1]:.1f})" if load else ""
        print(f"| {r['id']} | {r['name']} | {summary(r)}{where} | {r['target']} | {r['status']} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="about a minute: fewer steps/reps, small end-to-end run")
    ap.add_argument("--only", default="", help="comma list of figure numbers (1-8)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results.json"))
    ap.add_argument("--table", action="store_true", help="only print the table of an existing --out file")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="time kernels by wall clock (default) or by process CPU time (shared machines)")
    ap.add_argument("--scaling-case", default=None, help=argparse.SUPPRESS)   # n,d,nnz: one case of figure 7
    a = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if a.clock == "cpu" else time.perf_counter
    if a.scaling_case:
        print(json.dumps(scaling_case(*[int(float(v)) for v in a.scaling_case.split(",")])))
        return 0
    if a.table:
        print_table(json.loads(Path(a.out).read_text()))
        return 0
    ids = [int(s) for s in a.only.split(",") if s.strip()] or list(BENCHES)
    res = {"provenance": provenance(a.quick), "results": []}
    res["provenance"]["clock"] = a.clock
    for i in ids:
        t0 = time.perf_counter()
        print(f"[{i}] {BENCHES[i].__name__} ...", file=sys.stderr, flush=True)
        load0 = list(os.getloadavg())
        r = BENCHES[i](a.quick)
        r["bench_wall_s"] = round(time.perf_counter() - t0, 1)
        r["loadavg"] = [round(load0[0], 2), round(os.getloadavg()[0], 2)]      # 1-min, before and after
        res["results"].append(r)
    res["provenance"]["loadavg_end"] = list(os.getloadavg())
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1, default=float) + "\n")
    print()
    print_table(res)
    print(f"\n(wrote {a.out}; details and what was tried: benchmarks/README.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
