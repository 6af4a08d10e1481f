import numpy as np
import pytest
from scipy.optimize import approx_fprime
from sklearn.linear_model import LogisticRegression

from mast_cli.data import load_dataset
from mast_cli.objectives import LogisticL2, LogisticNonconvex, per_sample_inf, solve_erm
from tests.conftest import shared_file


def test_value_and_grad_match_finite_differences(tiny, rng):
    for obj in (tiny, LogisticNonconvex(tiny.A, tiny.b, 0.05)):
        x = rng.standard_normal(obj.d)
        fd = approx_fprime(x, obj.value, 1e-7)
        np.testing.assert_allclose(obj.grad(x), fd, rtol=1e-5, atol=1e-7)
        u = rng.standard_normal(obj.d)
        fd_h = (obj.grad(x + 1e-6 * u) - obj.grad(x - 1e-6 * u)) / 2e-6
        np.testing.assert_allclose(obj.hessp(x, u), fd_h, rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(obj.hessian(x) @ u, obj.hessp(x, u), rtol=1e-10, atol=1e-14)


def test_batched_equals_columnwise(a1a_obj, rng):
    X = rng.standard_normal((a1a_obj.d, 5))
    vals, G = a1a_obj.value_grad(X)
    for r in range(5):
        v, g = a1a_obj.value_grad(X[:, r])
        assert vals[r] == pytest.approx(v, rel=1e-14)
        np.testing.assert_allclose(G[:, r], g, rtol=1e-12, atol=1e-15)


def test_per_sample_grads_average_to_grad(a1a_obj, rng):
    x = rng.standard_normal(a1a_obj.d) * 0.1
    np.testing.assert_allclose(a1a_obj.per_sample_grads(x).mean(0), a1a_obj.grad(x), atol=1e-13)
    np.testing.assert_allclose(a1a_obj.per_sample_values(x).mean(), a1a_obj.value(x), rtol=1e-13)


def test_grad_rows_is_minibatch_gradient(a1a_obj, rng):
    X = rng.standard_normal((a1a_obj.d, 3)) * 0.1
    rows = np.array([0, 5, 7, 9, 100, 3])
    cols = np.array([0, 0, 1, 1, 2, 2])
    G = a1a_obj.grad_rows(X, rows, cols, np.full(6, 0.5))
    for r in range(3):
        sel = rows[cols == r]
        ref = a1a_obj.per_sample_grads(X[:, r])[sel].mean(0)
        np.testing.assert_allclose(G[:, r], ref, atol=1e-13)


def test_no_overflow_for_huge_margins(a1a_obj):
    x = np.full(a1a_obj.d, 1e6)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        v, g = a1a_obj.value_grad(x)
    assert np.isfinite(v) and np.all(np.isfinite(g))


@pytest.mark.parametrize("name", ["a1a", "w1a", "breast-cancer", "mushrooms"])
def test_erm_matches_sklearn(name):
    ds = load_dataset(name) if name != "w1a" else None
    if ds is None:
        from mast_cli.data import load_libsvm_file
        ds = load_libsvm_file(shared_file("w1a"))
    obj = LogisticL2(ds.X, ds.y, 1e-3)
    x, info = solve_erm(obj)
    assert info["converged"] and np.linalg.norm(obj.grad(x)) <= 1e-12
    clf = LogisticRegression(C=1 / (obj.n * obj.lam), fit_intercept=False, solver="newton-cg",
                             tol=1e-12, max_iter=1000).fit(ds.X, ds.y)
    xs = clf.coef_.ravel()
    assert obj.value(x) == pytest.approx(obj.value(xs), rel=1e-9)
    assert obj.value(x) <= obj.value(xs) + 1e-15
    np.testing.assert_allclose(x, xs, atol=1e-6)


def test_smoothness_bounds_sampled_hessians(a1a_obj, rng):
    L = a1a_obj.smoothness()
    for _ in range(5):
        x = rng.standard_normal(a1a_obj.d) * rng.uniform(0, 2)
        assert np.linalg.eigvalsh(a1a_obj.hessian(x))[-1] <= L * (1 + 1e-12)
    assert np.linalg.eigvalsh(a1a_obj.hessian(np.zeros(a1a_obj.d)))[-1] == pytest.approx(L, rel=1e-10)
    Li = a1a_obj.smoothness_per_sample()
    x = rng.standard_normal(a1a_obj.d)
    for i in rng.choice(a1a_obj.n, 5):
        sub = a1a_obj.with_rows([i])
        assert np.linalg.eigvalsh(sub.hessian(x))[-1] <= Li[i] * (1 + 1e-12)


def test_per_sample_inf_is_the_row_minimum(tiny, rng):
    fi, fbar = per_sample_inf(tiny)
    for i in rng.choice(tiny.n, 4, replace=False):
        sub = tiny.with_rows([i])
        x, info = solve_erm(sub)
        assert fi[i] == pytest.approx(sub.value(x), rel=1e-10)
    assert fbar == pytest.approx(fi.mean()) and fbar <= tiny.value(solve_erm(tiny)[0])


def test_nonconvex_constants(tiny, rng):
    obj = LogisticNonconvex(tiny.A, tiny.b, 0.05)
    assert obj.smoothness() == pytest.approx(tiny.smoothness() + 0.05)
    H = [np.linalg.eigvalsh(obj.hessian(rng.standard_normal(obj.d) * 3)) for _ in range(20)]
    assert max(h[-1] for h in H) <= obj.smoothness()
    assert obj.value(rng.standard_normal(obj.d)) >= 0


@pytest.mark.parametrize("R", [1, 7, 600])
def test_blocked_grad_is_bitwise_the_unblocked_products(a1a_obj, rng, R, monkeypatch):
    """The numpy/scipy fallback of grad() works in row blocks (margins kept in cache); it must
    equal A·X then Aᵀ·W exactly.  (The fused kernel is tested against it in test_fused.py.)"""
    from mast_cli.core import fused

    monkeypatch.setattr(fused, "ENABLED", False)
    from mast_cli.core.kernels import neg_sigmoid

    X = rng.standard_normal((a1a_obj.d, R)) * 0.5
    X[0, 0] = 1e6                                   # exp overflow -> exact 0 weights
    ref = a1a_obj.back(neg_sigmoid(a1a_obj.margins(X))) + a1a_obj.penalty.grad(X)
    assert np.array_equal(a1a_obj.grad(X), ref)
    assert np.array_equal(a1a_obj.grad(X[:, 0]), ref[:, 0])


def test_float32_grad_documented_accuracy(a1a_obj, rng):
    """Opt-in float32 margins (float64 accumulation): |error| <= 1e-7 per entry near x*."""
    x, _ = solve_erm(a1a_obj)
    X = x[:, None] + rng.standard_normal((a1a_obj.d, 20)) * np.logspace(-4, 0, 20)
    g32 = a1a_obj.grad(X, dtype=np.float32)
    assert g32.dtype == np.float64
    assert np.abs(g32 - a1a_obj.grad(X)).max() <= 1e-7


@pytest.mark.parametrize("R", [1, 9, 700])
def test_col_accuracy_is_the_full_product(rng, R):
    """Blocked accuracy of R models == col_mean of the full margin array, bit for bit."""
    from mast_cli.objectives import col_accuracy, col_mean

    ds = load_dataset("a1a")
    W = rng.standard_normal((ds.X_test.shape[1], R))
    W[:, 0] = 0.0                                   # zero margins count as errors
    ref = col_mean(((ds.X_test @ W) * ds.y_test[:, None] > 0).astype(np.float64))
    assert np.array_equal(col_accuracy(ds.X_test, ds.y_test, W), ref)
    assert np.array_equal(col_accuracy(ds.X_test.toarray(), ds.y_test, W), ref)
