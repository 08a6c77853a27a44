"""Statistics of the polarity analysis: signs of driving regressors against fractional depth.

Hypothesis (finding 3 of arXiv 2510.16870): the balance of positively and
negatively driven voxels changes monotonically with depth along the model.
Null: a regressor's sign does not depend on where it sits.

- :func:`driver_sign_test` (the test): each *driver* (a regressor with at
  least ``min_voxels`` significant voxels in the network) has a net sign
  ``s_k = (P_k - N_k) / (P_k + N_k)``; the statistic is the correlation of
  ``s_k`` with the driver's fractional depth, pooled over streams. The signs
  are permuted among the drivers of each stream: exact whenever the signs
  are exchangeable, whatever the number of drivers per layer or a constant
  sign bias.
- :func:`balance_trend` (the effect size and a secondary test): the
  voxel-weighted slope of the layer balance ``(P_l - N_l) / (P_l + N_l)`` on
  depth, with a leave-one-run-out jackknife interval (t, ``n_runs - 1``
  degrees of freedom), and a layer-label permutation that is exact only when
  the layers are exchangeable.
"""

from __future__ import annotations

import math

import numpy as np

from nilearn_vlm.analyses import jackknife_interval, n_sign_arrangements, permutation_pvalue


def weighted_trend(B, d, w):
    """Weighted Pearson correlation and slope of ``B`` on ``d`` along the last axis.

    Parameters
    ----------
    B, d, w : array-like, broadcastable
        Values, depths and non-negative weights.

    Returns
    -------
    r, slope : ndarray
        NaN where the weights leave fewer than two distinct depths or ``B``
        is constant.

    Examples
    --------
    >>> r, slope = weighted_trend(np.array([1.0, 0.0, -1.0]), np.array([0.2, 0.5, 0.8]), np.ones(3))
    >>> round(float(r), 6), round(float(slope), 6)
    (-1.0, -3.333333)
    """
    B, d, w = (np.asarray(a, dtype=float) for a in (B, d, w))
    sw = w.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        dm = (w * d).sum(-1, keepdims=True) / sw
        bm = (w * B).sum(-1, keepdims=True) / sw
        cov = (w * (B - bm) * (d - dm)).sum(-1)
        vd = (w * (d - dm) ** 2).sum(-1)
        vb = (w * (B - bm) ** 2).sum(-1)
        r = cov / np.sqrt(vd * vb)
        slope = cov / vd
    return r, slope


def _count(n):
    """An exact count as an int up to 10^15, else a float (inf beyond 10^300: thousands of units have
    more arrangements than a float, or a printed int, holds)."""
    n = int(n)
    return n if n <= 10**15 else (float(n) if n < 10**300 else math.inf)


def driver_sign_test(signs, depth, strata, layer_keys=None, n_permutations=9999, random_state=None):
    """Do the drivers' net signs depend on their depth? Signs permuted within strata.

    Null hypothesis: the net signs are exchangeable among the drivers of each
    stratum (stream): a driver's sign does not depend on its depth.
    Statistics: the correlation of the signs with depth (trend, two-sided)
    and, with ``layer_keys``, the between-layer sum of squares of the mean
    sign (heterogeneity across layers, one-sided).

    Parameters
    ----------
    signs : array-like (n_drivers,)
        Net sign of each driver, in [-1, 1].
    depth : array-like (n_drivers,)
        Fractional depth of each driver's layer.
    strata : array-like (n_drivers,)
        Stream of each driver: signs move only within it (pooled tests
        stratify by stream).
    layer_keys : array-like (n_drivers,) or None
        Layer of each driver (heterogeneity).
    n_permutations : int, default=9999
    random_state : int, Generator or None

    Returns
    -------
    dict
        ``n_drivers``, ``r``, ``p`` (trend), ``heterogeneity``,
        ``p_heterogeneity``, ``n_distinct`` (distinct sign arrangements),
        ``p_min`` (smallest attainable p: ``1 / n_distinct`` when the
        arrangements are few).

    Examples
    --------
    >>> out = driver_sign_test([1, 1, 1, -1, -1, -1], [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], ["v"] * 6,
    ...                        n_permutations=2000, random_state=0)
    >>> out["n_distinct"], round(out["r"], 3), out["p"] < 0.15
    (20, -0.965, True)
    """
    rng = np.random.default_rng(random_state)
    s = np.asarray(signs, dtype=float)
    d = np.asarray(depth, dtype=float)
    strata = np.asarray(strata).astype(str)
    n = s.size
    n_distinct = n_sign_arrangements(np.round(s, 12), strata) if n else 0
    out = {"n_drivers": int(n), "r": np.nan, "p": np.nan, "heterogeneity": np.nan, "p_heterogeneity": np.nan,
           "n_distinct": _count(n_distinct), "p_min": np.nan}
    if n < 3 or np.ptp(d) == 0:
        return out
    perm = np.tile(np.arange(n), (n_permutations, 1))
    for st in np.unique(strata):
        idx = np.flatnonzero(strata == st)
        perm[:, idx] = idx[np.argsort(rng.random((n_permutations, idx.size)), axis=1)]
    sp = s[perm]
    ones = np.ones(n)
    r = weighted_trend(s, d, ones)[0]
    out["p_min"] = 1.0 / n_distinct if n_distinct <= n_permutations else 1.0 / (1 + n_permutations)
    if np.isfinite(r):
        out["r"] = float(r)
        out["p"] = float(permutation_pvalue(weighted_trend(sp, d[None], ones[None])[0], r))
    if layer_keys is not None:
        _, inv = np.unique(np.asarray(layer_keys).astype(str), return_inverse=True)
        onehot = np.zeros((n, inv.max() + 1))
        onehot[np.arange(n), inv] = 1
        cnt = onehot.sum(0)

        def het(x):
            means = (x @ onehot) / cnt
            return ((means - x.mean(-1, keepdims=True)) ** 2 * cnt).sum(-1)

        h = het(s)
        out["heterogeneity"] = float(h)
        out["p_heterogeneity"] = float(permutation_pvalue(het(sp), h, "greater"))
    return out


def layer_counts(sign_sets, layer_index, n_layers, membership):
    """Voxels driven positively and negatively by any regressor of each layer, per network.

    Parameters
    ----------
    sign_sets : ndarray (..., n_regressors, n_voxels)
        Leading axes (e.g. leave-one-run-out fits) are kept.
    layer_index : ndarray of int (n_regressors,)
        Layer (0 .. n_layers - 1) of each regressor.
    n_layers : int
    membership : ndarray of bool (n_networks, n_voxels)

    Returns
    -------
    pos, neg : ndarray (..., n_layers, n_networks)
    """
    sign_sets = np.asarray(sign_sets)
    onehot = (np.arange(n_layers)[:, None] == np.asarray(layer_index)[None, :]).astype(np.float32)
    mf = np.asarray(membership, dtype=np.float32).T

    def count(mask):
        lead = mask.shape[:-2]
        flat = mask.reshape(-1, *mask.shape[-2:]).astype(np.float32)
        per_layer = np.einsum("lr,brv->blv", onehot, flat) > 0
        return (per_layer.astype(np.float32) @ mf).reshape(*lead, n_layers, mf.shape[1])

    return count(sign_sets > 0), count(sign_sets < 0)


def _balance(P, N):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(P + N > 0, (P - N) / np.where(P + N > 0, P + N, 1), 0.0)


def n_layer_arrangements(strata, weight):
    """Distinct depth assignments to the layers carrying weight: ``prod_s L_s! / (L_s - k_s)!``."""
    strata, weight = np.asarray(strata), np.asarray(weight)
    total = 1
    for s in np.unique(strata):
        sel = strata == s
        total *= math.perm(int(sel.sum()), int((weight[sel] > 0).sum()))
    return total


def balance_trend(pos, neg, depth, strata, jack_pos=None, jack_neg=None, n_permutations=9999,
                  confidence=0.95, random_state=None):
    """Voxel-weighted depth slope of the layer balance, with a jackknife interval and a layer permutation.

    The balance of layer ``l`` is ``B_l = (P_l - N_l) / (P_l + N_l)``; the
    slope of ``B`` on fractional depth, each layer weighted by its driven
    voxels ``P_l + N_l``, is the change of the balance from depth 0 to 1.

    Parameters
    ----------
    pos, neg : ndarray (n_layers, n_networks)
    depth, strata : array-like (n_layers,)
        Fractional depth and stream of each layer.
    jack_pos, jack_neg : ndarray (n_runs, n_layers, n_networks) or None
        The counts with each run left out: leave-one-run-out jackknife
        interval of the slope, t with ``n_runs - 1`` degrees of freedom.
    n_permutations : int
        Depths permuted among the layers of each stream (secondary test:
        exact only when the layers are exchangeable).
    confidence : float
    random_state : int, Generator or None

    Returns
    -------
    dict of ndarray (n_networks,)
        ``r``, ``slope``, ``low``, ``high``, ``se``, ``p``, ``n_distinct``,
        ``n_layers_driven``, ``balance`` (overall).
    """
    rng = np.random.default_rng(random_state)
    depth, strata = np.asarray(depth, dtype=float), np.asarray(strata).astype(str)
    P, N = np.asarray(pos, float).T, np.asarray(neg, float).T  # (n_net, L)
    w = P + N
    B = _balance(P, N)
    r, slope = weighted_trend(B, depth, w)
    perms = np.broadcast_to(depth, (n_permutations, depth.size)).copy()
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        perms[:, idx] = depth[idx][np.argsort(rng.random((n_permutations, idx.size)), axis=1)]
    null = weighted_trend(B[None], perms[:, None, :], w[None])[0]
    p = np.where(np.isfinite(r), permutation_pvalue(null, r), np.nan)
    low = high = se = np.full(r.shape, np.nan)
    if jack_pos is not None:
        jp, jn = np.asarray(jack_pos, float).transpose(0, 2, 1), np.asarray(jack_neg, float).transpose(0, 2, 1)
        jslope = weighted_trend(_balance(jp, jn), depth[None, None], jp + jn)[1]
        low, high, se = jackknife_interval(slope, jslope, confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        balance = (P.sum(1) - N.sum(1)) / np.where(w.sum(1) > 0, w.sum(1), np.nan)
    return {"r": r, "slope": slope, "low": low, "high": high, "se": se, "p": p,
            "n_distinct": np.array([n_layer_arrangements(strata, wj) for wj in w]),
            "n_layers_driven": (w > 0).sum(1), "balance": balance}
