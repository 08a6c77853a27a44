"""Fractional depth of the blocks of a model, and the units table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nilearn_vlm.units._names import Site, parse_unit_name, site_name, unit_name

#: Columns of the units table, in order.
UNIT_COLUMNS = ("name", "stream", "layer", "depth", "kind", "index", "site")


# ---------------------------------------------------------------- depth
def layer_depths(sites, links=()):
    """Fractional depth of every block (stream, layer) of a model.

    See the module documentation for the definition.

    Parameters
    ----------
    sites : iterable of Site
        Every site of the model (``adapter.sites()``); stream ``s`` has
        ``max(layer) + 1`` layers.
    links : iterable of ((str, int), (str, int))
        Links between streams: ``((from_stream, from_layer), (to_stream,
        to_layer))`` says that the output of the first block is an input of
        the second (:meth:`~nilearn_vlm.adapters.BaseAdapter.forward_links`).
        Within a stream, layer ``l`` feeds layer ``l + 1`` without a link.

    Returns
    -------
    dict
        ``{(stream, layer): depth}``, depth in (0, 1].

    Raises
    ------
    ValueError
        A link names an unknown stream or layer, or the links make a cycle.

    Examples
    --------
    Two towers (CLIP ViT-L/14: 24 vision and 12 text layers) and a fusion
    model (METER: 11 vision, 12 text, then 6 fusion layers):

    >>> towers = [Site("vision", l, "ffn", 1) for l in range(24)] + [Site("text", l, "ffn", 1) for l in range(12)]
    >>> d = layer_depths(towers)
    >>> d[("vision", 11)], d[("text", 11)], d[("text", 5)]
    (0.5, 1.0, 0.5)
    >>> meter = ([Site("vision", l, "ffn", 1) for l in range(11)] + [Site("text", l, "ffn", 1) for l in range(12)]
    ...          + [Site("cross_text", l, "ffn", 1) for l in range(6)])
    >>> links = [(("vision", 10), ("cross_text", 0)), (("text", 11), ("cross_text", 0))]
    >>> d = layer_depths(meter, links)
    >>> round(d[("text", 11)], 4), round(d[("cross_text", 0)], 4), d[("cross_text", 5)]
    (0.6667, 0.7222, 1.0)
    """
    n_layers = {}
    for s in sites:
        layer = int(s.layer)
        if layer < 0:
            raise ValueError(f"site {s.name!r} has a negative layer; layers count from 0")
        n_layers[s.stream] = max(n_layers.get(s.stream, 0), layer + 1)
    succ = {(s, l): [] for s, n in n_layers.items() for l in range(n)}
    for (s, n) in n_layers.items():
        for l in range(n - 1):
            succ[(s, l)].append((s, l + 1))
    for link in links:
        try:
            (a, la), (b, lb) = link
            src, dst = (a, int(la)), (b, int(lb))
        except (TypeError, ValueError):
            raise ValueError(
                f"forward link {link!r} is not ((from_stream, from_layer), (to_stream, to_layer))"
            ) from None
        for end in (src, dst):
            if end not in succ:
                raise ValueError(
                    f"forward link {link!r} names block {end} that the model does not have; its streams "
                    f"and layer counts are {n_layers}"
                )
        succ[src].append(dst)
    order = _topological(succ)
    before = {b: 1 for b in succ}
    for b in order:
        for c in succ[b]:
            before[c] = max(before[c], before[b] + 1)
    after = {b: 0 for b in succ}
    for b in reversed(order):
        for c in succ[b]:
            after[b] = max(after[b], after[c] + 1)
    return {b: before[b] / (before[b] + after[b]) for b in succ}


def _topological(succ):
    """Kahn's order of the blocks; ValueError on a cycle."""
    indeg = {b: 0 for b in succ}
    for b in succ:
        for c in succ[b]:
            indeg[c] += 1
    ready = [b for b in succ if indeg[b] == 0]
    order = []
    while ready:
        b = ready.pop()
        order.append(b)
        for c in succ[b]:
            indeg[c] -= 1
            if indeg[c] == 0:
                ready.append(c)
    if len(order) != len(succ):
        stuck = sorted(b for b in succ if indeg[b] > 0)
        raise ValueError(f"the forward links make a cycle through blocks {stuck[:6]}; a model's graph is acyclic")
    return order


# ---------------------------------------------------------------- the table
def units_table(units, *, links=(), model_sites=None):
    """The units table: one row per unit, columns :data:`UNIT_COLUMNS`.

    Parameters
    ----------
    units : sequence of Site, or sequence of str
        Sites (each gives its ``width`` units, in order) or unit names
        ``stream.layer.kind.index``.
    links : iterable, default=()
        Links between streams (:func:`layer_depths`).
    model_sites : sequence of Site or None
        Every site of the model, which fixes the number of layers of each
        stream. Default: the blocks of ``units`` themselves, so the last
        layer present in a stream counts as its last layer; the depths are
        then exact only when ``units`` covers the last layer of every stream.
        :meth:`nilearn_vlm.adapters.BaseAdapter.units_table` (used by
        :class:`~nilearn_vlm.NeuronActivations`) passes the adapter's sites
        and links.

    Returns
    -------
    pandas.DataFrame
        ``name``, ``stream``, ``kind``, ``site`` (str), ``layer``, ``index``
        (int64) and ``depth`` (float64), in the order of ``units``.

    Examples
    --------
    >>> units_table(["text.0.ffn.1", "text.1.ffn.0"])["depth"].tolist()
    [0.5, 1.0]
    """
    units = list(units)
    if units and all(isinstance(u, Site) for u in units):
        widths = np.asarray([int(s.width) for s in units])
        if (widths < 1).any():
            raise ValueError(f"site {units[int(np.argmin(widths))].name!r} has no unit (width < 1)")
        cols = {
            "stream": np.repeat(np.asarray([s.stream for s in units], dtype=object), widths),
            "layer": np.repeat(np.asarray([s.layer for s in units], dtype=np.int64), widths),
            "kind": np.repeat(np.asarray([s.kind for s in units], dtype=object), widths),
            "index": np.concatenate([np.arange(w, dtype=np.int64) for w in widths]),
        }
        blocks = units if model_sites is None else model_sites
    else:
        parts = [parse_unit_name(u) for u in units]
        cols = {
            "stream": np.asarray([p[0] for p in parts], dtype=object),
            "layer": np.asarray([p[1] for p in parts], dtype=np.int64),
            "kind": np.asarray([p[2] for p in parts], dtype=object),
            "index": np.asarray([p[3] for p in parts], dtype=np.int64),
        }
        blocks = model_sites
        if blocks is None:
            blocks = [Site(s, int(l), "", 1) for s, l in dict.fromkeys(zip(cols["stream"], cols["layer"]))]
    depths = layer_depths(blocks, links)
    pairs = list(zip(cols["stream"], cols["layer"].tolist()))
    missing = [p for p in dict.fromkeys(pairs) if p not in depths]
    if missing:
        raise ValueError(f"units of blocks {missing[:5]} are not among model_sites; give every site of the model")
    return pd.DataFrame({
        "name": _names(cols),
        "stream": cols["stream"],
        "layer": cols["layer"],
        "depth": np.asarray([depths[p] for p in pairs], dtype=np.float64),
        "kind": cols["kind"],
        "index": cols["index"],
        "site": _site_column(cols),
    })


def _site_column(cols):
    return np.asarray(
        [site_name(s, l, k) for s, l, k in zip(cols["stream"], cols["layer"].tolist(), cols["kind"])], dtype=object
    )


def _names(cols):
    return np.asarray(
        [unit_name(s, l, k, i) for s, l, k, i in
         zip(cols["stream"], cols["layer"].tolist(), cols["kind"], cols["index"].tolist())],
        dtype=object,
    )


def check_units_table(table):
    """Validate a units table; return it with the columns of :data:`UNIT_COLUMNS`, in order.

    Parameters
    ----------
    table : pandas.DataFrame

    Returns
    -------
    pandas.DataFrame
        A copy with a fresh ``RangeIndex``, the columns in order and their
        dtypes (str, int64, float64).

    Raises
    ------
    ValueError
        A column is missing, a name disagrees with its parts, or a depth
        lies outside (0, 1].

    Examples
    --------
    >>> t = units_table([Site("text", 0, "ffn", 2, ("text",))])
    >>> check_units_table(t.assign(depth=0.0))
    Traceback (most recent call last):
    ...
    ValueError: units table: depth must lie in (0, 1]; unit 'text.0.ffn.0' has 0.0
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"a units table is a pandas DataFrame with columns {UNIT_COLUMNS}; got {type(table).__name__}")
    missing = [c for c in UNIT_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(
            f"units table lacks columns {missing}; it needs {list(UNIT_COLUMNS)} "
            "(build it with nilearn_vlm.units.units_table)"
        )
    out = table.loc[:, list(UNIT_COLUMNS)].reset_index(drop=True)
    for col in ("name", "stream", "kind", "site"):
        out[col] = out[col].astype(str)
    try:
        for col in ("layer", "index"):
            out[col] = out[col].astype(np.int64)
        out["depth"] = out["depth"].astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"units table: layer and index must be integers and depth a number ({exc})") from None
    cols = {c: out[c].to_numpy() for c in ("stream", "layer", "kind", "index")}
    for col, expected in (("name", _names(cols)), ("site", _site_column(cols))):
        bad = np.flatnonzero(out[col].to_numpy() != expected)
        if bad.size:
            i = bad[0]
            raise ValueError(
                f"units table: row {i} has {col} {out[col].iat[i]!r} but its parts give {expected[i]!r}"
            )
    bad = np.flatnonzero(~((out["depth"] > 0) & (out["depth"] <= 1)).to_numpy())
    if bad.size:
        i = bad[0]
        raise ValueError(f"units table: depth must lie in (0, 1]; unit {out['name'].iat[i]!r} has {out['depth'].iat[i]}")
    bad = np.flatnonzero(((out["layer"] < 0) | (out["index"] < 0)).to_numpy())
    if bad.size:
        raise ValueError(f"units table: unit {out['name'].iat[bad[0]]!r} has a negative layer or index")
    if out["name"].duplicated().any():
        raise ValueError(f"units table: unit {out['name'][out['name'].duplicated()].iat[0]!r} appears twice")
    return out


def as_units_table(units):
    """A units table from a table, sites or unit names (None stays None).

    Parameters
    ----------
    units : pandas.DataFrame, sequence of Site, sequence of str or None
        A table is validated (:func:`check_units_table`); sites and names go
        through :func:`units_table` (so their depths count the layers
        present, see there).

    Returns
    -------
    pandas.DataFrame or None

    Examples
    --------
    >>> as_units_table(["vision.0.ffn.0", "vision.1.ffn.0"])["site"].tolist()
    ['vision.0.ffn', 'vision.1.ffn']
    """
    if units is None:
        return None
    if isinstance(units, pd.DataFrame):
        return check_units_table(units)
    if isinstance(units, (str, bytes)):
        raise TypeError("give a sequence of unit names, not one string")
    return units_table([u if isinstance(u, Site) else str(u) for u in units])
