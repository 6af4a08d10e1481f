"""Fused numba kernels for the batched logistic pieces (the engine's hot loops).

One pass over the rows of a sparse matrix ``Ab`` (rows pre-multiplied by their labels,
CSR arrays ``ptr, idx, val``) does, per row block and for all R columns of Y at once:

* the margins z_i = ⟨ab_i, y_r⟩ (each a sum over the row's non-zeros in storage order,
  exactly as scipy's ``csr_matvecs`` does it);
* the logistic pieces: w = 1/(1 + eᶻ) (the negated sigmoid σ(−z) of mast-theory §3.2) and/or
  the loss log(1 + e⁻ᶻ), both from one exp per entry, u = e^−|z| (never overflows):
  range reduction by eighths of ln 2, an 8-entry table 2^(j/8) read by a register permute
  (AVX-512 ``vpermpd``, an llvmlite intrinsic: :func:`_em_intrinsic`) and a degree-7
  polynomial, ≤ 1 ulp; the kernels hold 2⁶⁴u (never subnormal) and w = 2⁶⁴u/(2⁶⁴u + 2⁶⁴)
  for z > 0, 2⁶⁴/(2⁶⁴u + 2⁶⁴) otherwise: one correctly rounded division, ≤ 2 ulp, subnormal
  weights rounded once.  With the loss the gradient reuses the loss pass's exps.  Loss
  totals take one logarithm per run of :data:`LOSS_ROWS` rows, of the product of the rows'
  1 + u (accumulated as q ← q + u(1 + q), q = product − 1, so tiny losses keep their
  precision; log1p by range reduction + polynomial), not one per row;
* the transposed product Σ_i w_i ab_i accumulated into the d × R output by blocks of
  :data:`SCATTER_ROWS` rows: a blocked CSC of Ab, built once per matrix and cached
  (:func:`_blocked`, :func:`_prepared`), gives each block's non-zeros grouped by column;
  a column's terms in the block are summed (rows in order, from 0.0) and the sum added to
  the output row once, block after block.  The order differs from scipy's ``csc_matvecs``
  (sums of block partial sums): ~1e-16 relative.

Both products run over panels of up to 16 vectors of 8 columns (:func:`_vectors`: R = 100,
padded to 104, is one panel of 13) whose sums stay in AVX vector registers across a row's
non-zeros (margins) or a column segment's non-zeros (transposed product): a small llvmlite
intrinsic (:func:`_panel_intrinsic`), because numba's loop vectorizer reloads and stores them
at every non-zero; each lane does the scalar loop's operations in its order, so the bits are
those of the plain loops.  Column counts of 2 or more are padded to a multiple of 8 with zero
columns (:func:`_padded_width`), and every array the panels read or write starts on a
64-byte boundary (:func:`_aligned_zeros`, :func:`_buffer`; numpy's 16-byte alignment made
each vector load straddle two cache lines: ~1.4× the time).  Wide batches are run by slices
of at most :data:`PANEL_COLS` columns, one panel each (the slice's iterate block and block
buffers then stay in cache).  One column (R = 1) takes
scipy's ``csr_matvec`` for the margins (the same operations in the same order) and a scalar
blocked transposed product (:func:`_scatter1`, the same order as a batch's column).

Threads: a matrix of at least :data:`ROW_SPLIT_MIN` rows is cut into two row chunks
(:func:`_row_chunks`, at a multiple of :data:`LOSS_ROWS`), each chunk's sums are computed
whole and the two are then added; with two threads each streams one chunk with every column
in full-width panels.  More threads split the R columns into groups (columns are
independent).  The chunks depend on the data only, and every output column is computed
with the same operations in the same order for any number of threads or groups, so results
do not depend on the thread count nor on the other columns of the batch (bit for bit).  Against the numpy/scipy path
(:mod:`mast_cli.objectives`, kept as the reference and the fallback) the differences are
the exp/sigmoid/log1p rounding (≤ 2 ulp each) and the transposed product's summation order, so
float64 results agree to ~1e-15 relative (more where a gradient entry cancels).

Compiled on first use and cached on disk (``cache=True``, numba's ``__pycache__``);
:func:`warmup` compiles every kernel and returns the seconds it took.

Set ``MAST_KERNELS=numpy`` to use the numpy/scipy path everywhere (reference runs,
platforms without numba).  ``MAST_THREADS`` (an integer ≥ 1 or ``auto`` = the usable
CPUs; default 1; another value warns and gives 1) sets how many threads a kernel
uses (row chunks first, then column groups); the CLI's ``--threads auto`` sets it to the usable CPUs divided
by the parallel jobs (1 under ``mast reproduce --jobs`` with one process per core).
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np

from .pools import ForkSafePool

try:  # scipy's single-vector margins (the R = 1 path of _run)
    from scipy.sparse._sparsetools import csr_matvec
except ImportError:  # pragma: no cover - private scipy module moved: the fused loops alone
    csr_matvec = None

try:
    import numba
    from numba import njit, types
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - numba missing: numpy/scipy fallback
    numba = None

__all__ = ["ENABLED", "exp", "exp_neg_abs", "expit_neg", "log1p", "logistic_grad", "logistic_value", "logistic_value_grad",
           "logistic_grad_rows", "sign_counts", "sketched_model", "sketched_step", "bernoulli_bank", "warmup", "threads",
           "set_threads"]

#: True when the fused kernels are used (numba importable and ``MAST_KERNELS`` != numpy).
ENABLED = numba is not None and os.environ.get("MAST_KERNELS", "numba").strip().lower() != "numpy"

#: Elements of the per-thread margin buffer (rows of a block × columns of a group):
#: 4 Ki doubles = 32 KiB, one L1 data cache.
BLOCK_ELEMS = 4096

#: Columns per kernel call: a group's columns are run by slices of at most this many, one
#: register panel each (16 vectors of 8, :func:`_vectors`), so that a slice's iterate block
#: (d × 128) and block buffers stay in L2/L1.  a9a, R = 1000, one thread: gradient 90 → 76 ms,
#: loss 60 → 49 ms against one call of all 1000 columns (slices of 64/104/256: 82/77/86 ms).
PANEL_COLS = 128

#: Rows per partial sum of the loss (the partial sums are then added in row order).
LOSS_ROWS = 256

#: Rows per block of the transposed product (:func:`_blocked`): each column's non-zeros in
#: a block are summed in registers, then added to the output once.  Fixed (not a function
#: of the column count), so a column's sums are the same whatever the batch.  32: the
#: block's weights (32 × 104 columns at R = 100) stay in the 32 KiB L1; a9a gradient at
#: R = 100 with 16, 24, 32, 48, 64 rows: 8.7, 7.9, 7.8, 8.4, 8.4 ms (CPU, interleaved).
SCATTER_ROWS = 32


def _parse_threads(text):
    """The thread count ``MAST_THREADS`` asks for: an integer ≥ 1, ``auto`` (the CPUs this
    process may run on) or empty/unset (1).  The CLI checks the variable by the same rules
    (``mast_cli.cli._common.check_environment``) without importing this module.

    Raises
    ------
    ValueError
        For anything else (``0``, ``-2``, ``1.5``, ``many``), naming the value.
    """
    raw = "" if text is None else str(text).strip().lower()
    if raw == "":
        return 1
    if raw == "auto":
        from ..io.memory import usable_cpus

        return usable_cpus()
    try:
        k = int(raw)
    except ValueError:
        k = 0
    if k < 1:
        raise ValueError(f"MAST_THREADS={text!r} must be 'auto' or an integer >= 1")
    return k


def _env_threads():
    """``MAST_THREADS`` at import; a bad value warns and gives 1 (importing never fails on
    it; the CLI refuses it with a one-line error first)."""
    try:
        return _parse_threads(os.environ.get("MAST_THREADS"))
    except ValueError as exc:
        import warnings

        warnings.warn(f"{exc}; using 1 thread", RuntimeWarning, stacklevel=2)
        return 1


_THREADS = _env_threads()


def threads():
    """Threads the kernels use; ``MAST_THREADS`` or :func:`set_threads`."""
    return _THREADS


def set_threads(k):
    """Use ``k`` threads per kernel call (results are the same bits for any k)."""
    global _THREADS
    _THREADS = max(1, int(k))


def _groups(R, k=None):
    k = _THREADS if k is None else max(1, int(k))
    return int(max(1, min(k, R // 8 if R >= 16 else 1)))


def _column_cuts(R, k):
    """Boundaries of the column groups of R columns for k threads (:func:`_groups`): cut at
    multiples of 8 (the register panels' width), so that only the last group may need
    padding (R = 100 in 2 groups is 56 + 44, run as 48)."""
    k = _groups(R, k)
    return [min(R, 8 * round(g * R / (8 * k))) for g in range(k)] + [R]


#: The kernels' pool, apart from the numpy path's (core/kernels.py ``thread_pool``).
_POOL = ForkSafePool("mast-fused")


def _run_tasks(tasks):
    """Run the callables ``tasks`` at once: the first in this thread, the others on a thread
    pool (one thread each; the kernels release the GIL); returns when all have finished."""
    futures = [_POOL.get(len(tasks) - 1).submit(f) for f in tasks[1:]]
    try:
        tasks[0]()
    finally:
        for f in futures:
            f.result()


def _each_group(fn, R, groups):
    """Run fn(c0, w) for the column groups of R columns: in this thread, or on a pool."""
    cuts = _column_cuts(R, groups)
    _run_tasks([lambda g=g: fn(cuts[g], cuts[g + 1] - cuts[g]) for g in range(len(cuts) - 1)])


if numba is not None:
    @intrinsic
    def _as_f64(typingctx, x):
        """Reinterpret the bits of an int64 as a float64 (a no-op that LLVM vectorizes)."""
        sig = types.float64(types.int64)

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(types.float64))

        return sig, codegen

    @intrinsic
    def _as_i64(typingctx, x):
        """Reinterpret the bits of a float64 as an int64."""
        sig = types.int64(types.float64)

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(types.int64))

        return sig, codegen

    _LOG2E = 1.4426950408889634
    _LN2_HI = 0.6931471803691238          # ln 2 rounded to 33 bits: k·LN2_HI is exact
    _LN2_LO = 1.9082149292705877e-10      # ln 2 − LN2_HI
    _SHIFT = 6755399441055744.0           # 1.5·2⁵²: adding it rounds to an integer
    _SHIFT_BITS = 0x4338000000000000

    # contract: the polynomial's multiply-adds may be fused (FMA): faster and as accurate;
    # the flag stays on these instructions when LLVM inlines the function into a loop
    @njit(cache=True, fastmath={"contract"}, error_model="numpy")
    def _exp1(x):
        """eˣ for one float64, branch-free (so loops over it vectorize).

        x = k ln2 + r with k = round(x/ln2) (by the 1.5·2⁵² shift) and |r| ≤ ln2/2 (two-part
        ln2, Cody–Waite); eʳ by its degree-13 Taylor polynomial (truncation < 1e-17
        relative); 2ᵏ applied as two exact powers of two 2^⌊k/2⌋·2^(k−⌊k/2⌋), so
        subnormal results are rounded once and k = 1024 still gives finite results.
        Inputs are clamped to [−746, 710] first (e⁻⁷⁴⁶ rounds to 0, e⁷¹⁰ overflows to
        inf); NaN is passed through.
        """
        xc = x if x < 710.0 else 710.0
        xc = xc if xc > -746.0 else -746.0
        t = xc * _LOG2E + _SHIFT
        kf = t - _SHIFT
        k = _as_i64(t) - _SHIFT_BITS
        r = (xc - kf * _LN2_HI) - kf * _LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = 1.0 + (r + (r * r) * p)
        h = k >> 1
        s1 = _as_f64((h + 1023) << 52)
        s2 = _as_f64((k - h + 1023) << 52)
        y = (p * s1) * s2
        return y if x == x else x

    # e^−|z| for the logistic pieces: an 8-entry table 2^(j/8) (an AVX-512 permute within one
    # register) leaves |r| ≤ ln2/16 for a degree-7 polynomial; no overflow side, one scaling
    _EXPT = (1.0, 1.0905077326652577, 1.189207115002721, 1.2968395546510096, 1.4142135623730951,
             1.5422108254079407, 1.681792830507429, 1.8340080864093424)        # 2^(j/8) rounded
    _EXPC = (0.0, -2.7939114859515733e-17, 3.3484623336251524e-17, 1.9572585293112036e-17,
             -6.835808657661922e-17, 5.1548301170786783e-17, 4.875160526227062e-17,
             1.790126907604513e-17)                          # (2^(j/8) − T_j)/T_j (mpmath)
    # T_j's bits less j·2⁴⁹: adding t's bits shifted by 49 (m = 8k + j in bits 0–14) then
    # adds k to the exponent and cancels j (one shift, no mask)
    _EXPT_BITS = np.array(_EXPT).view(np.int64) - (np.arange(8, dtype=np.int64) << 49)
    _EXPT_ADJ = tuple(float(v) for v in _EXPT_BITS.view(np.float64))
    _EXPC_ARR = np.array(_EXPC)
    # minimax e^r ≈ 1 + r(1 + c₂r + … + c₇r⁶) on |r| ≤ ln2/16: 2.8e-18 relative (Remez, mpmath)
    _EC2, _EC3, _EC4, _EC5, _EC6, _EC7 = (0.5000000000000296, 0.16666666666663726, 0.041666666570112434,
                                          0.008333333371119798, 0.0013889780493680128,
                                          0.00019840565623008782)
    _EB = 64                                   # results carry a factor 2⁶⁴: never subnormal
    _ETWO = 2.0 ** _EB
    _EINV = 2.0 ** -_EB
    _EAMAX = 746.0                             # e^−746 < 2^−1075: rounds to 0
    _ESHIFT = 6755399441055744.0 + 8 * _EB     # 1.5·2⁵² (+ the bias): rounds to an integer
    _EMUL = -8 * _LOG2E
    _ERH = -_LN2_HI / 8
    _ERL = -_LN2_LO / 8

    @njit(cache=True, fastmath={"contract"}, error_model="numpy")
    def _em1(a):
        """2⁶⁴·e^−a for one a ≥ 0 (or NaN), branch-free: the scalar twin of :func:`_em_block`
        (the same operations, so the same bits; a test checks it).

        a is clamped to 746 (e^−746 rounds to 0; NaN passes); m = round(−8a/ln2) by the
        1.5·2⁵² shift, r = −a − m·ln2/8 (Cody–Waite, |r| ≤ ln2/16), m = 8k + j;
        2^(j/8)·e^r = T_j·(1 + c_j + q(r)) with T_j = 2^(j/8) rounded, c_j its relative
        rounding error and q the minimax polynomial; 2^(k+64) is added to T_j's exponent
        (exact: the result is ≥ 2⁻¹⁰¹² and ≤ 2⁶⁴, never subnormal nor infinite).
        """
        a = _EAMAX if a > _EAMAX else a
        t = a * _EMUL + _ESHIFT
        kf = t - _ESHIFT
        r = a * -1.0
        r = kf * _ERH + r
        r = kf * _ERL + r
        tb = _as_i64(t)
        j = tb & 7
        T = _as_f64(_EXPT_BITS[j] + (tb << 49))
        p = _EC7
        p = p * r + _EC6
        p = p * r + _EC5
        p = p * r + _EC4
        p = p * r + _EC3
        p = p * r + _EC2
        p = p * r + 1.0
        q = p * r + _EXPC_ARR[j]
        return T * q + T

    def _em_intrinsic(sigmoid, V=8):
        """An intrinsic writing, for q < m rounded down to a multiple of V, U[q] = 2⁶⁴·e^−|Z[q]|
        (:func:`_em1`'s operations on V lanes) or, with ``sigmoid``, U[q] = 1/(1 + e^Z[q])
        (:func:`_sig_from` of that).  Z, U: contiguous float64 arrays.

        Written as vector IR because the table lookup needs a register permute (vpermpd
        with AVX-512, read from the target's features); the loop vectorizer emits a gather
        for it, measured slower than no table at all.  Without AVX-512 the lanes are read one
        by one from a constant array (same values, same bits)."""

        @intrinsic
        def block(typingctx, Z_t, U_t, m_t):
            for a_t in (Z_t, U_t):         # the code walks the data pointer: contiguous only
                if not (isinstance(a_t, types.Array) and a_t.layout == "C" and a_t.dtype == types.float64):
                    return None
            sig = types.void(Z_t, U_t, m_t)

            def codegen(context, builder, signature, args):
                from llvmlite import ir
                from numba.core import cgutils

                Z, U, m = args
                aZ = context.make_array(signature.args[0])(context, builder, Z)
                aU = context.make_array(signature.args[1])(context, builder, U)
                i64, i32, dbl = ir.IntType(64), ir.IntType(32), ir.DoubleType()
                vt, vi = ir.VectorType(dbl, V), ir.VectorType(i64, V)
                mod = builder.module
                fma = cgutils.get_or_insert_function(mod, ir.FunctionType(vt, [vt, vt, vt]), f"llvm.fma.v{V}f64")
                feats = getattr(context.codegen(), "_tm_features", "") or ""
                avx512 = V == 8 and "+avx512f" in feats.split(",")

                def spl(c):
                    return ir.Constant(vt, [float(c)] * V)

                def spi(c):
                    return ir.Constant(vi, [int(c)] * V)

                def lookup(tb, table):
                    if avx512:
                        perm = cgutils.get_or_insert_function(
                            mod, ir.FunctionType(vt, [vt, vi]), "llvm.x86.avx512.permvar.df.512")
                        return builder.call(perm, [ir.Constant(vt, list(table)), tb])
                    # lane by lane from a constant array in the module
                    at = ir.ArrayType(dbl, 8)
                    name = "mast_em_tab_%d" % (0 if table is _EXPT_ADJ else 1)
                    g = mod.globals.get(name)
                    if g is None:
                        g = ir.GlobalVariable(mod, at, name=name)
                        g.global_constant = True
                        g.linkage = "internal"
                        g.initializer = ir.Constant(at, list(table))
                    j = builder.and_(tb, spi(7))
                    out = ir.Constant(vt, ir.Undefined)
                    for lane in range(V):
                        jl = builder.extract_element(j, ir.Constant(i32, lane))
                        v = builder.load(builder.gep(g, [ir.Constant(i64, 0), jl]))
                        out = builder.insert_element(out, v, ir.Constant(i32, lane))
                    return out

                pre = builder.block
                head = builder.append_basic_block("em.head")
                body = builder.append_basic_block("em.body")
                done = builder.append_basic_block("em.done")
                builder.branch(head)
                builder.position_at_end(head)
                i = builder.phi(i64)
                i.add_incoming(ir.Constant(i64, 0), pre)
                builder.cbranch(builder.icmp_signed("<", builder.add(i, ir.Constant(i64, V - 1)), m), body, done)
                builder.position_at_end(body)
                z = builder.load(builder.bitcast(builder.gep(aZ.data, [i]), vt.as_pointer()), align=8)
                a = builder.bitcast(builder.and_(builder.bitcast(z, vi), spi(0x7FFFFFFFFFFFFFFF)), vt)
                a = builder.select(builder.fcmp_ordered(">", a, spl(_EAMAX)), spl(_EAMAX), a)
                t = builder.call(fma, [a, spl(_EMUL), spl(_ESHIFT)])
                kf = builder.fsub(t, spl(_ESHIFT))
                r = builder.fmul(a, spl(-1.0))
                r = builder.call(fma, [kf, spl(_ERH), r])
                r = builder.call(fma, [kf, spl(_ERL), r])
                tb = builder.bitcast(t, vi)
                T = builder.bitcast(lookup(tb, _EXPT_ADJ), vi)
                T = builder.bitcast(builder.add(T, builder.shl(tb, spi(49))), vt)
                c = lookup(tb, _EXPC)
                p = spl(_EC7)
                for ck in (_EC6, _EC5, _EC4, _EC3, _EC2, 1.0):
                    p = builder.call(fma, [p, r, spl(ck)])
                q = builder.call(fma, [p, r, c])
                y = builder.call(fma, [T, q, T])
                if sigmoid:
                    num = builder.select(builder.fcmp_ordered(">", z, spl(0.0)), y, spl(_ETWO))
                    y = builder.fdiv(num, builder.fadd(y, spl(_ETWO)))
                builder.store(y, builder.bitcast(builder.gep(aU.data, [i]), vt.as_pointer()), align=8)
                i.add_incoming(builder.add(i, ir.Constant(i64, V)), body)
                builder.branch(head)
                builder.position_at_end(done)
                return context.get_dummy_value()

            return sig, codegen

        return block

    _em_block = _em_intrinsic(False)
    _sig_block = _em_intrinsic(True)

    @njit(inline="always", cache=True, error_model="numpy")
    def _sig_from(z, y):
        """1/(1 + eᶻ) from y = 2⁶⁴·e^−|z|: y/(y + 2⁶⁴) for z > 0, 2⁶⁴/(y + 2⁶⁴) otherwise.

        One correctly rounded division of the scaled numbers, so a subnormal result (z > 708)
        is rounded once; NaN passes through y."""
        num = y if z > 0.0 else _ETWO
        return num / (y + _ETWO)

    @njit(inline="always", cache=True, error_model="numpy")
    def _sig1(z):
        """1/(1 + eᶻ) for one float64 (the same bits as the block loops)."""
        return _sig_from(z, _em1(_as_f64(_as_i64(z) & 0x7FFFFFFFFFFFFFFF)))

    @njit(inline="always", cache=True, error_model="numpy")
    def _em_rows(z, u, m, tmp):
        """u[q] = 2⁶⁴·e^−|z[q]| for q < m (1-D contiguous arrays; tmp: 16 doubles of scratch
        for the last m mod 8, run through the same vector code)."""
        _em_block(z, u, m)
        m8 = m - m % 8
        if m8 < m:
            for q in range(8):
                tmp[q] = z[m8 + q] if m8 + q < m else 0.0
            _em_block(tmp[:8], tmp[8:], 8)
            for q in range(m8, m):
                u[q] = tmp[8 + q - m8]

    @njit(inline="always", cache=True, error_model="numpy")
    def _sig_rows(z, w, m, tmp):
        """w[q] = 1/(1 + e^z[q]) for q < m (as :func:`_em_rows`)."""
        _sig_block(z, w, m)
        m8 = m - m % 8
        if m8 < m:
            for q in range(8):
                tmp[q] = z[m8 + q] if m8 + q < m else 0.0
            _sig_block(tmp[:8], tmp[8:], 8)
            for q in range(m8, m):
                w[q] = tmp[8 + q - m8]

    _SQRT2 = 1.4142135623730951
    _LN2 = 0.6931471805599453

    @njit(cache=True, fastmath={"contract"}, error_model="numpy")
    def _log1p01(u):
        """log(1 + u) for u in [0, 1] (and NaN), branch-free.

        t = 1 + u (rounded), c = (u − (t − 1))/t its rounding correction; t = 2ᵏ f with
        f ∈ [√2/2, √2), k ∈ {0, 1}; log f = 2 atanh(s), s = (f − 1)/(f + 1), |s| < 0.172,
        by its odd series to s²³ (truncation < 1e-18).
        """
        t = 1.0 + u
        c = (u - (t - 1.0)) / t
        big = t >= _SQRT2
        f = 0.5 * t if big else t
        kf = 1.0 if big else 0.0
        s = (f - 1.0) / (f + 1.0)
        s2 = s * s
        q = 2.0 / 23.0
        q = q * s2 + 2.0 / 21.0
        q = q * s2 + 2.0 / 19.0
        q = q * s2 + 2.0 / 17.0
        q = q * s2 + 2.0 / 15.0
        q = q * s2 + 2.0 / 13.0
        q = q * s2 + 2.0 / 11.0
        q = q * s2 + 2.0 / 9.0
        q = q * s2 + 2.0 / 7.0
        q = q * s2 + 2.0 / 5.0
        q = q * s2 + 2.0 / 3.0
        lf = 2.0 * s + s * (s2 * q)
        return kf * _LN2 + (lf + c)

    @njit(inline="always", cache=True, error_model="numpy")
    def _logloss1(z):
        """log(1 + e⁻ᶻ) = max(−z, 0) + log1p(e^−|z|), the form of numpy's logaddexp(0, −z)."""
        m = -z if z < 0.0 else 0.0
        v = m + _log1p01(_em1(_as_f64(_as_i64(z) & 0x7FFFFFFFFFFFFFFF)) * _EINV)
        return v if z == z else z

    @njit(inline="always", cache=True, error_model="numpy")
    def _log1p_acc(q):
        """log(1 + q) for q = Π (1 + u_i) − 1 ∈ [0, 2²⁵⁶] (NaN passed through).

        q is accumulated as q ← q + u(1 + q), which keeps its relative precision when every
        u_i is tiny (a product of the rounded factors 1 + u_i would not).  q ≤ 1: the
        log1p polynomial; q > 1: 1 + q = 2ᵉ·f with f ∈ [1, 2) read from the bits, log =
        e·ln2 (two-part ln2) + log1p(f − 1) (f − 1 exact; the rounding of 1 + q costs at
        most 2⁻⁵³ against a result ≥ ln 2).
        """
        p = 1.0 + q
        bits = _as_i64(p)
        e = (bits >> 52) - 1023
        f = _as_f64((bits & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000)
        ef = float(e)
        big = (ef * _LN2_HI + _log1p01(f - 1.0)) + ef * _LN2_LO
        small = _log1p01(q if q <= 1.0 else 0.0)
        v = small if q <= 1.0 else big
        return v if q == q else q

    @njit(cache=True, error_model="numpy")
    def _exp_array(x, out):
        for i in range(x.size):
            out[i] = _exp1(x[i])

    @njit(cache=True, error_model="numpy")
    def _log1p_array(x, out):
        for i in range(x.size):
            out[i] = _log1p01(x[i])

    @njit(cache=True, error_model="numpy")
    def _logloss_array(x, out):
        for i in range(x.size):
            out[i] = _logloss1(x[i])

    @njit(cache=True, error_model="numpy")
    def _expit_neg_array(x, out):
        _sig_rows(x, out, x.size, np.empty(16))

    @njit(cache=True, error_model="numpy")
    def _expnegabs_array(x, out):
        _em_rows(x, out, x.size, np.empty(16))
        for i in range(x.size):
            out[i] *= _EINV

    @njit(cache=True, error_model="numpy")
    def _scalar_twins(x, out_em, out_sig):
        for i in range(x.size):
            out_em[i] = _em1(_as_f64(_as_i64(x[i]) & 0x7FFFFFFFFFFFFFFF))
            out_sig[i] = _sig1(x[i])

    def _panel_intrinsic(U, V=8, add=False):
        """An intrinsic computing Z[zi, c0:c0 + U·V] = Σ_k val_k Y[idx_k, c0:c0 + U·V] over the
        non-zeros k in [ptr[i], ptr[i + 1]), with the U·V sums held in U vector registers
        (<V x double>) across them: one load of Y per non-zero and one store per call, where
        the loop vectorizer's code loads and stores the row of Z at every non-zero (numba
        does not promote them to registers).  ``add=True``: Z[zi, ...] += the sums instead
        (one load and one store of Z per call).  Each lane does what the scalar loop does,
        in the same order (0.0, then + val_k·y, multiply and add unfused; then Z + sum):
        the same bits.  Used for the margins (CSR: i a row, idx its columns) and for the
        transposed product (blocked CSC: i a segment, idx its rows in the block's weights).
        Y and Z are C-contiguous 2-D float64 arrays; the caller keeps c0 + U·V ≤ width."""

        @intrinsic
        def panel(typingctx, ptr_t, idx_t, val_t, Y_t, i_t, c0_t, Z_t, zi_t):
            sig = types.void(ptr_t, idx_t, val_t, Y_t, i_t, c0_t, Z_t, zi_t)

            def codegen(context, builder, signature, args):
                from llvmlite import ir

                ptr, idx, val, Y, i, c0, Z, zi = args
                arrs = [context.make_array(signature.args[q])(context, builder, args[q]) for q in (0, 1, 2, 3, 6)]
                aptr, aidx, aval, aY, aZ = arrs
                i64 = ir.IntType(64)
                i, c0, zi = (context.cast(builder, args[q], signature.args[q], types.int64) for q in (4, 5, 7))
                vt = ir.VectorType(ir.DoubleType(), V)
                w = builder.extract_value(aY.shape, 1)
                wz = builder.extract_value(aZ.shape, 1)
                k0 = builder.load(builder.gep(aptr.data, [i]))
                k1 = builder.load(builder.gep(aptr.data, [builder.add(i, ir.Constant(i64, 1))]))
                k0 = builder.sext(k0, i64) if k0.type.width < 64 else k0
                k1 = builder.sext(k1, i64) if k1.type.width < 64 else k1
                pre = builder.block
                head = builder.append_basic_block("panel.head")
                body = builder.append_basic_block("panel.body")
                done = builder.append_basic_block("panel.done")
                builder.branch(head)
                builder.position_at_end(head)
                k = builder.phi(i64)
                accs = [builder.phi(vt) for _ in range(U)]
                k.add_incoming(k0, pre)
                for acc in accs:
                    acc.add_incoming(ir.Constant(vt, [0.0] * V), pre)
                builder.cbranch(builder.icmp_signed("<", k, k1), body, done)
                builder.position_at_end(body)
                a = builder.load(builder.gep(aval.data, [k]))
                j = builder.load(builder.gep(aidx.data, [k]))
                j = builder.zext(j, i64) if j.type.width < 64 else j
                i32 = ir.IntType(32)
                splat = builder.insert_element(ir.Constant(vt, ir.Undefined), a, ir.Constant(i32, 0))
                splat = builder.shuffle_vector(splat, ir.Constant(vt, ir.Undefined),
                                               ir.Constant(ir.VectorType(i32, V), [0] * V))
                base = builder.add(builder.mul(j, w), c0)
                new = []
                for u in range(U):
                    q = builder.gep(aY.data, [builder.add(base, ir.Constant(i64, u * V))])
                    y = builder.load(builder.bitcast(q, vt.as_pointer()), align=8)
                    new.append(builder.fadd(accs[u], builder.fmul(splat, y)))
                k.add_incoming(builder.add(k, ir.Constant(i64, 1)), body)
                for acc, nv in zip(accs, new):
                    acc.add_incoming(nv, body)
                builder.branch(head)
                builder.position_at_end(done)
                zbase = builder.add(builder.mul(zi, wz), c0)
                for u in range(U):
                    q = builder.bitcast(builder.gep(aZ.data, [builder.add(zbase, ir.Constant(i64, u * V))]),
                                        vt.as_pointer())
                    out = builder.fadd(builder.load(q, align=8), accs[u]) if add else accs[u]
                    builder.store(out, q, align=8)
                return context.get_dummy_value()

            return sig, codegen

        return panel

    #: Most vectors (of 8 columns) a panel holds in registers: 16 sums + the operands fit
    #: the 32 AVX-512 registers.
    UMAX = 16
    (_pan1, _pan2, _pan3, _pan4, _pan5, _pan6, _pan7, _pan8,
     _pan9, _pan10, _pan11, _pan12, _pan13, _pan14, _pan15, _pan16) = (_panel_intrinsic(u) for u in range(1, UMAX + 1))
    (_seg1, _seg2, _seg3, _seg4, _seg5, _seg6, _seg7, _seg8,
     _seg9, _seg10, _seg11, _seg12, _seg13, _seg14, _seg15, _seg16) = (_panel_intrinsic(u, add=True) for u in range(1, UMAX + 1))

    @njit(inline="always", cache=True, error_model="numpy")
    def _vectors(w8, c0):
        """Vectors of 8 columns in the panel starting at column c0 (w8: columns in panels):
        all that remain when at most UMAX do, else the remaining vectors split evenly into
        the fewest panels of at most UMAX (w8 = 1000: 16, 16, 16, 16, 16, 15, 15, 15).  Fewer,
        wider panels mean fewer passes over a row's (or segment's) non-zeros."""
        left = (w8 - c0) // 8
        k = -(-left // UMAX)
        return -(-left // k)

    @njit(inline="always", cache=True, error_model="numpy")
    def _panel(u, ptr, idx, val, Y, i, c0, Z, zi):
        """:func:`_panel_intrinsic` with u vectors (1 ≤ u ≤ UMAX): Z[zi, panel] = sums."""
        if u <= 8:
            if u <= 4:
                if u <= 2:
                    if u <= 1:
                        _pan1(ptr, idx, val, Y, i, c0, Z, zi)
                    else:
                        _pan2(ptr, idx, val, Y, i, c0, Z, zi)
                else:
                    if u <= 3:
                        _pan3(ptr, idx, val, Y, i, c0, Z, zi)
                    else:
                        _pan4(ptr, idx, val, Y, i, c0, Z, zi)
            else:
                if u <= 6:
                    if u <= 5:
                        _pan5(ptr, idx, val, Y, i, c0, Z, zi)
                    else:
                        _pan6(ptr, idx, val, Y, i, c0, Z, zi)
                else:
                    if u <= 7:
                        _pan7(ptr, idx, val, Y, i, c0, Z, zi)
                    else:
                        _pan8(ptr, idx, val, Y, i, c0, Z, zi)
        else:
            if u <= 12:
                if u <= 10:
                    if u <= 9:
                        _pan9(ptr, idx, val, Y, i, c0, Z, zi)
                    else:
                        _pan10(ptr, idx, val, Y, i, c0, Z, zi)
                else:
                    if u <= 11:
                        _pan11(ptr, idx, val, Y, i, c0, Z, zi)
                    else:
                        _pan12(ptr, idx, val, Y, i, c0, Z, zi)
            else:
                if u <= 14:
                    if u <= 13:
                        _pan13(ptr, idx, val, Y, i, c0, Z, zi)
                    else:
                        _pan14(ptr, idx, val, Y, i, c0, Z, zi)
                else:
                    if u <= 15:
                        _pan15(ptr, idx, val, Y, i, c0, Z, zi)
                    else:
                        _pan16(ptr, idx, val, Y, i, c0, Z, zi)

    @njit(inline="always", cache=True, error_model="numpy")
    def _segment(u, ptr, idx, val, Y, i, c0, Z, zi):
        """:func:`_panel_intrinsic` with u vectors (1 ≤ u ≤ UMAX): Z[zi, panel] += sums."""
        if u <= 8:
            if u <= 4:
                if u <= 2:
                    if u <= 1:
                        _seg1(ptr, idx, val, Y, i, c0, Z, zi)
                    else:
                        _seg2(ptr, idx, val, Y, i, c0, Z, zi)
                else:
                    if u <= 3:
                        _seg3(ptr, idx, val, Y, i, c0, Z, zi)
                    else:
                        _seg4(ptr, idx, val, Y, i, c0, Z, zi)
            else:
                if u <= 6:
                    if u <= 5:
                        _seg5(ptr, idx, val, Y, i, c0, Z, zi)
                    else:
                        _seg6(ptr, idx, val, Y, i, c0, Z, zi)
                else:
                    if u <= 7:
                        _seg7(ptr, idx, val, Y, i, c0, Z, zi)
                    else:
                        _seg8(ptr, idx, val, Y, i, c0, Z, zi)
        else:
            if u <= 12:
                if u <= 10:
                    if u <= 9:
                        _seg9(ptr, idx, val, Y, i, c0, Z, zi)
                    else:
                        _seg10(ptr, idx, val, Y, i, c0, Z, zi)
                else:
                    if u <= 11:
                        _seg11(ptr, idx, val, Y, i, c0, Z, zi)
                    else:
                        _seg12(ptr, idx, val, Y, i, c0, Z, zi)
            else:
                if u <= 14:
                    if u <= 13:
                        _seg13(ptr, idx, val, Y, i, c0, Z, zi)
                    else:
                        _seg14(ptr, idx, val, Y, i, c0, Z, zi)
                else:
                    if u <= 15:
                        _seg15(ptr, idx, val, Y, i, c0, Z, zi)
                    else:
                        _seg16(ptr, idx, val, Y, i, c0, Z, zi)

    @njit(inline="always", cache=True, error_model="numpy")
    def _buffer(rows, w):
        """An uninitialized (rows, w) float64 array whose data start on a 64-byte boundary
        (a cache line: with w a multiple of 8 no vector load of a row panel straddles two)."""
        buf = np.empty(rows * w + 8)
        o = ((64 - buf.ctypes.data % 64) % 64) // 8
        return buf[o:o + rows * w].reshape((rows, w))

    @njit(cache=True, nogil=True, error_model="numpy")
    def _margins(ptr, idx, val, Y, s, e, Z):
        """Z[i − s, :] = Σ_k val_k Y[idx_k, :] for rows i in [s, e), in storage order.

        Columns by panels of up to UMAX vectors of 8 held in registers (:func:`_vectors`,
        :func:`_panel_intrinsic`), the last w mod 8 by the plain loop; every column gets
        the same bits either way."""
        w = Y.shape[1]
        w8 = w - w % 8
        for i in range(s, e):
            c0 = 0
            while c0 < w8:
                u = _vectors(w8, c0)
                _panel(u, ptr, idx, val, Y, i, c0, Z, i - s)
                c0 += 8 * u
            if w8 < w:
                zi = Z[i - s]
                for c in range(w8, w):
                    zi[c] = 0.0
                for k in range(ptr[i], ptr[i + 1]):
                    a = val[k]
                    yj = Y[idx[k]]
                    for c in range(w8, w):
                        zi[c] += a * yj[c]

    @njit(cache=True, nogil=True, error_model="numpy")
    def _scatter(blk, scol, sptr, trow, tval, W, b, G):
        """G[scol_g, :] += Σ_k tval_k W[trow_k, :] for the segments g of row block b.

        The block's non-zeros grouped by column (:func:`_blocked`): segment g holds the
        non-zeros k in [sptr[g], sptr[g + 1]) of column scol[g], rows trow (local to the
        block, rows of W) increasing.  Each segment's sum starts at 0.0 and adds val·w
        (multiply, then add) in row order, held in registers; G's row gets it once.
        Columns by panels of up to UMAX vectors of 8 (:func:`_vectors`; panel-outer, so
        the block's panel of W stays in L1: 32 rows × 128 columns = 32 KiB), the last w mod 8
        by the plain loop: every column gets the same bits either way, and the same as
        :func:`_scatter1` on that column alone."""
        w = G.shape[1]
        w8 = w - w % 8
        g0 = blk[b]
        g1 = blk[b + 1]
        c0 = 0
        while c0 < w8:
            u = _vectors(w8, c0)
            for g in range(g0, g1):
                _segment(u, sptr, trow, tval, W, g, c0, G, scol[g])
            c0 += 8 * u
        for c in range(w8, w):
            for g in range(g0, g1):
                acc = 0.0
                for k in range(sptr[g], sptr[g + 1]):
                    acc += tval[k] * W[trow[k], c]
                G[scol[g], c] += acc

    @njit(cache=True, nogil=True, error_model="numpy")
    def _scatter1(ptr, idx, val, blk, scol, sb, x, g):
        """One column: g[j] += Σ_{i in block} val_ij x_i for each column j present in each row
        block, in the order and with the operations :func:`_scatter` gives a column (so the
        same bits as that column inside a batch).

        The block's rows are walked in CSR order into a per-column partial sum t (from 0.0):
        a column's terms then arrive in increasing rows, as in its segment, but consecutive
        terms usually belong to different columns (no chain of dependent additions)."""
        n = ptr.size - 1
        t = np.zeros(g.size)
        for b in range(blk.size - 1):
            for i in range(b * sb, min(b * sb + sb, n)):
                xi = x[i]
                k = ptr[i]
                e = ptr[i + 1]
                while k + 1 < e:                 # two at a time (same order): ~15% faster
                    j0 = idx[k]
                    j1 = idx[k + 1]
                    v0 = val[k] * xi
                    v1 = val[k + 1] * xi
                    t[j0] += v0
                    t[j1] += v1
                    k += 2
                if k < e:
                    t[idx[k]] += val[k] * xi
            for q in range(blk[b], blk[b + 1]):
                j = scol[q]
                g[j] += t[j]
                t[j] = 0.0

    @njit(cache=True, nogil=True, error_model="numpy")
    def _blocked_kernel(ptr, idx, val, d, sb, blk, scol, sptr, trow, tval):
        """Fills the arrays of :func:`_blocked` (allocated for nnz segments); returns the
        number of segments.  Per block, counting sorts (O(nnz) in all): its present columns
        by segment length (ties: first appearance in storage order), then its non-zeros by
        column into the positions [ptr[b·sb], ptr[min(b·sb + sb, n)]) of its CSR
        non-zeros, rows in order."""
        n = ptr.size - 1
        cnt = np.zeros(max(d, 1), dtype=np.int64)
        pos = np.zeros(max(d, 1), dtype=np.int64)
        present = np.empty(max(d, 1), dtype=np.int64)
        hist = np.zeros(sb + 2, dtype=np.int64)           # lengths > sb (duplicates): last bin
        g = 0
        for b in range(blk.size - 1):
            s = b * sb
            e = min(s + sb, n)
            m = 0
            for k in range(ptr[s], ptr[e]):
                j = idx[k]
                if cnt[j] == 0:
                    present[m] = j
                    m += 1
                cnt[j] += 1
            hist[:] = 0
            for t in range(m):
                hist[min(cnt[present[t]], sb + 1)] += 1
            acc = 0
            for v in range(sb + 2):
                acc, hist[v] = acc + hist[v], acc             # first slot of each length
            for t in range(m):
                j = present[t]
                scol[g + hist[min(cnt[j], sb + 1)]] = j
                hist[min(cnt[j], sb + 1)] += 1
            q = ptr[s]
            for t in range(m):
                j = scol[g + t]
                sptr[g + t] = q
                pos[j] = q
                q += cnt[j]
                cnt[j] = 0
            g += m
            blk[b + 1] = g
            for i in range(s, e):
                for k in range(ptr[i], ptr[i + 1]):
                    j = idx[k]
                    trow[pos[j]] = i - s
                    tval[pos[j]] = val[k]
                    pos[j] += 1
        sptr[g] = ptr[n]
        return g

    @njit(cache=True, nogil=True, error_model="numpy")
    def _grad_kernel(ptr, idx, val, blk, scol, sptr, trow, tval, sb, Y, G, L, want_value, want_grad):
        """Loss sums Σ_i log(1 + e^{−z_i}) into L (w,), Σ_i ab_i/(1 + e^{z_i}) into G (d, w).

        CSR arrays for the margins, the blocked CSC of :func:`_blocked` (blocks of sb rows)
        for the transposed product; without the gradient, blocks of BLOCK_ELEMS/w rows."""
        n = ptr.size - 1
        w = Y.shape[1]
        rows = sb if want_grad else max(1, BLOCK_ELEMS // max(w, 1))
        Z = _buffer(rows, w)
        W = _buffer(rows, w)
        tmp = np.empty(16)
        acc = np.zeros(w)
        part = np.zeros(w)
        qa = np.zeros(w)
        for s in range(0, n, rows):
            e = min(s + rows, n)
            _margins(ptr, idx, val, Y, s, e, Z)
            m = (e - s) * w
            zf = Z.reshape(-1)
            wf = W.reshape(-1)
            if want_value:
                # runs of LOSS_ROWS rows (global row numbers, so the order does not depend
                # on w): Σ max(−z_i, 0) + log Π (1 + u_i), u_i = e^−|z_i| (W holds 2⁶⁴u_i,
                # reused by the gradient), the runs added in row order
                _em_rows(zf, wf, m, tmp)
                for i in range(e - s):
                    for c in range(w):
                        zc = Z[i, c]
                        qa[c] = qa[c] + (W[i, c] * _EINV) * (1.0 + qa[c])
                        part[c] += -zc if zc < 0.0 else 0.0
                    if (s + i + 1) % LOSS_ROWS == 0 or s + i + 1 == n:
                        for c in range(w):
                            acc[c] += _log1p_acc(qa[c]) + part[c]
                            part[c] = 0.0
                            qa[c] = 0.0
            if want_grad:
                if want_value:
                    for q in range(m):
                        wf[q] = _sig_from(zf[q], wf[q])
                    _scatter(blk, scol, sptr, trow, tval, W, s // rows, G)
                else:
                    # in place: the block's margins become its weights (one L1-sized buffer)
                    _sig_rows(zf, zf, m, tmp)
                    _scatter(blk, scol, sptr, trow, tval, Z, s // rows, G)
        for c in range(w):
            L[c] = acc[c]

    @njit(cache=True, nogil=True, error_model="numpy")
    def _pieces1(z, w, want_value, want_grad):
        """One column: w = 1/(1 + eᶻ) into w (when ``want_grad``), and the loss total summed
        exactly as :func:`_grad_kernel` sums a column (runs of LOSS_ROWS rows)."""
        n = z.size
        acc = 0.0
        tmp = np.empty(16)
        if want_value:
            part = 0.0
            qa = 0.0
            _em_rows(z, w, n, tmp)                      # 2⁶⁴e^−|z|, as the batched kernel
            for q in range(n):
                zq = z[q]
                qa = qa + (w[q] * _EINV) * (1.0 + qa)
                part += -zq if zq < 0.0 else 0.0
                if (q + 1) % LOSS_ROWS == 0 or q + 1 == n:
                    acc += _log1p_acc(qa) + part
                    part = 0.0
                    qa = 0.0
        if want_grad:
            if want_value:
                for q in range(n):
                    w[q] = _sig_from(z[q], w[q])
            else:
                _sig_rows(z, w, n, tmp)
        return acc

    @njit(cache=True, nogil=True, error_model="numpy")
    def _sign_kernel(ptr, idx, val, y, Y, counts):
        n = ptr.size - 1
        w = Y.shape[1]
        rows = max(1, BLOCK_ELEMS // max(w, 1))
        Z = _buffer(rows, w)
        cnt = np.zeros(w, dtype=np.int64)
        for s in range(0, n, rows):
            e = min(s + rows, n)
            _margins(ptr, idx, val, Y, s, e, Z)
            for i in range(e - s):
                yi = y[s + i]
                for c in range(w):
                    cnt[c] += (Z[i, c] * yi) > 0.0
        for c in range(w):
            counts[c] = cnt[c]

    @njit(cache=True, error_model="numpy")
    def _rows_kernel(ptr, idx, val, rows, cols, weights, Y, G):
        for t in range(rows.size):
            i = rows[t]
            c = cols[t]
            z = 0.0
            for k in range(ptr[i], ptr[i + 1]):
                z += val[k] * Y[idx[k], c]
            coef = -weights[t] * _sig1(z)
            for k in range(ptr[i], ptr[i + 1]):
                G[idx[k], c] += coef * val[k]


def _as_csr(A):
    """A as a float64 CSR matrix (no copy when already so)."""
    import scipy.sparse as sp

    if not (sp.issparse(A) and A.format == "csr" and A.dtype == np.float64):
        A = sp.csr_matrix(A, dtype=np.float64)
    return A


def _csr(A):
    """(indptr, indices, data) of a float64 CSR matrix (no copy when already so)."""
    A = _as_csr(A)
    idx = A.indices
    # unsigned column indices: numba then emits no negative-index wraparound per access
    return A.indptr, idx.view(np.uint32 if idx.dtype == np.int32 else np.uint64), A.data


def _blocked(ptr, idx, val, n, d, sb=SCATTER_ROWS):
    """The non-zeros of each block of ``sb`` rows grouped by column: a CSC per row block.

    Parameters
    ----------
    ptr, idx, val : ndarray (n + 1,), (nnz,), (nnz,)
        CSR arrays of an (n, d) matrix.
    n, d : int
        Its shape.
    sb : int
        Rows per block (≤ 65 536).

    Returns
    -------
    blk : int64 (⌈n/sb⌉ + 1,)
        Block b's segments are [blk[b], blk[b + 1]).
    scol : uint32 (nseg,)
        Column of each segment: the columns present in the block, each once, by segment
        length (ties in order of first appearance): consecutive segments' loops then
        mostly run the same number of times (fewer mispredicted loop exits).
    sptr : int64 (nseg + 1,)
        Segment g's non-zeros are [sptr[g], sptr[g + 1]) (never empty).
    trow : uint16 (nnz,)
        Row of each non-zero, minus its block's first row (increasing within a segment;
        duplicates of a row and column kept in storage order).
    tval : float64 (nnz,)
        Value of each non-zero.
    """
    if not 1 <= sb <= 65536:
        raise ValueError(f"rows per block must be in [1, 65536], got {sb}")
    nnz = int(ptr[n]) if n else 0
    blk = np.zeros(-(-n // sb) + 1, dtype=np.int64)
    scol = np.empty(nnz, dtype=np.uint32)
    sptr = np.empty(nnz + 1, dtype=np.int64)
    trow = np.empty(nnz, dtype=np.uint16)
    tval = np.empty(nnz, dtype=np.float64)
    nseg = _blocked_kernel(ptr, idx, val, d, sb, blk, scol, sptr, trow, tval)
    return blk, scol[:nseg].copy(), sptr[:nseg + 1].copy(), trow, tval


def _per_matrix(cache, A, build):
    """``build(A)``, kept in ``cache`` (a dict keyed by ``id(A)``) while the CSR matrix A lives
    and holds the same index/value arrays and shape; the entry goes when A is collected.

    A matrix whose arrays are modified in place after its first use (rather than replaced)
    keeps a stale value: the objectives build their ``Ab`` once and never do.
    """
    import weakref

    key = id(A)
    parts = (A.indptr, A.indices, A.data)
    hit = cache.get(key)
    if hit is not None and hit[0]() is A and all(x is y for x, y in zip(hit[1], parts)) and hit[3] == A.shape:
        return hit[2]
    value = build(A)
    try:
        ref = weakref.ref(A, lambda _, key=key: cache.pop(key, None))
    except TypeError:                                      # pragma: no cover - not weakly referable
        return value
    cache[key] = (ref, parts, value, A.shape)
    return value


#: id(matrix) -> (weak reference, its (indptr, indices, data) arrays, blocked structure, shape)
_PREPARED = {}


def _prepared(A):
    """(A as CSR, its CSR arrays, its :func:`_blocked` structure), the structure cached while
    A lives and holds the same index/value arrays (:func:`_per_matrix`).

    Only float64 CSR matrices are cached (other inputs are converted, and prepared, at each
    call).
    """
    Ac = _as_csr(A)
    ptr, idx, val = _csr(Ac)
    n, d = Ac.shape
    if Ac is not A:
        return Ac, (ptr, idx, val), _blocked(ptr, idx, val, n, d)
    return A, (ptr, idx, val), _per_matrix(_PREPARED, A, lambda _: _blocked(ptr, idx, val, n, d))


#: id(matrix) -> (weak reference, its arrays, [_prepared(chunk) for its row chunks], shape)
_PREPARED_CHUNKS = {}


def _prepared_chunks(A):
    """[:func:`_prepared` (C) for C in :func:`_row_chunks` (A)], cached per matrix for split
    matrices (:func:`_per_matrix`; the entry holds the chunks, not A): one lookup per kernel
    call instead of one per chunk."""
    A = _as_csr(A)
    if A.shape[0] < ROW_SPLIT_MIN:                  # one chunk, A itself: not kept (it would keep A alive)
        return [_prepared(A)]
    return _per_matrix(_PREPARED_CHUNKS, A, lambda A: [_prepared(C) for C in _row_chunks(A)])


def _cols(Y):
    """(Y as a C-contiguous float64 (d, R) array, whether Y was one vector (d,)).

    Raises ValueError for any other number of dimensions (a (d, a, b) array was read as
    (d, a·b) columns, or failed deep inside scipy)."""
    Y = np.asarray(Y, dtype=np.float64)
    one = Y.ndim == 1
    if Y.ndim not in (1, 2):
        raise ValueError(f"Y must be a vector (d,) or a matrix (d, R), got shape {Y.shape}")
    return np.ascontiguousarray(Y[:, None] if one else Y), one


def exp(x):
    """eˣ elementwise by the vectorized kernel (≤ 2 ulp from a correctly rounded exp).

    The general exp (degree-13 polynomial, both overflow sides); the logistic kernels use
    :func:`exp_neg_abs`'s, which needs only e^−|z|.

    Parameters
    ----------
    x : array_like of float64, any shape

    Returns
    -------
    ndarray, the shape of ``x``; ±inf, NaN, overflow and subnormal results as numpy's.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    _exp_array(x.reshape(-1), out.reshape(-1))
    return out


def log1p(u):
    """log(1 + u) elementwise for u in [0, 1] (the range the logistic loss needs)."""
    u = np.ascontiguousarray(u, dtype=np.float64)
    out = np.empty_like(u)
    _log1p_array(u.reshape(-1), out.reshape(-1))
    return out


def logloss(z):
    """log(1 + e⁻ᶻ) elementwise, as numpy's ``logaddexp(0, −z)`` (to a few ulp)."""
    z = np.ascontiguousarray(z, dtype=np.float64)
    out = np.empty_like(z)
    _logloss_array(z.reshape(-1), out.reshape(-1))
    return out


def expit_neg(z):
    """1/(1 + eᶻ) = σ(−z) elementwise: the weights of the logistic gradient (mast-theory §3.2).

    Parameters
    ----------
    z : array_like of float64, any shape

    Returns
    -------
    ndarray, the shape of ``z``: the gradient kernels' numbers (the same bits), within a few
    ulp of the correctly rounded value for every z, subnormal results included (z > 708,
    where numpy's ``1/(1 + exp(z))`` gives 0 once exp overflows); 1 at −inf, 0 at +inf,
    NaN for NaN.
    """
    z = np.ascontiguousarray(z, dtype=np.float64)
    out = np.empty_like(z)
    _expit_neg_array(z.reshape(-1), out.reshape(-1))
    return out


def exp_neg_abs(z):
    """e^−|z| elementwise, the exp the logistic kernels use (≤ 1 ulp, subnormal results and
    0 below e⁻⁷⁴⁵ rounded as numpy's; NaN for NaN).  ndarray, the shape of ``z``."""
    z = np.ascontiguousarray(z, dtype=np.float64)
    out = np.empty_like(z)
    _expnegabs_array(z.reshape(-1), out.reshape(-1))
    return out


def _aligned_zeros(shape):
    """Zeros of the given 2-D shape whose data start on a 64-byte boundary (numpy aligns
    to 16 bytes: a vector load of 8 doubles would then straddle two cache lines, ~1.4× the
    cost in both products)."""
    n = shape[0] * shape[1]
    buf = np.zeros(n + 8)
    o = (-buf.ctypes.data % 64) // 8
    return buf[o:o + n].reshape(shape)


def _padded_width(w):
    """Columns to run w columns with: for w ≥ 2 the next multiple of 8 (zero columns, results
    dropped), so that every column goes through the register panels; w = 1 as it is.

    The plain loops' columns (w mod 8) cost far more than padding: a9a gradient at
    R = 2, 5, 10 unpadded 3.3, 5.8, 4.6 ms against 1.9, 1.9, 2.4 ms padded to 8, 8, 16."""
    return w if w < 2 else -(-w // 8) * 8


#: Matrices with at least this many rows are cut into two row chunks (:func:`_row_chunks`).
ROW_SPLIT_MIN = 8192

def _row_chunks(A):
    """The row chunks of a float64 CSR matrix A: [A] when it has fewer than
    :data:`ROW_SPLIT_MIN` rows, else [A[:h], A[h:]] with h = ⌊n/2⌋ rounded down to a
    multiple of :data:`LOSS_ROWS` (and so of :data:`SCATTER_ROWS`).

    Each chunk's sums (the transposed product, the loss) are computed whole, by one thread
    per column group, and the two chunks' sums are then added (chunk 0 + chunk 1): two
    threads can share a gradient by rows (each streams half the matrix, every column in
    full-width register panels) and the bits depend on the data only, never on the number
    of threads or on the other columns.  Built (copies of the rows) at each call: the kernels
    take them through :func:`_prepared_chunks`, which keeps them while A lives.
    """
    if A.shape[0] < ROW_SPLIT_MIN:
        return [A]
    h = (A.shape[0] // 2) // LOSS_ROWS * LOSS_ROWS
    return [A[:h], A[h:]]


#: Workspaces of :func:`_run` kept per calling thread (:func:`_workspace`); at most this many
#: per thread, and none above :data:`WORKSPACE_MAX_BYTES`.
WORKSPACE_ENTRIES = 4
WORKSPACE_MAX_BYTES = 64 << 20

_WORKSPACES = threading.local()


class _Workspace:
    """The buffers and thread tasks of one shape of :func:`_run` call, built once and reused
    by the calls that follow (the engine calls the same shape at every step): aligned,
    padded copies of the iterate's column slices (shared by the row chunks), each chunk's
    gradient and loss sums per slice, and the task closures.  Scratch only: no reference
    to a matrix is kept between calls (:meth:`run` is given the chunks).

    Parameters
    ----------
    nchunks : int
        Row chunks of the matrix (:func:`_row_chunks`).
    d, R : int
        Rows and columns of the iterate block Y.
    value, grad : bool
        What the calls compute (loss sums, gradient sums).
    k : int
        Threads: row chunks first, then column groups (:func:`_column_cuts`).
    """

    def __init__(self, nchunks, d, R, value, grad, k):
        self.chunks, self.value, self.grad = None, value, grad
        cuts = _column_cuts(R, max(1, k // nchunks))
        # the column slices: each group's columns by PANEL_COLS, (first column, width, padded)
        self.groups = []
        for g in range(len(cuts) - 1):
            c0, w = cuts[g], cuts[g + 1] - cuts[g]
            self.groups.append([(a, min(PANEL_COLS, c0 + w - a), _padded_width(min(PANEL_COLS, c0 + w - a)))
                                for a in range(c0, c0 + w, PANEL_COLS)])
        self.slices = [sl for grp in self.groups for sl in grp]
        self.Y = [_aligned_zeros((d, wp)) for _, _, wp in self.slices]
        self.G = [[_aligned_zeros((d, wp)) if grad else np.zeros((1, 1)) for _, _, wp in self.slices]
                  for _ in range(nchunks)]
        self.L = [[np.zeros(wp) for _, _, wp in self.slices] for _ in range(nchunks)]
        first = np.cumsum([0] + [len(grp) for grp in self.groups])
        self.tasks = [lambda c=c, g=g: self._part(c, range(first[g], first[g + 1]))
                      for c in range(nchunks) for g in range(len(self.groups))]
        self.nbytes = 8 * d * sum(wp for _, _, wp in self.slices) * (1 + nchunks * grad)

    def run(self, chunks, threads):
        """Run every task for the row chunks ``chunks`` (:func:`_prepared` of each): on the
        thread pool when ``threads`` > 1, else one after the other in this thread."""
        self.chunks = chunks
        tasks = self.tasks
        if threads > 1 and len(chunks) == 2 and _cost(chunks[1]) > _cost(chunks[0]):
            # the costlier chunk first: the first task runs in this thread, which starts
            # before the pool's (the results are the same either way)
            tasks = tasks[::-1]
        try:
            _run_tasks(tasks) if threads > 1 else [t() for t in tasks]
        finally:
            self.chunks = None

    def _part(self, c, slices):
        _, (ptr, idx, val), blocked = self.chunks[c]
        for q in slices:
            G = self.G[c][q]
            if self.grad:
                G.fill(0.0)                   # the kernel adds the blocks' sums into G
            _grad_kernel(ptr, idx, val, *blocked, SCATTER_ROWS, self.Y[q], G, self.L[c][q], self.value, self.grad)


def _cost(chunk):
    """Relative cost of a row chunk (:func:`_prepared`) in the gradient kernel: its non-zeros
    (two products) plus 4 per row (a sigmoid costs about 4 non-zeros' multiply-adds)."""
    ptr = chunk[1][0]
    return int(ptr[-1]) + 4 * (ptr.size - 1)


def _workspace(nchunks, d, R, value, grad, k):
    """The calling thread's :class:`_Workspace` for this shape of call, kept for the calls
    that follow (the :data:`WORKSPACE_ENTRIES` most recently used shapes; shapes over
    :data:`WORKSPACE_MAX_BYTES` are built for one call and not kept)."""
    key = (nchunks, d, R, value, grad, k)
    cache = getattr(_WORKSPACES, "entries", None)
    if cache is None:
        cache = _WORKSPACES.entries = {}
    ws = cache.pop(key, None)
    if ws is not None:
        cache[key] = ws                       # most recently used last
        return ws
    ws = _Workspace(nchunks, d, R, value, grad, k)
    if ws.nbytes <= WORKSPACE_MAX_BYTES:
        cache[key] = ws
        while len(cache) > WORKSPACE_ENTRIES:
            cache.pop(next(iter(cache)))
    return ws


def _run(A, Y, value, grad, groups, scale=None, l2=None):
    """(one, L, G): the loss sums L (R,) and the gradient sums G (d, R) of the logistic pieces,
    chunk 0 + chunk 1 (+ …) in chunk order; G then divided by ``scale`` and added ``l2``·Y
    when given (each operation rounded as numpy's ``G /= scale; G + l2 * Y``)."""
    Yc, one = _cols(Y)
    d, R = Yc.shape
    A = _as_csr(A)
    if A.shape[1] != d:
        raise ValueError(f"A has {A.shape[1]} columns but Y has {d} rows")
    chunks = _prepared_chunks(A)
    k = _THREADS if groups is None else max(1, int(groups))

    if R == 1 and csr_matvec is not None:
        # one column: scipy's csr_matvec does the margins' operations in their order (the
        # same bits) and is faster than the panel loops at R = 1; then the fused sigmoid and
        # the transposed product in the blocked order of _scatter (_scatter1)
        Gs = [np.zeros((d, 1)) if grad else None for _ in chunks]
        Ls = [0.0] * len(chunks)

        def one_column(c):
            C, (ptr, idx, val), blocked = chunks[c]
            n = C.shape[0]
            z = np.zeros(n)
            csr_matvec(n, d, C.indptr, C.indices, val, Yc.reshape(-1), z)
            w = np.empty(n)
            Ls[c] = _pieces1(z, w, value, grad)
            if grad:
                _scatter1(ptr, idx, val, blocked[0], blocked[1], SCATTER_ROWS, w, Gs[c].reshape(-1))

        tasks = [lambda c=c: one_column(c) for c in range(len(chunks))]
        _run_tasks(tasks) if k > 1 else [t() for t in tasks]
        G, L = Gs[0], np.array([Ls[0]])
        for c in range(1, len(chunks)):
            L += Ls[c]
            if grad:
                G += Gs[c]
        if grad and scale is not None:
            G /= scale
        if grad and l2 is not None:
            G = G + l2 * Yc
        return one, L, G

    # the chunks in parallel first, then column groups within each; every slice of columns
    # run on a 64-byte aligned padded copy (_padded_width), shared by the chunks
    ws = _workspace(len(chunks), d, R, value, grad, k)
    for (a, wa, _), Yp in zip(ws.slices, ws.Y):
        _copy_in(Yc, a, Yp, wa)
    ws.run(chunks, k)
    L = np.empty(R)
    for q, (a, wa, _) in enumerate(ws.slices):
        L[a:a + wa] = ws.L[0][q][:wa]
        for c in range(1, len(chunks)):
            L[a:a + wa] += ws.L[c][q][:wa]
    if not grad:
        return one, L, np.zeros((1, 1))
    G = np.empty((d, R))
    two = len(chunks) == 2                        # _row_chunks: one chunk or two
    for q, (a, wa, _) in enumerate(ws.slices):
        G0 = ws.G[0][q]
        _finish(G0, ws.G[1][q] if two else G0, two, a, wa, 1.0 if scale is None else float(scale),
                scale is not None, 0.0 if l2 is None else float(l2), Yc, l2 is not None, G)
    return one, L, G


def logistic_grad(A, Y, groups=None, scale=None, l2=None):
    """Σ_i a_i / (1 + exp(a_iᵀ y_r)) for every column y_r: the data gradient times −n.

    Parameters
    ----------
    A : scipy.sparse matrix (n, d)
        Rows pre-multiplied by their labels (``Ab`` of mast-theory §3.2).
    Y : ndarray (d,) or (d, R)
    groups : int, optional
        Threads (row chunks, then column groups); :func:`threads` by default.  The result
        is the same bits for any value.
    scale : float, optional
        Divide the sums by this (−n gives the data term's gradient, mast-theory §3.2).
    l2 : float, optional
        Then add l2·y (the ℓ2 penalty's gradient λy).  Both in the same pass, each
        operation rounded as numpy's ``G /= scale; G + l2 * Y`` (the same bits).

    Returns
    -------
    ndarray (d,) or (d, R)
    """
    one, _, G = _run(A, Y, False, True, groups, scale, l2)
    return G[:, 0] if one else G


def logistic_value(A, Y, groups=None):
    """Σ_i log(1 + exp(−a_iᵀ y_r)) for every column: array (R,) (a float for Y (d,))."""
    one, L, _ = _run(A, Y, True, False, groups)
    return float(L[0]) if one else L


def logistic_value_grad(A, Y, groups=None):
    """(:func:`logistic_value`, :func:`logistic_grad`) in one pass over A."""
    one, L, G = _run(A, Y, True, True, groups)
    return (float(L[0]), G[:, 0]) if one else (L, G)


def sign_counts(A, y, W, groups=None):
    """Number of rows i with y_i (A W)_{ir} > 0 for every column r: int array (R,).

    A : sparse (m, d); y : (m,); W : (d, R).  Margins per row block, never all m × R.
    Raises ValueError when the shapes disagree (the kernel does not check its indices).
    """
    ptr, idx, val = _csr(A)
    Wc, _ = _cols(W)
    m, d = A.shape
    if Wc.shape[0] != d or np.shape(y) != (m,):
        raise ValueError(f"sign_counts: A is {m} x {d}, so y must be ({m},) and W ({d}, R); "
                         f"got y {np.shape(y)} and W {np.shape(W)}")
    counts = np.zeros(Wc.shape[1], dtype=np.int64)
    yc = np.ascontiguousarray(y, dtype=np.float64)
    def part(c0, w):
        for a in range(c0, c0 + w, PANEL_COLS):   # slices, aligned and padded as in _run
            wa = min(PANEL_COLS, c0 + w - a)
            wp = _padded_width(wa)
            Wp = _aligned_zeros((Wc.shape[0], wp))
            Wp[:, :wa] = Wc[:, a:a + wa]
            cp = np.zeros(wp, dtype=np.int64)
            _sign_kernel(ptr, idx, val, yc, Wp, cp)
            counts[a:a + wa] = cp[:wa]

    _each_group(part, Wc.shape[1], groups)
    return counts


def logistic_grad_rows(A, rows, cols, weights, Y):
    """Σ_k −w_k a_{rows_k} / (1 + exp(a_{rows_k}ᵀ y_{cols_k})) into column cols_k: (d, R).

    The sampled data gradients of Algorithm 1 (II), one pass over the selected rows in
    order (so each column's sum runs in the order its samples are given).
    Raises ValueError for a row or column index out of range or lengths that disagree (the
    kernel does not check its indices).
    """
    ptr, idx, val = _csr(A)
    Yc, _ = _cols(Y)
    n, d = A.shape
    rows = np.ascontiguousarray(np.reshape(rows, -1), dtype=np.int64)
    cols = np.ascontiguousarray(np.reshape(cols, -1), dtype=np.int64)
    weights = np.ascontiguousarray(np.reshape(weights, -1), dtype=np.float64)
    R = Yc.shape[1]
    if Yc.shape[0] != d or not rows.size == cols.size == weights.size:
        raise ValueError(f"logistic_grad_rows: A is {n} x {d}, Y must be ({d}, R) and rows, cols, "
                         f"weights of one length; got Y {np.shape(Y)}, {rows.size}, {cols.size}, {weights.size}")
    if rows.size and (rows.min() < 0 or rows.max() >= n or cols.min() < 0 or cols.max() >= R):
        raise ValueError(f"logistic_grad_rows: row indices must be in [0, {n}) and column indices in "
                         f"[0, {R})")
    G = np.zeros(Yc.shape)
    _rows_kernel(ptr, idx, val, rows, cols, weights, Yc, G)
    return G


if numba is not None:
    @njit(cache=True, nogil=True, error_model="numpy")
    def _copy_in(Yc, a, Yp, wa):
        d = Yc.shape[0]
        for j in range(d):
            for c in range(wa):
                Yp[j, c] = Yc[j, a + c]

    @njit(cache=True, nogil=True, error_model="numpy")
    def _finish(G0, G1, two, a, wa, scale, do_scale, lam, Y, do_l2, out):
        # out[:, a + c] = ((G0 + G1) / scale) + lam·Y, each operation rounded as numpy's
        d = G0.shape[0]
        for j in range(d):
            for c in range(wa):
                g = G0[j, c] + G1[j, c] if two else G0[j, c]
                if do_scale:
                    g = g / scale
                if do_l2:
                    g = g + lam * Y[j, a + c]
                out[j, a + c] = g

    @njit(cache=True, nogil=True, error_model="numpy")
    def _sketched_model(X, v, S, Y):
        d, R = X.shape
        for j in range(d):
            for r in range(R):
                Y[j, r] = v[j, r] + S[j, r] * (X[j, r] - v[j, r])

    @njit(cache=True, nogil=True, error_model="numpy")
    def _sketched_step(X, S, G, coef, finite):
        d, R = X.shape
        for r in range(R):
            finite[r] = True
        for j in range(d):
            for r in range(R):
                x = X[j, r] - coef[r] * (S[j, r] * G[j, r])
                X[j, r] = x
                if not (x - x == 0.0):           # inf or NaN
                    finite[r] = False


    @njit(cache=True, nogil=True, error_model="numpy")
    def _bernoulli_bank(U, P, Q, bank, nnz):
        R, T, d = U.shape
        for t in range(T):
            for r in range(R):
                c = 0
                for j in range(d):
                    keep = U[r, t, j] < P[r, j]
                    bank[t, j, r] = Q[r, j] * keep          # 1/p or +0.0 (= 0.0/p), no branch
                    c += np.int64(keep)
                nnz[t, r] = c


def bernoulli_bank(U, P, out, nnz):
    """Bernoulli sketch diagonals s_j = c_j/p_j, c_j = [u_j < p_j], of R trajectories from
    their uniforms, laid out step by step.

    Parameters
    ----------
    U : ndarray of shape (R, T, d)
        Uniforms in [0, 1): trajectory r's T steps (as its generator drew them).
    P : ndarray of shape (R, d)
        Keep probabilities p of each trajectory's sketch, in (0, 1].
    out : ndarray of shape (T, d, R)
        Receives s (float64): ``out[t, :, r]`` is trajectory r's sketch at step t, the same
        bits as :meth:`Bernoulli.sample <mast_cli.core.sketches.Bernoulli.sample>`
        (``(u < p) / p``).
    nnz : ndarray of shape (T, R) of int64
        Receives the number of kept coordinates of each sketch.

    Returns
    -------
    ndarray of shape (T, d, R)
        ``out`` (mast-theory §2.1, Example 1 of the paper).
    """
    if ENABLED:
        _bernoulli_bank(U, P, 1.0 / P, out, nnz)
    else:
        keep = U < P[:, None, :]
        out[...] = np.where(keep, 1.0 / P[:, None, :], 0.0).transpose(1, 2, 0)
        nnz[...] = keep.sum(axis=2).T
    return out


def sketched_model(X, v, S, out):
    """The sparse models y = v + S(x − v) of R trajectories, written into ``out``.

    Parameters
    ----------
    X, v, S : ndarray of shape (d, R)
        Iterates x, shifts v and sketch diagonals S (one column per trajectory).
    out : ndarray of shape (d, R)
        Receives y (float64).

    Returns
    -------
    ndarray of shape (d, R)
        ``out``: the same bits as numpy's ``v + S * (X - v)`` (the same operations, not
        fused), in one pass (Algorithm 1 line 3; mast-theory §4).
    """
    if ENABLED and all(a.dtype == np.float64 for a in (X, v, S, out)):
        _sketched_model(X, v, S, out)
    else:
        np.add(v, S * (X - v), out=out)
    return out


def sketched_step(X, S, G, coef, finite=None):
    """x ← x − γ S g for R trajectories in place, and which columns stayed finite.

    Parameters
    ----------
    X : ndarray of shape (d, R)
        Iterates, updated in place.
    S, G : ndarray of shape (d, R)
        Sketch diagonals and gradients at the sparse models.
    coef : ndarray of shape (R,)
        Step size of each trajectory (0 for a trajectory that must not move).
    finite : ndarray of shape (R,) of bool, optional
        Receives whether each column of the new X is all finite.

    Returns
    -------
    ndarray of shape (R,) of bool
        ``finite``.  X gets the same bits as numpy's ``X -= coef * (S * G)``, in one pass
        (Algorithm 1 line 4; mast-theory §4).
    """
    finite = np.empty(X.shape[1], dtype=bool) if finite is None else finite
    if ENABLED and all(a.dtype == np.float64 for a in (X, S, G, coef)):
        _sketched_step(X, S, G, coef, finite)
    else:
        X -= coef * (S * G)
        np.isfinite(X).all(axis=0, out=finite)
    return finite


def warmup():
    """Compile (or load from the disk cache) every kernel; returns the seconds it took."""
    import scipy.sparse as sp

    t0 = time.perf_counter()
    A = sp.random(40, 5, density=0.5, format="csr", random_state=0)
    for R in (1, 20):
        Y = np.ones((5, R))
        logistic_value_grad(A, Y, groups=1)
        logistic_grad(A, Y, groups=1)
        logistic_value(A, Y, groups=1)
        sign_counts(A, np.ones(40), Y, groups=1)
    logistic_grad_rows(A, np.arange(3), np.zeros(3, dtype=np.int64), np.ones(3), np.ones((5, 1)))
    exp(np.zeros(2))
    exp_neg_abs(np.zeros(2))
    expit_neg(np.zeros(2))
    log1p(np.zeros(2))
    logloss(np.zeros(2))
    Z = np.ones((5, 2))
    sketched_model(Z, Z, Z, np.empty((5, 2)))
    sketched_step(Z.copy(), Z, Z, np.ones(2))
    bernoulli_bank(np.zeros((2, 1, 5)), np.ones((2, 5)), np.empty((1, 5, 2)), np.empty((1, 2), dtype=np.int64))
    return time.perf_counter() - t0


def first_call_seconds():
    """Seconds of :func:`warmup` in a fresh interpreter (disk cache as it stands)."""
    import subprocess
    import sys

    code = "import time; t=time.perf_counter(); from mast_cli.core import fused; fused.warmup(); print(time.perf_counter()-t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


