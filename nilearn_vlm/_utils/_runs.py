"""Run-wise cleaning and scores that respect runs.

Everything here works run by run: a run's constant, drifts and confounds are
fitted on that run's scans only, so with folds made of whole runs nothing is
estimated across folds (nilearn's ``signal.clean(runs=...)`` does the same).

The score of a prediction ``x`` of BOLD ``y`` with run labels is

``score = mean over runs k of r_k``,   ``r_k = <x_k, y_k> / (|x_k| |y_k|)``

where ``x_k`` and ``y_k`` are run ``k``'s scans with that run's nuisance
(constant, linear trend, cosine drifts, confounds) projected out of both: the
mean over runs of the per-run Pearson r, each run weighted equally. A run in
which the BOLD is flat (:mod:`._guards`) has no ``r_k`` and is left out of the
mean; a voxel with no scored run is NaN. A prediction flat in a run has
``r_k = 0`` there (it predicts nothing). Scaling a run to unit variance
changes no ``r_k``.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from nilearn_vlm._utils._guards import column_scale, is_flat
from nilearn_vlm._utils._stats import as_columns

__all__ = ["RunScores", "clean_signals", "nuisance_design", "run_basis", "run_design", "run_scores",
           "run_slices"]


def run_slices(runs, n_scans):
    """Index arrays of the runs in order of first appearance (slices when contiguous).

    Parameters
    ----------
    runs : None or array-like of shape (n_scans,)
    n_scans : int

    Returns
    -------
    list of slice or ndarray

    Examples
    --------
    >>> run_slices([0, 0, 1, 1, 1], 5)
    [slice(0, 2, None), slice(2, 5, None)]
    """
    if runs is None:
        return [slice(0, n_scans)]
    runs = np.asarray(runs)
    if runs.ndim != 1 or runs.shape[0] != n_scans:
        raise ValueError(
            f"runs must hold one run label per scan, shape ({n_scans},); got shape {runs.shape}. "
            "Pass e.g. np.repeat(np.arange(n_runs), n_scans_per_run)."
        )
    _, first, inverse = np.unique(runs, return_index=True, return_inverse=True)
    out = []
    for k in np.argsort(first):
        idx = np.flatnonzero(inverse == k)
        contiguous = idx.size and idx[-1] - idx[0] + 1 == idx.size
        out.append(slice(int(idx[0]), int(idx[-1]) + 1) if contiguous else idx)
    return out


def run_design(n, detrend=False, high_pass=None, t_r=None, confounds=None, constant=True):
    """Nuisance regressors of one run of ``n`` scans.

    A constant, a linear trend (``detrend``), the discrete cosine basis of
    nilearn/SPM with periods longer than ``1 / high_pass`` seconds, then the
    run's confounds.

    Returns
    -------
    ndarray of shape (n, n_regressors) or None
    """
    if high_pass is not None and t_r is None:
        raise ValueError("high_pass needs the repetition time: pass t_r (seconds) as well.")
    block = [np.ones(n)] if constant else []
    if detrend and n > 1:
        block.append(np.linspace(-1, 1, n))
    if high_pass is not None:
        order = int(np.floor(2 * n * t_r * high_pass))
        k = np.arange(1, min(order, n - 1) + 1)
        if k.size:
            t = np.arange(n)
            block.extend(np.cos(np.pi * np.outer(2 * t + 1, k) / (2 * n)).T)
    if confounds is not None:
        block.extend(np.asarray(confounds, dtype=np.float64).reshape(n, -1).T)
    return np.column_stack(block) if block else None


def nuisance_design(n_scans, runs=None, confounds=None, detrend=False, high_pass=None, t_r=None):
    """Build the nuisance regressors removed from features and BOLD alike.

    Per run: a constant (only when any cleaning is asked), a linear trend
    when ``detrend``, the discrete cosine basis of nilearn/SPM with periods
    longer than ``1 / high_pass`` seconds, and the run's confounds (each
    confound gets one column per run, so its fit never spans runs). The design
    is block-diagonal over runs.

    Parameters
    ----------
    n_scans : int
        Number of scans.
    runs : array-like of int, shape (n_scans,), optional
        Run label per scan; each run gets its own nuisance terms.
    confounds : ndarray, shape (n_scans, n_confounds), optional
        Extra regressors (e.g. motion from nilearn's ``load_confounds``).
    detrend : bool, default=False
        Remove a linear trend per run.
    high_pass : float, optional
        Cutoff in Hz of the cosine high-pass filter; needs ``t_r``.
    t_r : float, optional
        Repetition time in seconds.

    Returns
    -------
    D : ndarray, shape (n_scans, n_regressors) or None
        None when nothing is to be removed.

    Examples
    --------
    >>> D = nuisance_design(10, runs=[0] * 5 + [1] * 5, detrend=True)
    >>> D.shape
    (10, 4)
    """
    if high_pass is not None and t_r is None:
        raise ValueError("high_pass needs the repetition time: pass t_r (seconds) as well.")
    if not detrend and high_pass is None and confounds is None:
        return None
    conf = None if confounds is None else np.asarray(confounds, dtype=np.float64).reshape(n_scans, -1)
    cols = []
    for idx in run_slices(runs, n_scans):
        t = np.arange(n_scans)[idx]
        D = run_design(t.size, detrend, high_pass, t_r, None if conf is None else conf[idx])
        full = np.zeros((n_scans, D.shape[1]))
        full[t] = D
        cols.append(full)
    return np.column_stack(cols)


def run_basis(n, detrend=False, high_pass=None, t_r=None, confounds=None):
    """Orthonormal basis (n, k) of one run's nuisance (:func:`run_design`, constant included)."""
    return _basis(run_design(n, detrend, high_pass, t_r, confounds))


def _basis(D):
    """Orthonormal basis of the columns of ``D`` (rank-revealing SVD)."""
    Q, s, _ = np.linalg.svd(D, full_matrices=False)
    return Q[:, s > s[0] * max(D.shape) * np.finfo(float).eps]


def clean_signals(X, Y, runs=None, confounds=None, detrend=False, high_pass=None, t_r=None,
                  standardize=False):
    """Project the same nuisance regressors out of features and BOLD, run by run.

    An exact least-squares projection ``A - Q Q^T A`` per run, with ``Q`` an
    orthonormal basis of that run's block of :func:`nuisance_design`, applied
    to ``X`` and ``Y`` identically. With no cleaning asked the inputs are
    returned unchanged.

    Parameters
    ----------
    X : ndarray, shape (n_scans, n_features) or None
    Y : ndarray, shape (n_scans, n_voxels) or None
    runs, confounds, detrend, high_pass, t_r
        See :func:`nuisance_design`.
    standardize : bool, default=False
        Then scale each run of each column to unit variance (after cleaning;
        a constant is removed first). Columns flat in a run (below the
        variance floor of :mod:`nilearn_vlm._utils._guards`) stay 0 there.

    Returns
    -------
    X, Y : ndarrays (or None), cleaned, in their input dtypes.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(20.0).reshape(10, 2)
    >>> Xc, _ = clean_signals(X, None, detrend=True)
    >>> bool(np.allclose(Xc, 0))
    True
    """
    ref = X if X is not None else Y
    n = ref.shape[0]
    if not (detrend or high_pass is not None or confounds is not None or standardize):
        return X, Y
    if high_pass is not None and t_r is None:
        raise ValueError("high_pass needs the repetition time: pass t_r (seconds) as well.")
    conf = None if confounds is None else np.asarray(confounds, dtype=np.float64).reshape(n, -1)
    out = [None if A is None else np.array(A, copy=True) for A in (X, Y)]
    for idx in run_slices(runs, n):
        m = np.arange(n)[idx].size
        D = run_design(m, detrend, high_pass, t_r, None if conf is None else conf[idx])
        Q = _basis(D)
        for A, src in zip(out, (X, Y)):
            if A is None:
                continue
            Qa = Q.astype(A.dtype, copy=False)
            block = A[idx]
            block -= Qa @ (Qa.T @ block)
            if standardize:
                ss = (block.astype(np.float64) ** 2).sum(0)
                flat = is_flat(ss, column_scale(src[idx]), m, src.dtype)
                sd = np.sqrt(np.where(flat, 1.0, ss / m))
                block /= sd.astype(A.dtype)
                block[:, flat] = 0
            A[idx] = block
    return tuple(out)


RunScores = namedtuple("RunScores", ["score", "per_run", "n_runs_scored", "unscored"])
RunScores.__doc__ = """Scores within runs (:func:`run_scores`).

Attributes
----------
score : ndarray (n_voxels,)
    Mean over the scored runs of the per-run statistic; NaN where no run is scored.
per_run : ndarray (n_runs, n_voxels)
    The statistic of each run (runs in order of first appearance); NaN where the BOLD is flat.
n_runs_scored : ndarray of int (n_voxels,)
unscored : ndarray of bool (n_voxels,)
    Voxels without a score (``score`` is NaN).
"""


def run_scores(x, y, runs=None, *, statistic="r", detrend=True, high_pass=None, t_r=None,
               confounds=None, chunk=2048):
    """Scores of predictions (or a regressor) against BOLD, within runs.

    Per run, the run's constant, linear trend (``detrend``), cosine drifts
    (``high_pass``) and confounds are projected out of ``x`` and ``y`` alike;
    the statistic is computed per run and averaged over runs with equal
    weights (module docstring). ``"r2"`` is ``1 - |y_k - x_k|^2 / |y_k|^2`` of
    the cleaned run.

    Parameters
    ----------
    x : ndarray of shape (n_scans,), (n_scans, 1) or (n_scans, n_voxels)
    y : ndarray of shape (n_scans, n_voxels)
    runs : array-like (n_scans,), optional
        Run labels (None: one run).
    statistic : {"r", "r2"}, default="r"
    detrend, high_pass, t_r, confounds
        See :func:`nuisance_design`.
    chunk : int, default=2048
        Voxels cleaned at once (bounds the float64 temporaries).

    Returns
    -------
    RunScores

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> runs = np.repeat([0, 1], 50)
    >>> x = rng.standard_normal((100, 1))
    >>> y = x + 0.5 * rng.standard_normal((100, 1)) + 10.0 * runs[:, None]  # run baselines
    >>> bool(run_scores(x, y, runs).score[0] > 0.8)
    True
    """
    if statistic not in ("r", "r2"):
        raise ValueError(f"statistic must be 'r' or 'r2'; got {statistic!r}")
    x, y = as_columns(x, y)
    n, n_vox = y.shape
    shared = x.shape[1] == 1
    conf = None if confounds is None else np.asarray(confounds, dtype=np.float64).reshape(n, -1)
    slices = run_slices(runs, n)
    per_run = np.full((len(slices), n_vox), np.nan)
    for k, idx in enumerate(slices):
        m = np.arange(n)[idx].size
        Q = _basis(run_design(m, detrend, high_pass, t_r, None if conf is None else conf[idx]))
        xs = None
        if shared:
            xs = np.asarray(x[idx], dtype=np.float64)
            x_scale = column_scale(xs)
            xs = xs - Q @ (Q.T @ xs)
            x_flat = is_flat((xs**2).sum(0), x_scale, m, x.dtype)
        for s0 in range(0, n_vox, chunk):
            sl = slice(s0, min(s0 + chunk, n_vox))
            yr = np.asarray(y[idx, sl], dtype=np.float64)
            y_scale = column_scale(yr)
            yc = yr - Q @ (Q.T @ yr)
            ss_y = (yc**2).sum(0)
            if shared:
                xc, xf = xs, x_flat
            else:
                xr = np.asarray(x[idx, sl], dtype=np.float64)
                xc = xr - Q @ (Q.T @ xr)
                xf = is_flat((xc**2).sum(0), column_scale(xr), m, x.dtype)
            ss_x = (xc**2).sum(0)
            c = (xc * yc).sum(0)
            y_ok = ~is_flat(ss_y, y_scale, m, y.dtype)
            x_ok = ~xf
            with np.errstate(invalid="ignore", divide="ignore"):
                if statistic == "r":
                    val = np.where(x_ok, c / np.sqrt(ss_x * ss_y), 0.0)
                    val = np.clip(val, -1.0, 1.0)
                else:
                    val = (2 * c - np.where(x_ok, ss_x, 0.0)) / ss_y
            per_run[k, sl] = np.where(y_ok, val, np.nan)
    n_scored = np.isfinite(per_run).sum(0)
    with np.errstate(invalid="ignore"):
        score = np.where(n_scored > 0, np.nansum(per_run, 0) / np.maximum(n_scored, 1), np.nan)
    return RunScores(score, per_run, n_scored, n_scored == 0)
