"""Architecture comparison on simulated models where the answer is planted."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.metrics import r2_score

from nilearn_vlm import get_analysis, list_plugins
from nilearn_vlm.analyses import run_analyses
from nilearn_vlm.testing import analyses as sim
from nilearn_vlm_compare import (
    CompareAnalysis,
    architecture_encoding_test,
    block_differences,
    layer_jackknife_variance,
    lowlevel_features,
    modality_specificity,
    paired_encoding_test,
    paired_specificity_test,
    sign_flip_test,
)



def test_registered_through_entry_point():
    table = list_plugins()
    row = table[table["name"] == "compare"]
    assert row["distribution"].tolist() == ["nilearn-vlm-compare"]
    assert get_analysis("compare") is CompareAnalysis


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
    out = CompareAnalysis().run([towers, fused], predictions=preds, bold=bold, runs=runs, n_permutations=2000)
    vox = out.to_frame("voxel_differences")
    sig = vox["significant"].to_numpy()
    assert sig[:100].mean() > 0.9  # the planted advantage is found
    assert sig[100:].mean() < 0.05  # few false discoveries where the models are equal
    assert out.stats["n_better_meter"] <= 3
    assert "specificity" not in out.tables and "stream_block_sums" in " ".join(out.notes)
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
    out = CompareAnalysis().run([a, b], fold_scores=folds)
    diff = out.to_frame("score_difference").set_index("network")
    assert diff.loc["vision", "mean_diff"] == pytest.approx(np.mean(sa[:100] - sb[:100]))
    assert "low" not in diff.columns  # means over voxels are descriptive: no interval over voxels
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
                                 params={"compare": {"integration_networks": ["default mode"]}})
    out = done["compare"]
    assert skipped == {}
    # multimodal over unimodal only in the planted integration network
    assert out.stats["baseline_diff:clip-vit"] == pytest.approx(0.2)
    table = out.to_frame("baselines").set_index(["model", "baseline", "network"])
    assert abs(table.loc[("clip", "vit", "vision"), "mean_diff"]) < 1e-12
    curves = out.to_frame("layer_curves")
    whole = curves[curves["network"] == "(all)"]
    np.testing.assert_allclose(whole["mean"], [base.mean() + 0.05 * l for l in range(4)])
    assert whole["low"].isna().all()  # no per-run scores: no interval
    # the fractional depth of the model's units (4 layers per tower): (l + 1) / 4
    np.testing.assert_allclose(whole["depth"], [0.25, 0.5, 0.75, 1])
    assert whole["stream"].tolist() == ["vision"] * 4
    assert len(out.plot()) == 2
    diff = out.figures[0]
    assert diff.title == "Score difference by network (descriptive)"
    pd.testing.assert_frame_equal(diff.data, out.to_frame("score_difference")[["network", "mean_diff"]])
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
    curves = CompareAnalysis().run([res, other]).to_frame("layer_curves")
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
    out = CompareAnalysis().run([towers, fused], features=feats, controls={"lowlevel": low}, bold=bold, runs=runs)
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


def test_layer_curve_intervals_are_t_intervals_over_runs(subject_factory):
    rng = np.random.default_rng(7)
    folds = {f"vision.{l}": 0.1 * l + 0.05 * rng.standard_normal((4, 300)) for l in range(4)}
    clip = subject_factory("towers", "clip", layer_scores={k: v.mean(0) for k, v in folds.items()})
    clip.layer_fold_scores = folds
    meter = subject_factory("fused", "meter", scores=np.zeros(300))
    out = CompareAnalysis().run([clip, meter])
    row = out.to_frame("layer_curves").query("network == 'vision' and layer == 'vision.2'").iloc[0]
    per_run = folds["vision.2"][:, :100].mean(1)
    half = sps.t.ppf(0.975, 3) * per_run.std(ddof=1) / 2
    assert row["high"] - row["low"] == pytest.approx(2 * half)


# ------------------------------------------------------------------ stream specificity and VLM vs unimodal
def test_modality_specificity_formula():
    rng = np.random.default_rng(8)
    ra, rb = rng.random(10), rng.random(10)
    v, lang = np.arange(10) < 4, np.arange(10) >= 6
    sa, sb = (ra[v].mean(), ra[lang].mean()), (rb[v].mean(), rb[lang].mean())
    ref = (sa[0] - sa[1] - sb[0] + sb[1]) / (sum(sa) + sum(sb))
    assert modality_specificity(ra, rb, v, lang) == pytest.approx(ref)


def test_heldout_predictions_match_sklearn():
    from sklearn.decomposition import PCA
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from nilearn_vlm.analyses import heldout_predictions

    rng = np.random.default_rng(9)
    runs = np.repeat([1, 2, 3], 50)
    Y = rng.standard_normal((150, 5))
    for width in (300, 20):  # more features than scans, and fewer
        X = rng.standard_normal((150, width))
        ref = np.empty_like(Y)
        for r in (1, 2, 3):
            tr, te = runs != r, runs == r
            ref[te] = make_pipeline(StandardScaler(), PCA(8), Ridge(alpha=1.0)).fit(X[tr], Y[tr]).predict(X[te])
        np.testing.assert_allclose(heldout_predictions(X, Y, runs, n_components=8), ref, atol=1e-5)


def test_paired_specificity_test_combines_block_and_layer_variances():
    jack1, jack2 = np.array([1.0, 1.1, 0.9, 1.05]), np.array([0.2, 0.25, 0.1, 0.2])
    s1 = {"estimate": 1.0, "jack": jack1, "layer_var": 0.01, "n_layers": 12}
    s2 = {"estimate": 0.2, "jack": jack2, "layer_var": 0.02, "n_layers": 6}
    t = paired_specificity_test(s1, s2)
    d = jack1 - jack2
    se_b = np.sqrt(3 / 4 * np.sum((d - d.mean()) ** 2))
    assert t["se"] == pytest.approx(np.sqrt(se_b**2 + 0.03))
    assert t["dof"] == 3 and t["p"] == pytest.approx(2 * sps.t.sf(0.8 / t["se"], 3))


def test_paired_encoding_test_against_scipy():
    rng = np.random.default_rng(10)
    sse_a = rng.random((8, 3)) + np.array([0.0, 0.0, -0.5])  # A better in voxel 2
    sse_b = rng.random((8, 3))
    sst = np.full((8, 3), 4.0)
    out = paired_encoding_test(sse_a, sse_b, sst, np.ones(3, bool), np.repeat([1, 2], 4), n_permutations=1000)
    assert out["exact"] and out["n_resamples"] == 256
    for j in range(3):
        ref = sps.permutation_test(((sse_b - sse_a)[:, j],), np.sum, permutation_type="samples",
                                   n_resamples=np.inf, alternative="greater")
        assert out["voxel_p"][j] == pytest.approx(ref.pvalue)
    assert out["roi_diff_r2"] == pytest.approx((sse_b - sse_a).sum() / sst.sum())


def test_architecture_encoding_test_against_loops():
    """Block jackknife of the R^2 difference plus each model's stratified layer jackknife, Satterthwaite dof:
    recomputed with explicit loops, per voxel and for the region."""
    rng = np.random.default_rng(14)
    n, m = 6, 4
    sse_a, sse_b = rng.random((n, m)) + 1.0, rng.random((n, m)) + 1.2
    sst = rng.random((n, m)) + 3.0
    la = sse_a.sum(0) + 0.3 * rng.standard_normal((5, m))  # A: 5 layers in two streams
    lb = sse_b.sum(0) + 0.2 * rng.standard_normal((4, m))  # B: 4 layers in one stream
    strata_a = np.array(["v", "v", "v", "t", "t"])
    roi = np.array([True, False, True, True])
    out = architecture_encoding_test(sse_a, sse_b, sst, roi, la, lb, strata_a, None)

    def by_hand(cols):
        d = [sum(sse_b[b, j] - sse_a[b, j] for j in cols) for b in range(n)]
        s = [sum(sst[b, j] for j in cols) for b in range(n)]
        est = sum(d) / sum(s)
        jack = [(sum(d) - d[k]) / (sum(s) - s[k]) for k in range(n)]
        parts = [((n - 1) / n * sum((x - np.mean(jack)) ** 2 for x in jack), n - 1)]
        for lay, strata in ((la, strata_a), (lb, np.array(["one"] * 4))):
            for st in np.unique(strata):
                vals = [sum(lay[l, j] for j in cols) / sum(s) for l in range(lay.shape[0]) if strata[l] == st]
                if len(vals) > 1:
                    parts.append(((len(vals) - 1) / len(vals) * sum((x - np.mean(vals)) ** 2 for x in vals),
                                  len(vals) - 1))
        var = sum(v for v, _ in parts)
        dof = var**2 / sum(v**2 / k for v, k in parts)
        t = est / np.sqrt(var)
        return est, np.sqrt(var), dof, sps.t.sf(t, dof)

    for k, j in enumerate(np.flatnonzero(roi)):
        est, se, dof, p = by_hand([j])
        assert out["voxel_diff_r2"][k] == pytest.approx(est)
        assert out["voxel_dof"][k] == pytest.approx(dof) and out["voxel_p"][k] == pytest.approx(p)
    est, se, dof, p = by_hand(list(np.flatnonzero(roi)))
    assert (out["roi_diff_r2"], out["roi_se"], out["roi_dof"], out["roi_p"]) == pytest.approx((est, se, dof, p))
    half = sps.t.ppf(0.975, dof) * se
    assert (out["roi_low"], out["roi_high"]) == pytest.approx((est - half, est + half))
    # the layer variance is the stratified jackknife of each model's SSE / SST
    v, parts = layer_jackknife_variance(la[:, roi].sum(1) / sst[:, roi].sum(), strata_a)
    assert out["roi_layer_var_a"] == pytest.approx(float(v)) and [k for _, k in parts] == [2, 1]
    with pytest.raises(ValueError, match="at least 2"):
        architecture_encoding_test(sse_a, sse_b, sst, roi, la[:1], lb)


def _subject(rng, interaction=True, jackknife=True):
    runs = sim.run_labels()
    src = sim.stimulus_sources(rng, runs)
    brain = sim.compare_bold(src, rng, runs, n_vision=60, n_language=60, n_roi=60, n_driven=25,
                             interaction=interaction)
    labels = np.where(brain["vision"], 1, np.where(brain["language"], 2, 0))
    models = {}
    for name, kind in (("towers_a", "towers"), ("towers_b", "towers"), ("fused_a", "fused"), ("fused_b", "fused")):
        units, U = sim.model_units(kind, src, rng, units_per_layer=4)
        models[name] = sim.model_results(name, units, U, brain["Y"], runs, layer_jackknife=jackknife,
                                         labels=labels)
    return models, brain


@pytest.mark.slow
def test_specificity_and_vlm_tests_on_nulls_and_plants():
    """Per subject: two draws of each architecture (nulls: towers vs towers, fused vs fused, for both tests;
    two seeds of one VLM are the random-weight control) and planted differences (towers vs fused;
    fused VLM vs the unimodal towers on image x text interaction voxels). 12 subjects: 24 nulls per test
    (at most 4 rejections); the full counts are in benchmarks/analyses.py."""
    rng = np.random.default_rng(11)
    spec_null = vlm_null = spec_power = vlm_power = 0
    n = 12
    for _ in range(n):
        m, brain = _subject(rng)
        spec_power += CompareAnalysis().run([m["towers_a"], m["fused_a"]]).stats["p_specificity"] < 0.05
        for x, y in (("towers_a", "towers_b"), ("fused_a", "fused_b")):
            spec_null += CompareAnalysis().run([m[x], m[y]]).stats["p_specificity"] < 0.05
            out = CompareAnalysis().run([m[x], m[y]], baseline=y, vlms=[x], roi=brain["roi"], n_permutations=4096,
                                        random_state=rng)
            vlm_null += out.tables["vlm_vs_unimodal"]["n_better_voxels"].iloc[0] > 0
        out = CompareAnalysis().run([m["fused_a"], m["towers_a"]], baseline="towers_a", vlms=["fused_a"],
                                    roi=brain["roi"], n_permutations=4096, random_state=rng)
        vlm_power += out.tables["vlm_vs_unimodal"]["n_better_voxels"].iloc[0] > 0
    assert spec_null <= 4 and vlm_null <= 4, (spec_null, vlm_null)
    assert spec_power >= 10 and vlm_power >= 10, (spec_power, vlm_power)


def _vlm_runs(rng, n_subjects, pairs):
    """Rejections of the architecture-level VLM-vs-unimodal test (region, any BH voxel) and coverage of 0."""
    roi = voxel = covered = 0
    for _ in range(n_subjects):
        m, brain = _subject(rng, jackknife=False)
        for x, y in pairs:
            out = CompareAnalysis().run([m[x], m[y]], baseline=y, vlms=[x], roi=brain["roi"], layer_jackknife=False,
                                        encoding_layer_jackknife=True, n_permutations=256, random_state=rng)
            v = out.tables["vlm_vs_unimodal"].iloc[0]
            roi += v["roi_p"] < 0.05
            voxel += v["n_better_voxels"] > 0
            covered += v["low"] <= 0 <= v["high"]
    return roi, voxel, covered


@pytest.mark.slow
def test_vlm_vs_unimodal_architecture_test_on_100_nulls():
    """Two draws of one architecture (towers; fused), 50 subjects: 100 nulls, at most 12 rejections (region, any
    BH voxel); the sign flips alone reject 0.15 of such nulls (benchmarks/analyses.py streams)."""
    roi, voxel, covered = _vlm_runs(np.random.default_rng(15), 50, (("towers_a", "towers_b"), ("fused_a", "fused_b")))
    assert roi <= 12 and voxel <= 12 and covered >= 88, (roi, voxel, covered)


@pytest.mark.slow
def test_vlm_vs_unimodal_architecture_test_power_on_interaction_voxels():
    """The fused VLM against the unimodal towers, 25 of 60 region voxels driven by image x text interactions."""
    roi, voxel, _ = _vlm_runs(np.random.default_rng(16), 20, (("fused_a", "towers_a"),))
    assert roi >= 18 and voxel >= 16, (roi, voxel)


def test_comparison_states_its_tests(tmp_path):
    m, brain = _subject(np.random.default_rng(12), jackknife=False)
    with pytest.raises(ValueError, match="lack stream_layer_r"):
        CompareAnalysis().run([m["towers_a"], m["fused_a"]])
    out = CompareAnalysis().run([m["towers_a"], m["fused_a"], m["towers_b"]], layer_jackknife=False,
                                baseline="towers_b", vlms=["fused_a"], roi=brain["roi"], n_permutations=2048)
    inf = out.to_frame("inference").set_index("test")
    assert "time blocks within runs" in inf.loc["specificity_difference", "resampling_unit"]
    assert inf.loc["vlm_vs_unimodal:fused_a", "n_distinct_resamples"] == 2**16
    assert inf.loc["vlm_vs_unimodal:fused_a", "correction"].startswith("BH across the region's voxels")
    assert out.stats["null:specificity_difference"].endswith("same modality specificity on this subject")
    assert "fitted models" in inf.loc["vlm_vs_unimodal:fused_a", "null_hypothesis"]
    arch = CompareAnalysis().run([m["towers_a"], m["fused_a"], m["towers_b"]], layer_jackknife=False,
                                 encoding_layer_jackknife=True, baseline="towers_b", vlms=["fused_a"], roi=brain["roi"],
                                 n_permutations=2048)
    ainf = arch.to_frame("inference").set_index("test")
    assert "architectures" in ainf.loc["vlm_vs_unimodal:fused_a", "null_hypothesis"]
    assert "delete-one-layer" in ainf.loc["vlm_vs_unimodal:fused_a", "resampling_unit"]
    assert ainf.loc["vlm_vs_unimodal:fused_a", "n_distinct_resamples"] == 16 + 24 + 36
    assert "fitted models" in ainf.loc["vlm_vs_unimodal_conditional:fused_a", "null_hypothesis"]
    row = arch.to_frame("vlm_vs_unimodal").iloc[0]
    assert row["n_better_voxels_conditional"] == out.to_frame("vlm_vs_unimodal").iloc[0]["n_better_voxels"]
    assert row["layer_var_vlm"] > 0 and row["layer_var_baseline"] > 0
    m["towers_b"].stream_layer_sse = {}
    with pytest.raises(ValueError, match="lack stream_layer_sse"):
        CompareAnalysis().run([m["towers_a"], m["towers_b"]], layer_jackknife=False, encoding_layer_jackknife=True,
                              baseline="towers_b", vlms=["towers_a"], roi=brain["roi"])
    si = out.to_frame("specificity").set_index("model")
    assert (si.loc["towers_a", "stream_a"], si.loc["fused_a", "stream_a"]) == ("vision", "cross_image")
    scores = out.to_frame("stream_scores")
    assert set(scores["stream"]) == {"vision", "text", "cross_image", "cross_text"}
    assert [spec.title.split(" ")[0] for spec in out.figures][:2] == ["Modality", "VLM"]
    json.dumps(out.summary())
    out.save(tmp_path)
    other = sim.model_results("other", *sim.model_units("towers", sim.stimulus_sources(
        np.random.default_rng(0), sim.run_labels()), np.random.default_rng(0), units_per_layer=2),
        np.asarray(np.random.default_rng(1).standard_normal((320, 180)), np.float32), sim.run_labels(),
        layer_jackknife=False, labels=np.where(brain["vision"], 1, np.where(brain["language"], 2, 0)))
    with pytest.raises(ValueError, match="not fitted on the same BOLD"):
        CompareAnalysis().run([m["towers_a"], other], layer_jackknife=False)


def test_model_results_jackknifes_only_the_named_streams_and_the_comparison_is_unchanged():
    """The benchmark jackknifes only the compared stream pair: same sums, same layer r, same test."""
    rng = np.random.default_rng(5)
    runs = sim.run_labels()
    src = sim.stimulus_sources(rng, runs)
    brain = sim.compare_bold(src, rng, runs, n_vision=30, n_language=30, n_roi=10, n_driven=5)
    labels = np.where(brain["vision"], 1, np.where(brain["language"], 2, 0))
    units, U = sim.model_units("fused", src, rng, units_per_layer=2)
    full = sim.model_results("f", units, U, brain["Y"], runs, labels=labels)
    pair = sim.model_results("f", units, U, brain["Y"], runs, labels=labels,
                             layer_jackknife=("cross_image", "cross_text"))
    none = sim.model_results("f", units, U, brain["Y"], runs, labels=labels, layer_jackknife=False)
    assert sorted(full.stream_layer_r) == ["cross_image", "cross_text", "text", "vision"]
    assert sorted(pair.stream_layer_r) == ["cross_image", "cross_text"] and not none.stream_layer_r
    for s in pair.stream_layer_r:
        np.testing.assert_array_equal(pair.stream_layer_r[s], full.stream_layer_r[s])
    for s in full.stream_block_sums:
        np.testing.assert_array_equal(pair.stream_block_sums[s], full.stream_block_sums[s])
    other = sim.model_results("g", *sim.model_units("fused", src, rng, units_per_layer=2), brain["Y"], runs,
                              labels=labels)
    a = CompareAnalysis().run([full, other]).stats
    b = CompareAnalysis().run([pair, other]).stats
    assert a["p_specificity"] == b["p_specificity"] and a["specificity_low"] == b["specificity_low"]


def test_exact_flip_patterns_are_every_sign_pattern_once():
    """The exact sign-flip enumeration (bits of the pattern index) against itertools.product, chunk edges included."""
    import itertools

    from nilearn_vlm_compare._streams import _flip_hits

    rng = np.random.default_rng(3)
    d = rng.standard_normal((7, 4))
    stat = d.sum(0)
    ref = np.array(list(itertools.product((1.0, -1.0), repeat=7))) @ d
    for alt, hits in (("greater", (ref >= stat - 1e-9).sum(0)), ("two-sided", (np.abs(ref) >= np.abs(stat) - 1e-9)
                                                                .sum(0))):
        p, exact, total = _flip_hits(d, stat, 1000, rng, alt, chunk=5)
        assert exact and total == 128
        np.testing.assert_allclose(p, hits / 128)
