"""Image input/output shared by the voxelwise estimators.

:class:`BaseVoxelEstimator` turns fMRI targets of several kinds into one
``(n_scans, n_voxels)`` array, and turns per-voxel results back into the kind
that came in. :class:`~nilearn_vlm.VoxelEncoder` and
:class:`~nilearn_vlm.VoxelGLM` subclass it.

Supported target kinds (``input_kind_``):

``"array"``
    a 2D array ``(n_scans, n_voxels)`` (a 1D array is one voxel), or a list of
    2D arrays (one per run).
``"nifti"``
    a 4D Niimg (image or path), or a list of 4D run images.
``"surface"``
    a :class:`nilearn.surface.SurfaceImage` (data ``(n_vertices, n_scans)``),
    or a list of them (one per run).
``"cifti"``
    a CIFTI-2 dtseries (:class:`nibabel.cifti2.Cifti2Image` or a path); the
    grayordinates are the voxels, the brain-model axis is kept for output.

Interface for subclasses (stable):

- ``self._load_targets(y, confounds=None, groups=None, reset=True)`` ->
  :class:`Targets` ``(Y, runs, confounds)``; sets ``masker_``,
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
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

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


@contextmanager
def _quiet():
    """Silence nilearn's FutureWarning about default masker parameters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _is_surface(obj):
    if not type(obj).__module__.startswith("nilearn"):
        return False  # no nilearn import for arrays
    from nilearn.surface import SurfaceImage

    return isinstance(obj, SurfaceImage)


def _is_cifti(obj):
    return isinstance(obj, nib.cifti2.Cifti2Image)


def _is_niimg(obj):
    return isinstance(obj, nib.spatialimages.SpatialImage) and not _is_cifti(obj)


def _load_path(obj):
    if isinstance(obj, (str, Path)):
        return nib.load(str(obj))
    return obj


def _kind_of(obj):
    """Return the kind of one target object, loading a path."""
    obj = _load_path(obj)
    if _is_cifti(obj):
        return "cifti", obj
    if _is_surface(obj):
        return "surface", obj
    if _is_niimg(obj):
        return "nifti", obj
    return "array", obj


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
    masker_ : nilearn masker or None
        The fitted masker (None for arrays and CIFTI).
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

    # ------------------------------------------------------------- maskers
    def _make_masker(self, kind, first):
        mask = self.mask
        if kind in ("array", "cifti"):
            if mask is not None:
                raise ValueError(
                    f"mask is only used with Nifti or surface images, but the "
                    f"targets are {kind}: select the columns yourself and "
                    f"pass mask=None."
                )
            return None
        from nilearn.maskers import NiftiMasker, SurfaceMasker

        if hasattr(mask, "inverse_transform") and hasattr(mask, "fit"):
            masker = mask
            if not hasattr(masker, "mask_img_"):
                masker = clone(mask)
        elif mask is None or _is_surface(mask) or _is_niimg(_load_path(mask)):
            mask = _load_path(mask)
            if kind == "surface":
                masker = SurfaceMasker(mask_img=mask, memory=self.memory,
                                       verbose=max(self.verbose - 1, 0))
            else:
                masker = NiftiMasker(mask_img=mask, memory=self.memory,
                                     verbose=max(self.verbose - 1, 0))
        else:
            raise TypeError(
                f"mask must be a mask image, a nilearn masker or None; "
                f"got {type(mask).__name__}."
            )
        is_surf_masker = isinstance(masker, SurfaceMasker)
        if (kind == "surface") != is_surf_masker:
            raise ValueError(
                f"The targets are {kind} images but the mask is "
                f"{'a surface' if is_surf_masker else 'a volume'} mask: use "
                f"a {'SurfaceMasker' if kind == 'surface' else 'NiftiMasker'}"
                f" or a matching mask image."
            )
        if kind == "nifti":
            self._check_mask_matches(masker, first)
        return masker

    @staticmethod
    def _check_mask_matches(masker, img):
        mask_img = getattr(masker, "mask_img_", None)
        if mask_img is None:
            mask_img = getattr(masker, "mask_img", None)
        if mask_img is None or not hasattr(masker, "mask_img"):
            return
        mask_img = _load_path(mask_img)
        if not _is_niimg(mask_img) or getattr(masker, "target_affine", None) \
                is not None or getattr(masker, "target_shape", None) is not None:
            return
        if tuple(mask_img.shape[:3]) != tuple(img.shape[:3]) or not np.allclose(
                mask_img.affine, img.affine, atol=1e-4):
            raise ValueError(
                f"The mask (shape {tuple(mask_img.shape[:3])}) does not match "
                f"the BOLD images (shape {tuple(img.shape[:3])}) in shape or "
                f"affine: resample it with nilearn.image.resample_to_img("
                f"mask, bold, interpolation='nearest')."
            )

    # -------------------------------------------------------------- inputs
    def _load_targets(self, y, confounds=None, groups=None, reset=True):
        """Load targets of any supported kind into a 2D array.

        With ``reset=True`` (in ``fit``) sets ``masker_``, ``input_kind_``
        and ``n_voxels_``; with ``reset=False`` (in ``score``) uses the
        fitted masker and checks that kind and voxel count match the fit.

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
        items = y if isinstance(y, (list, tuple)) else [y]
        if len(items) == 0:
            raise ValueError("y is an empty list: give at least one run.")
        kinds = [_kind_of(it) for it in items]
        if isinstance(y, (list, tuple)) and all(k == "array" for k, _ in kinds) \
                and all(np.ndim(o) == 0 for _, o in kinds):
            kinds, items = [("array", np.asarray(y))], [y]  # list of numbers
        kind_set = {k for k, _ in kinds}
        if len(kind_set) > 1:
            raise TypeError(
                f"All runs of y must be of one kind; got {sorted(kind_set)}."
            )
        kind = kind_set.pop()
        objs = [o for _, o in kinds]
        if not reset:
            if kind != self.input_kind_:
                raise ValueError(
                    f"y is {kind} data but the estimator was fitted on "
                    f"{self.input_kind_} data: give targets of the same kind."
                )
            y_ndim = self._y_ndim
        else:
            self.input_kind_ = kind
            self._y_ndim = 2
            self.masker_ = self._make_masker(kind, objs[0])
        if reset and self.masker_ is not None and \
                not hasattr(self.masker_, "mask_img_"):
            with _quiet():
                if getattr(self.masker_, "mask_img", None) is not None:
                    self.masker_.fit()
                else:
                    self.masker_.fit(objs[0])  # mask from the first run
        blocks = [self._targets_to_array(kind, o) for o in objs]
        if len({b.shape[1] for b in blocks}) > 1:
            raise ValueError(
                "Runs of y have different numbers of voxels: "
                f"{[b.shape[1] for b in blocks]}."
            )
        Y = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
        runs = None
        if len(blocks) > 1:
            runs = np.repeat(np.arange(len(blocks)), [len(b) for b in blocks])
        if groups is not None:
            groups = np.asarray(groups).ravel()
            if groups.shape[0] != Y.shape[0]:
                raise ValueError(
                    f"groups has {groups.shape[0]} entries but y has "
                    f"{Y.shape[0]} scans: give one run label per scan."
                )
            runs = groups
        if reset:
            self.n_voxels_ = Y.shape[1]
        else:
            self._y_ndim = y_ndim
            if Y.shape[1] != self.n_voxels_:
                raise ValueError(
                    f"y has {Y.shape[1]} voxels but the estimator was fitted "
                    f"on {self.n_voxels_}: use the same mask and space."
                )
        C = self._check_confounds(confounds, Y.shape[0])
        return Targets(Y, runs, C)

    def _targets_to_array(self, kind, obj):
        if kind == "array":
            arr = np.asarray(obj)
            if arr.dtype.kind == "O":
                try:
                    arr = arr.astype(np.float64)
                except (TypeError, ValueError) as err:
                    raise ValueError(
                        "y must hold numbers (Unknown label type: non-numeric "
                        "objects)."
                    ) from err
            if arr.dtype.kind not in "fiub":
                raise ValueError(f"y must be numeric; got dtype {arr.dtype}.")
            if arr.ndim == 1:
                self._y_ndim = 1
                arr = arr[:, None]
            if arr.ndim != 2:
                raise ValueError(
                    f"y must be 2D (n_scans, n_voxels); got {arr.ndim}D."
                )
            return arr if arr.dtype.kind == "f" else arr.astype(np.float64)
        if kind == "cifti":
            ax = obj.header.get_axis(1)
            if not isinstance(ax, nib.cifti2.BrainModelAxis):
                raise ValueError(
                    "CIFTI targets must have grayordinates (a brain-model "
                    "axis) as the second axis, as in a dtseries."
                )
            self._cifti_axes = (obj.header.get_axis(0), ax, obj.nifti_header)
            return np.asarray(obj.get_fdata(dtype=np.float32))
        if kind == "nifti":
            if len(obj.shape) != 4:
                raise ValueError(
                    f"Nifti targets must be 4D (x, y, z, time); got shape "
                    f"{obj.shape}. Pass a list of 4D images for several runs."
                )
            self._check_mask_matches(self.masker_, obj)
        with _quiet():
            return np.asarray(self.masker_.transform(obj))

    @staticmethod
    def _check_confounds(confounds, n_scans):
        if confounds is None:
            return None
        if isinstance(confounds, tuple) and len(confounds) == 2 and \
                hasattr(confounds[0], "columns"):
            confounds = confounds[0]  # load_confounds' (df, sample_mask)
        if isinstance(confounds, (list, tuple)):
            C = np.concatenate([np.asarray(c, float).reshape(len(c), -1)
                                for c in confounds])
        else:
            C = np.asarray(confounds, float)
            C = C.reshape(len(C), -1)
        if C.shape[0] != n_scans:
            raise ValueError(
                f"confounds have {C.shape[0]} rows but y has {n_scans} scans: "
                f"give one row per scan (runs concatenated)."
            )
        if not np.all(np.isfinite(C)):
            raise ValueError(
                "confounds contain NaN or inf (e.g. the first row of "
                "derivative columns): fill them (nilearn's load_confounds "
                "does) before passing them."
            )
        return C

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
        """
        if not hasattr(self, "input_kind_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet: call "
                f"fit first."
            )
        array = np.asarray(array)
        kind = self.input_kind_
        if kind == "array":
            if self._y_ndim == 1 and array.ndim == 2 and array.shape[1] == 1:
                return array[:, 0]
            return array
        if kind == "cifti":
            ax0, bm, nhdr = self._cifti_axes
            if array.ndim == 1:
                first = nib.cifti2.ScalarAxis(["map"])
                data = array[None]
            else:
                step = getattr(ax0, "step", 1.0)
                unit = getattr(ax0, "unit", "SECOND")
                first = nib.cifti2.SeriesAxis(0.0, step, array.shape[0], unit)
                data = array
            hdr = nib.cifti2.Cifti2Header.from_axes((first, bm))
            img = nib.cifti2.Cifti2Image(data.astype(np.float32), hdr)
            img.nifti_header.set_intent(
                "ConnDenseScalar" if array.ndim == 1 else "ConnDenseSeries")
            return img
        with _quiet():
            return self.masker_.inverse_transform(array)
