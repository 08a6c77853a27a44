"""Which layer and stream each GLM regressor belongs to; network membership."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nilearn_vlm.units import group_table, is_unit_name, unit_groups, units_table

#: default branch of a stream name: vision-like or text-like
DEFAULT_BRANCHES = {
    "vision": ("vision", "image", "visual", "cross_image", "img"),
    "text": ("text", "language", "cross_text", "txt"),
}


def units_of(results):
    """The units table of results, or one built from unit-named regressors.

    Parameters
    ----------
    results : Results

    Returns
    -------
    pandas.DataFrame or None
        ``results.units`` when the results carry it; else, when the GLM
        regressors are units (``stream.layer.kind.index``), their table
        (:func:`nilearn_vlm.units.units_table`, depths counting the layers
        present); else None.

    Examples
    --------
    >>> from nilearn_vlm.results import Results
    >>> res = Results("m", regressor_names=["v.0.a.0", "v.1.a.0"], glm_sign_sets=np.zeros((2, 3)))
    >>> units_of(res)["depth"].tolist()
    [0.5, 1.0]
    """
    if results.units is not None:
        return results.units
    names = results.regressor_names
    if names is not None and len(names) and all(is_unit_name(n) for n in names):
        return units_table(names)
    return None


def _regressor_units(results):
    """The units table rows of the regressors when they are units, else None."""
    names = results.regressor_names
    if names is None or not len(names) or not all(is_unit_name(n) for n in names):
        return None
    if results.units is not None:
        rows = results.units.set_index("name", drop=False)
        if rows.index.is_unique and set(names) <= set(rows.index):
            return rows.loc[list(names)].reset_index(drop=True)
    return units_table(names)


def regressor_groups(results, by="layer", groups=None):
    """Layer (or stream, site, kind, depth) of each GLM regressor.

    Parameters
    ----------
    results : Results
    by : {"layer", "stream", "site", "kind", "depth"}
        Grouping (see :func:`nilearn_vlm.units.unit_groups`): ``"layer"``
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
    units = _regressor_units(results)
    if units is not None:
        return unit_groups(units, by=by)
    if results.atom_loadings is not None and results.units is not None and n_reg == results.n_atoms:
        unit_lab = unit_groups(results.units, by=by)
        labels = list(dict.fromkeys(unit_lab.tolist()))
        onehot = (unit_lab[:, None] == np.asarray(labels)[None, :]).astype(float)
        weight = np.abs(results.atom_loadings) @ onehot  # (n_atoms, n_groups)
        return np.asarray([labels[i] for i in weight.argmax(axis=1)], dtype=str)
    raise ValueError(
        f"cannot tell the {by} of each GLM regressor: the regressors are neither units named "
        "'stream.layer.kind.index' nor atoms with atom_loadings and unit_names; pass groups= "
        "(one label per regressor)"
    )


def describe_groups(results, labels):
    """Stream, layer and fractional depth of group labels, in the model's order.

    Parameters
    ----------
    results : Results
        Gives the units table (:func:`units_of`).
    labels : sequence of str
        Layer (``stream.layer``), site (``stream.layer.kind``) or stream
        names, e.g. from :func:`regressor_groups` or the keys of
        ``results.layer_scores``; repeats are allowed.

    Returns
    -------
    pandas.DataFrame
        One row per distinct label: ``group``, ``stream``, ``layer``
        (nullable int) and ``depth`` (the fractional depth of the units
        table, see :mod:`nilearn_vlm.units`; NaN for a stream). Labels found
        among the units' groups come first, streams in order of first
        appearance among ``labels``, then by layer and kind; labels that are
        not groups of the units follow in order of appearance, with stream
        ``""``, no layer and depth NaN.

    Examples
    --------
    >>> from nilearn_vlm.results import Results
    >>> res = Results("m", unit_names=[f"v.{l}.a.0" for l in range(4)])
    >>> describe_groups(res, ["v.3", "v.1", "extra"]).values.tolist()
    [['v.1', 'v', 1, 0.5], ['v.3', 'v', 3, 1.0], ['extra', '', <NA>, nan]]
    """
    labels = list(dict.fromkeys(str(x) for x in labels))
    known = {}
    units = units_of(results)
    if units is not None:
        for by in ("stream", "layer", "site"):
            for row in group_table(units, by).itertuples(index=False):
                if row.group not in known:
                    known[row.group] = (row.stream, getattr(row, "layer", pd.NA), getattr(row, "depth", np.nan),
                                        len(known))
    found = [lab for lab in labels if lab in known]
    stream_rank = {s: i for i, s in enumerate(dict.fromkeys(known[lab][0] for lab in found))}

    def key(lab):
        stream, layer, _, rank = known[lab]
        return stream_rank[stream], -1 if layer is pd.NA else layer, rank

    found.sort(key=key)
    rows = [{"group": lab, "stream": known[lab][0], "layer": known[lab][1], "depth": known[lab][2]} for lab in found]
    rows += [{"group": lab, "stream": "", "layer": pd.NA, "depth": np.nan} for lab in labels if lab not in known]
    out = pd.DataFrame(rows, columns=["group", "stream", "layer", "depth"])
    out["layer"] = out["layer"].astype("Int64")
    out["depth"] = out["depth"].astype(float)
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
