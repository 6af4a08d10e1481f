"""`mast verify`: the quick battery passes on bundled data, and the gate fails on wrong gradients.

The CI regression check of issue 6: a quick verify on two small bundled datasets
(a1a and heart_scale) with Bernoulli and Rand-K sketches must pass; mutated
gradients injected through fixtures (a 5% bias, the sketch applied once instead of
twice) must make at least one check VIOLATED and the exit code 1.
"""

import csv
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from mast_cli import algorithms
from mast_cli.cli import cli
from mast_cli.verify import Z99, CheckResult, VerifyConfig, verify_dataset

#: A small battery for the mutation tests (the gate must fire even on it).
SMALL = ["--quick", "--sketch", "bernoulli", "--seeds", "4", "--pool", "16", "-q"]


@pytest.fixture
def only(monkeypatch):
    """Restrict the battery's table to some check ids (keeps the CLI tests fast)."""
    from mast_cli.verify import registry

    def restrict(*ids):
        monkeypatch.setattr(registry, "CHECKS", tuple(c for c in registry.CHECKS if c.id in ids))
    return restrict


def _run(args, tmp_path):
    res = CliRunner().invoke(cli, ["verify", *args, "--out", str(tmp_path)])
    rows = []
    if (tmp_path / "verify.csv").exists():
        with open(tmp_path / "verify.csv") as fh:
            rows = list(csv.DictReader(fh))
    return res, rows


@pytest.mark.parametrize("dataset", ["a1a", "heart_scale"])
def test_quick_verify_passes_on_bundled_data(dataset, tmp_path):
    """The CI gate: every check of the quick battery holds, with a finite slack ≥ 1."""
    res, rows = _run(["-d", dataset, "--quick", "--sketch", "bernoulli,rand-k"], tmp_path)
    assert res.exit_code == 0, res.output
    assert "| verdict" in res.output and "one-sided confidence interval" in res.output
    assert "any of them fires with probability ≤ 1%" in res.output
    checks = {r["check"] for r in rows}
    assert {"lemma1-iii", "lemma2", "lemma3-iii", "lemma4", "thm1-upper", "thm1-lower", "thm1-dist",
            "unbiased", "thm2", "thm2-interp", "thm2-II", "thm3", "alg2", "alg3-vr"} <= checks
    assert {r["sketch"] for r in rows} == {"bernoulli", "rand-k"}
    for r in rows:
        assert r["verdict"] == "ok", r
        slack = float(r["slack"])
        assert slack >= 1.0 and (math.isfinite(slack) or float(r["observed"]) <= 0), r
        if r["null"]:                                      # rate checks: informative
            assert float(r["power"]) >= 2.0, r
    data = json.loads((tmp_path / "verify.json").read_text())
    assert data["violated"] == 0 and data["confidence"] == 0.99
    _assert_one_family(data)
    for s in data["sweep"]:
        assert s["N"] >= 2 and s["delta"] >= 0 and s["delta_se"] is not None
        # measured contraction is at least as fast as predicted (Theorem 2 under interpolation)
        assert s["rho_measured"] <= s["rho_predicted"]
    if dataset == "heart_scale":
        # d = 13: both supports are enumerated, D_pool = D and nothing is estimated
        assert all(s["exact_enumeration"] and s["delta_se"] == 0 for s in data["sweep"])


def _assert_one_family(data):
    """Every applicable stochastic row of a run is in the one family-wise 99% group, and its
    critical value is the one for its tests × the run's distinct stochastic rows (references:
    scipy's quantiles; a row repeating another's statistic at another level counts once)."""
    from scipy.stats import norm
    from scipy.stats import t as student_t

    stoch = [r for r in data["rows"] if r["kind"] == "stochastic" and r["applicable"]]
    outside = sorted({r["check"] for r in stoch if r["bonferroni_group"] != "stochastic"})
    assert not outside, f"stochastic rows outside the run's family: {outside}"
    distinct = {(r["bonferroni_key"], r["observed"]) if r["bonferroni_key"] else i for i, r in enumerate(stoch)}
    K = data["family_tests"]
    assert K == len(distinct) and len(stoch) > K            # minibatch-*-rate etc. repeat at the second level
    for r in stoch:
        a = 0.01 / (r["bonferroni_tests"] * K)
        crit = student_t.isf(a, r["bonferroni_df"]) if r["bonferroni_df"] else norm.isf(a)
        assert (r["bound"] if r["z_excess"] is None else r["z"]) == pytest.approx(crit, rel=1e-12), r["check"]


@pytest.mark.slow
def test_nonconvex_objective_checks_theorems_3_to_5(tmp_path):
    res, rows = _run(["-d", "heart_scale", "--objective", "logreg-nonconvex", "--sketch", "rand-k",
                      "--quick", "--seeds", "8"], tmp_path)
    assert res.exit_code == 0, res.output
    assert all(float(r["power"]) >= 2 for r in rows if r["null"])
    checks = [r["check"] for r in rows]
    assert {"thm3", "thm4", "thm5", "lemma1-iii", "lemma4", "unbiased"} <= set(checks)
    assert "thm2" not in checks and "lemma2" not in checks           # need (strong) convexity
    assert all(r["verdict"] == "ok" for r in rows)


# --- mutation tests: the gate must fail -------------------------------------------------------------

@pytest.fixture
def biased_gradient(monkeypatch):
    """Every gradient the algorithms use is 5% too large (the values are untouched)."""
    from mast_cli.core.objective import LogisticObjective

    orig = LogisticObjective.grad
    monkeypatch.setattr(LogisticObjective, "grad", lambda self, X: 1.05 * orig(self, X))


@pytest.fixture
def sketch_applied_once(monkeypatch):
    """Algorithm 1 steps with ∇f(v + S(x − v)) instead of Sᵀ∇f(v + S(x − v))."""
    from mast_cli.algorithms._engine import Recorder, SketchBank, streams

    def dsgd_once(obj, sketches, steps, seeds, iters, x0=None, v=None, *, batch_size=None,
                  sampling="uniform", log_every=1, metrics_fn=None, progress=None):
        R, d = len(sketches), obj.d
        v = np.zeros((d, R)) if v is None else np.broadcast_to(np.reshape(v, (d, -1)), (d, R)).copy()
        X = v.copy() if x0 is None else np.broadcast_to(np.reshape(x0, (d, -1)), (d, R)).copy()
        gam = np.asarray(steps, dtype=np.float64).reshape(R)
        bank = SketchBank(sketches, [streams(s)[0] for s in np.asarray(seeds).reshape(R)])
        rec = Recorder(X, iters, log_every, metrics_fn)
        rec.log(X, 0)
        for t in range(iters):
            S = bank.next()
            X -= gam * obj.grad(v + S * (X - v))                 # BUG: the sketch is applied once
            rec.check(X, t + 1)
            rec.log(X, t + 1)
        return rec.history()

    monkeypatch.setattr(algorithms, "dsgd", dsgd_once)


def _violated(rows):
    return [r["check"] for r in rows if r["verdict"] == "VIOLATED"]


GATE = ("lemma1-iii", "unbiased", "thm2")


def test_gate_fails_with_biased_gradient(biased_gradient, only, tmp_path):
    only(*GATE)
    res, rows = _run(["-d", "a1a", *SMALL], tmp_path)
    assert res.exit_code == 1, res.output
    assert "unbiased" in _violated(rows)
    assert "VIOLATED" in res.output


def test_gate_fails_with_sketch_applied_once(sketch_applied_once, only, tmp_path):
    only(*GATE)
    res, rows = _run(["-d", "a1a", *SMALL], tmp_path)
    assert res.exit_code == 1, res.output
    assert "unbiased" in _violated(rows)


def test_gate_passes_without_mutation_on_the_small_battery(only, tmp_path):
    """The same small battery as the mutation tests passes on the correct code."""
    only(*GATE)
    res, rows = _run(["-d", "a1a", *SMALL], tmp_path)
    assert res.exit_code == 0, res.output
    assert not _violated(rows)


# --- the decision rule --------------------------------------------------------------------------------

def test_stochastic_rule_is_one_sided_99_percent():
    ok = CheckResult("c", "s", observed=1.0 + Z99 * 0.1 - 1e-9, bound=1.0, kind="stochastic", se=0.1)
    bad = CheckResult("c", "s", observed=1.0 + Z99 * 0.1 + 1e-9, bound=1.0, kind="stochastic", se=0.1)
    assert ok.verdict == "ok" and bad.verdict == "VIOLATED"
    assert ok.slack < 1                                          # above the bound but within the CI
    exact = CheckResult("c", "s", observed=1.0 + 1e-12, bound=1.0, tol=1e-9)
    assert exact.verdict == "ok"
    assert CheckResult("c", "s", observed=1.1, bound=1.0, tol=1e-9).verdict == "VIOLATED"
    assert CheckResult("c", "s", observed=float("inf"), bound=1.0, kind="stochastic").verdict == "VIOLATED"


def test_library_result_and_theorem2_bound_is_attained_order(tmp_path):
    """verify_dataset returns rows whose stochastic observed values are means over R seeds."""
    cfg = VerifyConfig(dataset="heart_scale", sketches=["rand-k"], quick=True, seeds=4, pool=16,
                       checks=["lemma1-iii", "unbiased", "thm2"])
    out = verify_dataset(cfg)
    rows = {r.check: r for r in out["rows"]}
    assert rows["thm2"].samples == 4 and rows["thm2"].kind == "stochastic" and rows["thm2"].se > 0
    assert rows["unbiased"].kind == "exact" and rows["unbiased"].observed < 1e-8
    assert out["violated"] == 0


def test_sweep_reports_delta_per_sparsity(only, tmp_path):
    only("lemma1-iii", "thm2-interp")
    res, rows = _run(["-d", "heart_scale", "--sketch", "rand-k", "--sparsity", "0.3,0.7", "--quick",
                      "--seeds", "4"], tmp_path)
    assert res.exit_code == 0, res.output
    assert "sweep: Δ(sparsity)" in res.output
    data = json.loads((tmp_path / "verify.json").read_text())
    s = {round(x["sparsity_level"], 2): x for x in data["sweep"]}
    assert set(s) == {0.3, 0.7}
    # exact enumeration (d = 13): more sparsity, larger gap (check 24, expected monotonicity)
    assert s[0.7]["delta"] > s[0.3]["delta"] > 0
    assert {float(r["sparsity"]) for r in rows} == {s[0.3]["sparsity"], s[0.7]["sparsity"]}


def test_json_flag_prints_parsable_result(only, tmp_path):
    only("lemma1-iii", "unbiased", "thm2", "sketch-mean")
    res = CliRunner().invoke(cli, ["verify", "-d", "a1a", "--sketch", "rand-k", "--quick", "--seeds", "4",
                                   "--pool", "8", "--json", "-q", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["dataset"]["name"] == "a1a" and data["violated"] == 0
    assert all(r["slack"] is not None or r["observed"] <= 0 for r in data["rows"])
    assert all(r["power"] >= 2 for r in data["rows"] if r["null"] is not None)


@pytest.mark.parametrize("args, msg", [
    (["--sparsity", "1.5"], "sparsity"),
    (["--sketch", "dropout-unscaled"], "Assumption 1"),
    (["--sketch", "nope"], "unknown sketch"),
    (["--seeds", "1"], "--seeds"),
    (["--objective", "svm"], "unknown objective"),
    (["--shift", "weird"], "--shift"),
])
def test_bad_input_is_one_line_error(args, msg, tmp_path):
    res = CliRunner().invoke(cli, ["verify", "-d", "heart_scale", "--quick", *args, "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert res.output.startswith("Error:") and msg in res.output and res.output.count("\n") == 1


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["a1a", "heart_scale", "breast-cancer", "mushrooms"])
def test_full_battery_passes(dataset, tmp_path):
    res, rows = _run(["-d", dataset, "-q"], tmp_path)
    assert res.exit_code == 0, res.output
    assert rows and all(r["verdict"] == "ok" for r in rows)
    assert all(float(r["power"]) >= 2.0 for r in rows if r["null"])


@pytest.mark.slow
def test_full_battery_nonconvex(tmp_path):
    res, rows = _run(["-d", "a1a", "--objective", "logreg-nonconvex", "-q"], tmp_path)
    assert res.exit_code == 0, res.output


def test_gaussian_sketch_theorems_needing_L_S_max_not_applicable(only, tmp_path):
    """L_S^max = ∞ for Gaussian sketches: Lemma 4 and the rates are reported n/a, the checks
    that use only L_D, μ_D (Lemmas 1-3, Theorem 1) still run and pass."""
    from mast_cli.verify import NEEDS_L_S_MAX

    only("lemma1-iii", "lemma4", "thm1-upper", "thm1-lower", "unbiased", "thm2", "sketch-mean",
         "sketch-second-moment")
    res = CliRunner().invoke(cli, ["verify", "-d", "a1a", "--sketch", "gaussian", "--sparsity", "0.5",
                                   "--quick", "--json", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    import pandas as pd

    df = pd.read_csv(tmp_path / "verify.csv", keep_default_na=False)
    na = df[df.verdict == "n/a"]
    assert set(na.check.str.split(" ").str[0]) <= NEEDS_L_S_MAX and "lemma4" in set(na.check)
    ran = df[df.verdict != "n/a"]
    assert {"lemma1-iii", "thm1-upper", "thm1-lower"} <= set(ran.check) and (ran.verdict == "ok").all()
