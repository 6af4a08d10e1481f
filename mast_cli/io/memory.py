"""Memory and size guards: estimate before allocating, refuse in a second instead of failing late.

A command that would need more memory than the machine has (a LIBSVM index of 10⁹
makes every iterate 8 GB; ``--seeds 10**9`` makes 10⁹ trajectories) is refused before
any large array exists, with one line that gives the estimate, its largest part and
the memory available (:func:`check_memory`).  Counts so large that no machine could
hold or finish them (above :data:`MAX_COUNT`) are refused by :func:`check_count`.

``$MAST_MEMORY_LIMIT`` (bytes, or with a K/M/G/T suffix) overrides the detected
available memory (tests, shared machines).
"""

from __future__ import annotations

import os

from .errors import MastError

__all__ = ["available_bytes", "check_memory", "check_count", "fmt_bytes", "usable_cpus", "MAX_COUNT", "DENSE_D"]

#: Largest value accepted for a count option (iterations, seeds, masks, pool sizes, ...).
MAX_COUNT = 10 ** 9
#: Largest d for which any d × d dense matrix (Hessian, Cholesky factor, E[ssᵀ]) is formed.
DENSE_D = 3000
#: Share of the available memory one command may plan to use.
SHARE = 0.8

def usable_cpus():
    """CPUs this process may run on (its affinity mask; ``os.cpu_count()`` where unknown), ≥ 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity
        return max(1, os.cpu_count() or 1)


_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def fmt_bytes(n):
    """``1.5 GiB`` style size."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def available_bytes():
    """Memory available to this process: ``$MAST_MEMORY_LIMIT``, else MemAvailable (Linux), else physical."""
    env = os.environ.get("MAST_MEMORY_LIMIT", "").strip().upper().rstrip("B").rstrip("I")
    if env:
        suffix = env[-1] if env[-1] in _SUFFIX else ""
        try:
            return int(float(env[:-1] if suffix else env) * _SUFFIX[suffix])
        except ValueError:
            raise MastError(f"MAST_MEMORY_LIMIT={os.environ['MAST_MEMORY_LIMIT']} is not a size") from None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 1 << 34


def check_memory(parts, what):
    """Refuse when the estimated memory of ``what`` exceeds the available memory.

    Parameters
    ----------
    parts : iterable of (str, number)
        Labelled estimates in bytes (e.g. ``("iterates d × R", 8 * d * R)``).
    what : str
        The computation (for the message).

    Returns
    -------
    float
        The total estimate in bytes.

    Raises
    ------
    MastError
        When the total is above :data:`SHARE` of :func:`available_bytes`; the message
        gives the estimate, its largest part and the available memory.
    """
    parts = [(label, float(b)) for label, b in parts]
    total = sum(b for _, b in parts)
    avail = available_bytes()
    if total > SHARE * avail:
        label, big = max(parts, key=lambda p: p[1])
        raise MastError(f"{what} needs about {fmt_bytes(total)} of memory (largest part: {label}, "
                        f"{fmt_bytes(big)}) but {fmt_bytes(avail)} is available; "
                        "use fewer features, trajectories or draws")
    return total


def check_count(value, name, limit=MAX_COUNT):
    """Refuse a count option above ``limit`` (no machine holds or finishes that many)."""
    if isinstance(value, (list, tuple)):
        for v in value:
            check_count(v, name, limit)
        return
    if isinstance(value, bool) or not isinstance(value, int):
        return
    if value > limit:
        raise MastError(f"{name} {value} is more than {limit:.0e}: too large to run")
