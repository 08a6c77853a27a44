"""Polarity analysis on subjects where the answer is planted."""

import json

import numpy as np
import pytest
from scipy import stats as sps

from nilearn_vlm import get_analysis, list_plugins
from nilearn_vlm.results import Results
from nilearn_vlm_polarity import PolarityAnalysis, mirrored_trend


def test_registered_through_entry_point():
    table = list_plugins()
    row = table[table["name"] == "polarity"]
    assert row["distribution"].tolist() == ["nilearn-vlm-polarity"]
    assert get_analysis("polarity") is PolarityAnalysis


def test_mirrored_trend_against_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.random(9), rng.random(9)
    r, steps = mirrored_trend(a, b)
    assert r == pytest.approx(sps.pearsonr(a, b)[0])
    assert mirrored_trend(a, b, "spearman")[0] == pytest.approx(sps.spearmanr(a, b)[0])
    da, db = np.diff(a), np.diff(b)
    assert steps == pytest.approx(np.mean(np.sign(da) != np.sign(db)))


def test_layer_curves_are_counts_of_the_planted_sets(mirrored):
    out = PolarityAnalysis().run(mirrored, n_bootstrap=100)
    curves = out.to_frame("layer_curves")
    whole = curves[curves["network"] == "(all)"]
    np.testing.assert_array_equal(whole["n_pos"], 20 + 15 * np.arange(10))
    np.testing.assert_array_equal(whole["n_neg"], 170 - 15 * np.arange(10))
    vis = curves[curves["network"] == "vision"]
    sign = mirrored.glm_sign_sets
    np.testing.assert_array_equal(vis["n_pos"], [(sign[2 * l: 2 * l + 2, :200] > 0).any(0).sum() for l in range(10)])
    streams = out.to_frame("stream_counts").set_index("network")
    assert streams.loc["(all)", "n_pos"] == (sign > 0).any(0).sum()
    assert streams.loc["default mode", "n_both"] == ((sign[:, 200:] > 0).any(0) & (sign[:, 200:] < 0).any(0)).sum()
    # fractional depth of the 10-layer stream, from the units table of the regressors: (l + 1) / 10
    np.testing.assert_allclose(whole["depth"], (np.arange(10) + 1) / 10)
    assert whole["stream"].tolist() == ["vision"] * 10
    frac = PolarityAnalysis().run(mirrored, n_bootstrap=10, measure="fraction").to_frame("layer_curves")
    np.testing.assert_allclose(frac[frac["network"] == "(all)"]["n_pos"], whole["n_pos"] / 400)


def test_mirror_statistic_tells_mirrored_from_independent(mirrored, subject_factory):
    m = PolarityAnalysis().run(mirrored, n_bootstrap=500)
    # mirrored: r about -1, bootstrap interval far from 0, beyond random layer orders, every step opposite
    assert m.stats["mirror_r:vision"] < -0.95
    assert m.stats["mirror_high:vision"] < -0.8
    assert m.stats["p_mirror:vision"] < 0.001
    assert m.stats["opposite_steps:vision"] == 1.0
    t = m.to_frame("mirrored_trend").set_index("network")
    assert t.loc["vision", "high"] < 0 and t.loc["default mode", "high"] < 0
    assert -1 <= m.stats["mirror_low:vision"] <= m.stats["mirror_high:vision"]
    # independent curves: p_mirror behaves like a null p-value over many simulated subjects
    ps, rs = [], []
    for seed in range(20):
        i = PolarityAnalysis().run(subject_factory(False, seed=seed), n_bootstrap=20, n_permutations=2000)
        ps.append(i.stats["p_mirror:vision"])
        rs.append(i.stats["mirror_r:vision"])
    assert np.mean(np.asarray(ps) < 0.05) <= 0.15
    assert abs(np.mean(rs)) < 0.2


def test_layer_permutation_p_matches_exhaustive_enumeration():
    from itertools import permutations

    from nilearn_vlm_polarity._analysis import _layer_permutation_p

    a, b = np.array([1.0, 3, 2, 5, 4]), np.array([2.0, 1, 4, 3, 0])
    r = np.corrcoef(a, b)[0, 1]
    exact = np.mean([np.corrcoef(a, b[list(p)])[0, 1] <= r + 1e-12 for p in permutations(range(5))])
    got = _layer_permutation_p(a, b, "pearson", 20000, np.random.default_rng(0))
    assert got == pytest.approx(exact, abs=0.01)


def _with_folds(res, flip, seed=0):
    rng = np.random.default_rng(seed)
    folds = np.repeat(res.glm_sign_sets[None].astype(float), 4, axis=0)
    flips = rng.random(folds.shape) < flip
    folds[flips] *= -1
    return folds


def test_sign_consistency_and_fold_bootstrap(mirrored):
    stable = PolarityAnalysis().run(mirrored, n_bootstrap=200, fold_sign_sets=_with_folds(mirrored, 0.0))
    noisy = PolarityAnalysis().run(mirrored, n_bootstrap=200, fold_sign_sets=_with_folds(mirrored, 0.5))
    assert stable.stats["sign_consistency"] == 1.0
    assert noisy.stats["sign_consistency"] == pytest.approx(0.5, abs=0.03)
    assert stable.params["bootstrap"] == "folds"
    # identical folds: the fold bootstrap has no spread
    assert stable.stats["mirror_low:vision"] == pytest.approx(stable.stats["mirror_r:vision"])
    with pytest.raises(ValueError, match="fold_sign_sets must be"):
        PolarityAnalysis().run(mirrored, fold_sign_sets=np.zeros((2, 3, 4)))


def _units_subject(opposed, seed=0):
    """Atoms over 12 units; opposed: negative-loading units have the negated map of the atom's positive units."""
    rng = np.random.default_rng(seed)
    units = [f"vision.{l}.attn_out.{i}" for l in range(3) for i in range(4)]
    load = np.zeros((3, 12))
    maps = np.zeros((12, 300))
    for k in range(3):
        cols = np.arange(4 * k, 4 * k + 4)
        load[k, cols] = [1.0, 0.8, -0.9, -0.7]
        base = rng.standard_normal(300)
        for c, s in zip(cols, np.sign(load[k, cols])):
            maps[c] = (s * base if opposed else rng.standard_normal(300)) + 0.3 * rng.standard_normal(300)
    res = Results("toy", unit_names=units, atom_loadings=load, glm_sign_sets=np.sign(load @ maps).astype(np.int8))
    return res, maps


def test_opposite_sign_units_drive_opposite_voxels():
    res_o, maps_o = _units_subject(True)
    res_i, maps_i = _units_subject(False)
    o = PolarityAnalysis().run(res_o, unit_maps=maps_o, n_bootstrap=10, min_layers=1)
    i = PolarityAnalysis().run(res_i, unit_maps=maps_i, n_bootstrap=10, min_layers=1)
    assert o.stats["map_r_opposite_sign"] < -0.8 and o.stats["map_r_same_sign"] > 0.8
    assert o.stats["opposition"] > 1.6
    assert abs(i.stats["opposition"]) < 0.3
    signs = o.to_frame("unit_signs")
    assert signs["n_pos_units"].sum() == 6 and signs["n_neg_units"].sum() == 6
    pairs = o.to_frame("unit_pairs")
    r = np.corrcoef(maps_o[0], maps_o[2])[0, 1]
    assert pairs.query("unit_a == 'vision.0.attn_out.0' and unit_b == 'vision.0.attn_out.2'")["map_r"].item() == \
        pytest.approx(r)


def test_unit_maps_from_topk():
    res, maps = _units_subject(True)
    k = 12
    idx = np.argsort(-np.abs(maps), axis=0)[:k]
    val = np.take_along_axis(maps, idx, axis=0)
    res.unit_voxel_topk = {"index": idx, "value": val}
    o = PolarityAnalysis().run(res, n_bootstrap=10, min_layers=1)
    assert o.stats["opposition"] > 1.6


def test_outputs_and_errors(mirrored):
    out = PolarityAnalysis().run(mirrored, n_bootstrap=50)
    assert len(out.plot()) == 1
    # the figure is data: the whole-brain curves of the table, positive and negative
    (spec,) = out.figures
    assert (spec.kind, spec.x, spec.y, spec.hue) == ("line", "depth", "value", "sign")
    whole = out.to_frame("layer_curves").query("network == '(all)'")
    pos = spec.data[spec.data["sign"] == "positive"]["value"].to_numpy()
    np.testing.assert_array_equal(pos, whole["n_pos"].to_numpy())
    assert spec.note.startswith(f"r = {out.stats['mirror_r:vision']:.2f}")
    json.dumps(out.summary())
    assert "Sign consistency needs fold_sign_sets" in " ".join(out.notes)
    from nilearn_vlm.report import analysis_section

    assert "Analysis: polarity" in analysis_section(out).to_html()
    with pytest.raises(ValueError, match="measure must be"):
        PolarityAnalysis().run(mirrored, measure="mean")
    short = PolarityAnalysis().run(mirrored, n_bootstrap=10, min_layers=20)
    assert short.to_frame("mirrored_trend").empty and "min_layers=20" in " ".join(short.notes)


def test_cli_lists_the_plugin(capsys):
    import json as _json

    from nilearn_vlm.cli import main

    assert main(["plugins", "--json"]) == 0
    rows = _json.loads(capsys.readouterr().out)["plugins"]
    assert {"name": "polarity", "kind": "analysis", "plugin": "polarity", "distribution": "nilearn-vlm-polarity"}.items() <= \
        next(r for r in rows if r["name"] == "polarity").items()
