"""Small on-disk caches of parsed LIBSVM files, under ``$MAST_CACHE_DIR`` (default
``$XDG_CACHE_HOME/mast`` or ``~/.cache/mast``).

* ``datasets.json``: dataset sizes (n, d, nnz, n_test) for ``mast datasets``, keyed by the
  dataset name, the file's absolute path, size and modification time (and those of its test
  split).
* ``parsed/<hash of the path>.npz``: one parsed file (its CSR arrays and raw labels, as
  :func:`mast_cli.io.data._read_svmlight` returns them), one entry per absolute path, valid
  for the SHA-256 of the file's bytes: parsing a9a (bz2, scikit-learn's reader) takes
  ~1.5 s, hashing it and loading the arrays ~20 ms.

An edited or replaced file (even one of the same size and modification time) is parsed again
and its entry replaced; a cache that cannot be read or written is ignored (the file is parsed).  ``MAST_CACHE_DIR=off`` turns both off.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

__all__ = ["cache_path", "cached_stats", "cached_parse", "libsvmdata_home"]

#: bump when the meaning of the cached numbers changes (e.g. width rules)
CACHE_VERSION = 2

#: bump when :func:`mast_cli.io.data._read_svmlight`'s result changes (e.g. its cleaning)
PARSED_VERSION = 1


def _off():
    return os.environ.get("MAST_CACHE_DIR", "").strip().lower() == "off"


def cache_path():
    """Where the sizes cache lives (``$MAST_CACHE_DIR`` first)."""
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


def _key_path(key):
    """The file path of a sizes-cache key, or None for a key this version did not write
    (an older or foreign ``datasets.json``: such entries are dropped, never fatal)."""
    try:
        parts = json.loads(key)
        return parts[2] if isinstance(parts, list) and len(parts) > 2 and isinstance(parts[2], str) else None
    except ValueError:
        return None


def _read():
    if _off():
        return {}
    try:
        data = json.loads(cache_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError, RuntimeError):     # RuntimeError: Path.home() without a home
        return {}


def _write(data):
    if _off():
        return
    try:
        path = cache_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".datasets.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except (OSError, RuntimeError):
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
    here = str(Path(path).resolve())
    data = {k: v for k, v in _read().items() if _key_path(k) not in (None, here)}
    data[key] = value
    _write(data)
    return value


def _digest(path):
    """SHA-256 of a file's bytes (hex), or None when it cannot be read."""
    import hashlib

    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def cached_parse(path, parse):
    """``parse(path)`` = (X, y) of one LIBSVM file, cached for the file's bytes.

    One entry per file path (``parsed/<hash of the path>.npz``, replaced when the file
    changes, so the cache does not grow with edits), valid for the SHA-256 of the file's
    bytes: a file replaced by another of the same size and modification time (``cp -p``,
    ``rsync -t``, archives) is parsed again.  Hashing costs ~1 ms per MB, parsing ~1 s.
    An entry that cannot be read (truncated, empty, not an archive) is ignored.

    Parameters
    ----------
    path : path
        The LIBSVM file (plain or ``.bz2``).
    parse : callable path -> (scipy.sparse.csr_matrix of shape (n, d), ndarray of shape (n,))
        The parser; its exceptions propagate and nothing is cached for them.

    Returns
    -------
    (csr_matrix of shape (n, d), ndarray of shape (n,))
        Equal, array for array, to what ``parse`` returns.
    """
    import hashlib

    import numpy as np

    if _off():
        return parse(path)
    digest = _digest(path)
    if digest is None:
        return parse(path)
    where = str(Path(path).resolve())
    key = json.dumps([PARSED_VERSION, where, digest])
    name = hashlib.sha256(json.dumps([PARSED_VERSION, where]).encode()).hexdigest()[:32]
    try:
        file = cache_path().parent / "parsed" / (name + ".npz")
    except RuntimeError:                     # Path.home() without a home directory: no cache
        return parse(path)
    try:
        with open(file, "rb") as fh, np.load(fh, allow_pickle=False) as z:   # fh: closed on a bad zip
            if str(z["key"]) == key:
                import scipy.sparse as sp

                X = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
                return X, z["y"]
    except Exception:        # missing, truncated, empty or foreign: any unreadable entry is a miss
        pass
    X, y = parse(path)
    tmp = None
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".parsed.", suffix=".npz", dir=file.parent)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, key=np.array(key), data=X.data, indices=X.indices, indptr=X.indptr,
                     shape=np.array(X.shape, dtype=np.int64), y=y)
        os.replace(tmp, file)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:                  # a failed write (disk full) leaves no temporary file
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return X, y
