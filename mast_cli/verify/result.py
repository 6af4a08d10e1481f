"""One row of the verification table and the statistics that decide its verdict.

A :class:`CheckResult` reads "observed ≤ bound".  ``kind`` says how it is decided:

* ``exact``: deterministic (closed forms, exact enumeration, Newton solutions); violated
  iff observed > bound + tol (tol = a floating-point tolerance);
* ``stochastic``: observed is a mean over ``samples`` independent seeds; violated iff
  observed − z·se > bound, with z the one-sided 99% normal quantile (Bonferroni-corrected
  over the logged t when the statement is checked at every logged t: ``z`` is stored on
  the row).

Rows of a multiple-testing group (``bonferroni_group``, e.g. the sampler z-tests) share one
family-wise 99% level over a whole ``mast verify`` run: :func:`bonferroni_groups` sets their
bounds (Bonferroni over the rows of the group).

Rate checks also carry ``null``, the value the statistic takes for an algorithm that does
not move (γ = 0), and ``power`` = null / bound.  A rate check with power < 2 cannot tell a
working algorithm from a broken one: its verdict is ``uninformative`` and it counts as a
failure of the battery (never as ``ok``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import norm

__all__ = ["Z99", "EXACT_RTOL", "FD_TOL", "MIN_POWER", "CheckResult", "z_bonferroni", "bonferroni_groups",
           "mean_se", "stochastic_final", "stochastic_min"]

#: One-sided 99% normal quantile.
Z99 = 2.3263478740408408
#: Relative floating-point tolerance of the deterministic checks.
EXACT_RTOL = 1e-9
#: Tolerance of the finite-difference gradient check (relative to ‖∇f_pool(x)‖).
FD_TOL = 1e-6
#: Smallest power (null / bound) for a rate check to count as informative.
MIN_POWER = 2.0


def z_bonferroni(m, level=0.99):
    """One-sided normal quantile for m simultaneous tests at family-wise level ``level``.

    z = Φ⁻¹(1 − (1 − level)/m); m = 1 gives :data:`Z99`.
    """
    m = max(1, int(m))
    return Z99 if m == 1 and level == 0.99 else float(norm.isf((1.0 - level) / m))


def bonferroni_groups(rows, level=0.99):
    """Give the rows of each multiple-testing group one family-wise level (Bonferroni over rows).

    A row of group g (``bonferroni_group`` = g, applicable) is a z-test whose observed value is a
    largest |z|, decided by ``observed > bound``.  With K_g such rows in ``rows``, each row's bound
    becomes the critical value for ``bonferroni_tests × K_g`` one-sided tests,
    z = Φ⁻¹(1 − (1 − level)/(bonferroni_tests · K_g)), so that under the null the probability
    that *any* row of the group fires is at most 1 − level (union bound), instead of up to
    K_g (1 − level) when every row is a test at ``level`` on its own.  Rows outside a group are
    untouched.  Call once, on all the rows of a run (the notes say K_g).

    Parameters
    ----------
    rows : list of CheckResult
    level : float
        Family-wise confidence of each group.

    Returns
    -------
    dict
        group -> K_g, the number of rows corrected.

    Raises
    ------
    ValueError
        When a row of a group has no ``bonferroni_tests`` (≥ 1 required).
    """
    groups = {}
    for r in rows:
        if r.bonferroni_group and r.applicable:
            groups.setdefault(r.bonferroni_group, []).append(r)
    for g, members in groups.items():
        K = len(members)
        for r in members:
            if r.bonferroni_tests < 1:
                raise ValueError(f"row {r.check} of group {g} has bonferroni_tests={r.bonferroni_tests}")
            r.bound = z_bonferroni(r.bonferroni_tests * K, level)
            r.notes = (f"{r.notes}; " if r.notes else "") + (
                f"critical value for {r.bonferroni_tests} × {K} one-sided tests: {K} {g} rows in this run, "
                f"family-wise {level:.0%}")
    return {g: len(m) for g, m in groups.items()}


@dataclass
class CheckResult:
    """One row of the verification table ("observed ≤ bound").

    ``kind`` is ``exact`` (deterministic: violated iff observed > bound + tol) or
    ``stochastic`` (violated iff observed − z·se > bound; observed is a mean over
    ``samples`` seeds).  ``null`` (rate checks) is the statistic of a do-nothing algorithm
    (γ = 0); ``power`` = null / bound, and power < :data:`MIN_POWER` gives the verdict
    ``uninformative``.  ``t`` is the iteration the row reports (rate checks).
    """

    check: str
    statement: str
    observed: float
    bound: float
    kind: str = "exact"
    se: float = 0.0
    samples: int = 1
    tol: float = 0.0
    recon: bool = True
    notes: str = ""
    sketch: str = ""
    sparsity: float = float("nan")
    #: False when the statement's assumptions fail for D (e.g. L_S^max = ∞): reported "n/a"
    applicable: bool = True
    #: statistic of the do-nothing algorithm (rate checks; NaN otherwise)
    null: float = float("nan")
    #: one-sided quantile used by the stochastic rule (Z99, or Bonferroni over logged t)
    z: float = Z99
    #: iteration reported (rate checks; −1 otherwise)
    t: int = -1
    #: True when a violation was found at some logged t (possibly not the one reported)
    violated_at_some_t: bool = False
    #: multiple-testing group ("" = none): the rows of one group in a ``mast verify`` run share a
    #: family-wise 99% level (:func:`bonferroni_groups` sets their bounds)
    bonferroni_group: str = ""
    #: one-sided tests the row's own critical value covers (its coordinates × 2 sides); the
    #: group's correction multiplies it by the number of rows in the group
    bonferroni_tests: int = 0

    @property
    def is_rate(self):
        return not math.isnan(self.null)

    @property
    def power(self):
        """null / bound (NaN for checks that are not rate checks)."""
        if not self.is_rate:
            return float("nan")
        if self.bound <= 0:
            return math.inf if self.null > 0 else float("nan")
        return self.null / self.bound

    @property
    def uninformative(self):
        return self.applicable and self.is_rate and not (self.power >= MIN_POWER)

    @property
    def violated(self):
        if not self.applicable:
            return False
        if self.violated_at_some_t:
            return True
        if not np.isfinite(self.observed):
            return True
        if self.kind == "stochastic":
            return bool(self.observed - self.z * self.se > self.bound)
        return bool(self.observed > self.bound + self.tol)

    @property
    def failed(self):
        """Violated, or uninformative (a failure of the battery's design)."""
        return self.violated or self.uninformative

    @property
    def slack(self):
        """bound / observed (inf when observed ≤ 0 < bound)."""
        if not np.isfinite(self.observed):
            return 0.0
        if self.observed <= 0:
            return math.inf if self.bound >= 0 else -math.inf
        return self.bound / self.observed

    @property
    def verdict(self):
        if not self.applicable:
            return "skipped" if self.notes.startswith("skipped:") else "n/a"
        if self.violated:
            return "VIOLATED"
        if self.uninformative:
            return "uninformative"
        return "ok"

    def to_dict(self):
        out = asdict(self)
        out.update(slack=_num(self.slack), verdict=self.verdict, observed=_num(self.observed),
                   bound=_num(self.bound), se=_num(self.se), null=_num(self.null), power=_num(self.power),
                   z=_num(self.z))
        return out


def _num(x):
    x = float(x)
    return x if math.isfinite(x) else None


def mean_se(vals):
    """Mean and standard error over the first axis (the seeds)."""
    vals = np.asarray(vals, dtype=np.float64)
    m = vals.shape[0]
    return vals.mean(axis=0), vals.std(axis=0, ddof=1) / math.sqrt(m)


def stochastic_final(metric, what):
    """(mean, se, notes) of a metric's last row over the seeds; inf if any trajectory diverged."""
    last = metric[-1]
    bad = ~np.isfinite(last)
    if bad.any():
        return math.inf, 0.0, f"{int(bad.sum())} of {last.size} {what} trajectories diverged"
    mean, se = mean_se(last)
    return float(mean), float(se), ""


def stochastic_min(iterations, metric, T, z=Z99):
    """min over logged t < T of E[metric]: the t minimizing mean − z·se (union rule)."""
    keep = iterations < T
    vals = metric[keep]
    if not np.all(np.isfinite(vals)):
        return math.inf, 0.0, -1
    means = vals.mean(axis=1)
    ses = vals.std(axis=1, ddof=1) / math.sqrt(vals.shape[1])
    k = int(np.argmin(means - z * ses))
    return float(means[k]), float(ses[k]), int(iterations[keep][k])
