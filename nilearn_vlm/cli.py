"""Command-line interface: ``nilearn-vlm``.

Subcommands are declared in :data:`SUBCOMMANDS` as ``name -> "module:function"``;
each module has a ``configure(parser)`` function adding its arguments and the
named function running it with the parsed arguments (returns an exit code).
Modules are imported only when their subcommand runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import import_module

from nilearn_vlm._version import __version__

#: name -> (module, help text)
SUBCOMMANDS = {
    "plugins": ("nilearn_vlm.cli", "list installed plugins (adapters, analyses, atlases)"),
    "demo": ("nilearn_vlm.demo", "run the whole path on the embedded default study"),
    "run": ("nilearn_vlm.study._run", "run a study file (TOML): subjects x models, resumable"),
    "analyses": ("nilearn_vlm.analyses.cli", "run the installed analyses on saved results folders"),
    "report": ("nilearn_vlm.report.cli", "rebuild the HTML report of a saved results folder"),
}


def configure(parser):
    """Arguments of ``nilearn-vlm plugins``."""
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args):
    """Run ``nilearn-vlm plugins``."""
    from nilearn_vlm.plugins import failed_plugins, list_plugins

    table = list_plugins()
    failed = failed_plugins()
    if args.json:
        payload = {
            "plugins": table.to_dict(orient="records"),
            "skipped": [
                {"plugin": p, "distribution": d, "reason": r} for p, d, r in failed
            ],
        }
        print(json.dumps(payload, indent=2))
        return 0
    if table.empty:
        print("no nilearn_vlm plugins installed")
    else:
        print(table.to_string(index=False))
    for plugin, dist, reason in failed:
        print(f"skipped: plugin {plugin!r} (distribution {dist!r}) {reason}", file=sys.stderr)
    return 0


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
        mod = import_module(module) if module != __name__ else sys.modules[__name__]
        mod.configure(p)
        p.set_defaults(_module=module)
    return parser


def main(argv=None):
    """Entry point of the ``nilearn-vlm`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    mod = sys.modules[__name__] if args._module == __name__ else import_module(args._module)
    return int(mod.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
