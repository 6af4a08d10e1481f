"""Deprecated: moved to :mod:`mast_cli.experiments.prune` (this alias stays for one release).

Nothing inside :mod:`mast_cli` imports this module; it makes ``mast_cli.pruning`` the
same module object as ``mast_cli.experiments.prune`` (attributes, monkeypatching and all).
"""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("mast_cli.experiments.prune")
