"""Load fMRI targets of any supported kind into arrays, and turn arrays back.

The kinds (``"array"``, ``"nifti"``, ``"surface"``, ``"cifti"``) are listed in
:mod:`nilearn_vlm.spaces`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from sklearn.base import clone

from nilearn_vlm.spaces._imagespace import ImageSpace, _masker_space, _quiet


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


@dataclass
class LoadedTargets:
    """Targets loaded by :func:`load_targets`.

    Attributes
    ----------
    Y : ndarray of shape (n_scans, n_voxels)
        Floating-point values as stored (float32 stays float32; integers
        become float64); runs concatenated in the order given.
    runs : ndarray of shape (n_scans,) or None
        Run label per scan: ``groups`` when given, else ``0, 1, ...`` for a
        list of several runs, else None.
    confounds : ndarray of shape (n_scans, n_confounds) or None
        Validated confounds, runs concatenated.
    space : ImageSpace
        The voxels of ``Y`` (kind, masker, grayordinates); turns per-voxel
        arrays back into images (:func:`array_to_image`).
    ndim : {1, 2}
        1 when ``y`` was a 1D array (one voxel): estimators then give 1D
        outputs, as scikit-learn's do for a 1D target.
    """

    Y: np.ndarray
    runs: np.ndarray | None
    confounds: np.ndarray | None
    space: ImageSpace
    ndim: int = 2


def _make_masker(mask, kind, first, memory=None, verbose=0):
    """The masker for targets of ``kind`` (None for arrays and CIFTI), maybe unfitted."""
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
            masker = SurfaceMasker(mask_img=mask, memory=memory, verbose=verbose)
        else:
            masker = NiftiMasker(mask_img=mask, memory=memory, verbose=verbose)
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
        _check_mask_matches(masker, first)
    return masker


def _check_mask_matches(masker, img):
    """Raise when a NIfTI mask and the BOLD images differ in shape or affine."""
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


def _array_block(obj):
    """One run of array targets as a 2D float array, and its input ndim."""
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
    ndim = 2
    if arr.ndim == 1:
        ndim = 1
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(
            f"y must be 2D (n_scans, n_voxels); got {arr.ndim}D."
        )
    return (arr if arr.dtype.kind == "f" else arr.astype(np.float64)), ndim


def _image_block(kind, obj, masker):
    """One run of CIFTI, NIfTI or surface targets as a 2D array."""
    if kind == "cifti":
        ax = obj.header.get_axis(1)
        if not isinstance(ax, nib.cifti2.BrainModelAxis):
            raise ValueError(
                "CIFTI targets must have grayordinates (a brain-model "
                "axis) as the second axis, as in a dtseries."
            )
        return np.asarray(obj.get_fdata(dtype=np.float32))
    if kind == "nifti":
        if len(obj.shape) != 4:
            raise ValueError(
                f"Nifti targets must be 4D (x, y, z, time); got shape "
                f"{obj.shape}. Pass a list of 4D images for several runs."
            )
        _check_mask_matches(masker, obj)
    with _quiet():
        return np.asarray(masker.transform(obj))


def check_confounds(confounds, n_scans):
    """Confounds as one ``(n_scans, n_confounds)`` float array, checked.

    Parameters
    ----------
    confounds : None, array-like, DataFrame, list of them (one per run), or
        the ``(DataFrame, sample_mask)`` pair of nilearn's ``load_confounds``
    n_scans : int
        Scans of the targets (runs concatenated).

    Returns
    -------
    ndarray of shape (n_scans, n_confounds) or None

    Examples
    --------
    >>> check_confounds([[1.0], [2.0]], 2).shape
    (2, 1)
    """
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


def load_targets(y, mask=None, confounds=None, groups=None, *, space=None,
                 memory=None, verbose=0):
    """Load fMRI targets of any supported kind into one 2D array.

    Parameters
    ----------
    y : array, Niimg, SurfaceImage, Cifti2Image, path, or list of runs
        The targets (see :mod:`nilearn_vlm.spaces` for the kinds); all runs
        of one kind.
    mask : Niimg-like, SurfaceImage, nilearn masker or None, default=None
        A mask image (Nifti or surface) or a nilearn masker. None: images get
        a masker with nilearn's defaults (mask computed from the first run),
        arrays and CIFTI use all columns. A fitted masker is used as it is;
        an unfitted one is cloned and fitted. A mask image must have the
        images' shape and affine (resample it with
        :func:`nilearn.image.resample_to_img` otherwise). Not with ``space``.
    confounds : array, DataFrame, or list of them (one per run), optional
        See :func:`check_confounds`.
    groups : array-like of shape (n_scans,), optional
        Run labels; override the runs of a list of images.
    space : ImageSpace, optional
        The space of earlier targets (e.g. an estimator's fitted ``space_``):
        ``y`` must be of its kind and voxel count, and is read with its
        masker; the returned ``space`` is this one.
    memory : None, str or joblib.Memory, default=None
        Cache of the masker built from ``mask``.
    verbose : int, default=0
        Verbosity of the masker built from ``mask``.

    Returns
    -------
    LoadedTargets
        ``Y``, ``runs``, ``confounds``, ``space`` (and ``ndim``).

    Examples
    --------
    >>> import numpy as np
    >>> t = load_targets([np.ones((3, 2)), np.zeros((4, 2))])
    >>> t.Y.shape, t.runs.tolist(), t.space.kind
    ((7, 2), [0, 0, 0, 1, 1, 1, 1], 'array')
    """
    if space is not None and mask is not None:
        raise ValueError(
            "give either mask (to read new data) or space (to read data like "
            "earlier data), not both."
        )
    items = y if isinstance(y, (list, tuple)) else [y]
    if len(items) == 0:
        raise ValueError("y is an empty list: give at least one run.")
    kinds = [_kind_of(it) for it in items]
    if isinstance(y, (list, tuple)) and all(k == "array" for k, _ in kinds) \
            and all(np.ndim(o) == 0 for _, o in kinds):
        kinds = [("array", np.asarray(y))]  # list of numbers
    kind_set = {k for k, _ in kinds}
    if len(kind_set) > 1:
        raise TypeError(
            f"All runs of y must be of one kind; got {sorted(kind_set)}."
        )
    kind = kind_set.pop()
    objs = [o for _, o in kinds]
    if space is not None:
        if kind != space.kind:
            raise ValueError(
                f"y is {kind} data but the estimator was fitted on "
                f"{space.kind} data: give targets of the same kind."
            )
        masker = space.masker
    else:
        masker = _make_masker(mask, kind, objs[0], memory=memory, verbose=verbose)
        if masker is not None and not hasattr(masker, "mask_img_"):
            with _quiet():
                if getattr(masker, "mask_img", None) is not None:
                    masker.fit()
                else:
                    masker.fit(objs[0])  # mask from the first run
    ndim, blocks = 2, []
    for o in objs:
        if kind == "array":
            block, block_ndim = _array_block(o)
            ndim = min(ndim, block_ndim)
        else:
            block = _image_block(kind, o, masker)
        blocks.append(block)
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
    if space is not None:
        if Y.shape[1] != space.n_voxels:
            raise ValueError(
                f"y has {Y.shape[1]} voxels but the estimator was fitted "
                f"on {space.n_voxels}: use the same mask and space."
            )
    elif kind == "cifti":
        space = ImageSpace.from_cifti(objs[-1])  # the axes of the last run
    elif kind == "array":
        space = ImageSpace.from_array(Y.shape[1])
    else:
        space = ImageSpace(kind, Y.shape[1], space=_masker_space(kind, masker), masker=masker)
    C = check_confounds(confounds, Y.shape[0])
    return LoadedTargets(Y, runs, C, space, ndim)


def array_to_image(array, space, ndim=2):
    """Turn ``(n, n_voxels)`` or ``(n_voxels,)`` results into the targets' kind.

    The inverse of :func:`load_targets` for estimator outputs: arrays stay
    arrays (``ndim=1`` turns an ``(n, 1)`` array into ``(n,)``); NIfTI gives
    a 4D (3D for 1D input) image through the masker; surfaces give a
    ``SurfaceImage``; CIFTI gives a dtseries (2D input, with the step and
    unit of ``space.time_axis``) or a dscalar (1D input). Values keep their
    dtype in NIfTI and surface images; CIFTI images are float32.

    Parameters
    ----------
    array : ndarray of shape (n, n_voxels) or (n_voxels,)
    space : ImageSpace
    ndim : {1, 2}, default=2
        ``LoadedTargets.ndim`` of the targets the results describe.

    Returns
    -------
    ndarray, Nifti1Image, SurfaceImage or Cifti2Image

    Examples
    --------
    >>> import numpy as np
    >>> t = load_targets(np.arange(4.0))
    >>> array_to_image(t.Y * 2, t.space, ndim=t.ndim).tolist()
    [0.0, 2.0, 4.0, 6.0]
    """
    array = np.asarray(array)
    if space.kind == "array":
        if ndim == 1 and array.ndim == 2 and array.shape[1] == 1:
            return array[:, 0]
        return array
    if space.kind == "cifti":
        if array.ndim == 1:
            first = nib.cifti2.ScalarAxis(["map"])
            data = array[None]
        else:
            step = getattr(space.time_axis, "step", 1.0)
            unit = getattr(space.time_axis, "unit", "SECOND")
            first = nib.cifti2.SeriesAxis(0.0, step, array.shape[0], unit)
            data = array
        hdr = nib.cifti2.Cifti2Header.from_axes((first, space.brain_models))
        img = nib.cifti2.Cifti2Image(data.astype(np.float32), hdr)
        img.nifti_header.set_intent(
            "ConnDenseScalar" if array.ndim == 1 else "ConnDenseSeries")
        return img
    with _quiet():
        return space.masker.inverse_transform(array)
