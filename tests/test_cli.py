"""CLI behaviour through click's CliRunner (the same entry point as the console script)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.sparse.linalg import svds

from mast_cli.cli import cli
from mast_cli.data import load_libsvm_file
from tests.conftest import shared_file


def invoke(args):
    """Run through MastGroup.main (one-line errors, exit codes) with stderr merged into output."""
    return CliRunner().invoke(cli, args, prog_name="mast")


run_main = invoke


def test_version_and_help():
    res = invoke(["--version"])
    assert res.exit_code == 0 and "mast" in res.output
    for cmd in ([], ["constants"], ["datasets"]):
        res = invoke(cmd + ["--help"])
        assert res.exit_code == 0 and "Usage" in res.output


def test_constants_json_on_a_file_path():
    path = shared_file("australian_scale")
    res = invoke(["constants", "--dataset", str(path), "--sketch", "bernoulli", "--p", "0.5", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    ds = load_libsvm_file(path)
    sigma = svds(ds.X, k=1, return_singular_vectors=False)[0]
    assert out["n"] == ds.n and out["d"] == ds.d == 14
    assert out["L_f"] == pytest.approx(sigma ** 2 / (4 * ds.n) + 1e-3, rel=1e-9)
    assert (out["L_D"], out["mu_D"], out["L_S_max"], out["sparsity"]) == (2.0, 2.0, 4.0, 0.5)
    assert out["L_f"] <= out["L_fD_tight"] <= out["L_f"] * 2
    assert out["grad_norm_at_x_star"] <= 1e-12


@pytest.mark.parametrize("args, needle", [
    (["constants", "--sketch", "bernoulli", "--p", "1.5"], "p=1.5"),
    (["constants", "--sketch", "bernoulli", "--p", "0"], "p=0"),
    (["constants", "--sketch", "rand-k", "--k", "0"], "K=0"),
    (["constants", "--sketch", "rand-k", "--k", "500"], "K=500"),
    (["constants", "--sketch", "perm-k", "--workers", "0"], "M=0"),
    (["constants", "--lam", "-1"], "-1"),
    (["constants", "--sketch", "zebra"], "zebra"),
    (["constants", "--dataset", "no-such-set"], "no-such-set"),
    (["constants", "--dataset", "/nonexistent/file.bz2"], "/nonexistent/file.bz2"),
    (["constants", "--objective", "svm"], "svm"),
    (["constants", "--bogus"], "--bogus"),
])
def test_bad_input_one_line_exit_2(args, needle):
    res = run_main(args)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and needle in lines[0]
    assert "Traceback" not in res.output


@pytest.mark.parametrize("content, needle", [("1 1:1\n1 2:1\n", "single class"),
                                             ("1 1:1\n2 2:1\n3 3:1\n", "3 classes"),
                                             ("garbage", "cannot read")])
def test_bad_files_via_cli(tmp_path, content, needle):
    f = tmp_path / "bad.txt"
    f.write_text(content)
    res = run_main(["constants", "--dataset", str(f)])
    assert res.exit_code == 2 and needle in res.output and len(res.output.strip().splitlines()) == 1


@pytest.mark.parametrize("var, value, needle", [("MAST_THREADS", "garbage", "MAST_THREADS='garbage'"),
                                                 ("MAST_THREADS", "0", "MAST_THREADS='0'"),
                                                 ("MAST_THREADS", "1.5", "MAST_THREADS='1.5'"),
                                                 ("MAST_KERNELS", "nmupy", "MAST_KERNELS='nmupy'")])
def test_bad_kernel_environment_one_line(tmp_path, monkeypatch, var, value, needle):
    """A bad MAST_THREADS / MAST_KERNELS is refused by every command (one line, exit 2,
    nothing written), also by those without --threads that read it on import (constants);
    the kernels' own import warns and uses 1 thread instead of failing."""
    monkeypatch.setenv(var, value)
    for args in (["constants", "-d", "heart_scale", "--sketch", "bernoulli", "--p", "0.5"],
                 ["run", "-d", "heart_scale", "--sparsity", "0.5", "--iters", "3", "--seeds", "1",
                  "-o", str(tmp_path / "out")]):
        res = run_main(args)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error:"), res.output
        assert needle in lines[0] and "Traceback" not in res.output
    assert not (tmp_path / "out").exists()
    res = run_main(["run", "--help"])                     # help answers whatever the environment
    assert res.exit_code == 0 and "--threads" in res.output
    if var == "MAST_THREADS":
        code = "from mast_cli.core import fused; print(fused.threads())"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, var: value})
        assert out.returncode == 0 and out.stdout.split() == ["1"] and value in out.stderr, out.stderr


def test_kernel_environment_accepted(monkeypatch):
    """MAST_THREADS=auto / ' 2 ' / empty and MAST_KERNELS=NumPy are valid (the kernels read
    them as the CLI checks them)."""
    from mast_cli.cli._common import check_environment, usable_cpus
    from mast_cli.core import fused

    for value, k in (("auto", usable_cpus()), (" 2 ", 2), ("", 1)):
        monkeypatch.setenv("MAST_THREADS", value)
        check_environment()
        assert fused._parse_threads(value) == k
    monkeypatch.setenv("MAST_KERNELS", " NumPy ")
    check_environment()


def test_datasets_lists_bundled():
    res = invoke(["datasets", "--json"])
    rows = json.loads(res.output)
    names = {r["name"]: r for r in rows}
    assert names["a1a"]["n"] == 1605 and names["a1a"]["d"] == 123 and names["a1a"]["n_test"] == 30956
    assert names["a1a"]["where"].startswith("bundled")


def test_threads_option_same_bytes_and_recorded(tmp_path, monkeypatch):
    """`--threads` splits the columns over threads: the CSV is byte-identical for 1, 3 and
    auto (⌊usable CPUs / jobs⌋), and metadata.json's timing records the count used."""
    from mast_cli.cli._common import usable_cpus
    from mast_cli.core import fused

    old = fused.threads()
    monkeypatch.delenv("MAST_THREADS", raising=False)
    try:
        outs = {}
        for t in ("1", "3", "auto"):
            out = tmp_path / f"t{t}"
            res = invoke(["run", "-d", "a1a", "--sparsity", "0.3,0.7", "--seeds", "12", "--iters", "20",
                          "--threads", t, "-o", str(out), "-q"])
            assert res.exit_code == 0, res.output
            outs[t] = (out / "trajectories.csv").read_bytes()
            meta = json.loads((out / "metadata.json").read_text())
            assert meta["timing"]["threads"] == (usable_cpus() if t == "auto" else int(t))
        assert outs["1"] == outs["3"] == outs["auto"]
        # R = 24 columns in 3 threads really runs 3 column groups
        assert fused._groups(24, 3) == 3
    finally:
        fused.set_threads(old)


def test_threads_in_a_config_file_is_refused_with_a_hint(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('dataset = "a1a"\nsparsity = [0.5]\nthreads = 2\n')
    res = invoke(["run", "--config", str(cfg), "-o", str(tmp_path / "out")])
    assert res.exit_code == 2
    line = res.output.strip()
    assert "\n" not in line and "unknown key 'threads'" in line and "--threads" in line
    assert not (tmp_path / "out").exists()
