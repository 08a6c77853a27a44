"""Voxelwise general linear model with given regressors (atoms or units).

:class:`VoxelGLM` fits every voxel's time series on a design made of the
regressors of interest (the time courses of :class:`~nilearn_vlm.SparseAtoms`
atoms, or any unit time series) plus drift and intercept terms.

Inference (``noise_model``):

- ``"calibrated"`` (default): p-values that hold on real fMRI noise
  (:mod:`nilearn_vlm._glm_calibrated`): one global AR(2) prewhitening filter,
  each voxel's Toeplitz noise covariance estimated from the residuals of the
  nuisance with the residual-induced bias removed (Worsley 2002), tapered and
  shrunk towards the median autocorrelation, the sandwich variance
  ``a' V a`` of each estimate and Student t with Satterthwaite degrees of
  freedom. On resting-state BOLD with random designs its voxelwise and
  familywise false-positive rates are nominal, where nilearn's AR(1) gives
  too many (see the calibration section of the statistics guide and
  ``nilearn-vlm calibrate``).
- ``"ar1"``: nilearn's first-level AR(1) model, computed the way nilearn
  computes it:

  1. ordinary least squares, one fit for all voxels;
  2. the lag-1 Yule-Walker coefficient of each voxel's OLS residuals;
  3. coefficients truncated to ``1 / bins`` steps (nilearn's rounding:
     ``int(rho * bins) / bins``), so voxels that share a value share one
     whitened design;
  4. generalized least squares per bin: row ``t`` of a run becomes
     ``x_t - rho x_{t-1}``, the first scan of each run is kept unchanged (as in
     :class:`nilearn.glm.regression.ARModel`); the dispersion is the whitened
     residual sum of squares over ``n_scans - n_columns``.
- ``"ols"``: ordinary least squares with independent errors.

A regressor's t-value is its coefficient over its standard error; voxels whose
two-sided p-value survives the height control (Benjamini-Hochberg FDR per
regressor map by default) form the regressor's positive (t > 0) and negative
(t < 0) sets of voxels, the paper's positive and negative biological neurons.
"""

from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from nilearn_vlm._glm_solver import (
    ar1_yule_walker,
    drift_terms,
    fit_joint,
    height_threshold,
    prewhitened_ols,
    run_bounds,
)
from nilearn_vlm._glm_calibrated import calibrated_glm
from nilearn_vlm._glm_univariate import univariate_fit
from nilearn_vlm._utils import nilearn_input_tags, output_dtype
from nilearn_vlm.encoding._base import BaseVoxelEstimator

__all__ = ["VoxelGLM", "ar1_yule_walker", "prewhitened_ols"]


# --------------------------------------------------------------- estimator
class VoxelGLM(BaseVoxelEstimator):
    """Voxelwise GLM with calibrated (or nilearn's AR(1)) inference and signed significant voxels.

    Images in and out are those of :class:`~nilearn_vlm.VoxelEncoder` (the
    shared :class:`~nilearn_vlm.encoding._base.BaseVoxelEstimator`): ``y`` may
    be a 2D array, a 4D Nifti image, a SurfaceImage, a CIFTI dtseries or a
    list of runs; :meth:`maps` returns results in the same kind.

    Parameters
    ----------
    mask : Niimg-like, SurfaceImage, nilearn masker or None, default=None
        Mask image or masker for image targets (see ``VoxelEncoder``).
    t_r : float or None, default=None
        Repetition time in seconds; required for drift terms.
    drift_model : {"cosine", "polynomial", None}, default="cosine"
        Drift terms added per run, made by nilearn's
        :func:`~nilearn.glm.first_level.make_first_level_design_matrix`.
    high_pass : float, default=0.01
        Cut-off frequency (Hz) of the cosine drift basis.
    drift_order : int, default=1
        Order of the polynomial drift.
    noise_model : {"calibrated", "ar1", "ols"}, default="calibrated"
        Temporal noise model and inference (see the module's docstring):
        ``"calibrated"``, p-values that hold on real fMRI noise (global AR(2)
        prewhitening, per-voxel Toeplitz sandwich variance, Satterthwaite
        dof); ``"ar1"``, nilearn's AR(1) model (``FirstLevelModel``'s
        default, too liberal on real noise); ``"ols"``, independent errors.
    bins : int or None, default=100
        ``noise_model="ar1"``: AR(1) coefficients are truncated to ``1 / bins``
        steps as nilearn does; ``None`` whitens each voxel at its own
        coefficient (slower).
    ar_coef : float or None, default=None
        ``noise_model="ar1"``: a fixed AR(1) coefficient for every voxel
        instead of estimating it.
    mode : {"joint", "univariate"}, default="joint"
        ``"joint"``: one model of all regressors per voxel (the paper's
        likely choice: atoms as fixed regressors of one GLM). ``"univariate"``:
        one model per regressor (with the shared drifts, constants and
        confounds), so correlated regressors, such as atoms of a dictionary,
        do not take each other's variance; the AR(1) coefficient of a voxel is
        then estimated once from the residuals of the joint least-squares fit.
        Collinear regressors are allowed in this mode.
    height_control : {"fdr", "bonferroni", "fpr", None}, default="fdr"
        Correction of the two-sided p-values of each regressor's t-map
        (FDR: Benjamini-Hochberg, :func:`scipy.stats.false_discovery_control`).
    alpha : float, default=0.05
        Level of the height control.
    fdr_scope : {"map", "all"}, default="map"
        Correct each regressor's map separately (as nilearn thresholds one
        contrast at a time) or all maps together.
    memory : None, str or joblib.Memory, default=None
        Cache of the masker.
    verbose : int, default=0
        Progress bar over the AR(1) bins (voxel blocks for
        ``"calibrated"``) when > 0.
    n_jobs : int or None, default=1
        Parallel tasks over the AR(1) bins or voxel blocks (threads; Dask
        tasks inside :func:`nilearn_vlm.parallel.use_dask`). Results do not
        depend on it.

    Attributes
    ----------
    coef_ : ndarray of shape (n_voxels, n_features)
        Coefficients of the regressors of interest.
    intercept_ : ndarray of shape (n_voxels,)
        Coefficient of the (first run's) constant.
    t_ : ndarray of shape (n_voxels, n_features)
        t-values of the regressors of interest.
    p_ : ndarray of shape (n_voxels, n_features)
        Two-sided p-values.
    signed_ : ndarray of int8, shape (n_voxels, n_features)
        +1 where the voxel is a significant positive voxel of the regressor,
        -1 a negative one, 0 elsewhere.
    dof_ : int or ndarray of shape (n_voxels, n_features)
        Degrees of freedom of the t-tests: the residual dof
        (``n_scans - n_design_columns``) for ``"ar1"`` and ``"ols"``; per
        voxel and regressor Satterthwaite dof for ``"calibrated"``.
    ar1_ : ndarray of shape (n_voxels,)
        ``noise_model="ar1"`` or ``"ols"``: AR(1) coefficient used for each
        voxel (after binning).
    ar_filter_ : ndarray of shape (2,)
        ``noise_model="calibrated"``: coefficients of the global AR(2)
        whitening filter.
    design_ : pandas.DataFrame
        The full design (regressors, confounds, drifts and constants).
    regressor_names_ : ndarray of str
        Names of the regressors of interest (a DataFrame's columns, else
        ``x0, x1, ...``); ``feature_names_in_`` is set for DataFrames only.
    n_features_in_ : int
    space_ : nilearn_vlm.spaces.ImageSpace
        Where the voxels live: kind, masker, CIFTI grayordinates and space
        family of the fitted targets (maps are images of it;
        :meth:`~nilearn_vlm.spaces.ImageSpace.from_estimator` reads it).
    masker_, input_kind_, n_voxels_
        Image I/O state (see :class:`~nilearn_vlm.VoxelEncoder`).

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm import VoxelGLM
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 2))
    >>> Y = X @ [[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]]
    >>> Y = Y + rng.standard_normal((200, 3))
    >>> glm = VoxelGLM(t_r=1.0).fit(X, Y)
    >>> glm.signed_[:, 0].tolist()
    [1, 0, -1]
    """

    _parameter_constraints = {
        "mask": "no_validation",
        "t_r": [Interval(Real, 0, None, closed="neither"), None],
        "drift_model": [StrOptions({"cosine", "polynomial"}), None],
        "high_pass": [Interval(Real, 0, None, closed="neither")],
        "drift_order": [Interval(Integral, 0, None, closed="left")],
        "noise_model": [StrOptions({"calibrated", "ar1", "ols"})],
        "bins": [Interval(Integral, 1, None, closed="left"), None],
        "ar_coef": [Interval(Real, -1, 1, closed="neither"), None],
        "mode": [StrOptions({"joint", "univariate"})],
        "height_control": [StrOptions({"fdr", "bonferroni", "fpr"}), None],
        "alpha": [Interval(Real, 0, 1, closed="neither")],
        "fdr_scope": [StrOptions({"map", "all"})],
        "memory": "no_validation",
        "verbose": ["verbose"],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        mask=None,
        t_r=None,
        drift_model="cosine",
        high_pass=0.01,
        drift_order=1,
        noise_model="calibrated",
        bins=100,
        ar_coef=None,
        mode="joint",
        height_control="fdr",
        alpha=0.05,
        fdr_scope="map",
        memory=None,
        verbose=0,
        n_jobs=1,
    ):
        self.mask = mask
        self.t_r = t_r
        self.drift_model = drift_model
        self.high_pass = high_pass
        self.drift_order = drift_order
        self.noise_model = noise_model
        self.bins = bins
        self.ar_coef = ar_coef
        self.mode = mode
        self.height_control = height_control
        self.alpha = alpha
        self.fdr_scope = fdr_scope
        self.memory = memory
        self.verbose = verbose
        self.n_jobs = n_jobs

    # ------------------------------------------------------------ checks
    def _check_params(self):
        """What the parameter constraints cannot say: drifts need ``t_r``."""
        if self.drift_model is not None and self.t_r is None:
            raise ValueError(
                f"t_r is needed for drift_model={self.drift_model!r}; pass "
                "VoxelGLM(t_r=<seconds>) or drift_model=None."
            )

    def __sklearn_tags__(self):
        return nilearn_input_tags(super().__sklearn_tags__())  # X: arrays (images go in y)

    @staticmethod
    def _feature_names(X, n_features):
        if hasattr(X, "columns"):
            return np.asarray([str(c) for c in X.columns], dtype=object)
        return np.asarray([f"x{i}" for i in range(n_features)], dtype=object)

    # ------------------------------------------------------------ design
    def make_design(self, X, runs=None, confounds=None):
        """Build the full design: regressors, confounds, drifts, constants.

        Drift and constant columns are made per run by nilearn's
        :func:`~nilearn.glm.first_level.make_first_level_design_matrix`
        (suffixed ``_run<k>`` when there are several runs).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_scans, n_features)
            Regressors of interest.
        runs : array-like of shape (n_scans,), default=None
            Run label of each scan.
        confounds : array-like or DataFrame of shape (n_scans, n_confounds)

        Returns
        -------
        pandas.DataFrame of shape (n_scans, n_columns)
            Regressors of interest come first, in order.
        """
        self._validate_params()
        self._check_params()
        names = list(self._feature_names(X, np.shape(X)[1]))
        X = np.asarray(X, dtype=np.float64)
        n = X.shape[0]
        cols = [pd.DataFrame(X, columns=names)]
        if confounds is not None:
            C = np.asarray(confounds, dtype=np.float64).reshape(n, -1)
            cnames = (
                [str(c) for c in confounds.columns]
                if hasattr(confounds, "columns")
                else [f"confound{i}" for i in range(C.shape[1])]
            )
            cols.append(pd.DataFrame(C, columns=cnames))
        blocks = [drift_terms(n, runs, self.t_r, self.drift_model, self.high_pass, self.drift_order)]
        design = pd.concat(cols + blocks, axis=1)
        if design.columns.duplicated().any():
            dup = list(design.columns[design.columns.duplicated()])
            raise ValueError(
                f"design column names collide: {dup}; rename the regressors "
                "or confounds."
            )
        return design

    # --------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, confounds=None, groups=None):
        """Fit the GLM of every voxel.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_scans, n_features)
            Regressors of interest (atom time courses, unit time series).
        y : array, 4D Niimg, SurfaceImage, CIFTI dtseries, or list of runs
            BOLD signal, ``(n_scans, n_voxels)`` for arrays.
        confounds : array-like or DataFrame of shape (n_scans, n_confounds)
            Nuisance regressors (a list of them for a list of runs).
        groups : array-like of shape (n_scans,), default=None
            Run label of each scan (the runs of a list of images otherwise);
            drift terms, constants and the whitening restart at each run.

        Returns
        -------
        self
        """
        self._check_params()
        names = self._feature_names(X, np.shape(X)[1] if np.ndim(X) == 2 else 0)
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        self._out_dtype = output_dtype(X)
        X = X.astype(np.float64, copy=False)
        targets = self._load_targets(y, confounds=confounds, groups=groups)
        Y, runs = targets.Y, targets.runs
        n_x = X.shape[0]
        if n_x != Y.shape[0]:
            raise ValueError(
                f"X has {n_x} scans but y has {Y.shape[0]}; give one regressor "
                "row per scan."
            )
        design = self.make_design(
            pd.DataFrame(X, columns=names), runs=runs, confounds=targets.confounds
        )
        D = design.to_numpy()
        if not np.all(np.isfinite(D)):
            raise ValueError("X and confounds must be finite (no NaN/inf).")
        rank = np.linalg.matrix_rank(D if self.mode == "joint" else D[:, len(names):])
        if rank < (D.shape[1] if self.mode == "joint" else D.shape[1] - len(names)):
            raise ValueError(
                f"the design is rank deficient (rank {rank} < {D.shape[1]} "
                "columns); drop collinear regressors or confounds."
            )
        if D.shape[0] <= D.shape[1]:
            raise ValueError(
                f"{D.shape[0]} scans are too few for {D.shape[1]} design "
                "columns."
            )
        valid = self._valid_voxels(Y)
        Yv = np.asarray(Y[:, valid], dtype=np.float64)
        k, n_vox = len(names), Y.shape[1]
        if self.noise_model == "calibrated":
            fitted = self._fit_calibrated(D, k, Yv, runs)
        elif self.mode == "joint":
            beta, se, rho = fit_joint(
                D, Yv, runs, self.noise_model, self.bins, self.ar_coef, self.n_jobs, self.verbose
            )
            fitted = self._fitted_classic(beta, se, rho, D.shape[0] - D.shape[1], k)
        else:
            beta, se, rho, dof = univariate_fit(
                D, k, Yv, runs, self.noise_model, self.bins, self.ar_coef, self.n_jobs, self.verbose
            )
            fitted = self._fitted_classic(beta, se, rho, dof, k)

        def full(a, fill):
            out = np.full((n_vox,) + np.shape(a)[1:], fill, dtype=np.float64)
            out[valid] = a
            return out

        self.design_ = design
        self.regressor_names_ = names
        self.n_features_in_ = k
        self.runs_ = None if runs is None else np.asarray(runs)
        const = [
            i for i, c in enumerate(design.columns) if str(c).startswith("constant")
        ]
        self.intercept_ = full(fitted["intercept"][const[0]] if const else np.zeros(Yv.shape[1]), 0)
        self.coef_ = full(fitted["coef"], 0.0)
        self.t_ = full(fitted["t"], 0.0)
        self.p_ = full(fitted["p"], 1.0)
        if self.noise_model == "calibrated":
            self.dof_ = full(fitted["dof"], np.nan)
            self.ar_filter_ = fitted["phi"]
        else:
            self.dof_ = fitted["dof"]
            self.ar1_ = full(fitted["rho"], np.nan)
        self.signed_ = self._signed(self.t_, self.p_)
        return self

    def _fit_calibrated(self, D, k, Y, runs):
        """The calibrated inference (:mod:`nilearn_vlm._glm_calibrated`) on valid voxels."""
        if self.ar_coef is not None:
            raise ValueError(
                "ar_coef fixes the AR(1) coefficient of noise_model='ar1'; the calibrated model "
                "estimates its noise. Pass noise_model='ar1' with ar_coef, or drop ar_coef."
            )
        res = calibrated_glm(D[:, :k], Y, D[:, k:], mode=self.mode, runs=runs,
                             n_jobs=self.n_jobs, verbose=self.verbose)
        # the intercept (and other nuisance coefficients): ordinary least squares
        base = D[:, k:] if self.mode == "univariate" else D
        coef = np.linalg.pinv(base) @ Y
        intercept = coef if self.mode == "univariate" else coef[k:]
        return {"coef": res["beta"].T, "t": res["t"].T, "p": res["p"].T, "dof": res["dof"].T,
                "phi": res["phi"], "intercept": np.vstack([np.zeros((k, Y.shape[1])), intercept])}

    @staticmethod
    def _fitted_classic(beta, se, rho, dof, k):
        t = (beta[:k] / se[:k]).T
        return {"coef": beta[:k].T, "t": t, "p": 2 * stats.t.sf(np.abs(t), dof), "dof": dof,
                "rho": rho, "intercept": beta}

    def _signed(self, t, p):
        if self.fdr_scope == "all":
            sig = height_threshold(
                p.ravel(), self.alpha, self.height_control
            ).reshape(p.shape)
        else:
            sig = np.column_stack(
                [
                    height_threshold(p[:, j], self.alpha, self.height_control)
                    for j in range(p.shape[1])
                ]
            ).reshape(p.shape)
        return (np.sign(t) * sig).astype(np.int8)

    def maps(self, stat="t"):
        """One map per regressor of interest, in the kind ``y`` was given.

        Parameters
        ----------
        stat : {"t", "coef", "p", "signed"}, default="t"
            t-values, coefficients, two-sided p-values, or the signed
            significant voxels (+1, -1, 0).

        Returns
        -------
        ndarray (n_features, n_voxels), 4D Niimg, SurfaceImage or CIFTI
            With one volume (map) per regressor, in the floating dtype of the
            ``X`` given to fit (float64 for other dtypes; the fit itself runs
            in float64).
        """
        check_is_fitted(self)
        arrays = {"t": self.t_, "coef": self.coef_, "p": self.p_,
                  "signed": self.signed_}
        if stat not in arrays:
            raise ValueError(
                f"stat={stat!r} is not one of {sorted(arrays)}."
            )
        return self._to_output(np.asarray(arrays[stat], dtype=self._out_dtype).T)

    # ----------------------------------------------------------- outputs
    def voxel_sets(self):
        """Positive and negative significant voxels of each regressor.

        Returns
        -------
        dict
            ``{feature_name: (positive_indices, negative_indices)}``.
        """
        check_is_fitted(self)
        return {
            name: (
                np.flatnonzero(self.signed_[:, j] > 0),
                np.flatnonzero(self.signed_[:, j] < 0),
            )
            for j, name in enumerate(self.regressor_names_)
        }

    def summary_table(self):
        """Counts of significant positive and negative voxels per regressor.

        Returns
        -------
        pandas.DataFrame
            Columns ``feature, n_positive, n_negative, max_t, min_t``.
        """
        check_is_fitted(self)
        return pd.DataFrame(
            {
                "feature": self.regressor_names_,
                "n_positive": (self.signed_ > 0).sum(0),
                "n_negative": (self.signed_ < 0).sum(0),
                "max_t": self.t_.max(0),
                "min_t": self.t_.min(0),
            }
        )

    def to_first_level_model(self, **kwargs):
        """Export the fitted design to a nilearn ``FirstLevelModel``.

        The model is configured with the same ``t_r``, noise model and AR
        binning, no signal scaling and the design given explicitly; fit it
        with ``flm.fit(run_imgs, design_matrices=designs)``. With several runs
        nilearn fits each run separately and combines contrasts by fixed
        effects, whereas this class fits the concatenated runs at once.

        Parameters
        ----------
        **kwargs
            Overrides of :class:`~nilearn.glm.first_level.FirstLevelModel`
            parameters (for example ``mask_img``).

        Returns
        -------
        flm : nilearn.glm.first_level.FirstLevelModel
        designs : list of pandas.DataFrame
            One design matrix per run (the run's rows; other runs' drift and
            constant columns dropped).
        """
        from nilearn.glm.first_level import FirstLevelModel

        check_is_fitted(self)
        params = dict(
            noise_model="ols" if self.noise_model == "ols" else "ar1",
            signal_scaling=False,
            drift_model=None,
            minimize_memory=False,
        )
        masker = getattr(self, "masker_", None)
        if masker is not None:
            params["mask_img"] = masker
        params.update(kwargs)
        flm = FirstLevelModel(**params)
        starts, stops = run_bounds(self.runs_, len(self.design_))
        designs = []
        for s, e in zip(starts, stops):
            block = self.design_.iloc[s:e]
            keep = block.columns[(block.abs().sum(0) > 0).to_numpy()]
            designs.append(block[keep].reset_index(drop=True))
        return flm, designs
