"""mast: a reference implementation of MAST (Model-Agnostic Sparsified Training).

Demidovich, Malinovsky, Shulgin, Richtárik, *MAST: Model-Agnostic Sparsified
Training*, arXiv 2311.16086, ICLR 2025.  The specification every formula follows
is ``mast-theory.md`` (kept beside the repository in ``shared/docs``).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
