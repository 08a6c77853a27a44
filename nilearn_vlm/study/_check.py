"""Checking a study's data before any extraction (``nilearn-vlm run --dry-run``, and every run)."""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pandas as pd

from nilearn_vlm.settings import SettingsError
from nilearn_vlm.spaces import TRMismatchError, check_t_r

#: The study-file setting that accepts a TR the headers disagree with.
T_R_OVERRIDE = "[study] ignore_header_t_r = true"


def _n_scans(img):
    """Scans of a run image (header only), or None for kinds read later."""
    if isinstance(img, nib.cifti2.Cifti2Image):
        return int(img.shape[0])
    if isinstance(img, nib.spatialimages.SpatialImage):
        if len(img.shape) != 4:
            raise ValueError(f"a run must be a 4D image; this one has shape {img.shape}")
        return int(img.shape[3])
    return None


def check_data(config, events):
    """Check every subject's runs against the study: readable, 4D, one per run of the events, TR.

    Reads image headers only. Errors name the key of the study file that
    gave the file and the fix.

    Parameters
    ----------
    config : StudyConfig
    events : pandas.DataFrame
        The study's events (:func:`~nilearn_vlm.study.load_stimuli`).

    Returns
    -------
    pandas.DataFrame
        The plan: one row per subject x run, with ``subject``, ``run``,
        ``file``, ``n_scans``, ``header_t_r`` (seconds, or None where the
        header records none) and ``events_end_s`` (when the run's last
        event ends).

    Raises
    ------
    StudyConfigError
        An unreadable run, a run count that differs from the events', or a
        header TR that differs from ``[study] t_r`` (unless
        ``ignore_header_t_r``).
    """
    run_labels = sorted(pd.unique(events["run"]))
    ends = (events["onset"] + events["duration"]).groupby(events["run"]).max()
    rows = []
    for i, subject in enumerate(config.subjects):
        where = f"subjects[{i}].bold" if config.subjects_from == "subjects" else "fmri.bids"
        if len(subject.bold) != len(run_labels):
            raise SettingsError(where, f"subject {subject.id} has {len(subject.bold)} run image(s) but the events "
                                f"have {len(run_labels)} run(s) ({run_labels}); give one image per run, in the "
                                "order of the sorted run labels")
        images = []
        for path in subject.bold:
            try:
                img = nib.load(str(path))
                n_scans = _n_scans(img)
            except Exception as exc:  # noqa: BLE001 - any reader error names the file
                raise SettingsError(where, f"cannot read {str(path)!r} as a run image: {exc}") from None
            images.append(img)
            rows.append({"subject": subject.id, "file": str(path), "n_scans": n_scans})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                found = check_t_r(subject.bold, config.t_r, key="study.t_r",
                                  override=None if config.study.ignore_header_t_r else T_R_OVERRIDE)
            except TRMismatchError as exc:
                if not config.study.ignore_header_t_r:
                    raise SettingsError("study.t_r", str(exc)) from None
                found = [None] * len(subject.bold)
        for w in caught:
            warnings.warn(str(w.message), UserWarning, stacklevel=2)
        for row, run, t_r in zip(rows[-len(subject.bold):], run_labels, found):
            row.update({"run": run, "header_t_r": t_r, "events_end_s": float(ends.loc[run])})
    plan = pd.DataFrame(rows, columns=["subject", "run", "file", "n_scans", "header_t_r", "events_end_s"])
    over = plan["n_scans"].notna() & (plan["events_end_s"] > plan["n_scans"].astype(float) * config.t_r)
    for row in plan[over].itertuples():
        warnings.warn(f"subject {row.subject}, run {row.run}: events end at {row.events_end_s:g} s, after the "
                      f"run's {row.n_scans} scans of {config.t_r:g} s ({row.n_scans * config.t_r:g} s); "
                      "later events are not seen (check t_r and the run order)", UserWarning, stacklevel=2)
    return plan


def plan_text(config, events, plan):
    """What ``nilearn-vlm run`` would do, in lines of text (printed by ``--dry-run``)."""
    lines = [f"study {config.name!r}: {len(config.subjects)} subject(s) x {len(config.models)} model(s) "
             f"-> {config.output}",
             f"stimuli: {len(events)} events in {events['run'].nunique()} run(s)"
             + (f" ({int(events['image'].notna().sum())} with an image, "
                f"{int(events['text'].notna().sum())} with a text)" if {"image", "text"} <= set(events) else ""),
             f"t_r: {config.t_r:g} s"]
    for model in config.models:
        lines.append(f"model {model.label}: adapter {model.name}, sites {model.sites}, pooling {model.pooling}")
    for row in plan.itertuples():
        tr = "none in header" if row.header_t_r is None or np.isnan(row.header_t_r) else f"{row.header_t_r:g} s"
        lines.append(f"sub-{row.subject} run {row.run}: {row.file} ({row.n_scans} scans, header TR {tr})")
    return lines
