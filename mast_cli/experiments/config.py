"""Experiment configuration: the ``mast run`` config, TOML files, step and sketch tokens.

Shared by every experiment kind (run, prune, delta) and by the CLI: nothing here loads
data or computes anything.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..io.errors import MastError, check

__all__ = ["Config", "RunConfig", "CONFIG_KEYS", "EXPERIMENT_FILE_KEYS", "load_config_file", "parse_step",
           "is_number", "sketch_names"]


class Config:
    """Base of the experiment configs (dataclasses): ``to_dict`` for specs and metadata."""

    def to_dict(self):
        """The fields as a plain dict (JSON-ready, picklable).

        ``device`` appears only when it is not the default ``cpu``, so that the unit keys and
        metadata of CPU runs stay what they were before ``--device`` existed.
        """
        out = dataclasses.asdict(self)
        if out.get("device") == "cpu":
            out.pop("device")
        return out


@dataclass
class RunConfig(Config):
    """One experiment: what ``mast run`` options and TOML files describe.

    List-valued fields are swept (their product gives the trajectories).
    """

    dataset: str = "a1a"
    lam: float = 1e-3
    objective: str = "logreg"
    algorithm: str = "dsgd"
    sketch: str = "bernoulli"
    p: list | None = None
    k: list | None = None
    workers: int | None = None
    sigma: float | None = None
    sparsity: list | None = None
    iters: int = 300
    seeds: int | list = 3
    step: list = field(default_factory=lambda: ["theory"])
    batch_size: list | None = None
    sampling: str = "uniform"
    shift: str = "zero"
    log_every: int | None = None
    record_time: bool = False
    eval_sketches: int = 20
    unit_size: int = 64
    # Algorithm 2 / 3 options (used by those algorithms only)
    split: str = "random"
    sketch_pool: int | None = None
    ref_prob: float | None = None
    ref_batch: int | None = None
    #: where the engine runs: cpu (the NumPy/SciPy reference) or cuda (CuPy; Algorithm 1 (I))
    device: str = "cpu"

    def seed_list(self):
        """The seeds: ``seeds = N`` means 0..N−1, a list is taken as given."""
        if isinstance(self.seeds, (list, tuple)):
            return [int(s) for s in self.seeds]
        return list(range(int(self.seeds)))

    def effective_log_every(self):
        """``log_every``, or ``"geometric"`` (dense early, sparse late) when not set."""
        return self.log_every or "geometric"


CONFIG_KEYS = {f.name for f in dataclasses.fields(RunConfig)}

#: top-level keys of an experiment file of ``experiments/`` (its options are in ``[config]``)
EXPERIMENT_FILE_KEYS = {"kind", "figure", "caption", "metric", "x", "config"}


def load_config_file(path, keys=None, kind="run"):
    """Read a TOML experiment file into a dict of config fields.

    Keys are the option names of the command with ``-`` or ``_`` (``eval-sketches`` or
    ``eval_sketches``), at the top level, in a ``[run]`` table, or in the ``[config]``
    table of an experiment file of ``experiments/`` (whose ``kind`` must then be
    ``kind``; ``figure``, ``caption``, ``metric`` and ``x`` are ignored).  An unknown key or
    malformed TOML is a one-line error.

    Parameters
    ----------
    path : str or Path
    keys : set of str, optional
        Allowed field names (default: those of :class:`RunConfig`).
    kind : str
        The experiment kind of the command reading it (``run``, ``prune``).
    """
    keys = CONFIG_KEYS if keys is None else set(keys)
    path = Path(path)
    if not path.is_file():
        raise MastError(f"config file '{path}' does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MastError(f"config file '{path}' is not valid TOML: {' '.join(str(exc).split())}") from None
    if isinstance(raw.get("config"), dict):       # an experiment file of the suite
        other = raw.get("kind", "run")
        if other != kind:
            # only run and prune experiments have a command of their own (no `mast delta`)
            use = f"`mast {other} --config {path}` or " if other in ("run", "prune") else ""
            raise MastError(f"config file '{path}' is a '{other}' experiment, not '{kind}'; "
                            f"use {use}`mast reproduce --only {path.stem}`")
        extra = set(raw) - EXPERIMENT_FILE_KEYS
        if extra:
            raise MastError(f"config file '{path}': unknown key '{sorted(extra)[0]}'")
        raw = raw["config"]
    if kind in raw and isinstance(raw[kind], dict):
        raw = {**{k: v for k, v in raw.items() if k != kind}, **raw[kind]}
    out = {}
    for key, val in raw.items():
        name = key.replace("-", "_")
        if name not in keys and name != "out":
            hint = (" (threads are not part of a configuration, since they change no result: give "
                    "--threads on the command line)") if name == "threads" else ""
            raise MastError(f"config file '{path}': unknown key '{key}'{hint}")
        out[name] = val
    return out


def parse_step(tok):
    """'theory' -> ('theory', 1.0); '4x' -> ('theory', 4.0); '0.5' -> ('fixed', 0.5)."""
    if isinstance(tok, (int, float)) and not isinstance(tok, bool):
        val, kind = float(tok), "fixed"
    else:
        s = str(tok).strip().lower()
        if s == "theory":
            return ("theory", 1.0)
        kind = "theory" if s.endswith("x") else "fixed"
        try:
            val = float(s[:-1] if kind == "theory" else s)
        except ValueError:
            raise MastError(f"step '{tok}' is not 'theory', a number or a multiple like '4x'") from None
    if not math.isfinite(val) or val <= 0:
        raise MastError(f"step {tok} must be a finite number > 0")
    return (kind, val)


def is_number(v):
    """A real number as a config value (int or float; a TOML ``true`` is not one)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def sketch_names(cfg):
    """The sketch families of a config: ``sketch`` may be one name, a comma list or a list."""
    names = cfg.sketch if isinstance(cfg.sketch, (list, tuple)) else str(cfg.sketch).split(",")
    for n in names:
        check(isinstance(n, str), f"sketch {n!r} must be a name")
    return [n.strip() for n in names if str(n).strip()]
