"""Bootstrap of column sums over many rows (voxels), as matrix products."""

from __future__ import annotations

import numpy as np


def bootstrap_sums(data, n_bootstrap=2000, random_state=None, max_memory=2**27):
    """Column sums of ``data`` under resampling of its rows with replacement.

    A bootstrap replicate draws ``n_rows`` rows with replacement; its column
    sums are ``w @ data`` with ``w`` the number of times each row was drawn.
    Replicates are made in chunks whose draws fit in ``max_memory`` bytes, and
    one matrix product per chunk gives every column's sums, so thousands of
    replicates over 10^5 voxels and hundreds of columns (networks x layers)
    take seconds. Any statistic that is a function of column sums (means,
    counts, Dice, correlations of count curves) follows from the result.

    Parameters
    ----------
    data : array-like, shape (n_rows, n_columns)
    n_bootstrap : int, default=2000
    random_state : int, Generator or None
    max_memory : int
        Bytes for the draws of one chunk.

    Returns
    -------
    ndarray, shape (n_bootstrap, n_columns)

    Examples
    --------
    >>> x = np.arange(10.0)[:, None]
    >>> sums = bootstrap_sums(x, 4000, random_state=0)
    >>> sums.shape, bool(abs(sums.mean() - 45) < 1)
    ((4000, 1), True)
    """
    x = np.asarray(data)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"data must be (n_rows, n_columns) with at least one row, got shape {x.shape}")
    x = x.astype(np.float64 if x.dtype == np.float64 else np.float32, copy=False)
    rng = np.random.default_rng(random_state)
    n = x.shape[0]
    chunk = int(max(1, min(n_bootstrap, max_memory // (8 * n))))
    out = np.empty((n_bootstrap, x.shape[1]))
    for start in range(0, n_bootstrap, chunk):
        c = min(chunk, n_bootstrap - start)
        idx = rng.integers(0, n, size=(c, n))
        idx += (np.arange(c) * n)[:, None]
        w = np.bincount(idx.ravel(), minlength=c * n).reshape(c, n).astype(x.dtype)
        out[start:start + c] = w @ x
    return out


def percentile_interval(distribution, confidence=0.95):
    """Percentile interval of bootstrap replicates along axis 0, ignoring NaN.

    Returns
    -------
    low, high : ndarray

    Examples
    --------
    >>> low, high = percentile_interval(np.r_[np.arange(101.0), np.nan], 0.9)
    >>> round(float(low), 6), round(float(high), 6)
    (5.0, 95.0)
    """
    a = (1 - confidence) / 2
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanquantile(distribution, [a, 1 - a], axis=0)
    return low, high
