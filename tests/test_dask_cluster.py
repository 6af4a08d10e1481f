"""`mast reproduce --scheduler` against a real local dask cluster: a `dask scheduler` and two
`dask worker` processes on 127.0.0.1, started here and torn down after; the CSVs must be
byte-identical to a local run's."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("dask.distributed")
pytestmark = pytest.mark.slow      # ~1-2 min (process start-up): `make verify` runs it

BIN = Path(sys.executable).parent
RUN = """kind = "run"
figure = "Fig. X"
caption = "tiny run"
metric = "erm_loss"
[config]
sketch = "bernoulli"
sparsity = [0.3, 0.7]
iters = 25
seeds = 2
eval_sketches = 2
unit_size = 2
"""
PRUNE = """kind = "prune"
figure = "Fig. 1"
caption = "tiny pruning"
[config]
sketch = "bernoulli"
sparsity = [0.0, 0.5]
masks = 8
iters = 20
"""


def _dask():
    exe = BIN / "dask"
    if not exe.exists():
        exe = shutil.which("dask")
    if exe is None:
        pytest.skip("the dask command is not installed")
    return str(exe)


@pytest.fixture
def cluster(tmp_path):
    """(address, processes): a scheduler and two single-threaded workers, each its own process."""
    dask = _dask()
    sched_file = tmp_path / "scheduler.json"
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False", MAST_OFFLINE="1")
    log = open(tmp_path / "cluster.log", "w")
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], stdout=log, stderr=log, env=env,
                              start_new_session=True)]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sched_file.is_file(), (tmp_path / "cluster.log").read_text()[-2000:]
        import json

        for _ in range(2):
            procs.append(subprocess.Popen([dask, "worker", "--scheduler-file", str(sched_file), "--nthreads", "1",
                                           "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1",
                                           "--local-directory", str(tmp_path / "dask-work")],
                                          stdout=log, stderr=log, env=env, start_new_session=True))
        address = None
        while time.monotonic() < deadline:
            try:
                address = json.loads(sched_file.read_text())["address"]
                break
            except (ValueError, KeyError):
                time.sleep(0.2)
        from dask.distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
            pids = set(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids          # two separate worker processes
        yield address, procs
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        log.close()


def _csvs(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.glob("*/*.csv"))}


def test_reproduce_on_a_local_dask_cluster_is_byte_identical(cluster, tmp_path):
    address, procs = cluster
    exp = tmp_path / "experiments"
    exp.mkdir()
    (exp / "tiny_run.toml").write_text(RUN)
    (exp / "tiny_prune.toml").write_text(PRUNE)
    mast = str(BIN / "mast")
    base = [mast, "reproduce", "-d", "a1a", "--experiments", str(exp), "-q"]
    env = dict(os.environ, MAST_OFFLINE="1")

    def reproduce(tag, *extra):
        r = subprocess.run(base + ["--results", str(tmp_path / f"res-{tag}"), "--plots", str(tmp_path / f"p-{tag}"),
                                   *extra], capture_output=True,
                           text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        return r

    from dask.distributed import Client

    def executed():
        with Client(address, timeout="30s") as client:
            return sorted(client.run(lambda dask_worker: dask_worker.state.executed_count).values())

    reproduce("local")
    before = executed()
    reproduce("cluster", "--scheduler", address)
    after = executed()
    # both worker processes computed units (a run has 4 units, a prune 1)
    assert all(a > b for a, b in zip(after, before)), (before, after)
    local, remote = _csvs(tmp_path / "res-local"), _csvs(tmp_path / "res-cluster")
    assert set(local) == {"tiny_run/trajectories.csv", "tiny_prune/pruning.csv"}
    assert local == remote
    assert all(p.poll() is None for p in procs)                  # the cluster served the run and is alive
