"""Units: which unit is which, from the model to the results.

The one home of unit naming and of the units table (ground floor: the
package imports nothing else of nilearn_vlm).

Names
    A :class:`Site` is one population of units of a model, named
    ``stream.layer.kind`` (``"vision.3.ffn"``); its units are named
    ``stream.layer.kind.index`` (``"vision.3.ffn.12"``); a layer (block) is
    named ``stream.layer`` (``"vision.3"``). :func:`unit_name`,
    :func:`site_name` and :func:`layer_name` write these names and
    :func:`parse_unit_name` reads a unit name back: no other module builds or
    splits them by hand.

Depth
    The fractional depth of a block is its position along the model's
    forward path from the input to the output, in (0, 1]. A model is a graph
    of blocks: layer ``l`` of a stream feeds layer ``l + 1`` of the same
    stream, and the adapter declares the links between streams
    (:meth:`nilearn_vlm.adapters.BaseAdapter.forward_links`; none for
    separate towers). With ``before(b)`` the number of blocks on the longest
    path from the input to the output of block ``b`` (``b`` included) and
    ``after(b)`` the number of blocks on the longest path from ``b``'s output
    to an output of the model (``b`` excluded)::

        depth(b) = before(b) / (before(b) + after(b))

    the fraction of the longest input-to-output path through ``b`` that lies
    at or before ``b``. For a stream of ``L`` layers that no other stream
    feeds or is fed by (each tower of CLIP or SigLIP, a text encoder), layer
    ``l`` has depth ``(l + 1) / L``. In a fusion model whose fusion layers
    take the last layers of its encoders (METER: a vision tower of ``V``
    layers and a text tower of ``T`` layers, then ``F`` co-attention layers
    in streams ``cross_text`` and ``cross_image``), text layer ``l`` has depth
    ``(l + 1) / (T + F)`` and fusion layer ``k`` has depth
    ``(max(V, T) + k + 1) / (max(V, T) + F)``: every fusion layer lies after
    every encoder layer. Depth is strictly increasing along every link and
    with the layer within a stream, and the last block of every path has
    depth 1.

Units table
    :func:`units_table` gives one row per unit with the columns
    :data:`UNIT_COLUMNS`: ``name`` (``stream.layer.kind.index``), ``stream``,
    ``layer`` (int), ``depth`` (float), ``kind``, ``index`` (int, the unit
    within its site) and ``site`` (``stream.layer.kind``).
    :class:`~nilearn_vlm.NeuronActivations` produces it (``units_``) and it
    travels with the arrays (``SparseAtoms.units_``, ``UnitVoxelMaps.units``,
    ``Results.units``). :func:`unit_groups` and :func:`group_table` group
    units by stream, layer, site, kind or depth.

Examples
--------
>>> from nilearn_vlm.units import Site, units_table, group_table
>>> sites = [Site("vision", l, "attn_out", 2) for l in range(4)]
>>> table = units_table(sites[:2])
>>> table[["name", "layer", "depth"]].values.tolist()
[['vision.0.attn_out.0', 0, 0.5], ['vision.0.attn_out.1', 0, 0.5], ['vision.1.attn_out.0', 1, 1.0], ['vision.1.attn_out.1', 1, 1.0]]
>>> units_table(sites[:2], model_sites=sites)["depth"].tolist()
[0.25, 0.25, 0.5, 0.5]
>>> group_table(table, "layer")["group"].tolist()
['vision.0', 'vision.1']
"""

from nilearn_vlm.units._groups import GROUP_BY, group_table, unit_groups
from nilearn_vlm.units._names import (
    DEFAULT_SELECTOR,
    UNIT_KINDS,
    Site,
    is_unit_name,
    layer_name,
    parse_unit_name,
    select_sites,
    site_name,
    unit_name,
)
from nilearn_vlm.units._table import (
    UNIT_COLUMNS,
    as_units_table,
    check_units_table,
    layer_depths,
    units_table,
)

__all__ = [
    "DEFAULT_SELECTOR",
    "GROUP_BY",
    "UNIT_COLUMNS",
    "UNIT_KINDS",
    "Site",
    "as_units_table",
    "check_units_table",
    "group_table",
    "is_unit_name",
    "layer_depths",
    "layer_name",
    "parse_unit_name",
    "select_sites",
    "site_name",
    "unit_groups",
    "unit_name",
    "units_table",
]
