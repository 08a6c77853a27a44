"""Mass-univariate prewhitened GLM: one model per regressor, all voxels at once.

Each regressor of interest gets its own model ``y = b x + nuisance + e``
(drifts, constants and confounds are shared), fitted by generalized least
squares at each voxel's AR(1) coefficient. This is the per-atom alternative to
one joint model of all atoms: correlated atoms then do not take each other's
variance (arXiv 2510.16870's exact choice is unknown; see
:class:`nilearn_vlm.VoxelGLM` ``mode``).
"""

from __future__ import annotations

import numpy as np

from nilearn_vlm._glm_solver import ar1_yule_walker, ar_bins, bin_ar, run_bounds, whiten
from nilearn_vlm.parallel import map_tasks


def univariate_prewhitened_ols(X, nuisance, Y, rho, runs=None):
    """Per-regressor GLS at one AR(1) coefficient, vectorised over regressors and voxels.

    For regressor ``j`` and voxel ``v`` the model is
    ``Y[:, v] = b[j, v] X[:, j] + nuisance @ c + e`` with AR(1) noise of
    coefficient ``rho``; it equals :func:`nilearn_vlm.glm.prewhitened_ols` on
    the design ``[X[:, j], nuisance]`` (the tests check it), computed for all
    ``j`` by one matrix product: after whitening, the nuisance is projected
    out of ``X`` and ``Y`` (Frisch-Waugh-Lovell) and each column of ``X`` is
    a simple regression.

    Parameters
    ----------
    X : ndarray (n_scans, n_regressors)
    nuisance : ndarray (n_scans, n_nuisance)
    Y : ndarray (n_scans, n_voxels)
    rho : float
    runs : array-like (n_scans,), optional
        Whitening restarts at each run.

    Returns
    -------
    beta, se : ndarray (n_regressors, n_voxels)
        A regressor that is zero after removing the nuisance gets beta 0 and
        se inf.
    dof : int
        ``n_scans - n_nuisance_rank - 1``.
    """
    X = np.asarray(X, dtype=np.float64)
    N = np.asarray(nuisance, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    starts, _ = run_bounds(runs, X.shape[0])
    if rho != 0:
        X, N, Y = (whiten(a, rho, starts) for a in (X, N, Y))
    q, r = np.linalg.qr(N)
    rank = int((np.abs(np.diag(r)) > 1e-10 * max(1.0, np.abs(r).max())).sum())
    q = q[:, :rank]
    Xr = X - q @ (q.T @ X)
    Yr = Y - q @ (q.T @ Y)
    xx = np.einsum("ij,ij->j", Xr, Xr)
    yy = np.einsum("ij,ij->j", Yr, Yr)
    G = Xr.T @ Yr
    dof = X.shape[0] - rank - 1
    ok = xx > 1e-12 * max(1.0, float(xx.max(initial=0.0)))
    safe = np.where(ok, xx, 1.0)
    beta = np.where(ok[:, None], G / safe[:, None], 0.0)
    rss = np.maximum(yy[None, :] - beta * G, 0.0)
    se = np.where(ok[:, None], np.sqrt(rss / dof / safe[:, None]), np.inf)
    return beta, se, dof


def univariate_fit(design, k, Y, runs, noise_model, bins, ar_coef, n_jobs=1, verbose=0):
    """One model per regressor (see ``VoxelGLM(mode="univariate")``).

    Returns beta (with the intercept rows of the nuisance left at 0 except the
    first constant, fitted on the nuisance alone), se, ar1 per voxel and dof.
    The AR(1) bins are independent tasks, as in
    :func:`nilearn_vlm._glm_solver.fit_joint`.
    """
    n_voxels = Y.shape[1]
    if ar_coef is not None:
        rho = np.full(n_voxels, float(ar_coef))
    elif noise_model == "ols":
        rho = np.zeros(n_voxels)
    else:
        coef = np.linalg.lstsq(design, Y, rcond=None)[0]
        rho = bin_ar(ar1_yule_walker(Y - design @ coef, runs), bins)
    beta = np.zeros((design.shape[1], n_voxels))
    se = np.full_like(beta, np.inf)
    dof = None
    values, groups = ar_bins(rho)
    fits = map_tasks(_one_bin, ((design, k, Y[:, idx], v, runs) for v, idx in zip(values, groups)),
                     n_jobs=n_jobs, verbose=verbose and len(values) > 1, desc="AR(1) bins",
                     total=len(values))
    for idx, (b, s, dof, b_nuisance) in zip(groups, fits):
        beta[:k, idx], se[:k, idx] = b, s
        beta[k:, idx] = b_nuisance
    return beta, se, rho, dof


def _one_bin(design, k, Y, rho, runs):
    nuisance = design[:, k:]
    b, s, dof = univariate_prewhitened_ols(design[:, :k], nuisance, Y, rho, runs)
    return b, s, dof, np.linalg.lstsq(nuisance, Y, rcond=None)[0]
