"""``mast verify``: the paper's statements as checks that pass or fail on real data.

Every statement of mast-theory §3 and §5 that the code relies on is evaluated on a
dataset and a sketch distribution, and compared with its bound from
:mod:`mast_cli.theory` (one function per statement; all [RECON] unless noted).

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

**Checks** (``check`` id, statement, and which objective it runs on):

=================  ==========================================================  ========
lemma1-iii         f_D(x) − f(x) ≤ (L_f/2)‖x − v‖²_P  (worst of K points)      both
lemma2             f_D(x) ≥ f(x), as f(x) − f^inf ≤ f_D(x) − f^inf             convex
lemma3-iii         (μ_f/2)‖x − v‖²_P ≤ f_D(x) − f(x)                           convex
lemma4             E‖∇f_S(x)‖² ≤ 2L_f L_S^max (f_D(x) − f^inf)                 both
thm1-upper         Δ ≤ (L_f/2)‖x* − v‖²_P                                      convex
thm1-lower         (μ_f/2)(μ_D − 1)‖x*_D − v‖² ≤ Δ                              convex
thm1-f-xD          f(x*_D) − f^inf ≤ Δ                                          convex
thm1-dist          ‖x*_D − x*‖² ≤ (L_f/μ_f)(L_D − 1)‖x* − v‖²                   convex
unbiased           engine's E_pool[g] = ∇f_pool (finite differences of f_pool)  both
thm2               Alg. 1 (I): E‖x^T − x*_D‖² ≤ Theorem 2                       convex
thm2-interp        v = x* (Δ = 0): E‖x^T − x*‖² ≤ (1 − γμ_fμ_D)^T‖x⁰ − x*‖²     convex
thm2-II            Alg. 1 (II), τ-minibatch: E‖x^T − x*_D‖² ≤ (II) form         convex
thm3               Alg. 1 (I): min_t E‖∇f_D(x^t)‖² ≤ Theorem 3                  both
thm4               Alg. 1 (II): min_t E‖∇f_D(x^t)‖² ≤ Theorem 4                 non-convex
alg2               Alg. 2 (M workers): E‖x^T − x*‖² ≤ strongly convex bound     convex
thm5               Alg. 2: min_t E‖∇F(x^t)‖² ≤ Theorem 5                        non-convex
alg3-vr            Alg. 3 (b = N): E‖x^T − x*_D‖² ≤ Theorem 18                  convex
=================  ==========================================================  ========

For the non-convex objective (logreg-nonconvex, f ≥ 0) the infima f^inf, f_D^inf,
f_i^inf are not computable; the proofs of Lemma 4 and Theorems 3–5 use them only as
lower bounds of f, so the certified lower bound ℓ = 0 ≤ f is used in their place
(δ₀ = f_D(x⁰) − 0 and no Δ term): a weaker but valid bound.

The ``unbiased`` check is the one that catches a wrong gradient: it runs the
Algorithm 1 engine for one step from a point x with every pooled sketch held fixed
(one trajectory per sketch), so the weighted mean of its steps is E_pool[g(x)]
exactly, and compares it with central finite differences of f_pool (values only,
Richardson-extrapolated) along three directions.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .io.errors import MastError, check

__all__ = ["Z99", "VerifyConfig", "CheckResult", "verify_dataset", "run_battery", "write_outputs",
           "format_table", "CSV_COLUMNS"]

#: One-sided 99% normal quantile.
Z99 = 2.3263478740408408
#: Relative floating-point tolerance of the deterministic checks.
EXACT_RTOL = 1e-9
#: Tolerance of the finite-difference gradient check (relative to ‖∇f_pool(x)‖).
FD_TOL = 1e-6

CSV_COLUMNS = ["dataset", "objective", "lam", "sketch", "sparsity", "check", "statement", "recon",
               "kind", "observed", "se", "samples", "bound", "slack", "verdict", "notes"]

QUICK = {"pool": 32, "seeds": 16, "iters": 200, "points": 3, "fresh": 64, "batch": 16, "workers": 4}
FULL = {"pool": 128, "seeds": 32, "iters": 600, "points": 5, "fresh": 256, "batch": 32, "workers": 4}


@dataclass
class VerifyConfig:
    """Options of one ``mast verify`` run (None = the quick/full default)."""

    dataset: str = "a1a"
    lam: float = 1e-3
    objective: str = "logreg"
    sketches: list = field(default_factory=lambda: ["bernoulli", "rand-k"])
    sparsity: list = field(default_factory=lambda: [0.5])
    quick: bool = False
    pool: int | None = None
    seeds: int | None = None
    iters: int | None = None
    points: int | None = None
    fresh: int | None = None
    batch: int | None = None
    workers: int | None = None
    seed: int = 0
    shift: str = "zero"

    def resolved(self):
        """The config with every None replaced by its quick/full default."""
        base = QUICK if self.quick else FULL
        out = VerifyConfig(**asdict(self))
        for key, val in base.items():
            if getattr(out, key) is None:
                setattr(out, key, val)
        return out

    def validate(self):
        from .core.objective import OBJECTIVES
        from .core.sketches import SKETCHES

        check(self.objective in OBJECTIVES,
              f"unknown objective '{self.objective}'; choose one of {', '.join(OBJECTIVES)}")
        check(math.isfinite(self.lam) and self.lam >= 0, f"--lam {self.lam} must be a finite number >= 0")
        check(self.objective != "logreg" or self.lam > 0,
              "the strongly convex checks need λ > 0 (use --lam > 0)")
        check(len(self.sketches) > 0, "no sketch given")
        for name in self.sketches:
            check(name in SKETCHES, f"unknown sketch '{name}'; choose one of {', '.join(SKETCHES)}")
            check(name != "dropout-unscaled",
                  "sketch 'dropout-unscaled' is biased (E[S] ≠ I): the theory needs Assumption 1")
        for s in self.sparsity:
            check(0 <= s < 1, f"sparsity {s:g} must be in [0, 1)")
        for key in ("pool", "seeds", "iters", "points", "fresh", "batch", "workers"):
            val = getattr(self, key)
            check(val is None or (isinstance(val, int) and val >= 1), f"--{key} {val} must be an integer >= 1")
        check(self.seeds is None or self.seeds >= 2, "--seeds must be >= 2 (a standard error needs two)")
        check(self.pool is None or self.pool >= 2, "--pool must be >= 2")
        check(self.iters is None or self.iters >= 10, "--iters must be >= 10")
        check(self.points is None or self.points >= 3, "points must be >= 3 (x*, x*_D and a random point)")
        check(self.shift in ("zero", "erm"), f"--shift {self.shift} must be zero or erm")


@dataclass
class CheckResult:
    """One row of the verification table.

    ``kind`` is ``exact`` (deterministic: violated iff observed > bound + tol) or
    ``stochastic`` (violated iff observed − z₀.₉₉·se > bound; observed is a mean over
    ``samples`` seeds).  Every row reads "observed ≤ bound".
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

    @property
    def violated(self):
        if not self.applicable:
            return False
        if not np.isfinite(self.observed):
            return True
        if self.kind == "stochastic":
            return bool(self.observed - Z99 * self.se > self.bound)
        return bool(self.observed > self.bound + self.tol)

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
            return "n/a"
        return "VIOLATED" if self.violated else "ok"

    def to_dict(self):
        out = asdict(self)
        out.update(slack=_num(self.slack), verdict=self.verdict, observed=_num(self.observed),
                   bound=_num(self.bound), se=_num(self.se))
        return out


def _num(x):
    x = float(x)
    return x if math.isfinite(x) else None


# --- building blocks ------------------------------------------------------------------------

class _FixedSketch:
    """The point mass at one diagonal s (a 'distribution' for one engine column)."""

    unbiased = True

    def __init__(self, s):
        self.s = np.asarray(s, dtype=np.float64)
        self.d = self.s.size

    def sample(self, rng, size):
        return np.tile(self.s, (size, 1))


def _mean_se(vals):
    vals = np.asarray(vals, dtype=np.float64)
    m = vals.shape[0]
    return vals.mean(axis=0), vals.std(axis=0, ddof=1) / math.sqrt(m)


def _stochastic_final(metric, what):
    """(mean, se, notes) of a metric's last row over the seeds; inf if any trajectory diverged."""
    last = metric[-1]
    bad = ~np.isfinite(last)
    if bad.any():
        return math.inf, 0.0, f"{int(bad.sum())} of {last.size} {what} trajectories diverged"
    mean, se = _mean_se(last)
    return float(mean), float(se), ""


def _stochastic_min(iterations, metric, T):
    """min over logged t < T of E[metric]: the t minimizing mean − z·se (union rule)."""
    keep = iterations < T
    vals = metric[keep]
    if not np.all(np.isfinite(vals)):
        return math.inf, 0.0, -1
    means = vals.mean(axis=1)
    ses = vals.std(axis=1, ddof=1) / math.sqrt(vals.shape[1])
    k = int(np.argmin(means - Z99 * ses))
    return float(means[k]), float(ses[k]), int(iterations[keep][k])


@dataclass
class _Problem:
    name: str
    obj: object
    v: np.ndarray
    x_star: np.ndarray
    f_inf: float
    convex: bool
    erm_info: dict


def load_verify_problem(cfg):
    """Dataset, objective, shift and the ERM reference x*, f^inf (Newton, ‖∇f‖ ≤ 1e-10)."""
    from .io.data import load_dataset
    from .core.objective import make_objective
    from .solvers.newton import solve_erm

    ds = load_dataset(cfg.dataset)
    obj = make_objective(cfg.objective, ds.X, ds.y, cfg.lam)
    x_star, info = solve_erm(obj)
    if not info["converged"] and info["grad_norm"] > 1e-10:
        raise MastError(f"Newton on f stopped at ‖∇f‖ = {info['grad_norm']:.2e} > 1e-10")
    v = np.zeros(obj.d) if cfg.shift == "zero" else x_star.copy()
    return _Problem(ds.name, obj, v, x_star, float(obj.value(x_star)), bool(obj.convex), info)


def _test_points(prob, ref, K, rng):
    """K points at which the lemmas are checked: x*, x*_D and random points around x*."""
    d = prob.obj.d
    scale = max(float(np.linalg.norm(prob.x_star)), 1.0)
    pts = [prob.x_star, ref.x_D]
    radii = [0.1, 1.0, 0.3, 3.0, 0.03]
    for k in range(max(0, K - 2)):
        xi = rng.standard_normal(d)
        pts.append(prob.x_star + radii[k % len(radii)] * scale * xi / np.linalg.norm(xi))
    X = np.stack(pts[:K], axis=1)
    # a point equal to v makes both sides 0: move it off v
    same = np.linalg.norm(X - prob.v[:, None], axis=0) == 0
    X[:, same] += 0.1 * scale / math.sqrt(d)
    return X


# --- the battery for one sketch ----------------------------------------------------------------

def run_battery(prob, sketch, cfg, progress=None):
    """All checks for one objective and one sketch distribution.

    Parameters
    ----------
    prob : _Problem
        From :func:`load_verify_problem`.
    sketch : Sketch
    cfg : VerifyConfig (resolved)
    progress : callable str -> None, optional
        Called with the name of each check as it starts.

    Returns
    -------
    rows : list of CheckResult
    info : dict
        Reference quantities (:meth:`Reference.summary`) and the sweep entries
        (measured and predicted contraction factors).
    """
    from . import algorithms
    from .core import theory
    from .core.evaluation import grad_norm_sq_estimate
    from .core.objective import LogisticL2
    from .core.pool import PoolObjective
    from .reference import compute_reference

    obj, v = prob.obj, prob.v
    d, n = obj.d, obj.n
    say = progress or (lambda s: None)
    rng = np.random.default_rng([cfg.seed, 7919])
    say("reference")
    ref = compute_reference(obj, sketch, v, N=cfg.pool, rng=rng, tol=1e-10, fresh=cfg.fresh,
                            x_star=prob.x_star)
    pool = ref.pool
    P = PoolObjective(obj, pool, v)
    L_f, mu = obj.smoothness(), float(obj.mu)
    Es2 = pool.diag_second_moment()
    L_D, mu_D, L_S = pool.L_D, pool.mu_D, pool.L_S_max
    convex = prob.convex
    # ℓ: f^inf for the convex objective, the certified lower bound 0 ≤ f otherwise
    f_low = prob.f_inf if convex else 0.0
    rows = []
    R, T = cfg.seeds, cfg.iters
    log_every = max(1, T // 20)          # distance metrics; the ‖∇f_D‖² metrics every T/10
    seeds = np.arange(R) + 1000 * cfg.seed

    def add(check_id, statement, observed, bound, **kw):
        rows.append(CheckResult(check_id, statement, float(observed), float(bound), **kw))

    def tol_for(*vals):
        return EXACT_RTOL * max(1.0, *[abs(float(x)) for x in vals])

    # --- Lemmas 1-4 at K points (exact for D_pool) --------------------------------------------
    say("lemmas")
    X = _test_points(prob, ref, cfg.points, rng)
    fX = np.atleast_1d(obj.value(X))
    fDX = P.value(X)
    pn = np.array([theory.p_norm_sq(X[:, k] - v, Es2) for k in range(X.shape[1])])
    K = X.shape[1]
    note = f"worst of {K} points (x*, x*_D, random around x*)"

    obs = fDX - fX
    bnd = np.array([theory.lemma1_iii(fX[k], L_f, pn[k]) for k in range(K)]) - fX
    k = int(np.argmin(bnd - obs))
    add("lemma1-iii", "Lemma 1(iii): f_D(x) − f(x) ≤ (L_f/2)‖x − v‖²_P", obs[k], bnd[k],
        tol=tol_for(fX[k], fDX[k]), samples=K, notes=note)
    if convex:
        obs2 = fX - prob.f_inf
        bnd2 = fDX - prob.f_inf          # lemma2: f_D(x) ≥ f(x)
        k = int(np.argmin(bnd2 - obs2))
        add("lemma2", "Lemma 2: f(x) − f^inf ≤ f_D(x) − f^inf (f_D ≥ f)", obs2[k], bnd2[k],
            tol=tol_for(fX[k], fDX[k]), samples=K, notes=note)
        obs3 = np.array([theory.lemma3_iii(fX[k], mu, pn[k]) for k in range(K)]) - fX
        bnd3 = fDX - fX
        k = int(np.argmin(bnd3 - obs3))
        add("lemma3-iii", "Lemma 3(iii): (μ_f/2)‖x − v‖²_P ≤ f_D(x) − f(x)", obs3[k], bnd3[k],
            tol=tol_for(fX[k], fDX[k]), samples=K, notes=note)
    G = P.sketched_grads(X)                                  # (d, N, K)
    obs4 = np.einsum("dnk,n->k", G * G, pool.weights)
    bnd4 = np.array([theory.lemma4(L_f, L_S, fDX[k], f_low) for k in range(K)])
    k = int(np.argmin(bnd4 - obs4))
    add("lemma4", "Lemma 4: E‖∇f_S(x)‖² ≤ 2 L_f L_S^max (f_D(x) − f^inf)", obs4[k], bnd4[k],
        tol=tol_for(obs4[k], bnd4[k]), samples=K,
        notes=note + ("" if convex else "; ℓ = 0 ≤ f in place of f^inf"))

    # --- Theorem 1 (exact for D_pool) ----------------------------------------------------------
    x_D, f_D_inf, delta = ref.x_D, ref.f_D_inf, ref.delta
    if convex:
        say("theorem 1")
        dist_xs_v = float(np.sum((prob.x_star - v) ** 2))
        tol = tol_for(prob.f_inf, f_D_inf)
        add("thm1-upper", "Theorem 1: Δ = f_D^inf − f^inf ≤ (L_f/2)‖x* − v‖²_P", delta,
            theory.theorem1_upper(prob.f_inf, L_f, theory.p_norm_sq(prob.x_star - v, Es2)) - prob.f_inf,
            tol=tol)
        add("thm1-lower", "Theorem 1: (μ_f/2)(μ_D − 1)‖x*_D − v‖² ≤ Δ",
            theory.theorem1_lower(prob.f_inf, mu, mu_D, float(np.sum((x_D - v) ** 2))) - prob.f_inf,
            delta, tol=tol)
        add("thm1-f-xD", "Theorem 1: f(x*_D) − f^inf ≤ Δ", float(obj.value(x_D)) - prob.f_inf, delta, tol=tol)
        add("thm1-dist", "Theorem 1: ‖x*_D − x*‖² ≤ (L_f/μ_f)(L_D − 1)‖x* − v‖²",
            float(np.sum((x_D - prob.x_star) ** 2)), theory.theorem1_distance(L_f, mu, L_D, dist_xs_v),
            tol=1e-12 * max(1.0, dist_xs_v))

    # --- the engine's estimator is unbiased (exact over D_pool) -------------------------------
    say("unbiased")
    args, kw = _unbiased_check(prob, P, pool, X[:, -1], rng, algorithms)
    add(*args, **kw)

    sweep = {"sketch": sketch.name, "sparsity": float(sketch.sparsity), **ref.summary()}
    x0 = np.zeros(obj.d)                     # x⁰ = 0 (= v for the default shift)

    if convex:
        # --- Theorem 2, Algorithm 1 (I) -------------------------------------------------------
        say("theorem 2")
        gam = theory.step_dsgd(L_f, L_S)
        r0 = float(np.sum((x0 - x_D) ** 2))
        h = algorithms.dsgd(obj, [pool] * R, [gam] * R, seeds, T, x0=x0, v=v, log_every=log_every,
                            metrics_fn=lambda Xc: {"e": np.sum((Xc - x_D[:, None]) ** 2, axis=0)})
        m, se, nt = _stochastic_final(h.metrics["e"], "Algorithm 1")
        add("thm2", f"Theorem 2: E‖x^T − x*_D‖² ≤ ρ^T‖x⁰ − x*_D‖² + 2γL_fL_S^maxΔ/(μ_fμ_D), T={T}",
            m, theory.theorem2(T, gam, L_f, mu, mu_D, L_S, r0, delta), kind="stochastic", se=se,
            samples=R, notes=nt or f"γ = 1/(L_f L_S^max) = {gam:.4g}")

        # --- interpolation: v = x*, Δ = 0, linear rate ---------------------------------------
        say("interpolation")
        xs = prob.x_star
        xi0 = np.zeros(d) if np.linalg.norm(xs) > 0 else np.full(d, 1.0 / math.sqrt(d))
        r0i = float(np.sum((xi0 - xs) ** 2))
        h = algorithms.dsgd(obj, [pool] * R, [gam] * R, seeds + 1_000_000, T, x0=xi0, v=xs,
                            log_every=log_every,
                            metrics_fn=lambda Xc: {"e": np.sum((Xc - xs[:, None]) ** 2, axis=0)})
        m, se, nt = _stochastic_final(h.metrics["e"], "interpolation")
        rho = theory.contraction_dsgd(gam, mu, mu_D)
        add("thm2-interp", f"Theorem 2, v = x* (Δ = 0): E‖x^T − x*‖² ≤ (1 − γμ_fμ_D)^T‖x⁰ − x*‖², T={T}",
            m, theory.theorem2(T, gam, L_f, mu, mu_D, L_S, r0i, 0.0), kind="stochastic", se=se,
            samples=R, notes=nt)
        e_mean = np.nanmean(h.metrics["e"], axis=1)
        it = h.iterations
        j0 = int(np.argmin(np.abs(it - T // 2)))
        if e_mean[-1] > 0 and e_mean[j0] > 0 and it[-1] > it[j0]:
            rho_meas = float((e_mean[-1] / e_mean[j0]) ** (1.0 / (it[-1] - it[j0])))
        else:
            rho_meas = float("nan")
        sweep.update(rho_predicted=rho, rho_measured=rho_meas, gamma=gam,
                     rate_predicted=-math.log(rho) if rho > 0 else math.inf,
                     rate_measured=-math.log(rho_meas) if rho_meas > 0 else float("nan"))

        # --- Theorem 2, (II) form: τ-minibatch ------------------------------------------------
        if isinstance(obj, LogisticL2):
            say("theorem 2 (II)")
            from .core.objective import per_sample_inf

            tau = min(cfg.batch, n)
            L_max = float(obj.smoothness_per_sample().max())
            A1 = theory.abc_constant_minibatch(L_f, L_max, L_S, n, tau)
            _, bar_f_inf = per_sample_inf(obj)
            C1 = theory.abc_C_minibatch(L_f, L_max, L_S, n, tau, delta, f_D_inf - bar_f_inf)
            g2 = 1.0 / A1
            h = algorithms.dsgd(obj, [pool] * R, [g2] * R, seeds + 2_000_000, T, x0=x0, v=v,
                                batch_size=tau, log_every=log_every,
                                metrics_fn=lambda Xc: {"e": np.sum((Xc - x_D[:, None]) ** 2, axis=0)})
            m, se, nt = _stochastic_final(h.metrics["e"], "Algorithm 1 (II)")
            add("thm2-II", f"Theorem 2 (II), τ={tau}: E‖x^T − x*_D‖² ≤ ρ^T‖x⁰ − x*_D‖² + γC'/(μ_fμ_D)",
                m, theory.theorem2_II(T, g2, mu, mu_D, r0, A1, C1), kind="stochastic", se=se,
                samples=R, notes=nt or f"γ = 1/A' = {g2:.4g}, \\barΔ = {f_D_inf - bar_f_inf:.4g}")

    # --- Theorem 3, Algorithm 1 (I), min_t E‖∇f_D‖² -----------------------------------------------
    say("theorem 3")
    g3 = theory.step_theorem3(L_f, L_D, L_S, T)
    mrng = np.random.default_rng([cfg.seed, 31337])
    h = algorithms.dsgd(obj, [pool] * R, [g3] * R, seeds + 3_000_000, T, x0=x0, v=v, log_every=max(1, T // 10),
                        metrics_fn=lambda Xc: {"g": grad_norm_sq_estimate(P, Xc, mrng)[0]})
    f_x0 = float(P.value(x0))
    if convex:
        d0, dl, form = f_x0 - f_D_inf, delta, "δ₀ = f_D(x⁰) − f_D^inf"
    else:
        d0, dl, form = f_x0, 0.0, "certified ℓ = 0 ≤ f: δ₀ = f_D(x⁰), no Δ term"
    m, se, tstar = _stochastic_min(h.iterations, h.metrics["g"], T)
    add("thm3", f"Theorem 3: min_t<T E‖∇f_D(x^t)‖² ≤ 6δ₀/(γT) + 2γL_f²L_DL_S^maxΔ, T={T}", m,
        theory.theorem3(T, g3, L_f, L_D, L_S, d0, dl), kind="stochastic", se=se, samples=R,
        notes=(f"at t = {tstar}; " if tstar >= 0 else "diverged; ") + form)

    if not convex:
        # --- Theorem 4, Algorithm 1 (II), certified form -------------------------------------
        say("theorem 4")
        tau = min(cfg.batch, n)
        L_max = float(obj.smoothness_per_sample().max())
        A1 = theory.abc_constant_minibatch(L_f, L_max, L_S, n, tau)
        g4 = theory.step_theorem4(L_f, L_D, A1, T)
        h = algorithms.dsgd(obj, [pool] * R, [g4] * R, seeds + 4_000_000, T, x0=x0, v=v, batch_size=tau,
                            log_every=max(1, T // 10),
                            metrics_fn=lambda Xc: {"g": grad_norm_sq_estimate(P, Xc, mrng)[0]})
        m, se, tstar = _stochastic_min(h.iterations, h.metrics["g"], T)
        add("thm4", f"Theorem 4 (II), τ={tau}: min_t<T E‖∇f_D(x^t)‖² ≤ 6δ₀/(γT) + γL_fL_DC', T={T}", m,
            theory.theorem4(T, g4, L_f, L_D, A1, f_x0, 0.0), kind="stochastic", se=se, samples=R,
            notes=(f"at t = {tstar}; " if tstar >= 0 else "diverged; ")
            + "certified ℓ = 0 ≤ f, f_i: C' = 0")

    # --- Algorithm 2 (distributed) -------------------------------------------------------------------
    if hasattr(algorithms, "distributed_dsgd") and n >= 2:
        rows.extend(_distributed_checks(prob, pool, ref, P, cfg, seeds, log_every, say, algorithms,
                                        theory, grad_norm_sq_estimate, mrng))

    # --- Algorithm 3 (VR), b = N ----------------------------------------------------------------------
    if convex and hasattr(algorithms, "l_svrdsg") and pool.uniform:
        say("algorithm 3")
        rows.append(_vr_check(prob, pool, ref, P, cfg, seeds, log_every, algorithms, theory))

    for r in rows:
        r.sketch, r.sparsity = sketch.name, float(sketch.sparsity)
        if r.kind == "exact" and abs(r.bound) <= r.tol and abs(r.observed) <= r.tol:
            r.notes = "degenerate: both sides are 0 up to rounding (e.g. v = x*)" + (
                f"; {r.notes}" if r.notes else "")
    return rows, sweep


def _unbiased_check(prob, P, pool, x, rng, algorithms):
    """E_pool[g(x)] of the Algorithm 1 engine vs finite differences of f_pool."""
    obj, v = prob.obj, prob.v
    N = pool.N
    out = np.empty((obj.d, N))
    per = max(1, (1 << 22) // max(1, obj.n))
    for a in range(0, N, per):
        b = min(N, a + per)
        h = algorithms.dsgd(obj, [_FixedSketch(s) for s in pool.S[a:b]], np.ones(b - a),
                            np.arange(a, b), 1, x0=x, v=v)
        out[:, a:b] = x[:, None] - h.x_final
    g = out @ pool.weights
    gn = float(np.linalg.norm(g))
    U = [g / gn if gn > 0 else np.eye(obj.d)[0]]
    for _ in range(2):
        u = rng.standard_normal(obj.d)
        U.append(u / np.linalg.norm(u))
    U = np.stack(U, axis=1)
    hstep = 1e-3 * max(1.0, float(np.linalg.norm(x)))

    def dd(hh):
        Xp = np.concatenate([x[:, None] + hh * U, x[:, None] - hh * U], axis=1)
        vals = P.value(Xp)
        k = U.shape[1]
        return (vals[:k] - vals[k:]) / (2 * hh)

    fd = (4 * dd(hstep / 2) - dd(hstep)) / 3           # Richardson: O(h⁴)
    err = float(np.max(np.abs(U.T @ g - fd)) / max(float(np.abs(fd[0])), 1e-300))
    return ("unbiased", "§1.2: E_pool[g_S(x)] of the Alg. 1 engine = ∇f_D(x) (finite differences)",
            err, FD_TOL), dict(samples=N, recon=False,
                              notes=f"relative error over 3 directions, all {N} pooled sketches")


def _distributed_checks(prob, pool, ref, P, cfg, seeds, log_every, say, algorithms, theory,
                        grad_norm_sq_estimate, mrng):
    """Algorithm 2 with M workers, every worker sketched by D_pool (F = f_pool exactly)."""
    from .core.objective import make_objective
    from .solvers.newton import solve_erm

    obj, v = prob.obj, prob.v
    R, T = cfg.seeds, cfg.iters
    M = min(cfg.workers, obj.n)
    say("algorithm 2")
    part = algorithms.partition_rows(obj.n, M, "random", rng=np.random.default_rng([cfg.seed, 2]))
    split = algorithms.WorkerSplit(obj, part)
    L_loc = split.local_smoothness()
    L_S, L_D, mu_D = pool.L_S_max, pool.L_D, pool.mu_D
    x0 = np.zeros(obj.d)                     # x⁰ = 0 (= v for the default shift)
    out = []
    if prob.convex:
        # f_i = w_i·(mean logistic on P_i) + (λ/2)‖x‖² = w_i·LogisticL2(A_i, b_i, λ/w_i)
        f_i_inf = []
        for w_i, obj_i in split.local_objectives():
            o = make_objective(obj.name, obj_i.A, obj_i.b, obj.lam / w_i)
            xi, _ = solve_erm(o)
            f_i_inf.append(w_i * float(o.value(xi)))
        gap = ref.f_D_inf - float(np.mean(f_i_inf))
        A = float(np.max(L_loc * L_S))
        gam = theory.step_distributed(L_loc, [L_S] * M)
        mu = float(obj.mu) * mu_D
        x_D = ref.x_D
        h = algorithms.distributed_dsgd(obj, split, [pool] * R, [gam] * R, seeds + 5_000_000, T, x0=x0, v=v,
                                        log_every=log_every,
                                        metrics_fn=lambda Xc: {"e": np.sum((Xc - x_D[:, None]) ** 2, axis=0)})
        m, se, nt = _stochastic_final(h.metrics["e"], "Algorithm 2")
        r0 = float(np.sum((x0 - x_D) ** 2))
        out.append(CheckResult(
            "alg2", f"Alg. 2 (M={M}): E‖x^T − x*‖² ≤ (1 − γμ)^T‖x⁰ − x*‖² + 2γA(F^inf − mean f_i^inf)/μ, T={T}",
            m, float(theory.distributed_strongly_convex(T, gam, mu, r0, A, gap)), kind="stochastic", se=se,
            samples=R, notes=nt or f"γ = 1/max_i L_fi L_S^max = {gam:.4g}, gap = {gap:.4g}"))
    else:
        say("theorem 5")
        D = float(np.max(L_loc * L_D) * np.max(L_loc * L_S))
        gam = 1.0 / math.sqrt(D * T)
        h = algorithms.distributed_dsgd(obj, split, [pool] * R, [gam] * R, seeds + 5_000_000, T, x0=x0, v=v,
                                        log_every=max(1, T // 10),
                                        metrics_fn=lambda Xc: {"g": grad_norm_sq_estimate(P, Xc, mrng)[0]})
        m, se, tstar = _stochastic_min(h.iterations, h.metrics["g"], T)
        out.append(CheckResult(
            "thm5", f"Theorem 5 (M={M}): min_t<T E‖∇F(x^t)‖² ≤ 6(F(x⁰) − F^inf)/(γT) + 2γD·gap, T={T}",
            m, theory.theorem5_distributed(T, gam, D, float(P.value(x0)), 0.0), kind="stochastic", se=se,
            samples=R, notes=(f"at t = {tstar}; " if tstar >= 0 else "diverged; ")
            + "D = (max L_fi L_Di)(max L_fi L_Si^max) ≥ D_max; certified ℓ = 0 ≤ f_i"))
    return out


def _vr_check(prob, pool, ref, P, cfg, seeds, log_every, algorithms, theory):
    """Theorem 18: Algorithm 3 with b = N, p = 1/N, γ = 1/(6 L_f L_S^max) on the uniform pool."""
    obj, v = prob.obj, prob.v
    R, T, N = cfg.seeds, cfg.iters, pool.N
    L_f, mu = obj.smoothness(), float(obj.mu)
    gam = theory.step_vr(L_f, pool.L_S_max)
    p = 1.0 / N
    x_D = ref.x_D
    x0 = np.zeros(obj.d)                     # x⁰ = 0 (= v for the default shift)
    diff = P.sketched_grads(x0) - P.sketched_grads(x_D)
    phi0 = theory.vr_lyapunov(float(np.sum((x0 - x_D) ** 2)), float(np.sum(diff * diff)), gam, p, N)
    per = max(1, (1 << 23) // max(1, obj.n * N))
    finals = []
    for a in range(0, R, per):
        b = min(R, a + per)
        h = algorithms.l_svrdsg(obj, pool.S, [gam] * (b - a), seeds[a:b] + 6_000_000, T, ref_prob=p,
                                x0=x0, v=v, log_every=log_every,
                                metrics_fn=lambda Xc: {"e": np.sum((Xc - x_D[:, None]) ** 2, axis=0)})
        finals.append(h.metrics["e"][-1:])
    m, se, nt = _stochastic_final(np.concatenate(finals, axis=1), "Algorithm 3")
    bound = theory.theorem18_vr(T, gam, L_f, pool.L_S_max, mu, pool.mu_D, p, phi0)
    return CheckResult("alg3-vr", f"Theorem 18 (Alg. 3, b = N = {N}, p = 1/N): E‖x^T − x*_D‖² ≤ "
                       f"(1 − min(γμ_fμ_D, p/2))^T Φ⁰, T={T}", m, float(bound), kind="stochastic", se=se,
                       samples=R, notes=nt or f"γ = 1/(6 L_f L_S^max) = {gam:.4g}")


# --- the whole run -----------------------------------------------------------------------------

#: Checks whose statement assumes L_S^max < ∞ (Lemma 4 and every rate built on it).
NEEDS_L_S_MAX = {"lemma4", "thm2", "thm2-interp", "thm2-II", "thm3", "thm4", "alg2", "thm5", "alg3-vr"}


def _mark_not_applicable(rows, sketch):
    """Sketches with unbounded support (Gaussian: L_S^max = ∞) fall outside the theorems that
    need L_S^max; their rows are kept for information (computed for the finite pool) but
    reported "n/a" and never count as violations.  Checks that use only L_D, μ_D still run."""
    for r in rows:
        if r.check in NEEDS_L_S_MAX:
            r.applicable = False
            r.notes = (f"not applicable: L_S^max = ∞ for {sketch.name} (values shown are for the "
                       f"finite pool); " + r.notes).strip("; ")

def verify_dataset(cfg, progress=None):
    """Run the battery for every sketch × sparsity level of ``cfg`` on its dataset.

    Returns
    -------
    dict
        ``config``, ``dataset`` (n, d), ``rows`` (list of CheckResult), ``sweep`` (one
        dict per sketch level: reference quantities with N and standard errors, measured
        and predicted contraction), ``violated`` (count), ``wall_time_s``.
    """
    from .core.sketches import make_sketch

    cfg = cfg.resolved()
    cfg.validate()
    t0 = time.perf_counter()
    prob = load_verify_problem(cfg)
    rows, sweep = [], []
    for name in cfg.sketches:
        for s in cfg.sparsity:
            sk = make_sketch(name, prob.obj.d, sparsity=s)
            if progress is not None:
                progress(f"{name} sparsity {s:g}")
            r, info = run_battery(prob, sk, cfg, progress=None)
            if not math.isfinite(sk.L_S_max):
                _mark_not_applicable(r, sk)
            info["sparsity_level"] = float(s)
            rows.extend(r)
            sweep.append(info)
    return {
        "config": asdict(cfg),
        "dataset": {"name": prob.name, "n": int(prob.obj.n), "d": int(prob.obj.d),
                    "f_inf": prob.f_inf, "erm_grad_norm": float(prob.erm_info["grad_norm"])},
        "rows": rows,
        "sweep": sweep,
        "violated": int(sum(r.violated for r in rows)),
        "confidence": 0.99,
        "z": Z99,
        "wall_time_s": time.perf_counter() - t0,
    }


def _fmt(x, digits=3):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "inf" if (x is not None and x > 0) else ("-inf" if x is not None and x < 0 else "nan")
    return f"{x:.{digits}e}" if (abs(x) < 1e-2 or abs(x) >= 1e4) and x != 0 else f"{x:.{digits + 1}g}"


def format_table(result):
    """The human-readable report: reference quantities, the checks table, the CI rule."""
    cfg = result["config"]
    ds = result["dataset"]
    lines = [f"mast verify: {ds['name']} (n={ds['n']}, d={ds['d']}), {cfg['objective']} λ={cfg['lam']:g}, "
             f"shift v={cfg['shift']}, {'quick' if cfg['quick'] else 'full'} battery "
             f"(R={cfg['seeds']} seeds, T={cfg['iters']} steps)"]
    lines.append("")
    lines.append("reference quantities (D_pool: exact enumeration of D, or N balanced draws of D with "
                 "E_pool[S] = I; ± = Monte Carlo standard error as an estimate for D, i.i.d. formula, "
                 "conservative for the balanced pool)")
    if cfg["objective"] != "logreg":
        lines.append("  (non-convex f: f^inf and f_D^inf below are the values at the stationary points Newton "
                     "finds from x*; the bounds use the certified ℓ = 0 ≤ f instead)")
    for s in result["sweep"]:
        src = "exact enumeration" if s["exact_enumeration"] else "SAA"
        fresh = ""
        if "fresh_f_D_at_xD" in s:
            fresh = (f"; fresh f_D(x*_D) − f^inf = {_fmt(s['fresh_delta_upper'])} ± "
                     f"{_fmt(s['fresh_f_D_at_xD_se'], 1)} (m={s['fresh_m']})")
        contr = ""
        if "rho_measured" in s:
            contr = (f"; contraction/step measured {s['rho_measured']:.8f} vs predicted "
                     f"{s['rho_predicted']:.8f}")
        lines.append(f"  {s['sketch']} sparsity {s['sparsity']:.3g}: N={s['N']} ({src}), "
                     f"f^inf={s['f_inf']:.8g}, f_D^inf={s['f_D_inf']:.8g}, "
                     f"Δ={_fmt(s['delta'])} ± {_fmt(s['delta_se'], 1)}, "
                     f"‖x*_D − x*‖²={_fmt(s['dist_sq_xD_xstar'])} (x*_D ± {_fmt(s['x_D_se'], 1)} in norm)"
                     f"{fresh}; "
                     f"L_D={s['pool_L_D']:.4g}, μ_D={s['pool_mu_D']:.4g}, L_S^max={s['pool_L_S_max']:.4g}"
                     f"{contr}")
    if len(result["sweep"]) > 1 and len(result["config"]["sparsity"]) > 1:
        lines.append("")
        lines.append("sweep: Δ(sparsity) and contraction per step (interpolation run, second half)")
        lines.append(f"  {'sketch':<10} {'sparsity':>8} {'N':>5} {'Δ':>11} {'se':>9} "
                     f"{'ρ measured':>12} {'ρ predicted':>12}")
        for s in result["sweep"]:
            lines.append(f"  {s['sketch']:<10} {s['sparsity']:>8.3g} {s['N']:>5} {_fmt(s['delta']):>11} "
                         f"{_fmt(s['delta_se'], 1):>9} {s.get('rho_measured', float('nan')):>12.8f} "
                         f"{s.get('rho_predicted', float('nan')):>12.8f}")
    lines.append("")
    head = ["check", "statement", "observed", "bound", "slack (bound/observed)", "verdict"]
    table = []
    for r in result["rows"]:
        obs = _fmt(r.observed)
        if r.kind == "stochastic":
            obs += f" ± {_fmt(r.se, 1)}*"
        lvl = f"{r.sketch} {r.sparsity:.2g}"
        table.append([f"{r.check} [{lvl}]", r.statement + (" [RECON]" if r.recon else ""), obs,
                      _fmt(r.bound), _fmt(r.slack), r.verdict])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *table)]
    widths[1] = min(widths[1], 100)

    def row(cells):
        out = []
        for c, w in zip(cells, widths):
            c = str(c)
            out.append(c if len(c) <= w else c[: w - 1] + "…")
        return " | ".join(c.ljust(w) for c, w in zip(out, widths)).rstrip()

    lines.append(row(head))
    lines.append("-+-".join("-" * w for w in widths))
    lines.extend(row(t) for t in table)
    lines.append("")
    lines.append(f"* stochastic: mean ± standard error over R={cfg['seeds']} seeds; violated only when the "
                 f"observed mean exceeds the bound beyond a one-sided 99% confidence interval "
                 f"(mean − {Z99:.3f}·se > bound). Exact checks: violated when observed > bound + "
                 f"{EXACT_RTOL:g}·scale (floating point).")
    nv = result["violated"]
    lines.append(f"{len(result['rows'])} checks, {nv} violated"
                 f"{'' if nv == 0 else ': ' + ', '.join(r.check + ' [' + r.sketch + ']' for r in result['rows'] if r.violated)}"
                 f"; {result['wall_time_s']:.1f} s")
    return "\n".join(lines)


def result_json(result):
    """JSON-ready dict of a :func:`verify_dataset` result."""
    import copy

    out = copy.copy(result)
    out["rows"] = [r.to_dict() for r in result["rows"]]
    out["sweep"] = [{k: (_num(v) if isinstance(v, float) else v) for k, v in s.items()} for s in result["sweep"]]
    return out


def write_outputs(result, out_dir):
    """Write ``verify.csv`` (one row per check) and ``verify.json`` into ``out_dir``."""
    import csv
    import io
    import json
    from pathlib import Path

    from .io.store import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = result["config"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in result["rows"]:
        d = r.to_dict()
        w.writerow({"dataset": result["dataset"]["name"], "objective": cfg["objective"], "lam": cfg["lam"],
                    **{k: d.get(k) for k in CSV_COLUMNS if k not in ("dataset", "objective", "lam")},
                    "slack": d["slack"] if d["slack"] is not None else ("inf" if r.slack > 0 else "nan")})
    atomic_write_text(out / "verify.csv", buf.getvalue())
    atomic_write_text(out / "verify.json", json.dumps(result_json(result), indent=2, default=float) + "\n")
    return out / "verify.csv", out / "verify.json"
