"""Polarity analysis: the driver-sign test on nulls and planted trends, against references."""

import json
from itertools import permutations

import numpy as np
import pytest
from scipy import stats as sps

from nilearn_vlm import get_analysis, list_plugins
from nilearn_vlm.results import Results
from nilearn_vlm.testing import analyses as sim
from nilearn_vlm_polarity import (
    PolarityAnalysis,
    balance_trend,
    driver_sign_test,
    layer_counts,
    mirrored_trend,
    weighted_trend,
)


def test_registered_through_entry_point():
    table = list_plugins()
    row = table[table["name"] == "polarity"]
    assert row["distribution"].tolist() == ["nilearn-vlm-polarity"]
    assert get_analysis("polarity") is PolarityAnalysis


def test_weighted_trend_against_numpy():
    rng = np.random.default_rng(0)
    B, d = rng.standard_normal(9), rng.random(9)
    r, slope = weighted_trend(B, d, np.ones(9))
    assert r == pytest.approx(sps.pearsonr(B, d)[0])
    assert slope == pytest.approx(np.polyfit(d, B, 1)[0])
    w = rng.integers(0, 5, 9).astype(float)
    assert weighted_trend(B, d, w)[1] == pytest.approx(np.polyfit(d, B, 1, w=np.sqrt(w))[0])


def test_driver_test_matches_exact_enumeration():
    """The Monte-Carlo p-value of the stratified sign permutation converges to the exact one."""
    s = np.array([1.0, 0.6, -0.2, -1.0, 1.0, -1.0, 0.3])
    d = np.array([0.1, 0.3, 0.6, 0.9, 0.2, 0.8, 0.5])
    strata = np.array(["v", "v", "v", "v", "t", "t", "t"])
    r = sps.pearsonr(s, d)[0]
    null = []
    for pv in permutations(range(4)):
        for pt in permutations(range(3)):
            null.append(sps.pearsonr(np.r_[s[:4][list(pv)], s[4:][list(pt)]], d)[0])
    exact = np.mean(np.abs(null) >= abs(r) - 1e-12)
    got = driver_sign_test(s, d, strata, n_permutations=20000, random_state=0)
    assert got["r"] == pytest.approx(r)
    assert got["p"] == pytest.approx(exact, abs=0.01)
    assert got["n_distinct"] == 24 * 6


def test_layer_counts_and_balance_slope():
    rng = np.random.default_rng(1)
    sets = rng.integers(-1, 2, size=(3, 6, 50)).astype(np.int8)
    layer = np.array([0, 0, 1, 1, 2, 2])
    member = np.vstack([np.ones(50, bool), np.arange(50) < 20])
    pos, neg = layer_counts(sets, layer, 3, member)
    for f in range(3):
        for lay in range(3):
            for j in range(2):
                assert pos[f, lay, j] == ((sets[f, layer == lay] > 0).any(0) & member[j]).sum()
                assert neg[f, lay, j] == ((sets[f, layer == lay] < 0).any(0) & member[j]).sum()
    # the slope is the weighted least-squares slope of the balance; the jackknife se is the textbook one
    depth = np.array([1 / 3, 2 / 3, 1.0])
    out = balance_trend(pos[0], neg[0], depth, ["v"] * 3, pos, neg, n_permutations=50, random_state=0)
    B = (pos[0, :, 0] - neg[0, :, 0]) / (pos[0, :, 0] + neg[0, :, 0])
    assert out["slope"][0] == pytest.approx(np.polyfit(depth, B, 1, w=np.sqrt(pos[0, :, 0] + neg[0, :, 0]))[0])
    jack = [np.polyfit(depth, (pos[f, :, 0] - neg[f, :, 0]) / (pos[f, :, 0] + neg[f, :, 0]), 1,
                       w=np.sqrt(pos[f, :, 0] + neg[f, :, 0]))[0] for f in range(3)]
    se = np.sqrt(2 / 3 * np.sum((np.array(jack) - np.mean(jack)) ** 2))
    assert out["se"][0] == pytest.approx(se)
    assert out["high"][0] - out["slope"][0] == pytest.approx(sps.t.ppf(0.975, 2) * se)


def _rejections(design, n, seed, **kw):
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        res, _ = sim.polarity_subject(design, rng, scale=0.25, with_atlas=False)
        out = PolarityAnalysis().run(res, n_permutations=199, random_state=rng, **kw)
        rows.append(out.stats)
    return rows


@pytest.mark.slow
def test_driver_test_is_calibrated_on_null_subjects():
    """100 null subjects (random signs; totals rising with depth with a 75% sign bias): at most 12 rejections."""
    rows = _rejections("random", 50, 0) + _rejections("bias_totals", 50, 1)
    rejected = sum(r["p_trend"] < 0.05 for r in rows)
    assert rejected <= 12, rejected
    # the layer-label permutation is secondary; it is reported, not claimed
    assert all(np.isfinite(r["p_layer_permutation"]) for r in rows)


@pytest.mark.slow
def test_driver_test_has_power_and_the_slope_interval_covers():
    rows = _rejections("trend", 30, 2)
    assert sum(r["p_trend"] < 0.05 for r in rows) >= 24  # power >= 0.8
    assert np.mean([r["slope"] < 0 for r in rows]) > 0.9


def test_slope_interval_covers_the_planted_slope():
    """Coverage of the leave-one-run-out jackknife interval of the noise-free slope (30 subjects)."""
    rng = np.random.default_rng(3)
    covered = []
    for _ in range(30):
        res, truth = sim.polarity_subject("trend", rng, scale=0.25, with_atlas=False)
        out = PolarityAnalysis().run(res, n_permutations=19, random_state=rng)
        reg = truth["atoms"]
        layer = (reg["stream"] == "text").to_numpy() * 12 + reg["layer"].to_numpy()
        tp, tn = layer_counts(truth["true_sets"], layer, 24, np.ones((1, truth["true_sets"].shape[1]), bool))
        depth = np.r_[(np.arange(12) + 1) / 12, (np.arange(12) + 1) / 12]
        true_slope = balance_trend(tp, tn, depth, ["v"] * 12 + ["t"] * 12, n_permutations=1)["slope"][0]
        covered.append(out.stats["slope_low"] <= true_slope <= out.stats["slope_high"])
    assert np.mean(covered) >= 0.8


def test_neuron_side_uses_each_units_own_sign():
    """Unit signs from a sparse unit x voxel map: flipping an atom's loadings changes nothing."""
    rng = np.random.default_rng(4)
    res, _ = sim.polarity_subject("trend", rng, scale=0.25, with_atlas=False)
    n_units, n_vox = res.n_units, res.n_voxels
    depth = res.units["depth"].to_numpy()
    signs = np.zeros((n_units, n_vox), np.int8)
    for u in range(n_units):
        vox = rng.choice(n_vox, 15, replace=False)
        signs[u, vox] = 1 if rng.random() < 1 - depth[u] else -1
    out = PolarityAnalysis().run(res, unit_sign_sets=signs, n_permutations=499)
    assert out.stats["n_driving_units"] == n_units and out.stats["p_unit_trend"] < 0.05
    flipped = Results("sim", units=res.units, atom_loadings=-res.atom_loadings, glm_sign_sets=res.glm_sign_sets,
                      network_labels=res.network_labels)
    again = PolarityAnalysis().run(flipped, unit_sign_sets=signs, n_permutations=499)
    assert again.stats["unit_trend_r"] == out.stats["unit_trend_r"]
    # top-k maps give the signs when no sign sets are given
    idx = np.argsort(-np.abs(signs), axis=0, kind="stable")[:3]
    res.unit_voxel_topk = {"index": idx, "value": np.take_along_axis(signs, idx, 0).astype(float)}
    assert "unit_trend" in PolarityAnalysis().run(res, n_permutations=19).tables


def test_result_states_hypothesis_resampling_and_families():
    rng = np.random.default_rng(5)
    res, _ = sim.polarity_subject("trend", rng, scale=0.25)
    out = PolarityAnalysis().run(res, n_permutations=99)
    inf = out.to_frame("inference").set_index("test")
    assert inf.loc["driver_trend", "resampling_unit"] == "driver signs permuted within streams"
    assert inf.loc["driver_trend", "n_distinct_resamples"] > 1
    assert "n_runs - 1" not in inf.loc["balance_slope", "interval"] and "3 dof" in inf.loc["balance_slope", "interval"]
    assert out.stats["null:driver_trend"].startswith("a driving regressor's net sign")
    assert "Test 'driver_trend'" in out.text
    trend = out.to_frame("driver_trend")
    assert set(trend["family"]) == {"primary", "networks", "streams", "stream x network"}
    fam = trend[trend["family"] == "networks"]
    from nilearn_vlm.analyses import holm

    np.testing.assert_allclose(fam["p_holm"], holm(fam["p"]))
    assert out.params["sign_sets"] == "glm_sign_sets_fwe"
    # descriptive parts stay
    curves = out.to_frame("layer_curves")
    assert curves["depth"].between(0, 1).all()
    (spec, *_) = out.figures
    assert (spec.kind, spec.x, spec.hue) == ("line", "depth", "sign") and "driver signs vs depth" in spec.note
    json.dumps(out.summary())
    from nilearn_vlm.report import analysis_section

    assert "Analysis: polarity" in analysis_section(out).to_html()


def test_mirror_table_is_descriptive(mirrored):
    out = PolarityAnalysis().run(mirrored, n_permutations=99, min_voxels=1)
    whole = out.to_frame("mirror").query("network == '(all)'").iloc[0]
    assert whole["r"] < -0.95 and whole["opposite_steps"] == 1.0
    assert "p_mirror:vision" not in out.stats
    assert "glm_sign_sets" in out.notes[0]
    r, steps = mirrored_trend([1, 2, 3, 4], [8, 6, 5, 1])
    assert r == pytest.approx(sps.pearsonr([1, 2, 3, 4], [8, 6, 5, 1])[0]) and steps == 1.0


def test_sign_consistency_from_leave_one_run_out_sets(mirrored):
    folds = np.repeat(mirrored.glm_sign_sets[None], 4, axis=0)
    out = PolarityAnalysis().run(mirrored, n_permutations=19, fold_sign_sets=folds)
    assert out.stats["sign_consistency"] == 1.0
    with pytest.raises(ValueError, match="fold_sign_sets must be"):
        PolarityAnalysis().run(mirrored, fold_sign_sets=np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="measure must be"):
        PolarityAnalysis().run(mirrored, measure="mean")
    with pytest.raises(ValueError, match="min_voxels must be"):
        PolarityAnalysis().run(mirrored, min_voxels=0)


def test_cli_lists_the_plugin(capsys):
    from nilearn_vlm.cli import main

    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["plugins"]
    assert {"name": "polarity", "kind": "analysis", "distribution": "nilearn-vlm-polarity"}.items() <= \
        next(r for r in rows if r["name"] == "polarity").items()


def test_thousands_of_drivers_count_their_arrangements_without_printing_a_huge_int():
    """Neuron-side tests have thousands of driving units: 2000! arrangements is no int to print."""
    import math

    from nilearn_vlm.analyses import AnalysisResult, inference_table
    from nilearn_vlm_polarity._stats import driver_sign_test

    rng = np.random.default_rng(0)
    n = 3000
    out = driver_sign_test(rng.choice([-1.0, 1.0], n), rng.random(n), np.array(["v"] * n), n_permutations=99,
                           random_state=0)
    assert out["n_distinct"] == math.inf and 0 < out["p"] <= 1
    small = driver_sign_test(np.array([1.0, 1.0, -1.0, -1.0]), np.array([0.1, 0.2, 0.8, 0.9]), np.array(["v"] * 4),
                             n_permutations=99, random_state=0)
    assert small["n_distinct"] == 6 and isinstance(small["n_distinct"], int)
    res = AnalysisResult("x")
    inference_table(res, [dict(test="t", null_hypothesis="h", statistic="s", resampling_unit="u", n_resamples=99,
                               n_distinct_resamples=math.factorial(2000), correction="c")])
    assert res.stats["n_distinct_resamples:t"] == math.inf and "99 resamples of inf distinct" in res.text
