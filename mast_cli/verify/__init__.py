"""``mast verify``: the paper's statements as checks that pass or fail on real data.

Every statement of mast-theory §3 and §5 that the code relies on is evaluated on a
dataset and a sketch distribution, and compared with its bound from
:mod:`mast_cli.theory` (one function per statement; all [RECON] unless noted).

Layout
------
``registry``   the table :data:`CHECKS`: one row per check (id, function, exact or
               stochastic, when it applies, whether it needs L_S^max < ∞);
``checks/``    the check functions, one per check, grouped by statement (lemmas,
               Theorem 1, unbiasedness, Algorithm 1 rates, Algorithm 2, Algorithm 3);
``context``    :class:`Context`: what the checks share for one sketch level (pool,
               x*_D, Δ, constants, test points, seeds), computed on first use;
``battery``    :func:`run_battery` loops over the table, :func:`verify_dataset` over
               the sketch levels;
``report``     the printed table, ``verify.csv`` and ``verify.json``;
``result``     :class:`CheckResult` and the decision rules.

**Adding a check** is a one-place change: write ``def my_check(ctx) -> CheckResult`` (or a
list of them) in a module of :mod:`mast_cli.verify.checks`, using what the
:class:`Context` offers (``ctx.obj``, ``ctx.sketch``, ``ctx.pool``, ``ctx.ref``, ``ctx.L_f``,
``ctx.seeds``, ...), and add one row ``Check("my-check", module.my_check, "exact" |
"stochastic", when)`` to :data:`CHECKS` in ``registry.py``.  Nothing registers itself at
import time.  A rate check also sets ``null`` (the statistic for γ = 0) on its row.

**The distribution that is checked.**  f_D has no closed form for logistic f.  The
battery therefore checks every statement for D_pool, the finite distribution of
:func:`mast_cli.reference.make_pool`: the exact enumeration of D when its support is
small (then D_pool = D), otherwise N balanced draws of D rescaled per coordinate so
that E_pool[S] = I exactly.  D_pool satisfies Assumption 1 exactly and all its
constants are exact (L_D, μ_D = extreme entries of Σ_j w_j s_j², L_S^max = max s_jk²,
f_pool and its minimizer by Newton to ‖∇‖ ≤ 1e-10), so the lemmas and Theorem 1 hold
for it *exactly* and are checked deterministically (up to a floating-point tolerance),
and the rate theorems hold for the algorithms run on D_pool with these constants.
This is mathematically valid for D_pool; for D itself, the pool is the
sample-average approximation of x*_D, f_D^inf and Δ, reported with N and the Monte
Carlo standard error (plus an independent re-estimate of f_D(x*_pool) on fresh
sketches of D).

**Stochastic checks.**  Rate statements bound an expectation over the algorithm's
randomness; the battery runs R seeds at once (columns of the batched engines) and a
check is *violated* only when the observed mean exceeds the bound beyond a one-sided
99% confidence interval over seeds: mean − z₀.₉₉·se > bound (z₀.₉₉ = 2.326).  For
"min over t" statements (Theorems 3–5) it is violated only if this holds at every
logged t < T (the reported t minimizes mean − z·se).

**Power.**  Rate checks report ``null``, the statistic of a do-nothing algorithm (γ = 0),
and ``power`` = null / bound; power < 2 is the verdict ``uninformative`` and fails the
battery like a violation (the check could not have told a broken algorithm from a
working one).
"""

from .battery import run_battery, verify_dataset
from .config import FULL, QUICK, VerifyConfig, sketch_levels
from .context import Context, Problem, load_verify_problem
from .registry import CHECKS, NEEDS_L_S_MAX, Check
from .report import CSV_COLUMNS, format_table, result_json, write_outputs
from .result import EXACT_RTOL, FD_TOL, MIN_POWER, Z99, CheckResult

__all__ = ["Z99", "EXACT_RTOL", "FD_TOL", "MIN_POWER", "VerifyConfig", "QUICK", "FULL", "sketch_levels", "CheckResult", "Check",
           "CHECKS", "NEEDS_L_S_MAX", "Context", "Problem", "load_verify_problem", "verify_dataset", "run_battery",
           "write_outputs", "result_json", "format_table", "CSV_COLUMNS"]
