"""Architecture comparison on simulated models where the answer is planted."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.metrics import r2_score

from nilearn_vlm import get_analysis, list_plugins
from nilearn_vlm.analyses import run_analyses
from nilearn_vlm_compare import (
    CompareAnalysis,
    block_differences,
    branch_maps,
    lowlevel_features,
    sign_flip_test,
)



def test_registered_through_entry_point():
    table = list_plugins()
    row = table[table["name"] == "compare"]
    assert row["distribution"].tolist() == ["nilearn-vlm-compare"]
    assert get_analysis("compare") is CompareAnalysis


def test_modality_specificity_tells_towers_from_fused(towers, fused):
    out = CompareAnalysis().run([towers, fused], n_bootstrap=300)
    # separate towers: vision and text maps barely overlap; fused: they coincide
    assert out.stats["msi:clip"] < 0.05
    assert out.stats["msi:meter"] > 0.9
    assert out.stats["msi_diff_high"] < -0.8
    msi = out.to_frame("modality_specificity").set_index(["model", "network"])
    assert msi.loc[("clip", "vision"), "selectivity"] == 1.0
    assert msi.loc[("clip", "language"), "selectivity"] == -1.0
    # the index is the Dice of the branch unions, written out here
    v, t = towers.glm_sign_sets[:8].any(0), towers.glm_sign_sets[8:].any(0)
    assert out.stats["msi:clip"] == pytest.approx(2 * (v & t).sum() / (v.sum() + t.sum()))


def test_unit_counts_are_matched(towers, subject_factory):
    big = subject_factory("fused", "meter", streams=("vision", "text", "cross_image", "cross_text"))
    out = CompareAnalysis().run([towers, big], n_bootstrap=50)
    assert "matched regressor counts {'vision': 8, 'text': 8}" in " ".join(out.notes)
    with pytest.raises(ValueError, match="unit counts per branch differ"):
        CompareAnalysis().run([towers, big], match_units="error")
    maps, counts = branch_maps(big)
    assert counts == {"vision": 16, "text": 16}


def test_sign_flip_test_against_scipy():
    rng = np.random.default_rng(0)
    d = rng.standard_normal((9, 3)) + np.array([0.0, 0.8, -1.2])
    _, p = sign_flip_test(d, n_permutations=1000)
    for j in range(3):
        ref = sps.permutation_test((d[:, j],), np.sum, permutation_type="samples", n_resamples=np.inf,
                                   alternative="two-sided")
        assert p[j] == pytest.approx(ref.pvalue)


def test_block_differences_give_r2_difference():
    rng = np.random.default_rng(1)
    y = rng.standard_normal((60, 4))
    a = y + 0.5 * rng.standard_normal((60, 4))
    b = y + rng.standard_normal((60, 4))
    d, sst = block_differences(a, b, y, block_length=7)
    assert d.shape == (9, 4)
    ref = r2_score(y, a, multioutput="raw_values") - r2_score(y, b, multioutput="raw_values")
    np.testing.assert_allclose(d.sum(0) / sst, ref)
    with pytest.raises(ValueError, match="must all be"):
        block_differences(a, b[:10], y)


def _predictions(seed=0):
    rng = np.random.default_rng(seed)
    n, runs = 300, np.repeat([0, 1, 2], 100)
    signal = rng.standard_normal((n, 300))
    bold = signal + rng.standard_normal((n, 300))
    pa = signal + 0.7 * rng.standard_normal((n, 300))
    pb = signal + 0.7 * rng.standard_normal((n, 300))
    pb[:, :100] = signal[:, :100] + 2.0 * rng.standard_normal((n, 100))  # A better in the Visual network
    return {"clip": pa, "meter": pb}, bold, runs


def test_paired_differences_find_the_planted_voxels(towers, fused):
    preds, bold, runs = _predictions()
    out = CompareAnalysis().run([towers, fused], predictions=preds, bold=bold, runs=runs, n_permutations=2000,
                                n_bootstrap=100)
    vox = out.to_frame("voxel_differences")
    sig = vox["significant"].to_numpy()
    assert sig[:100].mean() > 0.9  # the planted advantage is found
    assert sig[100:].mean() < 0.05  # few false discoveries where the models are equal
    assert out.stats["n_better_meter"] <= 3
    assert out.params["paired_test"].startswith("block sign-flip")
    diff = out.to_frame("score_difference").set_index("network")
    assert diff.loc["vision", "n_better_a"] > 90 and diff.loc["language", "n_better_a"] < 10
    with pytest.raises(ValueError, match="needs bold="):
        CompareAnalysis().run([towers, fused], predictions=preds)


def test_fold_scores_and_encoder_score_differences(subject_factory):
    rng = np.random.default_rng(2)
    sa = np.r_[np.full(100, 0.3), np.full(200, 0.1)] + 0.01 * rng.standard_normal(300)
    sb = np.full(300, 0.1) + 0.01 * rng.standard_normal(300)
    a = subject_factory("towers", "clip", scores=sa)
    b = subject_factory("fused", "meter", scores=sb)
    folds = {"clip": sa + 0.02 * rng.standard_normal((5, 300)), "meter": sb + 0.02 * rng.standard_normal((5, 300))}
    out = CompareAnalysis().run([a, b], fold_scores=folds, n_bootstrap=300)
    diff = out.to_frame("score_difference").set_index("network")
    assert diff.loc["vision", "mean_diff"] == pytest.approx(np.mean(sa[:100] - sb[:100]))
    assert diff.loc["vision", "low"] > 0.15 and diff.loc["language", "high"] < 0.05
    # 5 folds: 32 sign patterns, the smallest two-sided p is 2/32 > 0.05: nothing survives
    assert out.to_frame("voxel_differences")["p"].min() == pytest.approx(2 / 32)


def test_baselines_and_layer_curves(subject_factory):
    rng = np.random.default_rng(3)
    base = 0.1 + 0.01 * rng.standard_normal(300)
    clip = subject_factory("towers", "clip", scores=base + np.r_[np.zeros(200), np.full(100, 0.2)],
                           layer_scores={f"vision.{l}": base + 0.05 * l for l in range(4)})
    meter = subject_factory("fused", "meter", scores=base + 0.05)
    vit = subject_factory("towers", "vit", scores=base.copy())
    done, skipped = run_analyses([clip, meter, vit], names=["compare"],
                                 params={"compare": {"n_bootstrap": 300, "integration_networks": ["default mode"]}})
    out = done["compare"]
    assert skipped == {}
    # multimodal over unimodal only in the planted integration network
    assert out.stats["baseline_diff:clip-vit"] == pytest.approx(0.2)
    assert out.stats["baseline_low:clip-vit"] > 0.19
    table = out.to_frame("baselines").set_index(["model", "baseline", "network"])
    assert abs(table.loc[("clip", "vit", "vision"), "mean_diff"]) < 1e-12
    curves = out.to_frame("layer_curves")
    whole = curves[curves["network"] == "(all)"]
    np.testing.assert_allclose(whole["mean"], [base.mean() + 0.05 * l for l in range(4)])
    assert np.all(whole["low"] <= whole["mean"]) and np.all(whole["mean"] <= whole["high"])
    # the fractional depth of the model's units (4 layers per tower): (l + 1) / 4
    np.testing.assert_allclose(whole["depth"], [0.25, 0.5, 0.75, 1])
    assert whole["stream"].tolist() == ["vision"] * 4
    assert len(out.plot()) == 3
    assert [spec.title for spec in out.figures][1] == "Paired score difference by network"
    diff = out.figures[1]
    assert (diff.low, diff.high) == ("low", "high")
    pd.testing.assert_frame_equal(diff.data, out.to_frame("score_difference")[["network", "mean_diff", "low", "high"]])
    json.dumps(out.summary())
    with pytest.raises(ValueError, match="integration_networks"):
        CompareAnalysis().run([clip, meter, vit], integration_networks=["nope"])


def test_layer_curves_of_sites_take_the_depth_of_the_units_table(towers):
    from nilearn_vlm.results import Results
    from nilearn_vlm.units import Site, units_table

    # a METER-like model: 2 vision and 4 text layers, then 2 fusion layers after both encoders; the
    # pipeline keys layer_scores by site
    model = ([Site("vision", l, "attn_out", 1) for l in range(2)] + [Site("text", l, "attn_out", 1, ("text",))
                                                                     for l in range(4)]
             + [Site("cross_text", l, "self_attn_out", 1, ("image", "text")) for l in range(2)])
    links = [(("vision", 1), ("cross_text", 0)), (("text", 3), ("cross_text", 0))]
    rng = np.random.default_rng(0)
    scores = {s.name: rng.random(300) for s in model[::-1]}
    res = Results("meter", units=units_table(model, links=links), layer_scores=scores,
                  network_labels=towers.network_labels, encoder_scores=rng.random(300))
    other = Results("clip", units=units_table(model[:6]), network_labels=towers.network_labels,
                    encoder_scores=rng.random(300))
    curves = CompareAnalysis().run([res, other], n_bootstrap=20).to_frame("layer_curves")
    whole = curves[curves["network"] == "(all)"].set_index("layer")
    assert whole.index.tolist() == ([f"cross_text.{l}.self_attn_out" for l in range(2)]
                                    + [f"text.{l}.attn_out" for l in range(4)]
                                    + [f"vision.{l}.attn_out" for l in range(2)])
    assert whole["stream"].tolist() == ["cross_text"] * 2 + ["text"] * 4 + ["vision"] * 2
    # path through text: 4 + 2 blocks; through vision: 2 + 2; fusion after the longer encoder
    np.testing.assert_allclose(whole["depth"], [5 / 6, 1, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 1 / 4, 2 / 4])
    np.testing.assert_allclose(whole.loc["text.2.attn_out", "mean"], scores["text.2.attn_out"].mean())


def test_controls_give_a_model_its_unique_share(towers, fused):
    rng = np.random.default_rng(4)
    n, runs = 240, np.repeat([0, 1, 2], 80)
    low = rng.standard_normal((n, 3))
    units = rng.standard_normal((n, 4))
    bold = units @ rng.standard_normal((4, 300)) + low @ rng.standard_normal((3, 300)) + rng.standard_normal((n, 300))
    feats = {"clip": units, "meter": low @ rng.standard_normal((3, 5)) + 0.01 * rng.standard_normal((n, 5))}
    out = CompareAnalysis().run([towers, fused], features=feats, controls={"lowlevel": low}, bold=bold, runs=runs,
                                n_bootstrap=50)
    # clip's units carry signal beyond the low-level features; meter's are only mixtures of them
    assert out.stats["unique_share:clip"] > 0.3
    assert abs(out.stats["unique_share:meter"]) < 0.05
    parts = set(out.to_frame("controls")["part"])
    assert parts == {"unique:model", "shared", "unique:lowlevel"}
    with pytest.raises(ValueError, match="controls= needs features="):
        CompareAnalysis().run([towers, fused], controls={"lowlevel": low})


def test_lowlevel_features_against_numpy():
    rng = np.random.default_rng(5)
    imgs = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)]
    ev = pd.DataFrame({"onset": [0.0, 2.0, 4.0], "duration": [2.0, 4.0, 1.0], "run": [0, 0, 1],
                       "image": imgs, "text": ["a b c d", None, "one"]})
    got = lowlevel_features(ev, size=None)
    gray = [np.round(im @ np.array([0.299, 0.587, 0.114])) / 255 for im in imgs]  # ITU-R 601 luma
    np.testing.assert_allclose(got["luminance"], [g.mean() for g in gray], atol=2e-3)
    np.testing.assert_allclose(got["contrast"], [g.std() for g in gray], atol=2e-3)
    np.testing.assert_allclose(got["motion_energy"], [0, np.abs(gray[1] - gray[0]).mean(), 0], atol=2e-3)
    np.testing.assert_allclose(got["word_rate"], [2.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="'duration' column"):
        lowlevel_features(ev.drop(columns="duration"))


def test_check_and_errors(towers, fused):
    ok, reason = CompareAnalysis().check([towers])
    assert not ok and reason == "needs at least 2 results (models), got 1"
    with pytest.raises(ValueError, match="model 'bert' matches 0 results"):
        CompareAnalysis().run([towers, fused], models=("clip", "bert"))
    with pytest.raises(ValueError, match="predictions has no entry for 'meter'"):
        CompareAnalysis().run([towers, fused], predictions={"clip": np.zeros((4, 300))}, bold=np.zeros((4, 300)))


def test_cli_lists_the_plugin(capsys):
    import json as _json

    from nilearn_vlm.cli import main

    assert main(["plugins", "--json"]) == 0
    rows = _json.loads(capsys.readouterr().out)["plugins"]
    assert {"name": "compare", "kind": "analysis", "plugin": "compare", "distribution": "nilearn-vlm-compare"}.items() <= \
        next(r for r in rows if r["name"] == "compare").items()


@pytest.mark.parametrize("with_nan", [False, True])
def test_masked_mean_ci_against_core_bootstrap(with_nan):
    from nilearn_vlm.stats import bootstrap_ci
    from nilearn_vlm_compare import masked_mean_ci

    rng = np.random.default_rng(6)
    v = rng.exponential(size=(400, 2))
    if with_nan:
        v[5, 0] = np.nan
    masks = np.vstack([np.arange(400) < 150, np.arange(400) >= 150])
    mean, low, high = masked_mean_ci(v, masks, 4000, random_state=0)
    for c in range(2):
        for k in range(2):
            x = v[masks[k], c]
            x = x[np.isfinite(x)]
            assert mean[c, k] == pytest.approx(x.mean())
            ref = bootstrap_ci(x, n_bootstrap=4000, random_state=1)
            assert low[c, k] == pytest.approx(ref.low, abs=0.02)
            assert high[c, k] == pytest.approx(ref.high, abs=0.02)
