"""Running a study file: every subject x model, resumable, with reports."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from nilearn_vlm.study._config import load_study


def configure(parser):
    """Arguments of ``nilearn-vlm run``."""
    parser.add_argument("study", help="study file (TOML); see nilearn_vlm.study for its keys")
    parser.add_argument("--force", action="store_true", help="recompute results that are already done")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    from nilearn_vlm.parallel import add_compute_arguments

    add_compute_arguments(parser)


def run(args):
    """Run ``nilearn-vlm run``."""
    from nilearn_vlm.study._config import StudyConfigError

    try:
        summary = run_study(args.study, force=args.force, verbose=0 if args.quiet else 1, args=args)
    except StudyConfigError as exc:
        print(f"error: {exc}")
        return 2
    for row in summary["results"]:
        status = "reused" if row["reused"] else "computed"
        print(f"{row['subject']} / {row['model']}: {status} -> {row['folder']}")
    print(f"summary: {summary['path']}")
    return 0


def load_stimuli(config):
    """The study's events table (all runs)."""
    from nilearn_vlm.stimuli import events_from_video, load_events

    stim = config.stimuli
    if "events" in stim:
        events = load_events(stim["events"], stim_dir=stim.get("image_root"))
    else:
        events = events_from_video(stim["video"], stim.get("subtitles"), rate=float(stim.get("rate", 1.0)))
    return events


def _settings_of(config):
    from nilearn_vlm.pipeline import PipelineSettings

    pipe = dict(config.pipeline)
    atlas = pipe.pop("atlas", None)
    fields = {
        "hrf_model": pipe["hrf"], "n_atoms": pipe["n_atoms"], "atom_alpha": pipe["atom_alpha"],
        "glm_alpha": pipe["fdr"], "alphas": pipe["alphas"], "n_permutations": pipe["n_permutations"],
        "seed": pipe["seed"],
    }
    if atlas in ("none", [], ()):
        fields["atlases"] = ()
    elif atlas is not None:
        fields["atlases"] = (atlas,) if isinstance(atlas, str) else tuple(atlas)
    return PipelineSettings(**fields)


def _fingerprint(config, subject, model, events):
    payload = {
        "subject": subject.id, "bold": subject.bold, "mask": subject.mask, "t_r": config.t_r,
        "model": {"name": model.name, "params": model.params, "sites": model.sites, "pooling": model.pooling},
        "pipeline": config.pipeline,
        "events": pd.util.hash_pandas_object(events[["onset", "duration", "run"]], index=False).sum().item(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_study(path, force=False, verbose=1, args=None):
    """Run every subject x model of a study file.

    Results go to ``<output>/sub-<id>/<model label>/`` (a
    :class:`~nilearn_vlm.results.Results` folder with ``report.html``). A
    folder whose ``done.json`` records the same inputs and settings is reused,
    so an interrupted or extended study only computes what is missing. With a
    ``[compute]`` section (or ``--scheduler``), each subject x model pair is
    a task of one Dask graph (see :mod:`nilearn_vlm.parallel`); data paths and
    the output folder must then be on a file system the workers share.

    Parameters
    ----------
    path : str or Path
        The study file (see :mod:`nilearn_vlm.study`).
    force : bool, default=False
        Recompute finished results.
    verbose : int, default=1
    args : argparse.Namespace, optional
        Command-line overrides of the ``[compute]`` section.

    Returns
    -------
    dict
        The summary also written to ``<output>/summary.json``.
    """
    from nilearn_vlm.parallel import compute_options, run_subjects

    config = load_study(path)
    events = load_stimuli(config)
    settings = _settings_of(config)
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    pairs = [(subject, model) for subject in config.subjects for model in config.models]
    options = compute_options(config.compute, args)
    rows = run_subjects(_run_one, pairs, **options, config=config, events=events, settings=settings,
                        out=out, force=force, log=verbose)
    summary = {"study": config.name, "results": list(rows), "path": str(out / "summary.json")}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _run_one(pair, config, events, settings, out, force, log):
    """Fit one subject x model pair, or reuse its finished folder; returns its summary row."""
    from nilearn_vlm.pipeline import fit_subject
    from nilearn_vlm.report import build_report

    subject, model = pair
    folder = out / f"sub-{subject.id}" / model.label
    key = _fingerprint(config, subject, model, events)
    done = folder / "done.json"
    row = {"subject": subject.id, "model": model.label, "folder": str(folder), "reused": False}
    if not force and done.is_file() and json.loads(done.read_text()).get("key") == key:
        if log:
            print(f"[nilearn-vlm] sub-{subject.id} / {model.label}: reusing {folder}", flush=True)
        return {**row, "reused": True}
    if log:
        print(f"[nilearn-vlm] sub-{subject.id} / {model.label}", flush=True)
    results = fit_subject(
        events, subject.bold, config.t_r, mask=subject.mask, model=model.name,
        model_params=model.params, sites=model.sites, pooling=model.pooling, settings=settings,
        memory=str(out / "cache"), subject=subject.id, verbose=log,
    )
    analyses, skipped = _analyses([results], config.analyses)
    results.save(folder)
    build_report(results, analyses=analyses, skipped=skipped).save(folder / "report.html")
    done.write_text(json.dumps({"key": key}))
    return row


def _analyses(results_list, which):
    from nilearn_vlm.analyses import run_analyses

    names = "all" if which == "all" else ([which] if isinstance(which, str) else list(which))
    done, skipped = run_analyses(results_list, names=names)
    return done, {k: str(v) for k, v in skipped.items()}
