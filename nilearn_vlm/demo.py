"""The demo: the whole path on the embedded default study (``nilearn-vlm demo``).

Simulates the default subject (:func:`nilearn_vlm.datasets.make_default_study`),
runs :func:`nilearn_vlm.pipeline.fit_subject`, scores the recovery of the planted
truth, runs every installed analysis the results allow, and writes an HTML
report, TSV tables, the results folder and a JSON summary.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

#: The demo's settings (the rest are the pipeline's defaults). Its units are
#: those of a CLIP with random weights: apart from the four planted drivers
#: they have no sparse structure, and dictionary learning creeps (a relative
#: objective change of 1e-5 takes hundreds of iterations, and the key-neuron
#: stability test learns 20 more dictionaries on halves of the scans). The demo
#: learns 16 atoms (enough for four drivers) and stops at a relative change of
#: 1e-3; ``summary.json`` (``atoms``) records the iterations and the change
#: reached. Real data: keep the defaults (64 atoms, ``atom_tol`` 1e-5).
DEMO_SETTINGS = {"n_atoms": 16, "n_permutations": 200, "atom_tol": 1e-3}


def run_demo(out="nilearn_vlm_demo", verbose=1, study_kwargs=None, settings=None):
    """Run the demo and write its outputs to ``out``.

    Parameters
    ----------
    out : str or Path
        Output folder: ``report.html``, ``summary.json``, ``tables/*.tsv``,
        ``results/`` (a :class:`~nilearn_vlm.results.Results` folder) and
        ``cache/`` (activations, reused by later runs).
    verbose : int, default=1
    study_kwargs : dict, optional
        Passed to :func:`~nilearn_vlm.datasets.make_default_study`.
    settings : dict, optional
        Overrides of :data:`DEMO_SETTINGS` (see
        :class:`~nilearn_vlm.settings.PipelineSettings`).

    Returns
    -------
    dict
        The JSON summary.
    """
    from nilearn_vlm.datasets import STUDY_NETWORKS, make_default_study
    from nilearn_vlm.datasets._recovery import evaluate_recovery
    from nilearn_vlm.pipeline import fit_subject
    from nilearn_vlm.settings import PipelineSettings
    from nilearn_vlm.report import PlantedTruth, build_report, label, layer_curve_table

    t0 = time.perf_counter()
    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    cache = str(out / "cache")
    step = _Timer(verbose)
    with step("simulating the default study (CLIP ViT-B/32, random weights)"):
        study = make_default_study(memory=cache, verbose=verbose, **(study_kwargs or {}))
    pipe = PipelineSettings(**{**DEMO_SETTINGS, **(settings or {})})
    results = fit_subject(
        study.events, study.bold, study.t_r, mask=study.mask, model=study.model,
        model_params=study.model_params, sites=study.sites, pooling=study.pooling, settings=pipe,
        memory=cache, subject="sim-01", verbose=verbose,
    )
    with step("scoring the recovery of the planted truth"):
        recovery, rec_summary = evaluate_recovery(
            study.truth, results.atom_loadings, results.units, results.glm_sign_sets,
            study.networks, STUDY_NETWORKS, key_neurons=results.tables.get("key_neurons"),
            atom_names=results.atom_names,
        )
        truth = PlantedTruth(study.description, recovery, rec_summary)
        curves = layer_curve_table(results.layer_fold_scores, study.networks, STUDY_NETWORKS, results.units)
        results.tables["recovery"] = recovery
        results.tables["layer_curves"] = curves
        results.meta["truth"] = study.truth.drop(columns="units").to_dict(orient="records")

    with step("analyses"):
        analyses, skipped = _run_analyses(results, verbose, cache)

    with step("saving the results and tables"):
        results.timings = _in_order(step.times, results.timings)
        results.save(out / "results")
        for name, frame in {**results.tables, "encoder_null": _encoder_null_table(results)}.items():
            frame.to_csv(out / "tables" / f"{name}.tsv", sep="\t", index=False)
        study.truth.to_csv(out / "tables" / "truth.tsv", sep="\t", index=False)
    with step("report"):
        # the report shows the study's networks (those the drivers are planted in)
        report = build_report(results, analyses=analyses, skipped=skipped, networks=STUDY_NETWORKS, truth=truth)
        report.save(out / "report.html")

    n_sig = int((np.abs(results.glm_sign_sets) > 0).any(axis=0).sum())
    summary = {
        "study": {k: v for k, v in study.settings.items() if k != "model_params"},
        "model": {"name": study.model, "params": study.model_params, "n_units": results.n_units},
        "recovery": rec_summary,
        "recovery_by_driver": recovery.to_dict(orient="records"),
        "thresholds": dict(truth.thresholds),
        "passed": bool(truth.passed),
        "encoder": {
            "statistic": label("encoder_r"),
            "mean_r": float(np.nanmean(results.encoder_r)),
            "median_r": float(np.nanmedian(results.encoder_r)),
            "mean_cv_r2": float(np.nanmean(results.encoder_cv_r2)),
            "n_unscored": int(results.meta.get("unscored_voxels", {}).get("encoder_r", 0)),
            "n_voxels_p05_fwe": int((results.encoder_p_fwe < 0.05).sum()),
        },
        "glm": {"n_atoms": results.n_atoms, "n_voxels_significant": n_sig,
                "n_atoms_interpreted": int(np.sum(results.atom_interpreted))},
        "atoms": {"n_iter": int(results.tables["atoms"]["n_iter"].iloc[0]),
                  "converged": bool(results.tables["atoms"]["converged"].all()),
                  "tol": float(pipe.atom_tol),
                  "tol_reached": float(results.tables["atoms"]["tol_reached"].iloc[0]),
                  "n_key_neurons": int(len(results.tables["key_neurons"])),
                  "key_error_bound": float(results.tables["atoms"]["error_bound"].iloc[0])},
        "analyses": {"run": sorted(analyses), "skipped": skipped},
        "timings_s": _in_order(step.times, results.timings),
        "elapsed_s": round(time.perf_counter() - t0, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _in_order(demo_steps, pipeline_steps):
    """The demo's first step (the simulation), the pipeline's steps, then the demo's other steps."""
    first, *rest = demo_steps.items()
    return dict([first, *pipeline_steps.items(), *rest])


class _Timer:
    """Timed steps of the demo outside the pipeline, printed when ``verbose``."""

    def __init__(self, verbose):
        self.verbose = verbose
        self.times = {}

    @contextmanager
    def __call__(self, name):
        if self.verbose:
            print(f"[nilearn-vlm] {name} ...", flush=True)
        t0 = time.perf_counter()
        yield
        self.times[name] = round(time.perf_counter() - t0, 2)
        if self.verbose:
            print(f"[nilearn-vlm] {name}: done in {self.times[name]:.1f} s", flush=True)


def _encoder_null_table(results):
    """The encoder's out-of-fold r per voxel with its cross-fitted shift-null p-values, as a table."""
    return pd.DataFrame({"voxel": np.arange(results.n_voxels), "r": results.encoder_r, "p": results.encoder_p,
                         "p_fwe": results.encoder_p_fwe})


def _run_analyses(results, verbose, cache=None):
    """Every installed analysis the results allow: ({name: result}, {name: reason}); ``cache`` keeps surrogate banks."""
    from nilearn_vlm.analyses import run_analyses

    done, skipped = run_analyses([results], memory=cache)
    if verbose:
        print(f"[nilearn-vlm] analyses run: {sorted(done) or 'none'}; skipped: {skipped or 'none'}", flush=True)
    return done, {k: str(v) for k, v in skipped.items()}
