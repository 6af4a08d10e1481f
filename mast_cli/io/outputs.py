"""Result files: CSV float format, JSON encoding, provenance and output folders.

Every CSV mast writes uses :data:`CSV_FLOAT_FORMAT` (so that reruns are byte-identical),
every ``metadata.json`` is encoded with :func:`json_default` and carries
:func:`provenance`.  Output folders are checked (:func:`check_out_path`) before any work
and created (:func:`prepare_out_dir`) before the first file is written.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .errors import MastError

__all__ = ["CSV_FLOAT_FORMAT", "json_default", "NullProgress", "read_results_csv", "check_out_path",
           "prepare_out_dir", "provenance", "mast_loss_key"]

#: Floats in every CSV are written with this format (deterministic bytes).
CSV_FLOAT_FORMAT = "%.17g"


def json_default(o):
    """JSON encoding of the values json cannot write (``json.dumps(..., default=json_default)``).

    NumPy scalars become Python numbers, arrays lists, non-finite floats ``null``, and
    anything else its ``str``.

    Parameters
    ----------
    o : object
        A value ``json`` cannot encode.

    Returns
    -------
    object
        A value it can.
    """
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return str(o)


class NullProgress:
    """A progress bar that shows nothing (context manager with ``update(n)``)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        """Ignore ``n`` units of progress.

        Parameters
        ----------
        n : int
            Units done since the last call.
        """


def read_results_csv(text_or_path):
    """Read a results CSV written by mast (``nan`` stays NaN, strings stay strings).

    Parameters
    ----------
    text_or_path : str or path
        The CSV text (it contains a newline) or the path of a CSV file.

    Returns
    -------
    pandas.DataFrame
        The table, one row per CSV row.
    """
    import io

    import pandas as pd

    src = io.StringIO(text_or_path) if isinstance(text_or_path, str) and "\n" in text_or_path \
        else text_or_path
    return pd.read_csv(src, keep_default_na=False, na_values=["nan", "NaN"])


def check_out_path(out):
    """Refuse an output folder that could not be created or written, without creating it.

    An empty path, an existing non-folder, or a missing folder whose nearest existing
    parent is not writable is a one-line error; nothing is written.

    Parameters
    ----------
    out : str or path
        The output folder.

    Returns
    -------
    pathlib.Path
        ``out`` as a path.

    Raises
    ------
    MastError
        When the folder could not be created or written.
    """
    if str(out).strip() == "":
        raise MastError("output path '' is empty; name a folder")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MastError(f"output path '{out}' exists and is not a directory")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise MastError(f"output path '{out}': '{parent}' is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise MastError(f"cannot write to output folder '{out}': '{parent}' is not writable")
    return out


#: Output folders prepared by this process: (folder, topmost folder it created or None).
_PREPARED = []


def _has_finished_work(folder):
    """Whether ``folder`` holds a finished file: any file outside hidden entries (``.parts``,
    the unit store, counts as visible; ``.x.tmp`` temporaries and probes do not)."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder).parts
        if any(part.startswith(".") and part != ".parts" for part in rel):
            continue
        if any(not f.startswith(".") for f in files):
            return True
    return False


def discard_unfinished_outputs():
    """Remove the output folders this process created that hold no finished work.

    Called after an error or Ctrl-C, so that a failed command leaves nothing behind.

    Returns
    -------
    list of Path
        The prepared folders that do hold finished work (a rerun resumes from them).
    """
    import shutil

    kept = []
    while _PREPARED:
        out, created = _PREPARED.pop()
        if _has_finished_work(out):
            kept.append(out)
        elif created is not None and created.is_dir():
            shutil.rmtree(created, ignore_errors=True)
    return kept


def prepare_out_dir(out):
    """Create the output folder (or check it is writable) with a one-line error.

    The folder is remembered: :func:`discard_unfinished_outputs` removes it again (and
    the parents it created) when the command fails before finishing any work.

    Parameters
    ----------
    out : str or path
        The output folder (created with its parents).

    Returns
    -------
    pathlib.Path
        The folder, which exists and is writable.

    Raises
    ------
    MastError
        When it cannot be created or written.
    """
    out = check_out_path(out)
    created = None
    top = Path(os.path.abspath(out))
    while not top.exists():
        created, top = top, top.parent
    _PREPARED.append((out, created))
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out, prefix=".probe", delete=True)
        probe.close()
    except OSError as exc:
        raise MastError(f"cannot write to output folder '{out}': {exc.strerror or exc}") from None
    return out


def _git_info():
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "mast_cli"],
                                    capture_output=True, text=True, timeout=5).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, dirty if commit else None


def provenance():
    """Package versions, git commit and platform (written to metadata.json).

    Returns
    -------
    dict
        ``versions`` (package -> version), ``git_commit``, ``git_dirty``, ``platform``.
    """
    from importlib.metadata import PackageNotFoundError, version

    import pandas
    import scipy
    import sklearn

    from .. import __version__

    try:
        click_version = version("click")
    except PackageNotFoundError:  # pragma: no cover
        click_version = None

    commit, dirty = _git_info()
    return {
        "versions": {"mast": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
                     "sklearn": sklearn.__version__, "pandas": pandas.__version__,
                     "click": click_version, "python": platform.python_version()},
        "git_commit": commit, "git_dirty": dirty, "platform": platform.platform(),
    }


def mast_loss_key(sketch, sparsity):
    """Key of a run's ``mast_loss_inf`` mapping in metadata.json.

    Parameters
    ----------
    sketch : str
        The sketch family.
    sparsity : float
        The level's sparsity (rounded to 10 digits).

    Returns
    -------
    str
        ``'<sketch>|<sparsity>'``.
    """
    return f"{sketch}|{round(float(sparsity), 10)!r}"
