"""Prewhitened least squares of the voxelwise GLM (the math of :mod:`nilearn_vlm.glm`).

Shared by the joint model (:func:`fit_joint`, ``VoxelGLM(mode="joint")``) and
the one-model-per-regressor fit of :mod:`nilearn_vlm._glm_univariate`:
run boundaries, AR(1) whitening restarted at each run, the Yule-Walker lag-1
estimate, nilearn's AR(1) binning and generalized least squares at one
coefficient, and the height control of the t-maps.
"""

import numpy as np
from scipy import stats

from nilearn_vlm.parallel import map_tasks

__all__ = ["ar1_yule_walker", "drift_terms", "prewhitened_ols"]


def run_bounds(runs, n_scans):
    """Start indices of each run (runs are contiguous blocks)."""
    if runs is None:
        return np.array([0]), np.array([n_scans])
    runs = np.asarray(runs)
    if runs.shape != (n_scans,):
        raise ValueError(
            f"runs has shape {runs.shape}; it needs one label per scan "
            f"({n_scans},)."
        )
    change = np.flatnonzero(runs[1:] != runs[:-1]) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [n_scans]])
    labels = runs[starts]
    if len(np.unique(labels)) != len(labels):
        raise ValueError(
            "each run's scans must be contiguous in runs; sort the scans by "
            "run (runs are concatenated in time)."
        )
    return starts, stops


def drift_terms(n_scans, runs=None, t_r=None, drift_model="cosine", high_pass=0.01, drift_order=1):
    """Per-run constants and drifts of nilearn's design matrices, as one DataFrame.

    Each run gets the columns of
    :func:`~nilearn.glm.first_level.make_first_level_design_matrix` (no
    events), zero outside the run, suffixed ``_run<k>`` when there are
    several runs.

    Parameters
    ----------
    n_scans : int
    runs : array-like (n_scans,), optional
        Contiguous run labels.
    t_r : float, optional
        Repetition time (1 s when None: only valid without drifts).
    drift_model : {"cosine", "polynomial", None}
    high_pass : float
        Cut-off of the cosine drifts (Hz).
    drift_order : int
        Order of the polynomial drifts.

    Returns
    -------
    pandas.DataFrame (n_scans, n_columns)
    """
    import pandas as pd
    from nilearn.glm.first_level import make_first_level_design_matrix

    starts, stops = run_bounds(runs, n_scans)
    t_r = 1.0 if t_r is None else float(t_r)
    blocks = []
    for k, (s, e) in enumerate(zip(starts, stops)):
        dm = make_first_level_design_matrix(np.arange(e - s) * t_r, events=None,
                                            drift_model=drift_model, high_pass=high_pass,
                                            drift_order=drift_order)
        full = np.zeros((n_scans, dm.shape[1]))
        full[s:e] = dm.to_numpy()
        suffix = f"_run{k}" if len(starts) > 1 else ""
        blocks.append(pd.DataFrame(full, columns=[f"{c}{suffix}" for c in dm.columns]))
    return pd.concat(blocks, axis=1)


def whiten(A, rho, starts):
    """AR(1) whitening along axis 0; first scan of every run is kept."""
    W = A.copy()
    rho = np.asarray(rho)
    for s, e in zip(starts, np.append(starts[1:], len(A))):
        W[s + 1 : e] -= rho * A[s : e - 1]
    return W


def ar1_yule_walker(residuals, runs=None):
    """Lag-1 Yule-Walker coefficient of each column of ``residuals``.

    The estimate of :func:`nilearn.glm.first_level.run_glm` for one run:
    ``r1 / r0`` with ``r0 = sum(e_t^2) / n`` and
    ``r1 = sum(e_t e_{t+1}) / (n - 1)``, the residuals centred per column.
    With several runs the lag products stay within runs (``n - n_runs``).

    Parameters
    ----------
    residuals : ndarray of shape (n_scans, n_voxels)
        Residuals of an ordinary least-squares fit.
    runs : array-like of shape (n_scans,), default=None
        Run label of each scan (contiguous runs).

    Returns
    -------
    ndarray of shape (n_voxels,)

    Examples
    --------
    >>> import numpy as np
    >>> e = np.random.default_rng(0).standard_normal((2000, 3))
    >>> bool(np.all(np.abs(ar1_yule_walker(e)) < 0.1))
    True
    """
    e = np.asarray(residuals, dtype=np.float64)
    e = e - e.mean(axis=0)
    n = e.shape[0]
    starts, stops = run_bounds(runs, n)
    r0 = np.einsum("ij,ij->j", e, e) / n
    r1 = np.zeros(e.shape[1])
    for s, t in zip(starts, stops):
        r1 += np.einsum("ij,ij->j", e[s : t - 1], e[s + 1 : t])
    r1 /= n - len(starts)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(r0 > 0, r1 / r0, 0.0)
    return rho


def prewhitened_ols(design, Y, rho, runs=None):
    """Generalized least squares at one AR(1) coefficient for many voxels.

    Parameters
    ----------
    design : ndarray of shape (n_scans, n_columns)
    Y : ndarray of shape (n_scans, n_voxels)
    rho : float
        AR(1) coefficient shared by the voxels of ``Y``.
    runs : array-like of shape (n_scans,), default=None
        Run labels; whitening restarts at each run.

    Returns
    -------
    beta : ndarray of shape (n_columns, n_voxels)
    se : ndarray of shape (n_columns, n_voxels)
        Standard errors: ``sqrt(dispersion * diag((Xw^T Xw)^-1))``
        with ``dispersion = |Yw - Xw beta|^2 / (n_scans - n_columns)``.
    dispersion : ndarray of shape (n_voxels,)

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.c_[rng.standard_normal(100), np.ones(100)]
    >>> beta, se, _ = prewhitened_ols(X, X @ [[2.0], [1.0]], 0.3)
    >>> np.round(beta.ravel(), 6).tolist()
    [2.0, 1.0]
    """
    X = np.asarray(design, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    starts, _ = run_bounds(runs, X.shape[0])
    Xw = whiten(X, rho, starts) if rho != 0 else X
    Yw = whiten(Y, rho, starts) if rho != 0 else Y
    # normal equations on unit-norm columns (small p x p inverse; a full SVD
    # of the n x p design is much slower on a busy machine)
    scale = np.linalg.norm(Xw, axis=0)
    scale[scale == 0] = 1.0
    Xn = Xw / scale
    cov = np.linalg.inv(Xn.T @ Xn)
    beta = (cov @ (Xn.T @ Yw)) / scale[:, None]
    resid = Yw - Xw @ beta
    dispersion = np.einsum("ij,ij->j", resid, resid) / (X.shape[0] - X.shape[1])
    var = np.diag(cov) / scale**2
    se = np.sqrt(np.maximum(np.outer(var, dispersion), 1e-300))
    return beta, se, dispersion


def bin_ar(rho, bins):
    """nilearn's AR(1) rounding: truncation towards zero to 1/bins steps."""
    if bins is None:
        return rho
    return np.trunc(rho * bins) / bins


def fit_joint(design, Y, runs, noise_model, bins, ar_coef, n_jobs=1, verbose=0):
    """Fit one GLM of all design columns per voxel; returns beta, se, ar1 per voxel.

    Voxels that share an AR(1) coefficient (after binning) share one whitened
    design; the bins are independent tasks (:func:`nilearn_vlm.parallel.map_tasks`:
    threads, or Dask tasks inside ``use_dask``), whose results do not depend
    on ``n_jobs``.
    """
    n_voxels = Y.shape[1]
    if noise_model == "ols" and ar_coef is None:
        beta, se, _ = prewhitened_ols(design, Y, 0.0, runs)
        return beta, se, np.zeros(n_voxels)
    if ar_coef is not None:
        rho = np.full(n_voxels, float(ar_coef))
    else:
        beta0 = prewhitened_ols(design, Y, 0.0, runs)[0]
        rho = bin_ar(ar1_yule_walker(Y - design @ beta0, runs), bins)
    beta = np.empty((design.shape[1], n_voxels))
    se = np.empty_like(beta)
    values, groups = ar_bins(rho)
    fits = map_tasks(prewhitened_ols, ((design, Y[:, idx], v, runs) for v, idx in zip(values, groups)),
                     n_jobs=n_jobs, verbose=verbose and len(values) > 1, desc="AR(1) bins",
                     total=len(values))
    for idx, (b, s, _) in zip(groups, fits):
        beta[:, idx] = b
        se[:, idx] = s
    return beta, se, rho


def ar_bins(rho):
    """Distinct AR(1) coefficients and the voxels of each."""
    values, inverse = np.unique(rho, return_inverse=True)
    return values, [np.flatnonzero(inverse == g) for g in range(len(values))]


def height_threshold(p, alpha, height_control):
    """Boolean mask of significant entries of p (one map)."""
    if height_control is None:
        return np.ones_like(p, dtype=bool)
    if height_control == "fpr":
        return p <= alpha
    if height_control == "bonferroni":
        return p <= alpha / p.size
    q = stats.false_discovery_control(p, method="bh")
    return q <= alpha
