"""Running a study file: every subject x model, resumable."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pandas as pd

from nilearn_vlm._provenance import FileDigests, distribution_of, package_versions
from nilearn_vlm._store import (
    FolderEntry,
    atomic_write_json,
    check_component,
    check_inside,
    make_dirs,
)
from nilearn_vlm.analyses import run_analyses, save_analyses
from nilearn_vlm.parallel import compute_options, run_subjects
from nilearn_vlm.pipeline import fit_subject
from nilearn_vlm.plugins import get_adapter
from nilearn_vlm.settings import as_dict
from nilearn_vlm.stimuli import events_from_video, hash_stimulus, load_events
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


def _events_digest(events, digests):
    """Content hash of the events: timing, runs, and every stimulus cell (image contents, texts)."""
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(events[["onset", "duration", "run"]], index=False).to_numpy().tobytes())
    n = len(events)
    images = events["image"] if "image" in events else [None] * n
    texts = events["text"] if "text" in events else [None] * n
    for image, text in zip(images, texts):
        h.update(hash_stimulus(image, text, digests=digests).encode())
    return "sha256:" + h.hexdigest()


def _paths_in(value):
    """Existing files or folders named by the strings of a (nested) model parameter value."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in _paths_in(v)]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _paths_in(v)]
    if isinstance(value, (str, os.PathLike)) and str(value) and os.path.exists(value):
        return [str(value)]
    return []


def fingerprint_parts(config, subject, model, events, digests=None):
    """What one subject x model result depends on, part by part (a flat dict).

    - ``settings.<section>.<key>``: every analysis key of the study
      (:func:`nilearn_vlm.settings.as_dict` with ``role="analysis"``), so a
      name, an output folder, a verbosity or a compute setting is not part;
    - ``events``: the content of the events (timing, runs, every stimulus
      cell: image file contents, arrays, texts);
    - ``files.<what>``: the content digests of the BOLD runs, the mask and
      the files or folders named by the model's parameters (checkpoints,
      weight folders);
    - ``versions.<distribution>``: the packages that compute it: the core,
      the adapter's plugin, torch, transformers and open_clip.

    File contents are read only when their stat changed
    (:class:`nilearn_vlm._provenance.FileDigests` with ``digests``).

    Returns
    -------
    dict
    """
    digests = FileDigests() if digests is None else digests
    flat = {}
    for section, obj in (("study", config.study), ("stimuli", config.stimuli), ("subject", subject),
                         ("model", model), ("pipeline", config.pipeline), ("analyses", config.analyses)):
        for key, value in as_dict(obj, "analysis").items():
            flat[f"settings.{section}.{key}"] = json.loads(json.dumps(value, default=str))
    flat["events"] = _events_digest(events, digests)
    files = {f"bold[{i}]": b for i, b in enumerate(subject.bold)}
    if subject.mask is not None:
        files["mask"] = subject.mask
    for i, path in enumerate(_paths_in(model.params)):
        files[f"model.params[{i}]"] = path
    for what, path in files.items():
        flat[f"files.{what}"] = digests(path) if os.path.exists(path) else "missing"
    try:
        adapter = distribution_of(get_adapter(model.name))
    except LookupError:
        adapter = None
    names = ["nilearn-vlm"] + ([adapter] if adapter else []) + ["torch", "transformers", "open_clip_torch"]
    for name, version in package_versions(names).items():
        flat[f"versions.{name}"] = version
    return flat


def changes(before, after):
    """What differs between two :func:`fingerprint_parts`, in words (one line per part)."""
    out = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key, "absent"), after.get(key, "absent")
        if old == new:
            continue
        if key == "events" or key.startswith("files."):
            out.append(f"{key}: content changed")
        else:
            out.append(f"{key}: {json.dumps(old, default=str)} -> {json.dumps(new, default=str)}")
    return out


def fingerprint(config, subject, model, events, digests=None):
    """The key of one subject x model result: a hash of :func:`fingerprint_parts`.

    Built from the schema (analysis keys only), the contents of the inputs
    and the versions of the packages that compute the result: a key that
    changes the numbers, new data at the same path, an edited caption or a
    new checkpoint changes the fingerprint, and a name, an output folder, a
    verbosity or a compute setting does not.

    Returns
    -------
    str
    """
    parts = fingerprint_parts(config, subject, model, events, digests)
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_study(path, force=False, verbose=None, compute=None, on_result=None):
    """Run every subject x model of a study file.

    Every key of the study file is validated first (:func:`load_study`), then
    the stimuli and the run images' headers (:func:`dry_run` does only this):
    a run whose header records another TR than ``[study] t_r`` stops the
    study before any extraction, unless ``[study] ignore_header_t_r``.
    Results go to ``<output>/sub-<id>/<model label>/`` (a
    :class:`~nilearn_vlm.results.Results` folder, with the analyses in its
    ``analyses/`` folder, one sub-folder per analysis). A folder whose
    ``done.json`` records the same analysis settings, input contents and
    package versions (:func:`fingerprint_parts`) and whose files match
    their checksums is reused, so an interrupted or extended study only
    computes what is missing; a folder of other settings or inputs is
    replaced, with a message naming what changed (the summary row's
    ``changed``). Folders are written whole (staged, then renamed), and two
    processes computing the same result wait for each other (see the
    documentation page "The store"). With a ``[compute]`` section (or ``compute=``
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
        result is saved, with the staging folder that becomes the result's
        folder once complete (``nilearn-vlm run`` writes the HTML report
        there); importable (picklable) when the engine is Dask.

    Returns
    -------
    dict
        The summary also written to ``<output>/summary.json``.
    """
    config = load_study(path)
    events = load_stimuli(config)
    check_data(config, events)
    log = config.study.verbose if verbose is None else verbose
    out = make_dirs(config.output)
    pairs = [(subject, model) for subject in config.subjects for model in config.models]
    table = {k: v for k, v in as_dict(config.compute).items() if v is not None}
    options = compute_options(table, compute)
    rows = run_subjects(_run_one, pairs, **options, config=config, events=events, out=out, force=force,
                        log=log, on_result=on_result)
    summary = {"study": config.name, "results": list(rows), "path": str(out / "summary.json")}
    atomic_write_json(out / "summary.json", summary)
    return summary


def _say(log, msg):
    if log:
        print(f"[nilearn-vlm] {msg}", flush=True)


def _run_one(pair, config, events, out, force, log, on_result):
    """Fit one subject x model pair, or reuse its finished folder; returns its summary row.

    The folder is a :class:`nilearn_vlm._store.FolderEntry`: reused when its
    done marker records the same :func:`fingerprint_parts` and every file
    matches its checksum; otherwise computed under the folder's lock (a
    second process computing the same pair waits, then reuses it), staged
    under a temporary name and renamed into place once complete.
    """
    subject, model = pair
    sub = f"sub-{check_component(subject.id, 'subjects.id')}"
    label = check_component(model.label, "models.label")
    folder = check_inside(out / sub / label, out, "the results folder")
    entry = FolderEntry(folder, f"the results of {sub} / {label}")
    digests = FileDigests(out / "cache" / "file_digests.json")
    parts = fingerprint_parts(config, subject, model, events, digests)
    digests.save()
    key = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
    row = {"subject": subject.id, "model": model.label, "folder": str(folder), "reused": False, "changed": []}
    done, _ = entry.read()
    if not force and done is not None and done.get("key") == key:
        _say(log, f"{sub} / {label}: reusing {folder}")
        entry.clean()
        return {**row, "reused": True}
    with entry.lock(on_wait=lambda msg: _say(log, msg)):
        done, why = entry.read()  # another process may have finished it while we waited
        if not force and done is not None and done.get("key") == key:
            _say(log, f"{sub} / {label}: reusing {folder}")
            return {**row, "reused": True}
        if done is not None and not force:
            row["changed"] = changes(done.get("inputs", {}), parts)
            print(f"[nilearn-vlm] {sub} / {label}: the results in {folder} were computed from other "
                  f"settings or inputs ({'; '.join(row['changed'][:6]) or 'an older format'}"
                  f"{'; ...' if len(row['changed']) > 6 else ''}); replacing them", flush=True)
        elif folder.exists() and not force:
            _say(log, f"{sub} / {label}: {folder} cannot be reused ({why}); computing it again")
        _say(log, f"{sub} / {label}")
        staged = entry.stage()
        try:
            results = fit_subject(
                events, subject.bold, config.t_r, mask=subject.mask, model=model.name,
                model_params=model.params, sites=model.sites, pooling=model.pooling, settings=config.pipeline,
                memory=str(out / "cache"), subject=subject.id, verbose=log,
            )
            which = config.analyses.run
            analyses, skipped = run_analyses([results], names="all" if which == "all" else list(which),
                                             memory=str(out / "cache"))
            skipped = {k: str(v) for k, v in skipped.items()}
            results.save(staged)
            save_analyses(analyses, staged / "analyses", skipped=skipped)
            if on_result is not None:
                on_result(results, analyses, skipped, staged)
            entry.publish(staged, {"key": key, "inputs": parts})
        finally:
            if staged.exists():
                shutil.rmtree(staged, ignore_errors=True)
    return row
