import numpy as np
import pytest

from mast_cli.constants import compute_constants, tight_smoothness
from mast_cli.sketches import Bernoulli, Identity, RandK


def test_tight_smoothness_between_bounds(a1a_obj):
    L_f = a1a_obj.smoothness()
    for sk in (Bernoulli(a1a_obj.d, 0.5), RandK(a1a_obj.d, 30), Identity(a1a_obj.d)):
        t = tight_smoothness(a1a_obj, sk)
        assert L_f * (1 - 1e-12) <= t <= L_f * sk.L_D * (1 + 1e-12)  # H ⪯ E[SHS] ⪯ L_D·L_f·I
    assert tight_smoothness(a1a_obj, Identity(a1a_obj.d)) == pytest.approx(L_f)


def test_hessian_of_f_D_bounded_by_tight_constant(tiny, rng):                     # check 14
    sk = RandK(tiny.d, 3)
    S, w = sk.enumerate()
    v = rng.standard_normal(tiny.d) * 0.3
    L_tight = tight_smoothness(tiny, sk)
    for _ in range(5):
        x = rng.standard_normal(tiny.d)
        H = sum(wi * (s[:, None] * tiny.hessian(v + s * (x - v)) * s[None, :]) for s, wi in zip(S, w))
        ev = np.linalg.eigvalsh(H)
        assert ev[-1] <= L_tight * (1 + 1e-10) <= tiny.smoothness() * sk.L_D * (1 + 1e-10)
        assert ev[0] >= tiny.mu * sk.mu_D * (1 - 1e-10)


def test_compute_constants_keys(a1a_obj, a1a_star):
    out = compute_constants(a1a_obj, Bernoulli(a1a_obj.d, 0.5), x_star=a1a_star)
    for key in ("n", "d", "lam", "L_f", "mu_f", "L_max", "f_inf", "sketch", "sparsity", "L_D", "mu_D",
                "kappa_D", "L_S_max", "L_fD_tight"):
        assert key in out
    assert (out["L_D"], out["mu_D"], out["L_S_max"], out["kappa_D"]) == (2.0, 2.0, 4.0, 1.0)
    assert out["L_S_mean"] == 4.0 and out["mu_S_min"] == 0.0
