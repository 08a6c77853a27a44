"""The whole path for one subject and one model, as one function.

stimuli -> :class:`~nilearn_vlm.NeuronActivations` -> :class:`~nilearn_vlm.TRAligner`
-> :class:`~nilearn_vlm.SparseAtoms` (atoms, key neurons by stability selection)
-> :class:`~nilearn_vlm.VoxelGLM` (a univariate gate, then one GLM of the interpreted
atoms: atom maps, positive/negative voxel sets) and :class:`~nilearn_vlm.VoxelEncoder` (predictive
scores, per-site layer curves) -> unit x voxel maps -> networks -> statistics ->
:class:`~nilearn_vlm.results.Results`.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone

from nilearn_vlm._provenance import _json_params
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
        ``atom_interpreted`` (atoms with a significant univariate map and a
        stable key neuron, :func:`interpret_atoms`), whose GLM gives
        ``glm_t``, ``glm_beta`` and ``glm_sign_sets``, the univariate maps
        of every atom kept in ``glm_univariate_t`` and
        ``glm_univariate_sign_sets``; ``tables["atoms"]`` (per atom: key
        neurons, stability, the stated error bound, convergence of the
        dictionary, interpreted);
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
    check_run_count(run_labels, runs)
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
        A = atoms.fit_transform(X, groups=runs)  # runs: the halves of the key-neuron test
    with step(f"voxelwise GLM on the atoms ({settings.inference}, univariate gate, {settings.glm_mode} maps)"):
        glm_univariate, glm, interpreted = interpret_atoms(A, Y, runs, atoms, estimators["glm"],
                                                            confounds=confounds)
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
    if settings.site_voxels == "relevant":  # the per-site encoders' and the analyses' layer r voxels
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
    inputs = {}
    if settings.analysis_inputs:
        with step("analysis inputs (leave-one-run-out GLM sets, per-stream block sums)"):
            # every voxel (cheap: 16 components per fold): models of one subject share their voxels, whichever
            # voxels each one's encoder kept, so that the paired tests of the compare analysis can pair them
            inputs = analysis_inputs(A, X, Y, runs, glm, extractor.units_, None, interpreted=interpreted,
                                     layer_voxels=keep)
    with step("unit x voxel maps (all units)"):
        umaps = unit_voxel_maps(X, Y, runs=runs, unit_names=extractor.units_,
                                **settings.unit_map_options(t_r))
    results = Results.from_estimators(
        model, subject, atoms=atoms, glm=glm_univariate, encoder=encoder, units=extractor.units_, space=space,
        seeds={"pipeline": settings.seed, **({"model": model_params.get("seed")} if model_params else {})},
        weight_digests={model: extractor.adapter_.weights_digest()} if hasattr(extractor, "adapter_") else None,
        unit_voxel_topk={"index": np.asarray(umaps.top_units), "value": np.asarray(umaps.top_values)},
        layer_scores=site_scores, layer_fold_scores=site_run_scores,
        encoder_r=null.statistic, encoder_p=null.pvalues, encoder_p_fwe=null.pvalues_fwe,
        runs=runs, run_labels=run_labels, **inputs,
        meta={"unscored_voxels": {"encoder_r": int(null.n_unscored), "encoder_cv_r2": int(encoder.n_unscored_)}},
        settings={"pipeline": settings.to_dict(), "model": model, "model_params": model_params or {},
                  "sites": sites, "pooling": pooling, "t_r": t_r},
    )
    _record_interpretation(results, glm, interpreted, estimators["glm"])
    results.tables["unit_sign_counts"] = umaps.unit_table()
    if labels:
        with step("network tables"):
            results.add_network_tables(labels)
    results.timings = dict(step.times)
    return results


def check_run_count(run_labels, runs):
    """Raise when the events and the BOLD have different numbers of runs (a clear error, not a shape one).

    Parameters
    ----------
    run_labels : list
        The sorted run labels of the events.
    runs : ndarray
        Run number (1, 2, ...) of every BOLD scan (:func:`load_bold`).
    """
    n_bold = int(np.unique(runs).size)
    if n_bold != len(run_labels):
        raise ValueError(
            f"the events have {len(run_labels)} run(s) (labels {[str(r) for r in run_labels]}) but the BOLD "
            f"has {n_bold} run(s); give one BOLD image per run of the events, in the order of the sorted "
            "run labels (or fix the events' 'run' column)"
        )


def interpret_atoms(timecourses, Y, runs, atoms, glm, confounds=None):
    """Which atoms are interpreted, and the GLM of their maps (two stages).

    1. **Gate.** One GLM per atom (``glm`` with ``mode="univariate"``, every
       atom). An atom is *interpreted* when its univariate map has at least
       one significant voxel and it has at least one stable key neuron
       (``atoms.key_neurons_``, the stability test of
       :class:`~nilearn_vlm.SparseAtoms`).
    2. **Maps.** One GLM of the interpreted atoms only (``glm`` as
       configured, ``mode="joint"`` by default): the maps a user reads. A
       joint model of a few reproducible atoms gives each its partial effect,
       so an atom's map does not pick up the networks of other atoms it
       correlates with in-sample.

    Parameters
    ----------
    timecourses : ndarray (n_scans, n_atoms)
        The atoms' time courses (the GLM's regressors).
    Y : ndarray (n_scans, n_voxels)
    runs : ndarray (n_scans,)
    atoms : fitted :class:`~nilearn_vlm.SparseAtoms`
    glm : unfitted :class:`~nilearn_vlm.VoxelGLM`
    confounds : array or list of arrays (one per run), optional
        Nuisance regressors of both GLMs.

    Returns
    -------
    univariate : fitted VoxelGLM
        The gate: every atom, one model each.
    maps : fitted VoxelGLM or None
        The interpreted atoms' model (columns named by the atoms); None when
        no atom is interpreted.
    interpreted : ndarray of bool (n_atoms,)
    """
    univariate = clone(glm).set_params(mode="univariate").fit(timecourses, Y, groups=runs, confounds=confounds)
    significant = (np.asarray(univariate.signed_) != 0).any(axis=0)
    interpreted = significant & (np.asarray(atoms.key_neurons_) != 0).any(axis=1)
    maps = None
    if interpreted.any():
        columns = [str(a) for a in np.asarray(atoms.atom_names_)[interpreted]]
        maps = clone(glm).fit(pd.DataFrame(timecourses[:, interpreted], columns=columns), Y, groups=runs,
                              confounds=confounds)
    return univariate, maps, interpreted


def _record_interpretation(results, maps, interpreted, glm):
    """The interpreted atoms' maps as ``glm_*`` (0 for the others), the univariate ones kept aside."""
    results.glm_univariate_t, results.glm_univariate_sign_sets = results.glm_t, results.glm_sign_sets
    results.atom_interpreted = interpreted
    t, beta = np.zeros_like(results.glm_t), np.zeros_like(results.glm_beta)
    signed = np.zeros_like(results.glm_sign_sets)
    if maps is not None:
        t[interpreted], beta[interpreted] = np.asarray(maps.t_).T, np.asarray(maps.coef_).T
        signed[interpreted] = np.asarray(maps.signed_).T
    results.glm_t, results.glm_beta, results.glm_sign_sets = t, beta, signed
    results.settings["glm"] = _json_params(glm)
    if "atoms" in results.tables:
        results.tables["atoms"]["n_significant_univariate"] = (results.glm_univariate_sign_sets != 0).sum(1)
        results.tables["atoms"]["interpreted"] = interpreted
    results.validate()


def analysis_inputs(A, X, Y, runs, glm, units, keep=None, n_components=16, block_length=20,
                    interpreted=None, layer_voxels=None, layer_sse=True):
    """What the analyses resample, computed once per subject and kept small.

    - ``glm_sign_sets_fwe``: the GLM's sets at Bonferroni ``glm.alpha`` per
      map, and ``glm_sign_sets_loro``: the same with the GLM refitted
      without each run (without each of 4 contiguous blocks for one run),
      for the polarity analysis's leave-one-run-out jackknife;
    - ``block_runs``, ``bold_block_sums``, ``stream_block_sums``: sums per
      time block (:func:`nilearn_vlm.analyses.time_blocks`, ``block_length``
      scans inside runs) of the BOLD and of the held-out predictions of each
      stream's units (and of all units, ``"all"``) reduced to
      ``n_components`` inside the training runs
      (:func:`nilearn_vlm.analyses.heldout_predictions`), for the paired
      tests of the comparison analyses;
    - ``stream_layer_r``: per stream, the within-run r of those predictions
      refitted without each of the stream's layers (delete-one-layer
      jackknife of the model's units);
    - ``stream_layer_sse["all"]``: the held-out squared error of all units
      refitted without each of the model's layers, the (stream, layer)
      groups of ``units`` (:func:`nilearn_vlm.analyses.layer_deleted_sse`),
      on every voxel of ``keep`` (the VLM-vs-unimodal test's model-instance
      variance; one 16-component refit per layer, as cheap as the block sums).

    Block sums and layer squared errors are NaN outside ``keep``, layer r
    outside ``layer_voxels``.

    Parameters
    ----------
    A : ndarray (n_scans, n_regressors)
        The GLM's regressors (atoms).
    X : ndarray (n_scans, n_units)
        TR-aligned units.
    Y : ndarray (n_scans, n_voxels)
    runs : ndarray (n_scans,)
    glm : fitted VoxelGLM or None
        The GLM of the interpreted atoms (:func:`interpret_atoms`), refitted
        (cloned) without each run; None when no atom is interpreted (every
        set empty).
    units : pandas.DataFrame
        The units table (``stream``, ``layer``) of the columns of ``X``.
    keep : ndarray of bool (n_voxels,) or None
        Voxels of the block sums (default all).
    n_components : int, default=16
    block_length : int, default=20
    interpreted : ndarray of bool (n_regressors,) or None
        The columns of ``A`` that ``glm`` was fitted on (default all); the
        sets of the other regressors are empty, as in ``Results.glm_sign_sets``.
    layer_voxels : ndarray of bool (n_voxels,) or None
        Voxels of the delete-one-layer r (within ``keep``; default ``keep``):
        one refit per layer, the costly part.
    layer_sse : bool, default=True
        Compute ``stream_layer_sse["all"]``.

    Returns
    -------
    dict
        Keyword arguments of :class:`~nilearn_vlm.results.Results`.
    """
    from nilearn_vlm.analyses import (
        bold_block_sums,
        heldout_predictions,
        layer_deleted_sse,
        layer_groups,
        prediction_block_sums,
        time_blocks,
        within_run_r,
    )

    runs = np.asarray(runs)
    keep = np.ones(Y.shape[1], bool) if keep is None else np.asarray(keep, bool)

    def fwe(fitted):
        sig = fitted.p_ <= fitted.alpha / max(Y.shape[1], 1)
        return (np.sign(fitted.t_) * sig).astype(np.int8).T

    folds = runs if np.unique(runs).size >= 2 else cv_folds(runs)
    interpreted = np.ones(A.shape[1], bool) if interpreted is None else np.asarray(interpreted, bool)
    if glm is None:
        interpreted = np.zeros(A.shape[1], bool)
    Ai = A[:, interpreted]

    def sets(fitted):  # FWE sets of the interpreted atoms, empty rows for the others (and for no GLM)
        out = np.zeros((A.shape[1], Y.shape[1]), np.int8)
        if interpreted.any():
            out[interpreted] = fwe(fitted)
        return out

    loro = [sets(clone(glm).fit(Ai[folds != f], Y[folds != f], groups=folds[folds != f])
                 if interpreted.any() else None) for f in np.unique(folds)]
    blocks, block_runs = time_blocks(runs, block_length)
    Yk = np.asarray(Y[:, keep], dtype=np.float64)

    def full(a):
        out = np.full(a.shape[:-1] + (Y.shape[1],), np.nan, dtype=np.float32)
        out[..., keep] = a
        return out

    bold = bold_block_sums(Yk, runs, blocks)
    lay = np.ones(Yk.shape[1], bool) if layer_voxels is None else np.asarray(layer_voxels, bool)[keep]
    bold_lay = bold_block_sums(Yk[:, lay], runs, blocks) if lay.any() else None

    def full_lay(a):
        out = np.full(a.shape[:-1] + (int(keep.sum()),), np.nan, dtype=np.float32)
        out[..., lay] = a
        return full(out)

    streams, layers = units["stream"].to_numpy(), units["layer"].to_numpy()
    block_sums, layer_r = {}, {}
    for stream in [*pd.unique(streams), "all"]:
        cols = np.ones(len(units), bool) if stream == "all" else streams == stream
        pred = heldout_predictions(X[:, cols], Yk, runs, n_components)
        block_sums[str(stream)] = full(prediction_block_sums(pred, Yk, runs, blocks))
        if stream == "all" or not lay.any():
            continue
        rs = []
        for layer in pd.unique(layers[cols]):
            sub = cols & (layers != layer)
            pred = heldout_predictions(X[:, sub], Yk[:, lay], runs, n_components)
            rs.append(within_run_r(prediction_block_sums(pred, Yk[:, lay], runs, blocks), bold_lay, block_runs))
        layer_r[str(stream)] = full_lay(np.vstack(rs)) if len(rs) > 1 else None
    layer_sse_all = {}
    groups = layer_groups(units)[0]
    if layer_sse and np.unique(groups).size > 1:
        layer_sse_all["all"] = full(layer_deleted_sse(X, Yk, runs, groups, n_components))
    return {"glm_sign_sets_fwe": sets(glm), "glm_sign_sets_loro": np.stack(loro), "block_runs": block_runs,
            "bold_block_sums": full(bold), "stream_block_sums": block_sums,
            "stream_layer_r": {k: v for k, v in layer_r.items() if v is not None}, "stream_layer_sse": layer_sse_all}


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
