import bz2

import numpy as np
import pytest
import scipy.sparse as sp

from mast_cli.data import load_dataset, load_libsvm_file, list_datasets, published_width
from mast_cli.errors import MastError
from tests.conftest import shared_file


@pytest.mark.parametrize("name, n, d, raw_labels", [
    ("a1a", 1605, 123, (-1, 1)),
    ("w1a", 2477, 300, (-1, 1)),
    ("mushrooms", 8124, 112, (1, 2)),
    ("breast-cancer", 683, 10, (2, 4)),
    ("svmguide1", 3089, 4, (0, 1)),
    ("australian", 690, 14, (-1, 1)),
])
def test_real_files_widths_and_labels(name, n, d, raw_labels):
    ds = load_libsvm_file(shared_file(name))
    assert ds.X.shape == (n, d)
    assert sp.isspmatrix_csr(ds.X) and ds.X.dtype == np.float64
    assert set(np.unique(ds.y)) == {-1.0, 1.0}
    assert ds.label_map == {float(raw_labels[0]): -1.0, float(raw_labels[1]): 1.0}


def test_test_split_widths_agree():
    ds = load_libsvm_file(shared_file("a9a"))       # a9a.t parses as 122 columns
    assert ds.X_test is not None and ds.X_test.shape == (16281, 123) and ds.X.shape[1] == 123
    ds = load_libsvm_file(shared_file("a1a"))       # a1a parses as 119 columns
    assert ds.X.shape == (1605, 123) and ds.X_test.shape == (30956, 123)


def test_unknown_width_takes_max_of_both(tmp_path):
    (tmp_path / "toy").write_text("1 1:1\n-1 2:1\n")
    (tmp_path / "toy.t").write_text("1 5:1\n-1 2:1\n")
    ds = load_libsvm_file(tmp_path / "toy")
    assert ds.X.shape == (2, 5) and ds.X_test.shape == (2, 5)


def test_bundled_name_resolves_with_test_split():
    ds = load_dataset("a1a")
    assert "datasets" in ds.source and ds.X_test.shape == (30956, 123)
    assert published_width("a5a") == 123 and published_width("w8a.t") == 300


def test_mast_data_dir(tmp_path, monkeypatch):
    (tmp_path / "mine.bz2").write_bytes(bz2.compress(b"2 1:1 3:0.5\n4 2:1\n"))
    monkeypatch.setenv("MAST_DATA_DIR", str(tmp_path))
    ds = load_dataset("mine")
    assert ds.X.shape == (2, 3) and list(ds.y) == [-1.0, 1.0]
    assert any(r["name"] == "mine" for r in list_datasets())


@pytest.mark.parametrize("content, match", [
    ("1 1:1\n1 2:1\n", "single class"),
    ("1 1:1\n2 2:1\n3 1:2\n", "3 classes"),
    ("1 0:1\n-1 2:1\n", "Invalid index 0"),
    ("1 -2:1\n-1 2:1\n", "Invalid index -2"),
    ("1 x:1\n-1 2:1\n", "cannot read"),
    ("1 1:nan\n-1 2:1\n", "non-finite"),
    ("", "no samples"),
])
def test_bad_files(tmp_path, content, match):
    f = tmp_path / "bad.svm"
    f.write_text(content)
    with pytest.raises(MastError, match=match):
        load_libsvm_file(f)


def test_bad_paths(tmp_path):
    with pytest.raises(MastError, match="does not exist"):
        load_dataset(str(tmp_path / "missing.bz2"))
    with pytest.raises(MastError, match="directory"):
        load_libsvm_file(tmp_path)
    (tmp_path / "corrupt.bz2").write_bytes(b"not bzip2 at all")
    with pytest.raises(MastError, match="cannot read"):
        load_dataset(str(tmp_path / "corrupt.bz2"))


def test_unknown_name_offline_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr("mast_cli.data._libsvmdata_home", lambda: tmp_path)
    with pytest.raises(MastError, match="MAST_DATA_DIR"):
        load_dataset("no-such-dataset")
    with pytest.raises(MastError, match="libsvmdata cache"):
        load_dataset("a5a")  # a real LIBSVM name, but offline and not cached


def test_parsed_file_cache_same_size_and_mtime(tmp_path, monkeypatch):
    """A file replaced by another of the same size and modification time (cp -p, rsync -t,
    archives) is parsed again: the cache is valid for the file's bytes, not its stamp."""
    import os

    from mast_cli.io import data as data_mod

    monkeypatch.setenv("MAST_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "data.svm"
    src.write_text("1 1:0.5\n-1 2:0.5\n")
    os.utime(src, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    X1, _ = data_mod._read_svmlight(src)
    src.write_text("1 1:0.9\n-1 2:0.5\n")                        # same size
    os.utime(src, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))    # same mtime
    X2, _ = data_mod._read_svmlight(src)
    assert X1[0, 0] == 0.5 and X2[0, 0] == 0.9


@pytest.mark.parametrize("damage", ["empty", "truncated", "zip header only"])
def test_parsed_file_cache_damaged_entry(tmp_path, monkeypatch, damage):
    """A damaged cache entry (empty, truncated, a bare zip header: np.load raises EOFError or
    zipfile.BadZipFile there, not ValueError) is a miss: the file is parsed again, the entry
    rewritten."""
    from mast_cli.io import data as data_mod

    monkeypatch.setenv("MAST_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "tiny.svm"
    src.write_text("1 1:0.5 3:2\n-1 2:1.5\n1 1:-1 2:0 3:4\n")
    X0, y0 = data_mod._read_svmlight(src)
    (entry,) = (tmp_path / "cache" / "parsed").glob("*.npz")
    good = entry.read_bytes()
    entry.write_bytes({"empty": b"", "truncated": good[: len(good) // 2],
                       "zip header only": b"PK\x03\x04garbage"}[damage])
    X, y = data_mod._read_svmlight(src)
    assert (X != X0).nnz == 0 and np.array_equal(y, y0)
    with np.load(entry, allow_pickle=False) as z:           # rewritten whole
        assert np.array_equal(z["data"], X0.data) and np.array_equal(z["y"], y0)
    assert not [f for f in entry.parent.iterdir() if f.name.startswith(".parsed.")]


def test_parsed_file_cache_failed_write_leaves_nothing(tmp_path, monkeypatch):
    """A cache write that fails (disk full) still returns the parsed file and leaves no
    temporary file behind."""
    from mast_cli.io import data as data_mod

    monkeypatch.setenv("MAST_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "tiny.svm"
    src.write_text("1 1:0.5 3:2\n-1 2:1.5\n")

    def full(fh, **arrays):
        fh.write(b"PK")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    X, y = data_mod._read_svmlight(src)
    assert X.shape == (2, 3) and list(y) == [1.0, -1.0]
    assert list((tmp_path / "cache" / "parsed").iterdir()) == []


@pytest.mark.parametrize("foreign", ['{"a": 1}', '{"[2]": 1}', '[1, 2]', '{"[1, \\"x\\", 5]": {}}'])
def test_sizes_cache_survives_a_foreign_file(tmp_path, monkeypatch, foreign):
    """A datasets.json this version did not write (keys that are not its JSON lists: the
    filter of stale entries raised JSONDecodeError / IndexError, 'mast datasets' exited 1)
    is ignored and rewritten."""
    import json

    from mast_cli.io import datacache

    monkeypatch.setenv("MAST_CACHE_DIR", str(tmp_path))
    (tmp_path / "datasets.json").write_text(foreign)
    src = tmp_path / "f.svm"
    src.write_text("1 1:1\n")
    assert datacache.cached_stats("f", src, None, lambda: {"n": 1}) == {"n": 1}
    assert datacache.cached_stats("f", src, None, lambda: {"n": 2}) == {"n": 1}     # cached
    assert {"n": 1} in json.loads((tmp_path / "datasets.json").read_text()).values()


def test_caches_without_a_home_directory(tmp_path, monkeypatch):
    """No $MAST_CACHE_DIR, no $XDG_CACHE_HOME and no home directory (Path.home() raises
    RuntimeError): both caches are off, nothing fails."""
    from pathlib import Path

    from mast_cli.io import data as data_mod, datacache

    def no_home():
        raise RuntimeError("Could not determine home directory")

    monkeypatch.delenv("MAST_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    src = tmp_path / "tiny.svm"
    src.write_text("1 1:0.5\n-1 2:1.5\n")
    X, y = data_mod._read_svmlight(src)
    assert X.shape == (2, 2)
    assert datacache.cached_stats("t", src, None, lambda: {"n": 2}) == {"n": 2}


def test_parsed_file_cache(tmp_path, monkeypatch):
    """The on-disk cache of parsed files gives the parser's arrays exactly, re-parses an edited
    file (new size/mtime), survives a corrupt cache entry, and is off with MAST_CACHE_DIR=off."""
    from mast_cli.io import data as data_mod

    monkeypatch.setenv("MAST_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "tiny.svm"
    src.write_text("1 1:0.5 3:2\n-1 2:1.5\n1 1:-1 2:0 3:4\n")
    calls = []
    real = data_mod._parse_svmlight
    monkeypatch.setattr(data_mod, "_parse_svmlight", lambda p: calls.append(p) or real(p))
    X0, y0 = real(src)
    for _ in range(2):
        X, y = data_mod._read_svmlight(src)
        assert (X != X0).nnz == 0 and X.shape == X0.shape and np.array_equal(y, y0)
        assert np.array_equal(X.indices, X0.indices) and np.array_equal(X.indptr, X0.indptr)
    assert len(calls) == 1                                   # the second read came from the cache
    files = list((tmp_path / "cache" / "parsed").glob("*.npz"))
    assert len(files) == 1
    src.write_text("1 1:0.5 3:2\n-1 2:1.5\n1 1:-1 2:7 3:4\n-1 4:1\n")     # edited: parsed again
    X, y = data_mod._read_svmlight(src)
    assert len(calls) == 2 and X.shape == (4, 4) and X[2, 1] == 7.0
    assert list((tmp_path / "cache" / "parsed").glob("*.npz")) == files     # replaced, not added
    for f in (tmp_path / "cache" / "parsed").glob("*.npz"):
        f.write_bytes(b"not a zip file")                     # a corrupt entry is ignored
    X, y = data_mod._read_svmlight(src)
    assert len(calls) == 3 and X.shape == (4, 4)
    monkeypatch.setenv("MAST_CACHE_DIR", "off")
    data_mod._read_svmlight(src)
    data_mod._read_svmlight(src)
    assert len(calls) == 5 and not (tmp_path / "off").exists()
