"""Issue 18: the command line for a first-hour user (start-up, help, option handling)."""

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
