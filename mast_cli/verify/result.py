"""One row of the verification table and the statistics that decide its verdict.

A :class:`CheckResult` reads "observed ≤ bound".  ``kind`` says how it is decided:

* ``exact``: deterministic (closed forms, exact enumeration, Newton solutions); violated
  iff observed > bound + tol (tol = a floating-point tolerance);
* ``stochastic``: observed is a mean over ``samples`` independent seeds; violated iff
  observed − z·se > bound, with z the one-sided 99% normal quantile (Bonferroni-corrected
  over the logged t when the statement is checked at every logged t: ``z`` is stored on
  the row).

Rows of a multiple-testing group (``bonferroni_group``; in ``mast verify`` every stochastic
row is in the one group :data:`GROUP`) share one family-wise 99% level over a whole run:
:func:`bonferroni_groups` sets their critical values (Bonferroni over the distinct tests of the
group), so that on a correct product *any* stochastic row fires with probability ≤ 1%.

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
from scipy.stats import t as student_t

__all__ = ["Z99", "EXACT_RTOL", "FD_TOL", "MIN_POWER", "GROUP", "CheckResult", "z_bonferroni", "bonferroni_groups",
           "critical_value", "z_excess", "mean_se", "stochastic_final", "stochastic_min"]

#: One-sided 99% normal quantile.
Z99 = 2.3263478740408408
#: Relative floating-point tolerance of the deterministic checks.
EXACT_RTOL = 1e-9
#: Tolerance of the finite-difference gradient check (relative to ‖∇f_pool(x)‖).
FD_TOL = 1e-6
#: Smallest power (null / bound) for a rate check to count as informative.
MIN_POWER = 2.0
#: The multiple-testing group of every stochastic row of a ``mast verify`` run (one family-wise
#: 99% level for all of them, :func:`bonferroni_groups`).
GROUP = "stochastic"


def z_bonferroni(m, level=0.99):
    """One-sided normal quantile for m simultaneous tests at family-wise level ``level``.

    z = Φ⁻¹(1 − (1 − level)/m); m = 1 gives :data:`Z99`.
    """
    m = max(1, int(m))
    return Z99 if m == 1 and level == 0.99 else float(norm.isf((1.0 - level) / m))


def critical_value(m, df=0, level=0.99):
    """Critical value of m simultaneous one-sided tests at family-wise level ``level``.

    df = 0: the normal quantile :func:`z_bonferroni`; df ≥ 1: Student's t_df quantile
    t_df⁻¹(1 − (1 − level)/m) (the ``exact-*`` rows, means over R seeds: df = R − 1).
    """
    if df <= 0:
        return z_bonferroni(m, level)
    return float(student_t.isf((1.0 - level) / max(1, int(m)), int(df)))


def z_excess(means, ses, bounds, tol=0.0):
    """Largest z at which "mean − z·se > bound + tol" still holds, per point: (mean − bound − tol)/se.

    A point with se = 0 gives +inf when mean > bound + tol (violated at every z), −inf otherwise.
    The row rule "violated when mean − z·se > bound + tol" is then "violated when the excess > z".
    Arrays broadcast; returns a float ndarray.
    """
    means, ses = np.asarray(means, dtype=np.float64), np.asarray(ses, dtype=np.float64)
    diff = means - np.asarray(bounds, dtype=np.float64) - tol
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ses > 0, diff / np.where(ses > 0, ses, 1.0), np.where(diff > 0, math.inf, -math.inf))


def bonferroni_groups(rows, level=0.99):
    """Give the rows of each multiple-testing group one family-wise level (Bonferroni over tests).

    A row of group g (``bonferroni_group`` = g, applicable) is a test made of
    ``bonferroni_tests`` one-sided comparisons (its coordinates × 2 sides, or its logged t).
    With K_g distinct such rows in ``rows``, each row's critical value becomes the one for
    ``bonferroni_tests × K_g`` one-sided tests (:func:`critical_value`: normal, or Student's t
    with ``bonferroni_df`` degrees of freedom), so that under the null the probability that *any*
    row of the group fires is at most 1 − level (union bound), instead of up to K_g (1 − level)
    when every row is a test at ``level`` on its own.  The critical value goes where the row's
    rule reads it:

    * a z- or t-test row (observed = a largest |z| or |t|, violated when observed > bound):
      ``bound``;
    * a mean ± se row with ``z_excess`` set (rate statements at every logged t, violated when
      mean − z·se > bound at some t, i.e. when ``z_excess`` > z): ``z``, and
      ``violated_at_some_t`` is recomputed.

    Rows that repeat another row's test (the same ``bonferroni_key`` and the same observed value:
    a statistic that does not depend on the sketch level, computed again at every level) count
    once in K_g; their union is one event.  Rows outside a group are untouched.  Call once, on all
    the rows of a run (the notes say K_g).

    Parameters
    ----------
    rows : list of CheckResult
    level : float
        Family-wise confidence of each group.

    Returns
    -------
    dict
        group -> K_g, the number of distinct tests the level was split over.

    Raises
    ------
    ValueError
        When a row of a group has no ``bonferroni_tests`` (≥ 1 required).
    """
    groups = {}
    for r in rows:
        if r.bonferroni_group and r.applicable:
            groups.setdefault(r.bonferroni_group, []).append(r)
    out = {}
    for g, members in groups.items():
        distinct = {(r.bonferroni_key, repr(float(r.observed))) if r.bonferroni_key else ("", id(r))
                    for r in members}
        K = len(distinct)
        for r in members:
            if r.bonferroni_tests < 1:
                raise ValueError(f"row {r.check} of group {g} has bonferroni_tests={r.bonferroni_tests}")
            crit = critical_value(r.bonferroni_tests * K, r.bonferroni_df, level)
            dist = f"t_{r.bonferroni_df}" if r.bonferroni_df > 0 else "normal"
            if math.isnan(r.z_excess):
                r.bound = crit
                what = f"critical value ({dist})"
            else:
                r.z = crit
                r.violated_at_some_t = bool(r.z_excess > crit)
                what = f"z = {crit:.3f}"
            r.notes = (f"{r.notes}; " if r.notes else "") + (
                f"in this run: {what} for {r.bonferroni_tests} × {K} one-sided tests ({K} distinct {g} rows, "
                f"family-wise {level:.0%})")
        out[g] = K
    return out


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
    #: family-wise 99% level (:func:`bonferroni_groups` sets their critical values)
    bonferroni_group: str = ""
    #: one-sided tests the row's own critical value covers (its coordinates × 2 sides, or its
    #: logged t); the group's correction multiplies it by the number of distinct rows in the group
    bonferroni_tests: int = 0
    #: rows of a group with the same key and the same observed value are one test (a statistic
    #: that does not depend on the sketch level, repeated at every level); "" = the row's own
    bonferroni_key: str = ""
    #: degrees of freedom of a Student-t row (0: normal critical values)
    bonferroni_df: int = 0
    #: mean ± se rows checked at several t: the largest z at which the row is still violated
    #: (violated iff z_excess > z); NaN for other rows
    z_excess: float = float("nan")

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
            if not math.isnan(self.z_excess):       # every logged t, the rule at the row's z
                return bool(self.z_excess > self.z)
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
                   z=_num(self.z), z_excess=_num(self.z_excess))
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
