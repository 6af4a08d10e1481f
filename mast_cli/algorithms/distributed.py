"""Algorithm 2: Distributed Double Sketched GD (mast-theory §1.3, §2.3, §4).

The rows of the data are split among M workers, P_1 ∪ … ∪ P_M = [n].  Worker i owns

    f_i(x) = (M/n) Σ_{j∈P_i} φ_j(x) + r(x),      φ_j(x) = log(1 + exp(−b_j a_jᵀx)),

so that (1/M) Σ_i f_i = f exactly, for any partition sizes (the spec's "ERM loss
(1/M)Σ_i f_i" of §1.3; with equal sizes f_i is the plain mean over the worker's
rows).  Each round [RECON, §4 Algorithm 2]:

    server samples S_1..S_M (S_i ~ D_i; independent per worker, or one shared
        permutation for Perm-K) and sends y_i = v + S_i(x − v) to worker i,
    worker i returns h_i = S_iᵀ ∇f_i(y_i),
    server steps x⁺ = x − γ (1/M) Σ_i h_i.

The iterates minimize, in expectation, the distributed MAST loss ``eq:fin_sketch_sum``
F(x) = (1/M) Σ_i E_{S_i~D_i} f_i(v + S_i(x − v)); with S_i ≡ I, F = f (Fig. 2 plots the
ERM loss f of the iterates).

Vectorization
-------------
All workers and all R trajectories advance in one step without a Python loop over
workers or trajectories.  The rows are permuted so that each worker's rows are
contiguous, and worker i's rows are moved to the column block [i·d, (i+1)·d) of a
block-diagonal matrix

    B = blockdiag(Ab_{P_1}, …, Ab_{P_M})      (n × M·d, nnz(B) = nnz(A)),

built once.  The M·R sparse models Y_i (columns of each worker stacked as the
(M·d, R) array [Y_1; …; Y_M]) give every row's margin against *its own* worker's
model with one product Z = B·Y (n × R), and the workers' data gradients with one
transposed product Bᵀ·σ'(Z) (M·d × R).  A step therefore costs one pass over the
nonzeros of A forward and one backward, as for Algorithm 1 — not M passes — plus
O(M·d·R) dense work for the sketches.  Every reduction is per column, so a
trajectory's numbers do not depend on the batch it runs in.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import scipy.sparse as sp

from ..core import fused
from ..core.kernels import col_mean, spectral_norm_sq
from ..core.sketches import MAX_ENUMERATION, PermK, RandK, Sketch
from ..io.errors import MastError, check
from ._engine import SketchBank, as_columns, run_steps, streams

__all__ = [
    "SPLITS",
    "partition_rows",
    "WorkerSplit",
    "WorkerSketches",
    "distributed_dsgd",
]

#: Row partitions understood by :func:`partition_rows`.
SPLITS = ("random", "label-sorted")


def partition_rows(n, M, split="random", y=None, rng=None):
    """Split the rows [n] among M workers (deterministic given ``rng``).

    Parameters
    ----------
    n : int
        Number of rows.
    M : int
        Number of workers, 1 ≤ M ≤ n.
    split : {'random', 'label-sorted'}, default='random'
        ``random``: a uniform random permutation cut into M parts (IID workers).
        ``label-sorted``: rows ordered by label (random order within a label) and cut
        into M consecutive parts, so most workers see one class only (heterogeneous
        f_i) [RECON, mast-theory §6.1 suggestion].
    y : ndarray (n,), optional
        Labels; required by ``label-sorted``.
    rng : numpy.random.Generator, optional
        Defaults to ``default_rng(0)``.

    Returns
    -------
    list of M int arrays
        Worker i's rows in increasing order; sizes ⌊n/M⌋ or ⌈n/M⌉.
    """
    if isinstance(M, bool) or not float(M).is_integer():
        raise MastError(f"workers M={M} must be an integer")
    M = int(M)
    check(M >= 1, f"workers M={M} must be >= 1")
    check(M <= n, f"workers M={M} must be <= n={n} (every worker needs a row)")
    rng = np.random.default_rng(0) if rng is None else rng
    perm = rng.permutation(n)
    if split == "label-sorted":
        if y is None or len(y) != n:
            raise MastError("split 'label-sorted' needs the n labels")
        perm = perm[np.argsort(np.asarray(y)[perm], kind="stable")]
    elif split != "random":
        raise MastError(f"unknown split '{split}'; choose one of {', '.join(SPLITS)}")
    return [np.sort(p) for p in np.array_split(perm, M)]


class WorkerSplit:
    """The M local objectives f_i of an objective and a row partition.

    Holds the block-diagonal matrix B (see the module docstring) and evaluates the
    aggregated sketched gradient (1/M) Σ_i S_i ∇f_i(v + S_i(x − v)) and the sketched
    loss (1/M) Σ_i f_i(v + S_i(x − v)) for many columns at once.

    Parameters
    ----------
    obj : objective
        :class:`~mast_cli.core.objective.LogisticL2` or ``LogisticNonconvex``.
    partition : list of int arrays
        Disjoint row sets covering [n] (e.g. from :func:`partition_rows`), all non-empty.
    """

    def __init__(self, obj, partition):
        n, d = obj.n, obj.d
        parts = [np.asarray(p, dtype=np.int64).ravel() for p in partition]
        M = len(parts)
        check(M >= 1, "the partition needs at least one worker")
        check(all(p.size for p in parts), "every worker needs at least one row")
        order = np.concatenate(parts)
        check(order.size == n and np.array_equal(np.sort(order), np.arange(n)),
              f"the partition must cover the n={n} rows exactly once")
        self.obj, self.M, self.n, self.d = obj, M, n, d
        self.partition = parts
        self.sizes = np.array([p.size for p in parts])
        Ab = obj.Ab[order]                       # rows of worker 0, then worker 1, ...
        worker_of_row = np.repeat(np.arange(M), self.sizes)
        shift = d * np.repeat(worker_of_row, np.diff(Ab.indptr))
        self._B = sp.csr_matrix((Ab.data, Ab.indices + shift, Ab.indptr), shape=(n, M * d))
        self._BT = self._B.T                      # CSC view: scatters into the (M·d, R) output
        self._L_local = None

    def _models(self, X, V, S):
        """Y_i = v + S_i(x − v) for every worker: (M, d, K) from X, V (d, K) and S (M, d, K)."""
        return V[None] + S * (X - V)[None]

    def sketched_grad(self, X, V, S):
        """(1/M) Σ_i S_i ∇f_i(v + S_i(x − v)) for every column: ndarray (d, K).

        X, V : (d, K); S : (M, d, K) (worker i's diagonal of column k at ``S[i, :, k]``).
        """
        M, d = self.M, self.d
        K = X.shape[1]
        Y = self._models(X, V, S)
        if fused.ENABLED and self.obj.datafit.fused_ok:         # one fused pass over B
            Gd = -fused.logistic_grad(self._B, Y.reshape(M * d, K)).reshape(M, d, K)
        else:
            Z = self._B @ Y.reshape(M * d, K)                   # each row against its worker
            Gd = (self._BT @ self.obj.datafit.dloss(Z)).reshape(M, d, K)  # Σ_{j∈P_i} ∇φ_j(y_i)
        H = S * ((Gd / self.n) * M + self.obj.penalty.grad(Y))     # h_i = S_i ∇f_i(y_i)
        return np.add.reduce(H, axis=0) / M

    def sketched_value(self, X, V, S):
        """(1/M) Σ_i f_i(v + S_i(x − v)) for every column: ndarray (K,).

        Equals (1/n) Σ_j φ_j(y_{w(j)}) + (1/M) Σ_i r(y_i), w(j) the worker of row j.
        """
        M, d = self.M, self.d
        K = X.shape[1]
        Y = self._models(X, V, S)
        if fused.ENABLED and self.obj.datafit.fused_ok:
            data = fused.logistic_value(self._B, Y.reshape(M * d, K)) / self.n
        else:
            data = col_mean(self.obj.datafit.loss(self._B @ Y.reshape(M * d, K)))
        pen = self.obj.penalty.value(np.ascontiguousarray(Y.transpose(1, 0, 2)).reshape(d, M * K))
        return data + np.add.reduce(pen.reshape(M, K), axis=0) / M

    def mast_loss(self, X, V, S_eval):
        """Monte Carlo F(x) over fixed joint draws: (1/N) Σ_m (1/M) Σ_i f_i(v + S_i^m(x − v)).

        X, V : (d, R); S_eval : (N, M, d, R) (e.g. the same N draws at every iteration:
        common random numbers).  Returns (R,).
        """
        N, M, d, R = S_eval.shape
        Xt = np.broadcast_to(X[:, None, :], (d, N, R)).reshape(d, N * R)
        Vt = np.broadcast_to(V[:, None, :], (d, N, R)).reshape(d, N * R)
        S = np.ascontiguousarray(S_eval.transpose(1, 2, 0, 3)).reshape(M, d, N * R)
        vals = self.sketched_value(Xt, Vt, S).reshape(N, R)
        return col_mean(vals)

    def local_smoothness(self):
        """L_{f_i} = M λ_max(A_iᵀA_i)/(4n) + L_r for each worker (mast-theory §3.2, §5)."""
        if self._L_local is None:
            L_r = self.obj.penalty.smoothness()
            self._L_local = np.array([
                self.M * self.obj.datafit.curvature_bound * spectral_norm_sq(self.obj.A[p]) / self.n + L_r
                for p in self.partition
            ])
        return self._L_local

    def local_objectives(self):
        """(weight_i, obj_i) with f_i = weight_i·(mean logistic term on P_i) + r.

        ``obj_i = obj.with_rows(P_i)`` and weight_i = M n_i / n (1 for equal sizes).
        """
        return [(self.M * p.size / self.n, self.obj.with_rows(p)) for p in self.partition]


class WorkerSketches:
    """The joint law of (S_1, …, S_M) of one trajectory of Algorithm 2.

    Either M independent sketches (one distribution D_i per worker, possibly
    different: heterogeneous D_i) or one :class:`~mast_cli.core.sketches.PermK`, whose
    M blocks come from one shared permutation (disjoint supports; worker i's
    marginal is Rand-q_i).

    Parameters
    ----------
    spec : Sketch, PermK or sequence of M Sketch
        A single non-Perm-K sketch is used independently by every worker.
    M : int
        Number of workers.
    """

    def __init__(self, spec, M):
        self.M = int(M)
        if isinstance(spec, PermK):
            check(spec.M == self.M, f"perm-k has M={spec.M} blocks but there are {self.M} workers")
            self.joint, self.sketches = spec, None
        elif isinstance(spec, Sketch):
            self.joint, self.sketches = None, [spec] * self.M
        else:
            spec = list(spec)
            check(len(spec) == self.M, f"{len(spec)} worker sketches given for M={self.M} workers")
            check(all(isinstance(s, Sketch) and not isinstance(s, PermK) for s in spec),
                  "per-worker sketches must be non-Perm-K sketches (Perm-K is joint)")
            check(len({s.d for s in spec}) == 1, "worker sketches have different dimensions")
            self.joint, self.sketches = None, spec
        self.d = (self.joint or self.sketches[0]).d

    def sample(self, rng, size):
        """``size`` joint draws: array (size, M, d), worker i's diagonal at ``[:, i]``.

        Independent workers draw in worker order from the same stream.
        """
        if self.joint is not None:
            return self.joint.sample_blocks(rng, size)
        return np.stack([sk.sample(rng, size) for sk in self.sketches], axis=1)

    def marginals(self):
        """Worker i's sketch distribution D_i (Perm-K: Rand-q_i)."""
        if self.joint is not None:
            return [RandK(self.d, int(q)) for q in self.joint.q]
        return list(self.sketches)

    @property
    def L_S_max(self):
        """L_{S_i}^max of each worker (array (M,))."""
        if self.joint is not None:
            return (self.d / self.joint.q.astype(np.float64)) ** 2
        return np.array([sk.L_S_max for sk in self.sketches], dtype=np.float64)

    def enumerate(self):
        """All joint draws with probabilities: ``(S (m, M, d), w (m,))`` (tiny d only).

        Independent workers: the product of the marginals' supports.  Perm-K: every
        assignment of the coordinates to the M blocks (d!/Π q_i! of them).
        """
        if self.joint is not None:
            d, off = self.d, self.joint.offsets
            check(math.factorial(d) <= MAX_ENUMERATION, f"perm-k with d={d} is too large to enumerate")
            scale = d / self.joint.q.astype(np.float64)
            probs = {}
            for ranks in itertools.permutations(range(d)):
                owner = np.searchsorted(off[1:], np.array(ranks), side="right")
                key = owner.tobytes()
                probs[key] = probs.get(key, 0) + 1
            S, w = [], []
            for key, cnt in probs.items():
                owner = np.frombuffer(key, dtype=np.int64)
                S.append((owner[None, :] == np.arange(self.M)[:, None]) * scale[:, None])
                w.append(cnt / math.factorial(d))
            return np.array(S), np.array(w)
        sets = [sk.enumerate() for sk in self.sketches]
        check(math.prod(len(s[1]) for s in sets) <= MAX_ENUMERATION,
              "the joint support of the worker sketches is too large to enumerate")
        S, w = [], []
        for combo in itertools.product(*[range(len(s[1])) for s in sets]):
            S.append(np.stack([sets[i][0][k] for i, k in enumerate(combo)]))
            w.append(math.prod(sets[i][1][k] for i, k in enumerate(combo)))
        return np.array(S), np.array(w)

    def params(self):
        """Parameters as a plain dict (for metadata)."""
        if self.joint is not None:
            return self.joint.params()
        return {"sketch": self.sketches[0].name, "workers": [sk.params() for sk in self.sketches]}

    def __repr__(self):
        return f"WorkerSketches(M={self.M}, {self.params()})"


def distributed_dsgd(obj, partition, worker_sketches, steps, seeds, iters, x0=None, v=None, *,
                     log_every=1, metrics_fn=None, progress=None):
    """Run Algorithm 2 (Distributed Double Sketched GD) on R trajectories at once.

    x_{t+1} = x_t − γ (1/M) Σ_i S_{i,t}ᵀ ∇f_i(v + S_{i,t}(x_t − v))  [RECON, mast-theory §4].

    Parameters
    ----------
    obj : objective
    partition : list of M int arrays or WorkerSplit
        The workers' rows (shared by all trajectories; see :func:`partition_rows`).
    worker_sketches : list, length R
        Per trajectory the joint sketch law: a :class:`WorkerSketches`, a ``PermK``
        with M blocks (shared permutation), a single sketch (used independently by
        every worker) or a sequence of M sketches (heterogeneous D_i).
    steps : array-like (R,)
        Step size γ of each trajectory.
    seeds : array-like of int (R,)
        Seed of each trajectory; its sketches come from ``streams(seed)[0]``.
    iters : int
        Number of rounds T.
    x0, v : ndarray (d,) or (d, R), optional
        Initial point and shift; zeros by default, and x0 defaults to v.
    log_every : int or "geometric"
        Log metrics every this many steps, or on the geometric schedule of
        :func:`~mast_cli.algorithms._engine.log_iterations` (always at 0 and T).
    metrics_fn : callable X -> dict of (R,) arrays, optional
    progress : callable int -> None, optional

    Returns
    -------
    History
        ``extra['split']`` is the :class:`WorkerSplit` used.

    Notes
    -----
    With S_i ≡ I this is gradient descent on f; with Perm-K (M | d) and v = 0 it is
    exactly IST, x⁺ = (1/M) Σ_i [S_i x − γ S_i ∇f_i(S_i x)] (mast-theory §2.3).
    """
    split = partition if isinstance(partition, WorkerSplit) else WorkerSplit(obj, partition)
    R = len(worker_sketches)
    d = obj.d
    joint = [ws if isinstance(ws, WorkerSketches) else WorkerSketches(ws, split.M)
             for ws in worker_sketches]
    check(all(ws.M == split.M and ws.d == d for ws in joint),
          f"every trajectory needs M={split.M} worker sketches of dimension d={d}")
    V = np.zeros((d, R)) if v is None else as_columns(v, d, R)
    X = V.copy() if x0 is None else as_columns(x0, d, R)
    gam = np.asarray(steps, dtype=np.float64).reshape(R)
    bank = SketchBank(joint, [streams(s)[0] for s in np.asarray(seeds).reshape(R)])
    def step(X, t, alive):
        S = bank.next()                                  # (M, d, R)
        X -= (gam * alive) * split.sketched_grad(X, V, S)
        return 1.0, bank.nnz                             # M workers: n rows, Σ_i nnz(S_i)

    return run_steps(step, X, iters, log_every, metrics_fn, progress, lambda: {"split": split}, costs=True)
