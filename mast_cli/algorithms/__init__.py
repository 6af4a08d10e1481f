"""The paper's algorithms as pure functions: arrays and seeds in, arrays out.

- :func:`dsgd` — Algorithm 1, Double Sketched (S)GD, variants (I) and (II).
- :func:`distributed_dsgd` — Algorithm 2, Distributed Double Sketched GD (M workers).
- :func:`l_svrdsg` — Algorithm 3, L-SVRDSG (loopless SVRG over a finite sketch pool).
"""

from .distributed import (WorkerSketches, WorkerSplit, distributed_dsgd, distributed_reference,
                          partition_rows)
from .dsgd import dsgd, dsgd_reference
from ._engine import History
from .vr import l_svrdsg, l_svrdsg_reference, pool_value_grad

__all__ = ["History", "dsgd", "dsgd_reference", "distributed_dsgd", "distributed_reference", "partition_rows",
           "WorkerSplit", "WorkerSketches", "l_svrdsg", "l_svrdsg_reference", "pool_value_grad"]
