"""The fused numba kernels (mast_cli/core/fused.py) against independent references:
the exp/log1p against long-double numpy, the batched pieces against the numpy/scipy
path (kept as the fallback), thread-count and batch independence bit for bit."""

import numpy as np
import pytest
import scipy.sparse as sp

fused = pytest.importorskip("mast_cli.core.fused")
if not fused.ENABLED:  # pragma: no cover
    pytest.skip("fused kernels disabled (numba missing or MAST_KERNELS=numpy)", allow_module_level=True)


def ulp_distance(a, b):
    """|a − b| in units in the last place (monotone integer map of the doubles)."""
    ia = np.asarray(a, dtype=np.float64).view(np.int64)
    ib = np.asarray(b, dtype=np.float64).view(np.int64)
    ia = np.where(ia < 0, np.int64(-(2**63)) - ia, ia)
    ib = np.where(ib < 0, np.int64(-(2**63)) - ib, ib)
    return np.abs(ia - ib)


SPECIAL = np.array([0.0, -0.0, 1e-300, -1e-300, 5e-324, 1.0, -1.0, 0.5 * np.log(2),
                    709.0, 709.78, 709.782712893384, 709.7827128933841, 709.79, 710.0, 745.0, 800.0, 1e308,
                    -708.0, -708.3964185322641, -708.4, -709.0, -720.0, -744.4400719213812,
                    -745.0, -745.1332191019411, -745.1332191019412, -745.2, -746.0, -1e308])


def _exp_reference(x):
    """e^x in long double, rounded once to float64 (correctly rounded up to ~1e-19 relative)."""
    if np.finfo(np.longdouble).nmant < 60:  # pragma: no cover - platforms without 80-bit long double
        pytest.skip("no extended precision long double for the reference")
    with np.errstate(over="ignore", under="ignore"):
        return np.exp(x.astype(np.longdouble)).astype(np.float64)


def test_exp_within_2_ulp_over_the_whole_double_range(rng):
    x = np.concatenate([
        rng.uniform(-746.0, 710.0, 400_000),                 # every exponent of the result
        rng.uniform(-1.0, 1.0, 100_000),
        rng.uniform(-746.0, -708.0, 100_000),                # subnormal results
        rng.uniform(700.0, 709.8, 50_000),                   # near overflow
        np.nextafter(SPECIAL, np.inf), SPECIAL, np.nextafter(SPECIAL, -np.inf),
        -SPECIAL,
    ])
    got = fused.exp(x)
    ref = _exp_reference(x)
    assert ulp_distance(got, ref).max() <= 2
    with np.errstate(over="ignore"):
        assert ulp_distance(got, np.exp(x)).max() <= 2
    # overflow, underflow and the subnormal range behave as numpy's
    assert np.all(np.isinf(got[x > 709.7827128933841])) and np.all(got[x < -745.2] == 0.0)
    sub = (ref > 0) & (ref < np.finfo(np.float64).tiny)
    assert sub.sum() > 10_000 and np.all(got[sub] > 0)


def test_exp_non_finite_inputs():
    got = fused.exp(np.array([np.inf, -np.inf, np.nan, -np.nan]))
    assert got[0] == np.inf and got[1] == 0.0 and np.isnan(got[2]) and np.isnan(got[3])


def _logistic_inputs(rng):
    """Margins over every range the logistic pieces see: moderate, large (e^−|z| subnormal
    from |z| ≈ 708, zero beyond 745.13), the specials of both signs and non-finite values."""
    return np.concatenate([
        rng.uniform(-40.0, 40.0, 300_000), rng.uniform(-1.0, 1.0, 100_000),
        rng.uniform(-800.0, 800.0, 200_000),
        rng.uniform(700.0, 746.0, 100_000), rng.uniform(-746.0, -700.0, 100_000),
        np.nextafter(SPECIAL, np.inf), SPECIAL, np.nextafter(SPECIAL, -np.inf), -SPECIAL,
        [np.inf, -np.inf, np.nan, -np.nan],
    ])


def test_exp_neg_abs_within_1_ulp(rng):
    """e^−|z| (the exp of the gradient and loss kernels: 8-entry table + polynomial) against
    long double rounded once: ≤ 1 ulp, subnormal results kept, 0 beyond e⁻⁷⁴⁵, NaN as NaN."""
    z = _logistic_inputs(rng)
    got = fused.exp_neg_abs(z)
    fin = ~np.isnan(z)
    ref = _exp_reference(-np.abs(z[fin]))
    err = ulp_distance(got[fin], ref)
    assert err.max() <= 1
    assert np.mean(err == 0) >= 0.95        # measured 98.6% correctly rounded (81% without c_j)
    sub = (ref > 0) & (ref < np.finfo(np.float64).tiny)
    assert sub.sum() > 10_000 and np.all(got[fin][sub] > 0)
    assert np.all(got[np.abs(z) > 745.2] == 0.0) and np.all(np.isnan(got[~fin]))


def test_expit_neg_within_2_ulp(rng):
    """1/(1 + eᶻ) (the gradient's weights) against long double: ≤ 2 ulp everywhere, subnormal
    weights for z in (708, 745] (numpy's 1/(1 + exp(z)) flushes them to 0 once exp overflows),
    1 at −inf, 0 at +inf, NaN as NaN."""
    z = _logistic_inputs(rng)
    got = fused.expit_neg(z)
    fin = ~np.isnan(z)
    with np.errstate(over="ignore"):
        zl = z[fin].astype(np.longdouble)
        ref = (1 / (1 + np.exp(zl))).astype(np.float64)
    assert ulp_distance(got[fin], ref).max() <= 2
    sub = (ref > 0) & (ref < np.finfo(np.float64).tiny)
    assert sub.sum() > 10_000 and np.all(got[fin][sub] > 0)
    assert np.all(np.isnan(got[~fin]))
    assert fused.expit_neg(np.array([-np.inf, np.inf, 0.0, -0.0])).tolist() == [1.0, 0.0, 0.5, 0.5]
    # against the numpy path where exp does not overflow: a few ulp
    ok = fin & (z < 709.0)
    assert ulp_distance(got[ok], 1.0 / (1.0 + np.exp(z[ok]))).max() <= 4


def test_scalar_exp_is_the_block_code(rng):
    """The scalar twins (the sampled-rows kernel, logloss) give the vector code's bits, and
    a column's weights are the same whether its exps came from the loss pass or not."""
    z = _logistic_inputs(rng)
    em, sg = np.empty_like(z), np.empty_like(z)
    fused._scalar_twins(z, em, sg)
    assert np.array_equal(em * 2.0**-64, fused.exp_neg_abs(z), equal_nan=True)
    assert np.array_equal(sg, fused.expit_neg(z), equal_nan=True)


def test_generic_lookup_gives_the_same_bits(tmp_path):
    """Without AVX-512 the table is read lane by lane instead of by a register permute: the
    same numbers (run in a child whose numba targets an AVX2 CPU)."""
    import os
    import subprocess
    import sys

    from numba.core.registry import cpu_target

    if "+avx512f" not in (getattr(cpu_target.target_context.codegen(), "_tm_features", "") or "").split(","):
        pytest.skip("the host has no AVX-512: only the generic lookup is compiled here")
    code = ("import sys, numpy as np; from mast_cli.core import fused; "
            "z = np.linspace(-760.0, 760.0, 20_011); z[::97] *= 1e-3; "
            "np.save(sys.argv[1], np.stack([fused.exp_neg_abs(z), fused.expit_neg(z)]))")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), NUMBA_CPU_NAME="haswell",
               NUMBA_CPU_FEATURES="+64bit,+avx,+avx2,+fma,+sse,+sse2,+sse3,+ssse3,+sse4.1,+sse4.2,"
                                  "+popcnt,+cmov,+bmi,+bmi2,+f16c,+lzcnt,+movbe")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "g.npy")], env=env, check=True)
    z = np.linspace(-760.0, 760.0, 20_011)
    z[::97] *= 1e-3
    assert np.array_equal(np.load(tmp_path / "g.npy"), np.stack([fused.exp_neg_abs(z), fused.expit_neg(z)]))


def test_log1p_and_logistic_loss(rng):
    u = np.concatenate([rng.uniform(0, 1, 200_000), 10.0 ** rng.uniform(-320, 0, 50_000),
                        [0.0, 1.0, 5e-324, 2.0**-53, np.sqrt(2) - 1, np.nextafter(np.sqrt(2) - 1, 0)]])
    ref = np.log1p(u.astype(np.longdouble)).astype(np.float64)
    assert ulp_distance(fused.log1p(u), ref).max() <= 2
    z = np.concatenate([rng.uniform(-800, 800, 100_000), rng.uniform(-40, 40, 100_000), SPECIAL, -SPECIAL])
    ref = np.logaddexp(0.0, -z.astype(np.longdouble)).astype(np.float64)
    got = fused.logloss(z)
    assert ulp_distance(got, ref).max() <= 3
    special = fused.logloss(np.array([np.inf, -np.inf, np.nan]))
    assert special[0] == 0.0 and special[1] == np.inf and np.isnan(special[2])


def _reference_grad(obj, X):
    """The numpy/scipy path: A·X, −σ(−z), Aᵀ·w (objectives' own fallback code)."""
    from mast_cli.core.kernels import neg_sigmoid

    return obj.back(neg_sigmoid(obj.margins(X)))


def _relerr(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


@pytest.mark.parametrize("R", [1, 7, 600])
def test_grad_matches_the_numpy_path(a1a_obj, rng, R):
    X = rng.standard_normal((a1a_obj.d, R)) * 0.5
    X[0, 0] = 1e6                                   # exp overflow -> exact 0 weights
    ref = _reference_grad(a1a_obj, X)
    got = -fused.logistic_grad(a1a_obj.Ab, X) / a1a_obj.n
    assert _relerr(got, ref) <= 1e-12
    assert np.all(np.isfinite(got))
    # the objective's public methods go through the kernel
    assert _relerr(a1a_obj.grad(X), ref + a1a_obj.penalty.grad(X)) <= 1e-12
    assert _relerr(a1a_obj.grad(X[:, 0]), ref[:, 0] + a1a_obj.penalty.grad(X[:, 0])) <= 1e-12


@pytest.mark.parametrize("R", [1, 40])
def test_value_and_value_grad_match_the_numpy_path(a1a_obj, rng, R, monkeypatch):
    X = rng.standard_normal((a1a_obj.d, R)) * 0.5
    got_v = a1a_obj.value(X)
    got_vg = a1a_obj.value_grad(X)
    monkeypatch.setattr(fused, "ENABLED", False)
    ref_v = a1a_obj.value(X)
    ref_val, ref_g = a1a_obj.value_grad(X)
    assert _relerr(np.atleast_1d(got_v), np.atleast_1d(ref_v)) <= 1e-12
    assert _relerr(np.atleast_1d(got_vg[0]), np.atleast_1d(ref_val)) <= 1e-12
    assert _relerr(got_vg[1], ref_g) <= 1e-12


def test_results_do_not_depend_on_threads_or_batch(a1a_obj, rng):
    X = rng.standard_normal((a1a_obj.d, 50)) * 0.5
    base_g = fused.logistic_grad(a1a_obj.Ab, X, groups=1)
    base_v, base_vg = fused.logistic_value_grad(a1a_obj.Ab, X, groups=1)
    # the gradient reuses the loss pass's exps: the same weights, the same bits
    assert np.array_equal(base_vg, base_g)
    assert np.array_equal(fused.logistic_value_grad(a1a_obj.Ab, X[:, 4])[1], base_g[:, 4])
    for k in (2, 3, 6):
        assert np.array_equal(fused.logistic_grad(a1a_obj.Ab, X, groups=k), base_g)
        v, g = fused.logistic_value_grad(a1a_obj.Ab, X, groups=k)
        assert np.array_equal(v, base_v) and np.array_equal(g, base_vg)
    # a column's numbers do not depend on the other columns of the batch
    assert np.array_equal(fused.logistic_grad(a1a_obj.Ab, X[:, 10:13]), base_g[:, 10:13])
    assert np.array_equal(fused.logistic_value(a1a_obj.Ab, X[:, 10:13]), base_v[10:13])
    # one column alone (scipy's csr_matvec, the fused sigmoid/loss, the scalar blocked
    # transposed product _scatter1) as well
    v1, g1 = fused.logistic_value_grad(a1a_obj.Ab, X[:, 4])
    assert np.array_equal(g1, base_vg[:, 4]) and v1 == base_v[4]
    assert np.array_equal(fused.logistic_grad(a1a_obj.Ab, X[:, 4:5])[:, 0], base_g[:, 4])
    # MAST_THREADS / set_threads switches the default
    old = fused.threads()
    try:
        fused.set_threads(2)
        assert fused._groups(50) == 2
        assert np.array_equal(a1a_obj.grad(X), -base_g / a1a_obj.n + a1a_obj.penalty.grad(X))
    finally:
        fused.set_threads(old)


@pytest.mark.parametrize("R", [1, 9, 700])
def test_sign_counts_are_the_full_product(a1a, rng, R):
    W = rng.standard_normal((a1a.X_test.shape[1], R))
    W[:, 0] = 0.0                                   # zero margins count as errors
    ref = (((a1a.X_test @ W) * a1a.y_test[:, None]) > 0).sum(axis=0)
    assert np.array_equal(fused.sign_counts(a1a.X_test, a1a.y_test, W), ref)
    assert np.array_equal(fused.sign_counts(a1a.X_test, a1a.y_test, W, groups=3), ref)


def _fork_child_grad(args):
    from mast_cli.core import kernels

    A, Y = args
    pooled = kernels.thread_pool(2).submit(lambda: 7).result(timeout=20)
    return fused.logistic_grad(A, Y, groups=2), pooled


def test_threads_work_in_a_forked_child(rng):
    """A process forked after the kernels' (and the numpy path's) thread pools started gets
    its own pools: the parent's threads do not exist there, and tasks queued on them hung
    forever (multiprocessing's default start method on Linux is fork)."""
    import multiprocessing as mp
    import scipy.sparse as sp

    from mast_cli.core import kernels

    A = sp.random(fused.ROW_SPLIT_MIN + 100, 30, density=0.2, format="csr", random_state=1)
    Y = rng.standard_normal((30, 16))
    G = fused.logistic_grad(A, Y, groups=2)          # starts the kernels' pool (2 row chunks)
    kernels.thread_pool(2).submit(lambda: 0).result()
    with mp.get_context("fork").Pool(1) as pool:
        ((Gc, pooled),) = pool.map_async(_fork_child_grad, [(A, Y)]).get(timeout=30)
    assert np.array_equal(Gc, G) and pooled == 7


def test_row_and_sign_kernels_refuse_out_of_range_inputs(a1a, rng):
    """The kernels index without bounds checks: the public wrappers refuse shapes and indices
    that would read outside the arrays (a short y was read past its end, a W with too few
    rows likewise) with a ValueError, and accept the valid edge (no samples)."""
    X, y = a1a.X_test[:50], a1a.y_test[:50]
    d = X.shape[1]
    W = rng.standard_normal((d, 3))
    for yy, WW in ((y[:10], W), (y, W[:-5]), (y, np.vstack([W, W]))):
        with pytest.raises(ValueError, match="sign_counts"):
            fused.sign_counts(X, yy, WW)
    one = np.ones(1)
    for rows, cols, wts, Y in (([50], [0], one, W), ([-1], [0], one, W), ([0], [3], one, W),
                               ([0], [-1], one, W), ([0, 1], [0], one, W), ([0], [0], one, W[:-1])):
        with pytest.raises(ValueError, match="logistic_grad_rows"):
            fused.logistic_grad_rows(X, rows, cols, wts, Y)
    assert not fused.logistic_grad_rows(X, [], [], [], W).any()
    assert fused.logistic_grad_rows(X, [49], [2], one, W)[:, :2].sum() == 0
    with pytest.raises(ValueError, match="vector"):           # (d, 2, 2) was read as 4 columns
        fused.logistic_grad(X, W.reshape(d, 1, 3))
    Z = sp.csr_matrix((fused.ROW_SPLIT_MIN, 0))                 # no features: loss n·log 2
    assert np.allclose(fused.logistic_value(Z, np.zeros((0, 2))), fused.ROW_SPLIT_MIN * np.log(2), rtol=1e-14)
    assert fused.logistic_grad(Z, np.zeros((0, 2))).shape == (0, 2)


def test_grad_rows_matches_the_sparse_path(a1a_obj, rng, monkeypatch):
    R, tau = 6, 17
    X = rng.standard_normal((a1a_obj.d, R)) * 0.5
    rows = rng.integers(0, a1a_obj.n, R * tau)
    cols = np.repeat(np.arange(R), tau)
    w = rng.uniform(0.5, 2.0, R * tau) / tau
    got = a1a_obj.grad_rows(X, rows, cols, w)
    monkeypatch.setattr(fused, "ENABLED", False)
    ref = a1a_obj.grad_rows(X, rows, cols, w)
    assert _relerr(got, ref) <= 1e-12


def test_distributed_pieces_match_the_numpy_path(a1a_obj, rng, monkeypatch):
    from mast_cli.algorithms.distributed import WorkerSplit, partition_rows

    split = WorkerSplit(a1a_obj, partition_rows(a1a_obj.n, 3, rng=np.random.default_rng(1)))
    X = rng.standard_normal((a1a_obj.d, 5)) * 0.3
    V = np.zeros_like(X)
    S = rng.binomial(1, 0.5, (3, a1a_obj.d, 5)) * 2.0
    g, v = split.sketched_grad(X, V, S), split.sketched_value(X, V, S)
    monkeypatch.setattr(fused, "ENABLED", False)
    assert _relerr(g, split.sketched_grad(X, V, S)) <= 1e-12
    assert _relerr(v, split.sketched_value(X, V, S)) <= 1e-12


def test_dense_and_odd_inputs(rng):
    A = sp.random(30, 4, density=0.6, format="csc", random_state=3)   # converted to CSR
    Y = rng.standard_normal(4)
    z = A @ Y
    assert _relerr(fused.logistic_grad(A, Y), A.T @ (1.0 / (1.0 + np.exp(z)))) <= 1e-14
    assert fused.logistic_value(A, Y) == pytest.approx(np.logaddexp(0, -z).sum(), rel=1e-14)
    with pytest.raises(ValueError, match="columns"):
        fused.logistic_grad(A, np.ones((5, 2)))


@pytest.mark.parametrize("scale", [1e-3, 1.0, 20.0, 40.0, 800.0])
def test_loss_totals_against_long_double(rng, scale):
    """Loss totals (one log per run of rows, core/fused.py) to a few ulp of the long-double sum,
    including columns whose every loss is tiny (all margins large: e^−z ≈ 1e-16..1e-26)."""
    LOSS_ROWS = fused.LOSS_ROWS
    if np.finfo(np.longdouble).nmant < 60:  # pragma: no cover
        pytest.skip("no extended precision long double for the reference")
    A = sp.random(3000, 20, density=0.3, format="lil", random_state=rng)
    A[:, 0] = 0.5                                               # no empty row (whose loss is log 2)
    A = A.tocsr()
    A.data = np.abs(A.data)
    Y = rng.standard_normal((20, 6)) * scale
    Y[:, 0] = np.abs(Y[:, 0])                                   # positive margins
    Y[:, 1] = 36.0 + np.abs(Y[:, 1])                           # every loss below 2e-16
    Y[:, 2] = 60.0                                             # every loss ~1e-26 .. 1e-90
    z = (A @ Y).astype(np.longdouble)
    ref = np.logaddexp(np.longdouble(0), -z).sum(axis=0)
    got = fused.logistic_value(A, Y)
    assert np.all(np.abs(got - ref) <= 4e-16 * np.abs(ref) * 4)
    # the one-column path sums in the same order (same bits)
    assert all(fused.logistic_value(A, Y[:, r]) == got[r] for r in range(Y.shape[1]))
    # q = 1 exactly (one row in a run, z = 0): log 2
    one = sp.csr_matrix(np.ones((LOSS_ROWS + 1, 1)))
    assert fused.logistic_value(one[:1], np.zeros(1)) == np.log(2.0)
    assert fused.logistic_value(one, np.zeros((1, 2)))[1] == pytest.approx((LOSS_ROWS + 1) * np.log(2.0), rel=1e-15)
    # non-finite margins: +inf loses nothing, −inf and NaN propagate
    B = sp.csr_matrix(np.array([[1.0], [1.0]]))
    assert fused.logistic_value(B, np.array([[np.inf, -np.inf, np.nan]]))[0] == 0.0
    v = fused.logistic_value(B, np.array([[np.inf, -np.inf, np.nan]]))
    assert v[1] == np.inf and np.isnan(v[2])


def _odd_matrix(rng, n, d, density=0.3):
    """A random (n, d) CSR matrix with an empty row and an empty column when n, d > 2,
    values of both signs, some exactly ±1."""
    A = sp.random(n, d, density=density, format="lil", random_state=rng)
    if n > 2 and d > 2:
        A[1, :] = 0.0
        A[:, d - 2] = 0.0
    A = A.tocsr()
    A.eliminate_zeros()
    A.data = A.data * rng.choice([-1.0, 1.0], A.data.size)
    A.data[::5] = np.sign(A.data[::5])
    return A


SHAPES = [(1, 1), (1, 5), (40, 1), (63, 7), (64, 3), (65, 12), (300, 23), (1000, 120)]


@pytest.mark.parametrize("n,d", SHAPES)
def test_blocked_structure_holds_the_matrix(rng, n, d):
    """The blocked CSC of the transposed product (_blocked) rebuilt entry by entry equals the
    matrix, columns increase within a block and rows within a column's segment."""
    A = _odd_matrix(rng, n, d)
    ptr, idx, val = fused._csr(A)
    sb = fused.SCATTER_ROWS
    blk, scol, sptr, trow, tval = fused._blocked(ptr, idx, val, n, d)
    assert blk.size == -(-n // sb) + 1 and blk[0] == 0 and blk[-1] == scol.size == sptr.size - 1
    assert sptr[-1] == A.nnz and np.all(np.diff(sptr) > 0)
    dense = np.zeros((n, d))
    for b in range(blk.size - 1):
        cols = scol[blk[b]:blk[b + 1]]
        assert np.unique(cols).size == cols.size
        lens = np.diff(sptr[blk[b]:blk[b + 1] + 1])
        assert np.all(np.diff(lens) >= 0)
        for g in range(blk[b], blk[b + 1]):
            rows = trow[sptr[g]:sptr[g + 1]].astype(np.int64)
            assert np.all(np.diff(rows) > 0) and rows.max() < sb
            dense[b * sb + rows, scol[g]] += tval[sptr[g]:sptr[g + 1]]
    assert np.array_equal(dense, A.toarray())


@pytest.mark.parametrize("n,d", SHAPES)
@pytest.mark.parametrize("R", [1, 7, 8, 9, 33, 100, 300])
def test_products_on_odd_shapes(rng, n, d, R):
    """Gradient and loss totals against a plain per-row loop (to 1e-13 of the sum of the
    terms' magnitudes), and every column's bits alone (R = 1) and in any grouping."""
    A = _odd_matrix(rng, n, d)
    Y = rng.standard_normal((d, R))
    Ad = A.toarray()
    ref_g, scale, ref_v = np.zeros((d, R)), np.zeros((d, R)), np.zeros(R)
    for i in range(n):                                   # the definition, one row at a time
        z = Ad[i] @ Y
        w = 1.0 / (1.0 + np.exp(z))
        ref_g += np.outer(Ad[i], w)
        scale += np.outer(np.abs(Ad[i]), np.abs(w))
        ref_v += np.logaddexp(0.0, -z)
    v, g = fused.logistic_value_grad(A, Y)
    assert g.shape == (d, R) and v.shape == (R,)
    assert np.all(np.abs(g - ref_g) <= 1e-13 * scale + 1e-300)
    assert np.allclose(v, ref_v, rtol=1e-13, atol=0)
    assert np.array_equal(fused.logistic_grad(A, Y), g)
    for r in {0, R // 2, R - 1}:                         # a column alone: the same bits
        v1, g1 = fused.logistic_value_grad(A, Y[:, r])
        assert np.array_equal(g1, g[:, r]) and v1 == v[r]
        assert np.array_equal(fused.logistic_grad(A, Y[:, r]), g[:, r])
    for k in (2, 3):
        assert np.array_equal(fused.logistic_grad(A, Y, groups=k), g)
    if R > 2:                                            # sub-batches (padded or not)
        assert np.array_equal(fused.logistic_grad(A, Y[:, 1:]), g[:, 1:])


@pytest.mark.parametrize("w", [1, 3, 9, 17])
def test_unpadded_columns_give_the_panels_bits(rng, w):
    """The plain loops for w mod 8 columns (run only when a kernel gets an unpadded width)
    give every column the bits the register panels give it."""
    A = _odd_matrix(rng, 300, 23)
    Y = rng.standard_normal((23, w))
    _, (ptr, idx, val), blocked = fused._prepared(A)
    G, L = fused._aligned_zeros((23, w)), np.zeros(w)
    fused._grad_kernel(ptr, idx, val, *blocked, fused.SCATTER_ROWS, np.ascontiguousarray(Y), G, L, True, True)
    v, g = fused.logistic_value_grad(A, Y)              # padded to a multiple of 8 (w = 1: R = 1 path)
    assert np.array_equal(G, g.reshape(23, w)) and np.array_equal(L, np.atleast_1d(v))
    counts = np.zeros(w, dtype=np.int64)
    fused._sign_kernel(ptr, idx, val, np.ones(300), np.ascontiguousarray(Y), counts)
    assert np.array_equal(counts, fused.sign_counts(A, np.ones(300), Y.reshape(23, w)))


def test_blocked_structure_is_cached_per_matrix(rng):
    """The structure is built once per matrix and rebuilt when its arrays are replaced."""
    A = _odd_matrix(rng, 200, 9)
    Y = rng.standard_normal((9, 3))
    g = fused.logistic_grad(A, Y)
    first = fused._prepared(A)[2]
    assert fused._prepared(A)[2] is first
    A.data = 2.0 * A.data                                # a new array: a new structure
    assert fused._prepared(A)[2] is not first
    ref = A.T @ (1.0 / (1.0 + np.exp(A @ Y)))
    assert _relerr(fused.logistic_grad(A, Y), ref) <= 1e-13
    assert not np.allclose(fused.logistic_grad(A, Y), g)
    key = id(A)
    del A                                                # forgotten with the matrix
    assert key not in fused._PREPARED


def test_panel_plan_and_alignment():
    """Panels (_vectors) tile the padded width exactly with 1..UMAX vectors each, one panel
    up to UMAX vectors; the arrays the panels use start on a cache line."""
    for w8 in range(8, 2001, 8):
        c0, widths = 0, []
        while c0 < w8:
            u = fused._vectors(w8, c0)
            assert 1 <= u <= fused.UMAX
            widths.append(u)
            c0 += 8 * u
        assert c0 == w8
        assert len(widths) == -(-w8 // (8 * fused.UMAX)) and max(widths) - min(widths) <= 1
    for shape in [(1, 1), (123, 104), (7, 9), (1000, 3)]:
        for _ in range(5):
            a = fused._aligned_zeros(shape)
            assert a.shape == shape and a.ctypes.data % 64 == 0 and not a.any()


def test_warmup_reports_compile_time():
    assert fused.warmup() >= 0.0


def test_row_chunks_bits_threads_and_reference(rng):
    """A matrix of ≥ ROW_SPLIT_MIN rows is cut in two row chunks (at a multiple of LOSS_ROWS)
    whose sums are added: the gradient and loss are exactly chunk 0's plus chunk 1's, the
    same bits for 1–4 threads and for a column alone, and within 1e-12 of the numpy path."""
    n, d = fused.ROW_SPLIT_MIN + 1000, 37
    A = sp.random(n, d, density=0.15, format="csr", random_state=3, data_rvs=rng.standard_normal)
    assert len(fused._row_chunks(A)) == 2
    h = fused._row_chunks(A)[0].shape[0]
    assert h % fused.LOSS_ROWS == 0 and abs(h - n // 2) < fused.LOSS_ROWS
    Y = rng.standard_normal((d, 21)) * 0.3
    L1, G1 = fused.logistic_value_grad(A, Y, groups=1)
    # the definition: the two halves' sums, each computed on its own, added
    top = sp.csr_matrix(A[:h])
    bottom = sp.csr_matrix(A[h:])
    assert np.array_equal(G1, fused.logistic_grad(top, Y, groups=1) + fused.logistic_grad(bottom, Y, groups=1))
    assert np.array_equal(L1, fused.logistic_value(top, Y, groups=1) + fused.logistic_value(bottom, Y, groups=1))
    for k in (2, 3, 4):
        L, G = fused.logistic_value_grad(A, Y, groups=k)
        assert np.array_equal(G, G1) and np.array_equal(L, L1)
    for r in (0, 5, 20):
        v, g = fused.logistic_value_grad(A, Y[:, r])
        assert v == L1[r] and np.array_equal(g, G1[:, r])
    z = A @ Y
    ref_g = A.T @ (1.0 / (1.0 + np.exp(z)))
    assert np.abs(G1 - ref_g).max() <= 1e-12 * np.abs(ref_g).max()
    assert np.allclose(L1, np.logaddexp(0, -z).sum(axis=0), rtol=1e-12, atol=0)


def test_reused_workspaces_give_fresh_results(rng):
    """Kernel calls reuse per-shape scratch (_workspace): results do not depend on what was
    computed before (other matrices, shapes, loss/gradient mixes, thread counts), bit for bit
    against the same call in a fresh thread (whose workspaces are empty)."""
    import threading

    mats = [_odd_matrix(rng, n, 17) for n in (300, fused.ROW_SPLIT_MIN + 300)]
    shapes = [2, 100, 130]
    calls = [(A, rng.standard_normal((17, R)), fn, k) for A in mats for R in shapes
             for fn in (fused.logistic_grad, fused.logistic_value, fused.logistic_value_grad) for k in (1, 2, 3)]
    first = [fn(A, Y, k) for A, Y, fn, k in calls]
    again = [fn(A, Y, k) for A, Y, fn, k in calls[::-1]][::-1]
    fresh = {}

    def in_new_thread():
        fresh["out"] = [fn(A, Y, k) for A, Y, fn, k in calls[::3]]

    t = threading.Thread(target=in_new_thread)
    t.start()
    t.join()
    flat = lambda o: np.concatenate([np.ravel(x) for x in (o if isinstance(o, tuple) else (o,))])  # noqa: E731
    for a, b in zip(first, again):
        assert np.array_equal(flat(a), flat(b))
    for a, b in zip(first[::3], fresh["out"]):
        assert np.array_equal(flat(a), flat(b))


@pytest.mark.parametrize("n", [300, fused.ROW_SPLIT_MIN + 300])
@pytest.mark.parametrize("R", [1, 3, 100])
def test_scale_and_l2_in_the_kernel_pass_are_numpys_bits(rng, n, R):
    """logistic_grad(scale=, l2=) does G / scale + l2·Y in the kernel's last pass: the same bits
    as numpy's operations on the plain sums (one and two row chunks, R = 1 path too)."""
    A = _odd_matrix(rng, n, 19)
    Y = rng.standard_normal((19, R))
    G = fused.logistic_grad(A, Y)
    ref = G / -7.0 + 0.3 * Y
    assert np.array_equal(fused.logistic_grad(A, Y, scale=-7.0, l2=0.3), ref)
    assert np.array_equal(fused.logistic_grad(A, Y, 2, scale=-7.0), G / -7.0)
    assert np.array_equal(fused.logistic_grad(A, Y, l2=0.3), G + 0.3 * Y)


def test_objective_gradient_fast_path_is_datafit_plus_penalty(a1a_obj, rng):
    """LogisticL2.grad (ℓ2 gradient added in the kernel pass) equals datafit.grad + penalty.grad
    bit for bit; the squared data term (not fused) still adds its penalty."""
    from mast_cli.core.objective import RidgeL2

    X = rng.standard_normal((a1a_obj.d, 5))
    assert np.array_equal(a1a_obj.grad(X), a1a_obj.datafit.grad(X) + a1a_obj.penalty.grad(X))
    assert np.array_equal(a1a_obj.grad(X, threads=2), a1a_obj.datafit.grad(X) + a1a_obj.penalty.grad(X))
    ridge = RidgeL2(a1a_obj.A, a1a_obj.b, 0.1)
    assert np.array_equal(ridge.grad(X), ridge.datafit.grad(X) + ridge.penalty.grad(X))
    assert np.array_equal(ridge.datafit.grad(X, l2=0.1), ridge.datafit.grad(X) + 0.1 * X)
