"""A small on-disk cache of dataset sizes (n, d, nnz, n_test) for ``mast datasets``.

Parsing every LIBSVM file to list its sizes takes seconds; the sizes are cached per file in
``$MAST_CACHE_DIR/datasets.json`` (default ``$XDG_CACHE_HOME/mast`` or ``~/.cache/mast``),
keyed by the dataset name, the file's absolute path, size and modification time (and those of
its test split), so an edited or replaced file is parsed again.  A cache that cannot be read
or written is ignored.  Standard library only.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

__all__ = ["cache_path", "cached_stats", "libsvmdata_home"]

#: bump when the meaning of the cached numbers changes (e.g. width rules)
CACHE_VERSION = 2


def cache_path():
    """Where the cache lives (``$MAST_CACHE_DIR`` first)."""
    root = os.environ.get("MAST_CACHE_DIR")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mast"
    return Path(root) / "datasets.json"


def libsvmdata_home():
    """libsvmdata's data folder, computed as libsvmdata does (its import loads scikit-learn)."""
    home = os.environ.get("LIBSVMDATA_HOME") or os.environ.get("XDG_DATA_HOME")
    return (Path(home) if home else Path.home() / "data") / "libsvm"


def _stamp(path):
    if path is None:
        return None
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _key(name, path, test_path):
    return json.dumps([CACHE_VERSION, str(name), str(Path(path).resolve()), _stamp(path),
                       _stamp(test_path)])


def _read():
    try:
        data = json.loads(cache_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(data):
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".datasets.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except OSError:
        pass


def cached_stats(name, path, test_path, compute):
    """``compute()`` (a dict of plain numbers), cached for this file's size and mtime.

    Parameters
    ----------
    name : str
        The dataset name the numbers belong to.
    path, test_path : path or None
        The training file and its test split (None when there is none).
    compute : callable () -> dict
        Loads the dataset and returns ``{n, d, nnz, n_test}``; its exceptions propagate
        (nothing is cached for them).
    """
    key = _key(name, path, test_path)
    data = _read()
    hit = data.get(key)
    if isinstance(hit, dict):
        return hit
    value = compute()
    data = {k: v for k, v in _read().items() if json.loads(k)[2] != str(Path(path).resolve())}
    data[key] = value
    _write(data)
    return value
