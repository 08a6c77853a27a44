"""Calibrated voxelwise GLM: prewhitened estimates, Toeplitz sandwich variance, Satterthwaite dof.

The default inference of :class:`~nilearn_vlm.VoxelGLM` (``noise_model="calibrated"``)
and of :func:`~nilearn_vlm.maps.unit_voxel_maps`. Chosen by measurement on
real resting-state BOLD (random designs, so every rejection is false; see the
calibration section of the statistics guide):

1. **Whitening for efficiency.** The nuisance (per-run constants, drifts,
   confounds) and the regressors are prewhitened by one global AR(2) filter
   (:func:`nilearn_vlm._glm_noise.global_ar_filter`). The filter only buys
   power; validity comes from step 3, so it may be wrong for any voxel.
2. **Estimates.** Least squares on the whitened data, one model per regressor
   (``"univariate"``) or one joint model (``"joint"``): each estimate is a
   linear contrast ``beta_j = a_j . y_w`` with ``a_j`` orthogonal to the
   whitened nuisance.
3. **Variance.** ``var(beta_j) = a_j' V a_j`` with ``V`` each voxel's Toeplitz
   noise covariance, estimated from the residuals of the nuisance alone (the
   regressors are not fitted: under the null they are noise) with the
   residual-induced bias removed exactly, a Tukey taper and James-Stein
   shrinkage of the autocorrelations towards their median
   (:func:`nilearn_vlm._glm_noise.fit_noise`); the fitted regressor's own
   share of that estimate, ``beta^2 z' H z``, is removed (Wald form). The
   variance is at least ``floor`` times the white-noise variance.
4. **Reference distribution.** Student t with the Satterthwaite degrees of
   freedom of the variance estimate (a quadratic form of the data), per
   regressor and voxel, in the DCT-diagonal approximation.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from nilearn_vlm._glm_noise import (
    ar_whiten,
    cos_product,
    dct_keep,
    default_max_lag,
    global_ar_filter,
    lag_sums,
    median_autocorrelation,
    noise_model,
    orth_basis,
    residual_bias_matrix,
)
from nilearn_vlm.parallel import map_tasks

#: Order of the global whitening filter.
AR_ORDER = 2
#: The variance is at least this share of the white-noise variance.
VARIANCE_FLOOR = 0.05


def contrast_weights(A, noise, runs=None):
    """Weights of the variance estimate of contrasts ``A`` on the noise model's lag sums.

    ``a' V a = sum_k c_k gamma_k`` with ``c`` the contrast's lag sums
    (doubled beyond lag 0); with the taper and the shrinkage,
    ``var = ua' gamma + lam ub' gamma``; ``ha, hb`` are the same weights on the
    raw residual lag sums (``M^-T ua``, ``M^-T ub``).

    Returns
    -------
    dict with ``c`` (L + 1, J) lag sums of ``A`` (doubled beyond lag 0),
    ``ua``, ``ub``, ``ha``, ``hb`` (L + 1, J).
    """
    L = noise.max_lag
    c = lag_sums(A, L, runs)
    c[1:] *= 2
    u = noise.taper[:, None] * c
    rb = noise.rho_bar @ u[1:]
    ua = np.vstack([u[:1] + rb, np.zeros((L, u.shape[1]))])
    ub = np.vstack([-rb[None], u[1:]])
    MiT = np.linalg.inv(noise.M).T
    return {"c": c, "ua": ua, "ub": ub, "ha": MiT @ ua, "hb": MiT @ ub}


def spectral_kernels(spec, L):
    """DCT-diagonal sums: ``K1 = C diag(keep) C^T`` (L + 1)^2, ``K2`` (2L + 1)^2 with ``keep^2``."""
    om, keep = spec
    C1 = np.cos(np.outer(np.arange(L + 1), om))
    C2 = np.cos(np.outer(np.arange(2 * L + 1), om))
    return (C1 * keep) @ C1.T, (C2 * keep**2) @ C2.T


def shrunk_spectrum(noise):
    """Cosine coefficients (L + 1, V) of each voxel's tapered, shrunk noise spectrum."""
    g = noise.gamma
    g0 = np.where(g[0] > 0, g[0], 1.0)
    rb = noise.rho_bar[:, None]
    gs = np.vstack([g[:1], g0 * (rb + noise.lam * (g[1:] / g0 - rb))])
    f = noise.taper[:, None] * gs
    f[1:] *= 2
    return f


def contrast_variance(A, beta, fit, noise, runs=None, floor=VARIANCE_FLOOR):
    """Variance and Satterthwaite dof of contrasts ``beta = A^T y`` under ``noise``.

    Parameters
    ----------
    A : ndarray (n_scans, J)
        Contrast vectors (orthogonal to what ``noise`` was fitted on).
    beta : ndarray (J, V)
        Estimates.
    fit : ndarray (n_scans, J) or None
        Fitted direction of each estimate (``A_j / |A_j|^2``); its share of
        the variance estimate is removed (Wald form). None: no correction
        (residuals that already exclude the fit).
    noise : NoiseModel
    runs : array-like, optional
    floor : float
        The variance is at least ``floor |a|^2 gamma_0``.

    Returns
    -------
    var, dof : ndarray (J, V)
    """
    L = noise.max_lag
    gamma, lam = noise.gamma, noise.lam
    w = contrast_weights(A, noise, runs)
    ua, ub, ha, hb = w["ua"], w["ub"], w["ha"], w["hb"]
    var = ua.T @ gamma + (ub.T @ gamma) * lam
    if fit is not None:
        sx = lag_sums(fit, L, runs)
        var -= beta**2 * (np.einsum("lj,lj->j", ha, sx)[:, None]
                          + np.einsum("lj,lj->j", hb, sx)[:, None] * lam)
    var = np.maximum(var, floor * np.outer(w["c"][0], gamma[0]))
    # Satterthwaite: nu = E^2 / V2 with E = sum_m keep H f, V2 = sum_m keep^2 (H f)^2,
    # H = Ha + lam Hb and f the shrunk tapered spectrum (cosine-series products)
    K1, K2 = spectral_kernels(noise.spec, L)
    f = shrunk_spectrum(noise)
    E = (ha.T @ K1) @ f + ((hb.T @ K1) @ f) * lam
    f2 = K2 @ cos_product(f, f)
    V2 = (cos_product(ha, ha).T @ f2 + 2 * (cos_product(ha, hb).T @ f2) * lam
          + (cos_product(hb, hb).T @ f2) * lam**2)
    dof = np.maximum(E**2 / np.maximum(V2, 1e-300), 1.0)
    return var, dof


def t_pvalues(t, dof):
    """Two-sided Student-t p-values with per-entry degrees of freedom."""
    return 2 * special.stdtr(dof, -np.abs(t))


def _contrasts(Xr, mode):
    """Contrast vectors ``A`` and fitted directions of whitened, nuisance-free regressors ``Xr``."""
    if mode == "univariate":
        norms = np.einsum("ij,ij->j", Xr, Xr)
        if np.any(norms <= 1e-12 * max(norms.max(initial=0), 1.0)):
            raise ValueError("a regressor is collinear with the nuisance (drifts, constants, "
                             "confounds); drop it or lower high_pass.")
        return Xr / norms, Xr
    G = Xr.T @ Xr
    if np.linalg.matrix_rank(G) < Xr.shape[1]:
        raise ValueError("the regressors are collinear (with each other or the nuisance); drop "
                         "collinear regressors or use mode='univariate'.")
    A = Xr @ np.linalg.inv(G)
    return A, A / np.einsum("ij,ij->j", A, A)


def _chunk_pass(Y, phi, runs, A, Qw, L, Minv):
    """Estimates and bias-corrected autocovariances of one voxel chunk (the one pass over the data)."""
    Ew = ar_whiten(Y, phi, runs)
    beta = A.T @ Ew  # A is orthogonal to the whitened nuisance
    Ew -= Qw @ (Qw.T @ Ew)
    return beta, Minv @ lag_sums(Ew, L, runs)


def _chunk_stats(beta, gamma, A, fit, runs, M, spec, rho_bar):
    """t and dof of one voxel chunk from its estimates and autocovariances."""
    var, dof = contrast_variance(A, beta, fit, noise_model(gamma, M, spec, rho_bar), runs)
    return _safe_t(beta, var), dof


def _safe_t(beta, var):
    """``beta / sqrt(var)``, 0 where the variance is 0 (a constant voxel)."""
    ok = var > 0
    return np.where(ok, beta / np.sqrt(np.where(ok, var, 1.0)), 0.0)


def calibrated_glm(X, Y, nuisance, mode="univariate", runs=None, order=AR_ORDER, max_lag=None,
                   chunk=4096, n_jobs=1, verbose=0):
    """t-maps and p-values of regressors of interest that hold on autocorrelated noise.

    Parameters
    ----------
    X : ndarray (n_scans, n_regressors)
        Regressors of interest.
    Y : ndarray (n_scans, n_voxels)
    nuisance : ndarray (n_scans, n_nuisance)
        Constants, drifts, confounds (full column rank not required).
    mode : {"univariate", "joint"}
        One model per regressor (with the nuisance) or one joint model.
    runs : array-like (n_scans,), optional
        Contiguous run labels; lags and the filter stay within runs.
    order : int, default=2
        Order of the global whitening filter (0: no whitening).
    max_lag : int, default ``ceil(sqrt(n_scans))`` (at most a quarter of the shortest run)
    chunk : int, default=4096
        Voxels per block.
    n_jobs, verbose :
        Tasks over voxel blocks (:func:`nilearn_vlm.parallel.map_tasks`);
        results do not depend on them.

    Returns
    -------
    dict
        ``beta``, ``t``, ``p`` (two-sided), ``dof`` (n_regressors, n_voxels);
        ``phi`` (the whitening filter) and ``max_lag``.
    """
    X = np.asarray(X, dtype=np.float64)
    n, J = X.shape
    V = Y.shape[1]
    L = max_lag if max_lag is not None else default_max_lag(n, runs)
    phi = global_ar_filter(Y, nuisance, order, runs, L)
    Qw = orth_basis(ar_whiten(nuisance, phi, runs))
    Xw = ar_whiten(X, phi, runs)
    A, fit = _contrasts(Xw - Qw @ (Qw.T @ Xw), mode)
    M = residual_bias_matrix(Qw, L, runs)
    spec = dct_keep(Qw, runs)
    blocks = [slice(s, min(s + chunk, V)) for s in range(0, V, chunk)]
    Minv = np.linalg.inv(M)
    first = map_tasks(
        _chunk_pass, ((np.asarray(Y[:, b], dtype=np.float64), phi, runs, A, Qw, L, Minv) for b in blocks),
        n_jobs=n_jobs, verbose=verbose and len(blocks) > 1, desc="voxel blocks", total=len(blocks))
    beta, t, dof = (np.empty((J, V)) for _ in range(3))
    gamma = np.empty((L + 1, V))
    for b, (bb, gg) in zip(blocks, first):
        beta[:, b], gamma[:, b] = bb, gg
    # the shrinkage target: the median autocorrelation over all voxels
    rho_bar = median_autocorrelation(gamma)
    for b in blocks:
        t[:, b], dof[:, b] = _chunk_stats(beta[:, b], gamma[:, b], A, fit, runs, M, spec, rho_bar)
    return {"beta": beta, "t": t, "p": t_pvalues(t, dof), "dof": dof, "phi": phi, "max_lag": L}


def t_to_z(t, dof):
    """Normal deviate with the tail probability of Student ``t`` on ``dof`` (Hill 1970).

    ``|log p|`` error below 0.006 at dof 5 and below 1e-3 at dof >= 20 (p down
    to 1e-300); several times faster than ``scipy.special.stdtr`` followed by
    ``ndtri``.
    """
    a = dof - 0.5
    b = 48 * a**2
    z = np.sqrt(a * np.log1p(t**2 / dof))
    z2 = z * z
    return np.sign(t) * (z + z * (z2 + 3) / b
                         - z * (((4 * z2 + 33) * z2 + 240) * z2 + 855) / (10 * b * (b + 0.8 * z2 * z2 + 100)))
