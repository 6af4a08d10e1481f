"""The Δ(sparsity) study (experiments/delta.py): one unit against independent references.

The references do not use mast's objectives or solvers: the logistic loss is written
with ``np.logaddexp`` on the raw data and minimized by scipy's L-BFGS.
"""

import numpy as np
import pytest
import scipy.optimize

from mast_cli.experiments.delta import DeltaConfig, compute_delta_unit, plan_delta_units
from mast_cli.experiments.problem import load_problem
from mast_cli.io.outputs import read_results_csv
from mast_cli.sketches import make_sketch

LAM = 1e-3


def _unit(sparsity, shift="zero", pool=8, masks=0):
    cfg = DeltaConfig(dataset="a1a", lam=LAM, sparsity=[sparsity], pool=pool, shifts=[shift], masks=masks)
    (_, spec), = plan_delta_units(cfg)
    return read_results_csv(compute_delta_unit(spec)).iloc[0]


def _pool_min(A, b, S, v, x0):
    """min_x (1/N) Σ_j [mean_i log(1 + exp(−b_i a_iᵀ y_j)) + (λ/2)‖y_j‖²], y_j = v + s_j ⊙ (x − v)."""
    n = A.shape[0]

    def fun(x):
        val, grad = 0.0, np.zeros_like(x)
        for s in S:
            y = v + s * (x - v)
            z = b * (A @ y)
            val += np.mean(np.logaddexp(0.0, -z)) + 0.5 * LAM * y @ y
            grad += s * (A.T @ (-b / (1.0 + np.exp(z))) / n + LAM * y)
        return val / len(S), grad / len(S)

    res = scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B",
                                  options={"gtol": 1e-11, "ftol": 1e-15, "maxiter": 5000})
    return res.fun


@pytest.fixture(scope="module")
def problem():
    return load_problem("a1a", "logreg", LAM)


def test_f_inf_and_f_D_inf_match_an_independent_minimizer(problem):
    row = _unit(0.5)
    A, b = problem.dataset.X, problem.dataset.y
    d = A.shape[1]
    f_inf = _pool_min(A, b, np.ones((1, d)), np.zeros(d), np.zeros(d))
    assert row["f_inf"] == pytest.approx(f_inf, rel=1e-9)
    # the unit's pool: the fixed seed of the study (seed, sparsity in ppm, 29)
    sk = make_sketch("bernoulli", d, sparsity=0.5)
    S = sk.sample(np.random.default_rng([0, 500_000, 29]), 8)
    f_D_inf = _pool_min(A, b, S, np.zeros(d), problem.x_star)
    assert row["f_D_inf"] == pytest.approx(f_D_inf, rel=1e-8)
    assert row["delta"] == pytest.approx(f_D_inf - f_inf, abs=1e-8)
    assert row["delta"] > 0                                     # sparsifying costs loss
    assert row["thm1_lower"] <= row["delta"]


def test_no_sparsity_no_gap(problem):
    row = _unit(0.0)
    assert abs(row["delta"]) <= 1e-12
    assert row["dist_sq_xD_xstar"] <= 1e-20


def test_erm_shift_interpolates(problem):
    """v = x*: every sparse model v + S(x* − v) is x*, so f_D^inf = f^inf (Δ = 0)."""
    row = _unit(0.7, shift="erm")
    assert row["dist_sq_v_xstar"] == 0.0
    assert abs(row["delta"]) <= 1e-12
    assert row["thm1_upper"] == 0.0


def test_masked_accuracies(problem):
    row = _unit(0.5, masks=5)
    ds = problem.dataset
    dense = np.mean(ds.y_test * (ds.X_test @ problem.x_star) > 0)
    assert row["erm_acc_dense"] == dense
    assert row["erm_acc_q10"] <= row["erm_acc_median"] <= row["erm_acc_q90"]
