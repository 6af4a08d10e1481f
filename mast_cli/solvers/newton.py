"""Damped Newton's method: the line search, the inner solves and the minimizers of f.

The Armijo line search (:func:`armijo_step`), the shifted Cholesky factorization
(:func:`shifted_cholesky`) and preconditioned conjugate gradients are shared by every
Newton solver of the package (ERM here, pool and enumeration in
:mod:`mast_cli.solvers.pool`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse.linalg as spla

from .certify import certified

__all__ = ["armijo_step", "newton", "cholesky_direction", "pcg", "minimize_newton", "solve_erm",
           "shifted_cholesky", "newton_pcg"]


def armijo_step(value_grad, x, f, g, gn, p):
    """Backtracking (Armijo) line search along the Newton direction ``p``.

    Halves the step from 1 until f(x + t p) ≤ f(x) + 10⁻⁴ t ∇f(x)ᵀp, or, at the
    rounding floor of f, until the gradient norm decreases without f increasing
    by more than 10⁻¹⁴|f|.  Shared by every Newton solver of the package.

    Returns
    -------
    (x_new, f_new, g_new, ‖g_new‖) or None when no step above 10⁻¹² is accepted.
    """
    slope = float(g @ p)
    step = 1.0
    while step > 1e-12:
        xn = x + step * p
        fn, gnew = value_grad(xn)
        gnn = float(np.linalg.norm(gnew))
        if fn <= f + 1e-4 * step * slope or (gnn < gn and fn <= f + 1e-14 * abs(f)):
            return xn, fn, gnew, gnn
        step *= 0.5
    return None


def newton(value_grad, direction, x0, tol, max_iter):
    """The damped Newton driver shared by every minimizer of the package.

    From x⁰, while ‖∇f(x)‖ > ``tol`` and at most ``max_iter`` times: ask the inner
    solve for a direction p ≈ −∇²f(x)⁻¹∇f(x) and accept a step along it by the Armijo
    test (:func:`armijo_step`); stop early when no step is accepted.

    Parameters
    ----------
    value_grad : callable
        x -> (f(x), ∇f(x)).
    direction : callable
        (x, g, ‖g‖, iteration) -> p, the inner solve (Cholesky, PCG, CG).
    x0 : ndarray of shape (d,)
        Start (copied).
    tol : float
        Stop when ‖∇f(x)‖ ≤ tol.
    max_iter : int
        Most Newton steps.

    Returns
    -------
    x : ndarray of shape (d,)
        The last accepted iterate.
    f : float
        f(x).
    grad_norm : float
        ‖∇f(x)‖.
    iterations : int
        Newton steps taken.
    """
    x = np.array(x0, dtype=np.float64)
    f, g = value_grad(x)
    gn = float(np.linalg.norm(g))
    it = 0
    for it in range(1, max_iter + 1):
        if gn <= tol:
            it -= 1
            break
        accepted = armijo_step(value_grad, x, f, g, gn, direction(x, g, gn, it))
        if accepted is None:
            break
        x, f, g, gn = accepted
    return x, f, gn, it


def cholesky_direction(hessian, rel_shift=1e-8):
    """Inner solve of :func:`newton`: p = −H⁻¹g with H = ``hessian(x)`` factorized.

    Parameters
    ----------
    hessian : callable
        x -> dense ndarray of shape (d, d).
    rel_shift : float, default=1e-8
        First relative shift of :func:`shifted_cholesky` (non-convex f).

    Returns
    -------
    callable
        (x, g, ‖g‖, iteration) -> p.
    """
    def direction(x, g, gn, it):
        return -scipy.linalg.cho_solve(shifted_cholesky(hessian(x), rel_shift), g)
    return direction


def minimize_newton(value_grad, hess, x0, tol=1e-12, max_iter=200):
    """Damped Newton's method with a gradient-norm stopping rule.

    Parameters
    ----------
    value_grad : callable x -> (f, ∇f)
    hess : callable x -> ndarray (d, d) or scipy LinearOperator
        Dense Hessians are factorized (Cholesky, with a shift if not positive
        definite); operators are solved inexactly by conjugate gradients.
    x0 : ndarray (d,)
    tol : float, default=1e-12
        Stop when ‖∇f(x)‖ ≤ tol.
    max_iter : int

    Returns
    -------
    x : ndarray (d,)
    info : dict with ``grad_norm``, ``iterations``, ``converged``.
    """
    def direction(x, g, gn, it):
        H = hess(x)
        if isinstance(H, np.ndarray):
            return -scipy.linalg.cho_solve(shifted_cholesky(H), g)
        p, _ = spla.cg(H, -g, rtol=min(0.5, np.sqrt(gn)), maxiter=10 * len(x))
        return p

    x, f, gn, it = newton(value_grad, direction, x0, tol, max_iter)
    return x, {"grad_norm": gn, "iterations": it, "converged": gn <= tol, "value": float(f)}


@certified("the ERM problem (x*, f^inf)", factor=lambda H: shifted_cholesky(H))
def solve_erm(obj, tol=1e-12, x0=None, max_iter=200):
    """Exact ERM solution x* = argmin f by Newton's method.

    Convex objectives with d ≤ 3000: inexact Newton with preconditioned CG (one or two
    dense Hessians per solve, :func:`newton_pcg`); otherwise :func:`minimize_newton`
    on the dense Hessian (d ≤ 3000) or on Hessian-vector products.

    Reaches ‖∇f(x*)‖ ≤ ``tol`` (1e-12 by default) on LIBSVM data; for the
    non-convex objective it returns a local minimizer (shifted Newton).
    Certified (:func:`mast_cli.solvers.certify.certified`): ``info["grad_norm"]`` ≤
    ``info["grad_tol"]`` = max(tol, 1e-10), after a safeguarded retry if needed; λ = 0 on
    separable data is refused; on rank-deficient data (λ = 0) the minimum-norm minimizer
    is returned; the memory of the solve is estimated first.

    Raises
    ------
    MastError
        No minimizer (λ = 0, separable data), not certified, or not enough memory.

    Returns
    -------
    x_star : ndarray (d,)
    info : dict (``value`` = f(x*), ``grad_norm``, ``iterations``, ``converged``)
    """
    x0 = np.zeros(obj.d) if x0 is None else x0
    if hasattr(obj, "exact_minimizer") and obj.d <= 3000:
        # a quadratic (ridge): x* = H⁻¹c in closed form; Newton only if rounding left ‖∇f‖ > tol
        x = obj.exact_minimizer()
        gn = float(np.linalg.norm(obj.grad(x)))
        if gn > tol:
            x, info = minimize_newton(obj.value_grad, obj.hessian, x, tol=tol, max_iter=max_iter)
            return x, {**info, "closed_form": True}
        return x, {"grad_norm": gn, "iterations": 0, "converged": True, "value": float(obj.value(x)),
                   "closed_form": True}
    if obj.d <= 3000 and getattr(obj, "convex", False) and hasattr(obj, "hvp_at"):
        if obj.d < 128:     # OpenBLAS factors such sizes on one thread anyway
            return newton_pcg(obj, x0, tol=tol, max_iter=max_iter)
        # one BLAS thread: a threaded d × d Cholesky is no faster at these sizes, and on a
        # busy machine its second thread can stall it 100-fold (benchmarks/README.md)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="blas"):
            return newton_pcg(obj, x0, tol=tol, max_iter=max_iter)
    if obj.d <= 3000:
        hess = obj.hessian
    else:
        def hess(x):
            return spla.LinearOperator((obj.d, obj.d), matvec=lambda u: obj.hessp(x, u),
                                       dtype=np.float64)
    return minimize_newton(obj.value_grad, hess, x0, tol=tol, max_iter=max_iter)


def shifted_cholesky(H, rel_shift=1e-8):
    """Cholesky factor of H, shifted by a multiple of I until positive definite.

    The first shift is ``rel_shift``·max(1, max|H_ij|), doubled until the
    factorization succeeds (non-convex objectives)."""
    shift = 0.0
    while True:
        try:
            return scipy.linalg.cho_factor(H + shift * np.eye(len(H)) if shift else H)
        except np.linalg.LinAlgError:
            shift = max(2 * shift, rel_shift * max(1.0, float(np.abs(H).max())))


def pcg(hv, b, precond, rtol, maxiter, truncate=False):
    """Preconditioned conjugate gradients on H p = b (H given by products ``hv``).

    Started from p = 0, every iterate is a descent direction for −b.

    Parameters
    ----------
    hv : callable
        u -> H u.
    b : ndarray of shape (d,)
        Right-hand side.
    precond : callable
        r -> M⁻¹ r.
    rtol : float
        Stop when ‖H p − b‖ ≤ rtol‖b‖.
    maxiter : int
        Most iterations.
    truncate : bool, default=False
        What happens at a direction of non-positive curvature or after ``maxiter``
        iterations: False gives up (p = None); True returns the iterate so far
        (Steihaug), or the preconditioned residual M⁻¹b at the first iteration.

    Returns
    -------
    p : ndarray of shape (d,) or None
        The solution, or None when the solve gave up.
    iterations : int
        Products with H done.
    """
    p = np.zeros_like(b)
    r = b.copy()
    z = precond(r)
    d, rz, bound = z.copy(), float(r @ z), rtol * float(np.linalg.norm(b))
    for k in range(1, maxiter + 1):
        Hd = hv(d)
        curv = float(d @ Hd)
        if not curv > 0:
            return ((z if k == 1 else p) if truncate else None), k
        alpha = rz / curv
        p += alpha * d
        r -= alpha * Hd
        if float(np.linalg.norm(r)) <= bound:
            return p, k
        z = precond(r)
        rz, rz_old = float(r @ z), rz
        d = z + (rz / rz_old) * d
    return (p if truncate else None), maxiter


def newton_pcg(obj, x0, tol=1e-12, max_iter=200, max_cg=30, switch=1e-2):
    """Damped inexact Newton for a convex objective whose Hessian fits in memory.

    The Newton system ∇²f(x_k) p = −∇f(x_k) is solved by conjugate gradients on exact
    Hessian-vector products (two sparse products each):

    * far from x* (until ‖∇f‖ ≤ ``switch``·‖∇f(x⁰)‖, at most 4 steps): Jacobi
      preconditioner, forcing term min(0.5, √‖∇f‖), as Newton-CG solvers do;
    * then: the Cholesky factor of the Hessian at one iterate preconditions every later
      system (forcing term min(0.1, ‖∇f‖), quadratic convergence, relaxed to
      1e-3·tol/‖∇f‖ since the next gradient is about the Newton residual).  The factor
      is rebuilt only when PCG needs more than ``max_cg`` iterations: one PCG iteration
      costs two sparse products, a Hessian about as much as 30-40 of them.

    Steps are taken by the driver :func:`newton`.  One or two Hessians serve a whole
    solve (the old solver built one per step).
    """
    state = {"fac": None, "factorizations": 0, "hvps": 0, "g0": None}

    def counted(hv):
        def run(u):
            state["hvps"] += 1
            return hv(u)
        return run

    def direction(x, g, gn, it):
        if it == 1:
            state["g0"] = gn                          # ‖∇f(x⁰)‖
        w = obj.curvature(x)
        hv = counted(obj.hvp_at(x, w))
        p, fac = None, state["fac"]
        if fac is None and gn > switch * state["g0"] and it <= 4:
            diag = obj.hessian_diag(x, w)
            diag = np.where(diag > 0, diag, 1.0)     # λ = 0 and an all-zero column: no scaling
            p = pcg(hv, -g, lambda r: r / diag, min(0.5, np.sqrt(gn)), 2 * max_cg)[0]
        elif fac is not None:
            p = pcg(hv, -g, lambda r: scipy.linalg.cho_solve(fac, r),
                    max(min(0.1, gn), 1e-3 * tol / gn), max_cg)[0]
        if p is None:
            state["fac"] = shifted_cholesky(obj.hessian(x, w))
            state["factorizations"] += 1
            p = -scipy.linalg.cho_solve(state["fac"], g)
        return p

    x, f, gn, it = newton(obj.value_grad, direction, x0, tol, max_iter)
    return x, {"grad_norm": gn, "iterations": it, "converged": gn <= tol, "value": float(f),
               "factorizations": state["factorizations"], "hessian_products": state["hvps"]}
