"""Noise model of the calibrated GLM: Toeplitz autocovariances of residuals, bias removed.

The building blocks of :mod:`nilearn_vlm._glm_calibrated` (the default
inference of :class:`~nilearn_vlm.VoxelGLM` and of
:func:`~nilearn_vlm.maps.unit_voxel_maps`):

- lag sums ``s_k = sum_t e_t e_{t+k}`` within runs (:func:`lag_sums`);
- the residual-induced bias: residuals ``e = R y`` of a least-squares fit
  (``R = I - Q Q^T``) have lag sums of expectation ``M gamma`` for noise of
  autocovariance ``gamma`` (zero beyond the last lag), with
  ``M[k, l] = tr(R S_k R T_l)`` (Worsley 2002; :func:`residual_bias_matrix`),
  so ``solve(M, s)`` is unbiased where the plain ``s_k / (n - k)`` is biased
  low (the AR(1) of 64 fitted atoms reads 0.37 for a true 0.5);
- one global AR(p) whitening filter, the median over voxels of the
  bias-corrected autocorrelations through Levinson-Durbin
  (:func:`global_ar_filter`, :func:`ar_whiten`);
- the per-voxel noise model (:func:`fit_noise`): bias-corrected
  autocovariances, a Tukey taper, James-Stein shrinkage of each voxel's
  autocorrelations towards their median (positive part, Mahalanobis distance
  under their sampling covariance).

Only NumPy and SciPy; every function works on arrays ``(n_scans, n_columns)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.fft import dct

from nilearn_vlm._glm_solver import run_bounds


# ------------------------------------------------------------------ shifts
def _lead(A, k, starts, stops):
    """``(S_k A)[t] = A[t + k]`` when t and t + k lie in one run, else 0."""
    if k == 0:
        return A.copy()
    B = np.zeros_like(A)
    for s, e in zip(starts, stops):
        if e - s > k:
            B[s : e - k] = A[s + k : e]
    return B


def _lag(A, k, starts, stops):
    """``(S_k^T A)[t] = A[t - k]`` when t and t - k lie in one run, else 0."""
    if k == 0:
        return A.copy()
    B = np.zeros_like(A)
    for s, e in zip(starts, stops):
        if e - s > k:
            B[s + k : e] = A[s : e - k]
    return B


def default_max_lag(n_scans, runs=None):
    """Number of autocovariance lags: ``ceil(sqrt(n_scans))``, at most a quarter of the shortest run (>= 2)."""
    starts, stops = run_bounds(runs, n_scans)
    shortest = int(np.min(stops - starts))
    return int(max(2, min(np.ceil(np.sqrt(n_scans)), shortest // 4)))


def orth_basis(D, tol=1e-10):
    """Orthonormal basis of the column space of ``D`` (rank revealing SVD)."""
    D = np.asarray(D, dtype=np.float64)
    if D.shape[1] == 0:
        return np.zeros((D.shape[0], 0))
    U, s, _ = np.linalg.svd(D, full_matrices=False)
    return U[:, s > tol * max(s.max(initial=0.0), 1.0)]


def lag_sums(E, max_lag, runs=None):
    """``s_k = sum_t E[t] E[t + k]`` within runs, ``k = 0..max_lag``.

    Parameters
    ----------
    E : ndarray (n_scans, n_columns)
    max_lag : int
    runs : array-like (n_scans,), optional
        Contiguous run labels; products never cross a run boundary.

    Returns
    -------
    ndarray (max_lag + 1, n_columns)
    """
    E = np.asarray(E)
    starts, stops = run_bounds(runs, E.shape[0])
    out = np.zeros((max_lag + 1, E.shape[1]))
    for k in range(max_lag + 1):
        for s, e in zip(starts, stops):
            if e - s > k:
                out[k] += np.einsum("ij,ij->j", E[s : e - k], E[s + k : e])
    return out


def _pair_counts(n_scans, max_lag, runs=None):
    starts, stops = run_bounds(runs, n_scans)
    return np.array([sum(max(e - s - k, 0) for s, e in zip(starts, stops))
                     for k in range(max_lag + 1)], dtype=float)


def residual_bias_matrix(Q, max_lag, runs=None):
    """``M[k, l] = tr(R S_k R T_l)`` for ``R = I - Q Q^T`` (``Q`` orthonormal columns).

    ``S_k`` sums the lag-``k`` products within runs, ``T_0 = I`` and
    ``T_l = S_l + S_l^T``: residuals ``R y`` of noise with autocovariance
    ``gamma`` (zero beyond ``max_lag``) have lag sums of expectation
    ``M @ gamma`` (Worsley 2002), so ``solve(M, lag_sums(R y))`` is unbiased.
    Cost ``O(max_lag^2 n_scans rank(Q))``.

    Returns
    -------
    ndarray (max_lag + 1, max_lag + 1)
    """
    n = Q.shape[0]
    L = max_lag
    starts, stops = run_bounds(runs, n)
    G = np.stack([_lead(Q, k, starts, stops) for k in range(L + 1)])  # S_k Q
    F = np.stack([_lag(Q, k, starts, stops) for k in range(L + 1)])  # S_k^T Q
    H = G + F
    H[0] = Q
    M = np.diag(_pair_counts(n, L, runs))
    M -= np.einsum("knp,lnp->kl", F, H)
    M -= np.einsum("knp,lnp->kl", G, H)
    A = np.einsum("np,knq->kpq", Q, G)  # Q^T S_k Q
    B = np.einsum("np,lnq->lpq", Q, H)  # Q^T T_l Q
    M += np.einsum("kpq,lqp->kl", A, B)
    return M


def tukey(max_lag):
    """Tukey taper over lags ``0..max_lag`` (it would reach 0 at ``max_lag + 1``)."""
    k = np.arange(max_lag + 1)
    return 0.5 * (1 + np.cos(np.pi * k / (max_lag + 1)))


def levinson_durbin(rho, order, max_reflection=0.99):
    """AR(order) coefficients from autocorrelations.

    Parameters
    ----------
    rho : ndarray (order + 1, n_columns)
        Autocorrelations at lags 0..order (``rho[0] = 1``).
    order : int
    max_reflection : float
        Reflection coefficients are clipped to ``+-max_reflection``: the
        filter is stationary even when ``rho`` is not positive definite.

    Returns
    -------
    ndarray (order, n_columns)
        ``x_t = sum_i phi_i x_{t-i} + innovation``.
    """
    rho = np.asarray(rho, dtype=np.float64)
    phi = np.zeros((0, rho.shape[1]))
    err = np.ones(rho.shape[1])
    for k in range(1, order + 1):
        acc = rho[k] - (np.einsum("iv,iv->v", phi, rho[k - 1 : 0 : -1]) if k > 1 else 0.0)
        kap = np.clip(acc / err, -max_reflection, max_reflection)
        new = np.zeros((k, rho.shape[1]))
        if k > 1:
            new[: k - 1] = phi - kap * phi[::-1]
        new[k - 1] = kap
        phi = new
        err = err * (1 - kap**2)
    return phi


def ar_whiten(A, phi, runs=None):
    """``A[t] - sum_i phi_i A[t - i]`` within runs (scans before a run's start count as 0)."""
    A = np.asarray(A, dtype=np.float64)
    starts, stops = run_bounds(runs, A.shape[0])
    out = A.copy()
    for i, f in enumerate(np.atleast_1d(phi), start=1):
        if f != 0:
            for s, e in zip(starts, stops):
                if e - s > i:
                    out[s + i : e] -= f * A[s : e - i]
    return out


def _autocorrelations(gamma):
    """Voxels with a usable estimate, and their autocorrelations ``gamma[1:] / gamma[0]``."""
    ok = np.all(np.isfinite(gamma), 0) & (gamma[0] > 0)
    return ok, gamma[1:] / np.where(ok, gamma[0], 1.0)


def median_autocorrelation(gamma):
    """Median over columns of the autocorrelations of autocovariances ``gamma`` (L + 1, V)."""
    ok, rho = _autocorrelations(gamma)
    return np.median(rho[:, ok], axis=1) if ok.any() else np.zeros(gamma.shape[0] - 1)


def global_ar_filter(Y, nuisance, order=2, runs=None, max_lag=None, chunk=4096):
    """One AR(order) whitening filter for all voxels.

    The median over voxels of the bias-corrected autocorrelations (lags
    ``1..order``) of the residuals of the nuisance, through Levinson-Durbin.
    ``Y`` is read ``chunk`` voxels at a time (in float64).

    Returns
    -------
    ndarray (order,)
    """
    Y = np.asarray(Y)
    if order == 0:
        return np.zeros(0)
    L = max(order, max_lag if max_lag is not None else default_max_lag(Y.shape[0], runs))
    Q = orth_basis(nuisance)
    sums = np.empty((L + 1, Y.shape[1]))
    for s in range(0, Y.shape[1], chunk):
        Yc = np.asarray(Y[:, s : s + chunk], dtype=np.float64)
        sums[:, s : s + chunk] = lag_sums(Yc - Q @ (Q.T @ Yc), L, runs)
    gamma = np.linalg.solve(residual_bias_matrix(Q, L, runs), sums)
    rho = median_autocorrelation(gamma)
    return levinson_durbin(np.r_[1.0, rho[:order]][:, None], order)[:, 0]


def dct_keep(Q, runs=None):
    """Per run: DCT-II frequencies and the share of each that ``R = I - Q Q^T`` keeps.

    Symmetric Toeplitz matrices and the cosine-drift residual projector are
    nearly diagonal in the DCT-II basis; this is the approximation of the
    Satterthwaite degrees of freedom and of the shrinkage's sampling
    covariance.
    """
    starts, stops = run_bounds(runs, Q.shape[0])
    w, k = [], []
    for s, e in zip(starts, stops):
        C = dct(Q[s:e], type=2, norm="ortho", axis=0)
        k.append(np.clip(1 - np.einsum("ij,ij->i", C, C), 0, 1))
        w.append(np.pi * np.arange(e - s) / (e - s))
    w, k = np.concatenate(w), np.concatenate(k)
    sel = k > 1e-6
    return w[sel], k[sel]


def _sampling_cov_rho(rho_bar, M, spec, L):
    """Sampling covariance (L, L) of bias-corrected autocorrelations at ``rho_bar``.

    Residual DCT coefficients are taken independent ``N(0, keep_m f_m)``, so
    ``Cov(s_k, s_l) = 2 sum_m keep_m^2 cos(k w_m) cos(l w_m) f_m^2``;
    ``Cov(gamma) = M^-1 Cov(s) M^-T``; delta method for ``rho = gamma / gamma_0``.
    """
    w, keep = spec
    C = np.cos(np.outer(np.arange(L + 1), w))
    f = np.maximum(C.T @ np.r_[1.0, 2 * rho_bar], 1e-3)
    Cs = 2 * (C * (keep**2 * f**2)) @ C.T
    Mi = np.linalg.inv(M)
    Cg = Mi @ Cs @ Mi.T
    J = np.hstack([-rho_bar[:, None], np.eye(L)])
    return J @ Cg @ J.T


def cos_product(P, Q):
    """Cosine-series coefficients of ``P(w) Q(w)`` (``P(w) = sum_i P[i] cos(i w)``).

    Parameters
    ----------
    P : ndarray (a + 1, ...)
    Q : ndarray (b + 1, ...)
        Trailing shapes broadcast.

    Returns
    -------
    ndarray (a + b + 1, ...)
    """
    a, b = P.shape[0] - 1, Q.shape[0] - 1
    out = np.zeros((a + b + 1,) + np.broadcast_shapes(P.shape[1:], Q.shape[1:]))
    for i in range(a + 1):
        for j in range(b + 1):
            prod = P[i] * Q[j]
            if i == 0 or j == 0:
                out[i + j] += prod
            else:
                out[i + j] += prod / 2
                out[abs(i - j)] += prod / 2
    return out


# --------------------------------------------------------------- noise model
@dataclass
class NoiseModel:
    """Per-voxel Toeplitz noise of residuals (see :func:`fit_noise`).

    Attributes
    ----------
    gamma : ndarray (L + 1, V)
        Bias-corrected autocovariances.
    lam : ndarray (V,)
        James-Stein weights (1: the voxel's own autocorrelations, 0: the median).
    rho_bar : ndarray (L,)
        Median autocorrelation (the shrinkage target).
    M : ndarray (L + 1, L + 1)
        The bias matrix of :func:`residual_bias_matrix`.
    spec : tuple of ndarray
        DCT frequencies and kept shares (:func:`dct_keep`).
    taper : ndarray (L + 1,)
        Tukey weights.
    """

    gamma: np.ndarray
    lam: np.ndarray
    rho_bar: np.ndarray
    M: np.ndarray
    spec: tuple
    taper: np.ndarray

    @property
    def max_lag(self):
        return self.gamma.shape[0] - 1


def bias_corrected_autocovariance(E, M, max_lag, runs=None):
    """``M^-1 lag_sums(E)``: unbiased autocovariances of the noise behind residuals ``E``."""
    return np.linalg.inv(M) @ lag_sums(E, max_lag, runs)


def fit_noise(E, Q, runs=None, max_lag=None, shrink=True, rho_bar=None, M=None, spec=None):
    """Noise model of residuals ``E = (I - Q Q^T) y``.

    Parameters
    ----------
    E : ndarray (n_scans, n_voxels)
    Q : ndarray (n_scans, rank)
        Orthonormal basis of what was fitted.
    runs : array-like, optional
    max_lag : int, default :func:`default_max_lag`
    shrink : bool, default=True
        James-Stein shrinkage of the autocorrelations towards ``rho_bar``.
    rho_bar : ndarray (max_lag,), optional
        Shrinkage target (default: the median over the columns of ``E``);
        give it when ``E`` is a chunk of the voxels.
    M, spec : optional
        :func:`residual_bias_matrix` and :func:`dct_keep` of ``Q`` (computed
        when not given).

    Returns
    -------
    NoiseModel
    """
    E = np.asarray(E, dtype=np.float64)
    L = max_lag if max_lag is not None else default_max_lag(E.shape[0], runs)
    M = residual_bias_matrix(Q, L, runs) if M is None else M
    spec = dct_keep(Q, runs) if spec is None else spec
    gamma = bias_corrected_autocovariance(E, M, L, runs)
    return noise_model(gamma, M, spec, rho_bar, shrink)


def noise_model(gamma, M, spec, rho_bar=None, shrink=True):
    """:class:`NoiseModel` from bias-corrected autocovariances ``gamma`` (L + 1, V).

    See :func:`fit_noise` (which computes ``gamma`` from residuals).
    """
    L = gamma.shape[0] - 1
    ok, rho = _autocorrelations(gamma)
    if rho_bar is None:
        rho_bar = median_autocorrelation(gamma)
    lam = np.ones(gamma.shape[1])
    if shrink and L > 2:
        S = _sampling_cov_rho(rho_bar, M, spec, L)
        D = rho - rho_bar[:, None]
        d2 = np.einsum("lv,lv->v", D, np.linalg.solve(S, D))
        lam = np.where(ok, np.clip(1 - (L - 2) / np.maximum(d2, 1e-12), 0, 1), 1.0)
    return NoiseModel(gamma, lam, rho_bar, M, spec, tukey(L))
