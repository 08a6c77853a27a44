"""Turn what a user gives as the data's space into an atlas :class:`Target`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nilearn_vlm.spaces._grayordinates import check_hcp_axis
from nilearn_vlm.spaces._imagespace import ImageSpace
from nilearn_vlm.spaces._names import (
    N_CORTEX_GRAYORDINATES,
    N_FSAVERAGE5,
    N_GRAYORDINATES,
    Target,
    _check_mni_mask,
    _surface_space,
    canonical_space,
    default_mni_mask,
)


def resolve_target(target, default_space="MNI152"):
    """Turn what the user gives as the data's space into a :class:`Target`.

    Parameters
    ----------
    target : None, str, int, image, masker, ImageSpace or fitted estimator
        The data's space: ``None`` (``default_space``), a space name, a mask
        image (NIfTI, taken as MNI152), a fitted or mask-given nilearn
        masker, a CIFTI image or brain-model axis, a grayordinate count
        (91,282 or the 59,412 cortical ones) or 20,484 (fsaverage5), a
        surface image/mesh, an :class:`ImageSpace`, or a fitted
        ``VoxelEncoder``/``VoxelGLM`` (its ``space_``).
    default_space : str
        Space used when ``target`` is None.

    Returns
    -------
    Target

    Raises
    ------
    SpaceMismatchError
        A volume that does not lie in MNI152.
    ValueError, TypeError
        A target that names no known grid.

    Examples
    --------
    >>> resolve_target(91282)
    Target(space='fsLR_91k', mask_img=None, n=91282)
    >>> resolve_target("fsaverage5").n
    20484
    """
    import nibabel as nib

    if target is None:
        target = default_space
    if hasattr(target, "space_"):  # a fitted VoxelEncoder / VoxelGLM
        target = ImageSpace.from_estimator(target)
    space_obj = getattr(target, "atlas_target", None)
    if callable(space_obj):  # ImageSpace and friends
        return resolve_target(space_obj(), default_space)
    if isinstance(target, Target):
        return target
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        n = int(target)
        if n in (N_GRAYORDINATES, N_CORTEX_GRAYORDINATES):
            return Target("fsLR_91k", n=n)
        if n == N_FSAVERAGE5:
            return Target("fsaverage5", n=n)
        raise ValueError(
            f"a count target must be {N_GRAYORDINATES} (HCP grayordinates), "
            f"{N_CORTEX_GRAYORDINATES} (their cortex) or {N_FSAVERAGE5} (fsaverage5 "
            f"vertices), got {n}; for volumes pass a mask image or masker"
        )
    if isinstance(target, (str, Path)):
        text = str(target)
        if text.endswith((".nii", ".nii.gz")) or Path(text).exists():
            return resolve_target(nib.load(text), default_space)
        family = canonical_space(text)
        if family == "MNI152":
            return Target(family, mask_img=_check_mni_mask(default_mni_mask(2)))
        if family == "fsLR_91k":
            return Target(family, n=N_GRAYORDINATES)
        return Target(family, n=N_FSAVERAGE5)
    if isinstance(target, (nib.Cifti2Image, nib.cifti2.BrainModelAxis)):
        axis = target
        if isinstance(target, nib.Cifti2Image):
            axis = target.header.get_axis(target.ndim - 1)
        if not isinstance(axis, nib.cifti2.BrainModelAxis):
            raise ValueError("the CIFTI target's last axis is not a brain-model axis")
        n = len(axis)
        if n not in (N_GRAYORDINATES, N_CORTEX_GRAYORDINATES):
            raise ValueError(
                f"the CIFTI target has {n} grayordinates; HCP atlases need the "
                f"standard {N_GRAYORDINATES} (or its {N_CORTEX_GRAYORDINATES} cortical ones)"
            )
        check_hcp_axis(axis)
        return Target("fsLR_91k", n=n)
    if isinstance(target, nib.spatialimages.SpatialImage):
        return Target("MNI152", mask_img=_check_mni_mask(target))
    # nilearn objects
    from nilearn.maskers import NiftiMasker, SurfaceMasker
    from nilearn.surface import PolyMesh, SurfaceImage

    if isinstance(target, SurfaceMasker):
        mask = getattr(target, "mask_img_", None)
        if mask is None:
            mask = target.mask_img
        if mask is None:
            raise ValueError("fit the SurfaceMasker (or give it a mask_img) before using it as target")
        return resolve_target(mask, default_space)
    if isinstance(target, SurfaceImage):
        target = target.mesh
    if isinstance(target, PolyMesh):
        n = int(target.n_vertices)
        return Target(_surface_space(n), n=n)
    if isinstance(target, NiftiMasker) or hasattr(target, "mask_img_") or hasattr(target, "mask_img"):
        mask = getattr(target, "mask_img_", None)
        if mask is None:
            mask = getattr(target, "mask_img", None)
        if mask is None:
            raise ValueError(
                f"{type(target).__name__} has no mask yet: fit it (or give it mask_img) "
                "before using it as the atlas target"
            )
        return resolve_target(mask, default_space)
    raise TypeError(
        f"cannot read a data space from {type(target).__name__}; give None, a space name, "
        "a mask image, a nilearn masker, a CIFTI image, a grayordinate count, a surface "
        "image/mesh or an ImageSpace"
    )
