"""The fused CUDA kernel of the device engine (mast_cli/core/fused_device.py), tested on the CPU.

* the launch geometry (:func:`plan_fused`) covers every row and column exactly once;
* the block / partial-sum decomposition (:func:`emulate_fused`) equals Bᵀ(−σ(−BY)) computed
  directly (an independent reference: SciPy products of the whole matrix);
* the CUDA C source itself: compiled for sm_90 with nvcc when nvcc is installed, and compiled
  with g++ (CUDA keywords defined away, the grid run as loops: a lane only touches its own
  data, so running lanes one after another is a valid schedule) and executed on the CPU
  against the same reference;
* the engines take the fused path when forced (``MAST_DEVICE_KERNEL=fused``) on the NumPy
  backends and agree with the cuSPARSE-path engines;
* on a GPU (``-m gpu``): fused = cuSPARSE path to 1e-12, and bitwise reproducible.
"""

import ctypes
import re
import shutil
import subprocess

import numpy as np
import pytest
import scipy.sparse as sp

from mast_cli.algorithms.device import distributed_device, dsgd_device, l_svrdsg_device
from mast_cli.core.backend import fake_backend, sim_backend
from mast_cli.core.device import DeviceObjective
from mast_cli.core.fused_device import (CHUNK, FUSED_SOURCE, KERNEL_NAMES, FusedLogistic, emulate_fused,
                                        kernel_mode, plan_fused)
from mast_cli.core.sketches import Bernoulli, Identity
from mast_cli.io.errors import MastError
from tests.conftest import cuda_backend


def _reference(B, Y):
    """Bᵀ(−1/(1 + exp(B Y))) with whole-matrix SciPy products, float64."""
    return np.asarray(B.T @ (-1.0 / (1.0 + np.exp(B @ Y))))


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _random_csr(rng, n, D, density=0.2):
    B = sp.random(n, D, density=density, random_state=np.random.RandomState(int(rng.integers(1 << 30))),
                  format="csr")
    B.data = rng.choice([-1.0, 1.0], B.nnz) * (0.5 + B.data)
    return B


# --- geometry --------------------------------------------------------------------------------

@pytest.mark.parametrize("n,D,R", [(32561, 123, 10000), (32561, 123, 100), (1605, 119, 33), (50, 3, 1),
                                   (10, 3, 64)])
def test_plan_covers_rows_and_columns(n, D, R):
    p = plan_fused(n, D, R, 8)
    assert p["chunks"] * CHUNK >= R > (p["chunks"] - 1) * CHUNK
    assert p["blocks"] * p["rows_per_block"] >= n > (p["blocks"] - 1) * p["rows_per_block"]
    assert p["shared"] == D * CHUNK * 8
    # the partial sums take at most half the margins they replace (or one block)
    assert p["blocks"] == 1 or p["blocks"] * D <= n // 2


def test_plan_refuses_what_does_not_fit():
    assert plan_fused(1000, 192, 10, 8) is not None          # 192·32·8 = 48 KB: fits
    assert plan_fused(1000, 193, 10, 8) is None
    assert plan_fused(1000, 193, 10, 4) is not None          # float32: half the bytes
    assert plan_fused(1000, 800, 10, 8, shared_limit=227 * 1024) is not None
    p = plan_fused(32561, 123, 10000, 8)
    assert p["resident"] == 228 * 1024 // (123 * 32 * 8 + 1024)


def test_kernel_mode(monkeypatch):
    monkeypatch.delenv("MAST_DEVICE_KERNEL", raising=False)
    assert kernel_mode() == "auto"
    monkeypatch.setenv("MAST_DEVICE_KERNEL", "FUSED")
    assert kernel_mode() == "fused"
    assert kernel_mode("cusparse") == "cusparse"
    monkeypatch.setenv("MAST_DEVICE_KERNEL", "fast")
    with pytest.raises(MastError, match="MAST_DEVICE_KERNEL=fast"):
        kernel_mode()


# --- the decomposition on NumPy ----------------------------------------------------------------

@pytest.mark.parametrize("rows", [1, 7, 100, 10**6])
def test_emulation_equals_reference(a1a_obj, rng, rows):
    B = a1a_obj.Ab
    Y = rng.normal(size=(B.shape[1], 37)) * 0.3
    G = emulate_fused(B.indptr, B.indices, B.data, Y, rows)
    assert _rel(G, _reference(B, Y)) <= 1e-12


def test_emulation_float32(a1a_obj, rng):
    B = a1a_obj.Ab
    Y = rng.normal(size=(B.shape[1], 5)) * 0.3
    G = emulate_fused(B.indptr, B.indices, B.data, Y, 300, np.float32)
    err = _rel(G, _reference(B, Y))
    assert 1e-9 < err <= 1e-5                                    # float32 rounding, not exact


# --- the CUDA C source ------------------------------------------------------------------------

def _signature(name):
    m = re.search(r'extern "C" __global__ void ' + name + r"\((.*?)\)\s*\{", FUSED_SOURCE, re.S)
    assert m, name
    return [a for a in re.sub(r"//[^\n]*", "", m.group(1)).split(",") if a.strip()]


def test_source_is_plain_and_balanced():
    code = re.sub(r"//[^\n]*", "", FUSED_SOURCE)
    for o, c in ("{}", "()", "[]"):
        assert code.count(o) == code.count(c), o + c
    assert len(_signature(KERNEL_NAMES[0])) == 9                  # the launcher passes 9 arguments
    assert len(_signature(KERNEL_NAMES[1])) == 4                  # and 4 to the reduction
    for banned in ("atomic", "__syncthreads", "__shfl", "template"):
        assert banned not in code                                 # deterministic, plain CUDA C
    assert "REAL" in code and "EXP(" in code


def _source(real, source=FUSED_SOURCE):
    return f"#define REAL {real}\n#define EXP {'exp' if real == 'double' else 'expf'}\n" + source


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
@pytest.mark.parametrize("real", ["double", "float"])
def test_source_compiles_with_nvcc(tmp_path, real):
    src = tmp_path / "k.cu"
    src.write_text(_source(real))
    r = subprocess.run(["nvcc", "-arch=sm_90", "-ptx", str(src), "-o", str(tmp_path / "k.ptx")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    ptx = (tmp_path / "k.ptx").read_text()
    assert all(f".entry {name}" in ptx for name in KERNEL_NAMES)


# The kernel source compiled as C++ and its grid run as loops (one lane after another).
_HOST = r"""
#include <cmath>
#include <cstddef>
#include <cstring>
using std::exp;
struct mast_dim3 { unsigned x, y, z; };
static mast_dim3 threadIdx, blockIdx, blockDim;
static unsigned char mast_smem[1 << 20];
#define __global__
#define __shared__
"""
_DRIVER = r"""
extern "C" void run_partials(int gx, int gy, const int* indptr, const int* indices, const REAL* data,
                             const REAL* Y, REAL* partial, int n, int D, int R, int rows) {
    std::memset(mast_smem, 0xff, sizeof(mast_smem));   // garbage: the kernel must zero it
    blockDim.x = 32;
    for (int by = 0; by < gy; ++by)
        for (int bx = 0; bx < gx; ++bx)
            for (int l = 0; l < 32; ++l) {
                blockIdx.x = bx; blockIdx.y = by; threadIdx.x = l;
                mast_fused_logistic_partials(indptr, indices, data, Y, partial, n, D, R, rows);
            }
}
extern "C" void run_reduce(const REAL* partial, double* G, int NB, long long size) {
    blockDim.x = 256;
    for (long long b = 0; b < (size + 255) / 256; ++b)
        for (int l = 0; l < 256; ++l) {
            blockIdx.x = (unsigned) b; threadIdx.x = l;
            mast_fused_reduce(partial, G, NB, size);
        }
}
"""


def _host_library(tmp_path, real, source=FUSED_SOURCE):
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    src = tmp_path / f"k_{real}.cpp"
    src.write_text(_HOST + _source(real, source) + _DRIVER)
    lib = tmp_path / f"k_{real}.so"
    r = subprocess.run(["g++", "-O1", "-shared", "-fPIC", "-Wall", "-Werror", "-Wno-unused-variable", "-Wno-unknown-pragmas",
                        str(src), "-o", str(lib)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return ctypes.CDLL(str(lib))


def _run_host_kernel(lib, B, Y, rows, dtype):
    n, D = B.shape
    R = Y.shape[1]
    p = plan_fused(n, D, R, np.dtype(dtype).itemsize)
    nb = -(-n // rows)
    indptr = np.ascontiguousarray(B.indptr, dtype=np.int32)
    indices = np.ascontiguousarray(B.indices, dtype=np.int32)
    data = np.ascontiguousarray(B.data, dtype=dtype)
    Yc = np.ascontiguousarray(Y, dtype=dtype)
    part = np.full((nb, D, R), np.nan, dtype=dtype)
    G = np.full((D, R), np.nan)
    ptr = np.ctypeslib.as_ctypes
    lib.run_partials(ctypes.c_int(p["chunks"]), ctypes.c_int(nb), ptr(indptr), ptr(indices), ptr(data), ptr(Yc),
                     ptr(part.reshape(-1)), ctypes.c_int(n), ctypes.c_int(D), ctypes.c_int(R), ctypes.c_int(rows))
    lib.run_reduce(ptr(part.reshape(-1)), ptr(G.reshape(-1)), ctypes.c_int(nb), ctypes.c_longlong(D * R))
    return G


@pytest.mark.parametrize("R,rows,density", [(1, 4, 0.2), (40, 7, 0.2), (64, 1000, 0.2), (33, 5, 0.9)])
def test_kernel_source_runs_on_the_cpu(tmp_path, rng, R, rows, density):
    lib = _host_library(tmp_path, "double")
    B = _random_csr(rng, 60, 9, density)
    B = B.tolil()
    B[3] = 0                                                  # an empty row: w = −1/2, adds nothing
    B = B.tocsr()
    B.eliminate_zeros()
    assert B.indptr[4] == B.indptr[3]
    Y = rng.normal(size=(9, R))
    G = _run_host_kernel(lib, B, Y, rows, np.float64)
    ref = _reference(B, Y)
    assert _rel(G, ref) <= 1e-13
    assert _rel(G, emulate_fused(B.indptr, B.indices, B.data, Y, rows)) <= 1e-13


@pytest.mark.parametrize("D,density", [(50, 0.9), (37, 0.45)])
def test_kernel_source_long_rows_on_the_cpu(tmp_path, rng, D, density):
    """Rows with more entries than one group (MAST_G = 16): the further-group loops."""
    lib = _host_library(tmp_path, "double")
    B = _random_csr(rng, 40, D, density)
    assert np.diff(B.indptr).max() > 16                       # two groups or more in some rows
    Y = rng.normal(size=(D, 35))
    assert _rel(_run_host_kernel(lib, B, Y, 6, np.float64), _reference(B, Y)) <= 1e-13


def test_kernel_source_float_on_the_cpu(tmp_path, rng):
    lib = _host_library(tmp_path, "float")
    B = _random_csr(rng, 80, 6)
    Y = rng.normal(size=(6, 45))
    G = _run_host_kernel(lib, B, Y, 9, np.float32)
    assert 0 < _rel(G, _reference(B, Y)) <= 1e-5


def test_kernel_source_catches_a_planted_bug(tmp_path, rng):
    """The host run fails when the kernel is wrong (a check that cannot fail is a defect)."""
    bad = FUSED_SOURCE.replace("av[u] + dat[u] * w", "av[u] + w")
    assert bad != FUSED_SOURCE
    lib = _host_library(tmp_path, "double", bad)
    B = _random_csr(rng, 30, 5)
    Y = rng.normal(size=(5, 8))
    assert _rel(_run_host_kernel(lib, B, Y, 7, np.float64), _reference(B, Y)) > 1e-3


# --- the engines with the fused path forced on the NumPy backends --------------------------------

@pytest.mark.parametrize("make", [fake_backend, sim_backend])
def test_forced_fused_engines_agree(a1a_obj, monkeypatch, make):
    be = make()
    R = 6
    sk = [Bernoulli(a1a_obj.d, 0.5)] * R
    runs = {}
    for mode in ("cusparse", "fused"):
        monkeypatch.setenv("MAST_DEVICE_KERNEL", mode)
        dobj = DeviceObjective(a1a_obj, be)
        assert dobj.kernel == mode
        parts = np.array_split(np.arange(a1a_obj.n), 3)
        runs[mode] = [dsgd_device(dobj, sk, [1.0] * R, range(R), 8, backend=be).x_final,
                      distributed_device(dobj, parts, sk, [1.0] * R, range(R), 5, backend=be).x_final,
                      l_svrdsg_device(dobj, Bernoulli(a1a_obj.d, 0.5).sample(np.random.default_rng(0), 3),
                                      [0.5] * R, range(R), 5, 0.3, backend=be).x_final]
    for a, b in zip(runs["cusparse"], runs["fused"]):
        assert np.max(np.abs(a - b)) <= 1e-12 * max(1.0, np.max(np.abs(a)))


def test_auto_is_cusparse_off_cuda(a1a_obj, monkeypatch):
    monkeypatch.delenv("MAST_DEVICE_KERNEL", raising=False)
    assert DeviceObjective(a1a_obj, fake_backend()).kernel == "cusparse"
    assert FusedLogistic.create(a1a_obj.Ab, sim_backend(), np.float64) is None


def test_forced_fused_refuses_a_too_wide_problem(monkeypatch):
    from mast_cli.core.objective import LogisticL2

    rng = np.random.default_rng(0)
    X = sp.random(50, 1000, density=0.1, random_state=np.random.RandomState(0), format="csr")
    obj = LogisticL2(X, rng.choice([-1.0, 1.0], 50), 1e-3)
    with pytest.raises(MastError, match="shared memory"):
        DeviceObjective(obj, fake_backend(), kernel="fused")
    assert DeviceObjective(obj, fake_backend(), np.float32, kernel="fused").kernel == "fused"


def test_identity_fused_equals_cpu(a1a_obj, monkeypatch):
    from mast_cli.algorithms import dsgd
    from mast_cli.core import fused

    monkeypatch.setattr(fused, "ENABLED", False)
    monkeypatch.setenv("MAST_DEVICE_KERNEL", "fused")
    ident = [Identity(a1a_obj.d)] * 3
    g = 1.0 / a1a_obj.smoothness()
    ref = dsgd(a1a_obj, ident, [g] * 3, range(3), 30)
    dev = dsgd_device(a1a_obj, ident, [g] * 3, range(3), 30, backend=fake_backend())
    assert np.max(np.abs(ref.x_final - dev.x_final)) <= 1e-12


# --- on a GPU -------------------------------------------------------------------------------



@pytest.mark.gpu
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_gpu_fused_equals_cusparse_and_is_reproducible(a1a_obj, rng, dtype, tol):
    be = cuda_backend()
    fu = DeviceObjective(a1a_obj, be, dtype, kernel="fused")
    cs = DeviceObjective(a1a_obj, be, dtype, kernel="cusparse")
    assert fu.kernel == "fused" and cs.kernel == "cusparse"
    for R in (1, 33, 1000):
        Y = be.xp.asarray(rng.normal(size=(a1a_obj.d, R)) * 0.3)
        g1, g2, g0 = be.to_host(fu.grad(Y)), be.to_host(fu.grad(Y)), be.to_host(cs.grad(Y))
        assert np.array_equal(g1, g2)                          # fixed summation order
        assert _rel(g1, g0) <= tol
        if dtype == np.float64:
            Yh = be.to_host(Y)
            ref = _reference(a1a_obj.Ab, Yh) / a1a_obj.n + a1a_obj.penalty.grad(Yh)
            assert _rel(g1, ref) <= 1e-12


# --- the GPU check script's bench, dry run on the fake backend --------------------------------

def test_gpu_bench_dry_run(tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_bench.py"
    spec = importlib.util.spec_from_file_location("gpu_bench", path)
    gb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gb)
    common = ["--backend", "fake", "--dataset", "a1a", "--out", str(tmp_path)]
    assert gb.main(common + ["--check-only"]) == 0
    check = json.loads((tmp_path / "fused_check.json").read_text())
    assert len(check) == 6 and all(c["ok"] for c in check)
    assert gb.main(common + ["--R", "10", "--steps", "1", "--check-from", str(tmp_path / "fused_check.json")]) == 0
    res = json.loads((tmp_path / "gpu_results.json").read_text())
    kinds = {(r["algorithm"], r["kernel"]) for r in res["rows"]}
    assert {("alg1-I", "fused"), ("alg1-I", "cusparse"), ("alg2", "fused"), ("alg3", "auto"),
            ("alg1-II", "auto")} <= kinds
    assert all("us" in r for r in res["rows"]), [r for r in res["rows"] if "us" not in r]
    md = (tmp_path / "gpu_results.md").read_text()
    assert "Fused kernel vs cuSPARSE path" in md and "| alg1-I | fused | 10 |" in md
