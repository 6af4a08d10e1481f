"""Deprecated: split into :mod:`mast_cli.core.kernels`, :mod:`mast_cli.core.penalties`,
:mod:`mast_cli.core.objective` and :mod:`mast_cli.solvers.newton` (these re-exports stay
for one release).  Nothing inside :mod:`mast_cli` imports this module.
"""

from .core.kernels import (BLOCK_ELEMS, col_accuracy, col_mean, col_sum, logistic_loss, neg_sigmoid,  # noqa: F401
                           spectral_norm_sq, thread_pool)
from .core.objective import (OBJECTIVES, LogisticL2, LogisticNonconvex, LogisticObjective,  # noqa: F401
                             RidgeL2, make_objective, per_sample_inf)
from .solvers.newton import armijo_step, minimize_newton, shifted_cholesky, solve_erm  # noqa: F401

# former private names, kept for the benchmarks and tests of one release
_Logistic = LogisticObjective
_neg_sigmoid = neg_sigmoid
_logistic_loss = logistic_loss
_pool = thread_pool
_cholesky = shifted_cholesky

__all__ = ["LogisticL2", "LogisticNonconvex", "make_objective", "OBJECTIVES", "spectral_norm_sq", "solve_erm",
           "minimize_newton", "armijo_step", "per_sample_inf", "col_mean", "col_sum", "col_accuracy"]
