"""Multiple-comparison corrections of voxel maps: FDR and max-statistic FWE."""

from __future__ import annotations

import numpy as np
from scipy.stats import false_discovery_control

FDR_METHODS = ("bh", "by")


def fdr(pvalues, alpha=0.05, method="bh"):
    """Benjamini-Hochberg (or Benjamini-Yekutieli) false discovery rate.

    Uses :func:`scipy.stats.false_discovery_control`. NaN p-values (e.g.
    voxels outside the mask) are ignored and never rejected.

    Parameters
    ----------
    pvalues : array-like
        Uncorrected p-values, any shape.
    alpha : float, default=0.05
        FDR level.
    method : {"bh", "by"}, default="bh"
        Benjamini-Hochberg (independent or positively dependent tests) or
        Benjamini-Yekutieli (any dependence).

    Returns
    -------
    rejected : ndarray of bool
        True where the null is rejected (``qvalues <= alpha``).
    qvalues : ndarray of float
        FDR-adjusted p-values, same shape as ``pvalues``.

    Examples
    --------
    >>> rejected, q = fdr([0.001, 0.02, 0.03, 0.5], alpha=0.05)
    >>> rejected.tolist(), np.round(q, 3).tolist()
    ([True, True, True, False], [0.004, 0.04, 0.04, 0.5])
    """
    if method not in FDR_METHODS:
        raise ValueError(f"method must be one of {FDR_METHODS}; got {method!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1); got {alpha!r}")
    p = np.asarray(pvalues, dtype=float)
    finite = np.isfinite(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ValueError("p-values must lie in [0, 1]; did you pass statistics instead of p-values?")
    q = np.full(p.shape, np.nan)
    if finite.any():
        q[finite] = false_discovery_control(p[finite], method=method)
    rejected = np.zeros(p.shape, dtype=bool)
    rejected[finite] = q[finite] <= alpha
    return rejected, q


def fwe_max(statistic, null_max, alpha=0.05, alternative="greater"):
    """Family-wise error correction by the maximum statistic.

    The FWE p-value of a voxel is the share of null maps whose maximum over
    voxels reaches its score, ``(1 + #{null_max >= score}) / (1 + n_nulls)``
    (Nichols & Holmes 2002). Valid under any spatial dependence, as long as
    each null map is drawn with one resampling shared by all voxels (as
    :func:`~nilearn_vlm.stats.permutation_null` does).

    Parameters
    ----------
    statistic : array-like of shape (n_voxels,)
        Observed scores.
    null_max : array-like of shape (n_nulls,)
        Maximum over voxels of each null map, oriented as ``alternative``
        (``|score|`` for two-sided, ``-score`` for "less"), e.g.
        ``PermutationResult.null_max``.
    alpha : float, default=0.05
        FWE level for the threshold.
    alternative : {"greater", "less", "two-sided"}, default="greater"
        How to orient ``statistic`` before the comparison.

    Returns
    -------
    pvalues_fwe : ndarray of shape (n_voxels,)
        FWE-corrected p-values.
    threshold : float
        Oriented scores strictly above it are significant at ``alpha``
        (``inf`` when ``alpha`` is below the smallest attainable p-value).

    Examples
    --------
    >>> p, thr = fwe_max([0.5, 0.1], null_max=np.linspace(0, 0.3, 99), alpha=0.05)
    >>> p.tolist(), round(thr, 4)
    ([0.01, 0.67], 0.2878)
    """
    if alternative not in ("greater", "less", "two-sided"):
        raise ValueError(f"alternative must be 'greater', 'less' or 'two-sided'; got {alternative!r}")
    s = np.asarray(statistic, dtype=float)
    s = np.abs(s) if alternative == "two-sided" else (-s if alternative == "less" else s)
    null_max = np.sort(np.asarray(null_max, dtype=float).ravel())
    if null_max.size == 0:
        raise ValueError("null_max is empty; run permutation_null first")
    n = null_max.size
    n_ge = n - np.searchsorted(null_max, s, side="left")
    pvalues = (1.0 + n_ge) / (1.0 + n)
    # significant iff #{null_max >= s} <= alpha (n + 1) - 1 =: m  iff  s > (m+1)-th largest
    m = int(np.floor(alpha * (n + 1) - 1 + 1e-12))
    threshold = np.inf if m < 0 else (null_max[n - 1 - m] if m < n else -np.inf)
    return pvalues, float(threshold)
