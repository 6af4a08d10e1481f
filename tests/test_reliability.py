"""Reliability (issue 9): bad input, divergence, interruption, determinism, concurrency.

Every bad input goes through the CLI and must give one line ``Error: ...`` naming the
value, exit code 2, no traceback and no files in the output folder.
"""

import bz2
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mast_cli.cli import cli

RUN = ["run", "-d", "a1a", "--iters", "20", "--log-every", "10", "--eval-sketches", "2", "-q"]


def _files(tmp_path):
    paths = {
        "empty": tmp_path / "empty.svm",
        "corrupt": tmp_path / "corrupt.bz2",
        "idx0": tmp_path / "idx0.svm",
        "idxneg": tmp_path / "idxneg.svm",
        "idxnan": tmp_path / "idxnan.svm",
        "oneclass": tmp_path / "oneclass.svm",
        "threeclass": tmp_path / "threeclass.svm",
        "nanfeat": tmp_path / "nanfeat.svm",
        "badtoml": tmp_path / "bad.toml",
        "keytoml": tmp_path / "key.toml",
        "afile": tmp_path / "afile.txt",
    }
    paths["empty"].write_text("")
    paths["corrupt"].write_bytes(b"BZh91AY&SY" + b"\x00garbage" * 10)
    paths["idx0"].write_text("1 0:1 2:1\n-1 2:1\n")
    paths["idxneg"].write_text("1 -4:1\n-1 2:1\n")
    paths["idxnan"].write_text("1 abc:1\n-1 2:1\n")
    paths["oneclass"].write_text("1 1:1\n1 2:1\n")
    paths["threeclass"].write_text("1 1:1\n2 2:1\n3 1:1\n")
    paths["nanfeat"].write_text("1 1:nan\n-1 2:1\n")
    paths["badtoml"].write_text("iters = = 3\n")
    paths["keytoml"].write_text("itrs = 3\n")
    paths["afile"].write_text("x")
    return paths


BAD = [
    # (id, args, text that must appear in the message)
    ("p=0", ["--sketch", "bernoulli", "--p", "0"], "p=0"),
    ("p>1", ["--sketch", "bernoulli", "--p", "1.01"], "p=1.01"),
    ("K=0", ["--sketch", "rand-k", "--k", "0"], "K=0"),
    ("K>d", ["--sketch", "rand-k", "--k", "124"], "K=124"),
    ("K non-integer", ["--sketch", "rand-k", "--k", "2.5"], "2.5"),
    ("M<1", ["--sketch", "perm-k", "--workers", "0"], "M=0"),
    ("M>d", ["--sketch", "perm-k", "--workers", "500"], "M=500"),
    ("lambda<0", ["--sketch", "bernoulli", "--p", "0.5", "--lam", "-0.1"], "-0.1"),
    ("gamma=0", ["--sketch", "bernoulli", "--p", "0.5", "--step", "0"], "step 0"),
    ("gamma<0", ["--sketch", "bernoulli", "--p", "0.5", "--step", "-2"], "step -2"),
    ("gamma=inf", ["--sketch", "bernoulli", "--p", "0.5", "--step", "inf"], "step inf"),
    ("gamma=nan", ["--sketch", "bernoulli", "--p", "0.5", "--step", "nan"], "step nan"),
    ("iters<1", ["--sketch", "bernoulli", "--p", "0.5", "--iters", "0"], "iters 0"),
    ("seeds<1", ["--sketch", "bernoulli", "--p", "0.5", "--seeds", "0"], "seeds 0"),
    ("unknown sketch", ["--sketch", "gauss"], "'gauss'"),
    ("unknown algorithm", ["--sketch", "bernoulli", "--p", "0.5", "--algorithm", "sgd"], "'sgd'"),
    ("unknown objective", ["--sketch", "bernoulli", "--p", "0.5", "--objective", "hinge"], "'hinge'"),
    ("unknown sampling", ["--sketch", "bernoulli", "--p", "0.5", "--algorithm", "dsgd-minibatch",
                          "--sampling", "greedy"], "'greedy'"),
    ("unknown dataset offline", ["-d", "a5a", "--sketch", "bernoulli", "--p", "0.5"], "'a5a'"),
    ("unknown dataset name", ["-d", "nosuchdata", "--sketch", "bernoulli", "--p", "0.5"], "'nosuchdata'"),
    ("empty step list", ["--sketch", "bernoulli", "--p", "0.5", "--step", ","], "step []"),
    ("empty sketch list", ["--sketch", ",", "--p", "0.5"], "sketch ','"),
    ("threads=0", ["--sketch", "bernoulli", "--p", "0.5", "--threads", "0"], "threads 0"),
    ("threads not a number", ["--sketch", "bernoulli", "--p", "0.5", "--threads", "two"], "threads two"),
]

FILE_CASES = [
    ("missing path", lambda f: str(f["empty"].parent / "missing.bz2"), "missing.bz2"),
    ("directory", lambda f: str(f["empty"].parent), "directory"),
    ("empty file", lambda f: str(f["empty"]), "no samples"),
    ("corrupt bz2", lambda f: str(f["corrupt"]), "corrupt.bz2"),
    ("index 0", lambda f: str(f["idx0"]), "index 0"),
    ("negative index", lambda f: str(f["idxneg"]), "-4"),
    ("non-numeric index", lambda f: str(f["idxnan"]), "abc"),
    ("one class", lambda f: str(f["oneclass"]), "single class"),
    ("three classes", lambda f: str(f["threeclass"]), "3 classes"),
    ("NaN feature", lambda f: str(f["nanfeat"]), "non-finite"),
]


def _assert_one_line_error(res, needle, out):
    assert res.exit_code == 2, res.output
    lines = res.output.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert needle in lines[0], res.output
    assert "Traceback" not in res.output
    assert not Path(out).exists() or not any(Path(out).iterdir())


OTHER_COMMANDS = [     # (case, argv with OUT for the output folder, needle); found by an adversarial audit
    ("prune: no training rows", ["prune", "-d", "a1a", "--sparsity", "0.5", "--val-fraction", "0.9999",
                                 "-o", "OUT"], "0.9999"),
    ("prune: seed < 0", ["prune", "-d", "a1a", "--seed", "-1", "-o", "OUT"], "-1"),
    ("verify: seed < 0", ["verify", "-d", "a1a", "--quick", "--seed", "-1", "-o", "OUT"], "-1"),
    ("reproduce: too many jobs", ["reproduce", "--jobs", "100000", "--results", "OUT"], "100000"),
    ("reproduce: bad scheduler", ["reproduce", "-d", "a1a", "--only", "fig1_pruning_bernoulli",
                                  "--scheduler", "junk", "--results", "OUT"], "junk"),
    ("run: empty shift file", ["run", "-d", "a1a", "--p", "0.5", "--shift", "EMPTY", "-o", "OUT"], "EMPTY"),
    ("run: string shift file", ["run", "-d", "a1a", "--p", "0.5", "--shift", "STR", "-o", "OUT"], "not real"),
    ("plot: a file, not a folder", ["plot", "EMPTY", "-o", "OUT"], "not a folder"),
    ("plot: corrupt CSV", ["plot", "CORRUPT", "-o", "OUT"], "not a mast results file"),
    ("plot: second folder missing", ["plot", "CORRUPT", "NOPE", "-o", "OUT"], "does not exist"),
    ("plot: --name with a folder", ["plot", "CORRUPT", "--name", "a/b", "-o", "OUT"], "a/b"),
    ("verify: -o is a file", ["verify", "-d", "a1a", "--quick", "-o", "EMPTY"], "not a directory"),
    ("run: -o ''", ["run", "-d", "a1a", "--p", "0.5", "-o", ""], "''"),
    ("reproduce: threads < 1", ["reproduce", "--threads", "-3", "--results", "OUT"], "threads -3"),
    ("prune: threads huge", ["prune", "-d", "a1a", "--threads", "100000", "-o", "OUT"], "threads 100000"),
    ("verify: threads text", ["verify", "-d", "a1a", "--quick", "--threads", "many", "-o", "OUT"], "threads many"),
]


@pytest.mark.parametrize("case, argv, needle", OTHER_COMMANDS, ids=[c[0] for c in OTHER_COMMANDS])
def test_bad_input_other_commands(tmp_path, case, argv, needle):
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    np.save(tmp_path / "str.npy", np.array(["a"] * 123))
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "trajectories.csv").write_bytes(bytes(range(256)) * 8)
    subst = {"OUT": str(tmp_path / "out"), "EMPTY": str(empty), "STR": str(tmp_path / "str.npy"),
             "CORRUPT": str(tmp_path / "corrupt"), "NOPE": str(tmp_path / "nope")}
    argv = [subst.get(a, a) for a in argv]
    needle = subst.get(needle, needle)
    res = CliRunner().invoke(cli, argv)
    _assert_one_line_error(res, needle, tmp_path / "out")


@pytest.mark.parametrize("case, args, needle", BAD, ids=[b[0] for b in BAD])
def test_bad_run_arguments(tmp_path, monkeypatch, case, args, needle):
    monkeypatch.setattr("mast_cli.data._libsvmdata_home", lambda: tmp_path / "no-cache")
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, RUN + args + ["-o", str(out)])
    _assert_one_line_error(res, needle, out)


@pytest.mark.parametrize("case, path, needle", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_bad_dataset_files(tmp_path, case, path, needle):
    files = _files(tmp_path)
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, RUN + ["-d", path(files), "--sketch", "bernoulli", "--p", "0.5",
                                         "-o", str(out)])
    _assert_one_line_error(res, needle, out)


def test_bad_config_and_output(tmp_path):
    files = _files(tmp_path)
    out = tmp_path / "out"
    for cfg, needle in ((files["badtoml"], "not valid TOML"), (files["keytoml"], "unknown key 'itrs'")):
        res = CliRunner().invoke(cli, ["run", "--config", str(cfg), "-o", str(out)])
        _assert_one_line_error(res, needle, out)
    bad_out = files["afile"] / "sub"
    res = CliRunner().invoke(cli, RUN + ["--sketch", "bernoulli", "--p", "0.5", "-o", str(bad_out)])
    _assert_one_line_error(res, "afile.txt", tmp_path / "nothing")
    res = CliRunner().invoke(cli, ["plot", str(tmp_path), "--metric", "accuracy"])
    assert res.exit_code == 2 and res.output.count("\n") == 1


def test_outputs_get_the_umask_mode_not_the_temporary_files_0600(tmp_path):
    """Atomic writes go through mkstemp/mkdtemp (0600/0700); published files and unit folders
    must end up readable as a plain open()/mkdir() under the umask would make them."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        out = tmp_path / "o"
        res = CliRunner().invoke(cli, RUN + ["--sketch", "bernoulli", "--p", "0.5", "-o", str(out), "-q"])
        assert res.exit_code == 0, res.output
        res = CliRunner().invoke(cli, ["plot", str(out), "-o", str(tmp_path / "p")])
        assert res.exit_code == 0, res.output
    finally:
        os.umask(old)
    files = [p for p in list(out.rglob("*")) + list((tmp_path / "p").iterdir())]
    assert any(p.is_dir() for p in files) and any(p.suffix == ".png" for p in files)
    for p in files:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o755 if p.is_dir() else 0o644), (p, oct(mode))


# --- subprocess helpers --------------------------------------------------------------

def mast(args, **kw):
    env = dict(os.environ, MAST_OFFLINE="1", PYTHONWARNINGS="default")
    return subprocess.run([sys.executable, "-m", "mast_cli.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300, **kw)


def start(args):
    env = dict(os.environ, MAST_OFFLINE="1")
    # SIGINT back to its default in the child: a shell's background job inherits SIGINT ignored,
    # and Python then installs no KeyboardInterrupt handler (the test would see a finished run)
    return subprocess.Popen([sys.executable, "-m", "mast_cli.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_divergence_is_quiet_and_isolated(tmp_path):
    res = mast(["run", "-d", "a1a", "--sketch", "bernoulli", "--p", "0.5", "--step", "0.3,1e6",
                "--iters", "200", "--lam", "0.01", "--seeds", "2", "-q", "-o", str(tmp_path / "d")])
    assert res.returncode == 0, res.stderr
    # --quiet keeps only the final summary line (issue 18)
    assert "Warning" not in res.stderr and res.stderr.count("\n") == 1
    assert res.stderr.startswith("wrote ") and "2 diverged trajectories" in res.stderr
    import pandas as pd

    df = pd.read_csv(tmp_path / "d" / "trajectories.csv")
    assert (df[df.step_size == 1e6].status == "diverged").all()
    assert (df[df.step_size == 0.3].status == "ok").all()


LONG_RUN = ["run", "-d", "a9a", "--sketch", "bernoulli", "--sparsity", "0.2,0.5,0.8", "--iters", "150",
            "--seeds", "4", "--unit-size", "2", "--log-every", "30", "--eval-sketches", "2", "-q"]


def _wait_for(pattern, root, proc, count=1, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if len(list(Path(root).glob(pattern))) >= count:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    res = mast(LONG_RUN + ["-o", str(out)])
    assert res.returncode == 0, res.stderr
    return (out / "trajectories.csv").read_bytes()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_run_resumes_to_same_bytes(tmp_path, reference_run, sig):
    out = tmp_path / "run"
    proc = start(LONG_RUN + ["-o", str(out)])
    assert _wait_for(".parts/*/result.csv", out, proc, count=2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    if sig == signal.SIGINT:
        assert "Traceback" not in err and err.count("\n") == 1 and "interrupted" in err
    assert not (out / "trajectories.csv").exists()      # never a partial CSV under the final name
    for p in out.rglob("*.csv"):                       # finished units are complete CSVs
        assert p.read_text().endswith("\n")
    res = mast(LONG_RUN + ["-o", str(out)])
    assert res.returncode == 0, res.stderr
    assert (out / "trajectories.csv").read_bytes() == reference_run


def test_same_command_twice_is_byte_identical(tmp_path, reference_run):
    res = mast(LONG_RUN + ["-o", str(tmp_path / "again")])
    assert res.returncode == 0
    assert (tmp_path / "again" / "trajectories.csv").read_bytes() == reference_run


SUITE = """kind = "run"
caption = "reliability"
[config]
sketch = "rand-k"
sparsity = [0.3, 0.6]
iters = 80
seeds = 3
log_every = 20
eval_sketches = 2
unit_size = 1
"""


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("suite")
    (d / "exp.toml").write_text(SUITE)
    ref = d / "ref"
    res = mast(["reproduce", "-d", "a9a", "--experiments", str(d), "--results", str(ref / "r"),
                "--plots", str(ref / "p"), "-q"])
    assert res.returncode == 0, res.stderr
    return d


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_reproduce_resumes(tmp_path, suite_dir, sig):
    args = ["reproduce", "-d", "a9a", "--experiments", str(suite_dir), "--results", str(tmp_path / "r"),
            "--plots", str(tmp_path / "p"), "-q"]
    proc = start(args)
    assert _wait_for("exp/*/result.csv", tmp_path / "r", proc, count=2)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert not (tmp_path / "r" / "exp" / "trajectories.csv").exists()
    res = mast(args)
    assert res.returncode == 0, res.stderr
    ref = suite_dir / "ref" / "r" / "exp" / "trajectories.csv"
    assert (tmp_path / "r" / "exp" / "trajectories.csv").read_bytes() == ref.read_bytes()


def test_concurrent_reproduce_same_folder(tmp_path, suite_dir):
    args = ["reproduce", "-d", "a9a", "--experiments", str(suite_dir), "--results", str(tmp_path / "r"),
            "--plots", str(tmp_path / "p"), "-q"]
    procs = [start(args) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    ref = suite_dir / "ref" / "r" / "exp" / "trajectories.csv"
    assert (tmp_path / "r" / "exp" / "trajectories.csv").read_bytes() == ref.read_bytes()
    assert len(list((tmp_path / "r" / "exp").glob("*/result.csv"))) == 6
    assert not list((tmp_path / "r" / "exp").glob(".*.tmp"))
