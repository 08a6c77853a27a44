"""VoxelEncoder: ridge encoding of voxels with one alpha per voxel."""

import warnings
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from nilearn_vlm._backend import BACKENDS, get_backend
from nilearn_vlm._utils import (
    column_scale,
    make_folds,
    nilearn_input_tags,
    output_dtype,
    parse_bytes,
    run_scores,
    warn_unscored,
)
from nilearn_vlm.encoding._base import (
    BaseVoxelEstimator,
    _voxel_status,
    clean_signals,
)
from nilearn_vlm.encoding._metrics import explainable_variance
from nilearn_vlm.encoding._solver import SOLVERS, ridge_cv_path

__all__ = ["DEFAULT_ALPHAS", "VoxelEncoder", "make_folds"]

#: The default grid of ridge penalties, the one grid of the library: 15
#: values in half-decade steps from 1e-2 to 1e5. Coarser grids are documented
#: subsets of it: every second value (the decades 1e-2 ... 1e5) for analyses
#: that refit many times (:func:`nilearn_vlm.analyses.cv_r2`), and the decades
#: 1 ... 1e4 for the pipeline's per-site encoders
#: (:data:`nilearn_vlm.settings.SITE_ALPHAS`).
DEFAULT_ALPHAS = np.logspace(-2, 5, 15)


class VoxelEncoder(RegressorMixin, BaseVoxelEstimator):
    """Voxelwise ridge encoder with a cross-validated alpha per voxel.

    Fits ``y_v = X w_v + b_v`` for every voxel ``v`` with ridge penalty
    ``alpha_v`` chosen among ``alphas`` by the mean cross-validated R^2 over
    folds that never shuffle time (as himalaya's ``RidgeCV`` does with
    ``score_func=r2_score``; ties go to the larger alpha), then refits on all
    scans. The solver is exact: one eigendecomposition of the smaller Gram
    matrix per fold (LAPACK ``syevd``), all alphas for all voxels as matrix
    products, voxels in chunks under ``max_memory``.

    Parameters
    ----------
    mask : Niimg-like, SurfaceImage, nilearn masker or None, default=None
        Mask image or masker for image targets (see
        :class:`~nilearn_vlm.encoding.BaseVoxelEstimator`).
    alphas : array-like of float or None, default=None
        Candidate penalties; None means :data:`DEFAULT_ALPHAS`
        (``np.logspace(-2, 5, 15)``).
    cv : None, int, splitter or iterable, default=None
        Folds (see :func:`make_folds`): leave-one-run-out with runs, else 5
        contiguous blocks.
    standardize : bool or "run", default=False
        True: scale the features to unit variance with the statistics of each
        training set (each fold's training scans, then all scans for the
        refit), so no statistic of a validation fold is used. ``"run"``: scale
        features and BOLD to unit variance run by run, after the cleaning
        (each run's own statistics; predictions are then in units of the
        runs' standard deviations, which leaves the within-run r of
        :meth:`score` unchanged). Columns flat in a run (variance at or below
        the floor relative to their scale) stay 0 there. ``coef_`` is
        expressed for the unscaled (``True``) or per-run scaled (``"run"``)
        features.
    fit_intercept : bool, default=True
        Centre features and targets with training means in every fold.
    detrend : bool, default=False
        Remove a linear trend per run from features and BOLD alike (before
        fitting; :meth:`score` always removes each run's constant and linear
        trend).
    high_pass : float or None, default=None
        Cosine high-pass cutoff (Hz) applied to features and BOLD alike;
        needs ``t_r``.
    t_r : float or None, default=None
        Repetition time in seconds.
    solver : {"auto", "primal", "dual", "svd"}, default="auto"
        ``auto`` diagonalises the smaller Gram matrix (``X^T X`` when
        features <= training scans, else the kernel ``X X^T``); ``svd`` uses
        a full SVD (slower).
    dtype : {"float32", "float64"}, default="float32"
        Working precision of the solver (``coef_`` and ``intercept_`` are
        kept in it). Predictions are cast to the floating dtype of the
        ``X`` given to predict (float32 in, float32 out; float64 in, float64
        out; other dtypes give float64).
    max_memory : str or int, default="512MB"
        Working-memory budget of the solver, beyond X, y and ``coef_``: bytes,
        or a string with SI (``"512MB"`` = 512 * 10**6 bytes) or IEC
        (``"512MiB"`` = 512 * 2**20 bytes) units.
    n_threads : int or None, default=None
        BLAS threads during fit/predict (threadpoolctl); None leaves them.
    backend : {"numpy", "torch"}, default="numpy"
        Array backend of the ridge solver (products, eigendecompositions,
        scoring of every alpha): NumPy/SciPy, or torch (imported only then;
        ``pip install torch``). Both give the same alphas up to float
        rounding ties and coefficients within rounding; cleaning, the alpha
        choice and all outputs stay NumPy.
    device : {"cpu", "cuda", "cuda:N"}, default="cpu"
        Where the torch backend runs; a CUDA device implies
        ``backend="torch"`` and needs a CUDA build of torch on a machine with
        an NVIDIA GPU (else fit raises an error that says so). Voxel chunks
        are copied to the device through pinned memory and only scores and
        coefficients come back; ``max_memory`` bounds the device memory too.
    nested_cv : bool, default=False
        Also run nested cross-validation (alpha chosen inside each outer
        training set) and store unbiased out-of-sample R^2 in
        ``nested_scores_``; costs about one extra fit per outer fold.
    memory : None, str or joblib.Memory, default=None
        Cache for the masker.
    verbose : int, default=0
        0: silent; 1: progress bar over voxel chunks.
    n_jobs : int or None, default=None
        Parallel tasks over groups of voxel chunks (threads here; Dask
        tasks inside :func:`nilearn_vlm.parallel.use_dask`), and over the
        outer folds of nested CV. Each task uses up to ``max_memory``. None
        means 1 unless a joblib context (such as ``use_dask``) says
        otherwise. Results do not depend on it.

    Attributes
    ----------
    alpha_ : ndarray (n_voxels,) or float
        Chosen alpha per voxel (NaN for excluded voxels).
    coef_ : ndarray (n_voxels, n_features) or (n_features,)
        Weights for the (cleaned) features; 0 for excluded voxels.
    intercept_ : ndarray (n_voxels,) or float
    cv_scores_ : ndarray (n_voxels,) or float
        Mean out-of-fold R^2 at the chosen alpha (NaN for excluded voxels),
        the criterion of the alpha choice. It is the maximum over alphas, so
        optimistic: report ``nested_cv=True`` figures, or the within-run r
        of :meth:`score` on held-out runs. Validation folds on which a voxel
        is flat (variance at or below the floor relative to its scale) are
        left out of its mean, with a warning; a voxel flat in every fold is
        NaN.
    nested_scores_ : ndarray (n_voxels,)
        Only with ``nested_cv``: mean outer-fold R^2 (alpha chosen inside
        each outer training set), over the outer folds where the voxel is
        not flat.
    n_unscored_ : int
        Voxels whose ``cv_scores_`` is NaN (excluded or flat in every
        validation fold); counted, never folded into means.
    explainable_variance_ : ndarray (n_voxels,)
        Only when ``repeats`` are given to fit: see
        :func:`~nilearn_vlm.encoding.explainable_variance`.
    valid_voxels_ : ndarray of bool (n_voxels,)
        Voxels used in the fit (finite and not constant).
    space_ : nilearn_vlm.spaces.ImageSpace
        Where the voxels live: kind, masker, CIFTI grayordinates and space
        family of the fitted targets (outputs are images of it;
        :meth:`~nilearn_vlm.spaces.ImageSpace.from_estimator` reads it).
    masker_ : nilearn masker or None
        The fitted masker (``space_.masker``; None for arrays and CIFTI).
    input_kind_ : {"array", "nifti", "surface", "cifti"}
        Kind of the fitted targets (``space_.kind``).
    n_voxels_ : int
        Number of voxels (``space_.n_voxels``).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm import VoxelEncoder
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 5))
    >>> y = X @ rng.standard_normal((5, 3)) + rng.standard_normal((100, 3))
    >>> enc = VoxelEncoder().fit(X, y)
    >>> enc.alpha_.shape, enc.predict(X).shape
    ((3,), (100, 3))
    >>> enc.score(X, y) > 0.8
    True
    """

    _parameter_constraints = {
        "mask": "no_validation",
        "alphas": ["array-like", None],
        "cv": ["cv_object", "array-like"],
        "standardize": ["boolean", StrOptions({"run"})],
        "fit_intercept": ["boolean"],
        "detrend": ["boolean"],
        "high_pass": [Interval(Real, 0, None, closed="neither"), None],
        "t_r": [Interval(Real, 0, None, closed="neither"), None],
        "solver": [StrOptions(set(SOLVERS))],
        "dtype": [StrOptions({"float32", "float64"}), type],
        "max_memory": [Interval(Real, 0, None, closed="neither"), str],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "backend": [StrOptions(set(BACKENDS))],
        "device": [str],
        "nested_cv": ["boolean"],
        "memory": "no_validation",
        "verbose": ["verbose"],
        "n_jobs": [Integral, None],
    }

    def __init__(self, mask=None, alphas=None, cv=None, standardize=False,
                 fit_intercept=True, detrend=False, high_pass=None, t_r=None,
                 solver="auto", dtype="float32", max_memory="512MB",
                 n_threads=None, nested_cv=False, memory=None, verbose=0,
                 n_jobs=None, backend="numpy", device="cpu"):
        self.mask = mask
        self.alphas = alphas
        self.cv = cv
        self.standardize = standardize
        self.fit_intercept = fit_intercept
        self.detrend = detrend
        self.high_pass = high_pass
        self.t_r = t_r
        self.solver = solver
        self.dtype = dtype
        self.max_memory = max_memory
        self.n_threads = n_threads
        self.nested_cv = nested_cv
        self.memory = memory
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.backend = backend
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return nilearn_input_tags(tags)  # X: arrays (images go in y)

    def _check_alphas(self):
        alphas = DEFAULT_ALPHAS if self.alphas is None else self.alphas
        alphas = np.sort(np.atleast_1d(np.asarray(alphas, dtype=np.float64)))
        if alphas.size == 0 or not np.all(np.isfinite(alphas)) or \
                np.any(alphas <= 0):
            raise ValueError(
                f"alphas must be positive finite numbers; got {self.alphas!r}."
            )
        return alphas

    def _check_X(self, X, reset):
        runs = None
        if isinstance(X, (list, tuple)) and len(X) and np.ndim(X[0]) == 2:
            runs = np.repeat(np.arange(len(X)), [len(x) for x in X])
            X = np.concatenate([np.asarray(x) for x in X])
        X = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32],
                          ensure_min_samples=2 if reset else 1)
        return X, runs

    def _transform_X(self, X, runs=None, confounds=None):
        X, x_runs = self._check_X(X, reset=False)
        runs = x_runs if runs is None else runs
        X, _ = clean_signals(X, None, runs, confounds, detrend=self.detrend,
                             high_pass=self.high_pass, t_r=self.t_r,
                             standardize=self.standardize == "run")
        return X, runs

    def _clean(self, X, Y, runs=None, confounds=None):
        return clean_signals(X, Y, runs, confounds, detrend=self.detrend,
                             high_pass=self.high_pass, t_r=self.t_r,
                             standardize=self.standardize == "run")

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, groups=None, confounds=None, repeats=None):
        """Fit the encoder.

        Parameters
        ----------
        X : array-like (n_scans, n_features) or list of per-run arrays
            Features aligned to the scans (e.g. from
            :class:`~nilearn_vlm.TRAligner`).
        y : 4D Niimg, list of run images, SurfaceImage, CIFTI dtseries, path,
            or array (n_scans, n_voxels)
            BOLD. NaN or constant voxels are excluded with a warning.
        groups : array-like of int (n_scans,), optional
            Run labels (folds hold out whole runs). A list of runs as ``X``
            or ``y`` gives them too.
        confounds : array, DataFrame or list of them (one per run), optional
            Regressed out of features and BOLD alike (with the drifts).
        repeats : list of targets, optional
            Repeated presentations of one stimulus sequence (each of y's
            kind, same mask); sets ``explainable_variance_``.

        Returns
        -------
        self
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the "
                f"target y is None."
            )
        bk = get_backend(self.backend, self.device)  # a CUDA request fails here, first
        X, x_runs = self._check_X(X, reset=True)
        Y, runs, conf = self._load_targets(y, confounds, groups)
        self._check_n_samples(X, Y)
        if runs is None:
            runs = x_runs
        alphas = self._check_alphas()
        dtype = np.dtype(self.dtype)
        budget = parse_bytes(self.max_memory, "max_memory")
        if self.high_pass is not None and self.t_r is None:
            raise ValueError("high_pass needs the repetition time: pass t_r.")
        raw_scale = column_scale(Y)  # the guards' scale: before cleaning
        X, Y = self._clean(X, Y, runs, conf)
        valid = self._valid_voxels(Y, dtype=dtype, scale=raw_scale)
        self.valid_voxels_ = valid
        cols = None if valid.all() else np.flatnonzero(valid)
        folds = make_folds(self.cv, X.shape[0], runs)

        kw = dict(fit_intercept=self.fit_intercept, solver=self.solver,
                  dtype=dtype, max_memory=budget, standardize=self.standardize is True,
                  backend=bk)
        with threadpool_limits(limits=self.n_threads, user_api="blas"):
            res = ridge_cv_path(X, Y, alphas, folds, cols=cols, refit=True,
                                progress=self.verbose > 0, n_jobs=self.n_jobs,
                                scale=raw_scale[valid], **kw)
            if self.nested_cv:
                self.nested_scores_ = self._nested(X, Y, runs, alphas, cols,
                                                   valid, dict(kw, scale=raw_scale[valid]))
        self._warn_flat_folds(res["n_scored"], len(folds), Y.shape[1])
        n_vox, p = Y.shape[1], X.shape[1]
        intercept = np.zeros(n_vox, dtype)
        intercept[valid] = res["intercept"]
        coef = res.pop("coef")  # (p, n_valid); no second copy when all valid
        if cols is not None:
            full = np.zeros((p, n_vox), dtype)
            full[:, valid] = coef
            coef = full
        const = ~valid & _voxel_status(Y)[0]
        intercept[const] = Y[0, const]
        self.alpha_ = np.full(n_vox, np.nan)
        self.alpha_[valid] = res["alpha"]
        self.cv_scores_ = np.full(n_vox, np.nan)
        self.cv_scores_[valid] = res["cv_score"]
        self.n_unscored_ = int(np.isnan(self.cv_scores_).sum())
        self.coef_ = coef.T
        self.intercept_ = intercept
        if self._y_ndim == 1:
            self.alpha_, self.cv_scores_ = self.alpha_[0], self.cv_scores_[0]
            self.coef_, self.intercept_ = self.coef_[0], self.intercept_[0]
        if repeats is not None:
            reps = [self._load_targets(r, reset=False).Y for r in repeats]
            self.explainable_variance_ = explainable_variance(reps)
        return self

    @staticmethod
    def _warn_flat_folds(n_scored, n_folds, n_voxels):
        partial = int(((n_scored > 0) & (n_scored < n_folds)).sum())
        if partial:
            warnings.warn(
                f"{partial} voxel(s) are flat (variance at or below the floor relative to their scale) "
                f"in some of the {n_folds} validation folds: their cv_scores_ and alphas come from the "
                f"other folds.", UserWarning, stacklevel=4)
        warn_unscored(int((n_scored == 0).sum()), n_voxels, "cv_scores_",
                      "flat in every validation fold", stacklevel=4)

    def _nested(self, X, Y, runs, alphas, cols, valid, kw):
        outer = make_folds(self.cv if not hasattr(self.cv, "__iter__") else None,
                           X.shape[0], runs)
        inner_cv = self.cv if (self.cv is None or isinstance(self.cv, Integral)) \
            else None

        def one(tr, te):
            inner = make_folds(inner_cv, len(tr),
                               None if runs is None else np.asarray(runs)[tr])
            return ridge_cv_path(X, Y, alphas, inner, cols=cols, rows=tr,
                                 eval_rows=te, refit=True, n_jobs=1,
                                 **kw)["eval_score"]

        scores = Parallel(n_jobs=self.n_jobs, prefer="threads")(
            delayed(one)(tr, te) for tr, te in outer)
        out = np.full(Y.shape[1], np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN voxels stay NaN
            out[valid] = np.nanmean(scores, axis=0)
        return out

    def _predict_array(self, X, runs=None, confounds=None):
        check_is_fitted(self)
        X, runs = self._transform_X(X, runs, confounds)
        # the product in the wider of the output's and the weights' dtypes: a float32 product of
        # float64 input depends on the rows' order at the 1e-7 level (BLAS blocking)
        dtype = np.promote_types(output_dtype(X), self.coef_.dtype)
        coef = np.atleast_2d(self.coef_).astype(dtype, copy=False)
        pred = X.astype(dtype, copy=False) @ coef.T + self.intercept_
        return pred.astype(output_dtype(X), copy=False), runs

    def predict(self, X):
        """Predict BOLD from features.

        Features get the same cleaning as in fit (detrending, high-pass,
        per-run scaling with ``standardize="run"``), run by run when ``X`` is
        a list of per-run arrays (else as one run; confounds are not applied:
        :meth:`score` takes them, or clean test features yourself).

        Parameters
        ----------
        X : array-like (n_scans, n_features) or list of per-run arrays

        Returns
        -------
        Image of the fitted kind (4D Niimg, SurfaceImage, CIFTI dtseries) or
        array (n_scans, n_voxels) ((n_scans,) for a 1D fit target), in the
        floating dtype of ``X`` (float64 for other dtypes).
        """
        return self._to_output(self._predict_array(X)[0])

    def _scores(self, X, y, groups=None, confounds=None):
        check_is_fitted(self)
        t = self._load_targets(y, confounds, groups, reset=False)
        runs = t.runs
        if runs is None and groups is None and isinstance(X, (list, tuple)):
            runs = self._check_X(X, reset=False)[1]
        pred, runs = self._predict_array(X, runs, t.confounds)
        self._check_n_samples(pred, t.Y)
        valid = self.valid_voxels_
        r = np.full(t.Y.shape[1], np.nan)
        res = run_scores(pred.reshape(len(t.Y), -1)[:, valid], t.Y[:, valid], runs,
                         detrend=True, high_pass=self.high_pass, t_r=self.t_r,
                         confounds=t.confounds)
        r[valid] = res.score
        warn_unscored(int(res.unscored.sum()), int(valid.sum()), "scores",
                      "flat BOLD in every run scored (variance at or below the floor "
                      "relative to the voxel's scale)", stacklevel=4)
        return r

    def score(self, X, y, sample_weight=None, groups=None, confounds=None):
        """Mean over voxels of the within-run Pearson r of predictions and y.

        The statistic per voxel is the mean over runs of the per-run
        Pearson r between the prediction and the BOLD, after removing from
        both, run by run, the run's constant, a linear trend, the cosine
        drifts of ``high_pass`` and the ``confounds`` (each run's own fit:
        nothing is estimated across runs, so a run's baseline never enters
        the score). Runs come from a list of run images or arrays (``y`` or
        ``X``) or from ``groups``; without them the scans are one run.
        Voxels excluded in fit and voxels flat in every run are NaN, counted
        with a warning and left out of the mean; a prediction without
        variance in a run counts as r = 0 there. This is not R^2: use
        ``cv_scores_``/``nested_scores_`` for R^2.

        In a scikit-learn :class:`~sklearn.pipeline.Pipeline`, runs reach
        ``score`` through metadata routing::

            sklearn.set_config(enable_metadata_routing=True)
            enc = VoxelEncoder().set_fit_request(groups=True).set_score_request(groups=True)
            make_pipeline(StandardScaler(), enc).fit(X, y, groups=runs).score(X2, y2, groups=runs2)

        Parameters
        ----------
        X : array-like (n_scans, n_features) or list of per-run arrays
        y : targets of the fitted kind, or a list of run images/arrays
        sample_weight : None
            Not supported (must be None).
        groups : array-like (n_scans,), optional
            Run label per scan (overrides the runs of lists).
        confounds : array, DataFrame or list of them (one per run), optional
            Projected out of predictions and BOLD alike, run by run.

        Returns
        -------
        float
        """
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported by score.")
        r = self._scores(X, y, groups, confounds)
        if np.isnan(r).all():
            return float("nan")
        return float(np.nanmean(r))

    def score_img(self, X, y, groups=None, confounds=None):
        """Per-voxel within-run Pearson r between predictions and y, as a map.

        The statistic of :meth:`score` per voxel (mean over runs of the
        per-run r after removing each run's constant, linear trend, cosine
        drifts and confounds).

        Parameters
        ----------
        X : array-like (n_scans, n_features) or list of per-run arrays
        y : targets of the fitted kind, or a list of run images/arrays
        groups : array-like (n_scans,), optional
            Run label per scan.
        confounds : array, DataFrame or list of them, optional

        Returns
        -------
        Image of the fitted kind (3D Niimg, SurfaceImage, CIFTI dscalar) or
        array (n_voxels,); NaN for excluded and unscored voxels.
        """
        r = self._scores(X, y, groups, confounds)
        if self.input_kind_ == "array":
            return r
        return self._to_output(r)
