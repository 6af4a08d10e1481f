#!/usr/bin/env bash
# make gpu-check: the fused-kernel check, the device timing table and the GPU-vs-CPU agreement
# tests, unattended, in about 3.5 minutes on one H200.
#
#   1. is there an NVIDIA GPU?  If not: one line "gpu-check: no GPU ..." and exit 3 at once.
#   2. a Python with CuPy: .venv/bin/python if it has CuPy, else python3 (with this checkout on
#      PYTHONPATH, no install needed); if neither has CuPy, `pip install cupy-cuda12x` once
#      (MAST_GPU_NO_INSTALL=1 skips that); still none: exit 4.
#   3. gpu_bench.py --check-only (own process, timeout 45 s): the fused CUDA kernel against the
#      cuSPARSE path (float64 bound 1e-12, float32 1e-5; bitwise reproducibility)
#                                                        -> RESULTS/fused_check.{json,log}
#      If it fails, the rest runs with MAST_DEVICE_KERNEL=cusparse and without the fused rows.
#   4. benchmarks/gpu_bench.py (timeout 120 s; it starts no measurement after 75 s): µs per
#      trajectory-step for both kernels               -> RESULTS/gpu_results.{md,json}, gpu_bench.log
#   5. pytest -m gpu tests/test_fused_device.py tests/test_device.py (timeout 60 s, SIGINT) -> RESULTS/gpu_tests.log
# RESULTS is $GPU_OUT, else $OUT (the device machine's return folder), else benchmarks/gpu_results.
# Every line of progress carries the UTC time.  MAST_GPU_DRY_RUN=1 runs the same flow without a GPU
# (fake NumPy backend, a1a, tiny R; the gpu tests skip) to check the script itself.  Exit 0 only when the tests pass and the table
# was written with no error.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
START=$(date +%s)
say() { echo "gpu-check $(date -u +%H:%M:%S) +$(( $(date +%s) - START ))s: $*"; }
export PYTHONUNBUFFERED=1 MAST_OFFLINE=1

DRY=()
if [ "${MAST_GPU_DRY_RUN:-0}" = "1" ]; then   # the script's flow on NumPy (fake backend, a1a, tiny R)
  say "dry run: no GPU needed, fake backend"
  PY="$ROOT/.venv/bin/python"; [ -x "$PY" ] || PY=$(command -v python3)
  DRY=(--backend fake --dataset a1a --R 10,40 --steps 2)
else
  if ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; } && [ ! -e /dev/nvidia0 ]; then
    say "no GPU: nvidia-smi finds no NVIDIA device and /dev/nvidia0 does not exist; nothing measured"
    exit 3
  fi
  nvidia-smi -L 2>/dev/null | head -4

  has_cupy() { timeout 120 "$1" -c "import cupy, sys; sys.exit(0 if cupy.cuda.runtime.getDeviceCount() > 0 else 1)" >/dev/null 2>&1; }
  PY=""
  for cand in "$ROOT/.venv/bin/python" "$(command -v python3)"; do
    if [ -n "$cand" ] && [ -x "$cand" ] && has_cupy "$cand"; then PY=$cand; break; fi
  done
  if [ -z "$PY" ] && [ "${MAST_GPU_NO_INSTALL:-0}" != "1" ]; then
    cand="$ROOT/.venv/bin/python"; [ -x "$cand" ] || cand=$(command -v python3)
    say "CuPy missing: pip install cupy-cuda12x into $cand (timeout 300 s)"
    timeout 300 "$cand" -m pip install -q cupy-cuda12x && has_cupy "$cand" && PY=$cand
  fi
  if [ -z "$PY" ]; then
    say "no usable CuPy (pip install '.[gpu]', or a cupy-cudaXXx wheel matching the driver); nothing measured"
    exit 4
  fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
say "python $PY ($("$PY" -c 'import numpy; print("numpy", numpy.__version__)' 2>&1 | tail -1); $("$PY" -c 'import cupy; print("cupy", cupy.__version__)' 2>&1 | tail -1))"
say "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"

RESULTS=${GPU_OUT:-${OUT:-$ROOT/benchmarks/gpu_results}}
mkdir -p "$RESULTS"
say "results go to $RESULTS"

say "fused-kernel check against the cuSPARSE path (gpu_bench.py --check-only, timeout 45 s)"
rm -f "$RESULTS/fused_check.json"
timeout 45 "$PY" benchmarks/gpu_bench.py --check-only --out "$RESULTS" ${DRY[@]+"${DRY[@]}"} 2>&1 | tee "$RESULTS/fused_check.log"
check_rc=${PIPESTATUS[0]}
if [ "$check_rc" = 0 ]; then
  BENCH_EXTRA=(--check-from "$RESULTS/fused_check.json")
else   # a broken kernel must not poison the CUDA context of the cuSPARSE timings and tests
  say "fused check FAILED (exit $check_rc): timing the cuSPARSE path only (MAST_DEVICE_KERNEL=cusparse)"
  export MAST_DEVICE_KERNEL=cusparse
  BENCH_EXTRA=(--no-fused)
  [ -f "$RESULTS/fused_check.json" ] && BENCH_EXTRA+=(--check-from "$RESULTS/fused_check.json")
fi

say "timing table (benchmarks/gpu_bench.py, timeout 120 s; no new measurement after 75 s)"
timeout 120 "$PY" benchmarks/gpu_bench.py --out "$RESULTS" --total-s 75 "${BENCH_EXTRA[@]}" ${DRY[@]+"${DRY[@]}"} 2>&1 \
  | tee "$RESULTS/gpu_bench.log"
bench_rc=${PIPESTATUS[0]}
say "bench exit $bench_rc"

say "agreement tests (pytest -m gpu tests/test_fused_device.py tests/test_device.py, timeout 60 s)"
# SIGINT at the timeout: pytest stops and still prints its summary of what ran
timeout -s INT -k 10 60 "$PY" -m pytest -v -p no:cacheprovider -m gpu tests/test_fused_device.py tests/test_device.py \
  -rs --durations=5 > "$RESULTS/gpu_tests.log" 2>&1
test_rc=$?
grep -E "PASSED|FAILED|ERROR|SKIPPED|passed|failed" "$RESULTS/gpu_tests.log" | tail -25
say "tests exit $test_rc"

ls -la "$RESULTS"
[ "$test_rc" = 0 ] && [ "$bench_rc" = 0 ] && [ "$check_rc" = 0 ] && { say "OK"; exit 0; }
say "FAILED (fused check $check_rc, bench $bench_rc, tests $test_rc; a timeout is 124)"
exit 1
