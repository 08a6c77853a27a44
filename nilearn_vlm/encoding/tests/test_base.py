"""Tests of the shared image input/output base of the voxel estimators."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn._utils.data_gen import generate_fake_fmri
from nilearn.maskers import NiftiMasker, SurfaceMasker
from nilearn.surface import InMemoryMesh, PolyMesh, SurfaceImage
from scipy.signal import detrend as sp_detrend

from nilearn_vlm.encoding import BaseVoxelEstimator, clean_signals


def _surface_img(n_scans, n_vert=6, seed=0):
    coords = np.random.default_rng(42).random((n_vert, 3))
    rng = np.random.default_rng(seed)
    faces = np.array([[i, i + 1, i + 2] for i in range(n_vert - 2)])
    mesh = PolyMesh(left=InMemoryMesh(coords, faces),
                    right=InMemoryMesh(coords + 1, faces))
    data = {h: rng.standard_normal((n_vert, n_scans)) for h in ("left", "right")}
    return SurfaceImage(mesh=mesh, data=data)


def _cifti(n_scans, path=None, seed=0):
    rng = np.random.default_rng(seed)
    vol = np.zeros((3, 3, 3), bool)
    vol[1:, 1:, :2] = True
    bm = nib.cifti2.BrainModelAxis.from_mask(vol, name="thalamus_left",
                                             affine=np.eye(4))
    bm = bm + nib.cifti2.BrainModelAxis.from_mask(
        np.array([1, 0, 1, 1], bool), name="cortex_left")
    ser = nib.cifti2.SeriesAxis(0.0, 1.5, n_scans)
    data = rng.standard_normal((n_scans, len(bm))).astype(np.float32)
    img = nib.cifti2.Cifti2Image(data, nib.cifti2.Cifti2Header.from_axes((ser, bm)))
    if path is not None:
        img.to_filename(str(path))
        return path, data
    return img, data


def test_nifti_runs_round_trip():
    img, mask = generate_fake_fmri(shape=(5, 6, 4), length=12, rand_gen=0)
    est = BaseVoxelEstimator(mask=mask)
    Y, runs, conf = est._load_targets([img, img])
    n_vox = int(np.asarray(mask.dataobj).sum())
    assert Y.shape == (24, n_vox)
    np.testing.assert_array_equal(runs, np.repeat([0, 1], 12))
    assert conf is None and est.input_kind_ == "nifti"
    out = est._to_output(Y[:3])
    assert out.shape == (5, 6, 4, 3)
    m = np.asarray(mask.dataobj).astype(bool)
    np.testing.assert_allclose(out.get_fdata()[m], np.asarray(img.dataobj)[m][:, :3],
                               rtol=1e-6)
    assert est._to_output(Y[0]).shape == (5, 6, 4)


def test_fitted_masker_and_default_mask():
    img, mask = generate_fake_fmri(shape=(5, 6, 4), length=10, rand_gen=1)
    masker = NiftiMasker(mask_img=mask).fit()
    est = BaseVoxelEstimator(mask=masker)
    Y, _, _ = est._load_targets(img)
    assert est.masker_ is masker
    est2 = BaseVoxelEstimator()
    Y2, _, _ = est2._load_targets(img)
    assert est2.masker_ is not None and Y2.shape[0] == 10


def test_mask_affine_mismatch_is_clear():
    img, mask = generate_fake_fmri(shape=(5, 6, 4), length=10, rand_gen=1)
    bad = nib.Nifti1Image(np.asarray(mask.dataobj), np.diag([2, 2, 2, 1]))
    with pytest.raises(ValueError, match="does not match.*resample_to_img"):
        BaseVoxelEstimator(mask=bad)._load_targets(img)
    bad_shape = nib.Nifti1Image(np.ones((4, 4, 4), np.int8), img.affine)
    with pytest.raises(ValueError, match="does not match"):
        BaseVoxelEstimator(mask=bad_shape)._load_targets(img)


def test_surface_round_trip_and_runs():
    img = _surface_img(8)
    est = BaseVoxelEstimator()
    Y, runs, _ = est._load_targets([img, _surface_img(5, seed=1)])
    assert Y.shape == (13, 12) and est.input_kind_ == "surface"
    np.testing.assert_array_equal(np.bincount(runs), [8, 5])
    np.testing.assert_allclose(Y[:8, :6], img.data.parts["left"].T)
    out = est._to_output(Y[:2])
    assert isinstance(out, SurfaceImage)
    np.testing.assert_allclose(out.data.parts["right"], img.data.parts["right"][:, :2])
    est = BaseVoxelEstimator(mask=SurfaceMasker())
    assert est._load_targets(img).Y.shape == (8, 12)


def test_surface_with_volume_mask_is_clear():
    _, mask = generate_fake_fmri(shape=(5, 6, 4), length=2)
    with pytest.raises(ValueError, match="surface images but the mask"):
        BaseVoxelEstimator(mask=NiftiMasker(mask))._load_targets(_surface_img(4))


def test_cifti_round_trip(tmp_path):
    path, data = _cifti(7, tmp_path / "bold.dtseries.nii")
    est = BaseVoxelEstimator()
    Y, runs, _ = est._load_targets(str(path))
    assert est.input_kind_ == "cifti" and runs is None
    np.testing.assert_allclose(Y, data)
    out = est._to_output(Y[:3] * 2)
    out.to_filename(str(tmp_path / "pred.dtseries.nii"))
    back = nib.load(str(tmp_path / "pred.dtseries.nii"))
    np.testing.assert_allclose(back.get_fdata(), data[:3] * 2, rtol=1e-6)
    ax0, ax1 = back.header.get_axis(0), back.header.get_axis(1)
    assert isinstance(ax0, nib.cifti2.SeriesAxis) and ax0.step == 1.5
    assert ax1 == est._cifti_axes[1]
    smap = est._to_output(Y[0])
    assert isinstance(smap.header.get_axis(0), nib.cifti2.ScalarAxis)
    assert smap.shape == (1, Y.shape[1])


def test_cifti_rejects_mask():
    img, _ = _cifti(5)
    with pytest.raises(ValueError, match="mask is only used with"):
        BaseVoxelEstimator(mask=np.ones(3))._load_targets(img)


def test_arrays_groups_confounds():
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((10, 3))
    est = BaseVoxelEstimator()
    t = est._load_targets(Y, confounds=pd.DataFrame(rng.random((10, 2))),
                          groups=[0] * 5 + [1] * 5)
    assert est.masker_ is None and t.confounds.shape == (10, 2)
    np.testing.assert_array_equal(t.runs, [0] * 5 + [1] * 5)
    assert est._to_output(Y[:2]) is not None
    t = est._load_targets([Y[:4], Y[4:]], confounds=[np.ones(4), np.ones(6)])
    np.testing.assert_array_equal(t.runs, [0] * 4 + [1] * 6)
    assert t.confounds.shape == (10, 1)
    est._load_targets(Y[:, 0])
    assert est._to_output(Y[:, :1]).shape == (10,)


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
        BaseVoxelEstimator()._load_targets(np.ones((10, 2)), **kwargs)


def test_sample_count_and_bad_voxels():
    with pytest.raises(ValueError, match="X has 4 scans.*y has 5"):
        BaseVoxelEstimator._check_n_samples(np.ones((4, 2)), np.ones((5, 2)))
    Y = np.random.default_rng(0).standard_normal((6, 4))
    Y[2, 1] = np.nan
    Y[:, 3] = 7.0
    with pytest.warns(UserWarning, match="1 voxel.*NaN.*1 constant"):
        valid = BaseVoxelEstimator()._valid_voxels(Y)
    np.testing.assert_array_equal(valid, [True, False, True, False])
    with pytest.raises(ValueError, match="All 2 voxels"):
        BaseVoxelEstimator()._valid_voxels(np.ones((5, 2)))


def test_clean_signals_matches_references():
    from nilearn.glm.first_level import make_first_level_design_matrix

    rng = np.random.default_rng(0)
    runs = np.repeat([0, 1], [30, 40])
    X, Y = rng.standard_normal((70, 3)), rng.standard_normal((70, 5))
    # detrending: scipy's linear detrend per run (also removes the mean)
    Xc, Yc = clean_signals(X, Y, runs, detrend=True)
    for r in (0, 1):
        np.testing.assert_allclose(Yc[runs == r], sp_detrend(Y[runs == r], axis=0),
                                   atol=1e-10)
        np.testing.assert_allclose(Xc[runs == r], sp_detrend(X[runs == r], axis=0),
                                   atol=1e-10)
    # high-pass: nilearn's cosine drift regressors, per run
    t_r, hp = 2.0, 0.02
    _, Yh = clean_signals(None, Y, runs, high_pass=hp, t_r=t_r)
    for r in (0, 1):
        n = int((runs == r).sum())
        dm = make_first_level_design_matrix(np.arange(n) * t_r, drift_model="cosine",
                                            high_pass=hp)
        D = dm.to_numpy()
        ref = Y[runs == r] - D @ np.linalg.lstsq(D, Y[runs == r], rcond=None)[0]
        np.testing.assert_allclose(Yh[runs == r], ref, atol=1e-10)
    # confounds: residuals of least squares on [1, C]
    C = rng.standard_normal((70, 2))
    _, Yk = clean_signals(None, Y, confounds=C)
    D = np.column_stack([np.ones(70), C])
    np.testing.assert_allclose(Yk, Y - D @ np.linalg.lstsq(D, Y, rcond=None)[0],
                               atol=1e-10)
    assert clean_signals(X, Y)[0] is X
    with pytest.raises(ValueError, match="pass t_r"):
        clean_signals(X, Y, high_pass=0.01)
