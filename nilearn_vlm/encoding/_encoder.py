"""VoxelEncoder: ridge encoding of voxels with one alpha per voxel."""

from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from nilearn_vlm._utils import (
    make_folds,
    nilearn_input_tags,
    output_dtype,
    parse_bytes,
    pearson_r,
)
from nilearn_vlm.encoding._base import (
    BaseVoxelEstimator,
    _voxel_status,
    clean_signals,
)
from nilearn_vlm.encoding._metrics import explainable_variance
from nilearn_vlm.encoding._solver import SOLVERS, ridge_cv_path

__all__ = ["VoxelEncoder", "make_folds"]

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
        Candidate penalties; None means ``np.logspace(-2, 5, 15)``.
    cv : None, int, splitter or iterable, default=None
        Folds (see :func:`make_folds`): leave-one-run-out with runs, else 5
        contiguous blocks.
    standardize : bool, default=False
        z-score features with the statistics of all fit scans (folds share
        them). ``coef_`` is expressed for the unscaled features.
    fit_intercept : bool, default=True
        Centre features and targets with training means in every fold.
    detrend : bool, default=False
        Remove a linear trend per run from features and BOLD alike.
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
        Mean out-of-fold R^2 at the chosen alpha (NaN for excluded voxels).
        It is the maximum over alphas, so slightly optimistic: use
        ``nested_cv=True`` for unbiased figures.
    nested_scores_ : ndarray (n_voxels,)
        Only with ``nested_cv``: mean outer-fold R^2.
    explainable_variance_ : ndarray (n_voxels,)
        Only when ``repeats`` are given to fit: see
        :func:`~nilearn_vlm.encoding.explainable_variance`.
    valid_voxels_ : ndarray of bool (n_voxels,)
        Voxels used in the fit (finite and not constant).
    masker_, input_kind_, n_voxels_, n_features_in_

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
        "standardize": ["boolean"],
        "fit_intercept": ["boolean"],
        "detrend": ["boolean"],
        "high_pass": [Interval(Real, 0, None, closed="neither"), None],
        "t_r": [Interval(Real, 0, None, closed="neither"), None],
        "solver": [StrOptions(set(SOLVERS))],
        "dtype": [StrOptions({"float32", "float64"}), type],
        "max_memory": [Interval(Real, 0, None, closed="neither"), str],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "nested_cv": ["boolean"],
        "memory": "no_validation",
        "verbose": ["verbose"],
        "n_jobs": [Integral, None],
    }

    def __init__(self, mask=None, alphas=None, cv=None, standardize=False,
                 fit_intercept=True, detrend=False, high_pass=None, t_r=None,
                 solver="auto", dtype="float32", max_memory="512MB",
                 n_threads=None, nested_cv=False, memory=None, verbose=0,
                 n_jobs=None):
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

    def _transform_X(self, X):
        X, _ = self._check_X(X, reset=False)
        X, _ = clean_signals(X, None, detrend=self.detrend,
                             high_pass=self.high_pass, t_r=self.t_r)
        return X

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
        X, Y = self._clean(X, Y, runs, conf)
        valid = self._valid_voxels(Y)
        self.valid_voxels_ = valid
        cols = None if valid.all() else np.flatnonzero(valid)
        folds = make_folds(self.cv, X.shape[0], runs)

        self._x_mean, self._x_scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
        if self.standardize:
            self._x_mean = X.mean(0)
            std = X.std(0)
            self._x_scale = np.where(std > 0, std, 1.0)
            X = (X - self._x_mean) / self._x_scale

        kw = dict(fit_intercept=self.fit_intercept, solver=self.solver,
                  dtype=dtype, max_memory=budget)
        with threadpool_limits(limits=self.n_threads, user_api="blas"):
            res = ridge_cv_path(X, Y, alphas, folds, cols=cols, refit=True,
                                progress=self.verbose > 0, n_jobs=self.n_jobs,
                                **kw)
            if self.nested_cv:
                self.nested_scores_ = self._nested(X, Y, runs, alphas, cols,
                                                   valid, kw)
        n_vox, p = Y.shape[1], X.shape[1]
        intercept = np.zeros(n_vox, dtype)
        intercept[valid] = res["intercept"] - (self._x_mean / self._x_scale) \
            @ res["coef"]
        coef = res.pop("coef")  # (p, n_valid); no second copy when all valid
        coef /= self._x_scale[:, None].astype(dtype)
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
        self.coef_ = coef.T
        self.intercept_ = intercept
        if self._y_ndim == 1:
            self.alpha_, self.cv_scores_ = self.alpha_[0], self.cv_scores_[0]
            self.coef_, self.intercept_ = self.coef_[0], self.intercept_[0]
        if repeats is not None:
            reps = [self._load_targets(r, reset=False).Y for r in repeats]
            self.explainable_variance_ = explainable_variance(reps)
        return self

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
        out[valid] = np.mean(scores, axis=0)
        return out

    def _predict_array(self, X):
        check_is_fitted(self)
        X = self._transform_X(X)
        coef = np.atleast_2d(self.coef_)
        pred = X.astype(coef.dtype, copy=False) @ coef.T + self.intercept_
        return pred.astype(output_dtype(X), copy=False)

    def predict(self, X):
        """Predict BOLD from features.

        Features get the same detrending/high-pass as in fit (as one run;
        confounds are not applied: clean test features yourself if needed).

        Parameters
        ----------
        X : array-like (n_scans, n_features)

        Returns
        -------
        Image of the fitted kind (4D Niimg, SurfaceImage, CIFTI dtseries) or
        array (n_scans, n_voxels) ((n_scans,) for a 1D fit target), in the
        floating dtype of ``X`` (float64 for other dtypes).
        """
        return self._to_output(self._predict_array(X))

    def _scores(self, X, y):
        check_is_fitted(self)
        Y = self._load_targets(y, reset=False).Y
        pred = self._predict_array(X)
        self._check_n_samples(pred, Y)
        _, Y = clean_signals(None, Y, detrend=self.detrend,
                             high_pass=self.high_pass, t_r=self.t_r)
        r = np.full(Y.shape[1], np.nan)
        valid = self.valid_voxels_
        r[valid] = pearson_r(pred.reshape(len(Y), -1)[:, valid], Y[:, valid])
        return r

    def score(self, X, y, sample_weight=None):
        """Mean Pearson correlation over voxels between predictions and y.

        Excluded voxels (NaN/constant in fit) are left out of the mean; a
        constant prediction counts as r = 0. This is not R^2: use
        ``cv_scores_``/``nested_scores_`` for R^2.

        Parameters
        ----------
        X : array-like (n_scans, n_features)
        y : targets of the fitted kind
        sample_weight : None
            Not supported (must be None).

        Returns
        -------
        float
        """
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported by score.")
        return float(np.nanmean(self._scores(X, y)))

    def score_img(self, X, y):
        """Per-voxel Pearson r between predictions and y, as a map.

        Parameters
        ----------
        X : array-like (n_scans, n_features)
        y : targets of the fitted kind

        Returns
        -------
        Image of the fitted kind (3D Niimg, SurfaceImage, CIFTI dscalar) or
        array (n_voxels,); NaN for excluded voxels.
        """
        r = self._scores(X, y)
        if self.input_kind_ == "array":
            return r
        return self._to_output(r)
