"""``nilearn-vlm analyses``: run every installed analysis on saved results.

Declared for :mod:`nilearn_vlm.cli` as ``"analyses": ("nilearn_vlm.analyses.cli", help)``;
:func:`configure` adds the arguments and :func:`run` runs them.
"""

from __future__ import annotations

import json
from pathlib import Path

HELP = "run the installed analyses on results folders (Results.save) and write tables and a report"


def configure(parser):
    """Arguments of ``nilearn-vlm analyses``."""
    parser.add_argument("results", nargs="+", help="folders written by Results.save, one per model")
    parser.add_argument("--names", default="all",
                        help="comma-separated analyses to run (default: every installed analysis)")
    parser.add_argument("--params", default=None,
                        help='JSON of parameters per analysis, e.g. \'{"redundancy": {"n_permutations": 500}}\'')
    parser.add_argument("--out", default=None,
                        help="folder for one sub-folder of tables per analysis and report.html")
    parser.add_argument("--json", action="store_true", help="print the summaries as JSON")


def run(args):
    """Run ``nilearn-vlm analyses``; returns 0, or 1 when nothing could run."""
    from nilearn_vlm.analyses import run_analyses
    from nilearn_vlm.report import Report, analysis_sections
    from nilearn_vlm.results import Results

    results = [Results.load(folder) for folder in args.results]
    names = "all" if args.names == "all" else [n.strip() for n in args.names.split(",") if n.strip()]
    params = json.loads(args.params) if args.params else None
    done, skipped = run_analyses(results, names=names, params=params)
    if args.out is not None:
        out = Path(args.out)
        for key, res in done.items():
            res.save(out / "".join(c if c.isalnum() or c in "-_." else "_" for c in key))
        report = Report("nilearn-vlm analyses", subtitle=", ".join(f"{r.model}/{r.subject}" for r in results))
        for section in analysis_sections(done, skipped):
            report.add(section)
        report.save(out / "report.html")
    if args.json:
        print(json.dumps({"done": {k: v.summary() for k, v in done.items()}, "skipped": skipped}, indent=1))
    else:
        for key, res in done.items():
            stats = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in list(res.stats.items())[:6])
            print(f"done     {key}: {stats}")
        for key, reason in skipped.items():
            print(f"skipped  {key}: {reason}")
    return 0 if done else 1
