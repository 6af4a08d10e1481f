"""Certified reference solves: never report an unconverged x*, f^inf, x*_D or f_D^inf as exact.

Every reference minimizer of the package (the ERM solution x* and f^inf = f(x*), the
pool / enumerated minimizers x*_pool, x*_D and f_D^inf) comes out of a Newton solver
whose ``info`` carries the achieved gradient norm.  :func:`certified` wraps such a
solver at its definition so that every caller gets either

* a point whose achieved ‖∇‖ is at most the certification tolerance
  (``info["grad_norm"]`` ≤ ``info["grad_tol"]``, ``info["certified"] = True``), or
* :class:`~mast_cli.errors.MastError` (one line, exit 2) naming the achieved norm.

When the fast solver stops short, a safeguarded Newton method is tried from where it
stopped before giving up (:func:`robust_newton`: exact Newton directions with an
Armijo backtracking line search that also *expands* the step while f keeps falling).
It recovers data with wildly unscaled columns, where the Hessian at the start is
dominated by one huge feature whose curvature vanishes a little further on (Newton's
steps are then ~10⁻⁹⁰ long for hundreds of iterations).

For λ = 0 the ℓ2-logistic problem may have no minimizer: :func:`check_minimizer_exists`
detects (quasi-)linear separability with a small linear program and refuses.  When a
minimizer exists but is not unique (rank-deficient data, λ = 0), the minimum-norm one
is reported (:func:`minimum_norm`).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ..io.errors import MastError

__all__ = ["CERT_TOL", "certified", "certify", "robust_newton", "check_minimizer_exists",
           "minimum_norm"]

#: Largest achieved ‖∇‖ accepted for a reference minimizer reported as exact (absolute,
#: the tolerance ``mast verify`` has always required of x*).
CERT_TOL = 1e-10
#: Largest d for which the safeguarded solver forms dense Hessians.
ROBUST_DENSE_D = 3000


def _finite_norm(g):
    with np.errstate(over="ignore", invalid="ignore"):
        gn = float(np.linalg.norm(g))
    return gn if math.isfinite(gn) else float("inf")


def robust_newton(value_grad, hess, hessp, x0, tol, max_iter=600, factor=None):
    """Safeguarded Newton: Cholesky (shifted) or CG directions, backtracking and expanding steps.

    Parameters
    ----------
    value_grad : callable x -> (f, ∇f)
    hess : callable x -> ndarray (d, d), or None
        Dense Hessian (used when given); otherwise ``hessp``.
    hessp : callable (x, u) -> ∇²f(x) u
    x0 : ndarray (d,)
    tol : float
        Stop when ‖∇f‖ ≤ tol.
    max_iter : int
    factor : callable H -> Cholesky factor (scipy ``cho_factor`` form), shifted if needed
        (the package's shifted Cholesky, passed in by the solver module).

    Returns
    -------
    x : ndarray (d,)
    info : dict with ``value``, ``grad_norm``, ``iterations``, ``converged``.
    """
    factor = factor or scipy.linalg.cho_factor
    x = np.array(x0, dtype=np.float64)
    with np.errstate(all="ignore"):
        f, g = value_grad(x)
    gn = _finite_norm(g)
    it = 0
    for it in range(1, max_iter + 1):
        if gn <= tol or not math.isfinite(gn) or not math.isfinite(f):
            it -= 1
            break
        with np.errstate(all="ignore"):
            if hess is not None:
                H = hess(x)
                if not np.all(np.isfinite(H)):
                    break
                p = -scipy.linalg.cho_solve(factor(H), g)
            else:
                import scipy.sparse.linalg as spla

                op = spla.LinearOperator((x.size, x.size), matvec=lambda u: hessp(x, u), dtype=np.float64)
                p, _ = spla.cg(op, -g, rtol=min(0.1, math.sqrt(gn)), maxiter=10 * x.size)
            slope = float(g @ p)
            if not (math.isfinite(slope) and slope < 0):
                p, slope = -g, -gn * gn
            t, acc = 1.0, None
            while t > 1e-20:
                fn, gnew = value_grad(x + t * p)
                if math.isfinite(fn) and fn <= f + 1e-4 * t * slope:
                    acc = (fn, gnew)
                    break
                t *= 0.5
            if acc is None:
                break
            if t == 1.0:        # expand while f keeps falling strictly (curvature collapsed ahead)
                for _ in range(2100):
                    f2, g2 = value_grad(x + 2 * t * p)
                    if not (math.isfinite(f2) and f2 < acc[0]):
                        break
                    t, acc = 2 * t, (f2, g2)
            x = x + t * p
            f, g = acc
            gn = _finite_norm(g)
    return x, {"value": float(f), "grad_norm": gn, "iterations": it, "converged": gn <= tol}


def certify(x, info, what, tol, retry=None):
    """Accept a reference minimizer only when its achieved gradient norm is at most ``tol``.

    Parameters
    ----------
    x : ndarray (d,)
    info : dict
        Solver diagnostics with ``grad_norm``.
    what : str
        What was solved (for the message), e.g. ``"the ERM problem (x*, f^inf)"``.
    tol : float
        Certification tolerance on ‖∇‖.
    retry : callable x -> (x, info), optional
        A more robust solver started from ``x``, tried when ``x`` is not certified.

    Returns
    -------
    (x, info) with ``info["certified"] = True`` and ``info["grad_tol"] = tol``.

    Raises
    ------
    MastError
        When neither solve reaches ``tol``: names the achieved gradient norm.
    """
    gn = info.get("grad_norm", float("inf"))
    if not (math.isfinite(gn) and gn <= tol and np.all(np.isfinite(x))) and retry is not None:
        x2, info2 = retry(x)
        gn2 = info2.get("grad_norm", float("inf"))
        if math.isfinite(gn2) and (gn2 < gn or not math.isfinite(gn)) and np.all(np.isfinite(x2)):
            info = dict(info, **info2, robust=True)
            x, gn = x2, gn2
    if not (math.isfinite(gn) and gn <= tol and np.all(np.isfinite(x))):
        raise MastError(
            f"{what} did not converge: the solver stopped at ‖∇‖ = {gn:.3g} > tolerance {tol:g}, "
            "so its minimizer and minimum would not be exact; unscaled data? try --scale maxabs")
    info = dict(info, grad_tol=float(tol), certified=True, converged=True)
    return x, info


def check_minimizer_exists(obj):
    """Refuse λ = 0 when the data are (quasi-)linearly separable: then min f is not attained.

    With r = 0 the logistic loss has a minimizer iff no w ≠ 0 has b_i a_iᵀw ≥ 0 for every
    row with strict inequality for some row.  The LP max Σ_i t_i subject to
    b_i a_iᵀw ≥ t_i, 0 ≤ t_i ≤ 1, −1 ≤ w ≤ 1 (scipy.optimize.linprog, HiGHS) has optimum 0
    exactly when no such w exists.

    Raises
    ------
    MastError
        When the optimum is positive (the infimum is approached as ‖x‖ → ∞).
    """
    from scipy.optimize import linprog

    A = sp.csr_matrix(obj.A)
    n, d = A.shape
    Ab = sp.diags(np.asarray(obj.b, dtype=np.float64)) @ A
    # variables (w (d), t (n)); constraints t_i − b_i a_iᵀw ≤ 0
    A_ub = sp.hstack([-Ab, sp.identity(n)], format="csr")
    c = np.concatenate([np.zeros(d), -np.ones(n)])
    bounds = [(-1.0, 1.0)] * d + [(0.0, 1.0)] * n
    res = linprog(c, A_ub=A_ub, b_ub=np.zeros(n), bounds=bounds, method="highs")
    if res.status != 0:
        raise MastError(f"λ = 0: the separability test (linear program) failed ({res.message})")
    if -res.fun > 1e-7:
        w = res.x[:d]
        kept = int(np.count_nonzero(Ab @ w > 1e-9))
        raise MastError(
            f"--lam 0 on linearly separable data: a direction separates {kept} of {n} rows with no "
            "error, so the logistic loss has no minimizer (x* and f^inf do not exist); use --lam > 0")


def minimum_norm(obj, x):
    """The minimum-norm point with the same margins A x (λ = 0: the same loss).

    Projects x onto the row space of A with LSQR (min ‖z‖ subject to A z = A x).
    """
    import scipy.sparse.linalg as spla

    z = spla.lsqr(obj.A, obj.A @ x, atol=1e-15, btol=1e-15, iter_lim=20 * obj.d + 100)[0]
    return z


def _rank_deficient(obj):
    """Whether AᵀA is singular (some direction leaves every margin unchanged)."""
    A = obj.A
    n, d = A.shape
    if d > n:
        return True
    if d <= ROBUST_DENSE_D:
        G = (A.T @ A)
        G = G.toarray() if sp.issparse(G) else np.asarray(G)
        ev = np.linalg.eigvalsh(G)
        return bool(ev[0] <= 1e-10 * max(ev[-1], 1e-300))
    return bool(np.any(np.diff(A.tocsc().indptr) == 0))


def _check_solve_memory(obj, args, kind, what):
    """Estimate the memory of a Newton solve before any d-sized array exists (issue 16 #3)."""
    from ..io.memory import DENSE_D, check_memory

    n, d = int(obj.n), int(obj.d)
    N = 1
    if kind == "pool" and args:
        S = getattr(args[0], "S", args[0])
        N = int(np.shape(S)[0]) if np.ndim(S) == 2 else 1
    check_memory([(f"Newton vectors and pool models ({16 * N} × d, d = {d})", 8.0 * 16 * N * d),
                  (f"dense Hessian and factor (d × d, d = {d})", 24.0 * d * d if d <= DENSE_D else 0.0),
                  (f"margins (n × {N}, n = {n})", 24.0 * n * N)], what.split(" (")[0])


def certified(what, kind="erm", factor=None):
    """Decorator for a reference solver ``solver(obj, ...) -> (x, info)``: see :func:`certify`.

    ``kind='erm'``: the first argument is the objective; for λ = 0 existence is checked
    first (:func:`check_minimizer_exists`), and for rank-deficient data the minimum-norm
    minimizer is returned (``info["minimizer"] = "minimum-norm"``).
    ``kind='pool'``: ``solver(obj, S, v, weights=None, tol=..., ...)`` of
    :mod:`mast_cli.solvers.pool`; the retry runs on the pool objective.
    ``factor``: the (shifted) Cholesky factorization the retry uses for dense Hessians.
    """
    def deco(solver):
        @functools.wraps(solver)
        def run(obj, *args, **kwargs):
            _check_solve_memory(obj, args, kind, what)
            lam0 = getattr(obj, "lam", 1.0) == 0 and hasattr(obj, "A")
            if kind == "erm" and lam0:
                check_minimizer_exists(obj)
            with np.errstate(over="ignore", under="ignore"):
                x, info = solver(obj, *args, **kwargs)
            tol = max(float(kwargs.get("tol", args[0] if kind == "erm" and args else 0.0) or 0.0), CERT_TOL)
            if kind == "erm":
                def retry(x0):
                    dense = obj.hessian if obj.d <= ROBUST_DENSE_D else None
                    return robust_newton(obj.value_grad, dense, obj.hessp, x0, tol, factor=factor)
            else:
                def retry(x0):
                    from ..core.pool import PoolObjective

                    S, v = args[0], args[1]
                    weights = kwargs.get("weights", args[2] if len(args) > 2 else None)
                    P = PoolObjective(obj, S, v, weights)
                    dense = P.hessian if P.dense_hessian_ok() else None
                    return robust_newton(P.value_grad, dense, P.hessp, x0, tol, factor=factor)
            x, info = certify(x, info, what, tol, retry)
            if kind == "erm" and lam0 and _rank_deficient(obj):
                x = minimum_norm(obj, x)
                with np.errstate(over="ignore", under="ignore"):
                    f, g = obj.value_grad(x)
                info = dict(info, value=float(f), grad_norm=_finite_norm(g), minimizer="minimum-norm")
                x, info = certify(x, info, what, tol)
                info["minimizer"] = "minimum-norm"
            return x, info
        return run
    return deco
