"""Claims report (issue 17): verdicts on synthetic results whose answer is known by construction."""

import numpy as np
import pandas as pd

from mast_cli.experiments.claims import claims_table_markdown, evaluate_claims


def _prune_table(shift):
    """ERM accuracies ~ U(0.5, 0.7) per mask; MAST = ERM + shift (same masks)."""
    rng = np.random.default_rng(0)
    rows = []
    for s in (0.0, 0.5, 0.8, 0.9):
        erm = rng.uniform(0.5, 0.7, 60) if s > 0 else np.full(60, 0.8)
        for form, acc in (("erm", erm), ("mast", np.clip(erm + shift * (s > 0), 0, 1))):
            rows.append(pd.DataFrame({"formulation": form, "selection": "exact", "sparsity": s,
                                      "mask": np.arange(60), "test_accuracy": acc,
                                      "dense_test_accuracy": 0.8, "fD_gap": 0.0}))
    return pd.concat(rows)


def _write(folder, name, table):
    folder.mkdir(parents=True)
    table.to_csv(folder / name, index=False)
    return folder


def test_pruning_and_delta_verdicts(tmp_path):
    better = _write(tmp_path / "b", "pruning.csv", _prune_table(+0.05))
    worse = _write(tmp_path / "w", "pruning.csv", _prune_table(-0.05))
    huge = _write(tmp_path / "h", "pruning.csv", _prune_table(+0.25))
    delta = pd.DataFrame({"sparsity": [0.1, 0.5, 0.9], "delta": [0.3, 0.2, 0.1], "delta_se": [1e-3] * 3})
    shrinking = _write(tmp_path / "d", "delta.csv", delta)
    t = evaluate_claims({"x": {"fig1_pruning_bernoulli": better, "delta_sparsity": shrinking},
                         "y": {"fig3_pruning_randk": worse}, "z": {"fig4_pruning_permk": huge}})
    v = {(r.dataset, r.claim): r for _, r in t.iterrows()}
    a = v[("x", "pruned_mast_beats_erm")]
    assert a.verdict == "holds" and abs(a.effect - 0.05) < 0.02 and a.ci_low > 0
    assert v[("y", "pruned_mast_beats_erm")].verdict == "does not hold"
    # MAST + 0.05 stays below the dense 0.8 (max 0.75): no sparse model beats dense ERM
    assert v[("x", "sparse_mast_beats_dense_erm")].verdict == "does not hold"
    assert v[("z", "sparse_mast_beats_dense_erm")].verdict == "holds"
    assert v[("x", "delta_grows")].verdict == "does not hold" and v[("x", "delta_grows")].effect == -1
    assert "| x |" in claims_table_markdown(t)


def _run_table(cells):
    """Algorithm 2 results: cells[(step, sparsity)] = converges (bool), 3 seeds each."""
    rows = []
    for (g, s), ok in cells.items():
        for seed in range(3):
            rows.append({"step_size": g, "sparsity": s, "seed": seed, "iteration": 0, "erm_loss": 1.0,
                         "status": "ok"})
            rows.append({"step_size": g, "sparsity": s, "seed": seed, "iteration": 10,
                         "erm_loss": 0.1 if ok else 0.9, "status": "ok"})
    return pd.DataFrame(rows)


def test_alg2_step_range_verdicts(tmp_path):
    steps, levels = [0.1, 1.0, 10.0], [0.1, 0.5, 0.9]
    narrowing = {(g, s): (s < 0.9 or g <= 0.1) for g in steps for s in levels}
    same = {(g, s): g <= 1.0 for g in steps for s in levels}
    f1 = _write(tmp_path / "n", "trajectories.csv", _run_table(narrowing))
    f2 = _write(tmp_path / "s", "trajectories.csv", _run_table(same))
    t = evaluate_claims({"n": {"fig2_distributed_bernoulli": f1}, "s": {"fig2_distributed_bernoulli": f2}})
    v = {(r.dataset, r.claim): r for _, r in t.iterrows()}
    assert v[("n", "alg2_wide_steps")].verdict == "holds" and v[("n", "alg2_wide_steps")].effect == 2
    assert v[("n", "alg2_smaller_steps")].verdict == "holds" and v[("n", "alg2_smaller_steps")].effect == 2
    assert v[("s", "alg2_smaller_steps")].verdict == "does not hold"
