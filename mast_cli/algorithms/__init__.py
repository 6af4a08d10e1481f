"""The paper's algorithms as pure functions: arrays and seeds in, arrays out.

- :func:`dsgd` — Algorithm 1, Double Sketched (S)GD, variants (I) and (II).
- :func:`distributed_dsgd` — Algorithm 2, Distributed Double Sketched GD (M workers).
- :func:`l_svrdsg` — Algorithm 3, L-SVRDSG (loopless SVRG over a finite sketch pool).
"""

from .distributed import (WorkerSketches, WorkerSplit, distributed_dsgd,
                          partition_rows)
from .dsgd import dsgd
from ._engine import History, log_iterations
from .vr import l_svrdsg, pool_value_grad

__all__ = ["History", "log_iterations", "dsgd", "distributed_dsgd", "partition_rows",
           "WorkerSplit", "WorkerSketches", "l_svrdsg", "pool_value_grad"]
