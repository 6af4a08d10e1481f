"""Property-based fuzzing of the CLI with hypothesis (issue 16).

Generated LIBSVM files (odd labels; indices 0 / negative / huge / unsorted / duplicate;
values nan / inf / 1e308 / −0 / denormal / huge / tiny; comments, CRLF, blank lines, qid,
no final newline) and option values (p, K, M, λ, γ, iters, seeds, sparsity lists, TOML
values) go through the CLI in-process (click.testing.CliRunner).  The property:

* exit 0 with finite numbers — and, for ``mast constants``, f_inf within 1e-8 (relative)
  of an independent scikit-learn solve whenever that solve converged, and never above it; or
* exit 2 with exactly one line ``Error: ...``;
* never exit 1, never a traceback, nothing left in the output folder after an error.

``make test`` runs a fixed-seed profile of about 50 examples (``MAST_FUZZ_EXAMPLES`` sets
the number per test); ``make fuzz`` runs thousands and prints the counts.
"""

from __future__ import annotations

import collections
import json
import math
import os
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from click.testing import CliRunner  # noqa: E402

from mast_cli.cli import cli  # noqa: E402

#: Examples per test: 50 in total over the three tests in `make test`, thousands in `make fuzz`.
SCALE = int(os.environ.get("MAST_FUZZ_EXAMPLES", "0") or 0)
PROFILE = dict(deadline=None, derandomize=SCALE == 0, database=None, print_blob=True,
               suppress_health_check=list(HealthCheck))

#: Outcome counts, printed by `make fuzz` (tests/fuzz_report.py reads them from the env file).
COUNTS = collections.Counter()

# --- generated LIBSVM files -------------------------------------------------------------------
LABELS = ["+1", "-1", "1", "-1", "0", "2", "4", "1.0", "-1.0", "+1e0", "3", "nan", "inf", "x", "1,2"]
GOOD_VALUES = st.floats(min_value=-10, max_value=10, allow_nan=False, width=32).map(lambda v: f"{v:g}")
ODD_VALUES = st.sampled_from(["nan", "inf", "-inf", "1e308", "-1e308", "-0", "0", "5e-324", "1e-310",
                              "1e90", "-1e90", "1e200", "1e-300", "0x1p3", "1e", "", "abc", "1.5.2"])
INDICES = st.one_of(st.integers(1, 8), st.integers(1, 8), st.sampled_from([0, -1, 10 ** 9, 2 ** 40, 123]))


@st.composite
def libsvm_line(draw, odd):
    label = draw(st.sampled_from(LABELS[:4] if not odd else LABELS))
    feats = draw(st.lists(st.tuples(st.integers(1, 8) if not odd else INDICES,
                                    GOOD_VALUES if not odd else st.one_of(GOOD_VALUES, ODD_VALUES)),
                          min_size=0 if odd else 1, max_size=6))
    if not odd:
        feats = sorted(dict(feats).items())
    elif draw(st.booleans()):
        feats = sorted(feats)
    toks = [label]
    if odd and draw(st.integers(0, 9)) == 0:
        toks.append(f"qid:{draw(st.integers(0, 3))}")
    toks += [f"{i}:{v}" for i, v in feats]
    sep = draw(st.sampled_from([" ", " ", "\t", "  "])) if odd else " "
    line = sep.join(toks)
    if odd and draw(st.integers(0, 9)) == 0:
        line += " # a comment"
    return line


@st.composite
def libsvm_file(draw):
    """Text of a LIBSVM file: mostly well-formed (so that exit 0 paths are exercised)."""
    odd = draw(st.integers(0, 2)) == 0
    lines = draw(st.lists(libsvm_line(odd), min_size=1 if odd else 4, max_size=14))
    if not odd:  # both classes present
        lines[0] = "+1" + lines[0][lines[0].index(" "):]
        lines[1] = "-1" + lines[1][lines[1].index(" "):]
    if odd:
        for _ in range(draw(st.integers(0, 2))):
            lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["", "# comment", "   "])))
    eol = "\r\n" if odd and draw(st.booleans()) else "\n"
    text = eol.join(lines)
    if draw(st.booleans()) or not odd:
        text += eol
    return text


def _sklearn_f_inf(X, y, lam):
    """min_x mean log(1 + exp(−y Xx)) + λ/2 ‖x‖² by scikit-learn (value, converged)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    n = X.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            m = LogisticRegression(C=1.0 / (n * lam), fit_intercept=False, tol=1e-14, max_iter=2000,
                                   solver="newton-cholesky").fit(X, y)
        except (ValueError, ConvergenceWarning, np.linalg.LinAlgError):
            return None, False
    w = m.coef_.ravel()
    z = y * (X @ w)
    val = float(np.mean(np.logaddexp(0.0, -z)) + 0.5 * lam * w @ w)
    g = -(X.T @ (y / (1.0 + np.exp(np.clip(z, -700, 700))))) / n + lam * w
    return val, bool(np.linalg.norm(g) <= 1e-9)


def _outcome(res, out_dir=None):
    """Check the property on one CliRunner result; returns 'ok' or 'error'."""
    text = res.output
    assert "Traceback" not in text, text
    assert res.exit_code in (0, 2), (res.exit_code, text, repr(res.exception))
    if res.exit_code == 2:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), text
        if out_dir is not None:
            assert not os.path.exists(out_dir) or not os.listdir(out_dir), os.listdir(out_dir)
        return "error"
    return "ok"


def _runner():
    return CliRunner()


# --- mast constants on generated files --------------------------------------------------------
@settings(max_examples=SCALE or 25, **PROFILE)
@given(text=libsvm_file(), lam=st.sampled_from([1e-3, 1e-1, 1.0, 0.0, 1e-6]),
       sketch=st.sampled_from([None, ("bernoulli", "--p", "0.5"), ("rand-k", "--k", "1"),
                               ("perm-k", "--workers", "2"), ("bernoulli", "--sparsity", "0.9")]))
def test_fuzz_constants_on_generated_files(tmp_path_factory, text, lam, sketch):
    path = tmp_path_factory.mktemp("fz") / "gen.svm"
    path.write_bytes(text.encode())
    args = ["constants", "-d", str(path), "--lam", repr(lam), "--json"]
    if sketch:
        args += ["--sketch", *sketch]
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # a leaked numpy warning fails the property
        res = _runner().invoke(cli, args)
    kind = _outcome(res)
    COUNTS[f"constants:{kind}"] += 1
    if kind != "ok":
        return
    out = json.loads(res.output)
    for key, val in out.items():
        if isinstance(val, float):
            assert math.isfinite(val), (key, val)
    assert out["grad_norm_at_x_star"] <= 1e-10
    from mast_cli.io.data import load_dataset

    ds = load_dataset(str(path))
    if lam > 0:
        ref, converged = _sklearn_f_inf(ds.X, ds.y, lam)
        if ref is not None:
            # a certified minimum is never above another solver's value
            assert out["f_inf"] <= ref + 1e-8 * max(1.0, abs(ref)), (out["f_inf"], ref)
            if converged:
                assert abs(out["f_inf"] - ref) <= 1e-8 * max(1.0, abs(ref)), (out["f_inf"], ref)
                COUNTS["constants:sklearn-compared"] += 1


# --- mast run with generated option values ----------------------------------------------------
NUM = st.one_of(st.sampled_from(["0", "1", "-1", "0.5", "2", "1e308", "nan", "inf", "-0", "1e-320",
                                 "3", "10", "abc", "", "1,2", "0.1,0.9"]),
                st.floats(allow_nan=True, allow_infinity=True).map(repr))
INT = st.one_of(st.sampled_from(["0", "1", "2", "-3", "5", "2.5", "10000000000000000000000", "1e3", "x"]),
                st.integers(-5, 30).map(str))

RUN_BASE = ["run", "-d", "heart_scale", "--eval-sketches", "2", "-q"]


@st.composite
def valid_run_options(draw):
    """Options a careful user would give (the exit-0 paths: engine, metrics, CSV)."""
    fam = draw(st.sampled_from(["bernoulli", "rand-k", "perm-k", "gaussian", "identity"]))
    opts = ["--sketch", fam]
    if fam == "bernoulli":
        opts += draw(st.sampled_from([["--p", "0.5"], ["--p", "1"], ["--sparsity", "0.1,0.9"], ["--p", "0.05"]]))
    elif fam == "rand-k":
        opts += ["--k", str(draw(st.integers(1, 13)))]
    elif fam == "perm-k":
        opts += ["--workers", str(draw(st.integers(1, 13)))]
    elif fam == "gaussian":
        opts += ["--sigma", draw(st.sampled_from(["0.1", "1"]))]
    opts += ["--lam", draw(st.sampled_from(["1e-3", "0.1", "1e-6"]))]
    opts += ["--step", draw(st.sampled_from(["theory", "2x", "0.5x", "0.01", "theory,4x", "100"]))]
    opts += ["--iters", str(draw(st.integers(1, 30))), "--seeds", str(draw(st.integers(1, 3)))]
    if draw(st.booleans()):
        opts += ["-a", "dsgd-minibatch", "--batch-size", draw(st.sampled_from(["1", "5", "n", "1,n"]))]
    return opts


@st.composite
def run_options(draw):
    if draw(st.booleans()):
        return draw(valid_run_options())
    opts = []
    sketch = draw(st.sampled_from(["bernoulli", "rand-k", "perm-k", "gaussian", "identity", "bogus"]))
    opts += ["--sketch", sketch]
    which = draw(st.sampled_from(["--p", "--k", "--workers", "--sparsity", "--sigma", None]))
    if which:
        opts += [which, draw(NUM if which in ("--p", "--sparsity", "--sigma") else st.one_of(INT, NUM))]
    if draw(st.booleans()):
        opts += ["--lam", draw(NUM)]
    if draw(st.booleans()):
        opts += ["--step", draw(st.one_of(NUM, st.sampled_from(["theory", "2x", "0.5x", "x", "theory,1"])))]
    opts += ["--iters", draw(st.one_of(st.sampled_from(["5", "10"]), INT))]
    opts += ["--seeds", draw(st.one_of(st.sampled_from(["1", "2"]), INT))]
    if draw(st.integers(0, 3)) == 0:
        opts += ["--log-every", draw(INT)]
    return opts


def _iters_small(opts):
    """Keep generated runs short: a valid --iters/--seeds above these is replaced."""
    out = list(opts)
    for flag, cap in (("--iters", 40), ("--seeds", 3), ("--log-every", 40)):
        i = out.index(flag) + 1 if flag in out else None
        if i is not None:
            try:
                if int(out[i]) > cap:
                    out[i] = str(cap)
            except ValueError:
                pass
    return out


@settings(max_examples=SCALE or 15, **PROFILE)
@given(opts=run_options(), text=st.one_of(st.none(), libsvm_file()))
def test_fuzz_run_options(tmp_path_factory, opts, text):
    root = tmp_path_factory.mktemp("fzrun")
    out_dir = root / "out"
    base = list(RUN_BASE)
    if text is not None:           # the same options on a generated file
        (root / "gen.svm").write_bytes(text.encode())
        base[2] = str(root / "gen.svm")
    res = _runner().invoke(cli, base + _iters_small(opts) + ["-o", str(out_dir)])
    kind = _outcome(res, out_dir)
    COUNTS[f"run:{kind}"] += 1
    if kind == "ok":
        import pandas as pd

        df = pd.read_csv(out_dir / "trajectories.csv")
        ok = df[df["status"] != "diverged"] if "status" in df else df
        num = ok.select_dtypes("number").to_numpy(dtype=float)
        assert np.all(np.isfinite(num) | np.isnan(num)), "infinite value in a non-diverged row"


# --- TOML experiment files ------------------------------------------------------------------
TOML_VALUES = st.one_of(
    st.integers(-3, 50).map(str), st.integers(1, 20).map(str), st.sampled_from(["0.5", "0.1", "1e-3"]), st.sampled_from(['"5"', "true", "1.5", "[]", "[1, 2]", '"theory"',
                                                   "1e400", "nan", "inf", '"bernoulli"', "[0.5, 0.9]",
                                                   '["rand-k"]', "{a = 1}", "-0.0", "10000000000000"]))


@settings(max_examples=SCALE or 10, **PROFILE)
@given(entries=st.dictionaries(st.sampled_from(["iters", "seeds", "sparsity", "p", "k", "lam", "step",
                                                "sketch", "eval_sketches", "log_every", "algorithm",
                                                "masks", "bogus"]),
                               TOML_VALUES, min_size=1, max_size=3))
def test_fuzz_toml_values(tmp_path_factory, entries):
    root = tmp_path_factory.mktemp("fztoml")
    cfg = root / "exp.toml"
    entries = dict(entries)
    for key, cap in (("iters", 30), ("seeds", 2), ("eval_sketches", 3), ("masks", 5)):
        if key in entries and entries[key].lstrip("-").isdigit() and int(entries[key]) > cap:
            entries[key] = str(cap)
    if "sketch" not in entries and "p" not in entries and "sparsity" not in entries:
        entries.update(sketch='"bernoulli"', p="0.5")      # a runnable base, fuzzed values on top
    cfg.write_text("".join(f"{k} = {v}\n" for k, v in entries.items()))
    out_dir = root / "out"
    res = _runner().invoke(cli, ["run", "--config", str(cfg), "-d", "heart_scale", "--eval-sketches", "2",
                                 "-q", "-o", str(out_dir)])
    COUNTS[f"toml:{_outcome(res, out_dir)}"] += 1


def teardown_module(module):
    if COUNTS and os.environ.get("MAST_FUZZ_REPORT"):
        with open(os.environ["MAST_FUZZ_REPORT"], "w") as fh:
            json.dump(dict(COUNTS), fh, indent=1, sort_keys=True)
