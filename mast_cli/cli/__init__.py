"""Command-line interface: parse options, call one library function, print or write results.

No mathematics lives here.  The commands are split by group, one module each
(``info``: constants, datasets; ``experiment``: run, prune, reproduce; ``results``: plot;
``check``: verify), and import the library inside their bodies, so that ``mast --help``
and option errors answer without loading numpy, scipy or scikit-learn.  Every user
error is reported as one line ``Error: ...`` with exit code 2 (see :class:`MastGroup`).
"""

from __future__ import annotations

import click

from .. import __version__
from ._common import MastGroup, build_config, progress_factory
from .check import verify
from .experiment import prune, reproduce, run
from .info import constants, datasets
from .results import plot

__all__ = ["main", "cli", "build_config", "progress_factory"]


@click.group(cls=MastGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mast")
def cli():
    """mast: reproduce and check MAST (Model-Agnostic Sparsified Training, arXiv 2311.16086).

    \b
    Typical use:
      mast constants -d a1a --sketch bernoulli --p 0.5
      mast run -d a1a --sketch rand-k --sparsity 0.5,0.9 --iters 500
      mast plot results/run
      mast prune -d a9a --sketch bernoulli --masks 100
      mast verify -d a1a --quick
      mast reproduce --jobs 2
    """


for _cmd in (constants, run, plot, prune, reproduce, verify, datasets):
    cli.add_command(_cmd)


def main():
    """Console-script entry point."""
    cli.main(prog_name="mast")
