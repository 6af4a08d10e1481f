"""Deprecated: moved to :mod:`mast_cli.core.sketches` (this alias stays for one release).

Nothing inside :mod:`mast_cli` imports this module; it makes ``mast_cli.sketches`` the
same module object as ``mast_cli.core.sketches`` (attributes, monkeypatching and all).
"""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("mast_cli.core.sketches")
