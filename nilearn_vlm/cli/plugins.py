"""``nilearn-vlm plugins``: list the installed plugins."""

from __future__ import annotations

import json
import sys


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
            "skipped": [{"plugin": p, "distribution": d, "reason": r} for p, d, r in failed],
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
