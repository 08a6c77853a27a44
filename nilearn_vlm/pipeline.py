"""The whole path for one subject and one model, as one function.

stimuli -> :class:`~nilearn_vlm.NeuronActivations` -> :class:`~nilearn_vlm.TRAligner`
-> :class:`~nilearn_vlm.SparseAtoms` -> :class:`~nilearn_vlm.VoxelGLM` (atom maps,
positive/negative voxel sets) and :class:`~nilearn_vlm.VoxelEncoder` (predictive
scores, per-site layer curves) -> unit x voxel maps -> networks -> statistics ->
:class:`~nilearn_vlm.results.Results`.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone

from nilearn_vlm._utils import fold_labels, run_scores
from nilearn_vlm.settings import ModelSpec, PipelineSettings
from nilearn_vlm.spaces import load_targets


class _Steps:
    """Timed, printed steps."""

    def __init__(self, verbose):
        self.verbose = verbose
        self.times = {}

    def __call__(self, name):
        steps = self

        class _Step:
            def __enter__(self):
                self.t0 = time.perf_counter()
                if steps.verbose:
                    print(f"[nilearn-vlm] {name} ...", flush=True)

            def __exit__(self, *exc):
                dt = time.perf_counter() - self.t0
                steps.times[name] = round(dt, 2)
                if steps.verbose and exc[0] is None:
                    print(f"[nilearn-vlm] {name}: done in {dt:.1f} s", flush=True)

        return _Step()


def load_bold(bold, mask=None):
    """BOLD of any supported kind as (n_scans, n_voxels), with run labels and its space.

    Reads it with :func:`nilearn_vlm.spaces.load_targets` (4D NIfTI or a
    list of runs, SurfaceImage, CIFTI dtseries, arrays).

    Returns
    -------
    Y : ndarray of float32 (n_scans, n_voxels)
    runs : ndarray (n_scans,)
        Run labels 1, 2, ... in the order of the runs.
    space : nilearn_vlm.spaces.ImageSpace
        Turns per-voxel arrays back into images of the input's kind.
    """
    targets = load_targets(bold, mask=mask)
    runs = targets.runs
    if runs is None:
        runs = np.ones(targets.Y.shape[0], dtype=int)
    else:
        _, runs = np.unique(np.asarray(runs), return_inverse=True)
        runs = runs + 1
    return np.asarray(targets.Y, dtype=np.float32), runs, targets.space


def fit_subject(events, bold, t_r, mask=None, model="clip", model_params=None, sites="default",
                pooling="mean", settings=None, memory=None, subject="", verbose=1, confounds=None):
    """Run the whole pipeline for one subject and one model.

    Parameters
    ----------
    events : pandas.DataFrame
        Stimuli with ``onset``, ``duration``, ``run`` and ``image`` and/or
        ``text`` (see :mod:`nilearn_vlm.stimuli`).
    bold : list of images, or an image
        One 4D image per run (NIfTI, CIFTI dtseries, SurfaceImage or a
        (n_scans, n_voxels) array), in the order of the sorted run labels.
    t_r : float
    mask : Niimg-like, optional
        Brain mask (computed from the first run when None).
    model, model_params, sites, pooling :
        The adapter plugin and its settings (see
        :class:`~nilearn_vlm.NeuronActivations`).
    settings : nilearn_vlm.settings.PipelineSettings, optional
        Every key is checked (by building the estimators it sets) before any
        work starts; ``t_r`` reaches every estimator that takes it.
    memory : str, optional
        Activation cache folder.
    subject : str
    verbose : int, default=1
        Print each step with its duration.
    confounds : array or list of arrays (one per run), optional
        Nuisance regressors (e.g. nilearn's ``load_confounds``), removed run
        by run from units and BOLD alike in the GLM, the encoders and their
        scores.

    Returns
    -------
    results : nilearn_vlm.results.Results
        The outputs of every step, everything a report shows
        (:func:`nilearn_vlm.report.build_report`): the atoms, GLM maps and
        encoder scores; ``encoder_r`` (the encoder's score: the mean over
        held-out runs of the within-run r of nested out-of-fold predictions,
        each run's constant, drifts and confounds removed from predictions and
        BOLD alike), ``encoder_p`` and ``encoder_p_fwe`` (its cross-fitted
        circular-shift null, :func:`nilearn_vlm.encoding.out_of_fold_null`:
        each run's BOLD shifted and the folds refitted per shift),
        ``encoder_cv_r2`` (the penalty choice's cross-validated R^2);
        ``layer_scores`` and ``layer_fold_scores`` (per-site encoders, whole
        and per fold); ``runs`` and ``run_labels``; ``space`` (rebuilds
        images); network labels and tables; ``timings`` (seconds per step).
        The TR-aligned units and the BOLD are not kept: rerun the steps (the
        estimators of each step are public) to get them.
    """
    from nilearn_vlm.encoding import out_of_fold_null
    from nilearn_vlm.extraction import NeuronActivations
    from nilearn_vlm.maps import unit_voxel_maps
    from nilearn_vlm.results import Results

    settings = PipelineSettings() if settings is None else settings
    # every setting is checked, by building the estimators, before any work
    settings.validate(t_r=t_r)
    estimators = settings.estimators(t_r)
    if isinstance(model, str):
        ModelSpec(name=model, params=dict(model_params or {}), sites=sites, pooling=pooling).validate()
    extractor = NeuronActivations(model=model, model_params=model_params or {}, sites=sites,
                                  pooling=pooling, memory=memory, verbose=verbose)
    extractor._validate_params()
    step = _Steps(verbose)
    with step("loading BOLD"):
        Y, runs, space = load_bold(bold, mask)
    run_labels = sorted(pd.unique(events["run"]))
    n_scans = {run: int((runs == i + 1).sum()) for i, run in enumerate(run_labels)}

    with step(f"extracting units ({model})"):
        cols = [c for c in ("image", "text") if c in events]
        units = extractor.fit_transform(events[cols])
        unit_names = [str(u) for u in extractor.get_feature_names_out()]
    with step("aligning units to the TR grid (HRF)"):
        aligner = estimators["aligner"].set_params(events=events[["onset", "duration", "run"]],
                                                   n_scans=n_scans)
        X = aligner.fit_transform(units).astype(np.float32)
    with step(f"sparse dictionary learning ({settings.n_atoms} atoms)"):
        atoms = estimators["atoms"].set_params(feature_names=unit_names)
        A = atoms.fit_transform(X)
    with step(f"voxelwise GLM on the atoms (AR(1), {settings.glm_mode})"):
        glm = estimators["glm"].fit(A, Y, groups=runs, confounds=confounds)
    folds = cv_folds(runs)
    conf = _confound_array(confounds, Y.shape[0])
    with step("ridge encoder on the atoms (leave-one-run-out)"):
        encoder = clone(estimators["encoder"]).fit(A, Y, groups=folds, confounds=conf)
    # the same cleaning for the encoder's scores as for its fit: each run's constant, trend,
    # cosine drifts (high_pass, t_r) and confounds, from predictions and BOLD alike
    clean = {"high_pass": encoder.high_pass, "t_r": encoder.t_r, "confounds": conf}
    with step(f"encoder scores on held-out runs and their cross-fitted shift null "
              f"({settings.n_permutations} shifts)"):
        # each run's BOLD shifted once and used in every fold (a run's prediction depends on the
        # other runs' BOLD: resampling fixed predictions is anti-conservative)
        null = out_of_fold_null(estimators["encoder"], A, Y, folds, confounds=conf,
                                n_permutations=settings.n_permutations, random_state=settings.seed)
    atlases = tuple(settings.atlases)
    labels = []
    if atlases:
        from nilearn_vlm.networks import load_atlases

        with step("loading network atlases"):
            labels = load_atlases(list(atlases), space)
    site_scores, site_run_scores = {}, {}
    keep = np.ones(Y.shape[1], bool)
    if settings.encode_sites and settings.site_voxels == "relevant":
        keep = null.pvalues < 0.05
        for lab in labels:
            names, member = lab.membership("canonical")
            if len(names):
                keep |= member.any(axis=0)
    if settings.encode_sites and not keep.any() and verbose:
        print("[nilearn-vlm] no voxel is predicted or in a network: per-site encoders skipped", flush=True)
    if settings.encode_sites and keep.any():
        with step(f"per-site encoders (layer curves, {int(keep.sum())} voxels)"):
            site_arr = extractor.units_["site"].to_numpy()
            Yk = Y[:, keep]
            for site in pd.unique(site_arr):
                Xs = X[:, site_arr == site]
                # small problems: one BLAS thread (threaded LAPACK on small matrices
                # is many times slower on a busy 2-core machine)
                pred_s = _out_of_fold(Xs, Yk, runs, estimators["site_encoder"], n_threads=1,
                                      confounds=conf)
                within = run_scores(pred_s, Yk, folds, **clean)
                per_fold = np.full((np.unique(folds).size, Y.shape[1]), np.nan, dtype=np.float32)
                per_fold[:, keep] = within.per_run
                site_run_scores[site] = per_fold
                full = np.full(Y.shape[1], np.nan, dtype=np.float32)
                full[keep] = within.score
                site_scores[site] = full
    with step("unit x voxel maps (all units)"):
        umaps = unit_voxel_maps(X, Y, top_k=settings.top_k, unit_names=extractor.units_)
    results = Results.from_estimators(
        model, subject, atoms=atoms, glm=glm, encoder=encoder, units=extractor.units_, space=space,
        seeds={"pipeline": settings.seed, **({"model": model_params.get("seed")} if model_params else {})},
        weight_digests={model: extractor.adapter_.weights_digest()} if hasattr(extractor, "adapter_") else None,
        unit_voxel_topk={"index": np.asarray(umaps.top_units), "value": np.asarray(umaps.top_values)},
        layer_scores=site_scores, layer_fold_scores=site_run_scores,
        encoder_r=null.statistic, encoder_p=null.pvalues, encoder_p_fwe=null.pvalues_fwe,
        runs=runs, run_labels=run_labels,
        meta={"unscored_voxels": {"encoder_r": int(null.n_unscored), "encoder_cv_r2": int(encoder.n_unscored_)}},
        settings={"pipeline": settings.to_dict(), "model": model, "model_params": model_params or {},
                  "sites": sites, "pooling": pooling, "t_r": t_r},
    )
    results.tables["unit_sign_counts"] = umaps.unit_table()
    if labels:
        with step("network tables"):
            results.add_network_tables(labels)
    results.timings = dict(step.times)
    return results


def cv_folds(runs, n_blocks=4):
    """Fold labels: the runs, or ``n_blocks`` contiguous blocks of one run (time is never shuffled).

    :func:`nilearn_vlm._utils.fold_labels` (the folds of
    :func:`nilearn_vlm.encoding.make_folds`) with the pipeline's 4 blocks.
    """
    return fold_labels(runs, n_blocks)


def _confound_array(confounds, n_scans):
    """Confounds as one (n_scans, k) array (a list of per-run arrays concatenated), or None."""
    if confounds is None:
        return None
    if isinstance(confounds, (list, tuple)):
        confounds = np.vstack([np.asarray(c, dtype=float).reshape(len(c), -1) for c in confounds])
    conf = np.asarray(confounds, dtype=float).reshape(n_scans, -1)
    return conf


def _out_of_fold(X, Y, runs, encoder, n_threads=None, confounds=None):
    """Leave-one-fold-out predictions of a ridge encoder, nested (alphas chosen within the training folds).

    Folds are the runs (:func:`cv_folds`: contiguous blocks for a single run);
    ``encoder`` is an unfitted :class:`~nilearn_vlm.VoxelEncoder`, cloned per
    fold with ``n_threads`` BLAS threads. Its cleaning is run by run, so
    nothing of a held-out run enters its training (the held-out features are
    cleaned on their own run). Voxels the fold cannot fit (flat in the
    training runs) predict their training mean, and get no score.
    """
    runs = cv_folds(runs)
    pred = np.zeros_like(Y, dtype=np.float32)
    for r in np.unique(runs):
        train = runs != r
        enc = clone(encoder).set_params(n_threads=n_threads)
        with warnings.catch_warnings():  # counted where the scores are made
            warnings.simplefilter("ignore", UserWarning)
            enc.fit(X[train], Y[train], groups=runs[train],
                    confounds=None if confounds is None else confounds[train])
        pred[~train] = enc.predict(X[~train])
    return pred
