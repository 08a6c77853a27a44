"""The mass-univariate GLM against one joint GLS fit per regressor."""

import numpy as np
import pytest

from nilearn_vlm._glm_univariate import univariate_prewhitened_ols
from nilearn_vlm.glm import prewhitened_ols


@pytest.mark.parametrize("rho", [0.0, 0.35])
def test_equals_prewhitened_ols_per_regressor(rho):
    rng = np.random.default_rng(0)
    n, k, v = 120, 4, 30
    runs = np.repeat([0, 1], n // 2)
    X = rng.standard_normal((n, k))
    X[:, 3] = X[:, 0] * 0.8 + 0.2 * rng.standard_normal(n)  # correlated regressors
    t = np.arange(n)
    nuisance = np.column_stack([(runs == 0), (runs == 1), np.cos(np.pi * t / n)]).astype(float)
    Y = rng.standard_normal((n, v)) + X[:, [0]] * 0.5
    beta, se, dof = univariate_prewhitened_ols(X, nuisance, Y, rho, runs)
    assert dof == n - 3 - 1
    for j in range(k):
        b_ref, se_ref, _ = prewhitened_ols(np.column_stack([X[:, j], nuisance]), Y, rho, runs)
        np.testing.assert_allclose(beta[j], b_ref[0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(se[j], se_ref[0], rtol=1e-9)


def test_a_regressor_explained_by_the_nuisance_gets_no_effect():
    rng = np.random.default_rng(1)
    n = 50
    nuisance = np.ones((n, 1))
    X = np.column_stack([np.full(n, 3.0), rng.standard_normal(n)])
    beta, se, _ = univariate_prewhitened_ols(X, nuisance, rng.standard_normal((n, 5)), 0.2)
    assert np.all(beta[0] == 0) and np.all(np.isinf(se[0]))
    assert np.all(np.isfinite(se[1]))


def test_voxelglm_univariate_mode_equals_one_joint_fit_per_regressor():
    from nilearn_vlm import VoxelGLM

    rng = np.random.default_rng(2)
    n, v = 160, 12
    runs = np.repeat([1, 2], n // 2)
    X = rng.standard_normal((n, 3))
    X[:, 2] = 0.9 * X[:, 0] + 0.1 * rng.standard_normal(n)
    Y = rng.standard_normal((n, v))
    Y[:, :6] += 0.6 * X[:, [0]]
    uni = VoxelGLM(t_r=2.0, noise_model="ar1", ar_coef=0.3, mode="univariate").fit(X, Y, groups=runs)
    for j in range(3):
        ref = VoxelGLM(t_r=2.0, noise_model="ar1", ar_coef=0.3).fit(X[:, [j]], Y, groups=runs)
        np.testing.assert_allclose(uni.t_[:, j], ref.t_[:, 0], rtol=1e-8)
        np.testing.assert_allclose(uni.p_[:, j], ref.p_[:, 0], rtol=1e-6)
    assert uni.dof_ == ref.dof_
    # correlated regressors keep their effect in univariate mode
    assert (uni.signed_[:6, 2] > 0).all()
    with pytest.raises(ValueError, match="'mode' parameter of VoxelGLM must be a str among .* Got 'both'"):
        VoxelGLM(mode="both").fit(X, Y)
