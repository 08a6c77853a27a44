"""``nilearn-vlm report``: rebuild the HTML report of a saved results folder.

Declared for :mod:`nilearn_vlm.cli` as ``"report": ("nilearn_vlm.report.cli", help)``;
:func:`configure` adds the arguments and :func:`run` runs them.
"""

from __future__ import annotations

from pathlib import Path


def configure(parser):
    """Arguments of ``nilearn-vlm report``."""
    parser.add_argument("results", help="a folder written by Results.save (e.g. by nilearn-vlm run or demo)")
    parser.add_argument("--out", default=None, help="HTML file to write (default: RESULTS/report.html)")
    parser.add_argument("--networks", default=None,
                        help="comma-separated networks of the per-network tables (default: every network of "
                             "the results' atlases)")


def run(args):
    """Run ``nilearn-vlm report``; returns 0, or 2 when the folder or a network is wrong."""
    from nilearn_vlm.report import build_report
    from nilearn_vlm.results import Results

    try:
        results = Results.load(args.results)
        networks = None if args.networks is None else [n.strip() for n in args.networks.split(",") if n.strip()]
        report = build_report(results, networks=networks)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}")
        return 2
    path = report.save(Path(args.results) / "report.html" if args.out is None else args.out)
    print(f"report: {path}")
    return 0
