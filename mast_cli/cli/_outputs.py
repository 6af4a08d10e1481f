"""Where a command writes: default results folders named by a config hash, and the refusal
to mix results of two configurations in one folder.

Standard library only (imported before any heavy module).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

from ..io.errors import MastError

__all__ = ["config_digest", "default_out", "check_claim"]

#: config keys that do not change any result (left out of the hash and the comparison)
NEUTRAL_KEYS = {"unit_size"}


def _plain(config):
    """``config`` as plain JSON values without the result-neutral keys."""
    conf = {k: v for k, v in dict(config).items() if k not in NEUTRAL_KEYS}
    return json.loads(json.dumps(conf, sort_keys=True, default=str))


def config_digest(config):
    """Eight hex digits of SHA-256 over the configuration (result-neutral keys left out)."""
    blob = json.dumps(_normalize(_plain(config)), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:8]


def _normalize(v):
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return float(v) if math.isfinite(v) else str(v)
    if isinstance(v, list):
        return [_normalize(x) for x in v]
    if isinstance(v, dict):
        return {k: _normalize(x) for k, x in v.items()}
    return str(v)


def _slug(dataset):
    stem = Path(str(dataset)).name
    for suffix in (".bz2", ".txt", ".svm", ".libsvm"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    return re.sub(r"[^A-Za-z0-9._+-]", "_", stem) or "data"


def default_out(command, dataset, config, root="results"):
    """``results/<command>-<dataset>-<hash8>``: a folder of its own for every configuration."""
    return str(Path(root) / f"{command}-{_slug(dataset)}-{config_digest(config)}")


def _stored_config(out):
    """The configuration whose results ``out`` holds (None when it holds none)."""
    out = Path(out)
    for name in ("metadata.json", "verify.json"):
        f = out / name
        if f.is_file():
            try:
                conf = json.loads(f.read_text()).get("config")
            except (OSError, ValueError, AttributeError):
                conf = None
            if isinstance(conf, dict):
                return conf
    parts = out / ".parts"
    if parts.is_dir():                       # an interrupted run: its units say what it was
        for spec in sorted(parts.glob("*/spec.json")):
            try:
                conf = json.loads(spec.read_text()).get("config")
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(conf, dict):
                return conf
    return None


def _show(v):
    s = json.dumps(v)
    return s if len(s) <= 40 else s[:37] + "..."


def check_claim(out, config, force=False):
    """Refuse to write results of ``config`` into a folder that holds another configuration's.

    Raises
    ------
    MastError
        When ``out`` holds results (metadata.json / verify.json / unit parts) of a
        configuration that differs in a result-changing key, unless ``force``.
    """
    if force:
        return
    stored = _stored_config(out)
    if stored is None:
        return
    raw_there, raw_here = _plain(stored), _plain(config)
    there, here = _normalize(raw_there), _normalize(raw_here)
    keys = sorted(k for k in set(there) | set(here) if there.get(k) != here.get(k))
    if not keys:
        return
    diff = ", ".join(f"{k} {_show(raw_there.get(k))} there, {_show(raw_here.get(k))} here" for k in keys[:3])
    more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
    raise MastError(f"output folder '{out}' holds results of another configuration ({diff}{more}); "
                    "choose another --out, leave --out out for a new folder, or pass --force to replace them")
