"""Inference helpers shared by the analyses: resampling p-values, Holm, jackknife intervals.

Every analysis states, for each test it reports, the null hypothesis, the
statistic, what is resampled (the unit that is exchangeable under the null),
how many distinct resamples exist, the correction and the interval;
:func:`inference_table` collects those statements into the result (a table
``inference``, ``stats`` entries and a paragraph of text).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats as sps

#: Columns of the ``inference`` table of an analysis result.
INFERENCE_COLUMNS = ("test", "null_hypothesis", "statistic", "resampling_unit", "n_resamples",
                     "n_distinct_resamples", "correction", "interval")


def permutation_pvalue(null, observed, alternative="two-sided"):
    """Resampling p-value along axis 0 with the +1 correction.

    ``(1 + #{null at least as extreme as observed}) / (1 + n_finite_null)``:
    valid (never below the level) whenever the observed statistic is
    exchangeable with the null draws. NaN null draws are left out.

    Parameters
    ----------
    null : array-like, shape (n_resamples, ...)
    observed : array-like, broadcastable to ``null.shape[1:]``
    alternative : {"two-sided", "greater", "less"}
        Two-sided compares absolute values.

    Returns
    -------
    ndarray
        p-values, shape ``null.shape[1:]``.

    Examples
    --------
    >>> float(permutation_pvalue(np.arange(99.0), 97.5, "greater"))
    0.02
    """
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")
    null = np.asarray(null, dtype=float)
    observed = np.asarray(observed, dtype=float)
    tol = 1e-12 * np.maximum(1.0, np.abs(observed))
    with np.errstate(invalid="ignore"):
        if alternative == "two-sided":
            hits = np.abs(null) >= np.abs(observed) - tol
        elif alternative == "greater":
            hits = null >= observed - tol
        else:
            hits = null <= observed + tol
    hits = np.where(np.isnan(null), False, hits)
    n = np.isfinite(null).sum(axis=0)
    return (1 + hits.sum(axis=0)) / (1 + n)


def holm(pvalues):
    """Holm-adjusted p-values (family-wise error under any dependence).

    Parameters
    ----------
    pvalues : array-like
        NaN entries are left out of the family and stay NaN.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03, np.nan]).round(3).tolist()
    [0.03, 0.06, 0.06, nan]
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    q = p[ok]
    if q.size:
        order = np.argsort(q, kind="stable")
        m = q.size
        adj = np.maximum.accumulate((m - np.arange(m)) * q[order])
        res = np.empty(m)
        res[order] = np.minimum(adj, 1.0)
        out[ok] = res
    return out


def jackknife_interval(estimate, jack, confidence=0.95):
    """Leave-one-out jackknife interval with a t quantile on ``n - 1`` degrees of freedom.

    For few runs (or blocks) this is the interval the analyses report: the
    estimate plus or minus ``t_{n-1} * se`` with the jackknife standard error
    ``se = sqrt((n - 1) / n * sum((jack - mean(jack))**2))``.

    Parameters
    ----------
    estimate : float or ndarray
        The statistic on all runs.
    jack : array-like, shape (n, ...)
        The statistic recomputed with each run (block) left out.
    confidence : float, default=0.95

    Returns
    -------
    low, high, se : ndarray

    Examples
    --------
    >>> low, high, se = jackknife_interval(2.5, [1.0, 2.0, 3.0, 4.0])
    >>> round(float(se), 4), round(float(high - 2.5), 3)
    (1.9365, 6.163)
    """
    jack = np.asarray(jack, dtype=float)
    n = jack.shape[0]
    if n < 2:
        raise ValueError(f"a jackknife needs at least 2 leave-one-out values, got {n}")
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN interval
        se = np.sqrt((n - 1) / n * np.nansum((jack - np.nanmean(jack, axis=0)) ** 2, axis=0))
        se = np.where(np.isnan(jack).all(axis=0), np.nan, se)
    q = sps.t.ppf(0.5 + confidence / 2, n - 1)
    estimate = np.asarray(estimate, dtype=float)
    return estimate - q * se, estimate + q * se, se


def clopper_pearson(k, n, confidence=0.95):
    """Exact (Clopper-Pearson) interval of a binomial proportion ``k / n``.

    Used to report false-positive rates and power of the analyses'
    statistics with their uncertainty (benchmarks and tests).

    Returns
    -------
    low, high : float

    Examples
    --------
    >>> [round(v, 4) for v in clopper_pearson(5, 100)]
    [0.0164, 0.1128]
    """
    k, n = int(k), int(n)
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    a = 1 - confidence
    low = 0.0 if k == 0 else float(sps.beta.ppf(a / 2, k, n - k + 1))
    high = 1.0 if k == n else float(sps.beta.ppf(1 - a / 2, k + 1, n - k))
    return low, high


def n_sign_arrangements(signs, strata):
    """Distinct arrangements of values permuted within strata: a product of multinomial coefficients.

    Parameters
    ----------
    signs : array-like
        The permuted values (e.g. drivers' net signs).
    strata : array-like
        Stratum (stream) of each value; values move only within it.

    Returns
    -------
    int

    Examples
    --------
    >>> n_sign_arrangements([1, 1, -1, -1], ["v", "v", "v", "v"])
    6
    """
    signs, strata = np.asarray(signs), np.asarray(strata)
    total = 1
    for s in dict.fromkeys(strata.tolist()):
        vals = signs[strata == s]
        _, counts = np.unique(vals, return_counts=True)
        total *= math.factorial(int(counts.sum())) // math.prod(math.factorial(int(c)) for c in counts)
    return total


def _count(n):
    """A count of distinct resamples as an int, or a float beyond 10^15 (inf beyond 10^300: too many digits to print)."""
    if isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 10**15:
        return float(n) if n < 10**300 else math.inf
    return n


def inference_table(out, rows):
    """Record what each test of an analysis assumes and resamples.

    Adds the table ``inference`` (columns :data:`INFERENCE_COLUMNS`), the
    entries ``null:<test>``, ``resampling_unit:<test>``,
    ``n_resamples:<test>``, ``n_distinct_resamples:<test>`` and
    ``correction:<test>`` to ``out.stats``, and one sentence per test to
    ``out.text``.

    Parameters
    ----------
    out : AnalysisResult
    rows : list of dict
        One per test, with the keys of :data:`INFERENCE_COLUMNS`
        (``interval`` may be ``""``).

    Returns
    -------
    pandas.DataFrame
        The table (also stored in ``out.tables["inference"]``).
    """
    rows = [{**row, "n_distinct_resamples": _count(row.get("n_distinct_resamples", ""))} for row in rows]
    table = pd.DataFrame([{c: row.get(c, "") for c in INFERENCE_COLUMNS} for row in rows],
                         columns=list(INFERENCE_COLUMNS))
    out.tables["inference"] = table
    lines = []
    for row in table.itertuples(index=False):
        out.stats[f"null:{row.test}"] = row.null_hypothesis
        out.stats[f"resampling_unit:{row.test}"] = row.resampling_unit
        out.stats[f"n_resamples:{row.test}"] = row.n_resamples
        out.stats[f"n_distinct_resamples:{row.test}"] = row.n_distinct_resamples
        out.stats[f"correction:{row.test}"] = row.correction
        interval = f" Interval: {row.interval}." if row.interval else ""
        lines.append(
            f"Test '{row.test}': H0 = {row.null_hypothesis}; statistic: {row.statistic}; resampled: "
            f"{row.resampling_unit} ({row.n_resamples} resamples of {row.n_distinct_resamples} distinct); "
            f"correction: {row.correction}.{interval}"
        )
    out.text = (out.text + "\n" if out.text else "") + "\n".join(lines)
    return table
