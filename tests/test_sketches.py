import math

import numpy as np
import pytest

from mast_cli.errors import MastError
from mast_cli.sketches import (Bernoulli, DropoutUnscaled, Gaussian, Identity, PermK, RandK,
                               make_sketch)

D = 7


def all_sketches():
    return [Identity(D), Bernoulli(D, 0.3), Bernoulli(D, np.linspace(0.2, 1, D)), RandK(D, 3),
            RandK(D, 1), RandK(D, D), PermK(D, 3), PermK(D, 7), PermK(6, 3), Gaussian(D, 0.7),
            DropoutUnscaled(D, 0.6)]


@pytest.mark.parametrize("sk", all_sketches(), ids=repr)
def test_monte_carlo_moments_match_closed_form(sk, rng):
    R = 200_000
    s = sk.sample(rng, R)
    var = np.maximum(sk.diag_second_moment() - sk.mean() ** 2, 1e-12)
    assert np.all(np.abs(s.mean(0) - sk.mean()) <= 5 * np.sqrt(var / R) + 1e-12)   # check 1
    emp = s.T @ s / R
    M = sk.second_moment()
    assert np.max(np.abs(emp - M)) <= 0.03 * np.max(M)                               # check 3


@pytest.mark.parametrize("sk", [s for s in all_sketches() if not isinstance(s, Gaussian)], ids=repr)
def test_enumeration_is_exact(sk, rng):
    S, w = sk.enumerate()
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(w @ S, sk.mean(), atol=1e-12)
    np.testing.assert_allclose((S * w[:, None]).T @ S, sk.second_moment(), atol=1e-10)
    A = rng.standard_normal((sk.d, sk.d))
    A = A + A.T
    exact = np.einsum("m,mi,ij,mj->ij", w, S, A, S)
    np.testing.assert_allclose(sk.sandwich(A), exact, atol=1e-10)
    # check 4: E[SᵀS] ⪰ I for unbiased sketches, L_D ≤ L_S^max, brute-force constants
    ev = np.linalg.eigvalsh(np.diag(w @ S ** 2))
    assert sk.L_D == pytest.approx(ev[-1]) and sk.mu_D == pytest.approx(ev[0])
    assert sk.L_S_max == pytest.approx(np.max(S ** 2)) and sk.L_D <= sk.L_S_max + 1e-12
    if sk.unbiased:
        assert sk.mu_D >= 1 - 1e-12


def test_rand_k_closed_form_coefficients():
    d, k = 10, 4
    sk = RandK(d, k)
    A = np.arange(d * d, dtype=float).reshape(d, d)
    A = A + A.T
    ref = d * (k - 1) / (k * (d - 1)) * A + d * (d - k) / (k * (d - 1)) * np.diag(np.diag(A))
    np.testing.assert_allclose(sk.sandwich(A), ref)
    np.testing.assert_allclose(RandK(d, 1).sandwich(A), d * np.diag(np.diag(A)))
    np.testing.assert_allclose(RandK(d, d).sandwich(A), A)
    assert (sk.L_D, sk.mu_D, sk.L_S_max) == (d / k, d / k, (d / k) ** 2)


def test_rand_k_has_exactly_k_nonzeros_and_bernoulli_keep_rate(rng):   # check 5
    s = RandK(50, 7).sample(rng, 1000)
    assert np.all((s != 0).sum(1) == 7) and np.all(s[s != 0] == 50 / 7)
    p = np.linspace(0.1, 0.9, 20)
    keep = (Bernoulli(20, p).sample(rng, 50_000) != 0).mean(0)
    assert np.all(np.abs(keep - p) <= 5 * np.sqrt(p * (1 - p) / 50_000))


@pytest.mark.parametrize("d, M", [(12, 3), (12, 12), (10, 3), (5, 5)])
def test_perm_k_blocks(d, M, rng):                                                 # check 2
    sk = PermK(d, M)
    B = sk.sample_blocks(rng, 500)
    support = B != 0
    assert np.all(support.sum(1) == 1)  # disjoint blocks covering [d]
    assert np.all(support.sum(2) == sk.q[None, :])
    if d % M == 0:
        np.testing.assert_allclose(B.mean(1), 1.0)  # perfect reconstruction
    big = sk.sample_blocks(rng, 100_000)
    np.testing.assert_allclose(big.mean(0), 1.0, atol=0.05)  # each worker unbiased
    # cross term E[S_i A S_j] = d/(d-1) (A - Diag A) for equal blocks
    if d % M == 0 and M > 1:
        A = np.ones((d, d))
        cross = np.einsum("ri,rj->ij", big[:, 0], big[:, 1]) / big.shape[0]
        np.testing.assert_allclose(cross, d / (d - 1) * (A - np.eye(d)), atol=5 * (d / sk.q[0]) / np.sqrt(big.shape[0]))


def test_sparsity_reported():
    assert Bernoulli(10, 0.3).sparsity == pytest.approx(0.7)
    assert RandK(10, 3).sparsity == pytest.approx(0.7)
    assert PermK(12, 4).sparsity == pytest.approx(0.75)
    sk = make_sketch("rand-k", 123, sparsity=0.9)
    assert sk.k == 12
    assert make_sketch("bernoulli", 5, sparsity=0.25).p[0] == 0.75


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="bernoulli", p=0.0), r"p=0 must be in \(0, 1\]"),
    (dict(name="bernoulli", p=1.5), "p=1.5"),
    (dict(name="rand-k", k=0), "K=0"),
    (dict(name="rand-k", k=200), "K=200"),
    (dict(name="rand-k", k=2.5), "K=2.5 must be an integer"),
    (dict(name="perm-k", workers=0), "M=0"),
    (dict(name="nope"), "unknown sketch 'nope'"),
    (dict(name="gaussian", sigma=-1.0), "sigma=-1"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(MastError, match=match):
        make_sketch(d=123, **kwargs)


def test_gaussian_matches_bernoulli_variance():
    p = 0.4
    g = Gaussian(5, math.sqrt(1 / p - 1))
    np.testing.assert_allclose(g.second_moment(), Bernoulli(5, p).second_moment())
    assert g.L_S_max == math.inf


def test_sparsity_rounding_halves_up():
    assert make_sketch("rand-k", 13, sparsity=0.5).k == 7          # 6.5 -> 7, not banker's 6
    assert make_sketch("rand-k", 123, sparsity=0.9).k == 12
    assert make_sketch("perm-k", 123, sparsity=0.5).M == 2
    assert make_sketch("perm-k", 123, sparsity=0.6).M == 3         # 2.5 -> 3
