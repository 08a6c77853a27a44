"""Image input/output shared by the voxelwise estimators.

:class:`BaseVoxelEstimator` turns fMRI targets of several kinds into one
``(n_scans, n_voxels)`` array, and turns per-voxel results back into the kind
that came in, through :func:`nilearn_vlm.spaces.load_targets` and
:func:`nilearn_vlm.spaces.array_to_image` (the supported kinds are listed in
:mod:`nilearn_vlm.spaces`). :class:`~nilearn_vlm.VoxelEncoder` and
:class:`~nilearn_vlm.VoxelGLM` subclass it.

Interface for subclasses (stable):

- ``self._load_targets(y, confounds=None, groups=None, reset=True)`` ->
  :class:`Targets` ``(Y, runs, confounds)``; sets ``space_``, ``masker_``,
  ``input_kind_``, ``n_voxels_`` (``reset=False``: reuse them, e.g. in
  ``score``).
- ``self._valid_voxels(Y)`` -> boolean mask of usable voxels (warns about NaN
  or constant voxels, which are excluded from fitting).
- ``self._to_output(array)`` -> the input's kind for ``(n, n_voxels)`` or
  ``(n_voxels,)`` arrays.
- :func:`clean_signals` (``self._clean``): the same nuisance projection
  (detrending, cosine high-pass, confounds) for features and BOLD.
"""

import warnings
from collections import namedtuple

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from nilearn_vlm.spaces import array_to_image, load_targets

__all__ = ["BaseVoxelEstimator", "Targets", "clean_signals", "nuisance_design"]

Targets = namedtuple("Targets", ["Y", "runs", "confounds"])
Targets.__doc__ = """Targets loaded by :meth:`BaseVoxelEstimator._load_targets`.

Attributes
----------
Y : ndarray (n_scans, n_voxels), float64 or float32 as stored.
runs : ndarray of int (n_scans,) or None
    Run label per scan (from a list of runs or from ``groups``).
confounds : ndarray (n_scans, n_confounds) or None
    Validated confounds, runs concatenated.
"""


def _voxel_status(Y, chunk=4096):
    """Finite and constant columns of Y, without full-size temporaries."""
    finite = np.empty(Y.shape[1], bool)
    const = np.zeros(Y.shape[1], bool)
    for start in range(0, Y.shape[1], chunk):
        block = Y[:, start:start + chunk]
        fin = np.isfinite(block).all(0)
        finite[start:start + chunk] = fin
        if Y.shape[0] > 1:
            with np.errstate(invalid="ignore"):
                const[start:start + chunk] = fin & (block.max(0) == block.min(0))
    return finite, const


def nuisance_design(n_scans, runs=None, confounds=None, detrend=False,
                    high_pass=None, t_r=None):
    """Build the nuisance regressors removed from features and BOLD alike.

    Per run: a constant (only when any cleaning is asked), a linear trend
    when ``detrend``, and the discrete cosine basis of nilearn/SPM with
    periods longer than ``1 / high_pass`` seconds; then the confounds
    (shared columns over all scans).

    Parameters
    ----------
    n_scans : int
        Number of scans.
    runs : array-like of int, shape (n_scans,), optional
        Run label per scan; each run gets its own drift terms.
    confounds : ndarray, shape (n_scans, n_confounds), optional
        Extra regressors (e.g. motion from nilearn's ``load_confounds``).
    detrend : bool, default=False
        Remove a linear trend per run.
    high_pass : float, optional
        Cutoff in Hz of the cosine high-pass filter; needs ``t_r``.
    t_r : float, optional
        Repetition time in seconds.

    Returns
    -------
    D : ndarray, shape (n_scans, n_regressors) or None
        None when nothing is to be removed.

    Examples
    --------
    >>> D = nuisance_design(10, runs=[0] * 5 + [1] * 5, detrend=True)
    >>> D.shape
    (10, 4)
    """
    if high_pass is not None and t_r is None:
        raise ValueError(
            "high_pass needs the repetition time: pass t_r (seconds) as well."
        )
    if not detrend and high_pass is None and confounds is None:
        return None
    runs = np.zeros(n_scans, int) if runs is None else np.asarray(runs)
    cols = []
    for r in np.unique(runs):
        idx = np.flatnonzero(runs == r)
        n = idx.size
        block = [np.ones(n)]
        if detrend and n > 1:
            block.append(np.linspace(-1, 1, n))
        if high_pass is not None:
            order = int(np.floor(2 * n * t_r * high_pass))
            k = np.arange(1, min(order, n - 1) + 1)
            if k.size:
                t = np.arange(n)
                block.extend(np.cos(np.pi * np.outer(2 * t + 1, k) / (2 * n)).T)
        for b in block:
            c = np.zeros(n_scans)
            c[idx] = b
            cols.append(c)
    D = np.column_stack(cols)
    if confounds is not None:
        D = np.column_stack([D, confounds])
    return D


def clean_signals(X, Y, runs=None, confounds=None, detrend=False,
                  high_pass=None, t_r=None):
    """Project the same nuisance regressors out of features and BOLD.

    This is an exact least-squares projection ``A - Q Q^T A`` with ``Q`` an
    orthonormal basis of :func:`nuisance_design`, applied to ``X`` and ``Y``
    identically (per run for drifts). With no cleaning asked the inputs are
    returned unchanged.

    Parameters
    ----------
    X : ndarray, shape (n_scans, n_features) or None
    Y : ndarray, shape (n_scans, n_voxels) or None
    runs, confounds, detrend, high_pass, t_r
        See :func:`nuisance_design`.

    Returns
    -------
    X, Y : ndarrays (or None), cleaned, in their input dtypes.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(20.0).reshape(10, 2)
    >>> Xc, _ = clean_signals(X, None, detrend=True)
    >>> bool(np.allclose(Xc, 0))
    True
    """
    ref = X if X is not None else Y
    D = nuisance_design(ref.shape[0], runs, confounds, detrend, high_pass, t_r)
    if D is None:
        return X, Y
    Q, s, _ = np.linalg.svd(D, full_matrices=False)
    Q = Q[:, s > s[0] * max(D.shape) * np.finfo(float).eps]
    out = []
    for A in (X, Y):
        if A is None:
            out.append(None)
            continue
        Qa = Q.astype(A.dtype, copy=False)
        out.append(A - Qa @ (Qa.T @ A))
    return tuple(out)


class BaseVoxelEstimator(BaseEstimator):
    """Base class of voxelwise estimators: image input and output.

    Subclasses define ``__init__`` (listing ``mask``, ``memory``,
    ``verbose``, ``n_jobs`` and their own parameters) and call
    :meth:`_load_targets` in ``fit`` and :meth:`_to_output` for results.

    Parameters
    ----------
    mask : Niimg-like, SurfaceImage, nilearn masker or None, default=None
        A mask image (Nifti or surface) or a nilearn masker
        (:class:`~nilearn.maskers.NiftiMasker`,
        :class:`~nilearn.maskers.SurfaceMasker`, ...). None: images get a
        masker with nilearn's defaults (mask computed from the data), arrays
        and CIFTI use all columns. A masker already fitted is used as it is;
        an unfitted one is cloned and fitted on the targets. A mask image must
        have the images' shape and affine (resample it with
        :func:`nilearn.image.resample_to_img` otherwise).
    memory : None, str or joblib.Memory, default=None
        Cache passed to the masker.
    verbose : int, default=0
        Verbosity.
    n_jobs : int, default=1
        Parallel jobs.

    Attributes
    ----------
    space_ : nilearn_vlm.spaces.ImageSpace
        Where the voxels live (kind, masker, CIFTI grayordinates, space
        family); :meth:`nilearn_vlm.spaces.ImageSpace.from_estimator` reads
        it.
    masker_ : nilearn masker or None
        The fitted masker (None for arrays and CIFTI); ``space_.masker``.
    input_kind_ : {"array", "nifti", "surface", "cifti"}
        Kind of the targets given to ``fit``; outputs take this kind.
    n_voxels_ : int
        Number of voxels (columns of ``Y``).
    """

    def __init__(self, mask=None, memory=None, verbose=0, n_jobs=1):
        self.mask = mask
        self.memory = memory
        self.verbose = verbose
        self.n_jobs = n_jobs

    # -------------------------------------------------------------- inputs
    def _load_targets(self, y, confounds=None, groups=None, reset=True):
        """Load targets of any supported kind into a 2D array.

        With ``reset=True`` (in ``fit``) sets ``space_``, ``masker_``,
        ``input_kind_`` and ``n_voxels_``; with ``reset=False`` (in ``score``)
        reads ``y`` in the fitted space and checks that kind and voxel count
        match the fit. See :func:`nilearn_vlm.spaces.load_targets`.

        Parameters
        ----------
        y : array, Niimg, SurfaceImage, Cifti2Image, path, or list of runs
        confounds : array, DataFrame, or list of them (one per run), optional
        groups : array-like (n_scans,), optional
            Run labels; override the runs of a list of images.
        reset : bool, default=True
            Fit the masker and remember the input kind (True), or reuse them.

        Returns
        -------
        Targets
            ``(Y, runs, confounds)``.
        """
        if not reset:
            t = load_targets(y, confounds=confounds, groups=groups, space=self.space_)
            return Targets(t.Y, t.runs, t.confounds)
        t = load_targets(y, mask=self.mask, confounds=confounds, groups=groups,
                         memory=self.memory, verbose=max(self.verbose - 1, 0))
        self.space_ = t.space
        self.masker_ = t.space.masker
        self.input_kind_ = t.space.kind
        self.n_voxels_ = t.space.n_voxels
        self._y_ndim = t.ndim
        return Targets(t.Y, t.runs, t.confounds)

    @staticmethod
    def _check_n_samples(X, Y):
        """Raise a clear error when features and targets differ in scans."""
        if X.shape[0] != Y.shape[0]:
            raise ValueError(
                f"X has {X.shape[0]} scans (rows) but y has {Y.shape[0]}: "
                f"features and BOLD must be aligned to the same scans "
                f"(see nilearn_vlm.TRAligner)."
            )

    def _valid_voxels(self, Y):
        """Return the voxels usable for fitting; warn about the others.

        A voxel is excluded when it holds NaN/inf or is constant over scans.
        Results for excluded voxels are NaN (scores, alphas) or 0
        (coefficients) in outputs; ``fit`` never fails because of them,
        unless no voxel is usable.
        """
        finite, const = _voxel_status(Y)
        valid = finite & ~const
        n_bad = int((~valid).sum())
        if n_bad == Y.shape[1]:
            raise ValueError(
                f"All {Y.shape[1]} voxels are NaN/inf or constant: check the "
                f"mask and the BOLD data."
            )
        if n_bad:
            warnings.warn(
                f"{int((~finite).sum())} voxel(s) with NaN/inf and "
                f"{int(const.sum())} constant voxel(s) are excluded from the "
                f"fit; their scores are NaN and coefficients 0.",
                UserWarning, stacklevel=3,
            )
        return valid

    def _clean(self, X, Y, runs=None, confounds=None):
        """Apply ``detrend``/``high_pass``/confounds identically to X and Y.

        Reads the subclass's ``detrend``, ``high_pass`` and ``t_r``
        parameters when present (default: no cleaning).
        """
        return clean_signals(
            X, Y, runs, confounds,
            detrend=bool(getattr(self, "detrend", False)),
            high_pass=getattr(self, "high_pass", None),
            t_r=getattr(self, "t_r", None),
        )

    # ------------------------------------------------------------- outputs
    def _to_output(self, array):
        """Turn ``(n, n_voxels)`` or ``(n_voxels,)`` results into the input kind.

        Arrays stay arrays (a 1D-target fit gives 1D predictions); Nifti
        gives a 4D (or 3D for 1D input) image through the masker; surfaces
        give a SurfaceImage; CIFTI gives a dtseries (2D) or a dscalar (1D).
        See :func:`nilearn_vlm.spaces.array_to_image`.
        """
        if not hasattr(self, "space_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet: call "
                f"fit first."
            )
        return array_to_image(array, self.space_, ndim=self._y_ndim)
