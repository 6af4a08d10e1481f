"""``python -m mutants.apply NAME [mast arguments...]``: apply one mutant, then run the mast CLI.

``NAME`` may be ``none`` (the unmutated product, the runner's baseline).  The mutant exists
only in this process; nothing on disk changes.
"""

import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print("usage: python -m mutants.apply NAME [mast arguments...]", file=sys.stderr)
        return 2
    name, rest = argv[0], argv[1:]
    if name != "none":
        from .catalogue import apply

        apply(name)
    from mast_cli.cli import cli

    return cli.main(args=rest, prog_name="mast", standalone_mode=True)


if __name__ == "__main__":
    sys.exit(main())
