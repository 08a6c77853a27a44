"""Draws of time-series resamplings: circular shifts, block permutations, phases.

Every draw is made per run, so a resampled time point never leaves its run.
The draws are plain arrays, stored on the result so a user (or a test) can
rebuild each resampled series by hand.
"""

from __future__ import annotations

import math

import numpy as np

#: Null methods of :func:`nilearn_vlm.stats.permutation_null`.
NULL_METHODS = ("shift", "block", "phase", "iid")


def default_block_length(n_samples):
    """Rule of thumb for the block length (and minimum circular shift).

    ``ceil(sqrt(n_samples))``: a run of 300 scans gives blocks of 18 scans,
    a run of 3,000 scans blocks of 55 scans (54 blocks). The bias of a block
    permutation null shrinks as ``tau / L`` (``tau`` the correlation time of
    the two series, ``L`` the block length) while the number of blocks
    ``n / L`` must stay large enough for a smooth null; ``sqrt(n)`` makes both
    grow together. For HRF-convolved regressors at TR 1-2 s (correlation time of
    a few scans) this keeps blocks several times longer than the correlation
    time from about 100 scans per run on. Lengthen the blocks (or use circular
    shifts) when the regressor is smoother than that.

    Parameters
    ----------
    n_samples : int
        Number of time points in the run.

    Returns
    -------
    int
        Block length in time points (at least 1).

    Examples
    --------
    >>> default_block_length(300), default_block_length(3000)
    (18, 55)
    """
    return max(1, int(math.ceil(math.sqrt(n_samples))))


def check_runs(runs, n_samples):
    """Index arrays of the runs, in time order.

    Parameters
    ----------
    runs : None or array-like of shape (n_samples,)
        A run label per time point (None: one run).
    n_samples : int
        Number of time points.

    Returns
    -------
    list of ndarray
        Time indices of each run, runs in order of first appearance.
    """
    if runs is None:
        return [np.arange(n_samples)]
    runs = np.asarray(runs)
    if runs.ndim != 1 or runs.shape[0] != n_samples:
        raise ValueError(
            f"runs must hold one run label per time point, shape ({n_samples},); got shape "
            f"{runs.shape}. Pass e.g. np.repeat(np.arange(n_runs), n_scans_per_run)."
        )
    _, first, inverse = np.unique(runs, return_index=True, return_inverse=True)
    order = np.argsort(first)
    return [np.flatnonzero(inverse == k) for k in order]


def draw_shifts(run_lengths, n_permutations, min_shift, rng):
    """Circular shifts per run, avoiding shifts closer than ``min_shift`` to 0.

    A shift ``s`` of a run pairs BOLD time ``t`` with regressor time
    ``(t - s) mod n`` (``np.roll(x, s)``). With one run and at least as many
    permutations asked as allowed shifts, every allowed shift is used once
    (an exact enumeration); otherwise shifts are drawn independently per run
    (without replacement when there is one run).

    Returns
    -------
    shifts : ndarray of shape (n_draws, n_runs)
    """
    allowed = []
    for n in run_lengths:
        m = min(int(min_shift[len(allowed)]), (n - 1) // 2)
        a = np.arange(max(m, 1), n - max(m, 1) + 1)
        if a.size == 0:
            raise ValueError(
                f"a run of {n} time points allows no circular shift of at least {m}; "
                "lower min_shift or use longer runs"
            )
        allowed.append(a)
    if len(allowed) == 1:
        a = allowed[0]
        if n_permutations >= a.size:
            return a[:, None].copy()
        return rng.choice(a, size=n_permutations, replace=False)[:, None]
    return np.stack([rng.choice(a, size=n_permutations) for a in allowed], axis=1)


def draw_blocks(n, block_length, n_permutations, n_offsets, rng):
    """Circular block permutation draws for one run of ``n`` time points.

    The regressor is rotated circularly by an offset ``o`` (drawn from a pool
    of ``n_offsets`` random offsets), cut into ``B = n // L`` blocks of ``L``
    time points, and the blocks are shuffled; the last ``n - B * L`` rotated
    time points keep their place. The resampled regressor is
    ``x[(order[t // L] * L + t % L + o) % n]`` for ``t < B * L`` and
    ``x[(t + o) % n]`` after (see :func:`block_indices`).

    Returns
    -------
    offsets : ndarray of shape (n_permutations,)
    orders : ndarray of shape (n_permutations, B)
    """
    n_blocks = n // block_length
    if n_blocks < 2:
        raise ValueError(
            f"block_length={block_length} leaves fewer than 2 blocks in a run of {n} time "
            "points; use a shorter block_length (default: ceil(sqrt(n_run)))"
        )
    pool = rng.integers(0, n, size=max(1, int(n_offsets)))
    offsets = pool[rng.integers(0, pool.size, size=n_permutations)]
    orders = np.argsort(rng.random((n_permutations, n_blocks)), axis=1)
    return offsets, orders


def block_indices(n, block_length, offset, order):
    """Time index of the regressor paired with each BOLD time point.

    Parameters
    ----------
    n : int
        Run length.
    block_length : int
        Block length ``L``.
    offset : int
        Circular rotation ``o``.
    order : ndarray of shape (n // L,)
        Block ``b`` of the BOLD is paired with rotated regressor block
        ``order[b]``.

    Returns
    -------
    ndarray of shape (n,)
        Index into the run's regressor.

    Examples
    --------
    >>> block_indices(7, 3, 0, np.array([1, 0]))
    array([3, 4, 5, 0, 1, 2, 6])
    """
    t = np.arange(n)
    n_full = (n // block_length) * block_length
    src = t.copy()
    src[:n_full] = order[t[:n_full] // block_length] * block_length + t[:n_full] % block_length
    return (src + offset) % n


def draw_phases(n, n_permutations, rng):
    """Random Fourier phases for one run (shared by all voxels).

    The constant term keeps phase 0 and, for even ``n``, the Nyquist term a
    random sign, so surrogates are real with the same mean and the same
    power spectrum (hence the same variance) as the original series.

    Returns
    -------
    ndarray of shape (n_permutations, n // 2 + 1)
    """
    n_freq = n // 2 + 1
    theta = rng.uniform(0.0, 2 * np.pi, size=(n_permutations, n_freq))
    theta[:, 0] = 0.0
    if n % 2 == 0:
        theta[:, -1] = np.pi * rng.integers(0, 2, size=n_permutations)
    return theta


def draw_iid(n, n_permutations, rng):
    """Independent shuffles of one run's time points (ignores autocorrelation)."""
    return np.argsort(rng.random((n_permutations, n)), axis=1)
