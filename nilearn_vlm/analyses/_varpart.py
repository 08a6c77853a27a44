"""Variance partitioning and greedy unit selection with cross-validated ridge.

Both use the encoder's exact per-voxel-alpha ridge solver
(:func:`nilearn_vlm.encoding.ridge_cv_path`) with folds that never shuffle
time (:func:`nilearn_vlm.encoding.make_folds`: leave-one-run-out when runs
are given).
"""

from __future__ import annotations

import numpy as np

from nilearn_vlm._utils import make_folds, zscore
from nilearn_vlm.encoding import ridge_cv_path

DEFAULT_ALPHAS = np.logspace(-2, 5, 8)


def _prepare(X, n_scans=None):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"features must be (n_scans, n_features), got shape {X.shape}")
    if n_scans is not None and X.shape[0] != n_scans:
        raise ValueError(f"features have {X.shape[0]} scans but the BOLD has {n_scans}")
    return zscore(X, axis=0)


def cv_r2(X, Y, runs=None, cv=None, alphas=None, max_memory=5e8):
    """Out-of-fold R^2 per voxel of a ridge model with a per-voxel alpha.

    Parameters
    ----------
    X : array-like, shape (n_scans, n_features)
        Features (z-scored here).
    Y : array-like, shape (n_scans, n_voxels)
    runs : array-like, shape (n_scans,), optional
        Run per scan: leave-one-run-out folds.
    cv : see :func:`nilearn_vlm.encoding.make_folds`
    alphas : array-like or None
        Default ``np.logspace(-2, 5, 8)``.
    max_memory : float
        Solver working memory in bytes.

    Returns
    -------
    ndarray, shape (n_voxels,)
        Mean R^2 over validation folds at the best alpha of each voxel (the
        maximum over alphas, as the encoder's ``cv_scores_``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((120, 3))
    >>> Y = X @ rng.standard_normal((3, 2)) + 0.5 * rng.standard_normal((120, 2))
    >>> bool(np.all(cv_r2(X, Y) > 0.7))
    True
    """
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2:
        raise ValueError(f"bold must be (n_scans, n_voxels), got shape {Y.shape}")
    Xs = _prepare(X, Y.shape[0])
    folds = make_folds(cv, Y.shape[0], runs)
    alphas = DEFAULT_ALPHAS if alphas is None else np.asarray(alphas, dtype=float)
    out = ridge_cv_path(Xs, Y, alphas, folds, refit=False, dtype=np.float64, max_memory=max_memory)
    return out["cv_score"]


def variance_partition(feature_groups, Y, runs=None, cv=None, alphas=None):
    """Shared and unique explained variance of groups of features, per voxel.

    With groups ``g`` and all features ``F``, ridge models are fit on ``F``,
    on each group alone and on ``F`` without each group (nested fits). Then

    * ``unique[g] = R2(F) - R2(F without g)``;
    * ``shared = R2(F) - sum_g unique[g]`` (for two groups
      ``R2(A) + R2(B) - R2(A u B)``, the classic partition).

    R^2 values are out-of-fold (:func:`cv_r2`), so the parts can be slightly
    negative through noise.

    Parameters
    ----------
    feature_groups : dict of str to array-like (n_scans, n_features_g)
        At least two groups.
    Y : array-like, shape (n_scans, n_voxels)
    runs, cv, alphas
        See :func:`cv_r2`.

    Returns
    -------
    dict of str to ndarray (n_voxels,)
        ``"full"``, ``"alone:<g>"``, ``"without:<g>"``, ``"unique:<g>"`` for
        each group and ``"shared"``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s = rng.standard_normal((200, 1))
    >>> Y = s + 0.5 * rng.standard_normal((200, 4))
    >>> parts = variance_partition({"a": s, "b": s + 0.01 * rng.standard_normal((200, 1))}, Y)
    >>> bool(parts["shared"].mean() > 0.6), bool(abs(parts["unique:a"].mean()) < 0.05)
    (True, True)
    """
    if not isinstance(feature_groups, dict) or len(feature_groups) < 2:
        raise ValueError("feature_groups must be a dict of at least two named (n_scans, p) arrays")
    Y = np.asarray(Y, dtype=np.float64)
    groups = {str(k): _prepare(v, Y.shape[0]) for k, v in feature_groups.items()}
    names = list(groups)
    full = np.hstack([groups[g] for g in names])
    out = {"full": cv_r2(full, Y, runs, cv, alphas)}
    unique_sum = np.zeros_like(out["full"])
    for g in names:
        out[f"alone:{g}"] = cv_r2(groups[g], Y, runs, cv, alphas)
        rest = [groups[h] for h in names if h != g]
        out[f"without:{g}"] = cv_r2(np.hstack(rest), Y, runs, cv, alphas)
        out[f"unique:{g}"] = out["full"] - out[f"without:{g}"]
        unique_sum += out[f"unique:{g}"]
    out["shared"] = out["full"] - unique_sum
    return out


def greedy_unit_selection(X, Y, fraction=0.9, runs=None, cv=None, alphas=None, min_r2=0.0,
                          max_units=None, unit_names=None, verbose=0):
    """The smallest unit set (greedy) keeping a fraction of the predictable variance.

    Forward selection: starting from no unit, add at each step the unit whose
    addition gives the largest total out-of-fold R^2 over the predictable
    voxels, until that total reaches ``fraction`` of the total of all units.
    Predictable voxels are those whose full-model R^2 exceeds ``min_r2``;
    R^2 values below 0 count as 0. Greedy selection is not guaranteed to find
    the smallest set, but is within the usual ``1 - 1/e`` factor for
    submodular-like objectives; each step costs one ridge fit per remaining
    unit, so give a few tens of candidates (units of one network, atoms, or
    pre-selected top units), not thousands.

    Parameters
    ----------
    X : array-like, shape (n_scans, n_units)
    Y : array-like, shape (n_scans, n_voxels)
    fraction : float in (0, 1], default=0.9
    runs, cv, alphas
        See :func:`cv_r2`.
    min_r2 : float, default=0.0
    max_units : int or None
        Stop after this many units even if the fraction is not reached.
    unit_names : sequence of str or None
    verbose : int
        Progress bar over steps when > 0.

    Returns
    -------
    dict
        ``selected`` (names in order of selection), ``curve`` (kept fraction
        after each step), ``n_selected``, ``n_units``, ``reached`` (bool),
        ``target`` (total R^2 of all units over predictable voxels),
        ``n_predictable``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s = rng.standard_normal((150, 1))
    >>> X = s + 0.05 * rng.standard_normal((150, 6))  # six copies of one signal
    >>> Y = s + rng.standard_normal((150, 5))
    >>> greedy_unit_selection(X, Y, fraction=0.9)["n_selected"]
    1
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
    Y = np.asarray(Y, dtype=np.float64)
    Xs = _prepare(X, Y.shape[0])
    p = Xs.shape[1]
    names = [str(i) for i in range(p)] if unit_names is None else [str(u) for u in unit_names]
    if len(names) != p:
        raise ValueError(f"{len(names)} unit_names for {p} feature columns")
    full = cv_r2(Xs, Y, runs, cv, alphas)
    keep = full > min_r2
    out = {"selected": [], "curve": [], "n_selected": 0, "n_units": p, "reached": False,
           "target": float(np.clip(full[keep], 0, None).sum()), "n_predictable": int(keep.sum())}
    if not keep.any():
        return out
    Yk = Y[:, keep]
    target = out["target"]
    chosen, remaining = [], list(range(p))
    limit = p if max_units is None else min(p, int(max_units))
    steps = range(limit)
    if verbose:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="greedy units", leave=False)
    for _ in steps:
        best, best_val = None, -np.inf
        for j in remaining:
            val = np.clip(cv_r2(Xs[:, chosen + [j]], Yk, runs, cv, alphas), 0, None).sum()
            if val > best_val:
                best, best_val = j, val
        chosen.append(best)
        remaining.remove(best)
        out["curve"].append(float(best_val / target) if target > 0 else 1.0)
        if out["curve"][-1] >= fraction:
            out["reached"] = True
            break
    out["selected"] = [names[j] for j in chosen]
    out["n_selected"] = len(chosen)
    return out
