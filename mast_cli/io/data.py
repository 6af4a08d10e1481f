"""LIBSVM data: resolution of dataset names, loading, label mapping, splits.

A dataset argument is either a path to a LIBSVM/svmlight file (plain or ``.bz2``)
or a LIBSVM name.  A name resolves, in order, to

1. the files bundled in the repository's ``datasets/`` folder,
2. ``$MAST_DATA_DIR/<name>`` (plain or ``.bz2``),
3. libsvmdata's cache (``$LIBSVMDATA_HOME``, default ``~/data/libsvm``), downloading
   with :func:`libsvmdata.fetch_dataset` when the cache is empty (skipped when
   ``MAST_OFFLINE=1``).

A test split is ``<name>.t`` next to the training file (libsvmdata: ``<name>_test``).
Features are kept as CSR float64 matrices whose widths agree between the splits
(published LIBSVM widths where known, else the larger of the two files); any
two-valued label set is mapped to ``{-1, +1}`` (smaller label -> -1).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .errors import MastError
from . import listing
from .listing import NOT_DATA_SUFFIXES, _stem, _test_path, bundled_dir, looks_like_libsvm  # noqa: F401

__all__ = [
    "Dataset",
    "load_dataset",
    "load_libsvm_file",
    "list_datasets",
    "bundled_dir",
    "published_width",
    "validation_split",
]

#: LIBSVM widths published on the datasets page; files may parse narrower.
PUBLISHED_WIDTHS = {
    "mushrooms": 112,
    "breast-cancer": 10,
    "australian": 14,
    "australian_scale": 14,
    "german.numer": 24,
    "german.numer_scale": 24,
    "ionosphere_scale": 34,
    "sonar_scale": 60,
    "svmguide1": 4,
    "diabetes": 8,
    "diabetes_scale": 8,
    "heart": 13,
    "heart_scale": 13,
}


def published_width(name):
    """Published number of features of a LIBSVM dataset, or ``None`` if unknown.

    The a-series (a1a..a9a) has 123 features and the w-series (w1a..w8a) 300,
    although some of their files have a largest index below that.
    """
    base = name[:-2] if name.endswith(".t") else name
    if re.fullmatch(r"a[1-9]a", base):
        return 123
    if re.fullmatch(r"w[1-8]a", base):
        return 300
    return PUBLISHED_WIDTHS.get(base)


@dataclass
class Dataset:
    """A binary classification dataset with labels in ``{-1, +1}``.

    Attributes
    ----------
    name : str
        Name (file stem for paths).
    X : scipy.sparse.csr_matrix of shape (n, d)
        Training features, float64.
    y : ndarray of shape (n,)
        Training labels in {-1, +1}.
    X_test, y_test : csr_matrix, ndarray or None
        Test split when one was found.
    source : str
        Where the training data came from (path or ``libsvmdata:<name>``).
    sha256 : str
        SHA-256 of the training file's bytes as stored (or of the cached arrays).
    label_map : dict
        Original label -> ±1.
    scale : str or None
        ``"maxabs"`` when the columns were scaled by :func:`scale_maxabs`.
    """

    name: str
    X: sp.csr_matrix
    y: np.ndarray
    X_test: sp.csr_matrix | None = None
    y_test: np.ndarray | None = None
    source: str = ""
    test_source: str | None = None
    sha256: str = ""
    label_map: dict = field(default_factory=dict)
    scale: str | None = None

    @property
    def n(self):
        return self.X.shape[0]

    @property
    def d(self):
        return self.X.shape[1]

    @property
    def nnz(self):
        return self.X.nnz

    def summary(self):
        """Plain dict with the provenance fields written to metadata files."""
        out = {
            "name": self.name,
            "source": self.source,
            "sha256": self.sha256,
            "n": int(self.n),
            "d": int(self.d),
            "nnz": int(self.nnz),
            "label_map": {str(k): int(v) for k, v in self.label_map.items()},
        }
        if self.X_test is not None:
            out.update(test_source=self.test_source, n_test=int(self.X_test.shape[0]))
        if self.scale:
            out["scale"] = self.scale
        return out


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


def _read_svmlight(path):
    """Parse one LIBSVM file (1-based indices) into (CSR, raw labels); parsed files are cached
    on disk (:func:`mast_cli.io.datacache.cached_parse`)."""
    from .datacache import cached_parse

    path = Path(path)
    if not path.exists():
        raise MastError(f"dataset file '{path}' does not exist")
    if path.is_dir():
        raise MastError(f"dataset path '{path}' is a directory, not a LIBSVM file")
    return cached_parse(path, _parse_svmlight)


def _parse_svmlight(path):
    """:func:`_read_svmlight` without the cache (scikit-learn's reader, then the checks)."""
    from sklearn.datasets import load_svmlight_file

    try:
        X, y = load_svmlight_file(str(path), zero_based=False, dtype=np.float64)
    except (ValueError, OSError, EOFError, UnicodeDecodeError, OverflowError) as exc:
        raise MastError(f"cannot read LIBSVM file '{path}': {_one_line(exc)}") from None
    if X.shape[0] == 0:
        raise MastError(f"LIBSVM file '{path}' has no samples")
    if not np.all(np.isfinite(X.data)):
        raise MastError(f"LIBSVM file '{path}' has non-finite feature values (NaN or inf)")
    if not np.all(np.isfinite(y)):
        raise MastError(f"LIBSVM file '{path}' has non-finite labels")
    X = sp.csr_matrix(X)
    X.sum_duplicates()
    X.eliminate_zeros()          # explicitly stored zeros: not features, and free products
    return X, np.asarray(y, dtype=np.float64)


def _label_map(y, where):
    labels = np.unique(y)
    if labels.size == 1:
        raise MastError(
            f"{where} has a single class (label {labels[0]:g}); binary classification needs two"
        )
    if labels.size > 2:
        shown = ", ".join(f"{v:g}" for v in labels[:6])
        raise MastError(
            f"{where} has {labels.size} classes ({shown}{', ...' if labels.size > 6 else ''}); "
            "only two-class datasets are supported"
        )
    return {float(labels[0]): -1.0, float(labels[1]): 1.0}


def _apply_map(y, mapping, where):
    out = np.empty_like(y)
    known = np.zeros(y.shape, bool)
    for raw, pm in mapping.items():
        sel = y == raw
        out[sel] = pm
        known |= sel
    if not known.all():
        bad = np.unique(y[~known])[0]
        raise MastError(f"{where} has label {bad:g} that the training split does not have")
    return out


def _check_features(X, where):
    """Refuse a training matrix without a single nonzero feature value (labels only)."""
    if X.nnz == 0:
        raise MastError(f"{where} has labels but no nonzero feature values (n={X.shape[0]}, d={X.shape[1]})")


def _check_width_memory(width, where):
    """Every command keeps a few dense d-vectors per model (iterates, gradients, Newton
    directions): refuse a width (e.g. a LIBSVM index of 10⁹) whose vectors cannot fit, before
    any of them exists (issue 16 #3)."""
    from .memory import check_memory

    check_memory([(f"16 dense vectors of d = {width} features (iterates, gradients, directions)",
                   128.0 * width)], f"{where} with d = {width} features")


def _check_magnitude(X, where):
    """Refuse feature values whose squares overflow float64 (every curvature bound would be inf)."""
    if X.nnz == 0:
        return
    big = float(np.max(np.abs(X.data)))
    with np.errstate(over="ignore"):
        sq = np.asarray(X.multiply(X).sum(axis=1)).ravel()
    if big > 1e150 or not np.all(np.isfinite(sq)) or not np.isfinite(sq.sum()):
        raise MastError(f"{where} has a feature value of magnitude {big:.3g}, whose square overflows "
                        "float64 (every smoothness constant would be inf); rescale the data, "
                        "e.g. with --scale maxabs")


def _with_width(X, width, where, origin="the widest of the training and test files"):
    if X.shape[1] > width:
        raise MastError(f"{where} has {X.shape[1]} features, more than the {width} expected ({origin})")
    X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], width))
    X.sort_indices()
    return X


def load_libsvm_file(path, test_path=None, name=None, find_test=True, width=None, width_origin=None):
    """Load a LIBSVM file (and its test split) into a :class:`Dataset`.

    Parameters
    ----------
    path : str or Path
        Training file, plain text or ``.bz2``.
    test_path : str or Path, optional
        Test file.  When omitted and ``find_test`` is true, ``<path>.t`` is used if present.
    name : str, optional
        Dataset name; defaults to the file name without ``.bz2``.
    find_test : bool, default=True
        Look for the ``.t`` companion file.
    width : int, optional
        Number of features d (columns beyond the largest index are zero).  Default: the
        widest of the two files.  A file passed by path keeps its own width; published
        LIBSVM widths are applied only to datasets resolved by name (:func:`load_dataset`).
    width_origin : str, optional
        Where ``width`` comes from, for error messages.

    Returns
    -------
    Dataset

    Raises
    ------
    MastError
        Unreadable file, no samples, no nonzero feature, non-finite or overflowing values,
        wrong number of classes, or more features than ``width``.
    """
    path = Path(path)
    name = name or _stem(path)
    X, y = _read_svmlight(path)
    if test_path is None and find_test:
        test_path = _test_path(path)
    Xt = yt = None
    if test_path is not None:
        Xt, yt = _read_svmlight(test_path)
    _check_features(X, f"dataset '{path}'")
    _check_magnitude(X, f"dataset '{path}'")
    if Xt is not None:
        _check_magnitude(Xt, f"test file '{test_path}'")
    if width is None:
        width = max(X.shape[1], Xt.shape[1] if Xt is not None else 0)
        width_origin = "the widest of the training and test files"
    else:
        width = int(width)
        if width < 1:
            raise MastError(f"number of features {width} must be >= 1")
        width_origin = width_origin or "the requested width"
    _check_width_memory(width, f"dataset '{path}'")
    mapping = _label_map(y, f"dataset '{path}'")
    X = _with_width(X, width, f"dataset '{path}'", width_origin)
    y = _apply_map(y, mapping, f"dataset '{path}'")
    if Xt is not None:
        Xt = _with_width(Xt, width, f"test file '{test_path}'", width_origin)
        yt = _apply_map(yt, mapping, f"test file '{test_path}'")
    return Dataset(
        name=name, X=X, y=y, X_test=Xt, y_test=yt, source=str(path),
        test_source=str(test_path) if test_path is not None else None,
        sha256=_sha256(path), label_map=mapping,
    )


def _find_in(folder, name):
    if folder is None:
        return None
    for cand in (Path(folder) / f"{name}.bz2", Path(folder) / name):
        if cand.is_file():
            return cand
    return None


def _libsvmdata_home():
    from .datacache import libsvmdata_home      # as libsvmdata computes it, without its import

    return libsvmdata_home()


def _libsvmdata_cached(name):
    home = _libsvmdata_home()
    return home.is_dir() and any(home.glob(f"{name}_X.np*")) and any(home.glob(f"{name}_y.np*"))


def _load_libsvmdata(name):
    """Load ``name`` (and ``name_test``) through libsvmdata's cache, downloading if allowed."""
    import libsvmdata

    if name not in libsvmdata.supported:
        return None
    offline = os.environ.get("MAST_OFFLINE", "") not in ("", "0")
    if not _libsvmdata_cached(name) and offline:
        return None
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)
    try:
        X, y = libsvmdata.fetch_dataset(name)
        test = None
        if f"{name}_test" in libsvmdata.supported:
            test = libsvmdata.fetch_dataset(f"{name}_test")
    except Exception as exc:  # network errors come in many types
        raise MastError(
            f"dataset '{name}' is not bundled, not in $MAST_DATA_DIR, not in the libsvmdata cache "
            f"({_libsvmdata_home()}), and the download failed ({_one_line(exc)[:120]}); "
            f"put the LIBSVM file at $MAST_DATA_DIR/{name}.bz2 or pass its path"
        ) from None
    finally:
        socket.setdefaulttimeout(old)
    X = sp.csr_matrix(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    Xt = yt = None
    if test is not None:
        Xt = sp.csr_matrix(test[0], dtype=np.float64)
        yt = np.asarray(test[1], dtype=np.float64).ravel()
    X.eliminate_zeros()
    if Xt is not None:
        Xt.eliminate_zeros()
    _check_features(X, f"dataset '{name}'")
    _check_magnitude(X, f"dataset '{name}'")
    pub = published_width(name)
    width = pub or max(X.shape[1], Xt.shape[1] if Xt is not None else 0)
    origin = (f"the published LIBSVM width of '{name}'" if pub
              else "the widest of the training and test files")
    _check_width_memory(width, f"dataset '{name}'")
    mapping = _label_map(y, f"dataset '{name}'")
    h = hashlib.sha256(X.data.tobytes() + X.indices.tobytes() + y.tobytes()).hexdigest()
    return Dataset(
        name=name,
        X=_with_width(X, width, name, origin),
        y=_apply_map(y, mapping, name),
        X_test=None if Xt is None else _with_width(Xt, width, f"{name}_test", origin),
        y_test=None if yt is None else _apply_map(yt, mapping, f"{name}_test"),
        source=f"libsvmdata:{name}",
        test_source=None if Xt is None else f"libsvmdata:{name}_test",
        sha256=h,
        label_map=mapping,
    )


def _looks_like_path(arg):
    return os.sep in arg or "/" in arg or arg.endswith((".bz2", ".svm", ".txt", ".libsvm"))


def _has_dir(arg):
    return os.sep in arg or "/" in arg or arg.startswith("~")


def resolve(arg):
    """Where ``arg`` resolves: ``(kind, path_or_name)`` or ``None`` if nowhere.

    ``kind`` is one of ``file``, ``bundled``, ``MAST_DATA_DIR``, ``libsvmdata``.
    """
    p = Path(arg).expanduser()
    if p.exists() or _has_dir(arg):
        return ("file", p)
    hit = _find_in(bundled_dir(), arg)
    if hit:
        return ("bundled", hit)
    hit = _find_in(os.environ.get("MAST_DATA_DIR"), arg)
    if hit:
        return ("MAST_DATA_DIR", hit)
    if _looks_like_path(arg):        # foo.svm that is nowhere: report it as a missing file
        return ("file", p)
    import libsvmdata

    if arg in libsvmdata.supported:
        return ("libsvmdata", arg)
    return None


@functools.lru_cache(maxsize=16)
def _load_cached(arg, mtime, width=None):
    where = resolve(arg)
    if where is None:
        env = os.environ.get("MAST_DATA_DIR")
        raise MastError(
            f"unknown dataset '{arg}': not a file, not in {bundled_dir()}, "
            f"not in $MAST_DATA_DIR ({env or 'unset'}) and not a libsvmdata name; "
            "pass a LIBSVM file path or set MAST_DATA_DIR"
        )
    kind, target = where
    if kind == "libsvmdata":
        ds = _load_libsvmdata(target)
        if ds is None:
            raise MastError(
                f"dataset '{arg}' is not bundled, not in $MAST_DATA_DIR "
                f"({os.environ.get('MAST_DATA_DIR') or 'unset'}) and not in the libsvmdata cache "
                f"({_libsvmdata_home()}); downloads are off (MAST_OFFLINE=1): "
                f"put the LIBSVM file at $MAST_DATA_DIR/{arg}.bz2 or pass its path"
            )
        return ds
    if width is not None:
        origin = f"--n-features {width}"
        if kind == "file":
            return load_libsvm_file(target, width=width, width_origin=origin)
        return load_libsvm_file(target, name=arg, width=width, width_origin=origin)
    if kind == "file":
        return load_libsvm_file(target)
    pub = published_width(arg)
    return load_libsvm_file(target, name=arg, width=pub,
                            width_origin=f"the published LIBSVM width of '{arg}'" if pub else None)


#: Suffix of a dataset argument that asks for max-abs scaling (``--scale maxabs``).
SCALE_SUFFIX = "+maxabs"


def scale_maxabs(ds):
    """Scale every feature column to max |value| = 1 on the training split (sklearn
    MaxAbsScaler on the sparse matrix: no centring, sparsity kept); the test split gets the
    training statistics.  Columns that are zero in training are left unscaled."""
    from sklearn.preprocessing import MaxAbsScaler

    sc = MaxAbsScaler().fit(ds.X)
    X = sp.csr_matrix(sc.transform(ds.X))
    Xt = None if ds.X_test is None else sp.csr_matrix(sc.transform(ds.X_test))
    return Dataset(name=ds.name + SCALE_SUFFIX, X=X, y=ds.y, X_test=Xt, y_test=ds.y_test,
                   source=ds.source, test_source=ds.test_source, sha256=ds.sha256,
                   label_map=ds.label_map, scale="maxabs")


def max_abs(ds):
    """Largest |feature value| of the training split (0 for an empty matrix)."""
    return float(np.max(np.abs(ds.X.data))) if ds.X.nnz else 0.0


def load_dataset(arg):
    """Load a dataset by LIBSVM name or file path (see the module docstring).

    Parameters
    ----------
    arg : str
        A LIBSVM name (``a9a``) or a file path (``data/foo.bz2``); the suffix ``+d=N``
        (what ``--n-features N`` appends) sets the number of features, and ``+maxabs``
        (``--scale maxabs``) scales the columns by :func:`scale_maxabs`.

    Returns
    -------
    Dataset
        Arrays are shared between calls with the same argument; do not modify them.

    Raises
    ------
    MastError
        When the name resolves nowhere or the file is unreadable/invalid.
    """
    arg = str(arg)
    p = Path(arg).expanduser()
    if arg.endswith(SCALE_SUFFIX) and not p.exists() and len(arg) > len(SCALE_SUFFIX):
        return scale_maxabs(load_dataset(arg[:-len(SCALE_SUFFIX)]))
    width = None
    m = re.fullmatch(r"(.+)\+d=(\d+)", arg)
    if m and not p.exists():                       # --n-features N
        arg, width = m.group(1), int(m.group(2))
        p = Path(arg).expanduser()
    mtime = p.stat().st_mtime if p.is_file() else None
    return _load_cached(arg, mtime, width)


def dataset_stats(name):
    """Sizes of a dataset for ``mast datasets``: dict ``n, d, nnz, n_test, max_abs, scaled``."""
    ds = load_dataset(name)
    big = float(max_abs(ds))
    return dict(n=int(ds.n), d=int(ds.d), nnz=int(ds.nnz),
                n_test=None if ds.X_test is None else int(ds.X_test.shape[0]),
                max_abs=big, scaled=bool(big <= 1.0))


def list_datasets():
    """Bundled, ``$MAST_DATA_DIR`` and libsvmdata-cached datasets with their sizes (list of dicts;
    see :func:`mast_cli.io.listing.list_datasets`)."""
    return listing.list_datasets(dataset_stats)


def validation_split(X, y, fraction, rng):
    """Split rows into (train, validation) with a seeded permutation.

    Parameters
    ----------
    X : csr_matrix of shape (n, d)
    y : ndarray of shape (n,)
    fraction : float in [0, 1)
        Share of rows put in the validation split.
    rng : numpy.random.Generator

    Returns
    -------
    (X_train, y_train, X_val, y_val)
    """
    if not 0 <= fraction < 1:
        raise MastError(f"validation fraction {fraction} must be in [0, 1)")
    n = X.shape[0]
    perm = rng.permutation(n)
    n_val = int(round(fraction * n))
    val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    if len(tr) < 2:
        raise MastError(f"validation fraction {fraction} leaves {len(tr)} training rows of {n}")
    return X[tr], y[tr], X[val], y[val]
