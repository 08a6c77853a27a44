"""Space names, target resolution for atlases and the HCP grayordinate order."""

import doctest

import nibabel as nib
import numpy as np
import pytest
from nilearn.datasets import load_fsaverage, load_mni152_brain_mask
from nilearn.maskers import NiftiMasker

from nilearn_vlm import VoxelEncoder
from nilearn_vlm import spaces as spaces_pkg
from nilearn_vlm.spaces import (
    N_CORTEX_GRAYORDINATES,
    N_FSAVERAGE5,
    N_GRAYORDINATES,
    ImageSpace,
    SpaceMismatchError,
    Target,
    canonical_space,
    check_hcp_axis,
    default_mni_mask,
    resolve_target,
)
from nilearn_vlm.spaces import _grayordinates, _imagespace, _names, _resolve, _targets


@pytest.fixture(scope="module")
def mask4():
    return load_mni152_brain_mask(resolution=4)


@pytest.fixture(scope="module")
def vertex_info():
    with np.load(_grayordinates._hcp_data_dir() / "fMRI_vertex_info_32k.npz") as vi:
        return vi["grayl"], vi["grayr"]


def test_space_names():
    assert canonical_space("hcp_grayordinates") == "fsLR_91k"
    with pytest.raises(ValueError, match="unknown space 'talairach'"):
        canonical_space("talairach")
    assert canonical_space("MNI152NLin2009cAsym") == canonical_space("mni") == "MNI152"
    assert canonical_space("fsLR_91k") == "fsLR_91k"
    assert canonical_space("fs-avg5") == "fsaverage5"


def test_counts_and_names_resolve():
    assert resolve_target(N_GRAYORDINATES) == Target("fsLR_91k", n=N_GRAYORDINATES)
    assert resolve_target(np.int64(N_CORTEX_GRAYORDINATES)) == Target("fsLR_91k", n=59412)
    assert resolve_target(N_FSAVERAGE5) == Target("fsaverage5", n=20484)
    assert resolve_target("grayordinates").n == N_GRAYORDINATES
    assert resolve_target(None, default_space="fsaverage5").n == N_FSAVERAGE5
    mni = resolve_target(None)
    assert mni.space == "MNI152" and mni.mask_img.get_data_dtype() == np.int8
    np.testing.assert_array_equal(np.asarray(mni.mask_img.dataobj) != 0,
                                  np.asarray(default_mni_mask(2).dataobj) != 0)
    t = Target("fsaverage5", n=3)
    assert resolve_target(t) is t
    with pytest.raises(ValueError, match="a count target must be 91282"):
        resolve_target(1234)
    with pytest.raises(TypeError, match="cannot read a data space from dict"):
        resolve_target({})
    with pytest.raises(TypeError, match="cannot read a data space from bool"):
        resolve_target(True)


def test_volumes_resolve_to_checked_mni_masks(mask4, tmp_path):
    t = resolve_target(mask4)
    assert t.space == "MNI152"
    np.testing.assert_array_equal(np.asarray(t.mask_img.dataobj), np.asarray(mask4.dataobj) != 0)
    mask4.to_filename(tmp_path / "mask.nii.gz")
    np.testing.assert_array_equal(resolve_target(str(tmp_path / "mask.nii.gz")).mask_img.dataobj,
                                  t.mask_img.dataobj)
    masker = NiftiMasker(mask_img=mask4, standardize=None).fit()
    np.testing.assert_array_equal(resolve_target(masker).mask_img.dataobj, t.mask_img.dataobj)
    with pytest.raises(ValueError, match="has no mask yet"):
        resolve_target(NiftiMasker())
    far = nib.Nifti1Image(np.asarray(mask4.dataobj), mask4.affine + np.c_[np.zeros((4, 3)), [500, 0, 0, 0]])
    with pytest.raises(SpaceMismatchError, match="does not look like MNI152"):
        resolve_target(far)
    with pytest.raises(ValueError, match="must be a 3-D mask image"):
        resolve_target(nib.Nifti1Image(np.ones((3, 3, 3, 2)), np.eye(4)))
    with pytest.raises(ValueError, match="target mask image is empty"):
        resolve_target(nib.Nifti1Image(np.zeros((3, 3, 3)), np.eye(4)))


def test_surfaces_spaces_and_estimators_resolve():
    pial = load_fsaverage("fsaverage5")["pial"]
    assert resolve_target(pial) == Target("fsaverage5", n=N_FSAVERAGE5)
    assert resolve_target(ImageSpace.from_array(91282, space="hcp_grayordinates")) == Target(
        "fsLR_91k", n=91282)
    rng = np.random.default_rng(0)
    enc = VoxelEncoder(alphas=[1.0], cv=2).fit(rng.standard_normal((12, 2)),
                                                rng.standard_normal((12, 3)))
    with pytest.raises(ValueError, match="an array ImageSpace without a space"):
        resolve_target(enc)
    with pytest.raises(ValueError, match="MNI152 arrays need the mask"):
        resolve_target(ImageSpace.from_array(5, space="MNI152"))
    with pytest.raises(TypeError, match="cannot read a data space from VoxelEncoder"):
        resolve_target(VoxelEncoder())


def test_cifti_targets_are_checked(vertex_info):
    grayl, grayr = vertex_info
    axis = (nib.cifti2.BrainModelAxis.from_surface(grayl, 32492, "CortexLeft")
            + nib.cifti2.BrainModelAxis.from_surface(grayr, 32492, "CortexRight"))
    assert len(axis) == N_CORTEX_GRAYORDINATES
    check_hcp_axis(axis)  # the standard cortex passes
    img = nib.Cifti2Image(np.zeros((1, len(axis)), np.float32),
                          header=(nib.cifti2.ScalarAxis(["a"]), axis))
    assert resolve_target(img) == Target("fsLR_91k", n=N_CORTEX_GRAYORDINATES)
    swapped = (nib.cifti2.BrainModelAxis.from_surface(grayr, 32492, "CortexRight")
               + nib.cifti2.BrainModelAxis.from_surface(grayl, 32492, "CortexLeft"))
    with pytest.raises(ValueError, match="expected 29696 CIFTI_STRUCTURE_CORTEX_LEFT at position 0"):
        check_hcp_axis(swapped)
    shifted = (nib.cifti2.BrainModelAxis.from_surface(grayl + 1, 32493, "CortexLeft")
               + nib.cifti2.BrainModelAxis.from_surface(grayr, 32492, "CortexRight"))
    with pytest.raises(ValueError, match="cortical vertices differ"):
        check_hcp_axis(shifted)
    small = nib.cifti2.BrainModelAxis.from_mask(np.ones(10, bool), name="CIFTI_STRUCTURE_CORTEX_LEFT")
    with pytest.raises(ValueError, match="has 10 grayordinates"):
        resolve_target(small)


def test_docstring_examples_run():
    for mod in (spaces_pkg, _names, _grayordinates, _imagespace, _resolve, _targets):
        result = doctest.testmod(
            mod, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
        assert result.failed == 0, mod.__name__
        assert result.attempted > 0, mod.__name__
