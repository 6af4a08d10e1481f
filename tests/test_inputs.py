"""Issue 16: input classes from public bug reports, each a minimal fixture.

Every case goes through the CLI in-process and must end either with exit 0 and
finite, certified numbers, or with exit 2 and one line ``Error: ...`` naming the
value (never exit 1, never a traceback, nothing written).
"""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from mast_cli.cli import cli

# --- the minimal inputs ----------------------------------------------------------------
UNSCALED = "+1 1:1e90 2:0.5\n-1 1:-1 2:1\n+1 2:0.5\n-1 1:0.3 2:-0.2\n+1 1:0.2 2:-1\n"
SEPARABLE = "+1 1:1\n-1 1:-1\n"
HUGE_INDEX = "+1 1:0.5\n-1 1000000000:1\n"
HUGE_VALUE = "+1 1:1e200 2:0.5\n-1 1:-1 2:1\n+1 2:0.5\n-1 1:0.3 2:-0.2\n"
NO_FEATURES = "+1\n-1\n+1 \n-1\n"
SIX = "+1 1:0.5 3:1 6:0.2\n-1 2:1 4:0.3\n+1 5:1 6:-0.4\n-1 1:-0.3 2:0.7\n+1 3:0.1 4:1\n-1 1:0.2 6:1\n"


def _mast(*args, env=None):
    res = CliRunner().invoke(cli, [str(a) for a in args], env=env)
    return res.exit_code, res.output


def _one_line_error(code, out, *needles):
    assert code == 2, out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), out
    assert "Traceback" not in out
    for needle in needles:
        assert needle in out, out


@pytest.fixture
def write(tmp_path):
    def make(name, text):
        p = tmp_path / name
        p.write_text(text)
        return p
    return make


# --- 5: names listed by `mast datasets` load by that name ---------------------------------------
def test_listed_txt_name_loads_by_name(tmp_path, monkeypatch, write):
    data = tmp_path / "data"
    data.mkdir()
    (data / "toy.txt").write_text(SIX)
    (data / "MANIFEST.tsv").write_text("name\tsha\ntoy.txt\t0\n")
    (data / "README.md").write_text("# my data\n")
    (data / "notes").write_text("These are notes, not data.\n")
    monkeypatch.chdir(tmp_path)           # toy.txt is not in the current folder
    env = {"MAST_DATA_DIR": str(data)}
    code, out = _mast("datasets", "--json", env=env)
    assert code == 0, out
    rows = {r["name"]: r for r in json.loads(out)}
    assert "MANIFEST.tsv" not in rows and "README.md" not in rows and "notes" not in rows
    assert rows["toy.txt"]["d"] == 6 and "unreadable" not in rows["toy.txt"]["where"]
    for name, row in rows.items():          # every listed name loads by that name
        if row["where"].startswith("MAST_DATA_DIR"):
            code, out = _mast("constants", "-d", name, "--json", env=env)
            assert code == 0, (name, out)
    code, out = _mast("constants", "-d", "missing.svm", env=env)
    _one_line_error(code, out, "missing.svm")


# --- 6: labels but no features ------------------------------------------------------------------
@pytest.mark.parametrize("text", [NO_FEATURES, "+1 1:0\n-1 2:0\n"])
def test_labels_without_features_refused(write, text):
    p = write("nofeat.svm", text)
    code, out = _mast("constants", "-d", p)
    _one_line_error(code, out, "no nonzero feature values")


# --- 7: published widths only for names ---------------------------------------------------------
def test_path_keeps_its_own_width(tmp_path, write):
    p = write("a1a", SIX)
    code, out = _mast("constants", "-d", p, "--json")
    assert code == 0, out
    assert json.loads(out)["d"] == 6


def test_expected_width_says_where_it_comes_from(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    lines = [f"{'+1' if i % 2 else '-1'} " + " ".join(f"{j}:{rng.random():.3f}" for j in range(1, 51))
             for i in range(10)]
    (data / "heart").write_text("\n".join(lines) + "\n")
    code, out = _mast("constants", "-d", "heart", env={"MAST_DATA_DIR": str(data)})
    _one_line_error(code, out, "50 features", "13", "published LIBSVM width of 'heart'")
    code, out = _mast("constants", "-d", data / "heart", "--json")
    assert code == 0 and json.loads(out)["d"] == 50, out


# --- 8: explicit zeros dropped ------------------------------------------------------------------
def test_explicit_zeros_are_not_counted(write):
    from mast_cli.data import load_dataset

    p = write("zeros.svm", "+1 1:0 2:1 3:0.0\n-1 1:1 2:-0 3:0\n+1 3:2\n")
    ds = load_dataset(str(p))
    assert ds.nnz == 3 and np.all(ds.X.data != 0)
