"""``nilearn-vlm demo``: the whole path on the embedded default study."""

from __future__ import annotations

from pathlib import Path


def configure(parser):
    """Arguments of ``nilearn-vlm demo``."""
    parser.add_argument("--out", default="nilearn_vlm_demo", help="output folder (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")


def run(args):
    """Run ``nilearn-vlm demo`` (:func:`nilearn_vlm.demo.run_demo`)."""
    from nilearn_vlm.demo import run_demo

    summary = run_demo(args.out, verbose=0 if args.quiet else 1)
    rec = summary["recovery"]
    verdict = "planted truth recovered" if summary.get("passed") else "planted truth NOT recovered"
    print(
        f"{verdict}: network F1 = {rec['network_f1']:.2f}, "
        f"signs = {100 * rec['sign_accuracy']:.1f}% correct ({summary['elapsed_s']:.0f} s)"
    )
    print(f"report: {Path(args.out) / 'report.html'}")
    return 0
