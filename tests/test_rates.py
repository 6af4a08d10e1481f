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
