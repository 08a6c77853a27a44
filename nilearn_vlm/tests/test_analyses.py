"""The analysis contract: BaseAnalysis, AnalysisResult, run_analyses, shared helpers."""

import json

import numpy as np
import pandas as pd
import pytest

from nilearn_vlm import get_analysis, hookimpl
from nilearn_vlm.analyses import (
    AnalysisResult,
    BaseAnalysis,
    describe_groups,
    network_membership,
    overlap_null,
    regressor_groups,
    run_analyses,
    spatial_block_permutations,
    units_of,
)
from nilearn_vlm.networks import AtlasLabels
from nilearn_vlm.networks._base import make_lookup
from nilearn_vlm.plugins import ALLOW_ENV, register_plugin, reset_plugins, unregister_plugin
from nilearn_vlm.results import Results


class _Mean(BaseAnalysis):
    name = "mean-score"
    requires = ("encoder_scores",)

    def run(self, results, scale=1.0, bold=None):
        res = self._one(results)
        m = float(np.mean(res.encoder_scores)) * scale
        return AnalysisResult(self.name, tables={"main": pd.DataFrame({"mean": [m]})}, stats={"mean": m},
                              params={"scale": scale, "got_bold": bold is not None})


class _Pair(BaseAnalysis):
    name = "pair-diff"
    requires = ("encoder_scores",)
    n_results = (2, 2)

    def run(self, results):
        a, b = self._checked(results)
        return AnalysisResult(self.name, stats={"diff": float(np.mean(a.encoder_scores - b.encoder_scores))})


class _Broken(BaseAnalysis):
    name = "broken"

    def run(self, results):
        raise RuntimeError("boom")


class _Plugin:
    @hookimpl
    def register_analyses(self, register):
        register(_Mean)
        register(_Pair)
        register(_Broken)


@pytest.fixture(autouse=True)
def _plugin(monkeypatch):
    monkeypatch.setenv(ALLOW_ENV, "")
    reset_plugins()
    register_plugin(_Plugin(), "test-analyses")
    yield
    unregister_plugin("test-analyses")
    reset_plugins()


def test_check_counts_and_fields():
    a = Results("a", encoder_scores=np.ones(3))
    assert _Mean().check(a) == (True, "")
    assert _Mean().check([a, a]) == (False, "takes at most 1 results (models), got 2")
    assert _Pair().check([a]) == (False, "needs at least 2 results (models), got 1")
    assert _Mean().check(Results("b", glm_t=np.ones((1, 3)))) == (False, "results of model 'b' lack encoder_scores")

    class Either(BaseAnalysis):
        requires = (("glm_sign_sets", "unit_voxel_topk"),)

    assert "glm_sign_sets or unit_voxel_topk" in Either().check(a)[1]


def test_run_analyses_runs_skips_and_explains():
    a = Results("a", encoder_scores=np.full(3, 0.5))
    b = Results("b", "s2", encoder_scores=np.full(3, 0.2))
    c = Results("c", glm_t=np.ones((1, 3)))
    done, skipped = run_analyses([a, b, c], params={"mean-score": {"scale": 2.0}}, bold=np.zeros((4, 3)),
                                 runs=[0, 0, 1, 1])
    assert set(done) == {"mean-score[a]", "mean-score[b]"}
    assert done["mean-score[a]"].stats["mean"] == pytest.approx(1.0)
    assert done["mean-score[a]"].params["got_bold"] is True  # shared data given only to analyses accepting it
    assert skipped["mean-score[c]"] == "results of model 'c' lack encoder_scores"
    assert skipped["pair-diff"] == "takes at most 2 results (models), got 3"
    assert skipped["broken[a]"] == "failed: RuntimeError: boom"
    same = run_analyses([a, Results("a", "s3", encoder_scores=np.zeros(3))], names=["mean-score"])[0]
    assert set(same) == {"mean-score[a]", "mean-score[a/s3]"}
    done, skipped = run_analyses([a, b], names=["pair-diff"])
    assert done["pair-diff"].stats["diff"] == pytest.approx(0.3)
    with pytest.raises(RuntimeError, match="boom"):
        run_analyses(a, names=["broken"], raise_errors=True)
    with pytest.raises(ValueError, match="params given for analyses that are not run"):
        run_analyses(a, names=["mean-score"], params={"pair-diff": {}})


def test_result_object_outputs(tmp_path):
    assert get_analysis("mean-score") is _Mean
    res = _Mean().run(Results("a", encoder_scores=np.array([0.1, 0.3])))
    assert res.to_frame()["mean"].tolist() == [pytest.approx(0.2)]
    with pytest.raises(KeyError, match="no table 'x'"):
        res.to_frame("x")
    json.dumps(res.summary())
    from nilearn_vlm.report import analysis_section, analysis_sections

    section = analysis_section(res)
    assert "mean = 0.2" in section.text and section.title == "Analysis: mean-score"
    secs = analysis_sections({"mean-score": res}, {"pair-diff": "needs 2"})
    assert [s.title for s in secs] == ["Analysis: mean-score", "Skipped analyses"]
    assert "needs 2" in secs[1].to_html()
    # a result that cannot render gets a section saying so; the others are kept
    bad = AnalysisResult("bad", figures=["not a spec"])
    secs = analysis_sections({"bad": bad, "mean-score": res})
    assert [s.title for s in secs] == ["Analysis: bad", "Analysis: mean-score"]
    assert "could not render" in secs[0].text and "FigureSpec" in secs[0].text
    res.save(tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["stats"] == {"mean": pytest.approx(0.2)}


def test_regressor_groups_units_atoms_and_errors():
    units = ["vision.0.attn_out.0", "vision.1.attn_out.0", "text.0.attn_out.0"]
    r = Results("m", unit_names=units, glm_sign_sets=np.zeros((3, 4)), regressor_names=units)
    assert regressor_groups(r, "stream").tolist() == ["vision", "vision", "text"]
    atoms = Results("m", unit_names=units, atom_loadings=np.array([[0.1, 0.9, -0.5], [0, 0, -1.0]]),
                    glm_sign_sets=np.zeros((2, 4)))
    assert regressor_groups(atoms, "layer").tolist() == ["vision.1", "text.0"]
    with pytest.raises(ValueError, match="one label per regressor"):
        regressor_groups(atoms, groups=["a"])


def test_groups_get_their_stream_and_depth_from_the_units_table():
    from nilearn_vlm.units import Site, units_table

    # a 12-layer text tower of which only layers 0, 3 and 11 were extracted: depths (l + 1) / 12 of the
    # model, not the rank among the layers present
    model = [Site("text", l, "attn_out", 2, ("text",)) for l in range(12)] + [Site("vision", l, "attn_out", 2)
                                                                              for l in range(6)]
    picked = [s for s in model if (s.stream, s.layer) in {("text", 0), ("text", 3), ("text", 11), ("vision", 2)}]
    res = Results("m", units=units_table(picked, model_sites=model))
    info = describe_groups(res, ["vision.2", "text.11", "text.0", "text.3", "text.11", "vision.2.attn_out", "x"])
    assert info["group"].tolist() == ["vision.2", "vision.2.attn_out", "text.0", "text.3", "text.11", "x"]
    assert info["stream"].tolist() == ["vision", "vision", "text", "text", "text", ""]
    np.testing.assert_allclose(info["depth"], [3 / 6, 3 / 6, 1 / 12, 4 / 12, 1, np.nan])
    assert info["layer"].tolist()[:5] == [2, 2, 0, 3, 11] and info["layer"].isna().tolist()[5]
    # atoms take the depth of their dominant layer
    load = np.zeros((2, len(res.units)))
    load[0, res.units["name"] == "text.3.attn_out.1"] = 2.0
    load[1, res.units["name"] == "vision.2.attn_out.0"] = -1.0
    atoms = Results("m", units=res.units, atom_loadings=load, glm_sign_sets=np.zeros((2, 5)))
    layers = regressor_groups(atoms, "layer")
    assert layers.tolist() == ["text.3", "vision.2"]
    np.testing.assert_allclose(describe_groups(atoms, layers)["depth"], [4 / 12, 0.5])
    assert regressor_groups(atoms, "depth").tolist() == [f"{4 / 12:.6g}", "0.5"]
    # regressors that are units of a results object without a units table: the table of their names
    direct = Results("m", regressor_names=["t.0.ffn.0", "t.1.ffn.0"], glm_sign_sets=np.zeros((2, 3)))
    assert units_of(direct)["depth"].tolist() == [0.5, 1.0]
    assert units_of(Results("m", glm_sign_sets=np.zeros((2, 3)))) is None


def test_network_membership():
    lab = AtlasLabels("toy", "array", np.array([1, 1, 2, 0]), make_lookup([1, 2], ["Visual", "Language"]))
    r = Results("m", encoder_scores=np.zeros(4), network_labels={"toy": lab})
    names, member = network_membership(r)
    assert names == ["(all)", "vision", "language"]
    assert member.astype(int).tolist() == [[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 1, 0]]
    with pytest.raises(ValueError, match="no atlas 'yeo'"):
        network_membership(r, atlas="yeo")


def test_spatial_null_keeps_sizes_and_matches_independence():
    p = spatial_block_permutations(100, 20, random_state=0)
    assert np.all(np.sort(p, axis=1) == np.arange(100))
    rng = np.random.default_rng(0)
    maps = rng.random((2, 900)) < np.array([[0.1], [0.3]])
    null, sizes = overlap_null(maps, 200, random_state=1, statistic=lambda p: p.sum(axis=1))
    assert np.all(sizes == maps.sum(axis=1))
    # independent sets of densities p, q: expected Dice = 2 p q / (p + q)
    p0, p1 = maps.mean(axis=1)
    assert np.mean(null[:, 0, 1]) == pytest.approx(2 * p0 * p1 / (p0 + p1), abs=0.02)
    with pytest.raises(ValueError, match="block_length must lie"):
        spatial_block_permutations(10, 1, block_length=11)


def test_bootstrap_sums_matches_resampling_rows():
    from nilearn_vlm.analyses import bootstrap_sums
    from nilearn_vlm.stats import bootstrap_ci

    rng = np.random.default_rng(0)
    x = rng.exponential(size=(300, 2))
    sums = bootstrap_sums(x, 4000, random_state=1, max_memory=300 * 8 * 7)  # chunks of 7 replicates
    ref = bootstrap_ci(x, statistic=np.sum, n_bootstrap=4000, random_state=2).distribution
    np.testing.assert_allclose(sums.mean(0), x.sum(0), rtol=0.01)
    np.testing.assert_allclose(sums.std(0), ref.std(0), rtol=0.08)
    np.testing.assert_allclose(np.quantile(sums, [0.05, 0.95], axis=0), np.quantile(ref, [0.05, 0.95], axis=0),
                               rtol=0.02)
    # each replicate's weights are draw counts: they sum to the number of rows
    ones = bootstrap_sums(np.ones((50, 1)), 10, random_state=0)
    assert np.all(ones == 50)


def test_spatial_permutations_are_stats_block_indices():
    from nilearn_vlm.analyses._overlap import _block_indices_many
    from nilearn_vlm.stats import block_indices

    rng = np.random.default_rng(0)
    for n, length in ((23, 4), (30, 5), (7, 7), (9, 1)):
        offsets = rng.integers(n, size=5)
        orders = np.argsort(rng.random((5, n // length)), axis=1)
        got = _block_indices_many(n, length, offsets, orders)
        for i in range(5):
            np.testing.assert_array_equal(got[i], block_indices(n, length, offsets[i], orders[i]))


def test_cli_module_runs_saved_results(tmp_path, capsys):
    import argparse

    from nilearn_vlm.cli import analyses as cli

    folder = Results("a", "s1", encoder_scores=np.array([0.2, 0.4])).save(tmp_path / "a")
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args([str(folder), "--names", "mean-score,pair-diff", "--params",
                              '{"mean-score": {"scale": 10}}', "--out", str(tmp_path / "out"), "--json"])
    assert cli.run(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["done"]["mean-score"]["stats"]["mean"] == pytest.approx(3.0)
    assert payload["skipped"] == {"pair-diff": "needs at least 2 results (models), got 1"}
    assert (tmp_path / "out" / "mean-score" / "main.tsv").exists()
    assert "Skipped analyses" in (tmp_path / "out" / "report.html").read_text()
    args = parser.parse_args([str(folder), "--names", "pair-diff"])
    assert cli.run(args) == 1
    assert "skipped  pair-diff: needs at least 2" in capsys.readouterr().out
