"""Beyond the paper (issue 10): dropout baseline, Gaussian sketches, pre-trained shifts."""

import numpy as np
import pytest

from mast_cli.algorithms import dsgd
from mast_cli.experiments import Problem
from mast_cli.objectives import solve_erm
from mast_cli.shifts import resolve_shift
from mast_cli.sketches import Bernoulli, DropoutUnscaled, Gaussian


@pytest.mark.parametrize("p", [0.3, 0.8])
def test_mast_is_unscaled_dropout_after_change_of_variables(a1a_obj, p):           # §7.1
    """v = 0, uniform p: MAST in x with step γ equals unscaled dropout in x̃ = x/p with step γ/p²
    (same masks c from the same stream), so x_t = p x̃_t (test-time weight scaling)."""
    gamma, T = 0.05, 60
    mast = dsgd(a1a_obj, [Bernoulli(a1a_obj.d, p)], [gamma], [11], T)
    drop = dsgd(a1a_obj, [DropoutUnscaled(a1a_obj.d, p)], [gamma / p ** 2], [11], T)
    np.testing.assert_allclose(mast.x_final[:, 0], p * drop.x_final[:, 0], rtol=1e-10, atol=1e-13)
    # the theory steps coincide too: 1/(L_f L_S^max) = p²/L_f for MAST and 1/L_f for dropout
    assert Bernoulli(a1a_obj.d, p).L_S_max * p ** 2 == pytest.approx(DropoutUnscaled(a1a_obj.d, p).L_S_max)


def test_dropout_unscaled_is_biased(rng):
    sk = DropoutUnscaled(6, 0.25)
    assert not sk.unbiased
    np.testing.assert_allclose(sk.sample(rng, 100_000).mean(0), 0.25, atol=0.01)


def test_gaussian_matches_bernoulli_variance_in_f_D(tiny, rng):
    """At matched variance σ² = 1/p − 1, E[SᵀHS] is the same, so f_D agrees to second order
    near v: compare Monte Carlo f_D at a point close to v."""
    p = 0.5
    g, b = Gaussian(tiny.d, np.sqrt(1 / p - 1)), Bernoulli(tiny.d, p)
    v = solve_erm(tiny)[0]
    x = v + 1e-3 * rng.standard_normal(tiny.d)
    H = tiny.hessian(v)
    quad = lambda sk: 0.5 * (x - v) @ (sk.sandwich(H) - H) @ (x - v)  # noqa: E731
    assert quad(g) == pytest.approx(quad(b), rel=1e-12)
    assert g.L_S_max == np.inf and b.L_S_max == 4.0


@pytest.mark.parametrize("spec", ["zero", "erm", "noisy:0.5", "lam:0.1", "half"])
def test_shift_specifications(a1a_obj, a1a_star, spec):
    prob = Problem(None, a1a_obj, a1a_star, float(a1a_obj.value(a1a_star)), {})
    v = resolve_shift(spec, prob)
    assert v.shape == (a1a_obj.d,) and np.all(np.isfinite(v))
    dist = np.linalg.norm(v - a1a_star)
    if spec == "erm":
        assert dist == 0
    elif spec == "noisy:0.5":
        assert dist == pytest.approx(0.5 * np.linalg.norm(a1a_star), rel=0.3)
    elif spec in ("lam:0.1", "half"):
        assert 0 < dist < np.linalg.norm(a1a_star) + 1
        assert np.linalg.norm(a1a_obj.grad(v)) > 1e-6
    assert np.array_equal(v, resolve_shift(spec, prob))   # deterministic


def test_pruning_dropout_baseline_equals_mast_for_v0(tmp_path):
    """Classic dropout deployed with weight scaling is MAST after x = p x̃ (same masks, same
    theory-equivalent steps): identical sparsified test accuracies; unscaled deployment too,
    since scaling does not change sign(aᵀx) when v = 0."""
    import pandas as pd
    from click.testing import CliRunner

    from mast_cli.cli import cli

    out = tmp_path / "p"
    res = CliRunner().invoke(cli, ["prune", "-d", "a1a", "--sparsity", "0.4,0.7", "--masks", "20",
                                   "--iters", "80", "--dropout-baseline", "-q", "-o", str(out)])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out / "pruning.csv")
    key = ["selection", "sparsity", "mask"]
    mast = df[df.formulation == "mast"].set_index(key).sort_index()
    for form in ("dropout-scaled", "dropout-unscaled"):
        drop = df[df.formulation == form].set_index(key).sort_index()
        assert len(drop) == len(mast) == 2 * 2 * 20
        np.testing.assert_allclose(drop.test_accuracy, mast.test_accuracy, atol=2e-4)
    res = CliRunner().invoke(cli, ["plot", str(out), "-o", str(tmp_path / "fig")])
    assert res.exit_code == 0
    stats = pd.read_csv(tmp_path / "fig" / "p-pruning.csv")
    assert set(stats.formulation) == {"erm", "mast", "dropout-scaled", "dropout-unscaled"}
    from PIL import Image

    legend = Image.open(tmp_path / "fig" / "p-pruning.png").text["mast-legend"]
    assert "deployed scaled" in legend and "deployed unscaled" in legend
    res = CliRunner().invoke(cli, ["prune", "-d", "a1a", "--sketch", "rand-k", "--dropout-baseline",
                                   "-o", str(tmp_path / "q")])
    assert res.exit_code == 2 and "dropout baseline needs" in res.output


def test_gaussian_from_sparsity_is_recorded_at_its_matched_level(a1a_obj):
    """`--sketch bernoulli,gaussian --sparsity 0.3,0.6`: each Gaussian trajectory carries the
    Bernoulli sparsity of the same variance, 1 − 1/(1 + σ²), so the two families pair up per level
    (and each level gets its own f_D^inf reference)."""
    from mast_cli.experiments import RunConfig, expand_trajectories, load_problem
    from mast_cli.sketches import make_sketch

    for s in (0.0, 0.3, 0.6):
        g = make_sketch("gaussian", a1a_obj.d, sparsity=s)
        assert g.sparsity == pytest.approx(s, abs=1e-12)
        assert g.params()["sparsity"] == g.sparsity
    cfg = RunConfig(dataset="a1a", sketch=["bernoulli", "gaussian"], sparsity=[0.3, 0.6], step=["0.05"],
                    iters=2, seeds=1)
    trajs = expand_trajectories(cfg, load_problem("a1a"))
    levels = {(t["sketch"], round(t["sparsity"], 10)) for t in trajs}
    assert levels == {("bernoulli", 0.3), ("bernoulli", 0.6), ("gaussian", 0.3), ("gaussian", 0.6)}
