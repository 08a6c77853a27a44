"""Per-network tables of signed significant-voxel maps.

Pure functions take arrays: ``sign_maps`` of shape (n_maps, n_voxels) whose
non-zero entries are the significant voxels (their sign the direction: the
"positive/negative BNs" of a map), and a boolean ``membership`` of shape
(n_networks, n_voxels) (:meth:`AtlasLabels.membership`). The image-friendly
wrappers (:func:`network_table`, :func:`layer_preference_table`) accept images
and atlas names and call them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

OUTSIDE = "(outside)"


_BLOCK = 1024  # maps converted at a time (bounds temporary memory)


def _as_sparse_signs(sign_maps):
    """int8 CSR signs of (n_maps, n_voxels) maps given dense or sparse."""
    from scipy import sparse

    if sparse.issparse(sign_maps):
        csr = sparse.csr_matrix(sign_maps)
        data = np.sign(np.nan_to_num(csr.data, nan=0.0)).astype(np.int8)
        out = sparse.csr_matrix((data, csr.indices, csr.indptr), shape=csr.shape)
        out.eliminate_zeros()
        return out
    arr = np.asarray(sign_maps)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"sign_maps must be (n_maps, n_voxels), got shape {arr.shape}")
    blocks = []
    for start in range(0, arr.shape[0], _BLOCK):
        block = arr[start:start + _BLOCK]
        if block.dtype.kind == "f":
            block = np.nan_to_num(block, nan=0.0)
        blocks.append(sparse.csr_matrix(np.sign(block).astype(np.int8)))
    if not blocks:
        return sparse.csr_matrix((0, arr.shape[1]), dtype=np.int8)
    return sparse.vstack(blocks, format="csr")


def _check(sign_maps, membership, network_names, map_names):
    sign = _as_sparse_signs(sign_maps)
    member = np.asarray(membership, dtype=bool)
    if member.ndim == 1:
        member = member[None, :]
    if member.shape[1] != sign.shape[1]:
        raise ValueError(
            f"the maps have {sign.shape[1]} voxels but the network membership has "
            f"{member.shape[1]}; load the atlas on the maps' own mask (atlas.load(masker))"
        )
    network_names = [str(n) for n in network_names]
    if len(network_names) != member.shape[0]:
        raise ValueError(f"{len(network_names)} network names for {member.shape[0]} networks")
    if map_names is None:
        map_names = [str(i) for i in range(sign.shape[0])]
    map_names = list(map_names)
    if len(map_names) != sign.shape[0]:
        raise ValueError(f"{len(map_names)} map names for {sign.shape[0]} maps")
    return sign, member, network_names, map_names


def _sets(sign):
    """Positive and negative voxel sets as float32 CSR 0/1 matrices."""
    return (sign > 0).astype(np.float32), (sign < 0).astype(np.float32)


def _group(sign, map_names, groups):
    """Union of each group's positive and of its negative voxels."""
    from scipy import sparse

    groups = np.asarray(groups)
    if groups.shape != (sign.shape[0],):
        raise ValueError(f"groups must give one label per map ({sign.shape[0]}), got {groups.shape}")
    names = list(dict.fromkeys(groups.tolist()))
    code = np.array([names.index(g) for g in groups.tolist()])
    G = sparse.csr_matrix(
        (np.ones(len(code), np.float32), (code, np.arange(len(code)))), shape=(len(names), len(code))
    )
    pos, neg = _sets(sign)
    pos = ((G @ pos) > 0).astype(np.float32)
    neg = ((G @ neg) > 0).astype(np.float32)
    return pos, neg, [str(n) for n in names]


def _rint(x):
    return np.rint(np.asarray(x)).astype(int)


def network_counts(sign_maps, membership, network_names, map_names=None, groups=None):
    """Significant voxels by sign in each network.

    Parameters
    ----------
    sign_maps : array-like or scipy sparse matrix, shape (n_maps, n_voxels)
        Non-zero where significant; the sign is the direction (NaN counts as
        0). Sparse input (unit-level maps of many units) stays sparse; dense
        input is converted in blocks of maps.
    membership : array-like of bool, shape (n_networks, n_voxels)
    network_names : sequence of str, length n_networks
    map_names : sequence of str or None
        Names of the maps (atoms, units, layers, streams); default "0", "1", ...
    groups : array-like or None, length n_maps
        Group of each map (e.g. the layer or stream of each atom): the maps of
        a group are merged (a voxel is positive for the group when positive in
        any of its maps, negative likewise) and rows are per group.

    Returns
    -------
    pandas.DataFrame
        Long table with columns ``map`` (or ``group``), ``network``,
        ``n_network`` (voxels in the network), ``n_pos``, ``n_neg``, ``n_sig``
        (``n_pos + n_neg``), ``frac_pos``/``frac_neg`` (of the network's
        voxels) and ``share_pos``/``share_neg`` (of the map's positive /
        negative voxels that fall in the network). A last row per map,
        network ``"(outside)"``, counts significant voxels in no network.

    Examples
    --------
    >>> import numpy as np
    >>> maps = np.array([[1, -1, 0, 1]])
    >>> member = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], bool)
    >>> t = network_counts(maps, member, ["A", "B"])
    >>> t[["network", "n_pos", "n_neg"]].values.tolist()
    [['A', 1, 1], ['B', 1, 0], ['(outside)', 0, 0]]
    """
    sign, member, network_names, map_names = _check(sign_maps, membership, network_names, map_names)
    key = "map"
    if groups is not None:
        pos, neg, map_names = _group(sign, map_names, groups)
        key = "group"
    else:
        pos, neg = _sets(sign)
    # networks plus one column for the voxels in no network
    m = np.vstack([member, ~member.any(axis=0)]).astype(np.float32)
    n_pos, n_neg = _rint(pos @ m.T), _rint(neg @ m.T)
    n_net = m.sum(axis=1).astype(int)
    tot_pos, tot_neg = _rint(pos.sum(axis=1)).ravel(), _rint(neg.sum(axis=1)).ravel()
    nets = [*network_names, OUTSIDE]
    n_maps, n_cols = len(map_names), len(nets)
    table = pd.DataFrame(
        {
            key: np.repeat(map_names, n_cols),
            "network": np.tile(nets, n_maps),
            "n_network": np.tile(n_net, n_maps),
            "n_pos": n_pos.ravel(),
            "n_neg": n_neg.ravel(),
        }
    )
    table["n_sig"] = table["n_pos"] + table["n_neg"]
    with np.errstate(divide="ignore", invalid="ignore"):
        table["frac_pos"] = table["n_pos"] / table["n_network"].where(table["n_network"] > 0)
        table["frac_neg"] = table["n_neg"] / table["n_network"].where(table["n_network"] > 0)
        per_map_pos = np.repeat(tot_pos, n_cols)
        per_map_neg = np.repeat(tot_neg, n_cols)
        table["share_pos"] = table["n_pos"] / np.where(per_map_pos > 0, per_map_pos, np.nan)
        table["share_neg"] = table["n_neg"] / np.where(per_map_neg > 0, per_map_neg, np.nan)
    return table


def dice(a, b):
    """Dice coefficient of two boolean sets (NaN when both are empty).

    Examples
    --------
    >>> dice([1, 1, 0], [1, 0, 0])
    0.6666666666666666
    """
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    denom = a.sum() + b.sum()
    return float(2 * (a & b).sum() / denom) if denom else float("nan")


def network_dice(sign_maps, membership, network_names, map_names=None, signs=("pos", "neg", "any")):
    """Dice overlap of each map's significant voxels with each network.

    Parameters
    ----------
    sign_maps, membership, network_names, map_names
        As in :func:`network_counts`.
    signs : sequence of {"pos", "neg", "any"}
        Which voxel sets of each map to compare: positive, negative, or all
        significant voxels.

    Returns
    -------
    pandas.DataFrame
        Columns ``map``, ``sign``, ``network``, ``dice`` (NaN when both sets
        are empty), ``n_map`` (voxels in the map's set), ``n_network``,
        ``n_overlap``.

    Examples
    --------
    >>> import numpy as np
    >>> t = network_dice(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 0, 0]], bool), ["A"], signs=["pos"])
    >>> round(float(t["dice"].iloc[0]), 3)
    0.667
    """
    sign, member, network_names, map_names = _check(sign_maps, membership, network_names, map_names)
    bad = [s for s in signs if s not in ("pos", "neg", "any")]
    if bad:
        raise ValueError(f"signs must be among 'pos', 'neg', 'any'; got {bad}")
    pos, neg = _sets(sign)
    sets = {"pos": pos, "neg": neg, "any": pos + neg}
    m = member.astype(np.float32)
    n_net = member.sum(axis=1)
    frames = []
    for s in signs:
        a = sets[s]
        overlap = _rint(a @ m.T)
        n_map = _rint(a.sum(axis=1)).ravel()
        denom = n_map[:, None] + n_net[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(denom > 0, 2 * overlap / np.maximum(denom, 1), np.nan)
        frames.append(
            pd.DataFrame(
                {
                    "map": np.repeat(map_names, len(network_names)),
                    "sign": s,
                    "network": np.tile(network_names, len(map_names)),
                    "dice": d.ravel(),
                    "n_map": np.repeat(n_map, len(network_names)),
                    "n_network": np.tile(n_net, len(map_names)),
                    "n_overlap": overlap.ravel(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def best_network(dice_table, sign="any"):
    """The network of highest Dice for each map.

    Parameters
    ----------
    dice_table : pandas.DataFrame
        Output of :func:`network_dice` (or :func:`network_table` with
        ``kind="dice"``).
    sign : {"pos", "neg", "any"}

    Returns
    -------
    pandas.Series
        Indexed by map, the best network's name (maps whose Dice is NaN or 0
        everywhere get None).
    """
    t = dice_table[dice_table["sign"] == sign]
    out = {}
    for name, sub in t.groupby("map", sort=False):
        d = sub["dice"].to_numpy(dtype=float)
        ok = np.isfinite(d) & (d > 0)
        out[name] = sub["network"].to_numpy()[ok][np.argmax(d[ok])] if ok.any() else None
    return pd.Series(out, name="network")


def layer_preference(layer_scores, threshold=None):
    """The best layer (site) per voxel.

    Parameters
    ----------
    layer_scores : dict of str to array-like, each shape (n_voxels,)
        A per-voxel score per layer (or site), such as the encoder's
        out-of-fold r of that layer's units, or a -log p.
    threshold : float or None
        Voxels whose best score is below it (or NaN everywhere) get -1.

    Returns
    -------
    best : ndarray of int, shape (n_voxels,)
        Index into ``names`` of the best layer, -1 where none.
    names : list of str
        The layers, in the dict's order.
    best_score : ndarray of float, shape (n_voxels,)

    Examples
    --------
    >>> best, names, score = layer_preference({"l0": [0.1, 0.5], "l1": [0.3, 0.2]})
    >>> best.tolist(), names
    ([1, 0], ['l0', 'l1'])
    """
    if not layer_scores:
        raise ValueError("layer_scores is empty: give {layer_name: per-voxel scores}")
    names = [str(k) for k in layer_scores]
    scores = np.vstack([np.asarray(v, dtype=float).ravel() for v in layer_scores.values()])
    filled = np.where(np.isnan(scores), -np.inf, scores)
    best = np.argmax(filled, axis=0)
    best_score = filled[best, np.arange(scores.shape[1])]
    none = ~np.isfinite(best_score)
    if threshold is not None:
        none |= best_score < threshold
    best = np.where(none, -1, best)
    return best, names, np.where(none, np.nan, best_score)


def layer_preference_counts(best, layer_names, membership, network_names):
    """Voxels of each network preferring each layer.

    Parameters
    ----------
    best : array-like of int, shape (n_voxels,)
        From :func:`layer_preference` (-1: no preference).
    layer_names : sequence of str
    membership : array-like of bool, shape (n_networks, n_voxels)
    network_names : sequence of str

    Returns
    -------
    pandas.DataFrame
        Columns ``network``, ``layer``, ``n_voxels``, ``fraction`` (of the
        network's voxels with a preference).
    """
    best = np.asarray(best)
    member = np.asarray(membership, bool)
    if member.shape[1] != best.shape[0]:
        raise ValueError(f"{best.shape[0]} voxels in best but {member.shape[1]} in membership")
    onehot = np.zeros((len(layer_names), best.shape[0]), np.float32)
    ok = best >= 0
    onehot[best[ok], np.flatnonzero(ok)] = 1
    counts = np.rint(member.astype(np.float32) @ onehot.T).astype(int)
    rows = []
    for j, net in enumerate(network_names):
        total = counts[j].sum()
        for k, layer in enumerate(layer_names):
            rows.append((str(net), str(layer), counts[j, k], counts[j, k] / total if total else np.nan))
    return pd.DataFrame(rows, columns=["network", "layer", "n_voxels", "fraction"])


def dominant_group(key_neurons, groups):
    """The group holding most of each atom's key neurons.

    Parameters
    ----------
    key_neurons : array-like, shape (n_atoms, n_units)
        Non-zero for the key neurons of each atom (``SparseAtoms.key_neurons_``).
    groups : array-like of str, shape (n_units,)
        Group of each unit (:func:`nilearn_vlm.units.unit_groups`).

    Returns
    -------
    ndarray of str, shape (n_atoms,)
        The most frequent group among the atom's key neurons (ties: the
        first in order of appearance); ``""`` for an atom without key neurons.

    Examples
    --------
    >>> dominant_group([[1, 1, 0], [0, 0, -1]], ["v.0", "v.0", "v.1"]).tolist()
    ['v.0', 'v.1']
    """
    key = np.asarray(key_neurons) != 0
    groups = np.asarray(groups, dtype=str)
    if key.ndim != 2 or key.shape[1] != groups.shape[0]:
        raise ValueError(f"key_neurons {key.shape} does not match {groups.shape[0]} unit groups")
    names = list(dict.fromkeys(groups.tolist()))
    onehot = np.vstack([groups == g for g in names]).astype(np.float32)  # (n_groups, n_units)
    counts = key.astype(np.float32) @ onehot.T
    best = np.argmax(counts, axis=1)
    return np.where(counts.max(axis=1) > 0, np.asarray(names, dtype=str)[best], "")
