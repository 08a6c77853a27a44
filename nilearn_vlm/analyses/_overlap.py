"""Overlap of significant-voxel maps and a spatial block-permutation null."""

from __future__ import annotations

import numpy as np

from nilearn_vlm._utils import blas_threads
from nilearn_vlm.stats import default_block_length

KINDS = ("dice", "jaccard")


def _sets(maps):
    arr = np.asarray(maps)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"maps must be (n_maps, n_voxels), got shape {arr.shape}")
    return np.nan_to_num(arr.astype(float), nan=0.0) != 0


def _from_counts(inter, size_a, size_b, kind):
    if kind not in KINDS:
        raise ValueError(f"kind must be 'dice' or 'jaccard', got {kind!r}")
    total = size_a[..., :, None] + size_b[..., None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "dice":
            out = 2 * inter / total
        else:
            out = inter / (total - inter)
    return np.where(total > 0, out, np.nan)


def overlap_matrix(maps_a, maps_b=None, kind="dice"):
    """Pairwise Dice or Jaccard overlap of significant-voxel sets.

    Parameters
    ----------
    maps_a : array-like, shape (n_a, n_voxels)
        Non-zero where significant (a signed map counts both signs).
    maps_b : array-like, shape (n_b, n_voxels), optional
        Default ``maps_a``.
    kind : {"dice", "jaccard"}

    Returns
    -------
    ndarray, shape (n_a, n_b)
        NaN where both sets are empty.

    Examples
    --------
    >>> overlap_matrix([[1, 1, 0, 0], [0, 1, 1, 0]]).round(2).tolist()
    [[1.0, 0.5], [0.5, 1.0]]
    >>> overlap_matrix([[1, 1, 0]], [[0, 1, 1]], kind="jaccard").round(3).tolist()
    [[0.333]]
    """
    a = _sets(maps_a)
    b = a if maps_b is None else _sets(maps_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"maps_a has {a.shape[1]} voxels but maps_b {b.shape[1]}")
    with blas_threads(1):  # tiny output: threads only contend
        inter = a.astype(np.float32) @ b.T.astype(np.float32)
    return _from_counts(np.rint(inter), a.sum(1).astype(float), b.sum(1).astype(float), kind)


def spatial_block_permutations(n_voxels, n_permutations, block_length=None, random_state=None):
    """Circular block permutations of the voxel order.

    The voxel axis is rotated by a random offset, cut into blocks of
    ``block_length`` voxels and the blocks are shuffled
    (:func:`nilearn_vlm.stats.block_indices`, the time-series block
    permutation applied to the voxel order, for many draws at once). A permuted map keeps its size and
    its runs of neighbouring voxels along the masker's voxel order (within a
    slice row for volumes, vertex order for surfaces) while its position
    relative to other maps is destroyed.

    Parameters
    ----------
    n_voxels : int
    n_permutations : int
    block_length : int or None
        Default ``ceil(sqrt(n_voxels))`` (:func:`nilearn_vlm.stats.default_block_length`).
    random_state : int, Generator or None

    Returns
    -------
    ndarray of int, shape (n_permutations, n_voxels)
        Each row a permutation of ``range(n_voxels)``.

    Examples
    --------
    >>> p = spatial_block_permutations(10, 3, block_length=3, random_state=0)
    >>> p.shape, sorted(p[0].tolist()) == list(range(10))
    ((3, 10), True)
    """
    rng = np.random.default_rng(random_state)
    length = default_block_length(n_voxels) if block_length is None else int(block_length)
    if not 1 <= length <= n_voxels:
        raise ValueError(f"block_length must lie in [1, n_voxels={n_voxels}], got {block_length}")
    n_blocks = n_voxels // length
    offsets = rng.integers(n_voxels, size=n_permutations)
    orders = np.argsort(rng.random((n_permutations, n_blocks)), axis=1)
    return _block_indices_many(n_voxels, length, offsets, orders)


def _block_indices_many(n, length, offsets, orders):
    """:func:`nilearn_vlm.stats.block_indices` for many (offset, order) pairs at once."""
    t = np.arange(n)
    n_full = (n // length) * length
    src = np.broadcast_to(t, (len(offsets), n)).copy()
    src[:, :n_full] = np.take(orders, t[:n_full] // length, axis=1) * length + t[:n_full] % length
    src += offsets[:, None]
    src %= n
    return src


def overlap_null(maps, n_permutations=200, kind="dice", block_length=None, random_state=None,
                 independent=True, statistic=None):
    """Null distribution of pairwise overlaps under spatial block permutation.

    Parameters
    ----------
    maps : array-like, shape (n_maps, n_voxels)
    n_permutations : int, default=200
    kind : {"dice", "jaccard"}
    block_length : int or None
        See :func:`spatial_block_permutations`.
    random_state : int, Generator or None
    independent : bool, default=True
        Permute every map with its own permutation (the maps are made
        independent of each other). False permutes only the second map of
        each pair (column maps), as in ``overlap(maps, maps[:, perm])``.
    statistic : callable or None
        With ``independent``, ``statistic(permuted_sets)`` is evaluated on
        each permuted ``(n_maps, n_voxels)`` boolean array (e.g. voxel counts
        of the null), so that the permuted maps need not be kept.

    Returns
    -------
    null : ndarray of float32, shape (n_permutations, n_maps, n_maps)
        Overlap of map ``i`` with the permuted map ``j``.
    values : ndarray or None
        ``statistic`` of each permutation, stacked; None without ``statistic``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> maps = rng.random((3, 400)) < 0.2
    >>> null, sizes = overlap_null(maps, 50, random_state=0, statistic=lambda p: p.sum(axis=1))
    >>> bool(abs(np.nanmean(null[:, 0, 1]) - 0.2) < 0.05), bool(np.all(sizes == maps.sum(axis=1)))
    (True, True)
    """
    s = _sets(maps)
    m, v = s.shape
    rng = np.random.default_rng(random_state)
    size = s.sum(1).astype(float)
    if statistic is not None and not independent:
        raise ValueError("statistic= needs independent=True (every map permuted)")
    null = np.empty((n_permutations, m, m), dtype=np.float32)
    values = [] if statistic is not None else None
    sf = s.astype(np.float32)
    # (n_maps x n_voxels) @ (n_voxels x n_maps) has a tiny output: BLAS threads only contend
    with blas_threads(1):
        _null_loop(s, sf, size, null, values, statistic, independent, n_permutations, block_length, kind, rng)
    return null, (None if values is None else np.asarray(values))


def _null_loop(s, sf, size, null, values, statistic, independent, n_permutations, block_length, kind, rng):
    m, v = s.shape
    if independent:
        for i in range(n_permutations):
            perms = spatial_block_permutations(v, m, block_length, rng)
            p = np.take_along_axis(s, perms, axis=1)
            if statistic is not None:
                values.append(statistic(p))
            pf = p.astype(np.float32)
            # map i fixed against permuted j; the diagonal compares two independent copies
            null[i] = _from_counts(np.rint(sf @ pf.T), size, size, kind)
    else:
        perms = spatial_block_permutations(v, n_permutations, block_length, rng)
        for i in range(n_permutations):
            null[i] = _from_counts(np.rint(sf @ sf[:, perms[i]].T), size, size, kind)
