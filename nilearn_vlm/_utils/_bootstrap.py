"""Percentile bootstrap: resampled rows, general statistics and column sums."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


def resampled_rows(n_rows, n_bootstrap, chunk, random_state=None):
    """Draws of ``n_rows`` row indices with replacement, ``chunk`` replicates at a time.

    The one random stream of the bootstraps here: ``rng.integers(0, n_rows,
    (c, n_rows))`` per chunk of ``c`` replicates (the chunk sizes are part of
    the stream, so a caller keeps its own to keep its numbers).

    Parameters
    ----------
    n_rows, n_bootstrap, chunk : int
    random_state : int, Generator or None

    Yields
    ------
    start : int
        Index of the chunk's first replicate.
    idx : ndarray of int, shape (c, n_rows)
    """
    rng = np.random.default_rng(random_state)
    chunk = int(max(1, chunk))
    for start in range(0, n_bootstrap, chunk):
        c = min(chunk, n_bootstrap - start)
        yield start, rng.integers(0, n_rows, size=(c, n_rows))


@dataclass
class BootstrapCI:
    """Percentile bootstrap interval.

    Attributes
    ----------
    estimate : ndarray
        Statistic of the full sample.
    low, high : ndarray
        Interval bounds.
    distribution : ndarray of shape (n_bootstrap, ...)
        Bootstrap replicates.
    """

    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    distribution: np.ndarray


def bootstrap_ci(scores, *, statistic=np.mean, n_bootstrap=10000, confidence=0.95, random_state=None):
    """Percentile bootstrap over runs (or subjects) of per-layer/per-network curves.

    Rows are resampled with replacement: each row is a whole run (a block of
    time, so the autocorrelation inside runs is kept: a block bootstrap with
    runs as blocks) or a whole subject at group level.

    Parameters
    ----------
    scores : array-like of shape (n_runs, ...)
        One score or curve per run or subject (e.g. mean r per layer,
        ``(n_runs, n_layers)``; or ``(n_runs, n_layers, n_networks)``).
    statistic : callable, default=np.mean
        ``statistic(sample, axis=0)`` reduces the resampled rows.
    n_bootstrap : int, default=10000
        Resamples.
    confidence : float, default=0.95
        Interval coverage.
    random_state : int or None
        Seed.

    Returns
    -------
    BootstrapCI

    Examples
    --------
    >>> scores = np.array([[0.1, 0.2], [0.12, 0.25], [0.09, 0.22], [0.11, 0.18]])
    >>> ci = bootstrap_ci(scores, n_bootstrap=2000, random_state=0)
    >>> bool(np.all(ci.low <= ci.estimate)) and bool(np.all(ci.estimate <= ci.high))
    True
    """
    x = np.asarray(scores, dtype=float)
    if x.ndim == 0 or x.shape[0] < 2:
        raise ValueError(
            f"need scores of at least 2 runs or subjects along axis 0; got shape {x.shape}"
        )
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence!r}")
    n = x.shape[0]
    est = np.asarray(statistic(x, axis=0))
    dist = np.empty((n_bootstrap, *est.shape))
    batch = max(1, int(2**24 // max(1, x.size)))
    for s, idx in resampled_rows(n, n_bootstrap, batch, random_state):
        dist[s : s + len(idx)] = statistic(x[idx].swapaxes(0, 1), axis=0)
    a = (1 - confidence) / 2
    low, high = np.quantile(dist, [a, 1 - a], axis=0)
    return BootstrapCI(est, low, high, dist)


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
    n = x.shape[0]
    chunk = int(max(1, min(n_bootstrap, max_memory // (8 * n))))
    out = np.empty((n_bootstrap, x.shape[1]))
    for start, idx in resampled_rows(n, n_bootstrap, chunk, random_state):
        c = len(idx)
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
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(distribution, [a, 1 - a], axis=0)
    return low, high
