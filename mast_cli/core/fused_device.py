"""A fused CUDA kernel for the logistic gradient's data products of R trajectories (issue 20).

For Y (D, R) (one trajectory per column) and the CSR matrix B (n, D) of the rows b_i a_i,
the device engines need

    G = Bᵀ w,   w = −σ(−B Y) = −1/(1 + exp(B Y))                          (mast-theory §3.1)

(∇f = G/n + ∇r).  The reference path (:class:`mast_cli.core.device.DeviceObjective` with
cuSPARSE) materializes the (n, R) margins in device memory, exponentiates them and
multiplies Bᵀ by them: four passes over n·R numbers.  The fused kernel never writes the
margins: one CUDA block is one warp (32 threads) that owns

* a chunk of C = 32 consecutive trajectory columns (lane ``l`` owns column ``c0 + l``; Y is
  stored (D, R) row-major, so the 32 lanes read 32 contiguous numbers of a row of Y: one
  coalesced 256-byte read in float64), and
* a block of consecutive rows of B (``rows_per_block``).

For each of its rows i (in order) a lane computes z = Σ_k B_ik Y_k,c (as four interleaved
partial sums, so that four loads are in flight), the factor
w = −1/(1 + eᶻ) and adds B_ik·w to its own column of a (D, C) accumulator in shared memory
(no atomics: a lane only ever touches its own column).  At the end the block writes its
accumulator to ``partial[row block]`` (NB, D, R) in global memory, and a second kernel
sums the NB partial sums of each entry in the fixed order 0, 1, …, NB−1 (in float64).  Every
sum therefore has an order fixed by (n, D, R, NB) alone: the result is bitwise reproducible
run to run, unlike cuSPARSE's SpMM.

The shared accumulator needs D·32·itemsize bytes (a9a, D = 123: 31 KB in float64); when
that does not fit the device's shared memory the engine keeps the cuSPARSE path.

:func:`plan_fused` (the launch geometry) and :func:`emulate_fused` (the same block and
partial-sum decomposition on NumPy) are pure and tested on the CPU; the ``fake`` and ``sim``
backends run the emulation when the fused path is forced (``MAST_DEVICE_KERNEL=fused``), so
the engine's use of it is tested without a GPU.

Selection: ``MAST_DEVICE_KERNEL`` = ``auto`` (default: fused on CUDA when the accumulator
fits the default 48 KB of dynamic shared memory, else cuSPARSE), ``fused`` (also with the
device's opt-in shared memory, up to ~227 KB on Hopper; the NumPy emulation on the fake
backends) or ``cusparse`` (the reference path), or the ``kernel=`` argument of
:class:`~mast_cli.core.device.DeviceObjective`.
"""

from __future__ import annotations

import os

import numpy as np

from ..io.errors import MastError

__all__ = ["KERNEL_MODES", "CHUNK", "FUSED_SOURCE", "KERNEL_NAMES", "kernel_mode", "plan_fused",
           "emulate_fused", "FusedLogistic"]

#: Values of ``MAST_DEVICE_KERNEL`` / ``kernel=``.
KERNEL_MODES = ("auto", "fused", "cusparse")
#: Trajectory columns per block (one warp).
CHUNK = 32
#: Dynamic shared memory a kernel may use without opting in (bytes).
DEFAULT_SHARED = 48 * 1024
#: Names of the two kernels in :data:`FUSED_SOURCE`.
KERNEL_NAMES = ("mast_fused_logistic_partials", "mast_fused_reduce")

#: CUDA C source of both kernels; REAL (double or float) and EXP (exp or expf) are
#: #defined in front of it for each precision.  Plain CUDA C: no templates, no atomics,
#: no warp intrinsics, no __syncthreads (a lane only reads and writes its own data).
FUSED_SOURCE = r"""
// ---------------------------------------------------------------------------------------
// mast (issue 20): fused logistic-gradient data products for R trajectories.
//   partial[rb][j][r] = sum over rows i of row block rb (in order) of  B[i][j] * w[i][r],
//   w[i][r] = -1 / (1 + exp(z[i][r])),   z[i][r] = sum over k of B[i][k] * Y[k][r].
// B is CSR (indptr, indices, data) with distinct column indices within a row (canonical CSR;
// the launcher ensures it); Y is (D, R) row-major; partial is (NB, D, R) row-major.
// Grid: (ceil(R / 32), NB) blocks of 32 threads (one warp).  Block (cx, rb) owns the
// columns 32*cx .. 32*cx + 31 and the rows rb*rows_per_block .. min(n, (rb+1)*rows_per_block) - 1.
// Dynamic shared memory: D * 32 * sizeof(REAL) bytes, acc[j * 32 + lane].
//
// Latency: the kernel is bound by the latency of the Y loads (few warps fit an SM, because
// of the accumulator), so a row's entries are handled in groups of MAST_G: the group's
// indices and values are loaded first (all at once), then its MAST_G loads of Y are issued
// together, and the next row's first group is fetched before this row's accumulation.  The
// margin of a group is summed as four interleaved partial sums in a fixed order.
// ---------------------------------------------------------------------------------------
#define MAST_G 16

extern "C" __global__ void mast_fused_logistic_partials(
    const int* __restrict__ indptr,     // (n + 1,) row pointers of B
    const int* __restrict__ indices,    // (nnz,) column index of each stored entry
    const REAL* __restrict__ data,      // (nnz,) value of each stored entry
    const REAL* __restrict__ Y,         // (D, R): Y[k * R + r]
    REAL* __restrict__ partial,         // (NB, D, R): one (D, R) slab per row block
    const int n, const int D, const int R, const int rows_per_block)
{
    extern __shared__ unsigned char mast_smem[];
    REAL* acc = (REAL*) mast_smem;                 // (D, 32): lane l owns acc[j * 32 + l]
    const int lane = threadIdx.x;                  // 0 .. 31
    const int r = blockIdx.x * 32 + lane;          // this lane's trajectory column
    const int rb = blockIdx.y;                     // this block's row block
    const bool active = (r < R);                   // the last chunk may be partial

    for (int j = 0; j < D; ++j) {
        acc[j * 32 + lane] = (REAL) 0;
    }

    const int row0 = rb * rows_per_block;
    int row1 = row0 + rows_per_block;
    if (row1 > n) {
        row1 = n;
    }

    if (active && row0 < row1) {
        const size_t Rs = (size_t) R;
        const size_t rc = (size_t) r;
        // the first group of the first row
        int nk0 = indptr[row0];
        int nk1 = indptr[row0 + 1];
        int nidx[MAST_G];
        REAL ndat[MAST_G];
        #pragma unroll
        for (int u = 0; u < MAST_G; ++u) {
            const bool in = (nk0 + u < nk1);
            nidx[u] = in ? indices[nk0 + u] : 0;
            ndat[u] = in ? data[nk0 + u] : (REAL) 0;
        }

        for (int i = row0; i < row1; ++i) {
            const int k0 = nk0;
            const int k1 = nk1;
            int idx[MAST_G];
            REAL dat[MAST_G];
            REAL yv[MAST_G];
            #pragma unroll
            for (int u = 0; u < MAST_G; ++u) {
                idx[u] = nidx[u];
                dat[u] = ndat[u];
            }
            // margin z = b_i a_i^T y_r: the first group's loads of Y, all in flight at once
            #pragma unroll
            for (int u = 0; u < MAST_G; ++u) {
                yv[u] = (k0 + u < k1) ? Y[(size_t) idx[u] * Rs + rc] : (REAL) 0;
            }
            REAL z0 = (REAL) 0, z1 = (REAL) 0, z2 = (REAL) 0, z3 = (REAL) 0;
            #pragma unroll
            for (int u = 0; u < MAST_G; u += 4) {
                z0 += dat[u] * yv[u];
                z1 += dat[u + 1] * yv[u + 1];
                z2 += dat[u + 2] * yv[u + 2];
                z3 += dat[u + 3] * yv[u + 3];
            }
            // further groups (rows with more than MAST_G entries)
            for (int kb = k0 + MAST_G; kb < k1; kb += MAST_G) {
                int gi[MAST_G];
                REAL gd[MAST_G];
                REAL gy[MAST_G];
                #pragma unroll
                for (int u = 0; u < MAST_G; ++u) {
                    const bool in = (kb + u < k1);
                    gi[u] = in ? indices[kb + u] : 0;
                    gd[u] = in ? data[kb + u] : (REAL) 0;
                }
                #pragma unroll
                for (int u = 0; u < MAST_G; ++u) {
                    gy[u] = (kb + u < k1) ? Y[(size_t) gi[u] * Rs + rc] : (REAL) 0;
                }
                #pragma unroll
                for (int u = 0; u < MAST_G; u += 4) {
                    z0 += gd[u] * gy[u];
                    z1 += gd[u + 1] * gy[u + 1];
                    z2 += gd[u + 2] * gy[u + 2];
                    z3 += gd[u + 3] * gy[u + 3];
                }
            }
            // fetch the next row's first group now: its latency hides behind exp and the
            // accumulation below
            if (i + 1 < row1) {
                nk0 = k1;
                nk1 = indptr[i + 2];
                #pragma unroll
                for (int u = 0; u < MAST_G; ++u) {
                    const bool in = (nk0 + u < nk1);
                    nidx[u] = in ? indices[nk0 + u] : 0;
                    ndat[u] = in ? data[nk0 + u] : (REAL) 0;
                }
            }
            const REAL z = (z0 + z1) + (z2 + z3);
            // -sigma(-z) = -1 / (1 + e^z)  (e^z = inf gives -0, as on the CPU)
            const REAL w = (REAL) (-1) / ((REAL) 1 + EXP(z));
            // acc[:, lane] += w * (b_i a_i): the indices of a row are distinct, so a group's
            // accumulator entries are all read, then all written
            REAL av[MAST_G];
            #pragma unroll
            for (int u = 0; u < MAST_G; ++u) {
                av[u] = (k0 + u < k1) ? acc[idx[u] * 32 + lane] : (REAL) 0;
            }
            #pragma unroll
            for (int u = 0; u < MAST_G; ++u) {
                if (k0 + u < k1) {
                    acc[idx[u] * 32 + lane] = av[u] + dat[u] * w;
                }
            }
            for (int kb = k0 + MAST_G; kb < k1; kb += MAST_G) {
                int gi[MAST_G];
                REAL gd[MAST_G];
                REAL ga[MAST_G];
                #pragma unroll
                for (int u = 0; u < MAST_G; ++u) {
                    const bool in = (kb + u < k1);
                    gi[u] = in ? indices[kb + u] : 0;
                    gd[u] = in ? data[kb + u] : (REAL) 0;
                }
                #pragma unroll
                for (int u = 0; u < MAST_G; ++u) {
                    ga[u] = (kb + u < k1) ? acc[gi[u] * 32 + lane] : (REAL) 0;
                }
                #pragma unroll
                for (int u = 0; u < MAST_G; ++u) {
                    if (kb + u < k1) {
                        acc[gi[u] * 32 + lane] = ga[u] + gd[u] * w;
                    }
                }
            }
        }
    }

    if (active) {
        REAL* out = partial + (size_t) rb * (size_t) D * (size_t) R;
        for (int j = 0; j < D; ++j) {
            out[(size_t) j * (size_t) R + (size_t) r] = acc[j * 32 + lane];
        }
    }
}

// G[e] = sum over rb = 0, 1, ..., NB - 1 of partial[rb * size + e], in float64 and in this
// fixed order (deterministic).  size = D * R; one thread per entry e.
extern "C" __global__ void mast_fused_reduce(
    const REAL* __restrict__ partial,   // (NB, D, R)
    double* __restrict__ G,             // (D, R)
    const int NB, const long long size)
{
    const long long e = (long long) blockIdx.x * (long long) blockDim.x + (long long) threadIdx.x;
    if (e >= size) {
        return;
    }
    double s = 0.0;
    for (int b = 0; b < NB; ++b) {
        s += (double) partial[(long long) b * size + e];
    }
    G[e] = s;
}
"""


def kernel_mode(mode=None):
    """The kernel selection: ``mode``, else ``MAST_DEVICE_KERNEL``, else ``'auto'``.

    Raises
    ------
    MastError
        For a value outside :data:`KERNEL_MODES`.
    """
    m = mode if mode is not None else os.environ.get("MAST_DEVICE_KERNEL", "auto")
    m = str(m).strip().lower() or "auto"
    if m not in KERNEL_MODES:
        raise MastError(f"MAST_DEVICE_KERNEL={m} is not a kernel mode; choose one of {', '.join(KERNEL_MODES)}")
    return m


def plan_fused(n, D, R, itemsize, sms=132, shared_per_sm=228 * 1024, shared_limit=DEFAULT_SHARED,
               waves=2, min_rows=64):
    """Launch geometry of the fused kernel, or ``None`` when its accumulator does not fit.

    Parameters
    ----------
    n, D : int
        Rows and columns of B.
    R : int
        Trajectories (columns of Y).
    itemsize : int
        8 (float64) or 4 (float32).
    sms : int
        Streaming multiprocessors of the device.
    shared_per_sm : int
        Shared memory of one multiprocessor (bytes).
    shared_limit : int
        Most dynamic shared memory one block may use (48 KB, or the opt-in maximum).
    waves : int
        Blocks launched ≈ ``waves`` × the blocks resident at once.
    min_rows : int
        Fewest rows per row block.

    Returns
    -------
    dict or None
        ``chunks`` (grid x), ``blocks`` NB (grid y), ``rows_per_block``, ``shared`` (bytes
        per block), ``resident`` (blocks per SM).  NB ≤ n / (2D), so that the (NB, D, R)
        partial sums take at most half the (n, R) margins they replace.
    """
    shared = int(D) * CHUNK * int(itemsize)
    if D < 1 or n < 1 or R < 1 or shared > shared_limit:
        return None
    resident = max(1, min(32, int(shared_per_sm) // (shared + 1024)))   # 1 KB reserved per block
    chunks = -(-int(R) // CHUNK)
    want = -(-waves * int(sms) * resident // chunks)
    cap = max(1, min(int(n) // (2 * int(D)), -(-int(n) // min_rows)))
    nb = max(1, min(want, cap))
    rows = -(-int(n) // nb)
    nb = -(-int(n) // rows)                    # no empty row block
    return {"chunks": chunks, "blocks": nb, "rows_per_block": rows, "shared": shared, "resident": resident}


def emulate_fused(indptr, indices, data, Y, rows_per_block, dtype=np.float64):
    """The fused kernel's decomposition on NumPy: per row block, margins → w → Bᵀw partial
    sums (in ``dtype``), then the partial sums added in block order in float64.

    The rows of a block are handled with vectorized products (not lane by lane), so the sums
    inside a block may be ordered differently from the kernel's; the decomposition (which
    rows go into which partial sum, the fixed final order, the dtypes) is the kernel's.

    Parameters
    ----------
    indptr, indices, data : ndarray
        CSR arrays of B (n, D).
    Y : ndarray (D, R)
    rows_per_block : int

    Returns
    -------
    ndarray (D, R), float64
    """
    import scipy.sparse as sp

    dtype = np.dtype(dtype)
    n = len(indptr) - 1
    D, R = Y.shape
    B = sp.csr_matrix((np.asarray(data, dtype=dtype), np.asarray(indices), np.asarray(indptr)), shape=(n, D))
    Yd = np.asarray(Y, dtype=dtype)
    G = np.zeros((D, R))
    for a in range(0, n, rows_per_block):
        Bb = B[a:min(n, a + rows_per_block)]
        z = Bb @ Yd
        w = -1.0 / (1.0 + np.exp(z))
        G += np.asarray(Bb.T @ w.astype(dtype, copy=False), dtype=np.float64)
    return G


_MODULES = {}


def _kernels(xp, dtype):
    """The two compiled kernels for ``dtype`` (cached per process)."""
    key = np.dtype(dtype).name
    if key not in _MODULES:
        real, exp = ("double", "exp") if key == "float64" else ("float", "expf")
        src = f"#define REAL {real}\n#define EXP {exp}\n" + FUSED_SOURCE
        kernels = tuple(xp.RawKernel(src, name) for name in KERNEL_NAMES)
        try:                      # a hint: prefer shared memory over L1 (more resident blocks)
            kernels[0].preferred_shared_memory_carveout = 100
        except Exception:  # noqa: BLE001 - an old CuPy or driver: keep the default split
            pass
        _MODULES[key] = kernels
    return _MODULES[key]


def _device_limits(xp):
    """(SMs, shared bytes per SM, opt-in shared bytes per block) of the current device."""
    try:
        props = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)
        return (int(props.get("multiProcessorCount", 132)), int(props.get("sharedMemPerMultiprocessor", 228 * 1024)),
                int(props.get("sharedMemPerBlockOptin", DEFAULT_SHARED)))
    except Exception:  # noqa: BLE001 - an old CuPy without these fields: Hopper-like defaults
        return 132, 228 * 1024, DEFAULT_SHARED


class FusedLogistic:
    """Bᵀ(−σ(−B Y)) for Y (D, R) by the fused kernel (CUDA) or its emulation (NumPy backends).

    Parameters
    ----------
    B : backend CSR matrix (n, D)
        In the dtype of the products (``cupyx.scipy.sparse.csr_matrix`` on CUDA).
    backend : Backend
    dtype : numpy.float64 or numpy.float32
    forced : bool
        True when ``fused`` was asked for explicitly (opt-in shared memory allowed).

    Use :meth:`create`, which returns ``None`` when the fused path does not apply.
    """

    def __init__(self, B, backend, dtype, forced=False):
        self.B, self.backend, self.xp = B, backend, backend.xp
        self.dtype = np.dtype(dtype)
        self.n, self.D = B.shape
        self.forced = forced
        self.cuda = backend.name == "cuda"
        if self.cuda:
            self.sms, self.shared_per_sm, optin = _device_limits(self.xp)
            self.shared_limit = max(DEFAULT_SHARED, optin) if forced else DEFAULT_SHARED
        else:                     # the NumPy backends pose as an H200 (227 KB opt-in)
            self.sms, self.shared_per_sm = 132, 228 * 1024
            self.shared_limit = 227 * 1024 if forced else DEFAULT_SHARED
        xp = self.xp
        if not getattr(B, "has_canonical_format", False):   # the kernel needs distinct indices per row
            B = B.copy()
            B.sum_duplicates()
            self.B = B
        self.indptr = xp.ascontiguousarray(B.indptr, dtype=xp.int32)
        self.indices = xp.ascontiguousarray(B.indices, dtype=xp.int32)
        self.data = xp.ascontiguousarray(B.data, dtype=self.dtype)

    @classmethod
    def create(cls, B, backend, dtype, mode=None, what="the data products", strict=True):
        """A :class:`FusedLogistic` when the mode and the device allow it, else ``None``.

        ``auto``: on CUDA only, when the accumulator fits 48 KB.  ``fused``: on CUDA (opt-in
        shared memory allowed) and on the NumPy test backends (the emulation).

        Raises
        ------
        MastError
            ``fused`` forced but the accumulator does not fit the device's shared memory
            (with ``strict``; otherwise ``None``: the cuSPARSE path).
        """
        mode = kernel_mode(mode)
        if mode == "cusparse" or (mode == "auto" and backend.name != "cuda"):
            return None
        f = cls(B, backend, dtype, forced=(mode == "fused"))
        if f.plan(CHUNK) is None:
            if mode == "fused" and strict:
                raise MastError(f"MAST_DEVICE_KERNEL=fused: {what} need {f.D * CHUNK * f.dtype.itemsize} bytes of "
                                f"shared memory per block, the device allows {f.shared_limit}; use cusparse")
            return None
        return f

    def plan(self, R):
        """:func:`plan_fused` for R columns on this device."""
        return plan_fused(self.n, self.D, R, self.dtype.itemsize, self.sms, self.shared_per_sm, self.shared_limit)

    def __call__(self, Y):
        """G = Bᵀ(−σ(−B Y)), float64 (D, R), for Y (D, R) (any float dtype; cast here)."""
        xp = self.xp
        R = Y.shape[1]
        p = self.plan(R)
        if not self.cuda:
            return emulate_fused(self.indptr, self.indices, self.data, np.asarray(Y), p["rows_per_block"], self.dtype)
        Yc = xp.ascontiguousarray(Y, dtype=self.dtype)
        partials, reduce = _kernels(xp, self.dtype)
        if p["shared"] > DEFAULT_SHARED:
            partials.max_dynamic_shared_size_bytes = p["shared"]
        part = xp.empty((p["blocks"], self.D, R), dtype=self.dtype)
        partials((p["chunks"], p["blocks"]), (CHUNK,),
                 (self.indptr, self.indices, self.data, Yc, part,
                  np.int32(self.n), np.int32(self.D), np.int32(R), np.int32(p["rows_per_block"])),
                 shared_mem=p["shared"])
        G = xp.empty((self.D, R), dtype=xp.float64)
        size = self.D * R
        reduce((-(-size // 256),), (256,), (part, G, np.int32(p["blocks"]), np.int64(size)))
        return G
