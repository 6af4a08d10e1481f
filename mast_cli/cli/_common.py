"""Shared pieces of the command line: the error-reporting group, option types and decorators.

Imports only click and the standard library, so that ``mast --help`` and option errors
stay fast; every command imports the library modules it needs inside its body.
"""

from __future__ import annotations

import os
import sys

import click

from ..io.errors import MastError
from ..io.memory import usable_cpus

__all__ = ["MastGroup", "FLOATS", "INTS", "dataset_option", "lam_option", "objective_option",
           "sketch_options", "device_option", "check_lam", "one_value", "explicit", "progress_factory",
           "build_config", "int_list", "precheck_dataset", "check_run_options", "LineProgress"]


class _Interrupted(Exception):
    """Ctrl-C inside a command (re-raised so click does not print its own newline)."""


def _discard_unfinished():
    """Remove output folders this command created but finished nothing in (issue 16 #9)."""
    mod = sys.modules.get("mast_cli.io.outputs")      # only if a command prepared one
    if mod is None:
        return []
    try:
        return mod.discard_unfinished_outputs()
    except OSError:
        return []


class MastGroup(click.Group):
    """Click group that reports every error as one line, never a traceback."""

    def invoke(self, ctx):
        try:
            # the remaining arguments (click < 8.2 keeps the command name in protected_args)
            pending = ctx.__dict__.get("_protected_args", ctx.__dict__.get("protected_args", []))
            if not {"-h", "--help"} & {*pending, *ctx.args}:    # help answers whatever the environment
                check_environment()
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise _Interrupted() from None

    def main(self, args=None, prog_name=None, **extra):
        extra.pop("standalone_mode", None)
        try:
            rv = super().main(args=args, prog_name=prog_name, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.NoArgsIsHelpError as exc:   # bare `mast`: help, exit 0
            click.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
            sys.exit(0)
        except (click.exceptions.Abort, KeyboardInterrupt, _Interrupted):
            kept = _discard_unfinished()
            if kept:
                click.echo(f"Error: interrupted; finished work was kept in {kept[0]}, "
                           "rerun the same command to resume", err=True)
            else:
                click.echo("Error: interrupted; nothing was written", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            _discard_unfinished()
            msg = " ".join(exc.format_message().split())
            click.echo(f"Error: {msg}", err=True)
            sys.exit(exc.exit_code)
        except MastError as exc:
            _discard_unfinished()
            click.echo(f"Error: {' '.join(str(exc).split())}", err=True)
            sys.exit(exc.exit_code)
        except OSError as exc:
            _discard_unfinished()
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            click.echo(f"Error: {exc.strerror or exc}{where}", err=True)
            sys.exit(2)
        except Exception as exc:  # a bug: one line, the traceback on request
            _discard_unfinished()
            if os.environ.get("MAST_DEBUG"):
                raise
            msg = " ".join(str(exc).split())[:300]
            click.echo(f"Error: internal error {type(exc).__name__}: {msg} "
                       "(rerun with MAST_DEBUG=1 for the traceback)", err=True)
            sys.exit(1)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
        sys.exit(0)


class FloatList(click.ParamType):
    """A comma-separated list of floats (``0.1,0.5,0.9``)."""

    name = "FLOATS"

    def _one(self, tok, param, ctx):
        try:
            return float(tok)
        except ValueError:
            self.fail(f"'{tok}' is not a number", param, ctx)

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple)):
            return [self._one(v, param, ctx) for v in value]
        if isinstance(value, (int, float)):
            return [self._one(value, param, ctx)]
        out = [self._one(tok.strip(), param, ctx) for tok in str(value).split(",")]
        if not out:
            self.fail("empty list", param, ctx)
        return out


class IntList(FloatList):
    """A comma-separated list of integers (``3,7``); ``3.0`` is accepted, ``3.5`` refused."""

    name = "INTS"

    def _one(self, tok, param, ctx):
        val = super()._one(tok, param, ctx)
        if not float(val).is_integer():
            self.fail(f"'{tok}' is not an integer", param, ctx)
        return int(val)


FLOATS = FloatList()
INTS = IntList()


def _scaled_name(ctx):
    """Append the --n-features / --scale suffixes (``+d=N``, ``+maxabs``) to the dataset
    argument, whichever option click processed first (see mast_cli.io.data.load_dataset)."""
    if "mast_dataset" not in ctx.meta:
        return
    name = ctx.meta["mast_dataset"]
    width, scale = ctx.meta.get("mast_width"), ctx.meta.get("mast_scale")
    ctx.params["dataset"] = (name + (f"+d={width}" if width is not None else "")
                             + (f"+{scale}" if scale else "")) if name is not None else None


def _dataset_cb(ctx, param, value):
    ctx.meta["mast_dataset"] = value
    _scaled_name(ctx)
    return ctx.params["dataset"]


def _width_cb(ctx, param, value):
    if value is not None:
        if value < 1:
            raise MastError(f"--n-features {value} must be >= 1")
        ctx.meta["mast_width"] = int(value)
        _scaled_name(ctx)


def _scale_cb(ctx, param, value):
    if value not in (None, "none"):
        ctx.meta["mast_scale"] = value
        _scaled_name(ctx)


def dataset_option(f):
    f = click.option("--n-features", type=int, default=None, expose_value=False, callback=_width_cb,
                     help="Number of features d of a LIBSVM file (default: its largest index; "
                          "published widths are used for datasets given by name).")(f)
    f = click.option("--scale", type=click.Choice(["none", "maxabs"]), default=None, expose_value=False,
                     callback=_scale_cb,
                     help="maxabs: scale each feature to max |x| = 1 (training statistics, also "
                          "applied to the test split); for unscaled datasets (see mast datasets).")(f)
    return click.option("--dataset", "-d", default="a1a", show_default=True, callback=_dataset_cb,
                        help="LIBSVM name (bundled, $MAST_DATA_DIR or libsvmdata) or a file path.")(f)


def lam_option(f):
    return click.option("--lam", type=float, default=1e-3, show_default=True,
                        help="ℓ2 regularization λ (mean-loss convention).")(f)


def objective_option(f):
    return click.option("--objective", default="logreg", show_default=True,
                        help="logreg (ℓ2-logistic), logreg-nonconvex, or ridge ((1/2n)‖Ax − b‖² + λ/2‖x‖², exact oracles).")(f)


def sketch_options(f=None, *, default=None, sketch_help=None, sparsity_default=None, sparsity_help=None):
    """The sketch options (``--sketch --p --k --workers --sigma --sparsity``), one definition for
    ``mast run``, ``mast constants`` and ``mast verify``.

    Used bare (``@sketch_options``: no default sketch) or as ``@sketch_options(default=...)``;
    a command may give its own help for ``--sketch`` and ``--sparsity`` and a sparsity default.
    """
    if f is None:
        return lambda g: sketch_options(g, default=default, sketch_help=sketch_help,
                                        sparsity_default=sparsity_default, sparsity_help=sparsity_help)
    opts = [
        click.option("--sketch", "-s", default=default, show_default=default is not None,
                     help=sketch_help or "identity, bernoulli, rand-k, perm-k, gaussian, dropout-unscaled "
                                         "(or a plug-in's name; comma list to compare families)."),
        click.option("--p", "p", type=FLOATS, default=None,
                     help="Bernoulli keep probability in (0,1] (a list gives one value per level/worker)."),
        click.option("--k", "k", type=INTS, default=None, help="Rand-K: number of kept coordinates K."),
        click.option("--workers", "workers", type=int, default=None, help="Perm-K / distributed: workers M."),
        click.option("--sigma", type=float, default=None, help="Gaussian sketch: standard deviation σ."),
        click.option("--sparsity", type=FLOATS, default=sparsity_default, show_default=sparsity_default is not None,
                     help=sparsity_help or "Sparsity levels (p = 1 − s, K = round((1 − s) d), M = round(1/(1 − s)))."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def device_option(f):
    return click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
                        help="cpu (NumPy/SciPy reference) or cuda (CuPy on a GPU: pip install '.[gpu]').")(f)


def _thread_count(value, what):
    """``auto`` (→ None) or an integer from 1 to 4·CPUs + 64; MastError naming ``what``."""
    raw = str(value).strip().lower()
    if raw == "auto":
        return None
    try:
        k = int(raw)
    except ValueError:
        k = 0
    if k < 1 or k > 4 * usable_cpus() + 64:
        raise MastError(f"{what} must be 'auto' or an integer from 1 to {4 * usable_cpus() + 64}")
    return k


def check_environment():
    """Refuse bad values of the variables the kernels read on import (one line, exit 2),
    before anything runs: ``MAST_THREADS`` (``auto`` or an integer ≥ 1, as
    :mod:`mast_cli.core.fused` reads it; empty = unset) and ``MAST_KERNELS`` (``numba`` or
    ``numpy``; empty = unset).

    Raises
    ------
    MastError
        For any other value, naming the variable and the value.
    """
    raw = os.environ.get("MAST_THREADS", "")
    if raw.strip():
        _thread_count(raw, f"MAST_THREADS={raw!r} (environment)")
    kern = os.environ.get("MAST_KERNELS", "")
    if kern.strip() and kern.strip().lower() not in ("numba", "numpy"):
        raise MastError(f"MAST_KERNELS={kern!r} (environment) must be 'numba' (the fused kernels, the "
                        "default) or 'numpy' (the numpy/scipy path)")


def _threads_callback(ctx, param, value):
    ctx.meta["mast_threads"] = value
    return value


def threads_option(f):
    """``--threads auto|N``: CPU threads of the gradient kernels in each process (see
    :func:`apply_threads`).  Not part of any configuration: results are the same bits for
    any value (a matrix of ≥ 8192 rows is cut into two fixed row chunks whose sums are added,
    then the columns into groups; a column's operations and their order never depend on
    the thread count)."""
    return click.option("--threads", default="auto", show_default=True, expose_value=False,
                        callback=_threads_callback, is_eager=True,
                        help="CPU threads per process for the gradient kernels: auto (usable CPUs / "
                             "parallel jobs) or a number. Results are identical for any value.")(f)


def apply_threads(ctx, jobs=1):
    """Set the kernels' thread count from ``--threads`` for this process and its children.

    ``auto`` is ⌊usable CPUs / jobs⌋ (at least 1); the value goes to
    :func:`mast_cli.core.fused.set_threads` (when the kernels are already imported) and to
    ``MAST_THREADS``, which they read on import, here and in joblib's worker processes.
    Returns the number used.

    Raises
    ------
    MastError
        For a value that is neither ``auto`` nor an integer ≥ 1.
    """
    value = ctx.meta.get("mast_threads", "auto")
    k = _thread_count(value, f"--threads {value!r}" if not str(value).strip() else f"--threads {value}")
    if k is None:
        k = max(1, usable_cpus() // max(1, int(jobs)))
    os.environ["MAST_THREADS"] = str(k)        # read when the kernels are imported (no numba import here)
    fused = sys.modules.get("mast_cli.core.fused")
    if fused is not None:
        fused.set_threads(k)
    return k


def check_lam(lam):
    if lam is None or not (lam >= 0) or lam == float("inf"):
        raise MastError(f"--lam {lam} must be a finite number >= 0")


def one_value(values, what):
    if values is None:
        return None
    if len(values) != 1:
        raise MastError(f"{what} takes one value here, got {len(values)}")
    return values[0]


def explicit(ctx, name):
    """Whether option ``name`` was given on the command line (not its default)."""
    from click.core import ParameterSource

    return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)


def _looks_like_path(arg):
    return os.sep in arg or "/" in arg or arg.endswith((".bz2", ".svm", ".txt", ".libsvm"))


def _in_data_folders(arg):
    """A bare name (``toy.txt``) found in the bundled folder or $MAST_DATA_DIR (issue 16 #5)."""
    if os.sep in arg or "/" in arg:
        return False
    bundled = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "datasets")
    for folder in (bundled, os.environ.get("MAST_DATA_DIR")):
        if folder and any(os.path.isfile(os.path.join(folder, arg + ext)) for ext in ("", ".bz2")):
            return True
    return False


def precheck_dataset(arg):
    """Refuse a dataset path that does not exist before any heavy module is imported.

    Names are resolved later by :func:`mast_cli.io.data.load_dataset` (which needs libsvmdata).
    """
    if arg is None:
        return
    arg = str(arg)
    if not arg.strip():
        raise MastError("--dataset is empty")
    if not os.path.exists(os.path.expanduser(arg)):
        import re

        arg = re.sub(r"(\+d=\d+)?(\+maxabs)?$", "", arg) or arg
    path = os.path.expanduser(arg)
    if _looks_like_path(arg) and not os.path.exists(path) and not _in_data_folders(arg):
        raise MastError(f"--dataset {arg}: no such file")


class LineProgress:
    """Progress for a log file or pipe: one line ``label: k/N (x%), t s`` at most every
    ``every`` seconds, and one at the end (a progress bar would print a lone label there)."""

    def __init__(self, total, label, every=5.0, file=None):
        import time

        self.total, self.label, self.every = max(int(total), 1), label, every
        self.file = sys.stderr if file is None else file
        self.done, self._clock = 0, time.monotonic
        self.t0 = self.last = self._clock()

    def _line(self):
        pct = 100.0 * self.done / self.total
        click.echo(f"{self.label}: {self.done}/{self.total} ({pct:.0f}%), "
                   f"{self._clock() - self.t0:.1f} s", file=self.file)

    def __enter__(self):
        self._line()
        return self

    def update(self, n):
        self.done = min(self.done + int(n), self.total)
        now = self._clock()
        if now - self.last >= self.every and self.done < self.total:
            self.last = now
            self._line()

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.done = self.total
            self._line()
        return False


def progress_factory(quiet, label):
    """Progress on stderr: a click bar on a terminal, periodic lines otherwise (None when quiet)."""
    if quiet:
        return None

    def factory(total):
        if not sys.stderr.isatty():
            return LineProgress(total, label)
        return click.progressbar(length=max(total, 1), label=label, file=sys.stderr,
                                 show_eta=True, show_percent=True)

    return factory


def build_config(ctx, config_path, cli_values, cls, kind):
    """Merge defaults < TOML file < options given on the command line into ``cls``.

    ``kind`` is the command (``run`` or ``prune``): which experiment files it accepts,
    and for ``prune`` a single step size.  Returns the config object and the ``out``
    entry of the TOML file (or None).
    """
    import dataclasses

    from ..experiments.config import load_config_file

    fields = {f.name for f in dataclasses.fields(cls)}
    values = load_config_file(config_path, fields, kind) if config_path is not None else {}
    for key, val in cli_values.items():
        if explicit(ctx, key):
            values[key] = val
    out = values.pop("out", None)
    for key, val in list(values.items()):
        if key in ("p", "k", "sparsity", "batch_size") and val is not None and not isinstance(val, list):
            values[key] = [val]
        if key == "step" and isinstance(val, (str, int, float)):
            values[key] = [t.strip() for t in str(val).split(",") if t.strip()]
        if key == "step" and kind == "prune":       # mast prune trains with one step size
            if len(values[key]) != 1:
                raise MastError(f"--step {','.join(map(str, values[key]))}: give one step size")
            values[key] = str(values[key][0])
    try:
        return cls(**values), out
    except TypeError as exc:
        raise MastError(f"bad configuration: {' '.join(str(exc).split())}") from None


def int_list(values, option):
    if values is None:
        return None
    bad = [x for x in values if not float(x).is_integer()]
    if bad:
        raise MastError(f"{option} {bad[0]:g} must be an integer")
    return [int(x) for x in values]


def _given(v):
    return v is not None and v != [] and v != ""


def _fmt(v):
    if isinstance(v, (list, tuple)):
        return ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
    return f"{v:g}" if isinstance(v, float) else str(v)


#: the option giving the level of each built-in sketch family
LEVEL_OPTION = {"bernoulli": "--p P", "dropout-unscaled": "--p P", "rand-k": "--k K",
                "perm-k": "--workers M", "gaussian": "--sigma σ"}


def check_run_options(cfg, sketch_given=True):
    """Refuse option combinations of ``mast run`` where one option would be silently ignored.

    ``cfg`` is the merged :class:`~mast_cli.experiments.RunConfig` (defaults < TOML < command line).

    Raises
    ------
    MastError
        Naming both options, e.g. ``--p 0.9 and --sparsity 0.5 both set the sketch level``.
    """
    names = cfg.sketch if isinstance(cfg.sketch, (list, tuple)) else str(cfg.sketch).split(",")
    names = [str(n).strip() for n in names if str(n).strip()]
    alg = cfg.algorithm
    levels = [getattr(cfg, o) for o in ("p", "k", "sigma", "workers", "sparsity")]
    needs = [n for n in names if n in LEVEL_OPTION]
    if needs and alg != "distributed" and not any(_given(v) for v in levels):
        which = "--sketch " + names[0] + ("" if sketch_given else " (the default)")
        raise MastError(f"{which} needs a level: give --sparsity S or {LEVEL_OPTION[needs[0]]}, "
                        f"e.g. mast run -d {cfg.dataset} --sparsity 0.5")
    if _given(cfg.sparsity):
        for opt in ("p", "k", "sigma"):
            val = getattr(cfg, opt)
            if _given(val):
                raise MastError(f"--{opt} {_fmt(val)} and --sparsity {_fmt(cfg.sparsity)} both set the "
                                "sketch level; give one of them")
        if _given(cfg.workers) and "perm-k" in names and alg != "distributed":
            raise MastError(f"--workers {cfg.workers} and --sparsity {_fmt(cfg.sparsity)} both set "
                            "perm-k's number of blocks M; give one of them")
    if _given(cfg.batch_size) and alg != "dsgd-minibatch":
        raise MastError(f"--batch-size {_fmt(cfg.batch_size)} is used by --algorithm dsgd-minibatch only, "
                        f"not by --algorithm {alg}")
    if cfg.sampling != "uniform" and alg != "dsgd-minibatch":
        raise MastError(f"--sampling {cfg.sampling} is used by --algorithm dsgd-minibatch only, "
                        f"not by --algorithm {alg}")
    if _given(cfg.workers) and alg != "distributed" and "perm-k" not in names:
        raise MastError(f"--workers {cfg.workers} is used by --algorithm distributed and --sketch perm-k "
                        f"only, not by --algorithm {alg} with --sketch {','.join(names)}")
    if cfg.split != "random" and alg != "distributed":
        raise MastError(f"--split {cfg.split} is used by --algorithm distributed only, not by --algorithm {alg}")
    for opt in ("sketch_pool", "ref_prob", "ref_batch"):
        if _given(getattr(cfg, opt)) and alg != "vr":
            raise MastError(f"--{opt.replace('_', '-')} {_fmt(getattr(cfg, opt))} is used by --algorithm vr "
                            f"only, not by --algorithm {alg}")
