#!/usr/bin/env bash
# make gpu-check: the GPU-vs-CPU agreement tests and the device timing table, unattended.
#
#   1. is there an NVIDIA GPU?  If not: one line "gpu-check: no GPU ..." and exit 3 at once.
#   2. a Python with CuPy: .venv/bin/python if it has CuPy, else python3 (with this checkout on
#      PYTHONPATH, no install needed); if neither has CuPy, `pip install cupy-cuda12x` once
#      (MAST_GPU_NO_INSTALL=1 skips that); still none: exit 4.
#   3. pytest -m gpu tests/test_device.py (timeout 240 s)         -> gpu_tests.log
#   4. benchmarks/gpu_bench.py (timeout 420 s)                     -> benchmarks/gpu_results.{md,json}
# Everything is also copied to $OUT when that is set (the device machine's return folder).
# Exit 0 only when the tests pass and the table was written.  About 3-6 minutes on one H200.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
say() { echo "gpu-check: $*"; }
export PYTHONUNBUFFERED=1 MAST_OFFLINE=1

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
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
say "python $PY ($("$PY" -c 'import cupy, numpy; print("cupy", cupy.__version__, "numpy", numpy.__version__)'))"

LOGDIR=${OUT:-$ROOT/benchmarks}
mkdir -p "$LOGDIR"
say "agreement tests (pytest -m gpu tests/test_device.py)"
timeout 240 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/test_device.py -rs 2>&1 | tee "$LOGDIR/gpu_tests.log" | tail -15
test_rc=${PIPESTATUS[0]}
say "tests exit $test_rc"

say "timing table (benchmarks/gpu_bench.py)"
timeout 420 "$PY" benchmarks/gpu_bench.py --out benchmarks 2>&1 | tee "$LOGDIR/gpu_bench.log"
bench_rc=${PIPESTATUS[0]}
if [ -n "${OUT:-}" ]; then cp -f benchmarks/gpu_results.md benchmarks/gpu_results.json "$OUT/" 2>/dev/null; fi
say "bench exit $bench_rc"
[ "$test_rc" = 0 ] && [ "$bench_rc" = 0 ] && { say "OK"; exit 0; }
say "FAILED (tests $test_rc, bench $bench_rc; a timeout is 124)"
exit 1
