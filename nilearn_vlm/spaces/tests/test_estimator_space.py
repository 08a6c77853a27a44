"""The voxelwise estimators read and write images through nilearn_vlm.spaces.

For NIfTI runs, SurfaceImage, CIFTI and arrays: :func:`load_targets` gives
the arrays and runs of an independent reading (nilearn's masker, the image
data), and a fitted ``VoxelEncoder``/``VoxelGLM`` reads the same arrays and
runs, keeps the same space in ``space_`` and returns images of it.
"""

import warnings

import nibabel as nib
import numpy as np
import pytest
from nilearn._utils.data_gen import generate_fake_fmri
from nilearn.maskers import NiftiMasker
from nilearn.surface import SurfaceImage

from nilearn_vlm import VoxelEncoder, VoxelGLM
from nilearn_vlm.encoding import BaseVoxelEstimator
from nilearn_vlm.spaces import ImageSpace, array_to_image, load_targets


def _nifti_runs(_make_surface, _make_cifti):
    img0, mask = generate_fake_fmri(shape=(5, 6, 4), length=9, rand_gen=0)
    img1, _ = generate_fake_fmri(shape=(5, 6, 4), length=7, rand_gen=1)
    masker = NiftiMasker(mask_img=mask, standardize=None).fit()
    ref = np.vstack([masker.transform(img0), masker.transform(img1)])
    return [img0, img1], mask, ref, np.repeat([0, 1], [9, 7]), nib.Nifti1Image


def _surface(make_surface, _make_cifti):
    img = make_surface(16, seed=3)
    ref = np.hstack([img.data.parts["left"].T, img.data.parts["right"].T])
    return img, None, ref, None, SurfaceImage


def _cifti(_make_surface, make_cifti):
    img, data = make_cifti(16, seed=4)
    return img, None, data, None, nib.Cifti2Image


def _arrays(_make_surface, _make_cifti):
    rng = np.random.default_rng(5)
    runs = [rng.standard_normal((10, 4)), rng.standard_normal((6, 4))]
    return runs, None, np.vstack(runs), np.repeat([0, 1], [10, 6]), np.ndarray


@pytest.mark.parametrize("build", [_nifti_runs, _surface, _cifti, _arrays],
                         ids=["nifti_runs", "surface", "cifti", "arrays"])
@pytest.mark.parametrize("make_estimator", [
    lambda: VoxelEncoder(alphas=[1.0, 10.0], cv=2),
    lambda: VoxelGLM(t_r=1.0),
], ids=["encoder", "glm"])
def test_load_targets_equals_estimator_loading(build, make_estimator, make_surface, make_cifti):
    y, mask, ref, ref_runs, out_type = build(make_surface, make_cifti)
    t = load_targets(y, mask=mask)
    np.testing.assert_allclose(t.Y, ref, rtol=1e-6)
    if ref_runs is None:
        assert t.runs is None
    else:
        np.testing.assert_array_equal(t.runs, ref_runs)
    # the estimator base's own loading
    base = BaseVoxelEstimator(mask=mask)
    Y, runs, conf = base._load_targets(y)
    np.testing.assert_array_equal(Y, t.Y)
    np.testing.assert_array_equal(runs, t.runs)
    assert conf is None
    # a fitted estimator: same arrays and runs, same space, images of it
    X = np.random.default_rng(0).standard_normal((len(t.Y), 2))
    est = make_estimator()
    est.set_params(mask=mask)
    est.fit(X, y, groups=np.repeat([0, 1], [8, len(t.Y) - 8]) if t.runs is None else None)
    Y2, runs2, _ = est._load_targets(y, reset=False)
    np.testing.assert_array_equal(Y2, t.Y)
    np.testing.assert_array_equal(runs2, t.runs)
    space = est.space_
    assert isinstance(space, ImageSpace)
    assert ImageSpace.from_estimator(est) is space
    assert (space.kind, space.n_voxels, space.space) == (t.space.kind, t.space.n_voxels, t.space.space)
    assert est.masker_ is space.masker and est.input_kind_ == space.kind
    assert est.n_voxels_ == space.n_voxels == ref.shape[1]
    if space.kind == "cifti":
        assert space == t.space and space.time_axis == t.space.time_axis
    maps = np.arange(2 * ref.shape[1], dtype=float).reshape(2, -1)
    out = est._to_output(maps)
    assert isinstance(out, out_type)
    want = array_to_image(maps, t.space)
    if space.kind == "array":
        np.testing.assert_array_equal(out, want)
    elif space.kind == "cifti":
        np.testing.assert_array_equal(out.get_fdata(), want.get_fdata())
        assert out.header.get_axis(0) == want.header.get_axis(0)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            np.testing.assert_array_equal(space.masker.transform(out), maps)
            np.testing.assert_array_equal(t.space.masker.transform(want), maps)


def test_unfitted_estimator_has_no_space():
    with pytest.raises(ValueError, match="VoxelEncoder is not fitted: call fit first"):
        ImageSpace.from_estimator(VoxelEncoder())
