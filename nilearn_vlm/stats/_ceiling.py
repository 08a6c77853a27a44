"""Noise ceilings from repeated runs, normalised scores, bootstrap intervals.

Signal power (Sahani & Linden 2003), with ``N`` repeats ``y_1..y_N`` of the
same stimulus sequence and ``Var`` the variance over time::

    SP = (Var(sum_r y_r) - sum_r Var(y_r)) / (N (N - 1))

The best possible correlation of any prediction with the repeat mean
``ybar`` (Schoppe et al. 2016, eq. 8; Hsu et al. 2004)::

    CC_max = sqrt(SP / Var(ybar)) = sqrt((N Var(ybar) - mean_r Var(y_r)) / ((N - 1) Var(ybar)))

and the normalised correlation of a prediction ``p``::

    CC_norm = Cov(ybar, p) / sqrt(Var(p) SP) = CC_abs / CC_max

These are standalone functions; the encoder may report its own ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _check_repeats(repeats):
    y = np.asarray(repeats, dtype=float)
    if y.ndim == 2:
        y = y[:, :, None]
    if y.ndim != 3 or y.shape[0] < 2:
        raise ValueError(
            "repeats must have shape (n_repeats >= 2, n_samples, n_voxels): the responses to the "
            f"same stimulus sequence, one per repeat; got shape {y.shape}"
        )
    if not np.all(np.isfinite(y)):
        raise ValueError("repeats contain NaN or infinite values")
    return y


def signal_power(repeats):
    """Signal power and noise power per voxel from repeated runs.

    Parameters
    ----------
    repeats : array-like of shape (n_repeats, n_samples, n_voxels)
        Responses to the same stimulus sequence (aligned scans).

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
    y = _check_repeats(repeats)
    n = y.shape[0]
    var_sum = y.sum(0).var(0)
    sum_var = y.var(1).sum(0)
    sp = (var_sum - sum_var) / (n * (n - 1))
    return sp, sum_var / n - sp


def noise_ceiling(repeats):
    """Upper bound of the correlation with the repeat mean, per voxel.

    ``CC_max = sqrt(SP / Var(ybar))`` (Schoppe et al. 2016); 0 where the
    signal power is not positive.

    Parameters
    ----------
    repeats : array-like of shape (n_repeats, n_samples, n_voxels)
        Responses to the same stimulus sequence.

    Returns
    -------
    ndarray of shape (n_voxels,)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s = rng.standard_normal((20000, 1))
    >>> reps = [s + 2 * rng.standard_normal(s.shape) for _ in range(4)]
    >>> round(float(noise_ceiling(reps)[0]), 1)  # theory: 1 / sqrt(1 + 4 / 4)
    0.7
    """
    y = _check_repeats(repeats)
    sp, _ = signal_power(y)
    var_mean = y.mean(0).var(0)
    ratio = np.divide(sp, var_mean, out=np.zeros_like(sp), where=var_mean > 0)
    return np.sqrt(np.clip(ratio, 0.0, None))


def normalized_correlation(prediction, repeats):
    """Correlation of a prediction with the repeat mean, normalised by the ceiling.

    ``CC_norm = Cov(ybar, p) / sqrt(Var(p) SP)`` (Schoppe et al. 2016); NaN
    where the signal power is not positive.

    Parameters
    ----------
    prediction : array-like of shape (n_samples, n_voxels)
        Predicted response to the repeated sequence.
    repeats : array-like of shape (n_repeats, n_samples, n_voxels)

    Returns
    -------
    ndarray of shape (n_voxels,)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s = rng.standard_normal((20000, 1))
    >>> reps = [s + 2 * rng.standard_normal(s.shape) for _ in range(4)]
    >>> round(float(normalized_correlation(s, reps)[0]), 1)  # the true signal scores 1
    1.0
    """
    y = _check_repeats(repeats)
    p = np.asarray(prediction, dtype=float)
    if p.ndim == 1:
        p = p[:, None]
    if p.shape != y.shape[1:]:
        raise ValueError(
            f"prediction has shape {p.shape}; expected (n_samples, n_voxels) = {y.shape[1:]}"
        )
    sp, _ = signal_power(y)
    ybar = y.mean(0)
    cov = ((ybar - ybar.mean(0)) * (p - p.mean(0))).mean(0)
    den = np.sqrt(p.var(0) * np.clip(sp, 0.0, None))
    return np.divide(cov, den, out=np.full_like(cov, np.nan), where=den > 0)


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
    rng = np.random.default_rng(random_state)
    n = x.shape[0]
    est = np.asarray(statistic(x, axis=0))
    dist = np.empty((n_bootstrap, *est.shape))
    batch = max(1, int(2**24 // max(1, x.size)))
    for s in range(0, n_bootstrap, batch):
        m = min(batch, n_bootstrap - s)
        idx = rng.integers(0, n, size=(m, n))
        dist[s : s + m] = statistic(x[idx].swapaxes(0, 1), axis=0)
    a = (1 - confidence) / 2
    low, high = np.quantile(dist, [a, 1 - a], axis=0)
    return BootstrapCI(est, low, high, dist)
