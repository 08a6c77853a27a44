"""Unit naming, fractional depth, the units table and its groups (nilearn_vlm.units)."""

import doctest
import itertools

import numpy as np
import pandas as pd
import pytest

from nilearn_vlm import units as U
from nilearn_vlm.units import (
    Site,
    as_units_table,
    check_units_table,
    group_table,
    layer_depths,
    parse_unit_name,
    unit_groups,
    unit_name,
    units_table,
)


def _stream(name, n, modalities=("image",), kind="attn_out", width=1):
    return [Site(name, layer, kind, width, modalities) for layer in range(n)]


def test_docstring_examples_run():
    for mod in (U, U._names, U._table, U._groups):
        result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, mod.__name__
        assert result.attempted > 0, mod.__name__


def test_names_round_trip_and_bad_names_fail_clearly():
    rng = np.random.default_rng(0)
    for stream, kind in itertools.product(("vision", "cross_text"), U.UNIT_KINDS):
        layer, index = (int(x) for x in rng.integers(0, 5000, 2))
        name = unit_name(stream, layer, kind, index)
        assert parse_unit_name(name) == (stream, layer, kind, index)
        assert Site(stream, layer, kind, index + 1).unit_names()[-1] == name
    for bad in ("text.head.1", "text.2.head", "text.2.head.1.0", "text.-1.head.1", "text.2..1", "atom3"):
        with pytest.raises(ValueError, match="not of the form 'stream.layer.kind.index'"):
            parse_unit_name(bad)
        assert not U.is_unit_name(bad)


def _longest_path_depths(sites, links):
    """Independent reference: networkx longest paths through each block."""
    nx = pytest.importorskip("networkx")
    g = nx.DiGraph()
    for s in sites:
        g.add_node((s.stream, s.layer))
        if s.layer:
            g.add_edge((s.stream, s.layer - 1), (s.stream, s.layer))
    g.add_edges_from(links)
    out = {}
    for b in g:
        before = nx.dag_longest_path_length(g.subgraph(nx.ancestors(g, b) | {b})) + 1
        after = nx.dag_longest_path_length(g.subgraph(nx.descendants(g, b) | {b}))
        out[b] = before / (before + after)
    return out


def test_depth_of_two_towers_is_the_position_in_each_tower():
    # CLIP ViT-L/14: 24 vision layers, 12 text layers, no link between the towers
    sites = _stream("vision", 24) + _stream("text", 12, ("text",))
    depth = layer_depths(sites)
    for l in range(24):
        assert depth[("vision", l)] == pytest.approx((l + 1) / 24)
    for l in range(12):
        assert depth[("text", l)] == pytest.approx((l + 1) / 12)
    assert depth == pytest.approx(_longest_path_depths(sites, []))


def _meter(V, T, F):
    sites = _stream("vision", V) + _stream("text", T, ("text",))
    sites += _stream("cross_text", F, ("image", "text")) + _stream("cross_image", F, ("image", "text"))
    links = [((enc, n - 1), (cross, 0)) for enc, n in (("vision", V), ("text", T))
             for cross in ("cross_text", "cross_image")]
    for k in range(1, F):
        links += [(("cross_image", k - 1), ("cross_text", k)), (("cross_text", k - 1), ("cross_image", k))]
    return sites, links


@pytest.mark.parametrize("V, T, F", [(11, 12, 6), (12, 12, 6), (4, 2, 3)])
def test_depth_of_a_fusion_model_puts_fusion_after_the_encoders(V, T, F):
    sites, links = _meter(V, T, F)
    depth = layer_depths(sites, links)
    E = max(V, T)
    for l in range(V):
        assert depth[("vision", l)] == pytest.approx((l + 1) / (V + F))
    for l in range(T):
        assert depth[("text", l)] == pytest.approx((l + 1) / (T + F))
    for k in range(F):
        for stream in ("cross_text", "cross_image"):
            assert depth[(stream, k)] == pytest.approx((E + k + 1) / (E + F))
    last_encoder = max(depth[("vision", V - 1)], depth[("text", T - 1)])
    assert min(depth[(s, 0)] for s in ("cross_text", "cross_image")) > last_encoder
    assert depth == pytest.approx(_longest_path_depths(sites, links))


def test_depth_of_bridged_fusion_layers_beside_the_top_encoder_layers():
    # BridgeTower: T = 12 encoder layers, F = 6 fusion layers; fusion k reads encoder layer s - 1 + k, s = 7
    T, F = 12, 6
    s = T - F + 1
    sites = _stream("vision", T) + _stream("text", T, ("text",)) + _stream("cross_text", F, ("image", "text"))
    links = [(("text", s - 1), ("cross_text", 0)), (("vision", s - 1), ("cross_text", 0))]
    links += [(("text", s - 1 + k), ("cross_text", k)) for k in range(1, F)]
    depth = layer_depths(sites, links)
    for l in range(T):
        assert depth[("text", l)] == pytest.approx((l + 1) / (s + F))
    for k in range(F):
        assert depth[("cross_text", k)] == pytest.approx((s + k + 1) / (s + F))
    assert depth == pytest.approx(_longest_path_depths(sites, links))


def test_depth_properties_on_random_graphs():
    rng = np.random.default_rng(1)
    for _ in range(20):
        lengths = {f"s{i}": int(rng.integers(1, 6)) for i in range(int(rng.integers(1, 5)))}
        sites = [Site(s, l, "ffn", 1) for s, n in lengths.items() for l in range(n)]
        names = list(lengths)
        links = []
        for _ in range(int(rng.integers(0, 6))):
            a, b = sorted(rng.choice(len(names), 2, replace=len(names) == 1))
            if a == b:
                continue  # links go from a stream to a later one: acyclic
            links.append(((names[a], int(rng.integers(lengths[names[a]]))),
                          (names[b], int(rng.integers(lengths[names[b]])))))
        depth = layer_depths(sites, links)
        assert all(0 < d <= 1 for d in depth.values())
        for (s, l), d in depth.items():
            if (s, l + 1) in depth:
                assert depth[(s, l + 1)] > d
        for src, dst in links:
            assert depth[dst] > depth[src]
        assert depth == pytest.approx(_longest_path_depths(sites, links))


def test_bad_links_fail_clearly():
    sites = _stream("vision", 2) + _stream("text", 2, ("text",))
    with pytest.raises(ValueError, match="names block .'text', 5. that the model does not have"):
        layer_depths(sites, [(("vision", 1), ("text", 5))])
    with pytest.raises(ValueError, match="names block .'fusion', 0."):
        layer_depths(sites, [(("vision", 1), ("fusion", 0))])
    with pytest.raises(ValueError, match="make a cycle"):
        layer_depths(sites, [(("vision", 1), ("text", 0)), (("text", 1), ("vision", 0))])
    with pytest.raises(ValueError, match="is not ..from_stream, from_layer"):
        layer_depths(sites, [("vision.1", "text.0")])


def test_units_table_from_sites_and_from_names():
    model = _stream("vision", 4, kind="ffn", width=3) + _stream("text", 2, ("text",), kind="head", width=2)
    chosen = [model[1], model[4]]
    table = units_table(chosen, model_sites=model)
    assert list(table.columns) == list(U.UNIT_COLUMNS)
    assert table["name"].tolist() == chosen[0].unit_names() + chosen[1].unit_names()
    assert table["site"].tolist() == ["vision.1.ffn"] * 3 + ["text.0.head"] * 2
    assert table["index"].tolist() == [0, 1, 2, 0, 1]
    assert table["layer"].dtype == np.int64 and table["index"].dtype == np.int64
    np.testing.assert_allclose(table["depth"], [2 / 4] * 3 + [1 / 2] * 2)
    # from the names alone the depth counts the layers present (here the last ones are missing)
    guess = units_table(table["name"].tolist())
    pd.testing.assert_frame_equal(guess.drop(columns="depth"), table.drop(columns="depth"))
    np.testing.assert_allclose(guess["depth"], 1.0)
    # the names of every unit of the model give the exact table
    full = units_table(model)
    pd.testing.assert_frame_equal(units_table(full["name"].tolist()), full)
    with pytest.raises(ValueError, match="not among model_sites"):
        units_table([Site("audio", 0, "ffn", 1)], model_sites=model)


def test_check_units_table_names_the_problem():
    table = units_table(_stream("vision", 2, width=2))
    pd.testing.assert_frame_equal(check_units_table(table.iloc[::-1]), table.iloc[::-1].reset_index(drop=True))
    with pytest.raises(ValueError, match=r"lacks columns \['depth'\]"):
        check_units_table(table.drop(columns="depth"))
    with pytest.raises(ValueError, match="row 1 has name 'vision.0.attn_out.7' but its parts give"):
        check_units_table(table.assign(name=table["name"].where(table.index != 1, "vision.0.attn_out.7")))
    with pytest.raises(ValueError, match="row 0 has site"):
        check_units_table(table.assign(site="vision.9.attn_out"))
    with pytest.raises(ValueError, match=r"depth must lie in \(0, 1\]"):
        check_units_table(table.assign(depth=1.5))
    with pytest.raises(ValueError, match="appears twice"):
        check_units_table(pd.concat([table, table]))
    with pytest.raises(TypeError, match="pandas DataFrame"):
        check_units_table(table.to_dict())
    assert as_units_table(None) is None
    with pytest.raises(TypeError, match="not one string"):
        as_units_table("vision.0.ffn.0")


def test_groups_by_stream_layer_site_kind_and_depth():
    model = _stream("vision", 2, kind="ffn", width=2) + _stream("text", 2, ("text",), width=1)
    model += [Site("vision", 1, "attn_out", 1)]
    table = units_table(model)
    assert unit_groups(table, "stream").tolist() == ["vision"] * 4 + ["text"] * 2 + ["vision"]
    assert unit_groups(table, "layer").tolist() == ["vision.0"] * 2 + ["vision.1"] * 2 + ["text.0", "text.1",
                                                                                          "vision.1"]
    assert unit_groups(table, "kind").tolist() == ["ffn"] * 4 + ["attn_out"] * 3
    assert unit_groups(table, "depth").tolist() == ["0.5"] * 2 + ["1"] * 2 + ["0.5", "1", "1"]
    assert unit_groups(table["name"].tolist(), "site").tolist() == table["site"].tolist()
    layers = group_table(table, "layer")
    assert layers.columns.tolist() == ["group", "stream", "layer", "depth", "n_units"]
    assert layers.values.tolist() == [["vision.0", "vision", 0, 0.5, 2], ["vision.1", "vision", 1, 1.0, 3],
                                      ["text.0", "text", 0, 0.5, 1], ["text.1", "text", 1, 1.0, 1]]
    sites = group_table(table, "site")
    assert sites["group"].tolist() == ["vision.0.ffn", "vision.1.ffn", "vision.1.attn_out", "text.0.attn_out",
                                       "text.1.attn_out"]
    assert group_table(table, "stream").values.tolist() == [["vision", "vision", 5], ["text", "text", 2]]
    assert group_table(table, "kind").values.tolist() == [["ffn", "ffn", 4], ["attn_out", "attn_out", 3]]
    assert group_table(table, "depth").values.tolist() == [["0.5", 0.5, 3], ["1", 1.0, 4]]
    with pytest.raises(ValueError, match="by must be one of"):
        unit_groups(table, "head")
    with pytest.raises(ValueError, match="not of the form"):
        unit_groups(["u7"])


def test_neuron_activations_gives_the_models_depths(tmp_path):
    from nilearn_vlm import NeuronActivations
    from nilearn_vlm.testing import ToyAdapter

    stimuli = pd.DataFrame({"text": ["a cat", "a dog on a mat"]})
    # one layer of three extracted: its depth is 2/3 of the tower, not the rank among the layers present
    acts = NeuronActivations(model=ToyAdapter(width=8, n_layers=3), sites="text.1.ffn").fit(stimuli)
    assert acts.units_["depth"].unique().tolist() == [pytest.approx(2 / 3)]
    assert acts.units_["name"].tolist() == acts.get_feature_names_out().tolist()
    every = NeuronActivations(model=ToyAdapter(width=8, n_layers=3), sites="all").fit(
        stimuli.assign(image=[np.zeros((8, 8, 3), np.uint8)] * 2))
    layers = group_table(every.units_, "layer")
    assert layers["group"].tolist() == ["vision.0", "vision.1", "vision.2", "text.0", "text.1", "text.2"]
    np.testing.assert_allclose(layers["depth"], [1 / 3, 2 / 3, 1] * 2)
    assert sum(every.site_slices_[s].stop - every.site_slices_[s].start for s in every.site_slices_) == len(
        every.units_)
    for site, cols in every.site_slices_.items():
        assert set(every.units_["site"].iloc[cols]) == {site}
