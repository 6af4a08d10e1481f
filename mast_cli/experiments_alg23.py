"""Deprecated: moved to :mod:`mast_cli.experiments.alg23` (this alias stays for one release).

Nothing inside :mod:`mast_cli` imports this module; it makes ``mast_cli.experiments_alg23`` the
same module object as ``mast_cli.experiments.alg23`` (attributes, monkeypatching and all).
"""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("mast_cli.experiments.alg23")
