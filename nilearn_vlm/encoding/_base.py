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

from nilearn_vlm._utils import clean_signals, column_scale, is_flat, nuisance_design
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


def _coarser(*dtypes):
    """The floating dtype of lowest precision among ``dtypes`` (float64 for non-floats)."""
    fl = [np.dtype(d) for d in dtypes if d is not None and np.dtype(d).kind == "f"]
    return max(fl, key=lambda d: np.finfo(d).eps) if fl else np.dtype(np.float64)


def _voxel_status(Y, chunk=4096, dtype=None, scale=None):
    """Finite and constant columns of Y, without full-size temporaries.

    Constant means flat: a centred sum of squares at or below the variance
    floor relative to the column's scale (:mod:`nilearn_vlm._utils._guards`;
    ``scale``, e.g. that of the BOLD before cleaning, or the root mean square
    of ``Y``), for the coarser of ``Y``'s dtype and the working ``dtype``.
    """
    finite = np.empty(Y.shape[1], bool)
    const = np.zeros(Y.shape[1], bool)
    work = _coarser(Y.dtype, dtype)
    for start in range(0, Y.shape[1], chunk):
        block = Y[:, start:start + chunk]
        fin = np.isfinite(block).all(0)
        finite[start:start + chunk] = fin
        if Y.shape[0] > 1:
            b64 = np.where(fin, block, 0).astype(np.float64)
            ss = ((b64 - b64.mean(0)) ** 2).sum(0)
            sc = column_scale(b64) if scale is None else scale[start:start + chunk]
            const[start:start + chunk] = fin & is_flat(ss, sc, Y.shape[0], work)
    return finite, const


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

    def _valid_voxels(self, Y, dtype=None, scale=None):
        """Return the voxels usable for fitting; warn about the others.

        A voxel is excluded when it holds NaN/inf or is constant over scans
        (flat: variance at or below the floor relative to its scale, in the
        coarser of ``Y``'s and the working ``dtype``; ``scale``: root mean
        square per voxel before any cleaning, default that of ``Y``).
        Results for excluded voxels are NaN (scores, alphas) or 0
        (coefficients) in outputs; ``fit`` never fails because of them,
        unless no voxel is usable.
        """
        finite, const = _voxel_status(Y, dtype=dtype, scale=scale)
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
