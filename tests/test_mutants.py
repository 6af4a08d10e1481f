"""The mutation catalogue (mutants/): every mutant applies, and the quick subset is killed.

The whole catalogue runs in ``make verify`` (``make mutants``); ``make test`` runs the quick
subset on heart_scale with the ridge objective (about a minute on 2 cores)."""

import subprocess
import sys
from pathlib import Path

import pytest

from mutants.catalogue import MUTANTS, QUICK, validate

ROOT = Path(__file__).resolve().parents[1]


def test_catalogue_is_large_and_names_are_unique():
    names = [m.name for m in MUTANTS]
    assert len(names) >= 20 and len(set(names)) == len(names)
    areas = {m.area.split()[0] for m in MUTANTS}
    assert {"sketch", "objective", "Algorithm", "theory", "seeding"} <= areas


@pytest.mark.parametrize("m", MUTANTS, ids=lambda m: m.name)
def test_every_edit_finds_its_snippet(m):
    validate(m)


def test_a_mutant_changes_the_code_in_its_process_only():
    code = ("from mutants.catalogue import apply; import numpy as np; from mast_cli.core.sketches import RandK;"
            "apply('randk-scale-k-plus-1'); s = RandK(10, 4).sample(np.random.default_rng(0), 1);"
            "print(s.max())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert float(out.stdout) == pytest.approx(2.0)          # d/(K+1) = 10/5, not 10/4
    from mast_cli.core.sketches import RandK
    import numpy as np

    assert RandK(10, 4).sample(np.random.default_rng(0), 1).max() == 2.5


def test_quick_subset_is_killed():
    p = subprocess.run([sys.executable, "-m", "mutants", "--quick", "--datasets", "heart_scale", "--objectives",
                        "ridge", "--verify-args", "--sketch rand-k"], cwd=ROOT, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"mutants killed: {len(QUICK)}/{len(QUICK)}" in p.stdout


@pytest.mark.slow
def test_whole_catalogue_is_killed():
    p = subprocess.run([sys.executable, "-m", "mutants"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
