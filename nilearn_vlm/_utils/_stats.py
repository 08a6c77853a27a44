"""z-scores, Pearson correlations and signal power of repeated responses."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats


def zscore(X, axis=0, *, ddof=0):
    """z-score along an axis; constant slices become 0.

    :func:`scipy.stats.zscore` (same arithmetic, same dtype: float32 stays
    float32, integers become float64), except that a constant slice, which
    scipy sets to NaN, becomes 0. Slices holding NaN stay NaN.

    Parameters
    ----------
    X : array-like
    axis : int, default=0
    ddof : int, default=0
        Delta degrees of freedom of the standard deviation (0: population).

    Returns
    -------
    ndarray of the shape of ``X``

    Examples
    --------
    >>> zscore([[1.0, 5.0], [3.0, 5.0]]).tolist()
    [[-1.0, 0.0], [1.0, 0.0]]
    """
    X = np.asarray(X)
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        # scipy warns of precision loss on the constant slices it sets to NaN
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        Z = stats.zscore(X, axis=axis, ddof=ddof)
    nan = np.isnan(Z)
    if nan.any():
        constant = nan.all(axis=axis, keepdims=True) & np.isfinite(X).all(axis=axis, keepdims=True)
        Z[np.broadcast_to(constant, Z.shape)] = 0
    return Z


def centred_products(x, y, chunk=512):
    """Cross-products and norms of centred columns, in float64, by column chunks.

    Parameters
    ----------
    x : ndarray of shape (n_samples, 1) or (n_samples, n_columns)
        One series shared by all columns of ``y``, or one per column.
    y : ndarray of shape (n_samples, n_columns)
    chunk : int, default=512
        Columns of ``y`` centred at once (bounds the float64 temporaries).

    Returns
    -------
    c : ndarray of shape (n_columns,)
        ``sum_t (x_t - mean(x)) (y_t - mean(y))`` per column.
    nx : ndarray of shape (1,) or (n_columns,)
        l2 norms of the centred ``x``.
    ny : ndarray of shape (n_columns,)
        l2 norms of the centred ``y``.
    xm, ym : ndarray
        Column means of ``x`` and ``y``.
    """
    n_cols = y.shape[1]
    xm, ym = x.mean(0, dtype=np.float64), y.mean(0, dtype=np.float64)
    nx, ny, c = np.empty(x.shape[1]), np.empty(n_cols), np.empty(n_cols)
    x64 = x.astype(np.float64) - xm if x.shape[1] == 1 else None
    for s0 in range(0, n_cols, chunk):
        sl = slice(s0, min(s0 + chunk, n_cols))
        yc = y[:, sl].astype(np.float64) - ym[sl]
        xc = x64 if x64 is not None else x[:, sl].astype(np.float64) - xm[sl]
        ny[sl] = np.sqrt((yc**2).sum(0))
        if x64 is None:
            nx[sl] = np.sqrt((xc**2).sum(0))
        c[sl] = (xc * yc).sum(0)
    if x64 is not None:
        nx[:] = np.sqrt((x64**2).sum(0))
    return c, nx, ny, xm, ym


def as_columns(x, y):
    """``x`` and ``y`` as 2-D (time on axis 0), checked for matching shapes."""
    y = np.asarray(y)
    if y.ndim == 1:
        y = y[:, None]
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    if y.ndim != 2 or x.ndim != 2:
        raise ValueError(
            f"expected y of shape (n_samples, n_voxels) and x of shape (n_samples,), "
            f"(n_samples, 1) or (n_samples, n_voxels); got x {x.shape}, y {y.shape}"
        )
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x has {x.shape[0]} time points and y has {y.shape[0]}; both must be sampled on "
            "the same scans (time on axis 0)"
        )
    if x.shape[1] not in (1, y.shape[1]):
        raise ValueError(
            f"x has {x.shape[1]} columns and y {y.shape[1]} voxels: pass one regressor "
            "(shared by all voxels) or one prediction per voxel (same shape as y)"
        )
    return x, y


def pearson_r(x, y):
    """Pearson correlation per column, vectorised.

    Parameters
    ----------
    x : array-like of shape (n_samples,), (n_samples, 1) or (n_samples, n_voxels)
        One series shared by all columns of ``y``, or one per column.
    y : array-like of shape (n_samples, n_voxels)

    Returns
    -------
    ndarray of shape (n_voxels,)
        Correlation per column, in float64 (computed by chunks of columns),
        within [-1, 1]; 0 where a series is constant or not finite.

    Examples
    --------
    >>> pearson_r([1.0, 2.0, 3.0], [[2.0, 1.0], [4.0, 1.0], [6.0, 1.0]]).round(12).tolist()
    [1.0, 0.0]
    """
    x, y = as_columns(x, y)
    c, nx, ny, _, _ = centred_products(x, y)
    den = nx * ny
    with np.errstate(invalid="ignore"):
        r = np.divide(c, den, out=np.zeros(np.broadcast(c, den).shape), where=den > 0)
    return np.clip(r, -1.0, 1.0)


def check_repeats(repeats, allow_nan=False):
    """Repeated responses as a float64 array of shape (n_repeats, n_samples, n_voxels)."""
    y = np.asarray(repeats, dtype=float)
    if y.ndim == 2:
        y = y[:, :, None]
    if y.ndim != 3 or y.shape[0] < 2:
        raise ValueError(
            "repeats must have shape (n_repeats >= 2, n_samples, n_voxels): the responses to the "
            f"same stimulus sequence, at least 2 repeats; got shape {y.shape}"
        )
    if not allow_nan and not np.all(np.isfinite(y)):
        raise ValueError("repeats contain NaN or infinite values")
    return y


def signal_power(repeats, allow_nan=False):
    """Signal power and noise power per voxel from repeated runs.

    ``SP = (Var(sum_r y_r) - sum_r Var(y_r)) / (N (N - 1))`` for ``N``
    repeats (Sahani & Linden 2003), variances over time.

    Parameters
    ----------
    repeats : array-like of shape (n_repeats, n_samples, n_voxels)
        Responses to the same stimulus sequence (aligned scans).
    allow_nan : bool, default=False
        Give NaN for voxels holding NaN instead of raising an error.

    Returns
    -------
    sp : ndarray of shape (n_voxels,)
        Signal power (can be negative for voxels without signal).
    np_ : ndarray of shape (n_voxels,)
        Noise power, ``mean_r Var(y_r) - SP``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s = rng.standard_normal((5000, 1))
    >>> sp, noise = signal_power([s + rng.standard_normal(s.shape) for _ in range(4)])
    >>> bool(abs(sp[0] - 1) < 0.1), bool(abs(noise[0] - 1) < 0.1)
    (True, True)
    """
    y = check_repeats(repeats, allow_nan=allow_nan)
    n = y.shape[0]
    var_sum = y.sum(0).var(0)
    sum_var = y.var(1).sum(0)
    sp = (var_sum - sum_var) / (n * (n - 1))
    return sp, sum_var / n - sp
