"""Space families, their names, grid sizes and the MNI152 mask checks.

Atlases and data are matched by space *family* (``"MNI152"``,
``"fsLR_91k"``, ``"fsaverage5"``); labels are only resampled within a family
and a request across families raises :class:`SpaceMismatchError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: Space families and the names (case- and punctuation-insensitive) that mean them.
SPACE_ALIASES = {
    "MNI152": (
        "mni152",
        "mni",
        "mni152nlin6asym",
        "mni152nlin2009casym",
        "mni152nlin2009asym",
        "mni152lin",
        "icbm152",
    ),
    "fsLR_91k": (
        "fslr91k",
        "hcpgrayordinates",
        "grayordinates",
        "cifti91k",
        "91k",
        "fslr32k91k",
    ),
    "fsaverage5": ("fsaverage5", "fsavg5"),
}
#: HCP standard grayordinates (fsLR 32k cortex without the medial wall + subcortex).
N_GRAYORDINATES = 91282
#: The cortical grayordinates among them (left then right hemisphere).
N_CORTEX_GRAYORDINATES = 59412
#: Vertices of the fsaverage5 mesh, both hemispheres.
N_FSAVERAGE5 = 20484
#: Vertices of the fsLR 32k mesh, both hemispheres.
N_FSLR32K = 2 * 32492
# generous box around the MNI152 brain (mm): a target mostly outside it is not MNI
_MNI_BOX = np.array([[-100.0, 100.0], [-135.0, 100.0], [-80.0, 115.0]])


class SpaceMismatchError(ValueError):
    """Raised when an atlas and the data live in different space families."""


def canonical_space(space):
    """Return the space family of a space name.

    Parameters
    ----------
    space : str
        A space name such as ``"MNI152NLin2009cAsym"``, ``"hcp_grayordinates"``
        or ``"fsaverage5"``.

    Returns
    -------
    str
        ``"MNI152"``, ``"fsLR_91k"`` or ``"fsaverage5"``.

    Raises
    ------
    ValueError
        The name belongs to no known family.

    Examples
    --------
    >>> canonical_space("hcp_grayordinates")
    'fsLR_91k'
    >>> canonical_space("MNI152NLin6Asym")
    'MNI152'
    """
    key = re.sub(r"[^a-z0-9]", "", str(space).lower())
    for family, aliases in SPACE_ALIASES.items():
        if key == re.sub(r"[^a-z0-9]", "", family.lower()) or key in aliases:
            return family
    known = ", ".join(f"{f} ({', '.join(a)})" for f, a in SPACE_ALIASES.items())
    raise ValueError(f"unknown space {space!r}; known space families and aliases: {known}")


@dataclass
class Target:
    """Where atlas labels are wanted: a space family plus its grid.

    Attributes
    ----------
    space : str
        Space family (see :func:`canonical_space`).
    mask_img : nibabel.Nifti1Image or None
        Boolean mask of the voxels (MNI152 volumes); labels follow the order
        of ``nilearn.masking.apply_mask`` (C order of the mask's voxels).
    n : int or None
        Number of grayordinates or vertices (surface spaces).
    """

    space: str
    mask_img: object = None
    n: int | None = None


@lru_cache(maxsize=4)
def default_mni_mask(resolution=2):
    """nilearn's MNI152 brain mask at ``resolution`` mm (bundled, offline).

    Parameters
    ----------
    resolution : int, default=2
        Voxel size in mm.

    Returns
    -------
    nibabel.Nifti1Image

    Examples
    --------
    >>> default_mni_mask(4).ndim
    3
    """
    from nilearn.datasets import load_mni152_brain_mask

    return load_mni152_brain_mask(resolution=resolution)


def _check_mni_mask(mask_img):
    """A 3-D int8 mask of ``mask_img``'s non-zero voxels, checked to lie in MNI152."""
    import nibabel as nib

    data = np.asarray(mask_img.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(
            f"a volume target must be a 3-D mask image, got shape {data.shape}; "
            "pass a mask (or a masker) rather than the 4-D data"
        )
    mask = data != 0
    if not mask.any():
        raise ValueError("the target mask image is empty (no non-zero voxel)")
    ijk = np.argwhere(mask)
    xyz = ijk @ mask_img.affine[:3, :3].T + mask_img.affine[:3, 3]
    inside = np.all((xyz >= _MNI_BOX[:, 0]) & (xyz <= _MNI_BOX[:, 1]), axis=1).mean()
    if inside < 0.5:
        raise SpaceMismatchError(
            "the target volume does not look like MNI152: "
            f"{100 * (1 - inside):.0f}% of its voxels lie outside the MNI152 brain box; "
            "register the data to MNI152 first (volume atlases here are MNI152)"
        )
    return nib.Nifti1Image(mask.astype(np.int8), mask_img.affine)


def _surface_space(n):
    """Space name of a mesh of ``n`` vertices (both hemispheres)."""
    if n == N_FSAVERAGE5:
        return "fsaverage5"
    if n == N_FSLR32K:
        return "fsLR_32k"
    return f"surface({n} vertices)"
