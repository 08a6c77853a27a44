"""Permutation nulls for per-voxel scores of time series.

The score is computed within runs: in run ``k`` the run's nuisance
(constant, linear trend, cosine drifts, confounds) is projected out of ``x``
and ``y``, and with ``c_k = sum_t x_k[t] y_k[t]`` on the cleaned run

* Pearson ``r_k = c_k / (|x_k| |y_k|)``,
* ``R2_k = 1 - |y_k - x_k|^2 / |y_k|^2 = (2 c_k - |x_k|^2) / |y_k|^2``;

the score is the mean of ``r_k`` (or ``R2_k``) over runs. Each is an affine
function of the run's cross-product. Circular shifts, block permutations and
phase randomisation of the cleaned ``x_k`` keep ``|x_k|``, so a null score is
the score of null cross-products, and the nulls of all voxels come from a few
large array operations per run:

* circular shifts: the cross-correlation at every lag, by FFT, per run;
* phase randomisation: ``c = sum_f w_f Re(X_f conj(Y_f) exp(i theta_f))``, one
  matrix product of the random phases with the cross-spectra;
* block permutation: the circular cross-correlation of every BOLD block with
  the whole regressor (one FFT per block), then ``c = sum_b XC_b[lag_b]`` for
  all permutations and offsets at once (a sparse matrix product).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn import get_config

from nilearn_vlm._utils import as_columns, column_scale, is_flat, run_basis, warn_unscored
from nilearn_vlm.stats._cross import cross_block, cross_iid, cross_phase, cross_shift
from nilearn_vlm._utils import pearson_r as _pearson_r
from nilearn_vlm.stats._resampling import (
    NULL_METHODS,
    auto_block_length,
    check_runs,
    default_block_length,
    draw_blocks,
    draw_iid,
    draw_phases,
    draw_shifts,
)

STATISTICS = ("r", "r2")
ALTERNATIVES = ("greater", "less", "two-sided")


@dataclass
class PermutationResult:
    """Observed per-voxel scores with their permutation null.

    Attributes
    ----------
    statistic : ndarray of shape (n_voxels,)
        Observed score per voxel: the mean over runs of the per-run Pearson r
        (or R2) of the cleaned series; NaN for unscored voxels.
    pvalues : ndarray of shape (n_voxels,)
        Uncorrected p-values, ``(1 + #{null >= observed}) / (1 + n_permutations)``
        (NaN for unscored voxels).
    pvalues_fwe : ndarray of shape (n_voxels,)
        Family-wise corrected p-values from the null maxima (max-statistic).
    null_max : ndarray of shape (n_permutations,)
        Maximum over voxels of each null map (of ``|score|`` when two-sided,
        of ``-score`` for ``alternative="less"``).
    null : ndarray of shape (n_permutations, n_voxels) or None
        Every null map, when ``return_null=True``.
    method, statistic_name, alternative : str
        What was computed.
    n_permutations : int
        Number of null maps actually drawn (an exhaustive set of circular
        shifts may hold fewer than asked).
    block_length : list of int or None
        Block length (``"block"``) or minimum shift (``"shift"``) per run.
    n_unscored : int
        Voxels flat in every run (variance at or below the floor relative to
        their scale): NaN scores and p-values, never significant, left out of
        the null maxima.
    draws : list
        The resampling of each run: shifts ``(n_permutations,)`` for
        ``"shift"``, ``(offsets, orders)`` for ``"block"`` (see
        :func:`nilearn_vlm.stats.block_indices`), phases
        ``(n_permutations, n_run // 2 + 1)`` for ``"phase"``, index arrays for
        ``"iid"``.
    """

    statistic: np.ndarray
    pvalues: np.ndarray
    pvalues_fwe: np.ndarray
    null_max: np.ndarray
    null: np.ndarray | None
    method: str
    statistic_name: str
    alternative: str
    n_permutations: int
    block_length: list | None = None
    draws: list = field(default_factory=list, repr=False)
    n_unscored: int = 0

    def significant(self, alpha=0.05, correction="fwe"):
        """Boolean map of significant voxels.

        Parameters
        ----------
        alpha : float, default=0.05
            Level of the test.
        correction : {"fwe", "fdr", "none"}, default="fwe"
            Max-statistic family-wise correction, Benjamini-Hochberg FDR, or
            none.

        Returns
        -------
        ndarray of bool, shape (n_voxels,)
        """
        if correction == "fwe":
            return self.pvalues_fwe <= alpha
        if correction == "fdr":
            from nilearn_vlm.stats._corrections import fdr

            return fdr(self.pvalues, alpha=alpha)[0]
        if correction == "none":
            return self.pvalues <= alpha
        raise ValueError(f"correction must be 'fwe', 'fdr' or 'none'; got {correction!r}")


def _check_xy(x, y):
    x, y = as_columns(x, y)
    if y.shape[0] < 4:
        raise ValueError(f"need at least 4 time points, got {y.shape[0]}")
    for name, a in (("x", x), ("y", y)):
        if not np.issubdtype(a.dtype, np.number):
            raise TypeError(f"{name} must be numeric, got dtype {a.dtype}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN or infinite values; clean or mask them first")
    return x, y


def pearson_r(x, y):
    """Pearson correlation per voxel, vectorised.

    :func:`nilearn_vlm._utils.pearson_r` (the one implementation, also behind
    :func:`nilearn_vlm.encoding.pearson_per_voxel` and the observed scores of
    :func:`permutation_null`) with checked input: numeric, finite, at least 4
    time points.

    Parameters
    ----------
    x : array-like of shape (n_samples,), (n_samples, 1) or (n_samples, n_voxels)
        One regressor shared by all voxels, or one prediction per voxel.
    y : array-like of shape (n_samples, n_voxels)
        BOLD time series.

    Returns
    -------
    ndarray of shape (n_voxels,)
        Correlation per voxel (0 where a series is constant), computed in
        float64 by chunks of voxels.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.standard_normal((50, 3))
    >>> r = pearson_r(y[:, 0], y)
    >>> bool(np.isclose(r[0], 1.0))
    True
    """
    return _pearson_r(*_check_xy(x, y))


def _per_voxel_items(method, n, n_perm, length_min):
    items = 6 * n + 4 * n_perm  # run blocks in float64, null sums, counts
    if method in ("shift", "phase"):
        items += 6 * n
    elif method == "block":
        items += (n // length_min + 2) * n + 6 * n
    return items


def _oriented(s, alternative):
    if alternative == "two-sided":
        return np.abs(s)
    return -s if alternative == "less" else s


def _clean_run(A, Q):
    """One run's columns in float64 with the run's nuisance projected out; their scale and norm."""
    A = np.asarray(A, dtype=np.float64)
    scale = column_scale(A)
    A = A - Q @ (Q.T @ A)
    return A, scale, np.sqrt((A**2).sum(0))


def _run_terms(c, nx, x_ok, ny, y_ok, statistic):
    """``a, b`` of the run's statistic ``a * c + b`` (0 where the BOLD is flat)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if statistic == "r":
            a = np.where(y_ok & x_ok, 1.0 / (nx * ny), 0.0)
            b = np.zeros_like(a)
        else:
            a = np.where(y_ok, 2.0 / ny**2, 0.0)
            b = np.where(y_ok & x_ok, -(nx**2) / ny**2, 0.0)
    return a, b


def _null_chunk(x, y, run_idx, bases, x_runs, draws, per_run, method, n_perm, statistic,
                alternative, dtype, x_dtype, y_dtype, return_null):
    """Observed scores and the null of one voxel chunk, run by run.

    Returns the observed statistic, exceedance counts, null maps (or None),
    null maxima and the unscored voxels.
    """
    n_vox = y.shape[1]
    total = np.zeros((n_perm, n_vox), dtype=dtype)
    obs = np.zeros(n_vox)
    n_scored = np.zeros(n_vox, dtype=np.int64)
    for k, idx in enumerate(run_idx):
        m = bases[k].shape[0]
        yk, y_scale, ny = _clean_run(y[idx], bases[k])
        y_ok = ~is_flat(ny**2, y_scale, m, y_dtype)
        if x_runs is not None:
            xk, nx, x_ok, _ = x_runs[k]
        else:
            xk, x_scale, nx = _clean_run(x[idx], bases[k])
            x_ok = ~is_flat(nx**2, x_scale, m, x_dtype)
        c = (xk * yk).sum(0)
        a, b = _run_terms(c, nx, x_ok, ny, y_ok, statistic)
        obs += a * c + b
        n_scored += y_ok
        xr, yr = xk.astype(dtype), yk.astype(dtype)
        cross = _cross(method, xr, yr, draws[k], None if per_run is None else per_run[k])
        # the resampled regressor, cleaned again: its nuisance part adds nothing to the
        # cross-product (the BOLD is cleaned) but leaves its norm
        if x_runs is not None:
            proj = x_runs[k][3]
        else:
            proj = _nuisance_norms(method, xr, bases[k], draws[k], None if per_run is None else per_run[k])
        nxs = np.sqrt(np.maximum(nx.astype(dtype) ** 2 - proj, 0))
        with np.errstate(invalid="ignore", divide="ignore"):
            if statistic == "r":
                term = np.where(x_ok & y_ok, cross / (nxs * ny.astype(dtype)), 0)
            else:
                term = np.where(y_ok, (2 * cross - np.where(x_ok, nxs**2, 0)) / (ny**2).astype(dtype), 0)
        total += np.nan_to_num(term.astype(dtype, copy=False), nan=0.0)
        del cross, xr, yr, yk, term, nxs, proj
    unscored = n_scored == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        stat = np.where(unscored, np.nan, obs / np.maximum(n_scored, 1))
        if statistic == "r":
            stat = np.clip(stat, -1.0, 1.0)
    total /= np.maximum(n_scored, 1).astype(dtype)
    o = _oriented(total, alternative)
    o[:, unscored] = -np.inf
    score = _oriented(stat, alternative)
    tol = 64 * np.finfo(dtype).eps * np.maximum(1.0, np.abs(np.nan_to_num(score)))
    counts = (o >= (score - tol)).sum(0)
    null = None
    if return_null:
        null = total
        null[:, unscored] = np.nan
    return stat, counts, null, o.max(1)


def _cross(method, xr, yr, draws, length):
    """Null cross-products of one run (n_draws, n_voxels) for every resampling."""
    if method == "shift":
        return cross_shift(xr, yr, draws)
    if method == "phase":
        return cross_phase(xr, yr, draws)
    if method == "block":
        return cross_block(xr, yr, length, *draws)
    return cross_iid(xr, yr, draws)


def _nuisance_norms(method, xr, Q, draws, length):
    """``|Q^T x*|^2`` for every resampled ``x*`` of the run (n_draws, n_columns of x).

    The part of the resampled (cleaned) regressor that lies in the run's
    nuisance space: a circular shift, a block permutation or new phases of a
    cleaned series are no longer orthogonal to the trend and cosine drifts.
    """
    Qd = Q.astype(xr.dtype)
    out = 0
    for j in range(Q.shape[1]):
        q = np.broadcast_to(Qd[:, j:j + 1], xr.shape) if xr.shape[1] > 1 else Qd[:, j:j + 1]
        if xr.shape[1] > 1:
            q = np.ascontiguousarray(q)
        out = out + _cross(method, xr, q, draws, length) ** 2
    return out


def _fwe_pvalues(score, null_max, tol):
    srt = np.sort(null_max)
    n_ge = srt.size - np.searchsorted(srt, score - tol, side="left")
    return (1.0 + n_ge) / (1.0 + srt.size)


def permutation_null(
    x,
    y,
    *,
    method="shift",
    n_permutations=1000,
    runs=None,
    statistic="r",
    alternative="greater",
    detrend=True,
    high_pass=None,
    t_r=None,
    confounds=None,
    block_length=None,
    min_shift=None,
    n_offsets=None,
    masker=None,
    return_null=False,
    dtype=np.float32,
    working_memory=None,
    random_state=None,
    verbose=0,
    n_jobs=None,
):
    """Per-voxel scores within runs and their permutation null, respecting autocorrelation.

    **The statistic** (the score of :meth:`nilearn_vlm.VoxelEncoder.score`
    and of the pipeline): per run, the run's constant, linear trend
    (``detrend``), cosine drifts (``high_pass``) and ``confounds`` are
    projected out of the regressor (or prediction) ``x`` and the BOLD ``y``
    alike, using that run's scans only; the Pearson r (or R^2) is computed
    within each run, and the score is the mean over runs, each run weighted
    equally. Without ``runs`` the scans are one run. A run's baseline or drift
    never enters the score. A run in which a voxel is flat (variance at or
    below the floor relative to its scale) is left out of that voxel's mean;
    a voxel flat in every run has a NaN score and p-values, is counted in
    ``n_unscored`` and is left out of the null maxima.

    **The null**: the cleaned regressor is resampled in time, within each
    run, the BOLD stays in place, and the statistic of every voxel is
    recomputed for every resampling (the resamplings keep each run's norm of
    the regressor; the resampled regressor is cleaned again, which changes its
    norm, not its cross-product with the cleaned BOLD: the null statistic is
    exactly the statistic of the resampled regressor). Methods:

    ``"shift"``
        Circular shifts of each run by at least ``min_shift`` scans: all
        shifts at once by FFT cross-correlation. Keeps the autocorrelation of
        both series exactly (up to the wrap-around). With one run, at most
        ``n_run - 2 * min_shift + 1`` distinct nulls exist; asking for more uses
        each once.
    ``"block"``
        Circular block permutation: per run the regressor is rotated by a
        random offset, cut into blocks of ``block_length`` scans and the blocks
        are shuffled (:func:`~nilearn_vlm.stats.block_indices`). Keeps the
        autocorrelation within blocks; the default block length is derived
        from the data's autocorrelation
        (:func:`~nilearn_vlm.stats.auto_block_length`).
    ``"phase"``
        Phase randomisation: the Fourier phases of the regressor are replaced
        by random phases, per run; its power spectrum (so its autocorrelation),
        mean and variance are kept. The same random phases serve every voxel
        (and every column of a per-voxel prediction), so the spatial correlation
        of the null maps is that of the data, as the max-statistic and cluster
        corrections need. Assumes a stationary Gaussian-like regressor.
    ``"iid"``
        Independent shuffles of the scans. **Not valid for fMRI time series**:
        it ignores autocorrelation and is anti-conservative; offered to show
        that.

    Parameters
    ----------
    x : array-like of shape (n_samples,), (n_samples, 1) or (n_samples, n_voxels)
        A regressor shared by all voxels (a unit's time series: unit-voxel
        association), or one prediction per voxel (encoding scores).
    y : array-like of shape (n_samples, n_voxels)
        BOLD time series (test set).
    method : {"shift", "block", "phase", "iid"}, default="shift"
        Null method (see above).
    n_permutations : int, default=1000
        Number of null maps.
    runs : array-like of shape (n_samples,), optional
        Run label per scan: the statistic is computed within runs and
        resampling never moves a scan out of its run.
    statistic : {"r", "r2"}, default="r"
        Per-run Pearson correlation, or per-run coefficient of determination
        ``1 - |y_k - x_k|^2 / |y_k|^2`` of the cleaned ``x`` as a prediction of
        the cleaned ``y``; averaged over runs.
    alternative : {"greater", "less", "two-sided"}, default="greater"
        Direction of the test; two-sided compares ``|score|``.
    detrend : bool, default=True
        Remove each run's linear trend (each run's constant always is).
    high_pass : float, optional
        Also remove each run's cosine drifts below this frequency (Hz),
        as :class:`~nilearn_vlm.VoxelEncoder` does; needs ``t_r``.
    t_r : float, optional
        Repetition time (seconds).
    confounds : array-like of shape (n_samples, n_confounds), optional
        Projected out of ``x`` and ``y``, run by run.
    block_length : int, optional
        Block length in scans for ``"block"``, one for all runs. Default:
        per run, :func:`~nilearn_vlm.stats.auto_block_length` of the cleaned
        regressor and BOLD.
    min_shift : int, optional
        Smallest circular shift for ``"shift"`` (and its mirror
        ``n_run - min_shift``), so that nulls do not hold the effect itself.
        Default :func:`~nilearn_vlm.stats.default_block_length`,
        ``ceil(sqrt(n_run))``.
    n_offsets : int, optional
        Number of distinct random rotations per run for ``"block"``, drawn
        into a pool the draws pick from. Default: a fresh rotation per draw
        (one shared rotation makes the null anti-conservative, see
        :func:`~nilearn_vlm.stats._resampling.draw_blocks`); the cost does not
        depend on it.
    masker : fitted nilearn masker, optional
        ``NiftiMasker`` or ``SurfaceMasker`` turning ``y`` (a 4-D image or
        surface image) into ``(n_samples, n_voxels)``, and ``x`` too when it is
        an image of per-voxel predictions. Map results back with
        ``masker.inverse_transform(result.statistic)``.
    return_null : bool, default=False
        Keep all null maps (``n_permutations * n_voxels`` values).
    dtype : numpy dtype, default=np.float32
        Precision of the null computations (the cleaning and the observed
        scores are computed in float64).
    working_memory : float, optional
        Memory budget in MiB for one chunk of voxels (default: scikit-learn's
        ``working_memory``, 1024 MiB). ``"shift"`` and ``"block"`` use at
        most 64 MiB per chunk, which runs faster. The output arrays are extra.
    random_state : int, Generator or None
        Seed of the draws.
    verbose : int, default=0
        Progress bar over voxel chunks when > 0.
    n_jobs : int or None, default=None
        Voxel chunks as parallel tasks (threads here, Dask tasks inside
        :func:`nilearn_vlm.parallel.use_dask`), each within
        ``working_memory``. None: 1 unless a joblib context says otherwise.
        Results are identical to one job's.

    Returns
    -------
    PermutationResult
        Scores, p-values (with the +1 correction), FWE p-values, the null
        maxima and the count of unscored voxels.

    Notes
    -----
    The draws depend only on ``random_state``, the run lengths and the
    method (and, for ``"block"`` with the automatic length, on the block
    lengths), so calls with the same seed share their resamplings. For a
    family of maps (e.g. many units against the same voxels), run one call per
    unit with the same ``random_state`` and ``block_length``, take the
    element-wise maximum of the ``null_max`` arrays and correct every unit's
    map against it with :func:`~nilearn_vlm.stats.fwe_max`: a family-wise
    correction over units and voxels together.

    Cost per run of ``n`` scans and ``v`` voxels: the cleaning ``O(v n k)``
    (``k`` nuisance regressors); shifts ``O(v n log n)`` plus the gather of the
    nulls; phases one ``(n_permutations, n) @ (n, v)`` product; blocks
    one FFT cross-correlation per block, ``O(v n^2 / L log n)``, and
    ``O(n_permutations v n / L)`` to gather them.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(200)
    >>> y = rng.standard_normal((200, 100))
    >>> y[:, 0] += x
    >>> y += 50.0 * (np.arange(200) >= 100)[:, None]  # two runs, two baselines
    >>> res = permutation_null(x, y, method="shift", runs=np.repeat([0, 1], 100), random_state=0)
    >>> bool(res.pvalues_fwe[0] < 0.05), res.pvalues.shape, res.n_unscored
    (True, (100,), 0)
    """
    if method not in NULL_METHODS:
        raise ValueError(f"method must be one of {NULL_METHODS}; got {method!r}")
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}; got {statistic!r}")
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}; got {alternative!r}")
    if int(n_permutations) != n_permutations or n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive integer; got {n_permutations!r}")
    n_permutations = int(n_permutations)
    checks = (("block_length", block_length), ("min_shift", min_shift), ("n_offsets", n_offsets))
    for name, val in checks:
        if val is not None and (int(val) != val or val < 1):
            raise ValueError(
                f"{name} must be a positive integer (scans) or None for the default; got {val!r}"
            )
    if masker is not None:
        from nilearn_vlm.stats._group import _image_to_array

        y = _image_to_array(y, masker)
        if not isinstance(x, np.ndarray) and not isinstance(x, list | tuple):
            x = _image_to_array(x, masker)
    x, y = _check_xy(x, y)
    n, n_vox = y.shape
    rng = np.random.default_rng(random_state)
    run_idx = check_runs(runs, n)
    lengths = [r.size for r in run_idx]
    # contiguous runs as slices: views instead of copies of each chunk
    run_idx = [slice(r[0], r[-1] + 1) if np.all(np.diff(r) == 1) else r for r in run_idx]
    dtype = np.dtype(dtype)
    conf = None if confounds is None else np.asarray(confounds, dtype=np.float64).reshape(n, -1)
    bases = [run_basis(m, detrend, high_pass, t_r, None if conf is None else conf[idx])
             for m, idx in zip(lengths, run_idx)]
    x_runs = None
    if x.shape[1] == 1:  # one regressor: cleaned once
        x_runs = []
        for k, idx in enumerate(run_idx):
            xk, scale, nx = _clean_run(x[idx], bases[k])
            x_runs.append([xk, nx, ~is_flat(nx**2, scale, lengths[k], x.dtype), None])

    # draws, per run
    per_run = None
    if method == "shift":
        per_run = [default_block_length(m) if min_shift is None else int(min_shift) for m in lengths]
        shifts = draw_shifts(lengths, n_permutations, per_run, rng)
        draws = [shifts[:, k] for k in range(len(lengths))]
        n_permutations = shifts.shape[0]
    elif method == "block":
        if block_length is None:
            per_run = [auto_block_length(x_runs[k][0] if x_runs is not None else _sample_run(x, idx, bases[k]),
                                         _sample_run(y, idx, bases[k]))
                       for k, idx in enumerate(run_idx)]
        else:
            per_run = [int(block_length)] * len(lengths)
        draws = [draw_blocks(m, b, n_permutations, n_offsets, rng) for m, b in zip(lengths, per_run)]
    elif method == "phase":
        draws = [draw_phases(m, n_permutations, rng) for m in lengths]
    else:
        draws = [draw_iid(m, n_permutations, rng) for m in lengths]

    if x_runs is not None:
        for k in range(len(run_idx)):
            length = None if per_run is None else per_run[k]
            x_runs[k][3] = _nuisance_norms(method, x_runs[k][0].astype(dtype), bases[k], draws[k], length)

    stat = np.empty(n_vox)
    counts = np.zeros(n_vox, dtype=np.int64)
    null_max = np.full(n_permutations, -np.inf)
    null = np.empty((n_permutations, n_vox), dtype=dtype) if return_null else None

    mem = (working_memory if working_memory is not None else get_config()["working_memory"]) * 2**20
    if method in ("shift", "block"):  # measured: chunks of ~64 MiB run faster (cache)
        mem = min(mem, 64 * 2**20)
    min_len = min(per_run) if method == "block" else 1
    per_vox = _per_voxel_items(method, n, n_permutations, min_len)
    chunk = int(max(1, min(n_vox, mem // (per_vox * dtype.itemsize))))
    slices = [slice(s0, min(s0 + chunk, n_vox)) for s0 in range(0, n_vox, chunk)]

    def chunk_args():
        for sl in slices:
            xc = None if x_runs is not None else x[:, sl]
            yield (xc, y[:, sl], run_idx, bases, x_runs, draws, per_run, method, n_permutations,
                   statistic, alternative, dtype, x.dtype, y.dtype, return_null)

    from nilearn_vlm.parallel import map_tasks

    results = map_tasks(_null_chunk, chunk_args(), n_jobs=n_jobs, verbose=verbose,
                        desc=f"{method} null (voxel chunks)", total=len(slices))
    for sl, (stat_sl, counts_sl, null_sl, max_sl) in zip(slices, results):
        stat[sl] = stat_sl
        counts[sl] = counts_sl
        if return_null:
            null[:, sl] = null_sl
        np.maximum(null_max, max_sl, out=null_max)

    unscored = np.isnan(stat)
    score = _oriented(stat, alternative)
    tol = 64 * np.finfo(dtype).eps * np.maximum(1.0, np.abs(np.nan_to_num(score)))
    pvalues = np.where(unscored, np.nan, (1.0 + counts) / (1.0 + n_permutations))
    pvalues_fwe = np.where(unscored, np.nan, _fwe_pvalues(np.nan_to_num(score), null_max, tol))
    warn_unscored(int(unscored.sum()), n_vox, "scores and p-values",
                  "flat BOLD in every run (variance at or below the floor relative to the voxel's scale)")
    return PermutationResult(
        statistic=stat,
        pvalues=pvalues,
        pvalues_fwe=pvalues_fwe,
        null_max=null_max,
        null=null,
        method=method,
        statistic_name=statistic,
        alternative=alternative,
        n_permutations=n_permutations,
        block_length=per_run,
        draws=draws,
        n_unscored=int(unscored.sum()),
    )


def _sample_run(a, idx, basis, max_columns=256):
    """Up to ``max_columns`` evenly spaced columns of one run, cleaned (for the block length)."""
    cols = np.unique(np.linspace(0, a.shape[1] - 1, min(max_columns, a.shape[1])).astype(int))
    return _clean_run(a[idx][:, cols], basis)[0]
