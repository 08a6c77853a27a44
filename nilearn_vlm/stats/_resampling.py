"""Draws of time-series resamplings: circular shifts, block permutations, phases.

Every draw is made per run, so a resampled time point never leaves its run.
The draws are plain arrays, stored on the result so a user (or a test) can
rebuild each resampled series by hand.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

#: Null methods of :func:`nilearn_vlm.stats.permutation_null`.
NULL_METHODS = ("shift", "block", "phase", "iid")

#: Multiple of the correlation time giving the automatic block length
#: (:func:`auto_block_length`).
BLOCK_FACTOR = 20.0


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


def autocorrelation(z, max_lag=None):
    """Mean autocorrelation over the columns of ``z`` at lags ``0 ... max_lag``.

    The usual biased estimator (``sum_t z[t] z[t + k] / sum_t z[t]^2`` of the
    centred columns, by FFT), averaged over the columns that are not constant.

    Parameters
    ----------
    z : array-like of shape (n_samples,) or (n_samples, n_columns)
    max_lag : int, optional
        Default ``n_samples // 2``.

    Returns
    -------
    ndarray of shape (max_lag + 1,)
        ``rho[0] = 1`` (all zeros when every column is constant).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> e = rng.standard_normal(20000)
    >>> z = e.copy()
    >>> for t in range(1, z.size):
    ...     z[t] = 0.5 * z[t - 1] + e[t]
    >>> bool(abs(autocorrelation(z, 2)[1] - 0.5) < 0.02)
    True
    """
    z = np.asarray(z, dtype=np.float64)
    z = z[:, None] if z.ndim == 1 else z
    n = z.shape[0]
    max_lag = n // 2 if max_lag is None else min(int(max_lag), n - 1)
    z = z - z.mean(0)
    nfft = 1 << int(np.ceil(np.log2(2 * n)))
    spec = np.fft.rfft(z, n=nfft, axis=0)
    acov = np.fft.irfft(spec * np.conj(spec), n=nfft, axis=0)[: max_lag + 1]
    ok = acov[0] > 1e-12 * max(float(acov[0].max()), 1e-300)
    if not ok.any():
        return np.zeros(max_lag + 1)
    return (acov[:, ok] / acov[0, ok]).mean(1)


def correlation_time(rho, window=5.0):
    """Integrated autocorrelation time ``1 + 2 sum_{k=1}^{M} rho[k]``, Sokal's window.

    ``M`` is the smallest lag with ``M >= window * tau(M)`` (Sokal 1997;
    the estimate of ``emcee``), which stops the sum before the noise of the
    estimated autocorrelation at long lags dominates.

    Parameters
    ----------
    rho : array-like of shape (n_lags,)
        Autocorrelation at lags 0, 1, ... (``rho[0] = 1``).
    window : float, default=5.0

    Returns
    -------
    float
        At least 1 (white noise: 1; AR(1) with coefficient ``phi``:
        ``(1 + phi) / (1 - phi)``).

    Examples
    --------
    >>> phi = 0.6
    >>> round(correlation_time(phi ** np.arange(200)), 2)
    4.0
    """
    rho = np.asarray(rho, dtype=np.float64)
    taus = 1.0 + 2.0 * np.cumsum(rho[1:])
    m = np.arange(1, rho.size)
    stop = np.flatnonzero(m >= window * taus)
    tau = taus[stop[0]] if stop.size else taus[-1] if taus.size else 1.0
    return float(max(tau, 1.0))


def auto_block_length(x, y, factor=None):
    """Block length of a run from the autocorrelation of the regressor and the BOLD.

    A block permutation breaks the pairs of scans that straddle block
    boundaries; the null loses their covariance, which is set by the product
    of the two autocorrelations. The rule:

    ``L = clip(ceil(factor * (tau_xy - 1)), ceil(sqrt(n)), n // 4)``

    where ``tau_xy = 1 + 2 sum_k rho_x(k) rho_y(k)`` is the integrated
    autocorrelation time of that product (Sokal's window,
    :func:`correlation_time`), ``rho_x`` the autocorrelation of the regressor
    (averaged over columns for per-voxel predictions), ``rho_y`` that of the
    BOLD averaged over voxels, and ``factor`` :data:`BLOCK_FACTOR` (20). The
    floor keeps today's ``sqrt(n)`` rule for weakly correlated data; the cap
    keeps at least 4 blocks. When ``factor * (tau_xy - 1)`` exceeds the cap the
    runs are too short for any block length to remove the bias, and a
    warning says so.

    Measured (``benchmarks/scores.py``; 4 runs x 300 scans, Glover-HRF
    regressors, AR(1) BOLD, a fresh rotation per draw): see the figures in
    ``docs/stats.md``. Longer blocks than needed cost nothing measurable once
    each draw has its own rotation; too short ones leave the null too narrow
    when both series are smooth (AR(1) 0.8 regressors and BOLD: 6.4% false
    positives at 5% with the ``sqrt(n)`` blocks of 18 scans, 5.4% with 75).

    Parameters
    ----------
    x : ndarray of shape (n,), (n, 1) or (n, n_columns)
        The run's regressor (or predictions), cleaned.
    y : ndarray of shape (n, n_voxels)
        The run's BOLD (a sample of voxels), cleaned.
    factor : float, optional
        Default :data:`BLOCK_FACTOR`.

    Returns
    -------
    int

    Examples
    --------
    >>> from scipy.signal import lfilter
    >>> rng = np.random.default_rng(0)
    >>> white = rng.standard_normal((300, 50))
    >>> auto_block_length(white[:, 0], white)  # no autocorrelation: the sqrt(n) floor
    18
    >>> smooth = lfilter([1.0], [1.0, -0.8], white, axis=0)  # AR(1) 0.8: tau_xy about 4.6
    >>> 60 <= auto_block_length(smooth[:, 0], smooth) <= 75
    True
    """
    factor = BLOCK_FACTOR if factor is None else float(factor)
    n = np.shape(y)[0]
    tau = correlation_time(autocorrelation(x) * autocorrelation(y))
    hi = max(2, n // 4)
    want = int(np.ceil(factor * (tau - 1.0)))
    if want > hi:
        warnings.warn(
            f"runs of {n} scans are too short for a calibrated block permutation: the regressor and "
            f"the BOLD share a correlation time of {tau:.1f} scans, so blocks of {want} scans would be "
            f"needed and at most {hi} fit (4 blocks). Use longer runs or fewer autocorrelated regressors; "
            "false positives may exceed the nominal rate.",
            UserWarning, stacklevel=4,
        )
    return int(np.clip(want, default_block_length(n), hi))


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

    The regressor is rotated circularly by an offset ``o`` (a fresh random
    offset per draw when ``n_offsets`` is None, else drawn from a pool of
    ``n_offsets`` random offsets), cut into ``B = n // L`` blocks of ``L``
    time points, and the blocks are shuffled; the last ``n - B * L`` rotated
    time points keep their place. The resampled regressor is
    ``x[(order[t // L] * L + t % L + o) % n]`` for ``t < B * L`` and
    ``x[(t + o) % n]`` after (see :func:`block_indices`).

    One shared offset makes the null anti-conservative: every draw then
    comes from the same rotation, whose mean over block orders is a random
    shift away from the observed pairing's (white noise, 300 scans, blocks of
    18: 6.9% false positives at 5% with one offset, 5.0% with one per draw;
    blocks of 75: 11.3% and 5.0%).

    Returns
    -------
    offsets : ndarray of shape (n_permutations,)
    orders : ndarray of shape (n_permutations, B)
    """
    n_blocks = n // block_length
    if n_blocks < 2:
        raise ValueError(
            f"block_length={block_length} leaves fewer than 2 blocks in a run of {n} time "
            "points; use a shorter block_length (default: from the data's autocorrelation)"
        )
    if n_offsets is None:
        offsets = rng.integers(0, n, size=n_permutations)
    else:
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
