"""Where the voxels live: image kinds, maskers, CIFTI axes, space names.

This package is the image input/output of nilearn-vlm. Everything that reads
fMRI targets into arrays or turns per-voxel arrays back into images goes
through it:

- :func:`load_targets` reads targets of any supported kind (4D NIfTI or a
  list of runs, :class:`~nilearn.surface.SurfaceImage`, CIFTI dtseries,
  arrays) into one ``(n_scans, n_voxels)`` array with run labels, confounds
  and the :class:`ImageSpace` of the voxels; :func:`array_to_image` turns
  results back into the input's kind. The voxelwise estimators
  (:class:`~nilearn_vlm.VoxelEncoder`, :class:`~nilearn_vlm.VoxelGLM`) and
  :func:`nilearn_vlm.pipeline.load_bold` use them.
- :class:`ImageSpace` records the kind of the data, its masker or
  grayordinates and its space family, rebuilds and saves images of per-voxel
  arrays, and saves itself to a folder.
- Space families (``"MNI152"``, ``"fsLR_91k"``, ``"fsaverage5"``):
  :func:`canonical_space` and :data:`SPACE_ALIASES`, the grid sizes
  (:data:`N_GRAYORDINATES`, ...), :func:`check_hcp_axis` for the HCP
  grayordinate order, :func:`default_mni_mask`, and :func:`resolve_target`,
  which turns what a user gives as the data's space into the :class:`Target`
  an atlas is loaded on (:mod:`nilearn_vlm.networks`). Atlases refuse data
  of another family with :class:`SpaceMismatchError`.
- The repetition time a header records: :func:`header_t_r` (NIfTI
  ``pixdim[4]`` in the unit of ``xyzt_units``, the CIFTI series step) and
  :func:`check_t_r`, which fails on a mismatch (:class:`TRMismatchError`)
  and warns where a header records none.

Supported target kinds (:attr:`ImageSpace.kind`):

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

Examples
--------
>>> import numpy as np
>>> from nilearn_vlm.spaces import load_targets
>>> t = load_targets(np.zeros((10, 3)), groups=[1] * 5 + [2] * 5)
>>> t.Y.shape, t.space.kind, t.space.n_voxels
((10, 3), 'array', 3)
"""

from nilearn_vlm.spaces._grayordinates import check_hcp_axis
from nilearn_vlm.spaces._imagespace import KINDS, ImageSpace
from nilearn_vlm.spaces._names import (
    N_CORTEX_GRAYORDINATES,
    N_FSAVERAGE5,
    N_FSLR32K,
    N_GRAYORDINATES,
    SPACE_ALIASES,
    SpaceMismatchError,
    Target,
    canonical_space,
    default_mni_mask,
)
from nilearn_vlm.spaces._resolve import resolve_target
from nilearn_vlm.spaces._targets import (
    LoadedTargets,
    array_to_image,
    check_confounds,
    load_targets,
)
from nilearn_vlm.spaces._tr import TRMismatchError, check_t_r, header_t_r

__all__ = [
    "KINDS",
    "N_CORTEX_GRAYORDINATES",
    "N_FSAVERAGE5",
    "N_FSLR32K",
    "N_GRAYORDINATES",
    "SPACE_ALIASES",
    "ImageSpace",
    "LoadedTargets",
    "SpaceMismatchError",
    "TRMismatchError",
    "Target",
    "array_to_image",
    "canonical_space",
    "check_confounds",
    "check_hcp_axis",
    "check_t_r",
    "default_mni_mask",
    "header_t_r",
    "load_targets",
    "resolve_target",
]
