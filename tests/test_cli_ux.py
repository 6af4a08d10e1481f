"""Issue 18: the command line for a first-hour user (start-up, help, option handling)."""

import json
import subprocess
import sys

from click.testing import CliRunner

from mast_cli.cli import cli


def _py(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_cli_import_is_light():
    """`mast --help` and option errors must not load numpy/scipy/sklearn/pandas/matplotlib."""
    r = _py("import sys, mast_cli.cli\n"
            "heavy = [m for m in ('numpy', 'scipy', 'sklearn', 'pandas', 'matplotlib', 'libsvmdata')"
            " if m in sys.modules]\nprint(','.join(heavy))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


def test_missing_dataset_path_fails_before_heavy_imports(tmp_path):
    """A missing file is refused by the CLI before numpy is imported (fast error, nothing written)."""
    code = ("import sys\nfrom mast_cli.cli import cli\n"
            "try:\n    cli.main(['run', '-d', 'no/such/file.bz2', '--sketch', 'bernoulli', '--p', '0.5',"
            f" '-o', {str(tmp_path / 'o')!r}])\n"
            "except SystemExit as e:\n    print(e.code, 'numpy' in sys.modules)\n")
    r = _py(code)
    assert r.stdout.split() == ["2", "False"], (r.stdout, r.stderr)
    assert "no/such/file.bz2" in r.stderr and r.stderr.startswith("Error:")
    assert not (tmp_path / "o").exists()


def test_bare_mast_prints_help_exit_0():
    r = subprocess.run([sys.executable, "-m", "mast_cli.cli"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert r.stdout.startswith("Usage: mast") and "Commands:" in r.stdout
    assert "Error" not in r.stderr


def test_command_help_lists_every_command():
    res = CliRunner().invoke(cli, ["--help"])
    for name in ("constants", "datasets", "run", "plot", "prune", "reproduce", "verify"):
        assert f"  {name}" in res.output


# --- option combinations that would silently ignore one option ---------------------------

import pytest  # noqa: E402

CONFLICTS = [
    (["--p", "0.9", "--sparsity", "0.5"], ("--p 0.9", "--sparsity 0.5")),
    (["--k", "10", "--sketch", "rand-k", "--sparsity", "0.5"], ("--k 10", "--sparsity 0.5")),
    (["--sparsity", "0.5", "--seeds", "2", "--seed", "5"], ("--seeds 2", "--seed 5")),
    (["--sparsity", "0.5", "--batch-size", "8"], ("--batch-size 8", "--algorithm dsgd")),
    (["--sparsity", "0.5", "--workers", "4"], ("--workers 4", "--algorithm dsgd")),
    (["--sparsity", "0.5", "--sampling", "importance"], ("--sampling importance", "--algorithm dsgd")),
    (["--sparsity", "0.5", "--sketch-pool", "5"], ("--sketch-pool 5", "--algorithm dsgd")),
    (["--sketch", "perm-k", "--workers", "3", "--sparsity", "0.5"], ("--workers 3", "--sparsity 0.5")),
]


@pytest.mark.parametrize("args,names", CONFLICTS)
def test_conflicting_options_are_refused(tmp_path, args, names):
    res = CliRunner().invoke(cli, ["run", "-d", "heart_scale", "-T", "5", "-o", str(tmp_path / "o"), *args])
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and res.output.startswith("Error: ")
    for name in names:
        assert name in res.output
    assert not (tmp_path / "o").exists()


def test_default_sketch_is_shown_and_explained():
    res = CliRunner().invoke(cli, ["run", "--help"])
    assert "[default: bernoulli]" in " ".join(res.output.split())
    assert "--k INTS" in res.output and "--seed INTS" in res.output
    res = CliRunner().invoke(cli, ["run", "-d", "heart_scale"])
    assert res.exit_code == 2
    assert "--sketch bernoulli (the default) needs a level" in res.output and "--sparsity" in res.output


def test_seed_must_be_integer():
    res = CliRunner().invoke(cli, ["run", "-d", "heart_scale", "--sparsity", "0.5", "--seed", "1.5"])
    assert res.exit_code == 2 and "'1.5' is not an integer" in res.output


def test_plot_metric_refused_on_pruning_results(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "pruning.csv").write_text("formulation\n")
    res = CliRunner().invoke(cli, ["plot", str(tmp_path / "p"), "--metric", "test_accuracy",
                                   "-o", str(tmp_path / "plots")])
    assert res.exit_code == 2 and "--metric test_accuracy" in res.output and "pruning results" in res.output
    assert not (tmp_path / "plots").exists()


# --- no silent overwrite ---------------------------------------------------------------

RUN = ["run", "-d", "heart_scale", "--sparsity", "0.5", "-T", "20", "--seeds", "2", "--eval-sketches", "2"]


def test_default_out_is_a_new_folder_per_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r1 = CliRunner().invoke(cli, RUN)
    assert r1.exit_code == 0, r1.output
    made = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert len(made) == 1 and made[0].startswith("run-heart_scale-")
    assert f"results/{made[0]}" in r1.output and "reused 0 of 1 units" in r1.output
    # the same config again: the same folder, its unit reused
    r2 = CliRunner().invoke(cli, RUN + ["-q"])
    assert r2.exit_code == 0 and "reused 1 of 1 units" in r2.output
    assert r2.output.count("\n") == 1                       # --quiet keeps the summary only
    # another config: another folder
    r3 = CliRunner().invoke(cli, RUN[:-6] + ["-T", "30", "--seeds", "2", "--eval-sketches", "2", "-q"])
    assert r3.exit_code == 0, r3.output
    assert len(list((tmp_path / "results").iterdir())) == 2


def test_folder_of_another_config_is_refused_unless_force(tmp_path):
    out = str(tmp_path / "o")
    assert CliRunner().invoke(cli, RUN + ["-o", out, "-q"]).exit_code == 0
    before = (tmp_path / "o" / "trajectories.csv").read_bytes()
    res = CliRunner().invoke(cli, RUN[:-6] + ["-T", "30", "--seeds", "2", "--eval-sketches", "2", "-o", out])
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert "another configuration" in res.output and "iters 20 there, 30 here" in res.output
    assert (tmp_path / "o" / "trajectories.csv").read_bytes() == before
    res = CliRunner().invoke(cli, RUN[:-6] + ["-T", "30", "--seeds", "2", "--eval-sketches", "2", "-o", out,
                                              "--force", "-q"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "trajectories.csv").read_bytes() != before
    # unit size does not change results: not another configuration
    res = CliRunner().invoke(cli, RUN[:-6] + ["-T", "30", "--seeds", "2", "--eval-sketches", "2", "-o", out,
                                              "--unit-size", "1", "-q"])
    assert res.exit_code == 0, res.output


def test_progress_without_terminal_prints_lines(tmp_path):
    res = CliRunner().invoke(cli, RUN + ["-o", str(tmp_path / "o")])
    assert res.exit_code == 0
    lines = [ln for ln in res.output.splitlines() if ln.startswith("mast run: ")]
    assert lines[0].startswith("mast run: 0/") and "(100%)" in lines[-1]


# --- mast datasets: sizes cached per file ----------------------------------------------

def test_datasets_sizes_are_cached_by_size_and_mtime(tmp_path, monkeypatch):
    import os
    import shutil

    import mast_cli.io.data as data

    monkeypatch.setenv("MAST_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(data.bundled_dir() / "heart_scale.bz2", folder / "hs.bz2")
    monkeypatch.setenv("MAST_DATA_DIR", str(folder))
    first = CliRunner().invoke(cli, ["datasets", "--json"])
    assert first.exit_code == 0, first.output
    rows = {r["name"]: r for r in json.loads(first.output)}
    assert rows["hs"]["n"] == 270 and rows["hs"]["d"] == 13
    assert (tmp_path / "cache" / "datasets.json").is_file()
    calls = []
    real = data.load_dataset
    monkeypatch.setattr(data, "load_dataset", lambda name: calls.append(name) or real(name))
    again = CliRunner().invoke(cli, ["datasets", "--json"])
    assert again.output == first.output and calls == []          # nothing parsed again
    # a changed file (other size and mtime) is parsed again
    shutil.copy(data.bundled_dir() / "breast-cancer.bz2", folder / "hs.bz2")
    os.utime(folder / "hs.bz2", ns=(1, 1))
    data._load_cached.cache_clear()
    third = CliRunner().invoke(cli, ["datasets", "--json"])
    rows = {r["name"]: r for r in json.loads(third.output)}
    assert calls == ["hs"] and rows["hs"]["n"] == 683


def test_suite_file_message_names_existing_commands():
    from pathlib import Path

    exp = Path(__file__).resolve().parents[1] / "experiments"
    res = CliRunner().invoke(cli, ["run", "--config", str(exp / "delta_sparsity.toml")])
    assert res.exit_code == 2 and "mast delta" not in res.output
    assert "mast reproduce --only delta_sparsity" in res.output
    res = CliRunner().invoke(cli, ["run", "--config", str(exp / "fig1_pruning_bernoulli.toml")])
    assert res.exit_code == 2 and f"mast prune --config {exp / 'fig1_pruning_bernoulli.toml'}" in res.output


# --- mast verify takes run's sketch options; its table fits a terminal ----------------------

@pytest.fixture
def few_checks(monkeypatch):
    from mast_cli.verify import registry

    keep = ("sketch-mean", "lemma1-iii", "alg2")
    monkeypatch.setattr(registry, "CHECKS", tuple(c for c in registry.CHECKS if c.id in keep))


def _verify(args, out):
    import csv

    res = CliRunner().invoke(cli, ["verify", "-d", "heart_scale", "--quick", "--seeds", "4", *args, "-o", str(out)])
    rows = list(csv.DictReader(open(out / "verify.csv"))) if (out / "verify.csv").exists() else []
    return res, rows


def test_verify_takes_the_sketch_options_of_run(few_checks, tmp_path):
    """--p/--k choose the families and their levels (d = 13: K = 5 is sparsity 8/13); --workers M is
    Perm-K's number of blocks and Algorithm 2's number of workers."""
    res, rows = _verify(["--p", "0.3", "--k", "5"], tmp_path / "a")
    assert res.exit_code == 0, res.output
    levels = {(r["sketch"], round(float(r["sparsity"]), 6)) for r in rows}
    assert levels == {("bernoulli", 0.7), ("rand-k", round(8 / 13, 6))}
    res, rows = _verify(["--sketch", "perm-k", "--workers", "3"], tmp_path / "b")
    assert res.exit_code == 0, res.output
    assert {round(float(r["sparsity"]), 6) for r in rows} == {round(2 / 3, 6)}
    cfg = json.loads((tmp_path / "b" / "verify.json").read_text())["config"]
    assert cfg["workers"] == 3 and "alg2" in {r["check"] for r in rows}


@pytest.mark.parametrize("args, names", [
    (["--p", "0.3", "--sparsity", "0.5"], ("--p 0.3", "--sparsity 0.5")),
    (["--k", "5", "--sketch", "bernoulli"], ("--k 5", "--sketch bernoulli")),
    (["--sketch", "perm-k", "--workers", "3", "--sparsity", "0.5"], ("--workers 3", "--sparsity 0.5")),
    (["--sigma", "0.3", "--sketch", "rand-k"], ("--sigma 0.3", "--sketch rand-k")),
    (["--p", "1.5"], ("--p 1.5",)),
])
def test_verify_refuses_conflicting_sketch_options(args, names, tmp_path):
    res, _ = _verify(args, tmp_path / "o")
    assert res.exit_code == 2 and res.output.startswith("Error:") and res.output.count("\n") == 1
    assert all(n in res.output for n in names), res.output
    assert not (tmp_path / "o").exists()


def test_verify_table_fits_a_terminal(few_checks, tmp_path):
    """Two levels of two families: the printed report stays under 100 columns; the statements are
    in verify.csv."""
    res, rows = _verify(["--sparsity", "0.3,0.7", "-q"], tmp_path / "w")
    assert res.exit_code == 0, res.output
    assert len(rows) >= 8 and all(r["statement"] for r in rows)
    width = max(len(line) for line in res.output.splitlines() if not line.startswith("wrote "))   # paths
    assert width < 100, width
    assert "| verdict" in res.output and "sweep: Δ(sparsity)" in res.output


@pytest.mark.parametrize("args", [["plot", "no/such/folder"], ["reproduce", "--only", "nope"],
                                  ["run", "--config", "nope.toml"], ["prune", "--config", "nope.toml"]])
def test_path_errors_come_before_heavy_imports(args, tmp_path):
    """Mistyped folders, experiment names and config files fail in one line before numpy loads."""
    code = ("import sys\nfrom mast_cli.cli import cli\n"
            f"try:\n    cli.main({args!r})\n"
            "except SystemExit as e:\n    print(e.code, 'numpy' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.stdout.split() == ["2", "False"], (r.stdout, r.stderr)
    assert r.stderr.startswith("Error:") and r.stderr.count("\n") == 1 and args[-1] in r.stderr


def test_datasets_with_a_warm_cache_stays_light(tmp_path):
    """`mast datasets` answers from the size cache without numpy/scipy (well under 1 s)."""
    import os

    env = dict(os.environ, MAST_CACHE_DIR=str(tmp_path / "cache"), MAST_DATA_DIR=str(tmp_path / "none"))
    code = ("import sys\nfrom mast_cli.cli import cli\n"
            "try:\n    cli.main(['datasets', '--json'])\n"
            "except SystemExit as e:\n    print(e.code, 'numpy' in sys.modules, 'scipy' in sys.modules, file=sys.stderr)\n")
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert first.stderr.split() == ["0", "True", "True"]           # the cache is filled by parsing
    assert again.stderr.split() == ["0", "False", "False"], again.stderr
    assert json.loads(again.stdout) == json.loads(first.stdout)
