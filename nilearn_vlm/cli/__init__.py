"""Command-line interface: ``nilearn-vlm``, thin commands over the library.

One module per subcommand (:data:`SUBCOMMANDS`); each has ``configure(parser)``
adding its arguments and ``run(args)`` calling library functions and printing
(returns an exit code). Modules are imported when the parser is built; they
import the library only when their subcommand runs.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from nilearn_vlm._version import __version__

#: name -> (module, help text)
SUBCOMMANDS = {
    "plugins": ("nilearn_vlm.cli.plugins", "list installed plugins (adapters, analyses, atlases)"),
    "demo": ("nilearn_vlm.cli.demo", "run the whole path on the embedded default study"),
    "run": ("nilearn_vlm.cli.run", "run a study file (TOML): subjects x models, resumable"),
    "analyses": ("nilearn_vlm.cli.analyses", "run the installed analyses on saved results folders"),
    "report": ("nilearn_vlm.cli.report", "rebuild the HTML report of a saved results folder"),
    "calibrate": ("nilearn_vlm.cli.calibrate", "false-positive rates of the pipeline's inference on "
                  "your resting-state data (random designs)"),
}


def build_parser():
    """The argument parser of ``nilearn-vlm``."""
    parser = argparse.ArgumentParser(
        prog="nilearn-vlm",
        description="Neuron-level encoding of fMRI with vision-language models.",
    )
    parser.add_argument("--version", action="version", version=f"nilearn-vlm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        import_module(module).configure(p)
        p.set_defaults(_module=module)
    return parser


def main(argv=None):
    """Entry point of the ``nilearn-vlm`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(import_module(args._module).run(args) or 0)
