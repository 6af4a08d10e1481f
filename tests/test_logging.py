"""Log schedule (geometric by default), the step-time record and the `time` column."""

import json
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mast_cli.algorithms import dsgd
from mast_cli.algorithms._engine import log_iterations
from mast_cli.cli import cli
from mast_cli.core.sketches import Bernoulli


def test_geometric_schedule_is_benchopts_rule_with_ratio_2():
    # benchopt: stop_val = max(stop_val + 1, int(rho stop_val)) from 1, here rho = 2; plus 0 and T
    assert log_iterations(100, None) == [0, 1, 2, 4, 8, 16, 32, 64, 100]
    assert log_iterations(100, "geometric") == log_iterations(100, None)
    assert log_iterations(64, None)[-3:] == [16, 32, 64]            # T on the schedule: once
    assert log_iterations(0, None) == [0] and log_iterations(1, None) == [0, 1]
    assert log_iterations(10, 4) == [0, 4, 8, 10]                   # an int keeps the old schedule
    assert len(log_iterations(300, None)) == 11 and len(log_iterations(10_000, None)) == 16


def test_times_exclude_metric_evaluation(a1a_obj):
    pause = 0.05

    def slow_metrics(X):
        time.sleep(pause)
        return {"f": a1a_obj.value(X)}

    h = dsgd(a1a_obj, [Bernoulli(a1a_obj.d, 0.5)] * 2, [0.1, 0.1], [0, 1], 20, metrics_fn=slow_metrics,
             log_every="geometric")
    assert list(h.iterations) == log_iterations(20, None)
    assert h.times.shape == h.iterations.shape and h.times[0] == 0.0
    assert np.all(np.diff(h.times) >= 0)
    L = len(h.iterations)
    assert h.metric_time >= pause * L
    # the steps (20 gradients on a1a) take far less than the L sleeps they are interleaved with
    assert h.times[-1] < pause * (L - 1)


def test_record_time_column(tmp_path):
    base = ["run", "-d", "a1a", "--sketch", "bernoulli", "--p", "0.5", "--iters", "30", "--seeds", "2",
            "--eval-sketches", "2", "-q"]
    res = CliRunner().invoke(cli, base + ["-o", str(tmp_path / "a")], prog_name="mast")
    assert res.exit_code == 0, res.output
    plain = pd.read_csv(tmp_path / "a" / "trajectories.csv")
    assert "time" not in plain.columns
    assert sorted(set(plain.iteration)) == log_iterations(30, None)
    res = CliRunner().invoke(cli, base + ["--record-time", "-o", str(tmp_path / "b")], prog_name="mast")
    assert res.exit_code == 0, res.output
    timed = pd.read_csv(tmp_path / "b" / "trajectories.csv")
    assert list(timed.columns).index("time") == list(timed.columns).index("iteration") + 1
    for _, g in timed.groupby("seed"):
        assert g.time.iloc[0] == 0.0 and g.time.is_monotonic_increasing and g.time.iloc[-1] > 0
    # everything but the time column is the untimed run's
    pd.testing.assert_frame_equal(timed.drop(columns="time"), plain)
    # both runs say in metadata.json how the run's time split between steps and metrics
    for sub in ("a", "b"):
        timing = json.loads((tmp_path / sub / "metadata.json").read_text())["timing"]
        assert timing["steps_s"] > 0 and timing["metrics_s"] > 0
        # steps_s and metrics_s are rounded to 1 ms (each off by ≤ 0.5 ms), the share to 1e-4
        total = timing["steps_s"] + timing["metrics_s"]
        assert timing["metric_share"] == pytest.approx(timing["metrics_s"] / total, abs=1e-4 + 1e-3 / total)
    # the step time at the last row is the unit's (one unit here): the summary's step total
    assert timing["steps_s"] == pytest.approx(timed.time.max(), abs=1e-3)
