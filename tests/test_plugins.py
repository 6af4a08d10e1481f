"""Issue 18 item 6: a separate package adds a sketch and an objective through entry points.

The example package of README "Extending mast" (examples/plugin/) is installed into a temporary
folder as a module plus a ``*.dist-info`` with ``entry_points.txt`` (what pip writes), put on
PYTHONPATH, and driven through the CLI in a subprocess.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "examples" / "plugin"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    shutil.copy(PLUGIN / "mast_example_plugin.py", root)
    info = root / "mast_example_plugin-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mast-example-plugin\nVersion: 0.1.0\n")
    # the same entry points as examples/plugin/pyproject.toml
    import tomllib

    eps = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]["entry-points"]
    text = "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in table.items()) + "\n"
                   for group, table in eps.items())
    (info / "entry_points.txt").write_text(text)
    return root


def mast(args, plugin_path, cwd):
    env = dict(os.environ, MAST_OFFLINE="1", PYTHONPATH=str(plugin_path))
    return subprocess.run([sys.executable, "-m", "mast_cli.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def test_plugin_sketch_and_objective_in_constants(plugin_path, tmp_path):
    res = mast(["constants", "-d", "a1a", "--sketch", "uniform", "--sigma", "0.3", "--objective", "logreg-huber",
                "--json"], plugin_path, tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    a = np.sqrt(3) * 0.3
    assert out["objective"] == "logreg-huber" and out["sketch"] == "uniform"
    np.testing.assert_allclose(out["L_S_max"], (1 + a) ** 2, rtol=1e-12)       # closed form
    np.testing.assert_allclose(out["L_D"], 1 + 0.3 ** 2, rtol=1e-12)
    assert out["L_S_max_seen"] <= out["L_S_max"] + 1e-12                     # sampled sketches agree
    np.testing.assert_allclose(out["mu_f"], 1e-3)


def test_plugin_in_run(plugin_path, tmp_path):
    res = mast(["run", "-d", "heart_scale", "--sketch", "uniform,bernoulli", "--sparsity", "0.2", "-T", "40",
                "--seeds", "2", "--objective", "logreg-huber", "-o", "r", "-q"], plugin_path, tmp_path)
    assert res.returncode == 0, res.stderr
    import pandas as pd

    df = pd.read_csv(tmp_path / "r" / "trajectories.csv")
    assert set(df.sketch) == {"uniform", "bernoulli"} and (df.status == "ok").all()
    last = df[df.iteration == df.iteration.max()]
    assert (last.erm_loss < df[df.iteration == 0].erm_loss.max()).all()      # it trains


def test_plugin_in_verify(plugin_path, tmp_path):
    """`mast verify --sketch uniform --sigma 0.3`: the checks that enumerate a sketch's support
    (the tiny-problem unbiasedness checks) are skipped, not failed; the Monte Carlo and pool-based
    checks run on the plug-in's sketch (σ = 0.3 from --sigma) and hold."""
    import csv

    res = mast(["verify", "-d", "heart_scale", "--sketch", "uniform", "--sigma", "0.3", "--quick", "-o", "v", "-q"],
               plugin_path, tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    rows = list(csv.DictReader(open(tmp_path / "v" / "verify.csv")))
    skipped = {r["check"] for r in rows if r["verdict"] == "skipped"}
    assert {"unbiased-II", "unbiased-alg2", "unbiased-alg3"} <= skipped
    assert all("not enumerable" in r["notes"] for r in rows if r["verdict"] == "skipped")
    ran = {r["check"] for r in rows if r["verdict"] == "ok"}
    assert {"sketch-mean", "sketch-second-moment", "lemma1-iii", "thm1-upper", "thm2", "thm3"} <= ran
    assert {r["sketch"] for r in rows} == {"uniform"}
    info = json.loads((tmp_path / "v" / "verify.json").read_text())
    assert info["sweep"][0]["pool_L_D"] == pytest.approx(1 + 0.3 ** 2, rel=0.1)     # σ = 0.3 was used
    assert "skipped: not enumerable" in res.stdout
    assert max(len(line) for line in res.stdout.splitlines()) < 100


def test_plugin_errors_are_one_line(plugin_path, tmp_path):
    res = mast(["run", "-d", "heart_scale", "--sketch", "uniform", "--p", "0.5", "-T", "5", "-o", "x"],
               plugin_path, tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "takes --sigma or --sparsity, not --p" in res.stderr
    assert not (tmp_path / "x").exists()
    # without the plug-in on the path the name is unknown
    res = subprocess.run([sys.executable, "-m", "mast_cli.cli", "constants", "-d", "heart_scale", "--sketch",
                          "uniform", "--sigma", "0.3"], capture_output=True, text=True, cwd=tmp_path,
                         env=dict(os.environ, MAST_OFFLINE="1"))
    assert res.returncode == 2 and "unknown sketch 'uniform'" in res.stderr


def test_broken_plugin_is_one_line(tmp_path):
    info = tmp_path / "site" / "broken-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mast.sketches]\nbroken = no_such_module:Thing\n")
    res = mast(["constants", "-d", "heart_scale", "--sketch", "broken"], tmp_path / "site", tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "plug-in 'broken'" in res.stderr and "cannot be loaded" in res.stderr
