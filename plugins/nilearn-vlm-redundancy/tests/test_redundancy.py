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


def _shuffles(n_vox, n, seed=0):
    """Plain voxel permutations as surrogates (array data: no spatial structure to keep)."""
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((n, n_vox)), axis=1)


def test_counts_and_overlap_tell_redundant_from_separate(redundant, separate):
    analysis = RedundancyAnalysis()
    red = analysis.run(redundant[0], n_draws=200, surrogates=_shuffles(240, 100))
    sep = analysis.run(separate[0], n_draws=200, surrogates=_shuffles(240, 100))
    # redundant: nearly every predicted voxel is predicted by several units
    assert red.stats["frac_redundant"] > 0.9
    assert red.stats["mean_count"] > 10
    assert sep.stats["frac_redundant"] < 0.1
    assert sep.stats["mean_count"] < 1.1
    # the co-occurrence test: in the vision network (planted) only, Holm across networks
    co = red.to_frame("cooccurrence").set_index("network")
    assert co.loc["vision", "p_holm"] < 0.05 and co.loc["vision", "R"] > 10
    assert np.isnan(co.loc["(all)", "p"]) and co.loc["(all)", "R"] == red.stats["R"]
    assert sep.stats["n_networks_redundant"] == 0
    # overlap of maps (descriptive): high across layers and streams only when redundant
    for key in ("within_layer", "across_layer", "across_stream"):
        assert red.stats[f"overlap_{key}"] > 0.8
        assert sep.stats[f"overlap_{key}"] < 0.1
    pairs = red.to_frame("overlap_pairs")
    assert set(pairs["relation"]) == {"within-layer", "across-layer", "across-stream"}
    assert "p" not in pairs.columns
    # the redundant voxels sit in the first network only
    vc = red.to_frame("voxel_counts").set_index("network")
    assert vc.loc["vision", "n_redundant"] >= 70 and vc.loc["language", "n_redundant"] == 0
    # without a space or surrogates the test is skipped with its reason
    few = analysis.run(redundant[0], n_draws=20, surrogates=_shuffles(240, 10))
    assert "cannot reach Holm-corrected p < 0.05 across 3 networks" in " ".join(few.notes)
    plain = analysis.run(redundant[0], n_draws=10)
    assert "cooccurrence" not in plain.tables and "needs a NIfTI or fsaverage space" in " ".join(plain.notes)


def test_variance_partition_and_greedy_tell_them_apart(redundant, separate):
    analysis = RedundancyAnalysis()
    out = {}
    for key, (res, X, Y, runs) in {"red": redundant, "sep": separate}.items():
        out[key] = analysis.run(res, n_draws=20, bold=Y, features=X, runs=runs)
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
    out = RedundancyAnalysis().run(res, n_draws=20, bold=Y, features=X, runs=runs, surrogates=_shuffles(240, 30))
    figs = out.plot()
    assert len(figs) == 5
    assert [spec.kind for spec in out.figures] == ["bar", "bar", "bar", "bar", "line"]
    # count distribution: fractions of each network's predicted voxels sum to one
    dist = out.figures[0].data
    np.testing.assert_allclose(dist.groupby("network")["fraction"].sum(), 1.0)
    assert out.figures[3].stacked and out.figures[4].reference == 0.9
    from nilearn_vlm.report import analysis_section

    section = analysis_section(out)
    assert section.title == "Analysis: redundancy" and len(section.figures) == 5
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
    done, skipped = run_analyses([res, empty], names=["redundancy"], params={"redundancy": {"n_draws": 10}})
    assert list(done) == ["redundancy[toy]"]
    assert skipped == {"redundancy[empty]": "results of model 'empty' lack glm_sign_sets"}
    done, skipped = run_analyses(res, names=["redundancy", "nope"], params={"redundancy": {"n_draws": 10}})
    assert "redundancy" in done and "no analysis 'nope'" in skipped["nope"]


def test_errors(redundant):
    res, X, Y, runs = redundant
    with pytest.raises(ValueError, match="sign must be"):
        RedundancyAnalysis().run(res, sign="both")
    with pytest.raises(TypeError, match="surrogates must be a FieldBank"):
        RedundancyAnalysis().run(res, surrogates="fields")
    with pytest.raises(ValueError, match=r"bold must be \(n_scans, 240\)"):
        RedundancyAnalysis().run(res, n_draws=5, bold=Y[:, :10], features=X)
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
    out = RedundancyAnalysis().run(res, n_draws=20, max_maps=5)
    assert len(out.to_frame("overlap_pairs")) == 10
    assert "exceed max_maps=5" in " ".join(out.notes)
    full = RedundancyAnalysis().run(res, n_draws=20)
    # voxel counts still use every map
    assert out.stats["mean_count"] == full.stats["mean_count"]


def test_unit_side_and_ablation_coverage(redundant, separate):
    red = RedundancyAnalysis().run(redundant[0], n_draws=10)
    sep = RedundancyAnalysis().run(separate[0], n_draws=10)
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
    out = RedundancyAnalysis().run(res, n_draws=5)
    assert out.stats["frac_units_in_several_atoms"] == pytest.approx(1 / 4)
    assert out.to_frame("unit_sharing")["n_units"].tolist() == [0, 3, 1]
    net = out.to_frame("network_units").iloc[0]
    assert (net["n_atoms"], net["n_units"], net["n_layers"]) == (3, 4, 4)


# ------------------------------------------------------------------ the co-occurrence test on volumes and spheres
from nilearn_vlm.analyses import ClusterMoves, FieldBank, SpinBank, cooccurrence, spin_permutations  # noqa: E402
from nilearn_vlm.networks import AtlasLabels, make_lookup  # noqa: E402
from nilearn_vlm.testing import analyses as sim  # noqa: E402
from nilearn_vlm_redundancy import cooccurrence_test  # noqa: E402


@pytest.fixture(scope="module")
def volume():
    """A ball mask (radius 7 voxels), its field bank (cached on disk) and 4 compact 'networks'."""
    mask = sim.ball_mask(7)
    rng = np.random.default_rng(10)
    member = np.vstack([sim.grown_region(mask, 120, rng) for _ in range(4)])
    return mask, member


@pytest.fixture(scope="module")
def bank(volume, tmp_path_factory):
    memory = tmp_path_factory.mktemp("surrogates")
    first = FieldBank.from_mask(volume[0], 4.0, n_fields=60, random_state=0, memory=memory)
    again = FieldBank.from_mask(volume[0], 4.0, n_fields=60, random_state=0, memory=memory)
    assert len(list((memory / "nilearn_vlm_surrogates").glob("fieldbank_*.npz"))) == 1
    np.testing.assert_array_equal(first.ranks_, again.ranks_)
    return first


def test_cooccurrence_against_brute_force():
    rng = np.random.default_rng(0)
    sets = rng.random((5, 40)) < 0.3
    member = np.vstack([np.ones(40, bool), np.arange(40) < 15])
    got = cooccurrence(sets, member)
    for j, m in enumerate(member):
        # mean number of other maps sharing a significant voxel of a map
        shares = [sets[:, v].sum() - 1 for k in range(5) for v in np.flatnonzero(sets[k] & m)]
        assert got[j] == pytest.approx(np.mean(shares))


def test_field_bank_keeps_size_and_smoothness(bank, volume):
    rng = np.random.default_rng(1)
    smooth = sim.grown_region(volume[0], 150, rng)
    (counts,) = list(bank.counts(smooth[None], 40, random_state=0, chunk=40))
    assert (counts.sum(1) == 150).all()
    # surrogates of a compact map are compact: join counts near the map's, far above a random set's
    jc = bank.join_count(counts)
    scattered = np.zeros_like(smooth)
    scattered[rng.choice(smooth.size, 150, replace=False)] = True
    assert abs(np.median(jc) - bank.join_count(smooth)[0]) < 0.15
    assert np.median(jc) > bank.join_count(scattered)[0] + 0.2


@pytest.mark.slow
def test_cooccurrence_test_is_calibrated_and_has_power(bank, volume):
    """100 nulls of independently placed compact maps: at most 12 rejections (Holm across networks);
    30 subjects with 3 maps on one network: the network is found in at least 24."""
    mask, member = volume
    names = ["(all)", "a", "b", "c", "d"]
    full = np.vstack([np.ones(member.shape[1], bool), member])
    rng = np.random.default_rng(2)
    null = []
    for _ in range(100):
        sets = sim.redundancy_maps("independent", rng, mask, member, n_maps=5, sizes=(20, 200))
        table = cooccurrence_test(sets, full, names, bank, n_draws=200, random_state=rng)
        null.append((table["p_holm"].iloc[1:] < 0.05).any())
    assert sum(null) <= 12, sum(null)
    found = 0
    for _ in range(30):
        sets = sim.redundancy_maps("overlap", rng, mask, member, n_maps=5, sizes=(20, 200), target=1)
        table = cooccurrence_test(sets, full, names, bank, n_draws=200, random_state=rng)
        found += table["p_holm"].iloc[2] < 0.05
    assert found >= 24, found


def test_spin_test_on_a_sphere_is_calibrated():
    """Independent caps on a two-hemisphere sphere, each rotated on its own: at most 12 of 100 reject."""
    rng = np.random.default_rng(3)
    pts = rng.standard_normal((600, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    spins = SpinBank(spin_permutations(pts, pts, 300, random_state=0))
    coords = np.vstack([pts, pts])

    def cap(size):
        centre = rng.standard_normal(3)
        score = coords @ (centre / np.linalg.norm(centre))
        out = np.zeros(len(coords), bool)
        out[np.argsort(-score)[:size]] = True
        return out

    nets = np.vstack([np.ones(len(coords), bool)] + [cap(150) for _ in range(3)])
    rejected = 0
    for _ in range(100):
        sets = np.stack([cap(int(rng.integers(20, 150))) for _ in range(4)])
        table = cooccurrence_test(sets, nets, ["(all)", "a", "b", "c"], spins, n_draws=200, random_state=rng)
        rejected += (table["p_holm"].iloc[1:] < 0.05).any()
    assert rejected <= 12, rejected


def test_fsaverage_spins_are_cached(tmp_path):
    spins = SpinBank.fsaverage("fsaverage5", n_rotations=3, memory=tmp_path)
    assert spins.permutations_.shape == (3, 20484)
    assert (spins.permutations_[:, :10242] < 10242).all() and (spins.permutations_[:, 10242:] >= 10242).all()
    again = SpinBank.fsaverage("fsaverage5", n_rotations=3, memory=tmp_path)
    np.testing.assert_array_equal(spins.permutations_, again.permutations_)
    assert len(list((tmp_path / "nilearn_vlm_surrogates").glob("spins_*.npz"))) == 1


def test_analysis_moves_the_clusters_in_its_nifti_space(volume, tmp_path):
    import nibabel as nib
    from nilearn.maskers import NiftiMasker

    from nilearn_vlm.spaces import ImageSpace

    mask, member = volume
    masker = NiftiMasker(nib.Nifti1Image(mask.astype(np.int8), np.diag([4.0, 4.0, 4.0, 1.0]))).fit()
    labels = np.zeros(member.shape[1], np.int32)
    for j, m in enumerate(member):
        labels[m & (labels == 0)] = j + 1
    atlas = AtlasLabels("toy", "MNI152", labels, make_lookup([1, 2, 3, 4], ["Visual", "Default", "Auditory",
                                                                            "Language"]))
    sets = sim.redundancy_maps("overlap", np.random.default_rng(4), mask, member, n_maps=4, target=0)
    res = Results("toy", space=ImageSpace.from_masker(masker), glm_sign_sets=sets,
                  regressor_names=[f"vision.{k}.attn_out.0" for k in range(4)], network_labels={"toy": atlas})
    out = RedundancyAnalysis().run(res, n_draws=100, memory=tmp_path)
    inf = out.to_frame("inference").iloc[0]
    assert inf["test"] == "network_cooccurrence" and "moved rigidly" in inf["resampling_unit"]
    assert out.stats["resampling_unit:network_cooccurrence"] == inf["resampling_unit"]
    assert "Holm across networks" in out.stats["correction:network_cooccurrence"]
    assert out.to_frame("cooccurrence").set_index("network").loc["vision", "p_holm"] < 0.05


def test_cluster_moves_keep_every_cluster_whole_inside_the_mask(volume):
    """Each surrogate: the map's size, its clusters' sizes and its join count (the shapes are moved rigidly)."""
    from scipy import ndimage

    mask, _ = volume
    moves = ClusterMoves(mask)
    rng = np.random.default_rng(6)
    two = sim.grown_region(mask, 60, rng) | sim.grown_region(mask, 25, rng)

    def cluster_sizes(vec):
        vol = np.zeros(mask.shape, bool)
        vol[mask] = vec
        labels, n = ndimage.label(vol)
        return sorted(np.bincount(labels.ravel())[1:].tolist())

    def joins(vec):
        vol = np.zeros(mask.shape, bool)
        vol[mask] = vec
        return sum(int((np.take(vol, range(1, vol.shape[a]), a) & np.take(vol, range(vol.shape[a] - 1), a)).sum())
                   for a in range(3))

    (counts,) = list(moves.counts(two[None], 30, random_state=0, chunk=30))
    assert moves.n_unmoved_ == 0
    assert (counts.sum(1) == two.sum()).all() and set(np.unique(counts)) <= {0.0, 1.0}
    moved = [c != 0 for c in counts if not np.array_equal(c != 0, two)]
    assert len(moved) >= 28  # they move
    for c in moved:
        # the two clusters may touch after the move (then one piece); otherwise the sizes are kept
        assert cluster_sizes(c) in (cluster_sizes(two), [int(two.sum())])
    # rigid moves keep every cluster's internal adjacencies (more if the clusters touch)
    assert all(joins(c) >= joins(two) for c in moved)


@pytest.mark.slow
def test_cluster_moves_test_is_calibrated_and_has_power(volume):
    """The analysis's default volume surrogates: 100 nulls of independently placed compact maps, at most 12
    rejections (Holm across networks); 30 subjects with 3 maps on one network, found in at least 24."""
    mask, member = volume
    moves = ClusterMoves(mask)
    names = ["(all)", "a", "b", "c", "d"]
    full = np.vstack([np.ones(member.shape[1], bool), member])
    rng = np.random.default_rng(12)
    null = 0
    for _ in range(100):
        sets = sim.redundancy_maps("independent", rng, mask, member, n_maps=5, sizes=(20, 200))
        table = cooccurrence_test(sets, full, names, moves, n_draws=200, random_state=rng)
        null += (table["p_holm"].iloc[1:] < 0.05).any()
    assert null <= 12, null
    found = 0
    for _ in range(30):
        sets = sim.redundancy_maps("overlap", rng, mask, member, n_maps=5, sizes=(20, 200), target=1)
        table = cooccurrence_test(sets, full, names, moves, n_draws=200, random_state=rng)
        found += table["p_holm"].iloc[2] < 0.05
    assert found >= 24, found
