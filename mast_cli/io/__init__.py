"""Layer 0 — input and output: errors, datasets, the atomic unit store, result files.

Modules here import nothing else from :mod:`mast_cli` (only each other).

- :mod:`~mast_cli.io.errors` — :class:`MastError` (bad input, exit 2) and ``check``.
- :mod:`~mast_cli.io.data` — LIBSVM datasets (bundled, cached, downloaded).
- :mod:`~mast_cli.io.store` — crash-safe storage of finished work units.
- :mod:`~mast_cli.io.outputs` — CSV float format, JSON encoding, provenance, output folders.
"""
