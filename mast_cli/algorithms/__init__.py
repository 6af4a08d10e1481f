"""The paper's algorithms as pure functions: arrays and seeds in, arrays out.

- :func:`dsgd` — Algorithm 1, Double Sketched (S)GD, variants (I) and (II).
"""

from .dsgd import dsgd, dsgd_reference

__all__ = ["dsgd", "dsgd_reference"]
