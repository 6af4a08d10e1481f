"""The shift v of f_S(x) = f(v + S(x − v)): "the initially pre-trained model" (mast-theory §1.2).

Specifications (``--shift`` and the ``shift`` / ``shifts`` keys of experiment files):

``zero``            v = 0, training from scratch (the paper's logistic experiments).
``erm``             v = x*_ERM, a perfect pre-trained model (Δ = 0: interpolation).
``noisy:σ``         v = x* + σ (‖x*‖/√d) ξ, ξ ~ N(0, I) with a fixed seed: a noisy
                    pre-trained model at relative noise level σ.
``lam:λ'``          v = the ERM solution of the same data with regularization λ'
                    (a model pre-trained on a related problem).
``half``            v = the ERM solution on a fixed random half of the rows
                    (pre-trained on a different split).
``path/to/v.npy``   any d finite values.

Untested in the paper [READ-weak: S8 "v ≠ 0 untested"]; Theorem 1 predicts
Δ ≤ (L_f/2)(L_D − 1)‖x* − v‖².
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .io.errors import MastError, check
from .solvers.newton import solve_erm

__all__ = ["resolve_shift", "SHIFT_SEED"]

SHIFT_SEED = 424242


def _float_arg(shift, prefix):
    try:
        val = float(shift[len(prefix):])
    except ValueError:
        raise MastError(f"shift '{shift}': '{shift[len(prefix):]}' is not a number") from None
    check(np.isfinite(val) and val >= 0, f"shift '{shift}': value must be a finite number >= 0")
    return val


def resolve_shift(shift, problem):
    """The shift vector v (d,) for a specification (see the module docstring).

    Parameters
    ----------
    shift : str
        ``zero``, ``erm``, ``noisy:σ``, ``lam:λ'``, ``half`` or the path of a .npy file.
    problem : Problem
        Any object with ``obj`` (the objective) and ``x_star`` (its ERM solution).

    Returns
    -------
    ndarray of shape (d,)
        The shift v of f_S(x) = f(v + S(x − v)) (mast-theory §1.2).

    Raises
    ------
    MastError
        For an unknown specification, a bad number, or a file that is not d finite reals.
    """
    obj = problem.obj
    d = obj.d
    shift = "zero" if shift is None else str(shift)
    if shift in ("zero", "0"):
        return np.zeros(d)
    if shift == "erm":
        return problem.x_star.copy()
    if shift.startswith("noisy:"):
        sigma = _float_arg(shift, "noisy:")
        xi = np.random.default_rng(SHIFT_SEED).standard_normal(d)
        scale = np.linalg.norm(problem.x_star) / np.sqrt(d)
        return problem.x_star + sigma * scale * xi
    if shift.startswith("lam:"):
        lam = _float_arg(shift, "lam:")
        other = type(obj)(obj.A, obj.b, lam)
        return solve_erm(other)[0]
    if shift == "half":
        rows = np.sort(np.random.default_rng(SHIFT_SEED).permutation(obj.n)[: obj.n // 2])
        return solve_erm(obj.with_rows(rows))[0]
    path = Path(shift)
    if not path.is_file():
        raise MastError(f"shift '{shift}' is not zero, erm, noisy:σ, lam:λ, half or an existing .npy file")
    try:
        v = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise MastError(f"shift file '{shift}' is not a readable .npy array: {exc or 'empty file'}") from None
    check(isinstance(v, np.ndarray) and (v.dtype.kind in "biuf"),
          f"shift file '{shift}' holds {getattr(v, 'dtype', type(v).__name__)} values, not real numbers")
    v = np.asarray(v, dtype=np.float64).ravel()
    check(v.shape == (d,), f"shift file '{shift}' has {v.size} values, expected d={d}")
    check(np.all(np.isfinite(v)), f"shift file '{shift}' has non-finite values")
    return v
