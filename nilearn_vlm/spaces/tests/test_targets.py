"""Loading targets of every kind into arrays, and arrays back into images."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn._utils.data_gen import generate_fake_fmri
from nilearn.maskers import NiftiMasker, SurfaceMasker
from nilearn.surface import SurfaceImage

from nilearn_vlm.spaces import LoadedTargets, array_to_image, load_targets


def test_nifti_runs_round_trip():
    img, mask = generate_fake_fmri(shape=(5, 6, 4), length=12, rand_gen=0)
    t = load_targets([img, img], mask=mask)
    Y, runs, conf = t.Y, t.runs, t.confounds
    n_vox = int(np.asarray(mask.dataobj).sum())
    assert Y.shape == (24, n_vox)
    np.testing.assert_array_equal(runs, np.repeat([0, 1], 12))
    assert conf is None and t.space.kind == "nifti"
    assert t.space.n_voxels == n_vox and t.space.space == "MNI152"
    out = array_to_image(Y[:3], t.space)
    assert out.shape == (5, 6, 4, 3)
    m = np.asarray(mask.dataobj).astype(bool)
    np.testing.assert_allclose(out.get_fdata()[m], np.asarray(img.dataobj)[m][:, :3],
                               rtol=1e-6)
    assert array_to_image(Y[0], t.space).shape == (5, 6, 4)


def test_fitted_masker_and_default_mask():
    img, mask = generate_fake_fmri(shape=(5, 6, 4), length=10, rand_gen=1)
    masker = NiftiMasker(mask_img=mask).fit()
    t = load_targets(img, mask=masker)
    assert t.space.masker is masker
    t2 = load_targets(img)
    assert t2.space.masker is not None and t2.Y.shape[0] == 10
    # an unfitted masker is cloned, not fitted in place
    unfitted = NiftiMasker(mask_img=mask)
    t3 = load_targets(img, mask=unfitted)
    assert t3.space.masker is not unfitted and not hasattr(unfitted, "mask_img_")
    np.testing.assert_array_equal(t3.Y, t.Y)


def test_mask_affine_mismatch_is_clear():
    img, mask = generate_fake_fmri(shape=(5, 6, 4), length=10, rand_gen=1)
    bad = nib.Nifti1Image(np.asarray(mask.dataobj), np.diag([2, 2, 2, 1]))
    with pytest.raises(ValueError, match="does not match.*resample_to_img"):
        load_targets(img, mask=bad)
    bad_shape = nib.Nifti1Image(np.ones((4, 4, 4), np.int8), img.affine)
    with pytest.raises(ValueError, match="does not match"):
        load_targets(img, mask=bad_shape)


def test_surface_round_trip_and_runs(make_surface):
    img = make_surface(8)
    t = load_targets([img, make_surface(5, seed=1)])
    Y, runs = t.Y, t.runs
    assert Y.shape == (13, 12) and t.space.kind == "surface"
    np.testing.assert_array_equal(np.bincount(runs), [8, 5])
    np.testing.assert_allclose(Y[:8, :6], img.data.parts["left"].T)
    out = array_to_image(Y[:2], t.space)
    assert isinstance(out, SurfaceImage)
    np.testing.assert_allclose(out.data.parts["right"], img.data.parts["right"][:, :2])
    assert load_targets(img, mask=SurfaceMasker()).Y.shape == (8, 12)
    # a 6-vertex mesh per hemisphere has no standard name
    assert t.space.space == "surface(12 vertices)"


def test_surface_with_volume_mask_is_clear(make_surface):
    _, mask = generate_fake_fmri(shape=(5, 6, 4), length=2)
    with pytest.raises(ValueError, match="surface images but the mask"):
        load_targets(make_surface(4), mask=NiftiMasker(mask))


def test_cifti_round_trip(tmp_path, make_cifti):
    path, data = make_cifti(7, tmp_path / "bold.dtseries.nii")
    t = load_targets(str(path))
    Y, runs = t.Y, t.runs
    assert t.space.kind == "cifti" and runs is None
    np.testing.assert_allclose(Y, data)
    out = array_to_image(Y[:3] * 2, t.space)
    out.to_filename(str(tmp_path / "pred.dtseries.nii"))
    back = nib.load(str(tmp_path / "pred.dtseries.nii"))
    np.testing.assert_allclose(back.get_fdata(), data[:3] * 2, rtol=1e-6)
    ax0, ax1 = back.header.get_axis(0), back.header.get_axis(1)
    assert isinstance(ax0, nib.cifti2.SeriesAxis) and ax0.step == 1.5
    assert ax1 == t.space.brain_models
    smap = array_to_image(Y[0], t.space)
    assert isinstance(smap.header.get_axis(0), nib.cifti2.ScalarAxis)
    assert smap.shape == (1, Y.shape[1])


def test_cifti_rejects_mask(make_cifti):
    img, _ = make_cifti(5)
    with pytest.raises(ValueError, match="mask is only used with"):
        load_targets(img, mask=np.ones(3))


def test_arrays_groups_confounds():
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((10, 3))
    t = load_targets(Y, confounds=pd.DataFrame(rng.random((10, 2))),
                     groups=[0] * 5 + [1] * 5)
    assert t.space.masker is None and t.confounds.shape == (10, 2)
    np.testing.assert_array_equal(t.runs, [0] * 5 + [1] * 5)
    assert array_to_image(Y[:2], t.space) is not None
    t = load_targets([Y[:4], Y[4:]], confounds=[np.ones(4), np.ones(6)])
    np.testing.assert_array_equal(t.runs, [0] * 4 + [1] * 6)
    assert t.confounds.shape == (10, 1)
    t = load_targets(Y[:, 0])
    assert t.ndim == 1
    assert array_to_image(Y[:, :1], t.space, ndim=t.ndim).shape == (10,)
    # integers become float64, float32 stays float32
    assert load_targets(np.ones((3, 2), int)).Y.dtype == np.float64
    assert load_targets(Y.astype(np.float32)).Y.dtype == np.float32


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"confounds": np.ones((9, 2))}, "confounds have 9 rows"),
        ({"confounds": np.full((10, 1), np.nan)}, "NaN or inf"),
        ({"groups": np.ones(3)}, "groups has 3 entries"),
    ],
)
def test_bad_inputs_are_clear(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_targets(np.ones((10, 2)), **kwargs)


@pytest.mark.parametrize(
    "y, error, match",
    [
        ([], ValueError, "empty list"),
        ([np.ones((3, 2)), np.ones((3, 4))], ValueError, "different numbers of voxels"),
        (np.array(["a", "b"]), ValueError, "y must be numeric"),
        (np.ones((2, 2, 2)), ValueError, "y must be 2D"),
        (np.array([object(), object()], dtype=object), ValueError, "must hold numbers"),
    ],
)
def test_bad_targets_are_clear(y, error, match):
    with pytest.raises(error, match=match):
        load_targets(y)


def test_mixed_kinds_and_3d_nifti_are_clear(make_surface):
    img, mask = generate_fake_fmri(shape=(5, 6, 4), length=4, rand_gen=0)
    with pytest.raises(TypeError, match=r"one kind; got \['nifti', 'surface'\]"):
        load_targets([img, make_surface(4)])
    three_d = nib.Nifti1Image(np.ones((5, 6, 4)), img.affine)
    with pytest.raises(ValueError, match="must be 4D"):
        load_targets(three_d, mask=mask)
    with pytest.raises(TypeError, match="mask must be a mask image, a nilearn masker or None"):
        load_targets(img, mask=3)


def test_space_reads_like_earlier_targets(make_cifti):
    img, mask = generate_fake_fmri(shape=(5, 6, 4), length=10, rand_gen=2)
    first = load_targets(img, mask=mask)
    again = load_targets([img, img], space=first.space)
    assert again.space is first.space
    np.testing.assert_array_equal(again.Y, np.vstack([first.Y, first.Y]))
    with pytest.raises(ValueError, match="fitted on nifti data"):
        load_targets(np.ones((10, first.space.n_voxels)), space=first.space)
    arrays = load_targets(np.ones((4, 3)))
    with pytest.raises(ValueError, match="y has 2 voxels but the estimator was fitted on 3"):
        load_targets(np.ones((4, 2)), space=arrays.space)
    with pytest.raises(ValueError, match="either mask .* or space"):
        load_targets(img, mask=mask, space=first.space)


def test_loaded_targets_is_a_dataclass():
    t = load_targets(np.zeros((4, 2)))
    assert isinstance(t, LoadedTargets)
    assert (t.runs, t.confounds, t.ndim) == (None, None, 2)
