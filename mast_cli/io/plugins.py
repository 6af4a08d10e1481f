"""Plug-in discovery: sketches and objectives that other packages declare as entry points.

A separate package adds a sketch or an objective to mast without editing it by declaring
an entry point in the group ``mast.sketches`` or ``mast.objectives`` (``pyproject.toml``)::

    [project.entry-points."mast.sketches"]
    uniform = "mast_uniform:UniformSketch"

    [project.entry-points."mast.objectives"]
    logreg-huber = "mast_uniform:LogisticHuber"

The tables :data:`mast_cli.core.sketches.SKETCHES` and :data:`mast_cli.core.objective.OBJECTIVES`
are :class:`Registry` objects: the built-in families first, then the entry points of their
group, discovered with :func:`importlib.metadata.entry_points` on first use and imported only
when their name is asked for.  A plug-in cannot replace a built-in name.  What a sketch or an
objective class must provide is documented in README ("Extending mast").

Standard library only (layer L0).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points

from .errors import MastError

__all__ = ["Registry", "SKETCH_GROUP", "OBJECTIVE_GROUP"]

SKETCH_GROUP = "mast.sketches"
OBJECTIVE_GROUP = "mast.objectives"


class Registry(Mapping):
    """Name -> class table: built-ins, then the plug-ins of an entry-point ``group``.

    Parameters
    ----------
    group : str
        Entry-point group (``mast.sketches`` or ``mast.objectives``).
    builtins : dict
        The built-in classes by name (always first; a plug-in cannot shadow them).

    Raises
    ------
    MastError
        From ``registry[name]`` when a plug-in's module cannot be imported.
    """

    def __init__(self, group, builtins):
        self.group = group
        self.builtins = dict(builtins)
        self._eps = None
        self._loaded = {}

    def _entry_points(self):
        if self._eps is None:
            found = {}
            for ep in entry_points(group=self.group):
                if ep.name not in self.builtins and ep.name not in found:
                    found[ep.name] = ep
            self._eps = found
        return self._eps

    def refresh(self):
        """Forget discovered plug-ins (after installing one in a running process)."""
        self._eps = None
        self._loaded = {}

    def is_plugin(self, name):
        return name not in self.builtins and name in self._entry_points()

    def __getitem__(self, name):
        if name in self.builtins:
            return self.builtins[name]
        if name in self._loaded:
            return self._loaded[name]
        ep = self._entry_points().get(name)
        if ep is None:
            raise KeyError(name)
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plug-in: one line, not a traceback
            raise MastError(f"plug-in '{name}' ({self.group} = {ep.value}) cannot be loaded: "
                            f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None
        self._loaded[name] = obj
        return obj

    def __contains__(self, name):
        return name in self.builtins or name in self._entry_points()

    def __iter__(self):
        yield from self.builtins
        yield from (n for n in self._entry_points() if n not in self.builtins)

    def __len__(self):
        return len(self.builtins) + len(self._entry_points())

    def __setitem__(self, name, value):      # kept for code that extends the table in-process
        self.builtins[name] = value
