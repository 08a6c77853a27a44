"""Tests of VoxelGLM against closed forms and nilearn's FirstLevelModel."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nilearn_vlm.glm import VoxelGLM, ar1_yule_walker


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """One BLAS thread: small LAPACK calls are many times slower when the
    shared test machine is oversubscribed."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _ar1_noise(rng, n, v, rho):
    e = rng.standard_normal((n, v))
    out = np.empty_like(e)
    out[0] = e[0]
    for t in range(1, n):
        out[t] = rho * out[t - 1] + e[t]
    return out


def _data(seed=0, n=160, k=3, v=40, rho=0.4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, k))
    B = rng.standard_normal((k, v)) * (rng.random((k, v)) < 0.5)
    Y = X @ B + 5.0 + _ar1_noise(rng, n, v, rho)
    return X, Y


def _closed_form_t(D, y, rho):
    """Prewhitened OLS written out: W = I - rho * L with W[0] = e_0."""
    n = D.shape[0]
    W = np.eye(n) - rho * np.eye(n, k=-1)
    Dw, yw = W @ D, W @ y
    XtX_inv = np.linalg.inv(Dw.T @ Dw)
    beta = XtX_inv @ Dw.T @ yw
    resid = yw - Dw @ beta
    sigma2 = resid @ resid / (n - D.shape[1])
    return beta / np.sqrt(sigma2 * np.diag(XtX_inv))


def test_t_values_equal_closed_form_at_fixed_ar1():
    X, Y = _data()
    glm = VoxelGLM(t_r=2.0, noise_model="ar1", ar_coef=0.37).fit(X, Y)
    D = glm.design_.to_numpy()
    for v in range(Y.shape[1]):
        t = _closed_form_t(D, Y[:, v], 0.37)[: X.shape[1]]
        np.testing.assert_allclose(glm.t_[v], t, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(glm.ar1_, 0.37)


def test_ols_equals_statsmodels_free_closed_form():
    X, Y = _data(seed=1)
    glm = VoxelGLM(drift_model=None, noise_model="ols").fit(X, Y)
    D = np.c_[X, np.ones(len(X))]
    beta = np.linalg.lstsq(D, Y, rcond=None)[0]
    np.testing.assert_allclose(glm.coef_, beta[:3].T, atol=1e-10)
    np.testing.assert_allclose(glm.intercept_, beta[3], atol=1e-10)
    t0 = _closed_form_t(D, Y[:, 0], 0.0)[:3]
    np.testing.assert_allclose(glm.t_[0], t0, atol=1e-8)
    p0 = 2 * stats.t.sf(np.abs(t0), len(X) - 4)
    np.testing.assert_allclose(glm.p_[0], p0, rtol=1e-8)


def test_yule_walker_matches_nilearn():
    from nilearn.glm.first_level.first_level import _yule_walker

    rng = np.random.default_rng(2)
    e = _ar1_noise(rng, 300, 20, 0.5)
    e -= e.mean(0)
    np.testing.assert_allclose(
        ar1_yule_walker(e), _yule_walker(e.T, 1)[:, 0], atol=1e-12
    )


def _fit_nilearn(glm, Y):
    mask = np.ones((Y.shape[1], 1, 1), dtype=np.int8)
    affine = np.eye(4)
    img = nib.Nifti1Image(Y.T.reshape(Y.shape[1], 1, 1, -1), affine)
    flm, designs = glm.to_first_level_model(
        mask_img=nib.Nifti1Image(mask, affine)
    )
    flm.fit(img, design_matrices=designs)
    t = np.column_stack(
        [
            flm.compute_contrast(name, output_type="stat").get_fdata().ravel()
            for name in glm.regressor_names_
        ]
    )
    return flm, t


def test_agrees_with_nilearn_first_level_model():
    X, Y = _data(seed=3, n=200, v=60, rho=0.5)
    X = pd.DataFrame(X, columns=["a", "b", "c"])
    glm = VoxelGLM(t_r=1.5, high_pass=0.02, noise_model="ar1").fit(X, Y)
    flm, t = _fit_nilearn(glm, Y)
    # same design, same AR(1) binning (bins=100): equal to 1e-6
    np.testing.assert_allclose(glm.t_, t, atol=1e-6)
    # exact per-voxel AR(1) differs from nilearn only by the binning
    exact = VoxelGLM(t_r=1.5, high_pass=0.02, noise_model="ar1", bins=None).fit(X, Y)
    assert not np.allclose(exact.t_, t, atol=1e-6)
    # rho moves by < 1 / bins = 0.01: |delta t| <= 0.02 |t| + 0.05
    np.testing.assert_allclose(exact.t_, t, rtol=0.02, atol=0.05)


def test_runs_restart_drift_and_whitening():
    X, Y = _data(seed=4, n=180)
    runs = np.repeat([0, 1], 90)
    glm = VoxelGLM(t_r=1.0, noise_model="ar1", ar_coef=0.3).fit(X, Y, groups=runs)
    D = glm.design_.to_numpy()
    assert {"constant_run0", "constant_run1"} <= set(glm.design_.columns)
    W = np.eye(180) - 0.3 * np.eye(180, k=-1)
    W[90, 89] = 0.0  # whitening restarts at the run boundary
    Dw, yw = W @ D, W @ Y[:, 5]
    inv = np.linalg.inv(Dw.T @ Dw)
    beta = inv @ Dw.T @ yw
    r = yw - Dw @ beta
    t = beta / np.sqrt(r @ r / (180 - D.shape[1]) * np.diag(inv))
    np.testing.assert_allclose(glm.t_[5], t[:3], atol=1e-6)
    flm, designs = glm.to_first_level_model()
    assert len(designs) == 2 and all(len(d) == 90 for d in designs)
    assert "constant_run1" not in designs[0].columns


def test_signed_sets_follow_fdr():
    rng = np.random.default_rng(5)
    n = 300
    X = rng.standard_normal((n, 2))
    B = np.zeros((2, 30))
    B[0, :10], B[0, 10:20] = 0.8, -0.8
    Y = X @ B + rng.standard_normal((n, 30))
    glm = VoxelGLM(drift_model=None, noise_model="ols").fit(X, Y)
    q = stats.false_discovery_control(glm.p_[:, 0])
    expected = np.sign(glm.t_[:, 0]) * (q <= 0.05)
    np.testing.assert_array_equal(glm.signed_[:, 0], expected)
    pos, neg = glm.voxel_sets()["x0"]
    np.testing.assert_array_equal(pos, np.arange(10))
    np.testing.assert_array_equal(neg, np.arange(10, 20))
    table = glm.summary_table()
    assert table.loc[0, "n_positive"] == 10 and table.loc[0, "n_negative"] == 10
    bonf = VoxelGLM(drift_model=None, height_control="bonferroni").fit(X, Y)
    assert np.all(np.abs(bonf.signed_) <= np.abs(glm.signed_) + 0)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(drift_model="cosine"), "t_r is needed"),
        (dict(t_r=1.0, drift_model="spline"), "'drift_model' parameter of VoxelGLM .* Got 'spline'"),
        (dict(drift_model=None, noise_model="ar2"), "'noise_model' parameter .* Got 'ar2'"),
        (dict(drift_model=None, ar_coef=1.5), r"'ar_coef' parameter .* range \(-1.0, 1.0\)"),
        (dict(drift_model=None, height_control="holm"), "'height_control' parameter"),
        (dict(drift_model=None, bins=0), r"'bins' parameter .* range \[1, inf\)"),
        (dict(drift_model=None, n_jobs=1.5), "'n_jobs' parameter"),
        (dict(drift_model=None, ar_coef=0.3), "ar_coef fixes the AR.* Pass noise_model='ar1'"),
    ],
)
def test_bad_params(params, match):
    X, Y = _data(n=50, v=3)
    with pytest.raises(ValueError, match=match):
        VoxelGLM(**params).fit(X, Y)


def test_bad_inputs():
    X, Y = _data(n=50, v=3)
    with pytest.raises(ValueError, match="X has 49 scans but y has 50"):
        VoxelGLM(drift_model=None).fit(X[:-1], Y)
    with pytest.raises(ValueError, match="rank deficient"):
        VoxelGLM(drift_model=None).fit(np.c_[X, X[:, :1]], Y)
    with pytest.raises(ValueError, match="contiguous"):
        VoxelGLM(drift_model=None).fit(X, Y, groups=np.tile([0, 1], 25))


def test_nifti_in_maps_out_and_export_with_masker():
    X, Y = _data(seed=6, n=120, v=24, rho=0.3)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    img = nib.Nifti1Image(Y.T.reshape(2, 3, 4, -1), affine)
    mask = nib.Nifti1Image(np.ones((2, 3, 4), np.int8), affine)
    glm = VoxelGLM(mask=mask, t_r=1.0, noise_model="ar1").fit(X, img)
    t_img = glm.maps("t")
    assert t_img.shape == (2, 3, 4, 3)
    np.testing.assert_allclose(
        t_img.get_fdata()[..., 1], glm.t_[:, 1].reshape(2, 3, 4), rtol=1e-5
    )
    flm, designs = glm.to_first_level_model()
    assert flm.mask_img is glm.masker_
    flm.fit(img, design_matrices=designs)
    t_nl = flm.compute_contrast("x1", output_type="stat").get_fdata()
    np.testing.assert_allclose(t_nl, t_img.get_fdata()[..., 1], atol=1e-4)
    with pytest.raises(ValueError, match="stat='z'"):
        glm.maps("z")


def test_list_of_runs_and_constant_voxel():
    X, Y = _data(seed=7, n=100, v=5)
    Y[:, 2] = 1.0
    with pytest.warns(UserWarning, match="constant voxel"):
        glm = VoxelGLM(t_r=1.0, noise_model="ar1").fit(X, [Y[:50], Y[50:]])
    np.testing.assert_array_equal(glm.runs_, np.repeat([0, 1], 50))
    assert glm.t_[2].tolist() == [0.0, 0.0, 0.0]
    assert np.isnan(glm.ar1_[2]) and np.all(np.isfinite(glm.t_))
    ref = VoxelGLM(t_r=1.0, noise_model="ar1").fit(X, np.delete(Y, 2, axis=1),
                                groups=np.repeat([0, 1], 50))
    np.testing.assert_allclose(np.delete(glm.t_, 2, axis=0), ref.t_, atol=1e-10)


def test_n_jobs_and_dtypes_leave_the_numbers_alone():
    X, Y = _data(n=120, v=30)
    for mode in ("joint", "univariate"):
        one = VoxelGLM(t_r=2.0, mode=mode, noise_model="ar1").fit(X, Y)
        two = VoxelGLM(t_r=2.0, mode=mode, noise_model="ar1", n_jobs=2).fit(X, Y)
        assert np.unique(one.ar1_).size > 1  # several AR(1) bins: several tasks
        for name in ("t_", "coef_", "p_", "ar1_", "signed_"):
            np.testing.assert_array_equal(getattr(two, name), getattr(one, name))
    f32 = VoxelGLM(t_r=2.0).fit(X.astype(np.float32), Y)
    f64 = VoxelGLM(t_r=2.0).fit(X.astype(np.float32).astype(np.float64), Y)
    np.testing.assert_array_equal(f32.t_, f64.t_)  # the fit runs in float64 either way
    assert f32.maps("t").dtype == np.float32 and f64.maps("t").dtype == np.float64
    assert VoxelGLM(t_r=2.0).fit(np.rint(X * 10).astype(int), Y).maps("coef").dtype == np.float64


def test_calibrated_is_the_default_and_runs_like_the_others():
    X, Y = _data(n=120, v=30)
    Y[:, 4] = 2.0
    runs = np.repeat([0, 1], 60)
    for mode in ("joint", "univariate"):
        with pytest.warns(UserWarning, match="constant voxel"):
            one = VoxelGLM(t_r=2.0, mode=mode).fit(X, Y, groups=runs)
            two = VoxelGLM(t_r=2.0, mode=mode, n_jobs=2).fit(X, Y, groups=runs)
        assert one.noise_model == "calibrated" and one.ar_filter_.shape == (2,)
        assert one.dof_.shape == one.t_.shape and np.isnan(one.dof_[4]).all()
        assert one.t_[4].tolist() == [0.0] * 3 and one.p_[4].tolist() == [1.0] * 3
        for name in ("t_", "coef_", "p_", "dof_", "signed_", "intercept_"):
            np.testing.assert_array_equal(getattr(two, name), getattr(one, name))
        # the intercept is the least-squares one of the same nuisance (or design)
        with pytest.warns(UserWarning, match="constant voxel"):
            ols = VoxelGLM(t_r=2.0, mode=mode, noise_model="ols").fit(X, Y, groups=runs)
        np.testing.assert_allclose(one.intercept_, ols.intercept_, atol=1e-8)
        # the planted effects (half of the coefficients, |b| ~ 1 against noise of sd ~ 1.1)
        B = np.delete(np.linalg.lstsq(X, Y - 5.0, rcond=None)[0].T, 4, 0)
        sig = np.delete(one.signed_, 4, 0)
        assert np.mean(sig[np.abs(B) > 0.5] != 0) > 0.9 and np.mean(sig[np.abs(B) < 0.1] != 0) < 0.1
