"""ImageSpace: builders, images of per-voxel arrays, saving without pickle."""

import nibabel as nib
import numpy as np
import pytest
from nilearn._utils.data_gen import generate_fake_fmri
from nilearn.maskers import NiftiMasker, SurfaceMasker

from nilearn_vlm import VoxelGLM
from nilearn_vlm.spaces import ImageSpace, Target


def test_invalid_spaces_are_clear():
    with pytest.raises(ValueError, match="kind must be one of"):
        ImageSpace("volume", 3)
    with pytest.raises(ValueError, match="a nifti ImageSpace needs its fitted masker"):
        ImageSpace("nifti", 3)
    with pytest.raises(ValueError, match="needs the brain-model axis"):
        ImageSpace("cifti", 3)
    with pytest.raises(ValueError, match="fit the masker"):
        ImageSpace.from_masker(NiftiMasker())
    with pytest.raises(ValueError, match="needs a brain-model"):
        ImageSpace.from_cifti(nib.cifti2.ScalarAxis(["a"]))


def test_nifti_maps_round_trip(tmp_path):
    _, mask = generate_fake_fmri(shape=(5, 6, 4), length=2, rand_gen=0)
    space = ImageSpace.from_masker(NiftiMasker(mask_img=mask, standardize=None))
    n = int(np.asarray(mask.dataobj).sum())
    assert (space.kind, space.n_voxels, space.space) == ("nifti", n, "MNI152")
    maps = np.random.default_rng(0).standard_normal((3, n))
    img = space.inverse_transform(maps)
    assert img.shape == (5, 6, 4, 3) and img.get_data_dtype() == np.float32
    np.testing.assert_allclose(space.transform(img), maps.astype(np.float32))
    assert space.save_img(maps, tmp_path, "t") == ["t.nii.gz"]
    np.testing.assert_allclose(space.transform(tmp_path / "t.nii.gz"), maps.astype(np.float32))
    space.save(tmp_path / "space")
    back = ImageSpace.load(tmp_path / "space")
    assert (back.kind, back.n_voxels, back.space) == (space.kind, space.n_voxels, space.space)
    np.testing.assert_allclose(back.transform(img), maps.astype(np.float32))
    assert space.atlas_target() is space.masker
    with pytest.raises(ValueError, match=f"array has 2 voxels but the space has {n}"):
        space.inverse_transform(np.ones(2))
    with pytest.raises(ValueError, match=f"the image has 2 voxels, the space {n}"):
        space.transform(np.ones((1, 2)))


def test_cifti_keeps_its_axes(tmp_path):
    vol = np.zeros((3, 3, 3), bool)
    vol[1:, 1:, :2] = True
    bm = nib.cifti2.BrainModelAxis.from_mask(vol, name="thalamus_left", affine=np.eye(4))
    series = nib.cifti2.SeriesAxis(0.0, 0.8, 4)
    img = nib.Cifti2Image(np.zeros((4, len(bm)), np.float32), nib.cifti2.Cifti2Header.from_axes((series, bm)))
    space = ImageSpace.from_cifti(img)
    assert space.brain_models == bm and space.time_axis == series and space.space is None
    assert ImageSpace.from_cifti(bm).time_axis is None
    maps = np.arange(2.0 * len(bm)).reshape(2, -1)
    dscalar = space.inverse_transform(maps, names=["a", "b"])
    assert list(dscalar.header.get_axis(0).name) == ["a", "b"]
    np.testing.assert_array_equal(space.transform(dscalar), maps)
    space.save(tmp_path)
    back = ImageSpace.load(tmp_path)
    assert back == space  # the time axis is not saved and not compared
    assert back.time_axis is None and back.brain_models == bm


def test_surface_and_array_spaces(tmp_path, make_surface):
    img = make_surface(3)
    space = ImageSpace.from_masker(SurfaceMasker(standardize=None).fit(img))
    assert space.kind == "surface" and space.n_voxels == 12
    maps = np.random.default_rng(1).standard_normal((2, 12))
    files = space.save_img(maps, tmp_path, "m")
    assert files == ["m_hemi-L.func.gii", "m_hemi-R.func.gii"]
    left = np.column_stack([d.data for d in nib.load(tmp_path / files[0]).darrays])
    np.testing.assert_allclose(left, maps[:, :6].T.astype(np.float32))
    space.save(tmp_path / "space")
    back = ImageSpace.load(tmp_path / "space")
    np.testing.assert_allclose(back.transform(back.inverse_transform(maps)), maps.astype(np.float32))
    assert (back.kind, back.n_voxels, back.space) == (space.kind, space.n_voxels, space.space)
    arr = ImageSpace.from_array(91282, space="hcp_grayordinates")
    assert arr.space == "fsLR_91k" and arr.inverse_transform(np.ones(91282)).shape == (91282,)
    assert arr.atlas_target() == Target("fsLR_91k", n=91282)
    assert arr.save_img(np.ones(91282), tmp_path, "none") == []


def test_from_estimator_reads_the_fitted_space():
    img, mask = generate_fake_fmri(shape=(5, 6, 4), length=20, rand_gen=3)
    X = np.random.default_rng(2).standard_normal((20, 2))
    glm = VoxelGLM(t_r=1.0, mask=mask).fit(X, img)
    space = ImageSpace.from_estimator(glm)
    assert space is glm.space_ and space.masker is glm.masker_
    assert space.n_voxels == int(np.asarray(mask.dataobj).sum()) == glm.n_voxels_
    named = ImageSpace.from_estimator(glm, space="MNI152NLin6Asym")
    assert named.space == "MNI152NLin6Asym" and named.masker is glm.masker_
    arrays = VoxelGLM(t_r=1.0).fit(X, X @ np.ones((2, 3)) + np.random.default_rng(3).standard_normal((20, 3)))
    assert ImageSpace.from_estimator(arrays, space="fsaverage5").space == "fsaverage5"
    assert ImageSpace.from_estimator(arrays).space is None
