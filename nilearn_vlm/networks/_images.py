"""Image-friendly wrappers of the network tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nilearn_vlm.networks._base import AtlasLabels
from nilearn_vlm.networks._tables import (
    layer_preference,
    layer_preference_counts,
    network_counts,
    network_dice,
)


def _ensure_fitted(masker):
    if masker is None:
        return None
    if hasattr(masker, "mask_img_") or not hasattr(masker, "fit"):
        return masker
    if getattr(masker, "mask_img", None) is None:
        raise ValueError(
            f"the {type(masker).__name__} has no mask: fit it on the data or give it mask_img"
        )
    return masker.fit()


def _is_image(obj):
    return isinstance(obj, (str, Path)) or (hasattr(obj, "shape") and not isinstance(obj, np.ndarray))


def image_to_array(img, masker=None):
    """Values of one image (or array) over the data's voxels.

    Parameters
    ----------
    img : array-like, path, NIfTI image, SurfaceImage or CIFTI image
    masker : nilearn masker or ImageSpace or None
        Needed for NIfTI and surface images.

    Returns
    -------
    ndarray, shape (n_maps, n_voxels)
    """
    import nibabel as nib

    if isinstance(img, (str, Path)):
        img = nib.load(str(img))
    if isinstance(img, nib.Cifti2Image):
        arr = np.asarray(img.dataobj, dtype=float)
        return arr.reshape(-1, arr.shape[-1])
    if isinstance(img, np.ndarray) or np.isscalar(img) or isinstance(img, (list, tuple)):
        arr = np.asarray(img, dtype=float)
        return arr[None, :] if arr.ndim == 1 else arr
    masker = _ensure_fitted(masker)
    if masker is None:
        raise ValueError(
            f"a {type(img).__name__} needs masker= (the nilearn masker or ImageSpace of the "
            "data) to become voxel values"
        )
    arr = np.asarray(masker.transform(img), dtype=float)
    return arr[None, :] if arr.ndim == 1 else arr


def maps_to_array(maps, masker=None):
    """Stack maps given as arrays, images or a dict of them.

    Parameters
    ----------
    maps : array-like (n_maps, n_voxels), image (3-D/4-D), list of images, or
        dict of name to array/image
    masker : nilearn masker, ImageSpace or None

    Returns
    -------
    names : list of str
    array : ndarray, shape (n_maps, n_voxels)
    """
    if isinstance(maps, dict):
        names, rows = [], []
        for name, m in maps.items():
            arr = image_to_array(m, masker)
            if arr.shape[0] != 1:
                raise ValueError(f"map {name!r} holds {arr.shape[0]} maps; give one map per name")
            names.append(str(name))
            rows.append(arr[0])
        return names, np.vstack(rows)
    if isinstance(maps, (list, tuple)) and maps and _is_image(maps[0]):
        arr = np.vstack([image_to_array(m, masker) for m in maps])
        return [str(i) for i in range(arr.shape[0])], arr
    arr = image_to_array(maps, masker)
    return [str(i) for i in range(arr.shape[0])], arr


def load_atlases(atlases, target):
    """Load atlases (names, atlas objects or :class:`AtlasLabels`) on a target."""
    from nilearn_vlm.plugins import get_atlas

    if isinstance(atlases, (str, AtlasLabels)) or hasattr(atlases, "load"):
        atlases = [atlases]
    out = []
    for a in atlases:
        if isinstance(a, AtlasLabels):
            out.append(a)
            continue
        atlas = get_atlas(a) if isinstance(a, str) else a
        out.append(atlas.load(target))
    return out


def voxel_networks(labels, networks=None, level="canonical"):
    """One network name per voxel from one or more atlases' labels.

    Parameters
    ----------
    labels : AtlasLabels or sequence of AtlasLabels
        Labels on the same voxels (e.g. ``Results.network_labels.values()``);
        where atlases overlap, the later one wins.
    networks : sequence of str or None
        Networks kept; None keeps every network. A network left out does not
        overwrite the voxels of an earlier atlas's kept network.
    level : {"canonical", "name"}
        Canonical network names or the atlases' own (see
        :meth:`AtlasLabels.membership`).

    Returns
    -------
    ndarray of str, shape (n_voxels,)
        ``""`` for voxels outside the networks.

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.networks import AtlasLabels
    >>> from nilearn_vlm.networks import make_lookup
    >>> a = AtlasLabels("a", "MNI152", np.array([1, 1, 2, 0]), make_lookup([1, 2], ["Visual", "DefaultMode"]))
    >>> b = AtlasLabels("b", "MNI152", np.array([0, 1, 0, 0]), make_lookup([1], ["Language"]))
    >>> voxel_networks([a, b]).tolist()
    ['vision', 'language', 'default mode', '']
    >>> voxel_networks([a, b], networks=["vision", "default mode"]).tolist()
    ['vision', 'vision', 'default mode', '']
    """
    labels = [labels] if isinstance(labels, AtlasLabels) else list(labels)
    if not labels:
        raise ValueError("voxel_networks needs the labels of at least one atlas")
    sizes = {lab.atlas: lab.n_voxels for lab in labels}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"the atlases' labels cover different numbers of voxels: {sizes}")
    out = np.full(labels[0].n_voxels, "", dtype=object)
    for lab in labels:
        for name, rows in zip(*lab.membership(level)):
            if networks is None or name in networks:
                out[rows] = name
    return out.astype(str)


def network_table(
    maps,
    atlases,
    masker=None,
    kind="counts",
    level="name",
    map_names=None,
    groups=None,
    target=None,
    signs=("pos", "neg", "any"),
):
    """Per-network table of signed significant-voxel maps.

    Parameters
    ----------
    maps : array-like, image(s) or dict
        Signed significant-voxel maps (non-zero = significant), one per atom,
        unit, layer or stream; see :func:`maps_to_array`.
    atlases : str, atlas, AtlasLabels or a list of them
        Atlas names are looked up with :func:`nilearn_vlm.get_atlas`.
    masker : nilearn masker, ImageSpace or None
        The data's masker: turns images into arrays and is the atlas target.
    kind : {"counts", "dice"}
        :func:`network_counts` or :func:`network_dice`.
    level : {"name", "canonical"}
        Atlas networks by their own names or merged into canonical networks
        ("vision", "language", "attention", "default mode", ...).
    map_names : sequence of str or None
        Overrides the names of the maps.
    groups : array-like or None
        Merge maps by group before counting (``kind="counts"`` only).
    target : optional
        Atlas target when ``masker`` is None (e.g. 91282 for grayordinates).
    signs : sequence of str
        Voxel sets compared when ``kind="dice"``.

    Returns
    -------
    pandas.DataFrame
        The rows of the chosen table for every atlas, with a leading ``atlas``
        column.
    """
    if kind not in ("counts", "dice"):
        raise ValueError(f"kind must be 'counts' or 'dice', got {kind!r}")
    names, arr = maps_to_array(maps, masker)
    if map_names is not None:
        names = list(map_names)
    tgt = masker if masker is not None else target
    listed = [atlases] if isinstance(atlases, (str, AtlasLabels)) or hasattr(atlases, "load") else atlases
    if tgt is None and not all(isinstance(a, AtlasLabels) for a in listed):
        raise ValueError(
            "give masker= (images) or target= (arrays: a mask image, a masker or a "
            "grayordinate count) so that the atlases can be put on the maps' voxels"
        )
    frames = []
    for labels in load_atlases(atlases, tgt):
        net_names, member = labels.membership(level)
        if kind == "counts":
            t = network_counts(arr, member, net_names, names, groups=groups)
        else:
            if groups is not None:
                raise ValueError("groups is only supported with kind='counts'")
            t = network_dice(arr, member, net_names, names, signs=signs)
        t.insert(0, "atlas", labels.atlas)
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def layer_preference_table(layer_scores, atlases, masker=None, threshold=None, level="name", target=None):
    """Voxels of each network preferring each layer.

    Parameters
    ----------
    layer_scores : dict of str to array or image
        Per-voxel score per layer or site.
    atlases, masker, level, target
        As in :func:`network_table`.
    threshold : float or None
        See :func:`layer_preference`.

    Returns
    -------
    pandas.DataFrame
        Columns ``atlas``, ``network``, ``layer``, ``n_voxels``, ``fraction``.
    """
    names, arr = maps_to_array(dict(layer_scores), masker)
    best, names, _ = layer_preference(dict(zip(names, arr)), threshold=threshold)
    tgt = masker if masker is not None else target
    frames = []
    for labels in load_atlases(atlases, tgt):
        net_names, member = labels.membership(level)
        t = layer_preference_counts(best, names, member, net_names)
        t.insert(0, "atlas", labels.atlas)
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def layer_preference_img(layer_scores, masker, threshold=None):
    """Image of the best layer per voxel (1-based; 0 where none).

    Parameters
    ----------
    layer_scores : dict of str to array or image
    masker : fitted nilearn masker or ImageSpace
        Builds the output image with ``inverse_transform``.
    threshold : float or None

    Returns
    -------
    img : image
        The best layer's 1-based index per voxel.
    names : list of str
        Layer ``k`` of the image is ``names[k - 1]``.
    """
    names, arr = maps_to_array(dict(layer_scores), masker)
    best, names, _ = layer_preference(dict(zip(names, arr)), threshold=threshold)
    masker = _ensure_fitted(masker)
    return masker.inverse_transform((best + 1).astype(np.float32)), names
