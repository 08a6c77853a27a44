"""Which layer and stream each GLM regressor belongs to; network membership."""

from __future__ import annotations

import re

import numpy as np

from nilearn_vlm.networks import unit_groups

#: default branch of a stream name: vision-like or text-like
DEFAULT_BRANCHES = {
    "vision": ("vision", "image", "visual", "cross_image", "img"),
    "text": ("text", "language", "cross_text", "txt"),
}


def _is_unit_name(name):
    return len(str(name).split(".")) >= 4


def regressor_groups(results, by="layer", groups=None):
    """Layer (or stream, site) of each GLM regressor.

    Parameters
    ----------
    results : Results
    by : {"layer", "stream", "site", "kind"}
        Grouping (see :func:`nilearn_vlm.networks.unit_groups`): ``"layer"``
        gives ``stream.layer``.
    groups : array-like of str or None
        Explicit group per regressor; returned as given when not None.

    Returns
    -------
    ndarray of str, shape (n_regressors,)
        When the regressors are units (names ``stream.layer.kind.index``),
        their own group. When they are atoms, the group holding the largest
        share of the atom's absolute loadings (``atom_loadings``), so an atom
        is assigned to the layer or stream that dominates it.

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.results import Results
    >>> res = Results("m", unit_names=["v.0.a.0", "v.1.a.0", "t.0.a.0"],
    ...               atom_loadings=np.array([[2.0, 0.5, 0.0], [0.0, 0.1, -3.0]]),
    ...               glm_sign_sets=np.zeros((2, 4)))
    >>> regressor_groups(res, "layer").tolist()
    ['v.0', 't.0']
    """
    names = results.regressor_names
    n_reg = len(names) if names is not None else results.n_atoms
    if groups is not None:
        groups = np.asarray(groups, dtype=str)
        if n_reg is not None and groups.shape != (n_reg,):
            raise ValueError(f"groups must give one label per regressor ({n_reg}), got shape {groups.shape}")
        return groups
    if names is not None and all(_is_unit_name(n) for n in names):
        return unit_groups(names, by=by)
    if results.atom_loadings is not None and results.unit_names is not None and n_reg == results.n_atoms:
        unit_lab = unit_groups(results.unit_names, by=by)
        labels = list(dict.fromkeys(unit_lab.tolist()))
        onehot = (unit_lab[:, None] == np.asarray(labels)[None, :]).astype(float)
        weight = np.abs(results.atom_loadings) @ onehot  # (n_atoms, n_groups)
        return np.asarray([labels[i] for i in weight.argmax(axis=1)], dtype=str)
    raise ValueError(
        f"cannot tell the {by} of each GLM regressor: the regressors are neither units named "
        "'stream.layer.kind.index' nor atoms with atom_loadings and unit_names; pass groups= "
        "(one label per regressor)"
    )


def _layer_key(label):
    parts = str(label).split(".")
    tail = parts[-1]
    m = re.search(r"-?\d+", tail)
    return (int(m.group()) if m else 0, tail)


def order_layers(labels):
    """Unique layer labels ordered by stream (first appearance) then layer index.

    Examples
    --------
    >>> order_layers(["v.10", "v.2", "t.1", "v.2"])
    ['v.2', 'v.10', 't.1']
    """
    labels = [str(x) for x in labels]
    uniq = list(dict.fromkeys(labels))
    streams = list(dict.fromkeys(lab.rsplit(".", 1)[0] if "." in lab else "" for lab in uniq))
    return sorted(uniq, key=lambda lab: (streams.index(lab.rsplit(".", 1)[0] if "." in lab else ""),
                                         _layer_key(lab)))


def layer_depth(labels):
    """Relative depth in [0, 1] of each ``stream.layer`` label within its stream.

    Examples
    --------
    >>> layer_depth(["v.0", "v.1", "v.2", "t.5"]).tolist()
    [0.0, 0.5, 1.0, 0.0]
    """
    labels = [str(x) for x in labels]
    out = np.zeros(len(labels))
    streams = {}
    for i, lab in enumerate(labels):
        streams.setdefault(lab.rsplit(".", 1)[0] if "." in lab else "", []).append(i)
    for idx in streams.values():
        ordered = order_layers([labels[i] for i in idx])
        n = len(ordered)
        for i in idx:
            out[i] = ordered.index(labels[i]) / (n - 1) if n > 1 else 0.0
    return out


def branch_of_stream(stream, branches=None):
    """``"vision"``, ``"text"`` or ``""`` for a stream name.

    Parameters
    ----------
    stream : str
    branches : dict of str to sequence of str, optional
        Branch name to the stream names it holds; default
        :data:`DEFAULT_BRANCHES` (``vision``/``cross_image`` -> vision,
        ``text``/``cross_text`` -> text).

    Examples
    --------
    >>> branch_of_stream("cross_image"), branch_of_stream("text"), branch_of_stream("fusion")
    ('vision', 'text', '')
    """
    branches = DEFAULT_BRANCHES if branches is None else branches
    s = str(stream)
    for branch, names in branches.items():
        if s in names:
            return branch
    return ""


def network_membership(results, atlas=None, level="canonical", include_all=True):
    """Networks of the results' voxels.

    Parameters
    ----------
    results : Results
    atlas : str or None
        Key of ``results.network_labels``; None takes the first one.
    level : {"canonical", "name"}
        Canonical networks ("vision", "language", ...) or the atlas's own.
    include_all : bool
        Prepend a network ``"(all)"`` holding every voxel.

    Returns
    -------
    names : list of str
    membership : ndarray of bool, shape (n_networks, n_voxels)
        Only ``"(all)"`` when the results carry no network labels.

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.results import Results
    >>> names, member = network_membership(Results("m", encoder_scores=np.zeros(3)))
    >>> names, member.shape
    (['(all)'], (1, 3))
    """
    n_vox = results.n_voxels
    if n_vox is None:
        raise ValueError("the results hold no per-voxel maps")
    names, rows = [], []
    if include_all:
        names.append("(all)")
        rows.append(np.ones(n_vox, dtype=bool))
    if results.network_labels:
        if atlas is None:
            atlas = next(iter(results.network_labels))
        if atlas not in results.network_labels:
            raise ValueError(f"no atlas {atlas!r} in the results; have {sorted(results.network_labels)}")
        net_names, member = results.network_labels[atlas].membership(level)
        names += list(net_names)
        rows += list(member)
    if not rows:
        raise ValueError("no networks: include_all=False and the results carry no network labels")
    return names, np.vstack(rows)
