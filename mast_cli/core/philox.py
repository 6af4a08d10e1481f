"""Counter-based random streams for the device engine: Philox4x32-10, keyed per trajectory.

Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011) maps
a 128-bit counter and a 64-bit key to 128 random bits with ten rounds of 32-bit multiply,
xor and key bumps.  It needs no state: any draw can be computed directly from
(key, counter), so all R trajectories draw their step-t numbers in one elementwise pass,
on the CPU or the GPU, with the same bits (integer arithmetic only).

Layout used by the device engine (a trajectory is identified by its seed, as in the CPU
engine, whose streams are ``SeedSequence(seed)``):

    key     = (seed mod 2³², ⌊seed / 2³²⌋ mod 2³²)
    counter = (block j, step t, stream σ, 0)

Stream σ = 0 draws sketches, 1 data rows, 2 algorithm coins, 3 reference batches (the
roles of :func:`mast_cli.algorithms._engine.streams`); block j yields uniforms 2j and 2j + 1
of that (t, σ).  A trajectory's numbers therefore depend only on its seed, never on the
batch or chunk it runs in.  The uniform doubles take 53 bits from two 32-bit words
(``(a >> 5)·2²⁶ + (b >> 6)``, divided by 2⁵³), as NumPy and Random123 do, so they lie
in [0, 1) on a grid of 2⁻⁵³.

These streams differ from the CPU engine's PCG64 streams: CPU and device runs agree in
distribution, not draw by draw (and exactly with the identity sketch, which draws
nothing).
"""

from __future__ import annotations

import numpy as np

__all__ = ["philox4x32", "uniforms", "normals", "seed_keys", "STREAM_SKETCH", "STREAM_ROWS", "STREAM_COIN",
           "STREAM_BATCH"]

STREAM_SKETCH, STREAM_ROWS, STREAM_COIN, STREAM_BATCH = 0, 1, 2, 3

_M0, _M1 = 0xD2511F53, 0xCD9E8D57        # Philox multipliers
_W0, _W1 = 0x9E3779B9, 0xBB67AE85        # Weyl key increments
_MASK = 0xFFFFFFFF
ROUNDS = 10


def philox4x32(xp, c0, c1, c2, c3, k0, k1, rounds=ROUNDS):
    """Philox4x32-``rounds`` on broadcastable uint32-valued arrays (held as uint64).

    Parameters
    ----------
    xp : module
        ``numpy`` or ``cupy``.
    c0, c1, c2, c3 : arrays of integers in [0, 2³²)
        The counter words.
    k0, k1 : arrays of integers in [0, 2³²)
        The key words.

    Returns
    -------
    tuple of 4 uint64 arrays with values in [0, 2³²)
        The output words (Random123's known-answer vectors are in tests/test_device.py).
    """
    u64 = xp.uint64
    c0, c1, c2, c3 = (xp.asarray(c, dtype=u64) for c in (c0, c1, c2, c3))
    k0, k1 = xp.asarray(k0, dtype=u64), xp.asarray(k1, dtype=u64)
    m0, m1, mask, s32 = u64(_M0), u64(_M1), u64(_MASK), u64(32)
    for r in range(rounds):
        if r:
            k0 = (k0 + u64(_W0)) & mask
            k1 = (k1 + u64(_W1)) & mask
        p0 = c0 * m0                          # < 2⁶⁴: exact in uint64
        p1 = c2 * m1
        c0, c1, c2, c3 = ((p1 >> s32) ^ c1 ^ k0, p1 & mask, (p0 >> s32) ^ c3 ^ k1, p0 & mask)
    return c0, c1, c2, c3


_KERNEL = None


def _cuda_kernel():
    """The same Philox as one fused CuPy elementwise kernel (one launch instead of ~100)."""
    global _KERNEL
    if _KERNEL is None:
        import cupy

        _KERNEL = cupy.ElementwiseKernel(
            "uint32 j, uint32 t, uint32 s, uint32 k0, uint32 k1", "float64 u0, float64 u1",
            """
            unsigned int c0 = j, c1 = t, c2 = s, c3 = 0, a = k0, b = k1;
            for (int r = 0; r < 10; ++r) {
                if (r) { a += 0x9E3779B9u; b += 0xBB67AE85u; }
                unsigned long long p0 = (unsigned long long)c0 * 0xD2511F53ull;
                unsigned long long p1 = (unsigned long long)c2 * 0xCD9E8D57ull;
                unsigned int n0 = (unsigned int)(p1 >> 32) ^ c1 ^ a;
                unsigned int n2 = (unsigned int)(p0 >> 32) ^ c3 ^ b;
                c1 = (unsigned int)p1; c3 = (unsigned int)p0; c0 = n0; c2 = n2;
            }
            u0 = ((double)(c0 >> 5) * 67108864.0 + (double)(c1 >> 6)) * (1.0 / 9007199254740992.0);
            u1 = ((double)(c2 >> 5) * 67108864.0 + (double)(c3 >> 6)) * (1.0 / 9007199254740992.0);
            """,
            "mast_philox_uniforms")
    return _KERNEL


def seed_keys(xp, seeds):
    """The Philox keys (k0, k1) of trajectories with these seeds: two uint64 arrays (R,)."""
    s = np.asarray(seeds, dtype=np.uint64).reshape(-1)
    mask = np.uint64(_MASK)
    return xp.asarray(s & mask), xp.asarray(s >> np.uint64(32))


def _to_unit(xp, a, b):
    """53-bit uniform doubles in [0, 1) from two 32-bit words."""
    hi = (a >> xp.uint64(5)).astype(xp.float64)
    lo = (b >> xp.uint64(6)).astype(xp.float64)
    return (hi * 67108864.0 + lo) * (1.0 / 9007199254740992.0)


def uniforms(xp, keys, t, stream, m, fused=None):
    """m uniforms in [0, 1) per trajectory at step ``t`` of ``stream``: array (m, R).

    Column r uses the key of trajectory r; row i comes from counter block i // 2
    (words 0-1 for even i, 2-3 for odd i).

    Parameters
    ----------
    xp : module
    keys : (k0, k1) uint64 arrays (R,)
        From :func:`seed_keys`.
    t : int
        Step (counter word 1), 0 ≤ t < 2³².
    stream : int
        Stream σ (counter word 2).
    m : int
        Numbers per trajectory.
    fused : bool, optional
        Use the fused CUDA kernel (default: when ``xp`` is CuPy).  Same bits either way.
    """
    k0, k1 = keys
    R = k0.shape[0]
    nb = (m + 1) // 2
    if fused is None:
        fused = xp.__name__ == "cupy"
    j = xp.arange(nb, dtype=xp.uint64)[:, None]
    if fused:
        u32 = xp.uint32
        shape = (nb, R)
        u0, u1 = _cuda_kernel()(xp.broadcast_to(j.astype(u32), shape), u32(t), u32(stream),
                                xp.broadcast_to(k0.astype(u32)[None, :], shape),
                                xp.broadcast_to(k1.astype(u32)[None, :], shape))
    else:
        c0, c1, c2, c3 = philox4x32(xp, j, t, stream, 0, k0[None, :], k1[None, :])
        u0, u1 = _to_unit(xp, c0, c1), _to_unit(xp, c2, c3)
    out = xp.empty((2 * nb, R), dtype=xp.float64)
    out[0::2] = u0
    out[1::2] = u1
    return out[:m]


def normals(xp, keys, t, stream, m, fused=None):
    """m standard normals per trajectory (Box–Muller on pairs of :func:`uniforms`): (m, R)."""
    nb = (m + 1) // 2
    U = uniforms(xp, keys, t, stream, 2 * nb, fused)
    rad = xp.sqrt(-2.0 * xp.log1p(-U[0::2]))       # 1 − u ∈ (0, 1]: finite
    ang = (2.0 * np.pi) * U[1::2]
    out = xp.empty((2 * nb, U.shape[1]), dtype=xp.float64)
    out[0::2] = rad * xp.cos(ang)
    out[1::2] = rad * xp.sin(ang)
    return out[:m]
