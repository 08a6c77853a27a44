"""Noise ceilings from repeated runs and normalised scores.

Signal power (Sahani & Linden 2003), with ``N`` repeats ``y_1..y_N`` of the
same stimulus sequence and ``Var`` the variance over time::

    SP = (Var(sum_r y_r) - sum_r Var(y_r)) / (N (N - 1))

The best possible correlation of any prediction with the repeat mean
``ybar`` (Schoppe et al. 2016, eq. 8; Hsu et al. 2004)::

    CC_max = sqrt(SP / Var(ybar)) = sqrt((N Var(ybar) - mean_r Var(y_r)) / ((N - 1) Var(ybar)))

and the normalised correlation of a prediction ``p``::

    CC_norm = Cov(ybar, p) / sqrt(Var(p) SP) = CC_abs / CC_max

These are standalone functions. Signal power (:func:`signal_power`) and the
percentile bootstrap (:func:`bootstrap_ci`) live in ``nilearn_vlm._utils``,
shared with the encoder's explainable variance and the analyses.
"""

from __future__ import annotations

import numpy as np

from nilearn_vlm._utils import BootstrapCI, bootstrap_ci, check_repeats, signal_power

__all__ = ["BootstrapCI", "bootstrap_ci", "noise_ceiling", "normalized_correlation", "signal_power"]


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
    y = check_repeats(repeats)
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
    y = check_repeats(repeats)
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
