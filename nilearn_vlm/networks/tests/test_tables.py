"""Per-network tables against hand-computed counts and Dice."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from nilearn_vlm.networks import (
    AtlasLabels,
    best_network,
    dice,
    layer_preference,
    layer_preference_counts,
    layer_preference_img,
    layer_preference_table,
    network_counts,
    network_dice,
    network_table,
)
from nilearn_vlm.networks._base import make_lookup

# 8 voxels, networks A = {0,1,2}, B = {3,4}, voxels 5-7 in none
MEMBER = np.array([[1, 1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 0, 0, 0]], bool)
MAPS = np.array(
    [
        [2.5, -1.0, 0, 3.0, 0, -4.0, 0, 1.0],  # m0
        [0, 0, 0, -1, -1, 0, np.nan, 0],  # m1
        [1, 1, 1, 0, 0, 0, 0, 0],  # m2
    ]
)


def test_network_counts_by_hand():
    t = network_counts(MAPS, MEMBER, ["A", "B"], ["m0", "m1", "m2"])
    got = t.set_index(["map", "network"])[["n_pos", "n_neg", "n_sig", "n_network"]]
    want = {
        ("m0", "A"): (1, 1, 2, 3),
        ("m0", "B"): (1, 0, 1, 2),
        ("m0", "(outside)"): (1, 1, 2, 3),
        ("m1", "A"): (0, 0, 0, 3),
        ("m1", "B"): (0, 2, 2, 2),
        ("m1", "(outside)"): (0, 0, 0, 3),
        ("m2", "A"): (3, 0, 3, 3),
        ("m2", "B"): (0, 0, 0, 2),
    }
    for key, row in want.items():
        assert tuple(got.loc[key]) == row, key
    m0 = t[t["map"] == "m0"].set_index("network")
    assert m0.loc["A", "share_pos"] == pytest.approx(1 / 3)  # m0 has 3 positive voxels
    assert m0.loc["B", "frac_pos"] == pytest.approx(1 / 2)
    assert np.isnan(t[(t["map"] == "m1") & (t["network"] == "A")]["share_pos"].item())


def test_network_counts_groups_merge_by_union():
    t = network_counts(MAPS, MEMBER, ["A", "B"], groups=["L1", "L1", "L2"])
    got = t.set_index(["group", "network"])
    # L1 = m0 | m1: positives {0, 3, 7}, negatives {1, 3, 4, 5}
    assert tuple(got.loc[("L1", "A"), ["n_pos", "n_neg"]]) == (1, 1)
    assert tuple(got.loc[("L1", "B"), ["n_pos", "n_neg"]]) == (1, 2)
    assert tuple(got.loc[("L2", "A"), ["n_pos", "n_neg"]]) == (3, 0)
    with pytest.raises(ValueError, match="one label per map"):
        network_counts(MAPS, MEMBER, ["A", "B"], groups=["x"])


def test_network_dice_by_hand():
    t = network_dice(MAPS, MEMBER, ["A", "B"], ["m0", "m1", "m2"])
    d = t.set_index(["map", "sign", "network"])["dice"]
    # m0 any = {0,1,3,5,7}: with A {0,1,2} -> 2*2/(5+3); with B {3,4} -> 2*1/(5+2)
    assert d[("m0", "any", "A")] == pytest.approx(4 / 8)
    assert d[("m0", "any", "B")] == pytest.approx(2 / 7)
    assert d[("m0", "pos", "A")] == pytest.approx(2 * 1 / (3 + 3))
    assert d[("m1", "neg", "B")] == pytest.approx(1.0)
    assert d[("m2", "pos", "A")] == pytest.approx(1.0)
    assert d[("m1", "pos", "A")] == 0.0
    # same as the scalar helper
    for (m, s, n), value in d.items():
        i = ["m0", "m1", "m2"].index(m)
        sets = {"pos": MAPS[i] > 0, "neg": MAPS[i] < 0, "any": np.nan_to_num(MAPS[i]) != 0}
        assert value == pytest.approx(dice(sets[s], MEMBER[["A", "B"].index(n)]))
    best = best_network(t)
    assert best.to_dict() == {"m0": "A", "m1": "B", "m2": "A"}
    assert np.isnan(dice([0, 0], [0, 0]))
    with pytest.raises(ValueError, match="signs must be among"):
        network_dice(MAPS, MEMBER, ["A", "B"], signs=["up"])


def test_shape_errors_name_the_fix():
    with pytest.raises(ValueError, match="load the atlas on the maps' own mask"):
        network_counts(MAPS[:, :5], MEMBER, ["A", "B"])
    with pytest.raises(ValueError, match="1 network names for 2 networks"):
        network_counts(MAPS, MEMBER, ["A"])


def test_layer_preference_against_loop():
    rng = np.random.default_rng(0)
    scores = {f"layer{k}": rng.normal(size=50) for k in range(4)}
    scores["layer2"][[3, 7]] = np.nan
    best, names, score = layer_preference(scores, threshold=0.5)
    for v in range(50):
        vals = [scores[n][v] for n in names]
        vals = [x if np.isfinite(x) else -np.inf for x in vals]
        k = int(np.argmax(vals))
        if vals[k] < 0.5:
            assert best[v] == -1 and np.isnan(score[v])
        else:
            assert best[v] == k and score[v] == vals[k]
    member = np.zeros((2, 50), bool)
    member[0, :25] = True
    member[1, 25:] = True
    t = layer_preference_counts(best, names, member, ["A", "B"])
    for net, sl in (("A", slice(0, 25)), ("B", slice(25, 50))):
        b = best[sl]
        for k, n in enumerate(names):
            row = t[(t["network"] == net) & (t["layer"] == n)]
            assert row["n_voxels"].item() == (b == k).sum()
            assert row["fraction"].item() == pytest.approx((b == k).sum() / (b >= 0).sum())
    with pytest.raises(ValueError, match="layer_scores is empty"):
        layer_preference({})


def test_network_table_with_images_and_atlas_names():
    from nilearn.datasets import load_mni152_brain_mask
    from nilearn.maskers import NiftiMasker

    from nilearn_vlm import get_atlas

    mask = load_mni152_brain_mask(resolution=4)
    masker = NiftiMasker(mask_img=mask, standardize=None).fit()
    labels = get_atlas("seitzman2018").load(masker)
    lk = dict(zip(labels.lookup["name"], labels.lookup["index"]))
    vis = labels.labels == lk["Visual"]
    dmn = labels.labels == lk["DefaultMode"]
    sig = np.zeros(labels.n_voxels)
    sig[vis] = 3.0
    sig[dmn] = -3.0
    img = masker.inverse_transform(np.vstack([sig, -sig]))  # 4-D: two maps
    t = network_table(img, "seitzman2018", masker=masker, map_names=["atom0", "atom1"])
    row = t.set_index(["map", "network"])
    assert row.loc[("atom0", "Visual"), "n_pos"] == vis.sum()
    assert row.loc[("atom0", "DefaultMode"), "n_neg"] == dmn.sum()
    assert row.loc[("atom1", "Visual"), "n_neg"] == vis.sum()
    assert set(t["atlas"]) == {"seitzman2018"}
    # canonical level, several atlases, dice
    both = network_table(
        {"a": masker.inverse_transform(sig)}, ["seitzman2018", "language_mni"], masker=masker,
        kind="dice", level="canonical",
    )
    d = both.set_index(["atlas", "sign", "network"])["dice"]
    assert d[("seitzman2018", "pos", "vision")] == pytest.approx(1.0)
    assert d[("seitzman2018", "neg", "default mode")] == pytest.approx(1.0)
    assert ("language_mni", "any", "language") in d.index
    # arrays need a target
    with pytest.raises(ValueError, match="give masker= .images. or target="):
        network_table(sig, "seitzman2018")
    t2 = network_table(sig, "seitzman2018", target=mask)
    t3 = network_table(sig, labels)  # loaded labels need no target
    pd.testing.assert_frame_equal(t2, t3)
    assert t2.set_index("network").loc["Visual", "n_pos"] == vis.sum()


def test_layer_preference_table_and_image():
    from nilearn.maskers import NiftiMasker

    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = [-8, -8, -8]
    mask = nib.Nifti1Image(np.ones((4, 4, 4), np.int8), affine)
    masker = NiftiMasker(mask_img=mask, standardize=None).fit()
    n = 64
    labels = AtlasLabels("toy", "MNI152", np.repeat([1, 2], 32), make_lookup([1, 2], ["Visual", "Default"]))
    scores = {"v.0": np.r_[np.ones(32), np.zeros(32)], "v.1": np.r_[np.zeros(32), np.ones(32)]}
    t = layer_preference_table(scores, labels, masker=masker, level="canonical")
    got = t.set_index(["network", "layer"])["n_voxels"]
    assert got[("vision", "v.0")] == 32 and got[("vision", "v.1")] == 0
    assert got[("default mode", "v.1")] == 32
    img, names = layer_preference_img(scores, masker)
    np.testing.assert_array_equal(masker.transform(img).ravel(), np.repeat([1, 2], 32))
    assert names == ["v.0", "v.1"] and n == 64
    assert isinstance(t, pd.DataFrame)


def test_counts_per_layer_and_stream_from_unit_names():
    from nilearn_vlm.networks import dominant_group
    from nilearn_vlm.units import unit_groups

    units = ["vision.0.attn_out.0", "vision.1.attn_out.0", "text.0.attn_out.0"]
    # unit-level maps grouped by stream: vision = m0 | m1 (as MAPS rows), text = m2
    t = network_counts(MAPS, MEMBER, ["A", "B"], groups=unit_groups(units, "stream"))
    got = t.set_index(["group", "network"])
    assert tuple(got.loc[("vision", "B"), ["n_pos", "n_neg"]]) == (1, 2)
    assert tuple(got.loc[("text", "A"), ["n_pos", "n_neg"]]) == (3, 0)
    # atoms attributed to the layer holding most of their key neurons
    key = np.array([[1, 1, 0], [0, -1, -1], [0, 0, 0]])
    layers = unit_groups(["v.0.a.0", "v.0.a.1", "v.1.a.0"], "layer")
    assert dominant_group(key, layers).tolist() == ["v.0", "v.0", ""]
    key2 = np.array([[0, 0, 1]])
    assert dominant_group(key2, layers).tolist() == ["v.1"]


def test_sparse_and_blocked_inputs_give_the_same_tables(monkeypatch):
    from scipy import sparse

    from nilearn_vlm.networks import _tables

    rng = np.random.default_rng(5)
    maps = rng.normal(size=(7, 40)) * (rng.random((7, 40)) < 0.3)
    member = rng.random((3, 40)) < 0.3
    names = ["A", "B", "C"]
    dense_c = network_counts(maps, member, names, groups=list("aabbbcc"))
    dense_d = network_dice(maps, member, names)
    monkeypatch.setattr(_tables, "_BLOCK", 2)
    pd.testing.assert_frame_equal(network_counts(maps, member, names, groups=list("aabbbcc")), dense_c)
    pd.testing.assert_frame_equal(network_counts(sparse.csr_matrix(maps), member, names, groups=list("aabbbcc")), dense_c)
    pd.testing.assert_frame_equal(network_dice(sparse.coo_matrix(maps), member, names), dense_d)
    # against a plain loop
    for i in range(7):
        for j, n in enumerate(names):
            row = dense_d[(dense_d["map"] == str(i)) & (dense_d["network"] == n) & (dense_d["sign"] == "neg")]
            assert row["dice"].item() == pytest.approx(dice(maps[i] < 0, member[j]), nan_ok=True)
