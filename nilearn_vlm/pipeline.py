"""The whole path for one subject and one model, as one function.

stimuli -> :class:`~nilearn_vlm.NeuronActivations` -> :class:`~nilearn_vlm.TRAligner`
-> :class:`~nilearn_vlm.SparseAtoms` -> :class:`~nilearn_vlm.VoxelGLM` (atom maps,
positive/negative voxel sets) and :class:`~nilearn_vlm.VoxelEncoder` (predictive
scores, per-site layer curves) -> unit x voxel maps -> networks -> statistics ->
:class:`~nilearn_vlm.results.Results`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nilearn_vlm._utils import fold_labels

#: Atlases read by default in MNI152 volumes (networks of arXiv 2510.16870).
DEFAULT_MNI_ATLASES = ("seitzman2018", "language_mni")


@dataclass
class PipelineSettings:
    """Settings of :func:`fit_subject` (each uncertain choice of the paper is one).

    Parameters
    ----------
    hrf_model : str, default="glover"
        HRF of :class:`~nilearn_vlm.TRAligner`.
    n_atoms : int, default=64
        Atoms of :class:`~nilearn_vlm.SparseAtoms` (the paper's lineage uses 64).
    atom_alpha : float, default=0.1
        Sparsity of the codes.
    atom_max_iter : int, default=10
        Epochs of dictionary learning.
    glm_alpha : float, default=0.05
        FDR level of the GLM's positive/negative voxel sets.
    glm_mode : {"univariate", "joint"}, default="univariate"
        :class:`~nilearn_vlm.VoxelGLM` ``mode``. Atoms of a dictionary are
        correlated by construction, and one joint model of all of them splits
        a shared signal between them until none is significant (on the
        default study, a planted driver matched by an atom at r = 0.99 got no
        significant voxel in the joint model); one model per atom keeps each
        atom's map. ``"joint"`` is the paper's likely choice (unknown).
    alphas : array-like or None
        Ridge penalties of the encoder (None: the encoder's default grid).
    encode_sites : bool, default=True
        Fit one encoder per site for layer curves and layer-preference maps.
    site_alphas : array-like, default=(1, 10, 100, 1000, 10000)
        Ridge penalties of the per-site encoders (a coarser grid: one nested
        leave-one-run-out fit per site).
    site_voxels : {"relevant", "all"}, default="relevant"
        Voxels the per-site encoders fit: ``"relevant"`` are the voxels of the
        atlases' canonical networks plus those the atom encoder predicts
        (circular-shift p < 0.05, uncorrected); the other voxels get NaN
        layer scores. ``"all"`` fits every voxel (slower).
    top_k : int, default=10
        Units kept per voxel in the unit x voxel maps.
    n_permutations : int, default=200
        Circular-shift nulls of the encoder's out-of-fold correlations.
    atlases : tuple of str or None
        Atlas plugins for the network tables (None: :data:`DEFAULT_MNI_ATLASES`;
        an empty tuple: no network tables).
    seed : int, default=0
    """

    hrf_model: str = "glover"
    n_atoms: int = 64
    atom_alpha: float = 0.1
    atom_max_iter: int = 10
    glm_alpha: float = 0.05
    glm_mode: str = "univariate"
    alphas: object = None
    encode_sites: bool = True
    site_alphas: tuple = (1.0, 10.0, 100.0, 1000.0, 10000.0)
    site_voxels: str = "relevant"
    top_k: int = 10
    n_permutations: int = 200
    atlases: tuple | None = None
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def to_dict(self):
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "extra"}
        out["alphas"] = None if self.alphas is None else [float(a) for a in np.atleast_1d(self.alphas)]
        out["atlases"] = None if self.atlases is None else list(self.atlases)
        out["site_alphas"] = [float(a) for a in self.site_alphas]
        out.update(self.extra)
        return out


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

    Uses the image input of :class:`~nilearn_vlm.encoding.BaseVoxelEstimator`
    (4D NIfTI or a list of runs, SurfaceImage, CIFTI dtseries, arrays).

    Returns
    -------
    Y : ndarray of float32 (n_scans, n_voxels)
    runs : ndarray (n_scans,)
        Run labels 1, 2, ... in the order of the runs.
    space : nilearn_vlm.results.ImageSpace
        Turns per-voxel arrays back into images of the input's kind.
    """
    from nilearn_vlm._imagespace import ImageSpace
    from nilearn_vlm.encoding._base import BaseVoxelEstimator

    loader = BaseVoxelEstimator(mask=mask)
    targets = loader._load_targets(bold)
    runs = targets.runs
    if runs is None:
        runs = np.ones(targets.Y.shape[0], dtype=int)
    else:
        _, runs = np.unique(np.asarray(runs), return_inverse=True)
        runs = runs + 1
    return np.asarray(targets.Y, dtype=np.float32), runs, ImageSpace.from_estimator(loader)


def fit_subject(events, bold, t_r, mask=None, model="clip", model_params=None, sites="default",
                pooling="mean", settings=None, memory=None, subject="", verbose=1):
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
    settings : PipelineSettings, optional
    memory : str, optional
        Activation cache folder.
    subject : str
    verbose : int, default=1
        Print each step with its duration.

    Returns
    -------
    results : nilearn_vlm.results.Results
        The outputs of every step, everything a report shows
        (:func:`nilearn_vlm.report.build_report`): the atoms, GLM maps and
        encoder scores; ``encoder_r``, ``encoder_p`` and ``encoder_p_fwe``
        (the circular-shift null of the encoder's out-of-fold r);
        ``layer_scores`` and ``layer_fold_scores`` (per-site encoders, whole
        and per fold); ``runs`` and ``run_labels``; ``space`` (rebuilds
        images); network labels and tables; ``timings`` (seconds per step).
        The TR-aligned units and the BOLD are not kept: rerun the steps (the
        estimators of each step are public) to get them.
    """
    from nilearn_vlm import stats
    from nilearn_vlm.decomposition import SparseAtoms
    from nilearn_vlm.encoding import VoxelEncoder
    from nilearn_vlm.extraction import NeuronActivations
    from nilearn_vlm.glm import VoxelGLM
    from nilearn_vlm.maps import unit_voxel_maps
    from nilearn_vlm.results import Results
    from nilearn_vlm.timeseries import TRAligner

    settings = settings or PipelineSettings()
    step = _Steps(verbose)
    with step("loading BOLD"):
        Y, runs, space = load_bold(bold, mask)
    run_labels = sorted(pd.unique(events["run"]))
    n_scans = {run: int((runs == i + 1).sum()) for i, run in enumerate(run_labels)}

    with step(f"extracting units ({model})"):
        extractor = NeuronActivations(model=model, model_params=model_params or {}, sites=sites,
                                      pooling=pooling, memory=memory, verbose=verbose)
        cols = [c for c in ("image", "text") if c in events]
        units = extractor.fit_transform(events[cols])
        unit_names = [str(u) for u in extractor.get_feature_names_out()]
    with step("aligning units to the TR grid (HRF)"):
        aligner = TRAligner(events=events[["onset", "duration", "run"]], n_scans=n_scans, t_r=t_r,
                            hrf_model=settings.hrf_model)
        X = aligner.fit_transform(units).astype(np.float32)
    with step(f"sparse dictionary learning ({settings.n_atoms} atoms)"):
        atoms = SparseAtoms(n_atoms=settings.n_atoms, alpha=settings.atom_alpha,
                            max_iter=settings.atom_max_iter, feature_names=unit_names,
                            random_state=settings.seed)
        A = atoms.fit_transform(X)
    with step(f"voxelwise GLM on the atoms (AR(1), {settings.glm_mode})"):
        glm = VoxelGLM(t_r=t_r, alpha=settings.glm_alpha, mode=settings.glm_mode).fit(A, Y, groups=runs)
    folds = cv_folds(runs)
    with step("ridge encoder on the atoms (leave-one-run-out)"):
        encoder = VoxelEncoder(alphas=settings.alphas).fit(A, Y, groups=folds)
    with step(f"circular-shift null of encoder scores ({settings.n_permutations} shifts)"):
        pred = _out_of_fold(A, Y, runs, settings.alphas)
        null = stats.permutation_null(pred, Y, method="shift", runs=runs,
                                      n_permutations=settings.n_permutations,
                                      random_state=settings.seed)
    atlases = DEFAULT_MNI_ATLASES if settings.atlases is None else tuple(settings.atlases)
    labels = []
    if atlases:
        from nilearn_vlm.networks import load_atlases

        with step("loading network atlases"):
            labels = load_atlases(list(atlases), space)
    site_scores, site_run_scores = {}, {}
    if settings.site_voxels not in ("relevant", "all"):
        raise ValueError(f"site_voxels must be 'relevant' or 'all', got {settings.site_voxels!r}")
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
                pred_s = _out_of_fold(Xs, Yk, runs, settings.site_alphas, n_threads=1)
                per_fold = np.full((np.unique(folds).size, Y.shape[1]), np.nan, dtype=np.float32)
                per_fold[:, keep] = np.vstack(
                    [stats.pearson_r(pred_s[folds == f], Yk[folds == f]) for f in np.unique(folds)]
                )
                site_run_scores[site] = per_fold
                full = np.full(Y.shape[1], np.nan, dtype=np.float32)
                full[keep] = stats.pearson_r(pred_s, Yk)
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


def _out_of_fold(X, Y, runs, alphas, n_threads=None):
    """Leave-one-fold-out predictions of a ridge encoder (alphas chosen within folds).

    Folds are the runs (:func:`cv_folds`: contiguous blocks for a single run).
    """
    runs = cv_folds(runs)
    from nilearn_vlm.encoding import VoxelEncoder

    pred = np.zeros_like(Y, dtype=np.float32)
    for r in np.unique(runs):
        train = runs != r
        enc = VoxelEncoder(alphas=alphas, n_threads=n_threads).fit(X[train], Y[train], groups=runs[train])
        pred[~train] = enc.predict(X[~train])
    return pred
