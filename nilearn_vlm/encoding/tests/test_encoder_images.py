"""VoxelEncoder with image targets: Nifti, runs, surface, CIFTI."""

import nibabel as nib
import numpy as np
from scipy.signal import detrend
import pytest
from nilearn.maskers import NiftiMasker
from nilearn.surface import InMemoryMesh, PolyMesh, SurfaceImage
from sklearn.linear_model import Ridge

from nilearn_vlm import VoxelEncoder

N, P = 60, 4


def _signal(n=N, p=P, n_vox=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    Y = X @ rng.standard_normal((p, n_vox)) + 0.5 * rng.standard_normal((n, n_vox))
    return X, Y


def _nifti(Y, shape=(4, 4, 3)):
    mask = np.zeros(shape, bool)
    mask.flat[: Y.shape[1]] = True
    data = np.zeros((*shape, len(Y)), np.float32)
    data[mask] = Y.T
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    return (nib.Nifti1Image(data, affine),
            nib.Nifti1Image(mask.astype(np.int8), affine), mask)


def test_nifti_in_nifti_out():
    X, Y = _signal(n_vox=20)
    img, mask_img, mask = _nifti(Y)
    enc = VoxelEncoder(mask=mask_img, dtype="float64").fit(X, img)
    ref = VoxelEncoder(dtype="float64").fit(X, Y)
    np.testing.assert_allclose(enc.alpha_, ref.alpha_)
    pred = enc.predict(X[:7])
    assert isinstance(pred, nib.Nifti1Image) and pred.shape == (4, 4, 3, 7)
    sk = np.column_stack([Ridge(alpha=a).fit(X, Y[:, j]).predict(X[:7])
                          for j, a in enumerate(enc.alpha_)])
    np.testing.assert_allclose(pred.get_fdata()[mask].T, sk, rtol=1e-6, atol=1e-8)
    rmap = enc.score_img(X, img)
    assert rmap.shape == (4, 4, 3)
    # one run: Pearson r of the linearly detrended series (scipy)
    r = [np.corrcoef(detrend(Y[:, j]), detrend(sk_j))[0, 1] for j, sk_j in enumerate(
        (X @ enc.coef_.T + enc.intercept_).T)]
    np.testing.assert_allclose(rmap.get_fdata()[mask], r, atol=1e-6)
    assert enc.score(X, img) == pytest.approx(np.mean(r), abs=1e-6)


def test_list_of_runs_is_leave_one_run_out():
    X, Y = _signal(n_vox=12, seed=1)
    runs = np.repeat([0, 1, 2], 20)
    imgs = [_nifti(Y[runs == r])[0] for r in range(3)]
    mask_img = _nifti(Y)[1]
    enc = VoxelEncoder(mask=NiftiMasker(mask_img), dtype="float64").fit(X, imgs)
    ref = VoxelEncoder(dtype="float64").fit(X, Y, groups=runs)
    np.testing.assert_allclose(enc.alpha_, ref.alpha_)
    np.testing.assert_allclose(enc.cv_scores_, ref.cv_scores_, atol=1e-10)
    loro = [np.mean([np.mean((Y[runs == r, j] - Ridge(alpha=a).fit(
        X[runs != r], Y[runs != r, j]).predict(X[runs == r])) ** 2)
        / np.var(Y[runs == r, j]) for r in range(3)]) for j, a in
        enumerate(enc.alpha_)]
    np.testing.assert_allclose(enc.cv_scores_, 1 - np.asarray(loro), atol=1e-8)


def test_surface_in_surface_out():
    X, Y = _signal(n_vox=10, seed=2)
    coords = np.random.default_rng(0).random((5, 3))
    faces = np.array([[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    mesh = PolyMesh(left=InMemoryMesh(coords, faces),
                    right=InMemoryMesh(coords + 1, faces))
    img = SurfaceImage(mesh=mesh, data={"left": Y[:, :5].T, "right": Y[:, 5:].T})
    enc = VoxelEncoder(dtype="float64").fit(X, img)
    pred = enc.predict(X[:3])
    assert isinstance(pred, SurfaceImage) and pred.shape == (10, 3)
    ref = VoxelEncoder(dtype="float64").fit(X, Y).predict(X[:3])
    np.testing.assert_allclose(pred.data.parts["right"], ref[:, 5:].T, rtol=1e-8)
    assert isinstance(enc.score_img(X, img), SurfaceImage)


def test_cifti_in_cifti_out(tmp_path):
    X, Y = _signal(n_vox=9, seed=3)
    bm = nib.cifti2.BrainModelAxis.from_mask(np.ones((3, 3, 1), bool),
                                             name="thalamus_left", affine=np.eye(4))
    hdr = nib.cifti2.Cifti2Header.from_axes((nib.cifti2.SeriesAxis(0, 0.8, N), bm))
    path = tmp_path / "bold.dtseries.nii"
    nib.cifti2.Cifti2Image(Y.astype(np.float32), hdr).to_filename(str(path))
    enc = VoxelEncoder().fit(X, str(path))
    pred = enc.predict(X[:4])
    pred.to_filename(str(tmp_path / "pred.dtseries.nii"))
    back = nib.load(str(tmp_path / "pred.dtseries.nii"))
    assert back.header.get_axis(1) == bm and back.shape == (4, 9)
    assert back.header.get_axis(0).step == pytest.approx(0.8)
    ref = VoxelEncoder().fit(X, Y.astype(np.float32)).predict(X[:4])
    np.testing.assert_allclose(back.get_fdata(), ref, rtol=1e-5, atol=1e-5)
    smap = enc.score_img(X, str(path))
    assert isinstance(smap.header.get_axis(0), nib.cifti2.ScalarAxis)


def test_image_errors():
    X, Y = _signal(n_vox=20)
    img, mask_img, _ = _nifti(Y)
    shifted = nib.Nifti1Image(np.asarray(mask_img.dataobj), np.diag([2, 2, 2, 1.0]))
    with pytest.raises(ValueError, match="does not match"):
        VoxelEncoder(mask=shifted).fit(X, img)
    enc = VoxelEncoder(mask=mask_img).fit(X, img)
    with pytest.raises(ValueError, match="fitted on nifti data"):
        enc.score(X, Y)
    with pytest.raises(ValueError, match="X has 59 scans"):
        VoxelEncoder(mask=mask_img).fit(X[:59], img)
