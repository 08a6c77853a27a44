"""Atlas contract, spaces and target resolution.

An atlas is any object with ``name``, ``space``, ``networks`` and a
``load(target=None)`` method returning :class:`AtlasLabels`. Labels are only
resampled within a space family; asking an atlas for data of another family
raises :class:`SpaceMismatchError` (no silent mapping between spaces).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

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
N_GRAYORDINATES = 91282
N_CORTEX_GRAYORDINATES = 59412
N_FSAVERAGE5 = 20484
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


@dataclass
class AtlasLabels:
    """Labels of one atlas on the data's grid.

    Attributes
    ----------
    atlas : str
        Name of the atlas.
    space : str
        Space family of the labels.
    labels : ndarray of int, shape (n_voxels,)
        Label of each voxel (or grayordinate); 0 is background.
    lookup : pandas.DataFrame
        One row per label with columns ``index`` (the label value),
        ``name`` (the atlas's own name) and ``canonical`` (a coarse name shared
        across atlases, see :func:`canonical_network`; empty when none fits).
    description : str
        Definition and references.
    """

    atlas: str
    space: str
    labels: np.ndarray
    lookup: pd.DataFrame
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def n_voxels(self):
        """Number of voxels the labels cover."""
        return int(self.labels.shape[0])

    def membership(self, level="name"):
        """Boolean network membership.

        Parameters
        ----------
        level : {"name", "canonical"}
            ``"name"`` gives one row per label of the atlas; ``"canonical"``
            merges labels sharing a canonical name (labels without one drop).

        Returns
        -------
        names : list of str
        membership : ndarray of bool, shape (n_networks, n_voxels)
        """
        if level not in ("name", "canonical"):
            raise ValueError(f"level must be 'name' or 'canonical', got {level!r}")
        names, rows = [], []
        if level == "name":
            for index, name in zip(self.lookup["index"], self.lookup["name"]):
                names.append(str(name))
                rows.append(self.labels == int(index))
        else:
            for canon, group in self.lookup.groupby("canonical", sort=False):
                if not canon:
                    continue
                names.append(str(canon))
                rows.append(np.isin(self.labels, group["index"].to_numpy()))
        mat = np.vstack(rows) if rows else np.zeros((0, self.n_voxels), dtype=bool)
        return names, mat


def make_lookup(indices, names):
    """Build an atlas lookup table with canonical network names."""
    from nilearn_vlm.networks._canonical import canonical_network

    names = [str(n) for n in names]
    return pd.DataFrame(
        {
            "index": np.asarray(indices, dtype=int),
            "name": names,
            "canonical": [canonical_network(n) or "" for n in names],
        }
    )


class BaseAtlas:
    """Base class of the built-in atlases.

    Subclasses set ``name``, ``space``, ``description`` and implement
    ``_load(target)`` for a resolved :class:`Target` of their family.
    """

    name = None
    space = None
    description = ""

    @property
    def networks(self):
        """Names of the atlas's networks (or regions), background excluded."""
        return list(self._names())

    def _names(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def load(self, target=None):
        """Labels on the data's grid.

        Parameters
        ----------
        target : None, str, int, image, masker or ImageSpace
            The data's space: ``None`` (the atlas's default grid), a space name,
            a mask image (NIfTI, taken as MNI152), a fitted or mask-given
            nilearn masker, a CIFTI image or a grayordinate count (91,282 or the
            59,412 cortical ones), a surface image/mesh, or a
            :class:`nilearn_vlm.results.ImageSpace`.

        Returns
        -------
        AtlasLabels

        Raises
        ------
        SpaceMismatchError
            The target belongs to another space family than the atlas.
        """
        tgt = resolve_target(target, default_space=self.space)
        if tgt.space != canonical_space(self.space):
            raise SpaceMismatchError(
                f"atlas {self.name!r} is defined in {self.space} but the data are in "
                f"{tgt.space}; nilearn_vlm never maps labels between spaces silently. "
                f"Use an atlas of the {tgt.space} family (see "
                "nilearn_vlm.networks.list_atlases()) or bring the data into "
                f"{self.space} yourself"
            )
        return self._load(tgt)

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r} ({self.space})>"


class _LanguageAtlas(BaseAtlas):
    """One "Language" network made of named regions of another atlas.

    Subclasses set ``default_name`` and build the labels in ``_load`` from
    :meth:`_prefixes` (the hemisphere prefixes of the region names).
    """

    default_name = None

    def __init__(self, hemisphere="left", name=None):
        self.hemisphere = hemisphere
        self.name = self.default_name if name is None else name

    def _names(self):
        return ["Language"]

    def _prefixes(self, left, right):
        """Region-name prefixes of the chosen hemispheres."""
        if self.hemisphere not in ("left", "both"):
            raise ValueError(f"hemisphere must be 'left' or 'both', got {self.hemisphere!r}")
        return (left,) if self.hemisphere == "left" else (left, right)


@lru_cache(maxsize=4)
def default_mni_mask(resolution=2):
    """nilearn's MNI152 brain mask at ``resolution`` mm (bundled, offline)."""
    from nilearn.datasets import load_mni152_brain_mask

    return load_mni152_brain_mask(resolution=resolution)


def _check_mni_mask(mask_img):
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
    if n == N_FSAVERAGE5:
        return "fsaverage5"
    if n == N_FSLR32K:
        return "fsLR_32k"
    return f"surface({n} vertices)"


def resolve_target(target, default_space="MNI152"):
    """Turn what the user gives as the data's space into a :class:`Target`.

    Parameters
    ----------
    target : see :meth:`BaseAtlas.load`
    default_space : str
        Space used when ``target`` is None.

    Returns
    -------
    Target
    """
    import nibabel as nib

    if target is None:
        target = default_space
    if hasattr(target, "input_kind_"):  # a fitted VoxelEncoder / VoxelGLM
        from nilearn_vlm._imagespace import ImageSpace

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
        from nilearn_vlm.networks._hcp import check_hcp_axis

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
