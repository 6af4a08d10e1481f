"""An example mast plug-in: a new sketch and a new objective, registered through entry points.

``uniform``       s_j = 1 + a·u_j with u_j ~ U(−1, 1) i.i.d. and a = √3·σ ≤ 1: E[S] = I
                  (Assumption 1), Var s_j = σ², bounded (L_S^max = (1 + a)²), unlike the
                  Gaussian sketch whose L_S^max is infinite.  Nothing is zeroed.
``logreg-huber``  logistic loss + (λ/2)‖x‖² + λ Σ_j (√(1 + x_j²) − 1): ℓ2 plus a smooth
                  ℓ1-like pseudo-Huber penalty; μ_f = λ, L_r = 2λ.

mast finds both by name once this package is installed (``pip install ./examples/plugin``):
``mast run --sketch uniform --sigma 0.3``, ``mast constants --objective logreg-huber``.
"""

import numpy as np

from mast_cli.core.objective import LogisticObjective
from mast_cli.core.sketches import Sketch
from mast_cli.io.errors import MastError


class UniformSketch(Sketch):
    """Uniform multiplicative noise: s_j = 1 + √3·σ·u_j, u_j ~ U(−1, 1) i.i.d.

    Closed-form moments (independent coordinates, mean 1): E[s sᵀ] = 1 1ᵀ + Diag(σ²), i.e.
    ``moment_c = 1``, ``moment_u = 1`` (the base class defaults) and ``moment_e = σ²``;
    L_D = 1 + σ², μ_D = 1 + σ², L_S^max = (1 + √3σ)².

    Parameters
    ----------
    d : int
        Dimension.
    sigma : float
        Standard deviation σ of every s_j, 0 ≤ σ ≤ 1/√3 (so that s_j ≥ 0).
    """

    name = "uniform"

    def __init__(self, d, sigma):
        super().__init__(d)
        sigma = float(sigma)
        if not 0 <= sigma <= 1 / np.sqrt(3):
            raise MastError(f"sketch 'uniform': σ = {sigma:g} must be in [0, 1/√3 ≈ 0.577]")
        self.sigma = sigma
        self.a = np.sqrt(3.0) * sigma

    @classmethod
    def from_options(cls, d, p=None, k=None, workers=None, sigma=None, sparsity=None):
        """Build from mast's sketch options: ``--sigma σ``, or ``--sparsity s`` mapped to the
        Bernoulli-matched variance σ² = 1/(1 − s) − 1 (as the built-in Gaussian sketch does)."""
        for opt, val in (("p", p), ("k", k), ("workers", workers)):
            if val is not None:
                raise MastError(f"sketch 'uniform' takes --sigma or --sparsity, not --{opt}")
        if sigma is None and sparsity is not None:
            sigma = float(np.sqrt(1.0 / (1.0 - sparsity) - 1.0))
        if sigma is None:
            raise MastError("sketch 'uniform' needs --sigma or --sparsity")
        return cls(d, sigma)

    def sample(self, rng, size):
        """``size`` sketches as an array (size, d) of diagonals."""
        return 1.0 + self.a * rng.uniform(-1.0, 1.0, size=(size, self.d))

    @property
    def moment_e(self):
        return np.full(self.d, self.sigma ** 2)

    @property
    def L_S_max(self):
        return float((1.0 + self.a) ** 2)

    @property
    def sparsity(self):
        return 0.0

    def params(self):
        return {"sketch": self.name, "sigma": self.sigma, "sparsity": self.sparsity}


class PseudoHuberL2:
    """r(x) = (λ/2)‖x‖² + λ Σ_j (√(1 + x_j²) − 1): convex, r'' ∈ [λ, 2λ].

    Every method takes one point x of shape (d,) or points as the columns of X (d, R).
    """

    def __init__(self, lam):
        self.lam = float(lam)

    def value(self, X):
        return self.lam * np.sum(0.5 * X * X + np.sqrt(1.0 + X * X) - 1.0, axis=0)

    def grad(self, X):
        return self.lam * (X + X / np.sqrt(1.0 + X * X))

    def hess_diag(self, X):
        return self.lam * (1.0 + (1.0 + X * X) ** -1.5)

    def smoothness(self):
        return 2.0 * self.lam


class LogisticHuber(LogisticObjective):
    """Logistic loss + :class:`PseudoHuberL2`: μ_f = λ, L_f = λ_max(AᵀA)/(4n) + 2λ."""

    name = "logreg-huber"
    convex = True
    penalty_class = PseudoHuberL2

    @property
    def mu(self):
        return self.lam
