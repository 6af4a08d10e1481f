"""Minimizers of the MAST objective on a pool: x*_pool, and x*_D by exact enumeration.

Damped Newton's method on f_pool (:class:`~mast_cli.core.pool.PoolObjective`) with a
dense Cholesky inner solve or preconditioned conjugate gradients (mast-theory §3.3–3.4, §8).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg

from ..core.pool import PoolObjective
from ..io.errors import MastError
from .newton import cholesky_direction, newton, pcg, shifted_cholesky
from ..io.memory import DENSE_D
from .certify import certified

__all__ = ["solve_pool", "solve_enumerated"]


def _diag_preconditioner(pool, x):
    """r ↦ r / diag((Σ_j w_j s_j s_jᵀ) ⊙ ∇²f(x)): no d × d matrix (large d)."""
    diag = (pool.S * pool.S).T @ pool.w * pool.obj.hessian_diag(x)
    diag = np.where(diag > 0, diag, 1.0)
    return lambda r: r / diag


@certified("the pool problem (x*_pool / x*_D, f_D^inf)", kind="pool",
           factor=lambda H: shifted_cholesky(H, rel_shift=1e-10))
def solve_pool(obj, S, v, weights=None, tol=1e-10, x0=None, max_iter=100, hessian="auto"):
    """x*_pool = argmin_x Σ_j w_j f(v + s_j ⊙ (x − v)) by damped Newton's method.

    The reference minimizer of the MAST problem on a pool (SAA) or on an exact
    enumeration of the sketch support (then x*_pool = x*_D).

    Parameters
    ----------
    obj : objective
        :class:`~mast_cli.core.objective.LogisticL2` or ``LogisticNonconvex`` (for the
        non-convex objective a stationary point near ``x0``, a local minimizer).
    S : ndarray (N, d) or EmpiricalSketch
        The pool of diagonals.
    v : ndarray (d,)
        Shift.
    weights : ndarray (N,), optional
        Pool probabilities (uniform when omitted; taken from ``S`` when it is an
        :class:`EmpiricalSketch`).
    tol : float, default=1e-10
        Stop when ‖∇f_pool(x)‖ ≤ tol.
    x0 : ndarray (d,), optional
        Start (default v).
    max_iter : int, default=100
        Most Newton steps.
    hessian : {'auto', 'dense', 'cg'}
        ``dense``: the exact pool Hessian (one stacked sparse Gram) and a Cholesky solve;
        ``cg``: Hessian-vector products (``obj.hessp_batch`` on N columns) and conjugate
        gradients preconditioned by (Σ_j w_j s_j s_jᵀ) ⊙ ∇²f(x) (a few products per
        Newton step); ``auto``: dense when N·nnz(A) ≤ :data:`DENSE_HESSIAN_WORK`.

    Returns
    -------
    x : ndarray of shape (d,)
        The minimizer found.
    info : dict
        ``value`` (f_pool(x)), ``grad_norm``, ``iterations``, ``converged``, ``N``,
        ``hessian`` (the mode used), ``hvps`` (Hessian-vector products, CG mode),
        ``grad_tol`` and ``certified`` (:func:`mast_cli.solvers.certify.certified`).

    Raises
    ------
    MastError
        When ‖∇f_pool‖ ≤ max(tol, 1e-10) is not reached even by the safeguarded retry,
        or the solve would not fit in memory.
    """
    pool = PoolObjective(obj, S, v, weights)
    if hessian == "auto":
        hessian = "dense" if pool.dense_hessian_ok() else "cg"
    if hessian not in ("dense", "cg"):
        raise MastError(f"unknown hessian mode '{hessian}'; choose auto, dense or cg")
    x0 = pool.v if x0 is None else np.asarray(x0, dtype=np.float64)
    hvps = [0]
    if hessian == "dense":
        direction = cholesky_direction(pool.hessian, rel_shift=1e-10)
    else:
        def direction(x, g, gn, it):
            if obj.d <= DENSE_D:
                chol = shifted_cholesky(pool.preconditioner(x), rel_shift=1e-10)
                prec = lambda r: scipy.linalg.cho_solve(chol, r)  # noqa: E731
            else:                   # no d × d matrix for large d
                prec = _diag_preconditioner(pool, x)
            p, k = pcg(lambda u: pool.hessp(x, u), -g, prec,
                       min(0.1, math.sqrt(gn)), max(50, 2 * obj.d), truncate=True)
            hvps[0] += k
            return p
    x, f, gn, it = newton(pool.value_grad, direction, x0, tol, max_iter)
    return x, {"value": float(f), "grad_norm": gn, "iterations": it, "converged": gn <= tol,
               "N": pool.N, "hessian": hessian, "hvps": hvps[0]}


def solve_enumerated(obj, sketch, v, tol=1e-10, x0=None, max_iter=100):
    """x*_D exactly: :func:`solve_pool` on the full support of ``sketch`` with its weights.

    Parameters
    ----------
    obj : LogisticObjective
        The objective f.
    sketch : Sketch
        A distribution D with a small support (``sketch.enumerate()``).
    v : ndarray of shape (d,)
        The shift.
    tol : float, default=1e-10
        Stop when ‖∇f_D(x)‖ ≤ tol.
    x0 : ndarray of shape (d,), optional
        Start (default v).
    max_iter : int, default=100
        Most Newton steps.

    Returns
    -------
    x : ndarray of shape (d,)
        x*_D (mast-theory §3.3).
    info : dict
        As :func:`solve_pool`.

    Raises
    ------
    MastError
        When the support is too large to enumerate.
    """
    S, w = sketch.enumerate()
    return solve_pool(obj, S, v, weights=w, tol=tol, x0=x0, max_iter=max_iter)
