"""Redundancy analysis on subjects where the answer is planted."""

import numpy as np
import pandas as pd
import pytest

from nilearn_vlm import get_analysis, list_plugins
from nilearn_vlm.analyses import overlap_matrix, run_analyses
from nilearn_vlm.results import Results
from nilearn_vlm_redundancy import RedundancyAnalysis, voxel_count_table


def test_registered_through_entry_point():
    table = list_plugins()
    row = table[table["name"] == "redundancy"]
    assert row["kind"].tolist() == ["analysis"]
    assert row["distribution"].tolist() == ["nilearn-vlm-redundancy"]
    assert get_analysis("redundancy") is RedundancyAnalysis


def test_voxel_counts_match_brute_force(redundant):
    res = redundant[0]
    sets = res.glm_sign_sets != 0
    names, member = ["all", "first"], np.vstack([np.ones(240, bool), np.arange(240) < 100])
    summary, dist = voxel_count_table(sets, member, names, min_count=2)
    for k, m in enumerate(member):
        counts = [int(sets[:, v].sum()) for v in np.flatnonzero(m)]
        pred = [c for c in counts if c >= 1]
        assert summary["n_predicted"].iloc[k] == len(pred)
        assert summary["frac_redundant"].iloc[k] == pytest.approx(sum(c >= 2 for c in pred) / len(pred))
        d = dist[dist["network"] == names[k]].set_index("count")["n_voxels"]
        assert d.to_dict() == {c: counts.count(c) for c in set(counts)}


def test_overlap_matrix_against_sets():
    rng = np.random.default_rng(1)
    maps = rng.random((4, 50)) < 0.3
    d = overlap_matrix(maps)
    j = overlap_matrix(maps, kind="jaccard")
    for a in range(4):
        for b in range(4):
            sa, sb = set(np.flatnonzero(maps[a])), set(np.flatnonzero(maps[b]))
            assert d[a, b] == pytest.approx(2 * len(sa & sb) / (len(sa) + len(sb)))
            assert j[a, b] == pytest.approx(len(sa & sb) / len(sa | sb))


def test_counts_and_overlap_tell_redundant_from_separate(redundant, separate):
    analysis = RedundancyAnalysis()
    red = analysis.run(redundant[0], n_permutations=100)
    sep = analysis.run(separate[0], n_permutations=100)
    # redundant: nearly every predicted voxel is predicted by several units, far above the null
    assert red.stats["frac_redundant"] > 0.9
    assert red.stats["mean_count"] > 10
    assert red.stats["p_mean_count"] < 0.05
    assert sep.stats["frac_redundant"] < 0.1
    assert sep.stats["p_frac_redundant"] > 0.5
    assert sep.stats["mean_count"] < 1.1
    assert sep.stats["p_mean_count"] > 0.5
    # overlap of maps: high and significant across layers and streams only when redundant
    for key in ("within_layer", "across_layer", "across_stream"):
        assert red.stats[f"overlap_{key}"] > 0.8
        assert red.stats[f"p_overlap_{key}"] < 0.05
        assert sep.stats[f"overlap_{key}"] < 0.1
        assert sep.stats[f"p_overlap_{key}"] > 0.5
    pairs = red.to_frame("overlap_pairs")
    assert pairs["significant"].mean() > 0.9
    assert set(pairs["relation"]) == {"within-layer", "across-layer", "across-stream"}
    # the redundant voxels sit in the first network only
    vc = red.to_frame("voxel_counts").set_index("network")
    assert vc.loc["vision", "n_redundant"] >= 70 and vc.loc["language", "n_redundant"] == 0


def test_variance_partition_and_greedy_tell_them_apart(redundant, separate):
    analysis = RedundancyAnalysis()
    out = {}
    for key, (res, X, Y, runs) in {"red": redundant, "sep": separate}.items():
        out[key] = analysis.run(res, n_permutations=20, bold=Y, features=X, runs=runs)
    # redundant streams share their explained variance; separate streams explain unique parts
    assert out["red"].stats["shared_share"] > 0.8
    assert out["red"].stats["unique_share"] < 0.15
    assert out["sep"].stats["shared_share"] < 0.1
    assert out["sep"].stats["unique_share"] > 0.85
    # one unit keeps 90% of the predictable variance when units are copies; nearly all are needed otherwise
    assert out["red"].stats["n_selected"] <= 2
    assert out["sep"].stats["n_selected"] >= 10
    greedy = out["sep"].to_frame("greedy")
    assert np.all(np.diff(greedy["kept_fraction"]) > 0)
    vp = out["red"].to_frame("variance_partition")
    assert set(vp["part"]) == {"full", "shared", "unique:vision", "unique:text"}


def test_variance_partition_two_groups_is_classic_formula(separate):
    from nilearn_vlm.analyses import cv_r2, variance_partition

    _, X, Y, runs = separate
    a, b = X[:, :6], X[:, 6:]
    parts = variance_partition({"a": a, "b": b}, Y[:, :60], runs)
    ra, rb, rab = cv_r2(a, Y[:, :60], runs), cv_r2(b, Y[:, :60], runs), cv_r2(X, Y[:, :60], runs)
    np.testing.assert_allclose(parts["shared"], ra + rb - rab, atol=1e-10)
    np.testing.assert_allclose(parts["unique:a"], rab - rb, atol=1e-10)


def test_cv_r2_matches_sklearn_ridgecv_free_reference():
    # with one alpha the solver's out-of-fold R2 equals sklearn's Ridge refit per fold
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score

    from nilearn_vlm.analyses import cv_r2
    from nilearn_vlm.encoding import make_folds

    rng = np.random.default_rng(3)
    X = rng.standard_normal((90, 4))
    Y = X @ rng.standard_normal((4, 3)) + rng.standard_normal((90, 3))
    runs = np.repeat([0, 1, 2], 30)
    got = cv_r2(X, Y, runs, alphas=[10.0])
    Xs = (X - X.mean(0)) / X.std(0)
    ref = np.zeros(3)
    for tr, te in make_folds(None, 90, runs):
        pred = Ridge(alpha=10.0).fit(Xs[tr], Y[tr]).predict(Xs[te])
        ref += r2_score(Y[te], pred, multioutput="raw_values") / 3
    np.testing.assert_allclose(got, ref, rtol=1e-6)


def test_result_outputs(redundant, tmp_path):
    res, X, Y, runs = redundant
    out = RedundancyAnalysis().run(res, n_permutations=20, bold=Y, features=X, runs=runs)
    figs = out.plot()
    assert len(figs) == 4
    assert [spec.kind for spec in out.figures] == ["bar", "bar", "bar", "line"]
    # count distribution: fractions of each network's predicted voxels sum to one
    dist = out.figures[0].data
    np.testing.assert_allclose(dist.groupby("network")["fraction"].sum(), 1.0)
    assert out.figures[2].stacked and out.figures[3].reference == 0.9
    from nilearn_vlm.report import analysis_section

    section = analysis_section(out)
    assert section.title == "Analysis: redundancy" and len(section.figures) == 4
    summary = out.summary()
    import json

    json.dumps(summary)
    assert summary["stats"]["n_selected"] == out.stats["n_selected"]
    out.save(tmp_path)
    back = pd.read_csv(tmp_path / "voxel_counts.tsv", sep="\t")
    assert back.shape == out.to_frame("voxel_counts").shape


def test_run_analyses_runs_and_skips(redundant):
    res = redundant[0]
    empty = Results("empty", encoder_scores=np.zeros(240))
    done, skipped = run_analyses([res, empty], names=["redundancy"], params={"redundancy": {"n_permutations": 10}})
    assert list(done) == ["redundancy[toy]"]
    assert skipped == {"redundancy[empty]": "results of model 'empty' lack glm_sign_sets"}
    done, skipped = run_analyses(res, names=["redundancy", "nope"], params={"redundancy": {"n_permutations": 10}})
    assert "redundancy" in done and "no analysis 'nope'" in skipped["nope"]


def test_errors(redundant):
    res, X, Y, runs = redundant
    with pytest.raises(ValueError, match="sign must be"):
        RedundancyAnalysis().run(res, sign="both")
    with pytest.raises(ValueError, match=r"bold must be \(n_scans, 240\)"):
        RedundancyAnalysis().run(res, n_permutations=5, bold=Y[:, :10], features=X)
    with pytest.raises(ValueError, match="cannot run: results of model 'x' lack glm_sign_sets"):
        RedundancyAnalysis().run(Results("x", encoder_scores=np.zeros(3)))
    bad = Results("y", glm_sign_sets=np.ones((2, 5)), regressor_names=["a", "b"])
    with pytest.raises(ValueError, match="pass groups="):
        RedundancyAnalysis().run(bad)


def test_cli_lists_the_plugin(capsys):
    import json as _json

    from nilearn_vlm.cli import main

    assert main(["plugins", "--json"]) == 0
    rows = _json.loads(capsys.readouterr().out)["plugins"]
    assert {"name": "redundancy", "kind": "analysis", "plugin": "redundancy", "distribution": "nilearn-vlm-redundancy"}.items() <= \
        next(r for r in rows if r["name"] == "redundancy").items()


def test_max_maps_subsamples_pairs_only(redundant):
    res = redundant[0]
    out = RedundancyAnalysis().run(res, n_permutations=20, max_maps=5)
    assert len(out.to_frame("overlap_pairs")) == 10
    assert "exceed max_maps=5" in " ".join(out.notes)
    full = RedundancyAnalysis().run(res, n_permutations=20)
    # voxel counts still use every map
    assert out.stats["mean_count"] == full.stats["mean_count"]


def test_unit_side_and_ablation_coverage(redundant, separate):
    red = RedundancyAnalysis().run(redundant[0], n_permutations=10)
    sep = RedundancyAnalysis().run(separate[0], n_permutations=10)
    # dropping one of several copies loses nothing; dropping a unique map loses its voxels
    assert red.stats["min_coverage_without_one_map"] == 1.0
    abl = sep.to_frame("ablation")
    sets = separate[0].glm_sign_sets != 0
    only = [(sets[i] & (sets.sum(0) == 1)).sum() for i in range(12)]
    np.testing.assert_array_equal(abl["n_only_this_map"], only)
    assert sep.stats["min_coverage_without_one_map"] < 0.95


def test_units_shared_by_atoms():
    units = [f"vision.{l}.attn_out.0" for l in range(4)]
    load = np.array([[1.0, 0.5, 0, 0], [0, 0.3, -1.0, 0], [0, 0, 0, 2.0]])
    sets = np.zeros((3, 30), np.int8)
    sets[0, :10] = sets[1, 5:15] = sets[2, 20:] = 1
    res = Results("toy", unit_names=units, atom_loadings=load, glm_sign_sets=sets)
    out = RedundancyAnalysis().run(res, n_permutations=5)
    assert out.stats["frac_units_in_several_atoms"] == pytest.approx(1 / 4)
    assert out.to_frame("unit_sharing")["n_units"].tolist() == [0, 3, 1]
    net = out.to_frame("network_units").iloc[0]
    assert (net["n_atoms"], net["n_units"], net["n_layers"]) == (3, 4, 4)
