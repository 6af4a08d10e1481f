"""Options of one ``mast verify`` run and their quick/full defaults."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..io.errors import check

__all__ = ["VerifyConfig", "QUICK", "FULL", "sketch_levels"]

QUICK = {"pool": 32, "seeds": 16, "iters": None, "points": 3, "fresh": 64, "batch": 16, "workers": 4}
FULL = {"pool": 128, "seeds": 32, "iters": None, "points": 5, "fresh": 256, "batch": 32, "workers": 4}


@dataclass
class VerifyConfig:
    """Options of one ``mast verify`` run (None = the quick/full default)."""

    dataset: str = "a1a"
    #: λ; None = auto (L_f/λ = 10, see :func:`mast_cli.verify.regime.auto_lambda`)
    lam: float | None = None
    objective: str = "logreg"
    sketches: list = field(default_factory=lambda: ["bernoulli", "rand-k"])
    #: sparsity levels; None = 0.5 for every family without its own parameter below
    sparsity: list | None = field(default_factory=lambda: [0.5])
    #: explicit levels, as ``mast run``'s --p/--k/--sigma: Bernoulli keep probabilities, Rand-K
    #: K values, the Gaussian σ (a plug-in sketch reads the ones it takes)
    p: list | None = None
    k: list | None = None
    sigma: float | None = None
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
    #: ids of the checks to run (None = all of :data:`~mast_cli.verify.registry.CHECKS`)
    checks: list | None = None

    def resolved(self):
        """The config with every None replaced by its quick/full default."""
        base = QUICK if self.quick else FULL
        out = VerifyConfig(**asdict(self))
        for key, val in base.items():
            if getattr(out, key) is None:
                setattr(out, key, val)
        return out

    def validate(self):
        """Raise :class:`~mast_cli.errors.MastError` (one line, naming the value) on bad options."""
        from ..core.objective import OBJECTIVES
        from ..core.sketches import SKETCHES

        check(self.objective in OBJECTIVES,
              f"unknown objective '{self.objective}'; choose one of {', '.join(OBJECTIVES)}")
        check(self.lam is None or (math.isfinite(self.lam) and self.lam >= 0),
              f"--lam {self.lam} must be a finite number >= 0 or auto")
        check(self.objective not in ("logreg", "ridge") or self.lam is None or self.lam > 0,
              "the strongly convex checks need λ > 0 (use --lam > 0)")
        check(len(self.sketches) > 0, "no sketch given")
        for name in self.sketches:
            check(name in SKETCHES, f"unknown sketch '{name}'; choose one of {', '.join(SKETCHES)}")
            check(name != "dropout-unscaled",
                  "sketch 'dropout-unscaled' is biased (E[S] ≠ I): the theory needs Assumption 1")
        for s in self.sparsity or []:
            check(0 <= s < 1, f"sparsity {s:g} must be in [0, 1)")
        for p in self.p or []:
            check(0 < p <= 1, f"--p {p:g} must be in (0, 1]")
        for k in self.k or []:
            check(isinstance(k, int) and k >= 1, f"--k {k} must be an integer >= 1")
        check(self.sigma is None or (math.isfinite(self.sigma) and self.sigma >= 0),
              f"--sigma {self.sigma} must be a finite number >= 0")
        for key in ("pool", "seeds", "iters", "points", "fresh", "batch", "workers"):
            val = getattr(self, key)
            check(val is None or (isinstance(val, int) and val >= 1), f"--{key} {val} must be an integer >= 1")
        check(self.seeds is None or self.seeds >= 2, "--seeds must be >= 2 (a standard error needs two)")
        check(self.pool is None or self.pool >= 2, "--pool must be >= 2")
        check(self.iters is None or self.iters >= 10, "--iters must be >= 10")
        check(self.points is None or self.points >= 3, "points must be >= 3 (x*, x*_D and a random point)")
        check(self.shift in ("zero", "erm"), f"--shift {self.shift} must be zero or erm")
        if self.checks is not None:
            from .registry import check_ids

            known = check_ids()
            for c in self.checks:
                check(c in known, f"unknown check '{c}'; choose from {', '.join(known)}")


def sketch_levels(cfg, d):
    """The sketch distributions of a battery, one per family and level: list of
    ``(sparsity_level, Sketch)``, the level as asked for (Rand-K / Perm-K attain the nearest
    one) or, for an explicit parameter, the sketch's own sparsity.

    A family with its own parameter in ``cfg`` (Bernoulli ``p``, Rand-K ``k``, Gaussian
    ``sigma``, Perm-K ``workers`` = M when given) gets one level per value; a plug-in family gets
    the options it takes when any of ``p``/``k``/``sigma`` is given; every other family one
    level per ``sparsity`` (default 0.5).  ``cfg`` is the config before
    :meth:`VerifyConfig.resolved` (``workers`` None unless given).

    Raises
    ------
    MastError
        When a family cannot be built from the options (e.g. Rand-K with K > d).
    """
    from ..core.sketches import SKETCHES, make_sketch

    sparsity = cfg.sparsity if cfg.sparsity is not None else [0.5]
    p, k, sigma, workers = (getattr(cfg, key, None) for key in ("p", "k", "sigma", "workers"))
    out = []
    for name in cfg.sketches:
        if name == "bernoulli" and p:
            sks = [make_sketch(name, d, p=float(v)) for v in p]
        elif name == "rand-k" and k:
            sks = [make_sketch(name, d, k=int(v)) for v in k]
        elif name == "gaussian" and sigma is not None:
            sks = [make_sketch(name, d, sigma=float(sigma))]
        elif name == "perm-k" and workers is not None:
            sks = [make_sketch(name, d, workers=int(workers))]
        elif name in SKETCHES and SKETCHES.is_plugin(name) and (p or k or sigma is not None):
            sks = [make_sketch(name, d, p=p[0] if p else None, k=k[0] if k else None, sigma=sigma)]
        else:
            out += [(float(s), make_sketch(name, d, sparsity=float(s))) for s in sparsity]
            continue
        out += [(float(sk.sparsity), sk) for sk in sks]
    return out
