"""Running a study file: every subject x model, resumable."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from nilearn_vlm.analyses import run_analyses, save_analyses
from nilearn_vlm.parallel import compute_options, run_subjects
from nilearn_vlm.pipeline import fit_subject
from nilearn_vlm.settings import as_dict
from nilearn_vlm.stimuli import events_from_video, load_events
from nilearn_vlm.study._check import check_data, plan_text
from nilearn_vlm.study._config import StudyConfigError, load_study


def load_stimuli(config):
    """The study's events table (all runs).

    Parameters
    ----------
    config : StudyConfig

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    StudyConfigError
        An events table that does not validate (see
        :func:`nilearn_vlm.stimuli.check_events`: frames and subtitles may
        overlap, two images or two texts may not), or a missing image file.
    """
    stim = config.stimuli
    if stim.events is not None:
        try:
            return load_events(stim.events, stim_dir=stim.image_root, check_images=True)
        except (ValueError, FileNotFoundError) as exc:
            raise StudyConfigError("stimuli.events", str(exc)) from None
    return events_from_video(stim.video, stim.subtitles, rate=float(stim.rate))


def dry_run(path):
    """Validate a study without running it: every key, plugin and file, and the runs' headers.

    What ``nilearn-vlm run --dry-run`` does: :func:`load_study` (keys,
    paths, plugin names), the stimuli (events table and image files, or the
    video), and every run image's header (readable, 4D, one per run of the
    events, its TR against ``[study] t_r``). Nothing is extracted or
    written.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict
        ``config`` (StudyConfig), ``events``, ``plan`` (one row per subject x
        run, :func:`~nilearn_vlm.study.check_data`) and ``lines`` (the plan in
        words).

    Raises
    ------
    StudyConfigError
    """
    config = load_study(path)
    events = load_stimuli(config)
    plan = check_data(config, events)
    return {"config": config, "events": events, "plan": plan, "lines": plan_text(config, events, plan)}


def _events_digest(events):
    """Content hash of the events: timing, runs, texts and images (paths or pixels)."""
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(events[["onset", "duration", "run"]], index=False).to_numpy().tobytes())
    for col in ("image", "text"):
        if col in events:
            for value in events[col]:
                h.update(np.ascontiguousarray(value).tobytes() if isinstance(value, np.ndarray)
                         else repr(value).encode())
    return h.hexdigest()


def fingerprint(config, subject, model, events):
    """The key of one subject x model result: every analysis key of the study, no execution key.

    Built from the schema (:func:`nilearn_vlm.settings.as_dict` with
    ``role="analysis"``), so a key that changes the numbers changes the
    fingerprint, and a name, an output folder, a verbosity or a compute
    setting does not.

    Returns
    -------
    str
    """
    payload = {
        "study": as_dict(config.study, "analysis"),
        "stimuli": as_dict(config.stimuli, "analysis"),
        "subject": as_dict(subject, "analysis"),
        "model": as_dict(model, "analysis"),
        "pipeline": as_dict(config.pipeline, "analysis"),
        "analyses": as_dict(config.analyses, "analysis"),
        "events": _events_digest(events),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_study(path, force=False, verbose=None, compute=None, on_result=None):
    """Run every subject x model of a study file.

    Every key of the study file is validated first (:func:`load_study`), then
    the stimuli and the run images' headers (:func:`dry_run` does only this):
    a run whose header records another TR than ``[study] t_r`` stops the
    study before any extraction, unless ``[study] ignore_header_t_r``.
    Results go to ``<output>/sub-<id>/<model label>/`` (a
    :class:`~nilearn_vlm.results.Results` folder, with the analyses in its
    ``analyses/`` folder, one sub-folder per analysis). A folder whose
    ``done.json`` records the same inputs and analysis settings
    (:func:`fingerprint`) is reused, so an interrupted or extended study only
    computes what is missing. With a ``[compute]`` section (or ``compute=``
    overrides), each subject x model pair is a task of one Dask graph (see
    :mod:`nilearn_vlm.parallel`); data paths and the output folder must then
    be on a file system the workers share.

    Parameters
    ----------
    path : str or Path
        The study file (keys: :func:`nilearn_vlm.settings.study_file_reference`).
    force : bool, default=False
        Recompute finished results.
    verbose : int, optional
        Overrides ``[study] verbose``.
    compute : dict, optional
        Overrides of the ``[compute]`` section: ``engine``, ``scheduler``,
        ``n_workers`` (see :func:`nilearn_vlm.parallel.compute_options`).
    on_result : callable, optional
        ``on_result(results, analyses, skipped, folder)``, called after each
        result is saved (``nilearn-vlm run`` writes the HTML report there);
        importable (picklable) when the engine is Dask.

    Returns
    -------
    dict
        The summary also written to ``<output>/summary.json``.
    """
    config = load_study(path)
    events = load_stimuli(config)
    check_data(config, events)
    log = config.study.verbose if verbose is None else verbose
    out = config.output
    out.mkdir(parents=True, exist_ok=True)
    pairs = [(subject, model) for subject in config.subjects for model in config.models]
    table = {k: v for k, v in as_dict(config.compute).items() if v is not None}
    options = compute_options(table, compute)
    rows = run_subjects(_run_one, pairs, **options, config=config, events=events, out=out, force=force,
                        log=log, on_result=on_result)
    summary = {"study": config.name, "results": list(rows), "path": str(out / "summary.json")}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _run_one(pair, config, events, out, force, log, on_result):
    """Fit one subject x model pair, or reuse its finished folder; returns its summary row."""
    subject, model = pair
    folder = out / f"sub-{subject.id}" / model.label
    key = fingerprint(config, subject, model, events)
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
        model_params=model.params, sites=model.sites, pooling=model.pooling, settings=config.pipeline,
        memory=str(out / "cache"), subject=subject.id, verbose=log,
    )
    which = config.analyses.run
    analyses, skipped = run_analyses([results], names="all" if which == "all" else list(which))
    skipped = {k: str(v) for k, v in skipped.items()}
    results.save(folder)
    if (folder / "analyses").is_dir():
        shutil.rmtree(folder / "analyses")  # those of an earlier run with other analyses
    save_analyses(analyses, folder / "analyses", skipped=skipped)
    if on_result is not None:
        on_result(results, analyses, skipped, folder)
    done.write_text(json.dumps({"key": key}))
    return row
