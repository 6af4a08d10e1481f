"""Which datasets ``mast datasets`` lists, and their sizes from the size cache.

Standard library only (numpy and scipy are imported on a cache miss only), so that ``mast
datasets`` answers in well under a second once the sizes are cached.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .datacache import libsvmdata_home
from .errors import MastError

__all__ = ["NOT_DATA_SUFFIXES", "bundled_dir", "list_datasets", "looks_like_libsvm"]


def bundled_dir():
    """The repository's ``datasets/`` folder (small bundled LIBSVM files)."""
    return Path(__file__).resolve().parents[2] / "datasets"


def _test_path(path):
    """``a9a.bz2`` -> ``a9a.t.bz2``; ``foo.svm`` -> ``foo.svm.t``."""
    path = Path(path)
    if path.suffix == ".bz2":
        cand = path.with_name(path.name[:-4] + ".t.bz2")
    else:
        cand = path.with_name(path.name + ".t")
    return cand if cand.is_file() else None


def _stem(path):
    name = Path(path).name
    return name[:-4] if name.endswith(".bz2") else name


def _sizes(name, path, stats):
    """n, d, nnz, n_test of a listed file, from the size cache when the file is unchanged."""
    from .datacache import cached_stats

    test = _test_path(path)
    return cached_stats(name, path, test if test is not None and Path(test).is_file() else None,
                        lambda: stats(name))


#: File endings that are never LIBSVM data (manifests, notes, arrays, archives of other kinds).
NOT_DATA_SUFFIXES = (".md", ".rst", ".tsv", ".csv", ".json", ".toml", ".yaml", ".yml", ".py",
                     ".npy", ".npz", ".pdf", ".png", ".html", ".sha256", ".md5", ".gz", ".zip",
                     ".xz", ".tar", ".log", ".lock")
_LIBSVM_LINE = re.compile(rb"^\s*[-+]?[0-9.eEinfINFaA]+(\s+qid:\S+)?(\s+-?\d+:\S+)*\s*(#.*)?$")


def looks_like_libsvm(path):
    """Whether a file looks like LIBSVM data: its first data line is ``label idx:val ...``.

    Reads at most 64 KiB (decompressed for ``.bz2``).  Files with a known non-data
    ending (:data:`NOT_DATA_SUFFIXES`, e.g. ``MANIFEST.tsv``, ``README.md``) are not data.
    """
    path = Path(path)
    name = _stem(path).lower()
    if name.endswith(NOT_DATA_SUFFIXES) or name.startswith(("readme", "manifest", "license")):
        return False
    try:
        if path.suffix == ".bz2":
            import bz2

            with bz2.open(path, "rb") as fh:
                head = fh.read(1 << 16)
        else:
            with open(path, "rb") as fh:
                head = fh.read(1 << 16)
    except (OSError, EOFError, ValueError):
        return True            # unreadable but named like data: listed as unreadable
    lines = head.splitlines()
    if len(head) == 1 << 16 and len(lines) > 1:
        lines = lines[:-1]     # the last line may be cut
    for line in lines:
        line = line.strip()
        if not line or line.startswith(b"#"):
            continue
        return bool(_LIBSVM_LINE.match(line))
    return True                # empty: named like data, listed (as unreadable)


def list_datasets(stats):
    """Bundled, ``$MAST_DATA_DIR`` and libsvmdata-cached datasets as a list of dicts.

    ``stats(name)`` parses a file whose sizes are not cached yet and returns ``n, d, nnz,
    n_test, max_abs, scaled`` (:func:`mast_cli.io.data.dataset_stats`; passed in so that this
    module stays free of numpy and scipy).

    Each dict has ``name, n, d, nnz, n_test, where`` (``where`` is where the name
    resolves from).  Test companions (``*.t``) are folded into their training set;
    files that are not LIBSVM data (:func:`looks_like_libsvm`) are skipped.  Every
    listed name loads by that name with :func:`load_dataset`.
    """
    rows, seen = [], set()
    folders = [("bundled", bundled_dir()), ("MAST_DATA_DIR", os.environ.get("MAST_DATA_DIR"))]
    for kind, folder in folders:
        if not folder or not Path(folder).is_dir():
            continue
        for f in sorted(Path(folder).iterdir()):
            name = _stem(f)
            if not f.is_file() or name.endswith(".t") or name in seen or name.startswith("."):
                continue
            if not looks_like_libsvm(f):
                continue
            seen.add(name)
            try:
                rows.append(dict(name=name, **_sizes(name, f, stats), where=f"{kind}: {f}"))
            except MastError as exc:
                rows.append(dict(name=name, n=None, d=None, nnz=None, n_test=None, max_abs=None,
                                 scaled=None, where=f"{kind}: {f} (unreadable: {exc})"))
    home = libsvmdata_home()
    if home.is_dir():
        for f in sorted(home.glob("*_X.np*")):
            name = f.name.split("_X.")[0]
            if name.endswith("_test") or name in seen:
                continue
            seen.add(name)
            rows.append(dict(name=name, n=None, d=None, nnz=None, n_test=None, max_abs=None,
                             scaled=None, where=f"libsvmdata cache: {f}"))
    return rows
