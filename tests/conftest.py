"""Shared fixtures: real LIBSVM data from ../shared/datasets/libsvm and the bundled files."""

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets" / "libsvm"


def shared_file(name):
    path = SHARED / f"{name}.bz2"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return path


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    """Tests never download: unknown libsvmdata names fail fast; caches stay in the test tree."""
    monkeypatch.setenv("MAST_OFFLINE", "1")
    monkeypatch.setenv("MAST_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "mast-cache"))


@pytest.fixture(scope="session")
def a1a():
    from mast_cli.data import load_dataset

    return load_dataset("a1a")


@pytest.fixture(scope="session")
def a1a_obj(a1a):
    from mast_cli.objectives import LogisticL2

    return LogisticL2(a1a.X, a1a.y, 1e-3)


@pytest.fixture(scope="session")
def a1a_star(a1a_obj):
    from mast_cli.objectives import solve_erm

    return solve_erm(a1a_obj)[0]


@pytest.fixture(scope="session")
def tiny():
    """A tiny real problem (d = 6): the first 6 columns of heart_scale, 200 rows."""
    from mast_cli.data import load_dataset
    from mast_cli.objectives import LogisticL2

    ds = load_dataset("heart_scale")
    X = ds.X[:200, :6]
    return LogisticL2(X, ds.y[:200], 0.05)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def cuda_backend():
    """The CuPy backend for the GPU tests, or skip (no CuPy, or no usable CUDA device: the reason)."""
    pytest.importorskip("cupy")
    from mast_cli.core.backend import cuda_status, get_backend

    why = cuda_status()
    if why is not None:
        pytest.skip(why)
    return get_backend("cuda")
