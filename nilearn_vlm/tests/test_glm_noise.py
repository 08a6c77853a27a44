"""The calibrated GLM's numerics against independent references (closed forms, brute force, simulation)."""

import numpy as np
import pytest
from scipy import linalg, stats

from nilearn_vlm._glm_calibrated import calibrated_glm, contrast_variance, t_to_z
from nilearn_vlm._glm_noise import (
    NoiseModel,
    ar_whiten,
    cos_product,
    dct_keep,
    fit_noise,
    global_ar_filter,
    lag_sums,
    levinson_durbin,
    orth_basis,
    residual_bias_matrix,
)
from nilearn_vlm._glm_solver import drift_terms


@pytest.fixture(autouse=True)
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _shift(n, k, starts, stops):
    """Dense S_k: ones at (t, t + k) for t, t + k in one run."""
    S = np.zeros((n, n))
    for s, e in zip(starts, stops):
        for t in range(s, e - k):
            S[t, t + k] = 1.0
    return S


def _ma_noise(rng, n, v, theta):
    """Moving-average noise x_t = sum_i theta_i e_{t-i}: autocovariance known exactly."""
    q = len(theta) - 1
    e = rng.standard_normal((n + q, v))
    return sum(theta[i] * e[q - i : n + q - i] for i in range(q + 1))


def _ma_gamma(theta, L):
    theta = np.asarray(theta)
    return np.array([theta[: len(theta) - k] @ theta[k:] if k < len(theta) else 0.0
                     for k in range(L + 1)])


@pytest.mark.parametrize("runs", [None, np.repeat([0, 1], [40, 50])])
def test_bias_matrix_equals_the_trace_formula(runs):
    rng = np.random.default_rng(0)
    n, L = 90, 6
    Q = orth_basis(np.c_[drift_terms(n, runs, 2.0).to_numpy(), rng.standard_normal((n, 3))])
    starts, stops = (np.array([0]), np.array([n])) if runs is None else (np.array([0, 40]), np.array([40, 90]))
    R = np.eye(n) - Q @ Q.T
    S = [_shift(n, k, starts, stops) for k in range(L + 1)]
    T = [np.eye(n)] + [S[k] + S[k].T for k in range(1, L + 1)]
    brute = np.array([[np.trace(R @ S[k] @ R @ T[m]) for m in range(L + 1)] for k in range(L + 1)])
    np.testing.assert_allclose(residual_bias_matrix(Q, L, runs), brute, atol=1e-9)
    E = rng.standard_normal((n, 4))
    np.testing.assert_allclose(lag_sums(E, L, runs), np.array([[e @ S[k] @ e for e in E.T]
                                                                for k in range(L + 1)]), atol=1e-10)


def test_bias_correction_matches_the_monte_carlo_expectation():
    """Residuals of 24 regressors: plain lag sums are biased, the corrected ones are not."""
    rng = np.random.default_rng(1)
    n, L, v = 88, 6, 40000
    theta = [1.0, 0.6, 0.3, -0.2]  # MA(3)
    gamma = _ma_gamma(theta, L)
    Q = orth_basis(np.c_[drift_terms(n, None, 2.5).to_numpy(), rng.standard_normal((n, 20))])
    E = _ma_noise(rng, n, v, theta)
    E -= Q @ (Q.T @ E)
    naive = lag_sums(E, L).mean(1) / (n - np.arange(L + 1))
    corrected = np.linalg.solve(residual_bias_matrix(Q, L), lag_sums(E, L)).mean(1)
    se = np.linalg.solve(residual_bias_matrix(Q, L), lag_sums(E, L)).std(1) / np.sqrt(v)
    assert np.all(np.abs(corrected - gamma) < 4 * se + 1e-3)
    assert np.abs(naive[1] / naive[0] - gamma[1] / gamma[0]) > 0.08  # what the correction fixes


def test_levinson_durbin_solves_yule_walker():
    rng = np.random.default_rng(2)
    for order in (1, 2, 4):
        phi_true = np.array([0.5, -0.3, 0.1, 0.05])[:order]
        x = np.zeros(20000)
        e = rng.standard_normal(20000)
        for t in range(order, x.size):
            x[t] = phi_true @ x[t - order : t][::-1] + e[t]
        r = np.array([x[: x.size - k] @ x[k:] for k in range(order + 1)]) / x.size
        rho = r / r[0]
        ours = levinson_durbin(rho[:, None], order)[:, 0]
        np.testing.assert_allclose(ours, linalg.solve_toeplitz(rho[:order], rho[1:]), atol=1e-10)
        np.testing.assert_allclose(ours, phi_true, atol=0.03)


def test_global_filter_whitens_ar2_noise():
    rng = np.random.default_rng(3)
    n, v = 400, 300
    phi = np.array([0.6, -0.2])
    x = np.zeros((n, v))
    e = rng.standard_normal((n, v))
    for t in range(2, n):
        x[t] = phi[0] * x[t - 1] + phi[1] * x[t - 2] + e[t]
    N = drift_terms(n, None, 2.0).to_numpy()
    est = global_ar_filter(x, N, order=2)
    np.testing.assert_allclose(est, phi, atol=0.03)
    np.testing.assert_allclose(ar_whiten(x, phi)[2:], e[2:], atol=1e-12)


def test_cos_product_is_the_product_of_cosine_series():
    rng = np.random.default_rng(4)
    P, Q = rng.standard_normal((4, 3)), rng.standard_normal((6, 3))
    w = np.linspace(0, np.pi, 37)

    def series(c):
        return np.cos(np.outer(w, np.arange(c.shape[0]))) @ c

    np.testing.assert_allclose(series(cos_product(P, Q)), series(P) * series(Q), atol=1e-12)


def _model(gamma, Q, runs=None):
    """A noise model that holds ``gamma`` exactly (no taper, no shrinkage)."""
    L = gamma.shape[0] - 1
    return NoiseModel(gamma, np.ones(gamma.shape[1]), np.zeros(L), residual_bias_matrix(Q, L, runs),
                      dct_keep(Q, runs), np.ones(L + 1))


def test_variance_is_a_va_for_a_known_toeplitz_v():
    rng = np.random.default_rng(5)
    n, L = 80, 7
    Q = orth_basis(drift_terms(n, None, 2.0).to_numpy())
    A = rng.standard_normal((n, 3))
    A -= Q @ (Q.T @ A)
    gammas = np.stack([_ma_gamma(th, L) for th in ([1, 0.5], [1, 0.8, 0.4, 0.2], [1.0])], axis=1)
    var, _ = contrast_variance(A, np.zeros((3, 3)), None, _model(gammas, Q), floor=0.0)
    for j in range(3):
        V = linalg.toeplitz(np.r_[gammas[:, j], np.zeros(n - L - 1)])
        np.testing.assert_allclose(var[:, j], np.einsum("ij,ik,kj->j", A, V, A), rtol=1e-10)


def test_satterthwaite_dof_matches_simulation():
    """dof = 2 E[v]^2 / Var[v] of the variance estimate v over many noise draws."""
    rng = np.random.default_rng(6)
    n, v = 120, 30000
    theta = [1.0, 0.7, 0.3]
    N = drift_terms(n, None, 2.0).to_numpy()
    Q = orth_basis(N)
    x = rng.standard_normal((n, 1))
    x -= Q @ (Q.T @ x)
    A = x / (x**2).sum()
    E = _ma_noise(rng, n, v, theta)
    E -= Q @ (Q.T @ E)
    noise = fit_noise(E, Q, max_lag=8, shrink=False)
    var, dof = contrast_variance(A, A.T @ E, None, noise, floor=0.0)
    simulated = 2 * var.mean() ** 2 / var.var()
    # the estimate is evaluated at each draw's own spectrum; its median against the simulation
    assert 0.8 < np.median(dof) / simulated < 1.25
    # and the variance estimate is unbiased for the true a'Va (up to the taper's bias, small here)
    V = linalg.toeplitz(np.r_[_ma_gamma(theta, 2), np.zeros(n - 3)])
    assert abs(var.mean() / (A[:, 0] @ V @ A[:, 0]) - 1) < 0.08


def test_t_to_z_matches_scipy():
    t = np.array([0.5, 2.0, -3.0, 8.0, 20.0])
    for dof in (5.0, 20.0, 200.0):
        exact = stats.norm.isf(stats.t.sf(np.abs(t), dof)) * np.sign(t)
        ours = t_to_z(t, dof)
        np.testing.assert_allclose(np.log(stats.norm.sf(np.abs(ours))),
                                   np.log(stats.t.sf(np.abs(t), dof)), atol=0.01)
        np.testing.assert_allclose(ours, exact, rtol=2e-3)


def _ar_noise(rng, n, v, phi):
    x = np.zeros((n + 50, v))
    e = rng.standard_normal((n + 50, v))
    for t in range(2, n + 50):
        x[t] = phi[0] * x[t - 1] + phi[1] * x[t - 2] + e[t]
    return x[50:]


def _hrf_design(rng, n, t_r, k):
    from nilearn.glm.first_level import compute_regressor

    frame_times = np.arange(n) * t_r
    cols = []
    for _ in range(k):
        on = np.sort(rng.uniform(0, n * t_r - 5, size=n // 4))
        cond = np.vstack([on, np.full(on.size, 1.0), rng.standard_normal(on.size)])
        cols.append(compute_regressor(cond, "glover", frame_times)[0][:, 0])
    return np.column_stack(cols)


@pytest.mark.parametrize("mode", ["univariate", "joint"])
def test_null_rates_on_simulated_autocorrelated_noise(mode):
    """HRF-smooth regressors against AR(2) noise of varying strength: nominal rates where nilearn's AR(1) is not."""
    from nilearn_vlm import VoxelGLM
    from nilearn_vlm.stats import clopper_pearson

    rng = np.random.default_rng(7)
    n, t_r, v = 100, 2.0, 1500
    phi1 = rng.uniform(0.3, 0.9, v)  # voxels differ, as in real data
    x = np.zeros((n + 50, v))
    e = rng.standard_normal((n + 50, v))
    for t in range(2, n + 50):
        x[t] = phi1 * x[t - 1] - 0.2 * x[t - 2] + e[t]
    Y = x[50:]
    k05 = k05_ar1 = m = 0
    for _ in range(6):
        X = _hrf_design(rng, n, t_r, 4)
        p = VoxelGLM(t_r=t_r, mode=mode).fit(X, Y).p_
        p_ar1 = VoxelGLM(t_r=t_r, mode=mode, noise_model="ar1").fit(X, Y).p_
        k05 += int((p < 0.05).sum())
        k05_ar1 += int((p_ar1 < 0.05).sum())
        m += p.size
    lo, hi = clopper_pearson(k05, m)
    assert 0.03 < k05 / m < 0.07, (k05 / m, lo, hi)
    assert clopper_pearson(k05_ar1, m)[0] > hi  # the AR(1) model is more liberal on AR(2) noise
