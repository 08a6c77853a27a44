"""Permutation nulls for per-voxel scores of time series.

Every score here is an affine function of one cross-product per voxel.
With ``x`` and ``y`` centred over the whole series (all runs),

* Pearson ``r = c / (|x| |y|)``,
* ``R2 = 1 - (|y|^2 + |x|^2 - 2 c + n (mean(y) - mean(x))^2) / |y|^2``,

where ``c = sum_t x[t] y[t]``. Circular shifts, block permutations and phase
randomisation keep ``|x|`` and ``mean(x)``, so a null score is the score of a
null cross-product, and the nulls of all voxels come from a few large array
operations:

* circular shifts: the cross-correlation at every lag, by FFT, per run;
* phase randomisation: ``c = sum_f w_f Re(X_f conj(Y_f) exp(i theta_f))``, one
  matrix product of the random phases with the cross-spectra;
* block permutation: the cross-products of every pair of blocks, ``G[b, b']``
  (one batched matrix product), then ``c = sum_b G[b, order[b]]`` for all
  permutations at once (a sparse matrix product).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.fft as sfft
from scipy import sparse
from sklearn import get_config

from nilearn_vlm._utils import as_columns, centred_products
from nilearn_vlm._utils import pearson_r as _pearson_r
from nilearn_vlm.stats._resampling import (
    NULL_METHODS,
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
        Observed score (Pearson r or R2) per voxel.
    pvalues : ndarray of shape (n_voxels,)
        Uncorrected p-values, ``(1 + #{null >= observed}) / (1 + n_permutations)``.
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


def _to_stat(c, nx, ny, n, dmean, statistic):
    """Scores from cross-products (broadcast over a leading permutation axis)."""
    if statistic == "r":
        den = nx * ny
        return np.divide(c, den, out=np.zeros(np.broadcast(c, den).shape, c.dtype), where=den > 0)
    ss_y = ny**2
    sse = ss_y + nx**2 - 2 * c + n * dmean**2
    out = np.zeros(np.broadcast(c, ss_y).shape, c.dtype)
    return np.divide(ss_y - sse, ss_y, out=out, where=ss_y > 0)


def _cross_shift(xr, yr, shifts):
    n = yr.shape[0]
    X = sfft.rfft(xr, axis=0)
    Y = sfft.rfft(yr, axis=0)
    cc = sfft.irfft(np.conj(X) * Y, n=n, axis=0)  # cc[s] = sum_t x[t - s] y[t]
    return cc[shifts]


def _cross_phase(xr, yr, theta):
    n = yr.shape[0]
    S = sfft.rfft(xr, axis=0) * np.conj(sfft.rfft(yr, axis=0))  # (n_freq, n_vox)
    w = np.full(S.shape[0], 2.0 / n)
    w[0] = 1.0 / n
    if n % 2 == 0:
        w[-1] = 1.0 / n
    dt = yr.dtype
    a = (w * np.cos(theta)).astype(dt)
    b = (-w * np.sin(theta)).astype(dt)
    return a @ np.ascontiguousarray(S.real) + b @ np.ascontiguousarray(S.imag)


def _transpose(a, tile=256):
    """C-contiguous transpose of a 2-D array, copied in row tiles (several times
    faster than ``np.ascontiguousarray(a.T)`` on tall arrays)."""
    out = np.empty((a.shape[1], a.shape[0]), dtype=a.dtype)
    for r in range(0, a.shape[0], tile):
        out[:, r : r + tile] = a[r : r + tile].T
    return out


def _cross_block(xr, yr, length, offsets, orders):
    n, n_vox = yr.shape
    n_blocks = n // length
    n_full = n_blocks * length
    shared = xr.shape[1] == 1
    out = np.empty((offsets.shape[0], n_vox), dtype=yr.dtype)
    if shared:  # yj[j, b, v] = y[b * length + j, v]
        yj = yr[:n_full].reshape(n_blocks, length, n_vox).transpose(1, 0, 2).reshape(length, -1)
    else:
        yb = _transpose(yr[:n_full]).reshape(n_vox, n_blocks, length)
    for off in np.unique(offsets):
        sel = np.flatnonzero(offsets == off)
        xrot = np.roll(xr, -int(off), axis=0)  # xrot[t] = x[(t + off) % n]
        tail = (xrot[n_full:] * yr[n_full:]).sum(0)
        if shared:  # g2[b' * B + b, v] = <y block b, x block b'>: one matrix product
            xb = np.ascontiguousarray(xrot[:n_full, 0]).reshape(n_blocks, length)
            g2 = (xb @ yj).reshape(n_blocks * n_blocks, n_vox)
        else:  # g2[b * B + b', v]
            xb = _transpose(xrot[:n_full]).reshape(n_vox, n_blocks, length)
            g = np.matmul(yb, xb.transpose(0, 2, 1))  # g[v, b, b']
            g2 = _transpose(g.reshape(n_vox, n_blocks * n_blocks))
            del g
        m = sel.size
        if shared:
            cols = (orders[sel] * n_blocks + np.arange(n_blocks)).ravel()
        else:
            cols = (np.arange(n_blocks) * n_blocks + orders[sel]).ravel()
        indptr = np.arange(0, m * n_blocks + 1, n_blocks)
        pick = sparse.csr_matrix(
            (np.ones(m * n_blocks, dtype=yr.dtype), cols, indptr), shape=(m, n_blocks * n_blocks)
        )
        out[sel] = pick @ g2 + tail
    return out


def _cross_iid(xr, yr, perms):
    if xr.shape[1] == 1:
        return xr[perms, 0] @ yr
    return np.stack([np.einsum("tv,tv->v", xr[p], yr) for p in perms])


def _per_voxel_items(method, n, n_perm, length_min):
    items = 4 * n + 3 * n_perm
    if method in ("shift", "phase"):
        items += 6 * n
    elif method == "block":
        items += 2 * n + 2 * (n // length_min + 1) ** 2
    return items


def _oriented(s, alternative):
    if alternative == "two-sided":
        return np.abs(s)
    return -s if alternative == "less" else s


def _null_chunk(xc, yc, run_idx, draws, per_run, method, n_perm, nxs, nys, dmean, n,
                statistic, alternative, score, tol, return_null):
    """Null of one voxel chunk: exceedance counts, null maps (or None), maxima."""
    cross = np.zeros((n_perm, yc.shape[1]), dtype=yc.dtype)
    for k, idx in enumerate(run_idx):
        xr, yr = xc[idx], yc[idx]
        if method == "shift":
            cross += _cross_shift(xr, yr, draws[k])
        elif method == "phase":
            cross += _cross_phase(xr, yr, draws[k])
        elif method == "block":
            cross += _cross_block(xr, yr, per_run[k], *draws[k])
        else:
            cross += _cross_iid(xr, yr, draws[k])
    null_stat = _to_stat(cross, nxs, nys, n, dmean, statistic)
    del cross
    o = _oriented(null_stat, alternative)
    counts = (o >= (score - tol)).sum(0)
    return counts, (null_stat if return_null else None), o.max(1)


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
    block_length=None,
    min_shift=None,
    n_offsets=1,
    masker=None,
    return_null=False,
    dtype=np.float32,
    working_memory=None,
    random_state=None,
    verbose=0,
    n_jobs=None,
):
    """Per-voxel scores and their permutation null, respecting autocorrelation.

    The regressor (or the prediction) is resampled in time, within each run,
    the BOLD stays in place, and the score of every voxel is recomputed for
    every resampling. Methods:

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
        autocorrelation within blocks.
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
        Run label per scan; resampling never moves a scan out of its run.
    statistic : {"r", "r2"}, default="r"
        Pearson correlation or coefficient of determination
        ``1 - SSE / SST`` of ``x`` as a prediction of ``y``.
    alternative : {"greater", "less", "two-sided"}, default="greater"
        Direction of the test; two-sided compares ``|score|``.
    block_length : int, optional
        Block length in scans for ``"block"``. Default
        :func:`~nilearn_vlm.stats.default_block_length` per run,
        ``ceil(sqrt(n_run))``. Choose blocks several times longer than the
        correlation time of the series.
    min_shift : int, optional
        Smallest circular shift for ``"shift"`` (and its mirror
        ``n_run - min_shift``), so that nulls do not hold the effect itself.
        Default: the same rule, ``ceil(sqrt(n_run))``.
    n_offsets : int, default=1
        Number of distinct random rotations per run for ``"block"`` (each costs
        one pass of block products).
    masker : fitted nilearn masker, optional
        ``NiftiMasker`` or ``SurfaceMasker`` turning ``y`` (a 4-D image or
        surface image) into ``(n_samples, n_voxels)``, and ``x`` too when it is
        an image of per-voxel predictions. Map results back with
        ``masker.inverse_transform(result.statistic)``.
    return_null : bool, default=False
        Keep all null maps (``n_permutations * n_voxels`` values).
    dtype : numpy dtype, default=np.float32
        Precision of the null computations.
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
        Scores, p-values (with the +1 correction), FWE p-values and the
        null maxima.

    Notes
    -----
    The draws depend only on ``random_state``, the run lengths and the
    method, so calls with the same seed share their resamplings. For a
    family of maps (e.g. many units against the same voxels), run one call per
    unit with the same ``random_state``, take the element-wise maximum of the
    ``null_max`` arrays and correct every unit's map against it with
    :func:`~nilearn_vlm.stats.fwe_max`: a family-wise correction over units
    and voxels together.

    Cost per run of ``n`` scans and ``v`` voxels: shifts ``O(v n log n)``
    plus the gather of the nulls; phases one ``(n_permutations, n) @ (n, v)``
    product; blocks ``O(v n^2 / L)`` for the block cross-products and
    ``O(n_permutations v n / L)`` to sum them.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(200)
    >>> y = rng.standard_normal((200, 100))
    >>> y[:, 0] += x
    >>> res = permutation_null(x, y, method="shift", random_state=0)
    >>> bool(res.pvalues_fwe[0] < 0.05), res.pvalues.shape
    (True, (100,))
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

    # centring over all runs, norms and observed scores, in float64 by chunks
    c_obs, nx, ny, xm, ym = centred_products(x, y)
    dmean = ym - xm
    stat = _to_stat(c_obs, nx, ny, n, dmean, statistic)

    # draws, per run
    per_run = None
    if method == "shift":
        per_run = [default_block_length(m) if min_shift is None else int(min_shift) for m in lengths]
        shifts = draw_shifts(lengths, n_permutations, per_run, rng)
        draws = [shifts[:, k] for k in range(len(lengths))]
        n_permutations = shifts.shape[0]
    elif method == "block":
        per_run = [
            default_block_length(m) if block_length is None else int(block_length) for m in lengths
        ]
        draws = [draw_blocks(m, b, n_permutations, n_offsets, rng) for m, b in zip(lengths, per_run)]
    elif method == "phase":
        draws = [draw_phases(m, n_permutations, rng) for m in lengths]
    else:
        draws = [draw_iid(m, n_permutations, rng) for m in lengths]

    score = _oriented(stat, alternative)
    tol = 64 * np.finfo(dtype).eps * np.maximum(1.0, np.abs(score))
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
    xc_shared = (x - xm).astype(dtype) if x.shape[1] == 1 else None
    nx_shared = nx.astype(dtype) if x.shape[1] == 1 else None

    def chunk_args():
        for sl in slices:
            yc = (y[:, sl] - ym[sl]).astype(dtype, copy=False)
            if xc_shared is not None:
                xc, nxs = xc_shared, nx_shared
            else:
                xc = (x[:, sl] - xm[sl]).astype(dtype, copy=False)
                nxs = nx[sl].astype(dtype)
            yield (xc, yc, run_idx, draws, per_run, method, n_permutations, nxs,
                   ny[sl].astype(dtype),
                   dmean[sl].astype(dtype), n, statistic, alternative, score[sl], tol[sl],
                   return_null)

    from nilearn_vlm.parallel import map_tasks

    results = map_tasks(_null_chunk, chunk_args(), n_jobs=n_jobs, verbose=verbose,
                        desc=f"{method} null (voxel chunks)", total=len(slices))
    for sl, (counts_sl, null_sl, max_sl) in zip(slices, results):
        counts[sl] = counts_sl
        if return_null:
            null[:, sl] = null_sl
        np.maximum(null_max, max_sl, out=null_max)

    pvalues = (1.0 + counts) / (1.0 + n_permutations)
    pvalues_fwe = _fwe_pvalues(score, null_max, tol)
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
    )
