"""Where per-voxel arrays live, so that images can be rebuilt and saved.

:class:`ImageSpace` records the kind of the data a pipeline ran on (NIfTI
volumes through a masker, surfaces through a surface masker, CIFTI
grayordinates, or bare arrays), turns ``(n_maps, n_voxels)`` arrays into
images of that kind and back, and saves itself to a folder without pickle.
"""

from __future__ import annotations

import json
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nilearn_vlm.spaces._names import (
    N_CORTEX_GRAYORDINATES,
    N_GRAYORDINATES,
    Target,
    _surface_space,
    canonical_space,
)

KINDS = ("array", "nifti", "surface", "cifti")


@contextmanager
def _quiet():
    """Silence nilearn's FutureWarnings about masker defaults."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _write_func_gifti(data, path):
    """One GIfTI data array per map (the usual layout of multi-map func.gii)."""
    import nibabel as nib

    data = np.asarray(data, dtype=np.float32)
    columns = [data] if data.ndim == 1 else [data[:, j] for j in range(data.shape[1])]
    darrays = [nib.gifti.GiftiDataArray(c, datatype="NIFTI_TYPE_FLOAT32") for c in columns]
    nib.save(nib.gifti.GiftiImage(darrays=darrays), str(path))


def _masker_space(kind, masker):
    """Space name of the data a fitted masker reads: MNI152 for volumes, a mesh's name."""
    if kind == "nifti":
        return "MNI152"
    mesh = getattr(getattr(masker, "mask_img_", None), "mesh", None)
    return None if mesh is None else _surface_space(int(mesh.n_vertices))


@dataclass
class ImageSpace:
    """The data's voxels and how to make images of per-voxel arrays.

    Build it with :meth:`from_masker`, :meth:`from_cifti`,
    :meth:`from_array` or :meth:`from_estimator` rather than directly.

    Attributes
    ----------
    kind : {"array", "nifti", "surface", "cifti"}
        The kind of the input data; images are rebuilt in the same kind.
    n_voxels : int
        Number of voxels (vertices, grayordinates, columns).
    space : str or None
        Space family (``"MNI152"``, ``"fsLR_91k"``, ``"fsaverage5"``) when
        known; atlases use it to refuse cross-space requests.
    masker : nilearn masker or None
        Fitted ``NiftiMasker``/``SurfaceMasker`` (NIfTI and surface kinds).
    brain_models : nibabel.cifti2.BrainModelAxis or None
        The grayordinates (CIFTI kind).
    time_axis : nibabel.cifti2.SeriesAxis or None
        The time axis of CIFTI time series (dtseries); time-series outputs
        of the estimators copy its step and unit. Not saved, and not
        compared by ``==``.
    """

    kind: str
    n_voxels: int
    space: str | None = None
    masker: object = None
    brain_models: object = None
    time_axis: object = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind in ("nifti", "surface") and self.masker is None:
            raise ValueError(f"a {self.kind} ImageSpace needs its fitted masker")
        if self.kind == "cifti" and self.brain_models is None:
            raise ValueError("a cifti ImageSpace needs the brain-model axis of the data")

    # ------------------------------------------------------------ builders
    @classmethod
    def from_masker(cls, masker, space=None):
        """From a nilearn ``NiftiMasker`` or ``SurfaceMasker`` (fitted or with a mask).

        Examples
        --------
        >>> import numpy as np, nibabel as nib
        >>> from nilearn.maskers import NiftiMasker
        >>> mask = nib.Nifti1Image(np.ones((2, 2, 2), np.int8), np.eye(4))
        >>> ImageSpace.from_masker(NiftiMasker(mask)).n_voxels
        8
        """
        from nilearn.maskers import SurfaceMasker

        if not hasattr(masker, "mask_img_"):
            if getattr(masker, "mask_img", None) is None:
                raise ValueError("fit the masker (or give it mask_img) before building an ImageSpace")
            with _quiet():
                masker = masker.fit()
        if isinstance(masker, SurfaceMasker):
            mask = masker.mask_img_
            n = int(sum(np.asarray(p).astype(bool).sum() for p in mask.data.parts.values()))
            if space is None:
                space = _masker_space("surface", masker)
            return cls("surface", n, space=space, masker=masker)
        n = int((np.asarray(masker.mask_img_.dataobj) != 0).sum())
        return cls("nifti", n, space=space or _masker_space("nifti", masker), masker=masker)

    @classmethod
    def from_cifti(cls, img_or_axis):
        """From a CIFTI image (its last axis) or a ``BrainModelAxis``.

        A dtseries also gives its time axis (``time_axis``).
        """
        import nibabel as nib

        axis, time_axis = img_or_axis, None
        if isinstance(img_or_axis, (str, Path)):
            img_or_axis = nib.load(str(img_or_axis))
        if isinstance(img_or_axis, nib.Cifti2Image):
            axis = img_or_axis.header.get_axis(img_or_axis.ndim - 1)
            first = img_or_axis.header.get_axis(0)
            if img_or_axis.ndim == 2 and isinstance(first, nib.cifti2.SeriesAxis):
                time_axis = first
        if not isinstance(axis, nib.cifti2.BrainModelAxis):
            raise ValueError("a CIFTI ImageSpace needs a brain-model (grayordinate) axis")
        space = "fsLR_91k" if len(axis) in (N_GRAYORDINATES, N_CORTEX_GRAYORDINATES) else None
        return cls("cifti", len(axis), space=space, brain_models=axis, time_axis=time_axis)

    @classmethod
    def from_array(cls, n_voxels, space=None):
        """Bare arrays of ``n_voxels`` columns (no images)."""
        if space is not None:
            space = canonical_space(space)
        return cls("array", int(n_voxels), space=space)

    @classmethod
    def from_estimator(cls, estimator, space=None):
        """The fitted ``space_`` of a ``VoxelEncoder``/``VoxelGLM``.

        Parameters
        ----------
        estimator : fitted estimator with a ``space_`` attribute
        space : str or None
            Overrides the space name of NIfTI, surface and array data (CIFTI
            data keep theirs).

        Examples
        --------
        >>> import numpy as np
        >>> from nilearn_vlm import VoxelEncoder
        >>> rng = np.random.default_rng(0)
        >>> enc = VoxelEncoder().fit(rng.standard_normal((20, 2)), rng.standard_normal((20, 3)))
        >>> ImageSpace.from_estimator(enc, space="fsaverage5")
        ImageSpace(kind='array', n_voxels=3, space='fsaverage5', masker=None, brain_models=None)
        """
        fitted = getattr(estimator, "space_", None)
        if fitted is None:
            raise ValueError(f"{type(estimator).__name__} is not fitted: call fit first")
        if space is None or fitted.kind == "cifti":
            return fitted
        if fitted.kind in ("nifti", "surface"):
            return cls.from_masker(fitted.masker, space=space)
        return cls.from_array(fitted.n_voxels, space=space)

    # ------------------------------------------------------------ images
    def transform(self, img):
        """Image (or array) -> ``(n_maps, n_voxels)`` array."""
        import nibabel as nib

        if isinstance(img, (str, Path)):
            img = nib.load(str(img))
        if isinstance(img, nib.Cifti2Image):
            arr = np.asarray(img.get_fdata())
        elif isinstance(img, np.ndarray):
            arr = img
        else:
            if self.masker is None:
                raise ValueError(f"a {self.kind} ImageSpace cannot read {type(img).__name__}")
            with _quiet():
                arr = np.asarray(self.masker.transform(img))
        arr = arr[None, :] if arr.ndim == 1 else arr
        if arr.shape[-1] != self.n_voxels:
            raise ValueError(f"the image has {arr.shape[-1]} voxels, the space {self.n_voxels}")
        return arr

    def inverse_transform(self, array, names=None):
        """``(n_maps, n_voxels)`` or ``(n_voxels,)`` array -> image of the data's kind.

        Arrays stay arrays; NIfTI gives a 3-D/4-D image, surfaces a
        ``SurfaceImage``, CIFTI a dscalar with one map per row (named by
        ``names``).
        """
        import nibabel as nib

        array = np.asarray(array)
        if array.shape[-1] != self.n_voxels:
            raise ValueError(f"array has {array.shape[-1]} voxels but the space has {self.n_voxels}")
        if self.kind == "array":
            return array
        if self.kind == "cifti":
            data = array[None] if array.ndim == 1 else array
            names = names or [f"map{i}" for i in range(data.shape[0])]
            hdr = nib.cifti2.Cifti2Header.from_axes((nib.cifti2.ScalarAxis(list(names)), self.brain_models))
            img = nib.Cifti2Image(data.astype(np.float32), hdr)
            img.nifti_header.set_intent("ConnDenseScalar")
            return img
        with _quiet():
            return self.masker.inverse_transform(array.astype(np.float32))

    def save_img(self, array, folder, stem, names=None):
        """Write the image of ``array`` under ``folder``; return the file names."""
        folder = Path(folder)
        if self.kind == "array":
            return []
        img = self.inverse_transform(array, names=names)
        if self.kind == "nifti":
            img.to_filename(folder / f"{stem}.nii.gz")
            return [f"{stem}.nii.gz"]
        if self.kind == "cifti":
            img.to_filename(folder / f"{stem}.dscalar.nii")
            return [f"{stem}.dscalar.nii"]
        files = []
        for part, hemi in (("left", "L"), ("right", "R")):
            if part in img.data.parts:
                _write_func_gifti(img.data.parts[part], folder / f"{stem}_hemi-{hemi}.func.gii")
                files.append(f"{stem}_hemi-{hemi}.func.gii")
        return files

    def atlas_target(self):
        """What :meth:`nilearn_vlm.networks.BaseAtlas.load` accepts as target."""
        if self.kind == "nifti":
            return self.masker
        if self.kind == "cifti":
            return self.brain_models
        if self.kind == "surface":
            return self.masker
        if self.space is None:
            raise ValueError("an array ImageSpace without a space cannot place atlases; give space=")
        family = canonical_space(self.space)
        if family == "MNI152":
            raise ValueError("MNI152 arrays need the mask: build the ImageSpace from the masker")
        return Target(family, n=self.n_voxels)

    # ------------------------------------------------------------ disk
    def save(self, folder):
        """Write ``space.json`` and the mask/mesh/axis files to ``folder``."""
        import nibabel as nib

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        info = {"kind": self.kind, "n_voxels": self.n_voxels, "space": self.space}
        if self.kind == "nifti":
            mask = self.masker.mask_img_
            nib.Nifti1Image((np.asarray(mask.dataobj) != 0).astype(np.uint8), mask.affine).to_filename(
                folder / "mask.nii.gz"
            )
        elif self.kind == "cifti":
            hdr = nib.cifti2.Cifti2Header.from_axes((nib.cifti2.ScalarAxis(["template"]), self.brain_models))
            nib.Cifti2Image(np.zeros((1, self.n_voxels), np.float32), hdr).to_filename(
                folder / "brain_models.dscalar.nii"
            )
        elif self.kind == "surface":
            mask = self.masker.mask_img_
            info["hemispheres"] = list(mask.mesh.parts)
            for part, hemi in (("left", "L"), ("right", "R")):
                if part in mask.mesh.parts:
                    mask.mesh.parts[part].to_gifti(folder / f"mesh_hemi-{hemi}.surf.gii")
                    from nilearn.surface.surface import data_to_gifti

                    data_to_gifti(np.asarray(mask.data.parts[part]).astype(np.uint8), folder / f"mask_hemi-{hemi}.func.gii")
        (folder / "space.json").write_text(json.dumps(info, indent=1))

    @classmethod
    def load(cls, folder):
        """Read what :meth:`save` wrote."""
        import nibabel as nib

        folder = Path(folder)
        info = json.loads((folder / "space.json").read_text())
        kind, n, space = info["kind"], int(info["n_voxels"]), info.get("space")
        if kind == "array":
            return cls("array", n, space=space)
        if kind == "cifti":
            return cls.from_cifti(nib.load(folder / "brain_models.dscalar.nii"))
        if kind == "nifti":
            from nilearn.maskers import NiftiMasker

            masker = NiftiMasker(mask_img=nib.load(folder / "mask.nii.gz"), standardize=None)
            return cls.from_masker(masker, space=space)
        from nilearn.maskers import SurfaceMasker
        from nilearn.surface import SurfaceImage

        hemis = {"left": "L", "right": "R"}
        parts = [p for p in info.get("hemispheres", ["left", "right"]) if p in hemis]
        mesh = {p: str(folder / f"mesh_hemi-{hemis[p]}.surf.gii") for p in parts}
        data = {
            p: nib.load(folder / f"mask_hemi-{hemis[p]}.func.gii").agg_data().astype(bool) for p in parts
        }
        from nilearn.surface import PolyMesh

        mask = SurfaceImage(PolyMesh(**mesh), data)
        return cls.from_masker(SurfaceMasker(mask_img=mask, standardize=None), space=space)
