"""Crash-safe storage of finished work units.

A unit's result lives in ``<root>/<key>/`` and appears there only once complete:
it is written into a temporary sibling folder and renamed in one step.  A crash or
Ctrl-C leaves at most a hidden temporary folder (ignored and cleaned later), never a
partial result under a final name.  Two processes that compute the same unit at
the same time both succeed; the second rename finds the folder present and drops
its own copy (identical, since results are deterministic).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["unit_key", "UnitStore", "atomic_write_text", "public_mode"]

RESULT = "result.csv"


def unit_key(spec):
    """Stable 20-hex-digit hash of a JSON-serializable unit description."""
    blob = json.dumps(spec, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def public_mode(path, directory=False):
    """Give a temporary file (0600) or folder (0700) the mode a plain ``open`` / ``mkdir``
    would have given it under the current umask (usually 0644 / 0755)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file in the same folder + rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        public_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class UnitStore:
    """Finished units under ``root``: ``root/<key>/result.csv`` (+ ``spec.json``)."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, key):
        return self.root / key / RESULT

    def has(self, key):
        return self.path(key).is_file()

    def save(self, key, csv_text, spec=None):
        """Publish a unit's CSV atomically (first writer wins; later ones are dropped)."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / key
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=self.root))
        try:
            public_mode(tmp, directory=True)
            atomic_write_text(tmp / RESULT, csv_text)
            if spec is not None:
                atomic_write_text(tmp / "spec.json", json.dumps(spec, indent=1, sort_keys=True,
                                                                default=str))
            try:
                os.rename(tmp, final)
            except OSError:
                if not self.has(key):
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def load_text(self, key):
        return self.path(key).read_text()

    def discard(self, key):
        shutil.rmtree(self.root / key, ignore_errors=True)

    def clean_temporary(self, older_than_s=3600):
        """Remove temporary folders left by interrupted writers (older than an hour, so
        a concurrent writer's folder in progress is left alone)."""
        import time

        if self.root.is_dir():
            for p in self.root.glob(".*.tmp"):
                try:
                    if time.time() - p.stat().st_mtime > older_than_s:
                        shutil.rmtree(p, ignore_errors=True)
                except OSError:
                    pass
