"""The ridge objective (mast-theory §2.6) against dense, independent formulas."""

import json

import numpy as np
import pytest
from scipy.optimize import minimize

from mast_cli.io.data import load_dataset
from mast_cli.core.objective import RidgeL2, make_objective, per_sample_inf
from mast_cli.solvers.newton import solve_erm


@pytest.fixture(scope="module")
def heart():
    ds = load_dataset("heart_scale")
    return ds, RidgeL2(ds.X, ds.y, 0.01)


def dense(obj):
    return obj.A.toarray(), obj.b


def test_value_grad_hessian_are_the_dense_formulas(heart, rng):
    _, obj = heart
    A, y = dense(obj)
    n, d = A.shape
    X = rng.standard_normal((d, 4))
    want_f = np.sum((A @ X - y[:, None]) ** 2, axis=0) / (2 * n) + 0.005 * np.sum(X * X, axis=0)
    want_g = A.T @ (A @ X - y[:, None]) / n + 0.01 * X
    np.testing.assert_allclose(obj.value(X), want_f, rtol=1e-13)
    np.testing.assert_allclose(obj.grad(X), want_g, rtol=1e-12, atol=1e-14)
    vals, G = obj.value_grad(X[:, 0])
    assert vals == pytest.approx(want_f[0], rel=1e-13)
    np.testing.assert_allclose(G, want_g[:, 0], rtol=1e-12, atol=1e-14)
    H = A.T @ A / n + 0.01 * np.eye(d)
    np.testing.assert_allclose(obj.hessian(X[:, 0]), H, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(obj.hessian_bound(), H, rtol=1e-12, atol=1e-15)
    u = rng.standard_normal(d)
    np.testing.assert_allclose(obj.hessp(X[:, 1], u), H @ u, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(obj.hessian_diag(X[:, 1]), np.diag(H), rtol=1e-12)
    # exact constants: the extreme eigenvalues of H
    ev = np.linalg.eigvalsh(H)
    assert obj.smoothness() == pytest.approx(ev[-1], rel=1e-10)
    assert obj.mu == pytest.approx(ev[0], rel=1e-10)
    Hq, c = obj.quadratic()
    np.testing.assert_allclose(Hq, H, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(c, A.T @ y / n, rtol=1e-12, atol=1e-15)
    x = X[:, 2]
    assert obj.value(x) == pytest.approx(0.5 * x @ H @ x - c @ x + 0.5, rel=1e-12)


def test_erm_is_the_closed_form(heart):
    _, obj = heart
    A, y = dense(obj)
    n, d = A.shape
    x_star, info = solve_erm(obj)
    want = np.linalg.solve(A.T @ A / n + 0.01 * np.eye(d), A.T @ y / n)
    np.testing.assert_allclose(x_star, want, rtol=1e-10, atol=1e-12)
    assert info["converged"] and info["grad_norm"] < 1e-12


def test_row_pieces(heart, rng):
    _, obj = heart
    A, y = dense(obj)
    x = rng.standard_normal(obj.d)
    G = obj.per_sample_grads(x)
    np.testing.assert_allclose(G, (A @ x - y)[:, None] * A + 0.01 * x[None, :], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(G.mean(axis=0), obj.grad(x), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(obj.per_sample_values(x), 0.5 * (A @ x - y) ** 2 + 0.005 * x @ x, rtol=1e-12)
    rows = np.arange(obj.n)
    Gr = obj.grad_rows(x[:, None], rows, np.zeros(obj.n, dtype=int), np.full(obj.n, 1.0 / obj.n))
    np.testing.assert_allclose(Gr[:, 0], obj.grad(x), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(obj.smoothness_per_sample(), np.sum(A * A, axis=1) + 0.01, rtol=1e-12)


def test_per_sample_inf_closed_form(heart):
    _, obj = heart
    A, y = dense(obj)
    vals, mean = per_sample_inf(obj)
    for i in (0, 5, 77):
        res = minimize(lambda x: 0.5 * (A[i] @ x - y[i]) ** 2 + 0.005 * x @ x, np.zeros(obj.d),
                       method="BFGS", options={"gtol": 1e-12})
        assert vals[i] == pytest.approx(res.fun, rel=1e-6)
    assert mean == pytest.approx(vals.mean())


def test_distributed_and_pool_pieces(heart, rng):
    from mast_cli.algorithms import WorkerSplit, partition_rows
    from mast_cli.core.pool import PoolObjective

    _, obj = heart
    split = WorkerSplit(obj, partition_rows(obj.n, 3, rng=np.random.default_rng(0)))
    X = rng.standard_normal((obj.d, 2))
    S = np.ones((3, obj.d, 2))
    np.testing.assert_allclose(split.sketched_grad(X, np.zeros_like(X), S), obj.grad(X), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(split.sketched_value(X, np.zeros_like(X), S), obj.value(X), rtol=1e-12)
    Ss = (rng.random((5, obj.d)) < 0.5) * 2.0
    P = PoolObjective(obj, Ss, np.zeros(obj.d))
    H = obj.hessian_bound()
    want = sum(np.outer(s, s) * H for s in Ss) / 5
    np.testing.assert_allclose(P.hessian(X[:, 0]), want, rtol=1e-11, atol=1e-14)


def test_cli_accepts_ridge(tmp_path):
    from click.testing import CliRunner

    from mast_cli.cli import cli as main

    r = CliRunner().invoke(main, ["constants", "--dataset", "heart_scale", "--objective", "ridge",
                                  "--lam", "0.01", "--sketch", "rand-k", "--k", "4", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    obj = make_objective("ridge", *(lambda ds: (ds.X, ds.y))(load_dataset("heart_scale")), 0.01)
    assert out["objective"] == "ridge" and out["L_f"] == pytest.approx(obj.smoothness())
    r = CliRunner().invoke(main, ["run", "--dataset", "heart_scale", "--objective", "ridge", "--sketch",
                                  "bernoulli", "--sparsity", "0.5", "--iters", "20", "--seeds", "2",
                                  "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
