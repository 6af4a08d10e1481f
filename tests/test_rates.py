"""Measured rates of Algorithm 1 against the theorems (mast-theory §8 checks 16–17)."""

import numpy as np

from mast_cli.algorithms import dsgd
from mast_cli.objectives import LogisticL2, col_sum, solve_erm
from mast_cli.sketches import Bernoulli, RandK
from mast_cli.theory import step_dsgd


def test_interpolation_linear_rate_real_data(a1a):                                # check 17
    """v = x* (Δ = 0): DSGD (I) converges linearly to x*, slope ≤ log(1 − γ μ_f μ_D)."""
    obj = LogisticL2(a1a.X, a1a.y, 0.1)
    x_star = solve_erm(obj)[0]
    for sk in (Bernoulli(obj.d, 0.5), RandK(obj.d, 61)):
        gamma = step_dsgd(obj.smoothness(), sk.L_S_max)
        rate = 1 - gamma * obj.mu * sk.mu_D
        T, R = 300, 16
        h = dsgd(obj, [sk] * R, [gamma] * R, range(R), T, x0=np.zeros(obj.d), v=x_star,
                 metrics_fn=lambda X: {"d": col_sum((X - x_star[:, None]) ** 2)}, log_every=10)
        mean = h.metrics["d"].mean(axis=1)
        bound = rate ** h.iterations * mean[0]
        assert np.all(mean <= bound * (1 + 1e-9))
        slope = np.polyfit(h.iterations, np.log(mean), 1)[0]
        assert slope <= np.log(rate)
        assert mean[-1] < 1e-3 * mean[0]


def test_theorem2_bound_on_real_data(a1a):                                          # check 16
    """Theorem 2 for D_pool (uniform over a fixed pool of sketches, its own exact constants):
    the mean over seeds of ‖x^t − x*_D‖² stays below the bound at every logged t
    (allowing the one-sided 99% Monte Carlo margin)."""
    from mast_cli.reference import EmpiricalSketch, make_pool, solve_pool
    from mast_cli.theory import theorem2

    obj = LogisticL2(a1a.X, a1a.y, 0.05)
    x_star = solve_erm(obj)[0]
    f_inf = obj.value(x_star)
    pool = make_pool(RandK(obj.d, 41), 40, np.random.default_rng(0))
    D = pool if isinstance(pool, EmpiricalSketch) else EmpiricalSketch(pool)
    v = np.zeros(obj.d)
    x_D, _ = solve_pool(obj, D, v)
    S = D.enumerate()[0]
    f_D_inf = float(obj.value(v[:, None] + S.T * (x_D - v)[:, None]).mean())
    delta = f_D_inf - f_inf
    assert delta >= 0
    L_f = obj.smoothness()
    gamma = step_dsgd(L_f, D.L_S_max)
    R, T = 24, 400
    h = dsgd(obj, [D] * R, [gamma] * R, range(R), T, x0=np.zeros(obj.d), v=v,
             metrics_fn=lambda X: {"d": col_sum((X - x_D[:, None]) ** 2)}, log_every=20)
    d = h.metrics["d"]
    mean, se = d.mean(axis=1), d.std(axis=1, ddof=1) / np.sqrt(R)
    r0 = float(np.sum(x_D ** 2))
    bound = np.array([theorem2(t, gamma, L_f, obj.mu, D.mu_D, D.L_S_max, r0, delta) for t in h.iterations])
    assert np.all(mean - 2.33 * se <= bound)
    assert mean[-1] < mean[0]
