"""Cost columns of every algorithm (issue 17): ``epochs`` (passes over the data) and
``coords`` (Σ_t nnz(S_t), summed over workers).  References: the sketches redrawn from
the same streams one chunk at a time and counted with plain NumPy."""

import numpy as np
import pytest

from mast_cli.algorithms import WorkerSketches, distributed_dsgd, dsgd, l_svrdsg, partition_rows
from mast_cli.algorithms._engine import CHUNK, streams
from mast_cli.sketches import Bernoulli, RandK

T = 70                       # not a multiple of CHUNK: the partial last chunk is counted right


def _metrics(X):
    return {"zero": np.zeros(X.shape[1])}


def _drawn_nnz(sketch, seed, iters):
    """Σ_{t<iters} nnz(S_t) of one trajectory's stream (a WorkerSketches: all M workers)."""
    rng = streams(seed)[0]
    chunks = [sketch.sample(rng, CHUNK) for _ in range(-(-iters // CHUNK))]
    return np.cumsum([np.count_nonzero(s) for s in np.concatenate(chunks)[:iters]])


def test_dsgd_exact_costs(tiny):
    sks = [Bernoulli(tiny.d, 0.3), RandK(tiny.d, 2)]
    h = dsgd(tiny, sks, [0.1, 0.1], [3, 4], T, log_every=10, metrics_fn=_metrics)
    assert np.array_equal(h.metrics["epochs"][:, 0], h.iterations)          # one pass per step
    for r, (sk, seed) in enumerate(zip(sks, [3, 4])):
        ref = np.r_[0, _drawn_nnz(sk, seed, T)][h.iterations]
        assert np.array_equal(h.metrics["coords"][:, r], ref)
    assert h.metrics["coords"][-1, 1] == 2 * T                              # Rand-K: exactly K


def test_dsgd_minibatch_epochs(tiny):
    n = tiny.n
    h = dsgd(tiny, [Bernoulli(tiny.d, 0.5)] * 3, [0.01] * 3, [0, 1, 2], T, batch_size=[1, 10, n],
             log_every=7, metrics_fn=_metrics)
    for r, tau in enumerate([1, 10, n]):
        assert np.allclose(h.metrics["epochs"][:, r], h.iterations * tau / n, rtol=1e-12)


def test_distributed_coords_sum_over_workers(tiny):
    M = 3
    parts = partition_rows(tiny.n, M, "random", rng=np.random.default_rng(0))
    sk = Bernoulli(tiny.d, 0.4)
    h = distributed_dsgd(tiny, parts, [WorkerSketches(sk, M)], [0.1], [5], T, log_every=10,
                         metrics_fn=_metrics)
    assert np.array_equal(h.metrics["epochs"][:, 0], h.iterations)
    ref = np.r_[0, _drawn_nnz(WorkerSketches(sk, M), 5, T)][h.iterations]
    assert np.array_equal(h.metrics["coords"][:, 0], ref)
    assert ref[-1] > 1.5 * _drawn_nnz(sk, 5, T)[-1]        # more than one worker's count


@pytest.mark.parametrize("b", [5, 2])
def test_vr_costs(tiny, b):
    pool = RandK(tiny.d, 2).sample(np.random.default_rng(1), 5)
    h = l_svrdsg(tiny, pool, [0.05], [7], T, 0.2, ref_batch=b, log_every=T, metrics_fn=_metrics)
    refreshes = int(h.extra["refreshes"][0])
    assert refreshes > 0
    # b gradients for G_0, two per step, b per refresh; every pooled sketch keeps K = 2
    epochs = b + 2 * T + b * refreshes
    assert h.metrics["epochs"][0, 0] == b and h.metrics["epochs"][-1, 0] == epochs
    assert h.metrics["coords"][-1, 0] == 2 * epochs


def test_plot_cost_axes(tmp_path):
    from mast_cli.experiments import RunConfig, run_experiment
    from mast_cli.plotting import plot_results

    run_experiment(RunConfig(dataset="heart_scale", sparsity=[0.5], iters=20, seeds=1, eval_sketches=2),
                   tmp_path / "r")
    for x in ("epochs", "coords"):
        paths = plot_results([tmp_path / "r"], out=tmp_path / "p", x=x)
        assert any(str(p).endswith(".png") for p in paths)
    from mast_cli.errors import MastError

    with pytest.raises(MastError, match="no 'time' column"):
        plot_results([tmp_path / "r"], out=tmp_path / "p", x="time")
