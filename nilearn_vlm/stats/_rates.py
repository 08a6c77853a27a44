"""False-positive rates of null families, with exact (Clopper-Pearson) intervals."""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["NullRates", "clopper_pearson"]


def clopper_pearson(k, n, level=0.95):
    """Exact (Clopper-Pearson) confidence interval of a binomial proportion.

    Parameters
    ----------
    k : int
        Successes (here: false positives).
    n : int
        Trials.
    level : float, default=0.95

    Returns
    -------
    (float, float)
        Lower and upper bounds; ``(0, 1)`` when ``n`` is 0.

    Examples
    --------
    >>> lo, hi = clopper_pearson(5, 100)
    >>> round(lo, 4), round(hi, 4)
    (0.0164, 0.1128)
    """
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= k <= n:
        raise ValueError(f"k must lie in [0, n = {n}], got {k}.")
    a = (1 - level) / 2
    lo = float(stats.beta.ppf(a, k, n - k + 1)) if k > 0 else 0.0
    hi = float(stats.beta.ppf(1 - a, k + 1, n - k)) if k < n else 1.0
    return lo, hi


def _bh_rejects_any(p, q):
    p = np.sort(p)
    return bool(np.any(p <= q * np.arange(1, p.size + 1) / max(p.size, 1)))


class NullRates:
    """Running voxelwise and familywise false-positive counts of null p-value maps.

    Every p-value added comes from a null (a random design against rest data,
    say), so every rejection is false. A family is one map (one
    Benjamini-Hochberg correction); under a complete null, BH at ``q`` rejects
    anything with probability at most ``q``.

    Parameters
    ----------
    levels : tuple of float, default=(0.05, 0.001)
        Uncorrected levels of the voxelwise rates.
    q : float, default=0.05
        FDR level of the familywise rate.

    Attributes
    ----------
    n_tests : int
        p-values added.
    counts : dict
        ``{level: p-values below it}``.
    n_families, n_families_rejecting : int
        Families added, and those whose BH at ``q`` rejected anything.

    Examples
    --------
    >>> import numpy as np
    >>> rates = NullRates()
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(20):
    ...     rates.add_family(rng.uniform(size=1000))
    >>> s = rates.summary()
    >>> 0.04 < s["fpr_0.05"] < 0.06, s["n_families"]
    (True, 20)
    """

    def __init__(self, levels=(0.05, 0.001), q=0.05):
        self.levels = tuple(levels)
        self.q = q
        self.n_tests = 0
        self.counts = {a: 0 for a in self.levels}
        self.n_families = 0
        self.n_families_rejecting = 0

    def add_family(self, p=None, n_tests=None, counts=None, any_discovery=None):
        """Add one null family: its p-values, or its counts when the p-values are not kept.

        Parameters
        ----------
        p : array-like, optional
            The family's p-values (non-finite ones are ignored).
        n_tests : int, optional
        counts : dict, optional
            ``{level: number of p < level}`` for every level.
        any_discovery : bool, optional
            Whether the family's BH at ``q`` rejected anything.
        """
        if p is not None:
            p = np.ravel(np.asarray(p, dtype=np.float64))
            p = p[np.isfinite(p)]
            n_tests = p.size
            counts = {a: int((p < a).sum()) for a in self.levels}
            any_discovery = _bh_rejects_any(p, self.q)
        elif n_tests is None or counts is None or any_discovery is None:
            raise ValueError("give p, or n_tests, counts and any_discovery.")
        self.n_tests += int(n_tests)
        for a in self.levels:
            self.counts[a] += int(counts[a])
        self.n_families += 1
        self.n_families_rejecting += bool(any_discovery)

    def summary(self, level=0.95):
        """Rates with their Clopper-Pearson intervals.

        Returns
        -------
        dict
            ``n_tests``, ``n_families``; ``fpr_<a>`` and ``fpr_<a>_ci`` for
            each level ``a``; ``familywise`` and ``familywise_ci`` (the share
            of families with any BH discovery).
        """
        out = {"n_tests": self.n_tests, "n_families": self.n_families}
        for a in self.levels:
            out[f"fpr_{a:g}"] = self.counts[a] / max(self.n_tests, 1)
            out[f"fpr_{a:g}_ci"] = clopper_pearson(self.counts[a], self.n_tests, level)
        out["familywise"] = self.n_families_rejecting / max(self.n_families, 1)
        out["familywise_ci"] = clopper_pearson(self.n_families_rejecting, self.n_families, level)
        return out
