"""The exact-* checks of ``mast verify --objective ridge`` pass on the product and fail on bugs."""

import numpy as np
import pytest

from mast_cli.core.sketches import RandK
from mast_cli.verify.battery import run_battery
from mast_cli.verify.config import VerifyConfig
from mast_cli.verify.context import load_verify_problem
from mast_cli.verify.registry import CHECKS

EXACT = [c for c in CHECKS if c.id in ("exact-mean", "exact-second-moment", "thm2-exact")]


@pytest.fixture(scope="module")
def setup():
    cfg = VerifyConfig(dataset="heart_scale", objective="ridge", sketches=["rand-k"], quick=True, iters=60).resolved()
    prob = load_verify_problem(cfg)
    return cfg, prob


def run(setup):
    cfg, prob = setup
    rows, info = run_battery(prob, RandK(prob.obj.d, 6), cfg, checks=EXACT)
    return {(r.check, r.statement.split(":")[0]): r for r in rows}, info


def test_exact_checks_pass_and_are_informative(setup):
    rows, info = run(setup)
    assert len(rows) == 8                        # 6 exact-mean rows + second moment + Theorem 2
    for r in rows.values():
        assert r.verdict == "ok", (r.check, r.statement, r.observed, r.bound, r.notes)
    for (cid, _), r in rows.items():
        if cid != "thm2-exact":
            assert r.power >= 2, (cid, r.power)
    t = info["thm2_exact_tightness"]
    assert min(np.array(t["bound"]) / np.array(t["exact"])) >= 1.0


def test_exact_checks_fire_on_a_mis_scaled_sampler(setup, monkeypatch):
    """Rand-K scaled by d/(K+1): E[S] ≠ I, the rows of Algorithms 1 and 2 leave the oracle."""
    orig = RandK.sample

    def wrong(self, rng, size):
        return orig(self, rng, size) * self.k / (self.k + 1)

    monkeypatch.setattr(RandK, "sample", wrong)
    rows, _ = run(setup)
    assert rows[("exact-mean", "Alg. 1 (I)")].violated
    assert rows[("exact-mean", "Alg. 2 (independent)")].violated
    assert rows[("exact-second-moment", "Alg. 1 (I)")].violated


def test_exact_checks_fire_on_a_wrong_step(setup, monkeypatch):
    """Two-sided: a step 20% too small moves the mean the other way and fails too."""
    from mast_cli import algorithms

    real = algorithms.dsgd

    def slow(obj, sketches, steps, *a, **kw):
        return real(obj, sketches, np.asarray(steps) * 0.8, *a, **kw)

    monkeypatch.setattr(algorithms, "dsgd", slow)
    rows, _ = run(setup)
    assert rows[("exact-mean", "Alg. 1 (I)")].violated
    assert rows[("exact-second-moment", "Alg. 1 (I)")].violated
