"""Grouping units by stream, layer, site, kind or depth."""

from __future__ import annotations

import numpy as np

from nilearn_vlm.units._names import layer_name
from nilearn_vlm.units._table import as_units_table

#: Groupings of :func:`unit_groups` and :func:`group_table`.
GROUP_BY = ("stream", "layer", "site", "kind", "depth")


# ---------------------------------------------------------------- groups
def _depth_label(depth):
    return f"{float(depth):.6g}"


def unit_groups(units, by="layer"):
    """Group label of each unit.

    Parameters
    ----------
    units : units table, or sequence of unit names
    by : {"stream", "layer", "site", "kind", "depth"}
        ``"stream"``; ``"layer"`` gives ``stream.layer`` (layers of
        different streams stay apart); ``"site"`` gives
        ``stream.layer.kind``; ``"kind"`` the unit kind (``attn_out``,
        ``ffn``, ...); ``"depth"`` the fractional depth written with 6
        significant digits (blocks of parallel streams at the same position
        share a group, e.g. layer ``l`` of both 12-layer towers of CLIP).

    Returns
    -------
    ndarray of str, shape (n_units,)

    Examples
    --------
    >>> unit_groups(["vision.3.attn_out.7", "text.0.ffn.2"], by="layer").tolist()
    ['vision.3', 'text.0']
    >>> unit_groups(["vision.3.attn_out.7"], by="stream").tolist()
    ['vision']
    """
    if by not in GROUP_BY:
        raise ValueError(f"by must be one of {GROUP_BY}, got {by!r}")
    table = as_units_table(units)
    if by == "layer":
        labels = [layer_name(s, l) for s, l in zip(table["stream"], table["layer"].tolist())]
    elif by == "depth":
        labels = [_depth_label(d) for d in table["depth"].tolist()]
    else:
        labels = table[by].tolist()
    return np.asarray(labels, dtype=str)


def group_table(units, by="layer"):
    """One row per group of units, in the model's order.

    Parameters
    ----------
    units : units table, or sequence of unit names
    by : {"stream", "layer", "site", "kind", "depth"}
        As in :func:`unit_groups`.

    Returns
    -------
    pandas.DataFrame
        ``group`` (the label of :func:`unit_groups`), the columns that are
        constant within a group (``stream``, ``layer``, ``depth`` for layers;
        also ``kind`` for sites; ``stream`` for streams; ``kind`` for kinds;
        ``depth`` for depths) and ``n_units``. Streams come in order of first
        appearance, then layers in increasing order, then kinds in order of
        first appearance; depths in increasing order.

    Examples
    --------
    >>> from nilearn_vlm.units import Site, units_table
    >>> t = units_table([Site("text", 1, "ffn", 2, ("text",)), Site("vision", 0, "ffn", 1)])
    >>> group_table(t, "layer").values.tolist()
    [['text.1', 'text', 1, 1.0, 2], ['vision.0', 'vision', 0, 1.0, 1]]
    """
    table = as_units_table(units)
    labels = unit_groups(table, by)
    keep = {
        "stream": ["stream"],
        "layer": ["stream", "layer", "depth"],
        "site": ["stream", "layer", "depth", "kind"],
        "kind": ["kind"],
        "depth": ["depth"],
    }[by]
    frame = table[keep].assign(group=labels)
    stream_rank = {s: i for i, s in enumerate(dict.fromkeys(table["stream"]))}
    kind_rank = {k: i for i, k in enumerate(dict.fromkeys(table["kind"]))}
    out = frame.groupby("group", sort=False).first()
    out["n_units"] = frame.groupby("group", sort=False).size()
    if by == "depth":
        key = out["depth"].to_numpy()
        order = np.argsort(key, kind="stable")
    else:
        keys = []
        if "stream" in out:
            keys.append(out["stream"].map(stream_rank).to_numpy())
        if "layer" in out:
            keys.append(out["layer"].to_numpy())
        if "kind" in out:
            keys.append(out["kind"].map(kind_rank).to_numpy())
        order = np.lexsort(keys[::-1])
    out = out.iloc[order].reset_index()
    return out[["group", *keep, "n_units"]]
