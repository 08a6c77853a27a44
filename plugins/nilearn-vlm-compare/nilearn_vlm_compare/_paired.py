"""Paired voxelwise tests of two models' encoding performance."""

from __future__ import annotations

import itertools

import numpy as np

from nilearn_vlm.stats import default_block_length


def _signs(n_rows, n_permutations, rng):
    """Sign flips: every pattern when there are few rows, random ones otherwise."""
    if 2 ** n_rows <= n_permutations:
        return np.array(list(itertools.product((1.0, -1.0), repeat=n_rows)))
    return rng.choice((-1.0, 1.0), size=(n_permutations, n_rows))


def sign_flip_test(diffs, n_permutations=5000, random_state=None):
    """Two-sided sign-flip test of the sum of paired differences, per column.

    Parameters
    ----------
    diffs : array-like, shape (n_rows, n_voxels)
        Paired differences per block of time (or per fold) and voxel.
    n_permutations : int, default=5000
        Random sign patterns; all ``2 ** n_rows`` when that is fewer (exact).
    random_state : int, Generator or None

    Returns
    -------
    statistic : ndarray (n_voxels,)
        Sum over rows.
    pvalues : ndarray (n_voxels,)
        ``#{|null| >= |statistic|} / n`` over the sign patterns (the identity
        pattern included, so never 0).

    Examples
    --------
    >>> d = np.array([[1.0, -1.0], [2.0, 1.0], [1.5, -0.5]])
    >>> stat, p = sign_flip_test(d)
    >>> stat.tolist(), p.tolist()
    ([4.5, -0.5], [0.25, 1.0])
    """
    d = np.asarray(diffs, dtype=float)
    if d.ndim == 1:
        d = d[:, None]
    rng = np.random.default_rng(random_state)
    signs = _signs(d.shape[0], n_permutations, rng)
    exact = 2 ** d.shape[0] <= n_permutations
    stat = d.sum(0)
    null = signs @ d
    tol = 1e-12 * np.maximum(1, np.abs(stat))
    hits = (np.abs(null) >= np.abs(stat) - tol).sum(0)
    if exact:
        return stat, hits / signs.shape[0]
    return stat, (1 + hits) / (1 + signs.shape[0])


def block_differences(pred_a, pred_b, bold, runs=None, block_length=None):
    """Per-block differences of squared errors (``B`` minus ``A``), per voxel.

    Blocks are contiguous stretches of ``block_length`` scans inside a run
    (default ``ceil(sqrt(n_run))``, as the permutation nulls use), long enough
    to carry most of the autocorrelation, so that sign-flipping whole blocks
    respects it. A positive sum means model ``A`` predicts better.

    Parameters
    ----------
    pred_a, pred_b, bold : array-like, shape (n_scans, n_voxels)
        Held-out predictions of the two models and the BOLD.
    runs : array-like (n_scans,) or None
    block_length : int or None

    Returns
    -------
    diffs : ndarray (n_blocks, n_voxels)
    sst : ndarray (n_voxels,)
        Total sum of squares of ``bold`` around its mean per run, so that
        ``diffs.sum(0) / sst`` is the difference of R^2 (A minus B).

    Examples
    --------
    >>> y = np.arange(8.0)[:, None]
    >>> d, sst = block_differences(y, y + 1, y, block_length=4)
    >>> d.ravel().tolist()
    [4.0, 4.0]
    """
    a, b, y = (np.asarray(v, dtype=float) for v in (pred_a, pred_b, bold))
    if not a.shape == b.shape == y.shape or y.ndim != 2:
        raise ValueError(
            f"pred_a, pred_b and bold must all be (n_scans, n_voxels); got {a.shape}, {b.shape}, {y.shape}"
        )
    n = y.shape[0]
    runs = np.zeros(n, int) if runs is None else np.asarray(runs)
    if runs.shape != (n,):
        raise ValueError(f"runs must have one label per scan ({n}), got shape {runs.shape}")
    err = (y - b) ** 2 - (y - a) ** 2
    rows, sst = [], np.zeros(y.shape[1])
    for r in dict.fromkeys(runs.tolist()):
        idx = np.flatnonzero(runs == r)
        length = default_block_length(idx.size) if block_length is None else int(block_length)
        yr = y[idx]
        sst += ((yr - yr.mean(0)) ** 2).sum(0)
        for start in range(0, idx.size, length):
            rows.append(err[idx[start:start + length]].sum(0))
    return np.vstack(rows), sst
