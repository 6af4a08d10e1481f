"""Thread pools that survive ``fork``: the fused kernels' and the numpy path's own pools
(:mod:`mast_cli.core.fused`, :func:`mast_cli.core.kernels.thread_pool`).  Standard library only."""

from __future__ import annotations

import os

__all__ = ["ForkSafePool"]


class ForkSafePool:
    """A thread pool started on first use, grown to the workers asked for, and forgotten in a
    forked child: there the parent's pool threads do not exist, and tasks submitted to them
    would never run (a hang), so the child starts its own pool on first use.

    Parameters
    ----------
    name : str
        Prefix of the pool threads' names.
    """

    def __init__(self, name):
        self.name = name
        self._pool = None
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self.forget)

    def forget(self):
        """Drop the pool (the next :meth:`get` starts a new one)."""
        self._pool = None

    def get(self, k):
        """The pool, with at least ``k`` workers."""
        if self._pool is None or self._pool._max_workers < k:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=k, thread_name_prefix=self.name)
        return self._pool
