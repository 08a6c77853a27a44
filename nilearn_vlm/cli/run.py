"""``nilearn-vlm run``: run a study file (every subject x model, resumable)."""

from __future__ import annotations

from pathlib import Path

from nilearn_vlm.parallel import add_compute_arguments


def configure(parser):
    """Arguments of ``nilearn-vlm run``."""
    parser.add_argument("study", help="study file (TOML); its keys: the documentation page 'The study file'")
    parser.add_argument("--force", action="store_true", help="recompute results that are already done")
    parser.add_argument("--quiet", action="store_true", help="print only the summary (sets [study] verbose = 0)")
    parser.add_argument("--dry-run", action="store_true",
                        help="check every key, plugin, stimulus file and run image (headers, TR) and print "
                             "the plan; extract and write nothing")
    add_compute_arguments(parser)


def write_report(results, analyses, skipped, folder):
    """Write ``report.html`` of one result (the ``on_result`` of :func:`~nilearn_vlm.study.run_study`)."""
    from nilearn_vlm.report import build_report

    build_report(results, analyses=analyses, skipped=skipped).save(Path(folder) / "report.html")


def run(args):
    """Run ``nilearn-vlm run``; returns 0, or 2 when the study file is invalid."""
    from nilearn_vlm.study import StudyConfigError, dry_run, run_study

    if args.dry_run:
        try:
            checked = dry_run(args.study)
        except StudyConfigError as exc:
            print(f"error: {exc}")
            return 2
        for line in checked["lines"]:
            print(line)
        print("dry run: every key, plugin and file is valid; nothing was extracted or written")
        return 0

    compute = {"engine": args.engine, "scheduler": args.scheduler, "n_workers": args.n_workers}
    try:
        summary = run_study(args.study, force=args.force, verbose=0 if args.quiet else None, compute=compute,
                            on_result=write_report)
    except StudyConfigError as exc:
        print(f"error: {exc}")
        return 2
    for row in summary["results"]:
        status = "reused" if row["reused"] else "computed"
        if row.get("changed"):
            status += f" (replacing results of other settings or inputs: {'; '.join(row['changed'])})"
        print(f"{row['subject']} / {row['model']}: {status} -> {row['folder']}")
    print(f"summary: {summary['path']}")
    return 0
