"""``python -m mast_cli.cli``: the same as the ``mast`` console script."""

from . import main

main()
