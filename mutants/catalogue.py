"""The named mutants: realistic implementation bugs, each a small in-memory source rewrite.

A mutant is a list of :class:`Edit` s.  Each edit takes the source of one function or method
(``inspect.getsource``), replaces one exact snippet (which must occur exactly once), compiles
the result in the defining module's namespace and rebinds it everywhere the original object
is referenced (the defining module or class, and every module that imported the name).  The
files on disk are never touched, so a mutant lives only in the process that applied it.

Blind spots (bugs that cannot change any verified statement) are not mutants: they are listed
with the reason in README.md ("Blind spots of mast verify").
"""

from __future__ import annotations

import importlib
import inspect
import sys
import textwrap
from dataclasses import dataclass, field

__all__ = ["Edit", "Mutant", "MUTANTS", "QUICK", "apply", "validate", "by_name"]


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` by ``new`` in the source of ``module``.``qualname`` (a function or a method)."""

    module: str
    qualname: str
    old: str
    new: str


@dataclass(frozen=True)
class Mutant:
    """A named bug: what it models (``area``, ``doc``) and its edits."""

    name: str
    area: str
    doc: str
    edits: tuple = field(default_factory=tuple)


def _resolve(module, qualname):
    mod = importlib.import_module(module)
    owner, obj = mod, mod
    for part in qualname.split("."):
        owner, obj = obj, getattr(obj, part)
    return mod, owner, obj


def _apply_edit(e):
    mod, owner, orig = _resolve(e.module, e.qualname)
    func = orig.fget if isinstance(orig, property) else orig
    func = getattr(func, "__func__", func)
    src = textwrap.dedent(inspect.getsource(func))
    n = src.count(e.old)
    if n != 1:
        raise RuntimeError(f"mutant edit of {e.module}.{e.qualname}: snippet found {n} times: {e.old!r}")
    src = src.replace(e.old, e.new)
    # drop decorators (property, staticmethod): the wrapper is rebuilt below
    lines = src.splitlines()
    while lines and lines[0].lstrip().startswith("@"):
        lines.pop(0)
    ns = {}
    code = compile("\n".join(lines) + "\n", f"<mutant {e.module}.{e.qualname}>", "exec")
    exec(code, mod.__dict__, ns)                          # noqa: S102 - the mutant's own source
    new = ns[func.__name__]
    if func.__closure__ is None and new.__code__.co_freevars:
        raise RuntimeError(f"{e.qualname}: closures are not supported")
    raw = inspect.getattr_static(owner, func.__name__) if inspect.isclass(owner) else orig
    if isinstance(raw, property):
        repl = property(new, raw.fset, raw.fdel, raw.__doc__)
    elif isinstance(raw, staticmethod):
        repl = staticmethod(new)
    elif isinstance(raw, classmethod):
        repl = classmethod(new)
    else:
        repl = new
    setattr(owner, func.__name__, repl)
    if not inspect.isclass(owner):                        # rebind `from x import f` copies too
        for m in list(sys.modules.values()):
            d = getattr(m, "__dict__", None)
            if not d:
                continue
            for k, v in list(d.items()):
                if v is orig:
                    d[k] = new


def validate(mutant):
    """Check, without applying anything, that every edit of ``mutant`` finds its snippet once.

    Raises
    ------
    RuntimeError
        Naming the edit whose snippet is missing or ambiguous (the product's code moved).
    """
    for e in mutant.edits:
        _, _, orig = _resolve(e.module, e.qualname)
        func = orig.fget if isinstance(orig, property) else orig
        func = getattr(func, "__func__", func)
        n = inspect.getsource(func).count(e.old)
        if n != 1:
            raise RuntimeError(f"mutant {mutant.name}: {e.module}.{e.qualname} has its snippet {n} times: {e.old!r}")


def apply(mutant):
    """Apply every edit of ``mutant`` (a :class:`Mutant` or its name) in this process."""
    m = by_name(mutant) if isinstance(mutant, str) else mutant
    for e in m.edits:
        _apply_edit(e)
    return m


E = Edit
SK, DF, PEN = "mast_cli.core.sketches", "mast_cli.core.datafit", "mast_cli.core.penalties"
ENG, DSGD, DIST, VR = ("mast_cli.algorithms._engine", "mast_cli.algorithms.dsgd", "mast_cli.algorithms.distributed",
                       "mast_cli.algorithms.vr")
TH, POOL, OBJ = "mast_cli.core.theory", "mast_cli.core.pool", "mast_cli.core.objective"

MUTANTS = (
    # --- sketches: samplers, moments, constants ---------------------------------------------
    Mutant("randk-scale-k-plus-1", "sketch sampler", "Rand-K keeps K coordinates scaled by d/(K+1) (E[S] ≠ I)",
           (E(SK, "RandK.sample", "self.d / self.k, axis=1)", "self.d / (self.k + 1), axis=1)"),)),
    Mutant("randk-with-replacement", "sketch sampler",
           "Rand-K draws its K indices with replacement (fewer than K kept, E[S] ≠ I)",
           (E(SK, "RandK.sample", "idx = np.argpartition(keys, self.k - 1, axis=1)[:, : self.k]",
              "idx = rng.integers(self.d, size=(size, self.k))"),)),
    Mutant("bernoulli-unscaled", "sketch sampler", "Bernoulli keeps c_j without the 1/p_j rescaling",
           (E(SK, "Bernoulli.sample", "return keep / self.p", "return keep * 1.0"),)),
    Mutant("permk-scale-M", "sketch sampler", "Perm-K scales every block by M instead of d/q_i (wrong when M ∤ d)",
           (E(SK, "PermK.sample_blocks", "scale = (self.d / self.q)[None, :, None]",
              "scale = np.full(self.M, float(self.M))[None, :, None]"),)),
    Mutant("bernoulli-moment-1/p2", "sketch moments", "Bernoulli E[s_j²] written 1/p² (moment_e = 1/p² − 1)",
           (E(SK, "Bernoulli.moment_e", "1.0 / self.p - 1.0", "1.0 / self.p ** 2 - 1.0"),)),
    Mutant("randk-moment-c", "sketch moments", "Rand-K off-diagonal E[s_j s_k] = (K−1)/(d−1), the d/K factor lost",
           (E(SK, "RandK.moment_c", "d * (k - 1) / (k * (d - 1))", "(k - 1) / (d - 1)"),)),
    Mutant("randk-LSmax-d/K", "sketch constants", "Rand-K L_S^max = d/K instead of (d/K)²",
           (E(SK, "RandK.L_S_max", "float((self.d / self.k) ** 2)", "float(self.d / self.k)"),)),
    Mutant("pool-LSmax-abs", "sketch constants", "D_pool's L_S^max = max |s| instead of max s² (under-estimated)",
           (E(POOL, "EmpiricalSketch.L_S_max", "np.max(self.S * self.S)", "np.max(np.abs(self.S))"),)),
    # --- the objective: gradient, λ, L_f ------------------------------------------------------
    Mutant("grad-no-lambda", "objective gradient", "∇r = 0: the ℓ2 penalty is in f but not in its gradient",
           (E(PEN, "L2.grad", "return self.lam * X", "return 0.0 * X"),)),
    Mutant("grad-lambda-twice", "objective λ", "∇r = 2λx (penalty gradient doubled)",
           (E(PEN, "L2.grad", "return self.lam * X", "return 2.0 * self.lam * X"),)),
    Mutant("grad-sum-not-mean", "objective gradient", "the data gradient is a sum over rows, not a mean (ridge)",
           (E(DF, "Squared.grad", "G = self.back(self.margins(X) - 1.0)",
              "G = self.back(self.margins(X) - 1.0) * self.n"),)),
    Mutant("Lf-missing-quarter", "objective L_f", "logistic L_f = λ_max(AᵀA)/n + λ (the 1/4 of sup σ' lost)",
           (E(DF, "Logistic.smoothness", "self.curvature_bound * self.data_norm_sq / self.n",
              "self.data_norm_sq / self.n"),)),
    Mutant("Lf-half", "objective L_f", "L_f under-estimated by 2 (λ_max(AᵀA)/(2·4n))",
           (E(DF, "Logistic.smoothness", "self.curvature_bound * self.data_norm_sq / self.n",
              "0.5 * self.curvature_bound * self.data_norm_sq / self.n"),)),
    # --- Algorithm 1 (I) ----------------------------------------------------------------------
    Mutant("alg1-no-outer-S", "Algorithm 1 (I)", "x⁺ = x − γ∇f(y): the outer Sᵀ of the sketched gradient lost",
           (E(DSGD, "dsgd", "fused.sketched_step(X, S, G, gam * alive, finite)",
              "fused.sketched_step(X, np.ones_like(S), G, gam * alive, finite)"),)),
    Mutant("alg1-model-not-sketched", "Algorithm 1 (I)", "the forward pass uses x instead of v + S(x − v)",
           (E(DSGD, "dsgd", "fused.sketched_model(X, v, S, Y)", "fused.sketched_model(X, X, S, Y)"),)),
    Mutant("alg1-shift-ignored", "Algorithm 1 (I)", "the sparse model is S x (the shift v dropped)",
           (E(DSGD, "dsgd", "fused.sketched_model(X, v, S, Y)", "fused.sketched_model(X, 0.0 * v, S, Y)"),)),
    # --- Algorithm 1 (II) ---------------------------------------------------------------------
    Mutant("alg1II-uniform-weights-1/n", "Algorithm 1 (II) uniform", "minibatch weights 1/n instead of 1/τ",
           (E(ENG, "RowBank._draw", "np.full(rows.shape, 1.0 / tau)", "np.full(rows.shape, 1.0 / self.n)"),)),
    Mutant("alg1II-importance-weights-1/tau", "Algorithm 1 (II) importance",
           "importance weights 1/τ instead of 1/(n q_i τ)",
           (E(ENG, "RowBank._draw", "1.0 / (self.n * self.q[rows] * tau)", "np.full(rows.shape, 1.0 / tau)"),)),
    # --- Algorithm 2 --------------------------------------------------------------------------
    Mutant("alg2-divide-by-n", "Algorithm 2", "the server averages the M worker steps dividing by n, not M",
           (E(DIST, "WorkerSplit.sketched_grad", "return np.add.reduce(H, axis=0) / M",
              "return np.add.reduce(H, axis=0) / self.n"),)),
    Mutant("alg2-no-worker-S", "Algorithm 2", "worker i returns ∇f_i(y_i) without its Sᵀ",
           (E(DIST, "WorkerSplit.sketched_grad", "H = S * ((Gd / self.n) * M + self.obj.penalty.grad(Y))",
              "H = (Gd / self.n) * M + self.obj.penalty.grad(Y)"),)),
    # --- Algorithm 3 --------------------------------------------------------------------------
    Mutant("alg3-reference-never-refreshed", "Algorithm 3", "the VR reference point w is never refreshed",
           (E(VR, "l_svrdsg", "W[:, fire] = X[:, fire]", "W[:, fire] = W[:, fire]"),)),
    Mutant("alg3-ref-grad-at-new-iterate", "Algorithm 3",
           "on a refresh the reference gradient G is taken at the new iterate while w = the previous one",
           (E(VR, "l_svrdsg", "G[:, fire] = reference(W, tr, jj, ww)", "G[:, fire] = reference(X, tr, jj, ww)"),)),
    Mutant("muD-doubled-base", "sketch constants",
           "μ_D = 2 λ_min(E[SᵀS]) in the Sketch base class (the pool class inherits it: its own check agreed)",
           (E(SK, "Sketch.mu_D", "return float(np.min(self.diag_second_moment()))",
              "return 2.0 * float(np.min(self.diag_second_moment()))"),)),
    Mutant("alg3-ref-weights-1/N", "Algorithm 3", "the minibatch reference G averages with 1/N instead of 1/b",
           (E(VR, "_VRBank._weights", "np.full(J.shape, 1.0 / b)", "np.full(J.shape, 1.0 / self.N)"),)),
    # --- theory steps ----------------------------------------------------------------------------
    Mutant("step-thm2-L_D", "theory step", "Theorem 2 step 1/(L_f L_D) instead of 1/(L_f L_S^max) (too large)",
           (E(TH, "step_dsgd", "_finite_LSmax(L_S_max, \"Algorithm 1 (I)\")",
              "math.sqrt(_finite_LSmax(L_S_max, \"Algorithm 1 (I)\"))"),)),
    Mutant("step-vr-no-6", "theory step", "Theorem 18 step 1/(L_f L_S^max) instead of 1/(6 L_f L_S^max)",
           (E(TH, "step_vr", "6.0 * L_f", "L_f"),)),
    Mutant("step-thm3-no-T", "theory step", "Theorem 3 step 1/(L_f √(L_D L_S^max)): the horizon T left out (too large)",
           (E(TH, "step_theorem3", "L_D * _finite_LSmax(L_S_max, \"Theorem 3\") * T", "L_D * _finite_LSmax(L_S_max, \"Theorem 3\")"),)),
    Mutant("step-thm4-double", "theory step", "Theorem 4 step 2/√(L_f L_D A' T) (twice the largest allowed)",
           (E(TH, "step_theorem4", "return 1.0 / math.sqrt(", "return 2.0 / math.sqrt("),)),
    # --- added after the first measured catalogue: bugs of kinds the first 25 did not cover -----
    Mutant("randk-skewed", "sketch sampler", "Rand-K keys scaled by position: low-index coordinates kept more often",
           (E(SK, "RandK.sample", "keys = rng.random((size, self.d))",
              "keys = rng.random((size, self.d)) * (1.0 + np.arange(self.d) / self.d)"),)),
    Mutant("bernoulli-keep-1-p", "sketch sampler", "Bernoulli keeps c_j with probability 1 − p_j (scaled 1/p_j)",
           (E(SK, "Bernoulli.sample", "keep = rng.random((size, self.d)) < self.p",
              "keep = rng.random((size, self.d)) < 1.0 - self.p"),)),
    Mutant("permk-blocks-overlap", "sketch sampler", "Perm-K: each worker's block from its own permutation (blocks overlap)",
           (E(SK, "PermK.sample_blocks", "r = ranks[:, None, :]",
              "r = np.stack([self._ranks(rng, size) for _ in range(self.M)], axis=1)"),)),
    Mutant("grad-label-sign", "objective gradient", "∇f = −∇(data term) + ∇r: the data gradient's sign lost (b ⊙ … with −b)",
           (E(OBJ, "LogisticObjective.grad", "return self.datafit.grad(X, dtype, threads)",
              "return -self.datafit.grad(X, dtype, threads)"),)),
    Mutant("ridge-mu-no-lambda", "objective μ_f", "ridge μ_f = λ_min(AᵀA)/n: the λ of λ_min(H) left out",
           (E(OBJ, "RidgeL2.mu", "max(float(np.linalg.eigvalsh(G / self.n)[0]), 0.0) + self.lam",
              "max(float(np.linalg.eigvalsh(G / self.n)[0]), 0.0)"),)),
    Mutant("minibatch-with-replacement", "Algorithm 1 (II) uniform",
           "uniform minibatches drawn with replacement (weights 1/τ)",
           (E(ENG, "RowBank._draw", "rows = sample_rows_without_replacement(rng, self.n, tau, CHUNK)",
              "rows = rng.integers(self.n, size=(CHUNK, tau))"),)),
    Mutant("importance-q-squared", "Algorithm 1 (II) importance",
           "importance probabilities q_i ∝ L_i² (weights 1/(n q_i τ) consistent: still unbiased)",
           (E(DSGD, "dsgd", "q = L / L.sum()", "q = L * L / (L * L).sum()"),)),
    Mutant("workers-share-seed", "Algorithm 2", "every worker's sketch generator gets the same seed (S_1 = … = S_M)",
           (E(DIST, "WorkerSketches.sample",
              "return np.stack([sk.sample(rng, size) for sk in self.sketches], axis=1)",
              "return np.stack([sk.sample(np.random.default_rng(s), size) for s in [int(rng.integers(2 ** 62))] "
              "for sk in self.sketches], axis=1)"),)),
    Mutant("alg3-refresh-prob-1/N", "Algorithm 3", "the reference is refreshed with probability 1/N instead of p",
           (E(VR, "_VRBank._refill", "coins = rc.random(CHUNK) < self.p[r]", "coins = rc.random(CHUNK) < 1.0 / self.N"),)),
    Mutant("permk-marginal-scale-M", "sketch sampler",
           "Perm-K's one-worker draw (PermK.sample) scales its block by M instead of d/q_i",
           (E(SK, "PermK.sample", "(self.d / self.q[w])[:, None]", "np.full(size, float(self.M))[:, None]"),)),
    Mutant("gaussian-sigma-squared", "sketch sampler", "Gaussian sketch 1 + σ²ξ instead of 1 + σξ",
           (E(SK, "Gaussian.sample", "1.0 + self.sigma * rng", "1.0 + self.sigma ** 2 * rng"),)),
    Mutant("thm2-contraction-no-muD", "theory bound", "Theorem 2 contraction 1 − γμ_f (μ_D lost: a looser bound)",
           (E(TH, "contraction_dsgd", "1.0 - gamma * mu_f * mu_D", "1.0 - gamma * mu_f"),)),
    Mutant("vr-lyapunov-p-squared", "theory bound", "Theorem 18's Lyapunov term 4γ²/(p²N) instead of 4γ²/(pN) (looser)",
           (E(TH, "vr_lyapunov", "4.0 * gamma ** 2 / (p * N)", "4.0 * gamma ** 2 / (p * p * N)"),)),
    # --- seeding -----------------------------------------------------------------------------------
    Mutant("seeds-identical", "seeding", "every trajectory's streams ignore its seed (all trajectories identical)",
           (E(ENG, "streams", "SeedSequence(int(seed))", "SeedSequence(0)"),)),
)

#: A subset that ``make test`` runs (about a minute): one per kind of check that must fire.
QUICK = ("randk-scale-k-plus-1", "alg1-no-outer-S", "alg2-divide-by-n")


def by_name(name):
    """The :class:`Mutant` called ``name`` (KeyError with the known names otherwise)."""
    for m in MUTANTS:
        if m.name == name:
            return m
    raise KeyError(f"unknown mutant '{name}'; known: {', '.join(m.name for m in MUTANTS)}")
