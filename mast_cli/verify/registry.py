"""The table of checks: one row per check, run in this order by :mod:`.battery`.

Each :class:`Check` names its id (the ``check`` column), the function that computes it
(``Context -> CheckResult | list[CheckResult]``), whether it is exact or stochastic, the
condition under which it applies, and whether its statement needs L_S^max < ∞.  Adding a
check is one row here (plus its function in a module of :mod:`.checks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .checks import (bounds, constants, distributed, estimators, exact, independence, lemmas, minibatch, rates,
                     sketches, steps, theorem1, unbiased, vr)

__all__ = ["Check", "CHECKS", "NEEDS_L_S_MAX", "check_ids"]


def always(ctx):
    return True


def convex(ctx):
    return ctx.convex


def nonconvex(ctx):
    return not ctx.convex


def _logistic_l2(ctx):
    from ..core.objective import LogisticL2, RidgeL2

    return ctx.convex and isinstance(ctx.obj, (LogisticL2, RidgeL2))


def _workers(pred):
    def when(ctx):
        from .. import algorithms

        return hasattr(algorithms, "distributed_dsgd") and ctx.obj.n >= 2 and pred(ctx)
    return when


def _vr(ctx):
    from .. import algorithms

    return ctx.convex and hasattr(algorithms, "l_svrdsg") and ctx.pool.uniform


@dataclass(frozen=True)
class Check:
    """One row of :data:`CHECKS`.

    Attributes
    ----------
    id : str
        The ``check`` column of verify.csv.
    run : callable Context -> CheckResult or list of CheckResult
    kind : {'exact', 'stochastic'}
        How the verdict is decided (see :class:`~mast_cli.verify.result.CheckResult`).
    when : callable Context -> bool
        Whether the check applies (objective, algorithm available, ...).
    needs_L_S_max : bool
        The statement assumes L_S^max < ∞ (reported ``n/a`` for Gaussian sketches).
    progress : str
        What the progress line says while it runs.
    """

    id: str
    run: Callable
    kind: str
    when: Callable = always
    needs_L_S_max: bool = False
    progress: str = ""


#: Every check of the battery, in the order they run (order matters for the shared draws).
CHECKS = (
    # the product's samplers and constants against their closed forms (exact or Monte Carlo)
    Check("sketch-mean", sketches.sketch_mean, "stochastic", progress="sketch samplers"),
    Check("sketch-second-moment", sketches.sketch_second_moment, "stochastic"),
    Check("sketch-cross-moment", sketches.sketch_cross_moment, "stochastic"),
    Check("sketch-support", sketches.sketch_support, "exact"),
    Check("sketch-L_S_max", sketches.sketch_L_S_max, "exact"),
    Check("sketch-enumeration", sketches.sketch_enumeration, "exact"),
    Check("sketch-other-level", sketches.sketch_other_level, "stochastic", progress="samplers at a second level"),
    Check("sketch-other-families", sketches.sketch_other_families, "stochastic", progress="samplers of other families"),
    Check("permk-blocks", sketches.permk_blocks, "exact", progress="perm-k (M ∤ d)"),
    Check("pool-constants", sketches.pool_constants, "exact"),
    Check("const-L_f", constants.exact_L_f, "exact", constants.is_logistic, progress="exact constants"),
    Check("const-L_i", constants.exact_L_i, "exact", constants.is_logistic),
    Check("const-ridge", constants.exact_ridge, "exact", constants.is_ridge, progress="exact constants (ridge)"),
    Check("theory-steps", steps.theory_steps, "exact", progress="theory steps"),
    Check("theory-bounds", bounds.theory_bounds, "exact", progress="theory bounds"),
    # lemmas and Theorem 1 (exact for D_pool)
    Check("lemma1-iii", lemmas.lemma1_iii, "exact", progress="lemmas"),
    Check("lemma2", lemmas.lemma2, "exact", convex),
    Check("lemma3-iii", lemmas.lemma3_iii, "exact", convex),
    Check("lemma4", lemmas.lemma4, "exact", needs_L_S_max=True),
    Check("thm1-upper", theorem1.thm1_upper, "exact", convex, progress="theorem 1"),
    Check("thm1-lower", theorem1.thm1_lower, "exact", convex),
    Check("thm1-f-xD", theorem1.thm1_f_xD, "exact", convex),
    Check("thm1-dist", theorem1.thm1_dist, "exact", convex),
    # every algorithm's expected step
    Check("unbiased", unbiased.unbiased, "exact", progress="unbiased (Alg. 1 (I))"),
    Check("unbiased-II", estimators.unbiased_II_uniform, "stochastic", estimators.tiny_applies,
          progress="unbiased (Alg. 1 (II), 2, 3; tiny problem)"),
    Check("unbiased-II-importance", estimators.unbiased_II_importance, "stochastic", estimators.tiny_applies),
    Check("minibatch-sampling", minibatch.minibatch_sampling, "exact", minibatch.probe_applies,
          progress="minibatch sampling (Alg. 1 (II))"),
    Check("alg2-workers", distributed.worker_independence, "stochastic", _workers(always),
          progress="worker sketches (Alg. 2)"),
    Check("unbiased-alg2", estimators.unbiased_alg2, "exact", estimators.tiny_applies),
    Check("unbiased-alg2-permk", estimators.unbiased_alg2_permk, "exact", estimators.tiny_applies),
    Check("unbiased-alg3", estimators.unbiased_alg3, "stochastic", estimators.tiny_applies),
    Check("alg3-refresh", vr.alg3_refresh, "exact", estimators.tiny_applies, progress="refresh (Alg. 3)"),
    Check("independence", independence.independence, "stochastic", progress="independence"),
    # rates (stochastic, every logged t, null and power)
    Check("thm2", rates.thm2, "stochastic", convex, True, "theorem 2"),
    Check("thm2-interp", rates.thm2_interp, "stochastic", convex, True, "interpolation"),
    Check("thm2-II", rates.thm2_II, "stochastic", _logistic_l2, True, "theorem 2 (II)"),
    Check("thm3", rates.thm3, "stochastic", always, True, "theorem 3"),
    Check("thm4", rates.thm4, "stochastic", nonconvex, True, "theorem 4"),
    Check("alg2", distributed.alg2, "stochastic", _workers(convex), True, "algorithm 2"),
    Check("thm5", distributed.thm5, "stochastic", _workers(nonconvex), True, "theorem 5"),
    Check("alg3-vr", vr.alg3_vr, "stochastic", _vr, True, "algorithm 3"),
    Check("vr-exact", vr.vr_exact, "exact", _vr, True, "algorithm 3 to 1e-20"),
    Check("se-positive", independence.se_positive, "exact"),
    # ridge only: two-sided checks against the exact oracles of mast-theory §2.6
    Check("exact-mean", exact.exact_mean, "stochastic", exact.is_quadratic, True, "exact mean (ridge)"),
    Check("exact-second-moment", exact.exact_second_moment, "stochastic", exact.is_quadratic, True,
          "exact second moment (ridge)"),
    Check("thm2-exact", exact.thm2_exact, "exact", exact.is_quadratic, True),
)

#: Checks whose statement assumes L_S^max < ∞ (Lemma 4 and every rate built on it).
NEEDS_L_S_MAX = frozenset(c.id for c in CHECKS if c.needs_L_S_max)


def check_ids():
    """The ids of :data:`CHECKS`, in order."""
    return [c.id for c in CHECKS]
