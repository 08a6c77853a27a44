"""Neuron-level maps: signed unit x voxel associations for all units.

:func:`unit_voxel_maps` tests every unit against every voxel, block by block
(a unit chunk times a voxel chunk, float32 matrix products) so the full
``n_units x n_voxels`` matrix never exists. From each block it keeps

- per voxel, the ``top_k`` units of largest ``|r|`` (with their signed r);
- per unit, the number of voxels it is significantly positively and
  negatively associated with: Benjamini-Hochberg FDR over all
  ``n_units * n_voxels`` pairs, or a given ``|r|`` threshold.

Inference (``inference``):

- ``"calibrated"`` (default): each pair is the calibrated univariate GLM of
  :class:`~nilearn_vlm.VoxelGLM` with the unit as regressor (global AR(2)
  prewhitening, per-run constants and cosine drifts removed, per-voxel
  Toeplitz sandwich variance, Satterthwaite dof; :mod:`nilearn_vlm._maps_calibrated`);
  r is the whitened partial correlation. Its false-positive rates hold on
  real resting-state BOLD (the calibration section of the statistics guide).
- ``"iid"``: the exact t-test of a Pearson correlation,
  ``t = r sqrt(dof / (1 - r^2))`` with ``dof = n_scans - 2`` by default. It
  assumes independent scans: on autocorrelated fMRI noise (HRF-smooth units
  and BOLD) its uncorrected false-positive rate is several times nominal, and
  no single effective ``dof`` fixes that for every pair.

The FDR threshold is found from histograms kept per unit and sign (of
``|r|`` in bins of ``r_resolution`` for ``"iid"``, of the normal-equivalent
``|z|`` in bins of ``z_resolution`` for ``"calibrated"``, above the
uncorrected level ``alpha``): the rejected pairs are those of the exact
Benjamini-Hochberg procedure except at most the ones within one bin below
the cut (never more).

:func:`weight_maps` gives the same summaries for a given unit x voxel weight
matrix (for example an encoding model's coefficients, ``coef_.T``), read in
blocks (a NumPy memmap works), with a given threshold.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from nilearn_vlm._glm_solver import drift_terms
from nilearn_vlm._maps_calibrated import calibrated_unit_maps
from nilearn_vlm._topk import TopK as _TopK
from nilearn_vlm._utils import parse_bytes
from nilearn_vlm.parallel import chunk_groups
from nilearn_vlm.units import as_units_table

__all__ = ["UnitVoxelMaps", "unit_voxel_maps", "weight_maps"]


@dataclass
class UnitVoxelMaps:
    """Summaries of a unit x voxel association.

    Attributes
    ----------
    top_units : ndarray of int32, shape (top_k, n_voxels)
        Per voxel, the units of largest ``|r|``, best first.
    top_values : ndarray of float32, shape (top_k, n_voxels)
        Their signed associations.
    n_positive, n_negative : ndarray of int64, shape (n_units,)
        Voxels where each unit is significantly positive / negative.
    threshold : float
        The ``|r|`` (or ``|weight|``, or, for calibrated inference, the
        normal-equivalent ``|z|``) threshold used; ``inf`` if nothing
        survived the FDR.
    n_tests : int
        Number of unit-voxel pairs.
    unit_names : list of str or None
    method : str
    units : pandas.DataFrame or None
        The units table (:mod:`nilearn_vlm.units`), when the unit names are
        ``stream.layer.kind.index``.
    """

    top_units: np.ndarray
    top_values: np.ndarray
    n_positive: np.ndarray
    n_negative: np.ndarray
    threshold: float
    n_tests: int
    unit_names: list = None
    method: str = ""
    info: dict = field(default_factory=dict)
    units: pd.DataFrame | None = None

    def __post_init__(self):
        if isinstance(self.unit_names, pd.DataFrame):
            self.units = as_units_table(self.unit_names)
        elif self.units is None and self.unit_names is not None:
            try:
                self.units = as_units_table(self.unit_names)
            except ValueError:
                self.units = None
        else:
            self.units = as_units_table(self.units)
        if self.units is not None:
            self.unit_names = self.units["name"].tolist()

    def unit_table(self):
        """Significant voxel counts per unit, with stream, layer and kind.

        Returns
        -------
        pandas.DataFrame
            Columns ``unit, [name, stream, layer, kind, index,] n_positive,
            n_negative``.
        """
        table = pd.DataFrame({"unit": np.arange(len(self.n_positive))})
        if self.unit_names is not None:
            table["name"] = self.unit_names
        if self.units is not None:
            for col in ("stream", "layer", "kind", "index"):
                table[col] = self.units[col].to_numpy()
        table["n_positive"] = self.n_positive
        table["n_negative"] = self.n_negative
        return table


# ---------------------------------------------------------------- helpers
def _centred_unit_norm(A, out_dtype=np.float32):
    """Columns centred and scaled to unit l2 norm; constant columns become 0."""
    A = np.asarray(A, dtype=np.float64)
    A = A - A.mean(axis=0)
    norm = np.sqrt(np.einsum("ij,ij->j", A, A))
    return (A / np.where(norm > 0, norm, 1.0)).astype(out_dtype)


def _standardized_units(X, chunk=4096):
    """(n_units, n_scans) float32 rows of centred unit-norm unit series."""
    n_scans, n_units = X.shape
    out = np.empty((n_units, n_scans), dtype=np.float32)
    for s in range(0, n_units, chunk):
        out[s : s + chunk] = _centred_unit_norm(X[:, s : s + chunk]).T
    return out


def _chunks(n_units, n_voxels, n_scans, budget, unit_chunk, voxel_chunk):
    """Block sizes within ``budget`` bytes.

    A block costs about 12 bytes per element (the float32 product, its
    absolute value, boolean masks) and a voxel chunk 12 bytes per scan and
    voxel (float64 while standardizing, float32 kept).
    """
    if voxel_chunk is None:
        voxel_chunk = min(n_voxels, 4096)
    voxel_chunk = int(min(voxel_chunk, n_voxels))
    left = budget - 12 * n_scans * voxel_chunk
    if unit_chunk is None:
        unit_chunk = min(n_units, max(left // (12 * voxel_chunk), 0))
    unit_chunk = int(min(unit_chunk, n_units))
    if unit_chunk < min(64, n_units) or 12 * unit_chunk * voxel_chunk > left:
        raise ValueError(
            f"memory_budget={budget} bytes is too small for blocks of "
            f"{unit_chunk} units x {voxel_chunk} voxels over {n_scans} scans "
            "(about 12 bytes per block element and per voxel-chunk value); "
            "raise memory_budget or lower unit_chunk / voxel_chunk."
        )
    return unit_chunk, voxel_chunk


def _pearson_p(r, dof):
    r = np.clip(np.abs(r), 0, 1 - 1e-12)
    t = r * np.sqrt(dof / (1 - r**2))
    return 2 * stats.t.sf(t, dof)


def _r_at_p(p, dof):
    t = stats.t.isf(p / 2, dof)
    return float(t / np.sqrt(dof + t**2))


def _view(buffer, n_rows, n_cols):
    """A C-contiguous (n_rows, n_cols) view on the start of a buffer."""
    return buffer.reshape(-1)[: n_rows * n_cols].reshape(n_rows, n_cols)


def _progress(iterable, total, verbose, desc):
    if not verbose:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc)


# --------------------------------------------------------------- drivers
def _run_blocks(block_fn, n_units, n_voxels, unit_chunk, voxel_chunk, top_k,
                counter, voxel_block=None, verbose=0):
    """Loop over voxel chunks (outer) and unit chunks (inner)."""
    top_units = np.empty((top_k, n_voxels), dtype=np.int32)
    top_values = np.empty((top_k, n_voxels), dtype=np.float32)
    absbuf = np.empty((unit_chunk, voxel_chunk), dtype=np.float32)
    maskbuf = np.empty((unit_chunk, voxel_chunk), dtype=bool)
    starts = range(0, n_voxels, voxel_chunk)
    for v0 in _progress(starts, len(starts), verbose, "voxel chunks"):
        v1 = min(v0 + voxel_chunk, n_voxels)
        ctx = voxel_block(v0, v1) if voxel_block is not None else None
        top = _TopK(top_k, v1 - v0)
        for u0 in range(0, n_units, unit_chunk):
            u1 = min(u0 + unit_chunk, n_units)
            block = block_fn(u0, u1, v0, v1, ctx)
            absb = np.abs(block, out=_view(absbuf, u1 - u0, v1 - v0))
            mask = _view(maskbuf, u1 - u0, v1 - v0)
            top.update(block, absb, u0, mask)
            counter(block, absb, u0, u1, mask)
        top_units[:, v0:v1] = top.units
        top_values[:, v0:v1] = top.values
    return top_units, top_values


class _ThresholdCounter:
    def __init__(self, n_units, threshold):
        self.threshold = np.float32(threshold)
        self.pos = np.zeros(n_units, dtype=np.int64)
        self.neg = np.zeros(n_units, dtype=np.int64)

    def __call__(self, block, absb, u0, u1, mask):
        np.greater_equal(block, self.threshold, out=mask)
        self.pos[u0:u1] += np.count_nonzero(mask, axis=1)
        np.less_equal(block, -self.threshold, out=mask)
        self.neg[u0:u1] += np.count_nonzero(mask, axis=1)


class _HistogramCounter:
    """Per unit and sign histograms of |r| above a floor, in bins of width w."""

    def __init__(self, n_units, floor, width, cap=1.0):
        self.floor, self.width = np.float32(floor), float(width)
        self.n_bins = int(np.ceil(max(cap - floor, 0) / width)) + 1
        self.hist = np.zeros((n_units, self.n_bins, 2), dtype=np.int32)

    def __call__(self, block, absb, u0, u1, mask):
        flat = np.flatnonzero(np.greater_equal(absb, self.floor, out=mask))
        if flat.size == 0:
            return
        rows = flat // absb.shape[1]
        a = absb.ravel()[flat]
        b = np.minimum(((a - self.floor) / self.width).astype(np.int64),
                       self.n_bins - 1)
        neg = (block.ravel()[flat] < 0).astype(np.int64)
        flat = (rows * self.n_bins + b) * 2 + neg
        counts = np.bincount(flat, minlength=(u1 - u0) * self.n_bins * 2)
        self.hist[u0:u1] += counts.reshape(u1 - u0, self.n_bins, 2).astype(np.int32)

    def edges(self):
        return self.floor + self.width * np.arange(self.n_bins)


def _fdr_from_histogram(counter, n_tests, alpha, dof):
    """Smallest bin edge e with p(e) <= alpha * N(|r| >= e) / n_tests."""
    edges = counter.edges()
    total = counter.hist.sum(axis=(0, 2)).astype(np.float64)
    n_above = np.cumsum(total[::-1])[::-1]
    p_edge = _pearson_p(edges, dof)
    ok = (p_edge <= alpha * n_above / n_tests) & (n_above > 0)
    if not ok.any():
        return np.inf, np.zeros(len(counter.hist), np.int64), np.zeros(
            len(counter.hist), np.int64)
    i = int(np.argmax(ok))
    counts = counter.hist[:, i:, :].sum(axis=1, dtype=np.int64)
    return float(edges[i]), counts[:, 0], counts[:, 1]


def _voxel_group_task(Xz, Yg, uc, vc, top_k, counter, verbose=0):
    """All blocks of one group of voxel chunks: its top-k and its counts."""
    out = np.empty((uc, vc), dtype=np.float32)

    def voxel_block(v0, v1):
        return _centred_unit_norm(Yg[:, v0:v1])

    def block_fn(u0, u1, v0, v1, Yz):
        return np.matmul(Xz[u0:u1], Yz, out=_view(out, u1 - u0, v1 - v0))

    top_units, top_values = _run_blocks(block_fn, Xz.shape[0], Yg.shape[1], uc,
                                        vc, top_k, counter, voxel_block, verbose)
    return top_units, top_values, counter


def _grouped_blocks(Xz, Y, uc, vc, top_k, counter, n_jobs, verbose):
    """Groups of whole voxel chunks as tasks; counts summed into ``counter``."""
    import copy

    from nilearn_vlm.parallel import map_tasks

    n_voxels = Y.shape[1]
    groups = chunk_groups(n_voxels, vc, n_jobs)
    counts = [a for a in ("hist", "pos", "neg") if hasattr(counter, a)]

    def fresh():
        new = copy.copy(counter)
        for a in counts:
            setattr(new, a, np.zeros_like(getattr(counter, a)))
        return new

    args = ((Xz, np.asarray(Y[:, g]), uc, vc, top_k, fresh()) for g in groups)
    top_units = np.empty((top_k, n_voxels), dtype=np.int32)
    top_values = np.empty((top_k, n_voxels), dtype=np.float32)
    results = map_tasks(_voxel_group_task, args, n_jobs, verbose,
                        "voxel groups", len(groups))
    for g, (tu, tv, part) in zip(groups, results):
        top_units[:, g], top_values[:, g] = tu, tv
        for a in counts:
            getattr(counter, a).__iadd__(getattr(part, a))
    return top_units, top_values


def unit_voxel_maps(X, Y, *, top_k=10, threshold="fdr", alpha=0.05, inference="calibrated",
                    runs=None, t_r=None, high_pass=0.01, confounds=None, dof=None,
                    r_resolution=5e-4, z_resolution=0.01, memory_budget="512MiB",
                    unit_chunk=None, voxel_chunk=None, unit_names=None, verbose=0, n_jobs=None):
    """Signed unit x voxel associations and their significance, summarized out of core.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_scans, n_units)
        Unit time series (a memmap works; it is read once, in chunks).
    Y : array-like of shape (n_scans, n_voxels)
        BOLD (masked), a memmap works.
    top_k : int, default=10
        Units kept per voxel.
    threshold : "fdr" or float, default="fdr"
        ``"fdr"``: Benjamini-Hochberg at level ``alpha`` over all pairs;
        a float: ``|r| >= threshold`` on Pearson r (a fixed cut, no test:
        ``inference`` does not apply).
    alpha : float, default=0.05
        FDR level.
    inference : {"calibrated", "iid"}, default="calibrated"
        The test of each pair (see the module's docstring): the calibrated
        GLM, or the Pearson t-test on ``dof`` (independent scans).
    runs : array-like of shape (n_scans,), default=None
        ``"calibrated"``: contiguous run labels (constants and drifts per
        run; lags stay within runs).
    t_r : float, default=None
        ``"calibrated"``: repetition time of the cosine drift terms; without
        it only the per-run constants are removed.
    high_pass : float, default=0.01
        ``"calibrated"``: cut-off (Hz) of the cosine drifts.
    confounds : array-like of shape (n_scans, n_confounds), default=None
        ``"calibrated"``: nuisance regressors removed with the drifts.
    dof : int or None, default=None
        ``"iid"``: degrees of freedom of the correlation t-test
        (``n_scans - 2``).
    r_resolution : float, default=5e-4
        ``"iid"``: bin width in ``|r|`` of the FDR histograms, which span the
        uncorrected to the Bonferroni level (the Benjamini-Hochberg cut lies
        in between).
    z_resolution : float, default=0.01
        ``"calibrated"``: bin width in normal-equivalent ``|z|`` of the FDR
        histograms.
    memory_budget : int or str, default="512MiB"
        Working memory for the blocks (on top of the standardized units,
        ``4 * n_units * n_scans`` bytes, and per-unit histograms for FDR,
        ``8 * n_units * (r_bonferroni - r_uncorrected) / r_resolution``
        bytes: 90 MB for 61,440 units, 50,000 voxels, 3,000 scans): bytes,
        or a string with SI (``"1GB"`` = 10**9 bytes) or IEC (``"1GiB"`` =
        2**30 bytes) units. With ``inference="calibrated"``, the whitened
        voxels (``4 * n_scans * n_voxels`` bytes) are also kept when they
        fit within it (else recomputed).
    unit_chunk, voxel_chunk : int or None
        Block sizes (derived from ``memory_budget`` by default).
    unit_names : list of str, units table or None
        Unit names, or the units table (``NeuronActivations.units_``);
        default: the DataFrame's columns.
    verbose : int, default=0
    n_jobs : int or None, default=None
        Tasks over groups of whole voxel chunks (threads here, Dask tasks
        inside :func:`nilearn_vlm.parallel.use_dask`); each task holds the
        standardized units, its voxels and ``memory_budget`` of blocks.
        None: 1 unless a joblib context says otherwise. Results are
        identical to one job's.

    Returns
    -------
    UnitVoxelMaps

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((100, 30)), rng.standard_normal((100, 5))
    >>> maps = unit_voxel_maps(X, Y, top_k=3)
    >>> maps.top_units.shape, maps.n_positive.shape
    ((3, 5), (30,))
    >>> int(maps.n_positive.sum() + maps.n_negative.sum())  # pure noise: no discovery
    0
    """
    if unit_names is None and hasattr(X, "columns"):
        unit_names = [str(c) for c in X.columns]
    X = X.to_numpy() if hasattr(X, "to_numpy") else X
    Y = Y.to_numpy() if hasattr(Y, "to_numpy") else Y
    if np.ndim(X) != 2 or np.ndim(Y) != 2:
        raise ValueError(
            f"X and Y must be 2D (n_scans, n_units) and (n_scans, n_voxels); got "
            f"{np.ndim(X)}D and {np.ndim(Y)}D."
        )
    n_scans, n_units = X.shape
    if Y.shape[0] != n_scans:
        raise ValueError(
            f"X has {n_scans} scans but Y has {Y.shape[0]}; align them to the "
            "same scans first."
        )
    if n_scans < 3:
        raise ValueError(f"need at least 3 scans for correlations, got {n_scans}.")
    n_voxels = Y.shape[1]
    top_k = _check_top_k(top_k, n_units)
    if inference not in ("calibrated", "iid"):
        raise ValueError(f"inference={inference!r} is not supported; use 'calibrated' or 'iid'.")
    if inference == "calibrated" and isinstance(threshold, str) and threshold == "fdr":
        if dof is not None:
            raise ValueError("dof sets the degrees of freedom of the 'iid' t-test; the calibrated "
                             "inference estimates them per pair. Pass inference='iid' with dof, "
                             "or drop dof.")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}.")
        return _calibrated_maps(X, Y, top_k, alpha, runs, t_r, high_pass, confounds,
                                z_resolution, memory_budget, unit_chunk, voxel_chunk,
                                unit_names, verbose, n_jobs)
    dof = n_scans - 2 if dof is None else dof
    if not 0 < dof <= n_scans - 2:
        raise ValueError(f"dof must lie in (0, n_scans - 2 = {n_scans - 2}], got {dof}.")
    budget = parse_bytes(memory_budget, "memory_budget")
    uc, vc = _chunks(n_units, n_voxels, n_scans, budget, unit_chunk, voxel_chunk)
    Xz = _standardized_units(X)
    if isinstance(threshold, str):
        if threshold != "fdr":
            raise ValueError(
                f"threshold={threshold!r} is not supported; use 'fdr' or a "
                "number (an |r| threshold)."
            )
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}.")
        # the BH cut lies between the uncorrected and the Bonferroni levels
        counter = _HistogramCounter(
            n_units, _r_at_p(alpha, dof), r_resolution,
            cap=_r_at_p(alpha / (n_units * n_voxels), dof),
        )
    else:
        counter = _ThresholdCounter(n_units, float(threshold))
    if n_jobs == 1 or len(chunk_groups(n_voxels, vc, n_jobs)) == 1:
        top_units, top_values, _ = _voxel_group_task(Xz, Y, uc, vc, top_k,
                                                     counter, verbose)
    else:
        top_units, top_values = _grouped_blocks(Xz, Y, uc, vc, top_k, counter,
                                                n_jobs, verbose)
    n_tests = n_units * n_voxels
    if isinstance(counter, _HistogramCounter):
        thr, pos, neg = _fdr_from_histogram(counter, n_tests, alpha, dof)
        method = f"pearson, iid t-test, BH-FDR q={alpha}, dof={dof}"
    else:
        thr, pos, neg = float(threshold), counter.pos, counter.neg
        method = f"pearson, |r| >= {thr}"
    return UnitVoxelMaps(top_units, top_values, pos, neg, thr, n_tests,
                         unit_names, method,
                         {"unit_chunk": uc, "voxel_chunk": vc, "dof": dof, "inference": "iid"})


def _calibrated_maps(X, Y, top_k, alpha, runs, t_r, high_pass, confounds, z_resolution,
                     memory_budget, unit_chunk, voxel_chunk, unit_names, verbose, n_jobs):
    """``unit_voxel_maps(inference="calibrated")``: the nuisance, the blocks, the summaries."""
    n_scans, n_units = X.shape
    nuisance = drift_terms(n_scans, runs, t_r, "cosine" if t_r is not None else None,
                           high_pass).to_numpy()
    if confounds is not None:
        C = np.asarray(confounds, dtype=np.float64).reshape(n_scans, -1)
        nuisance = np.hstack([nuisance, C])
    # a block holds about 18 bytes per element here (the estimate, its variance, |.|, a
    # mask, one Satterthwaite moment); the whitened voxels are kept if they fit the budget
    total = parse_bytes(memory_budget, "memory_budget")
    uc, vc = _chunks(n_units, Y.shape[1], n_scans, total * 12 // 18, unit_chunk, voxel_chunk)
    out = calibrated_unit_maps(X, Y, nuisance, runs, alpha=alpha, top_k=top_k, unit_chunk=uc,
                               voxel_chunk=vc, z_resolution=z_resolution, keep_bytes=total,
                               n_jobs=n_jobs, verbose=verbose)
    method = (f"calibrated GLM per unit (global AR(2) prewhitening, Toeplitz sandwich, "
              f"Satterthwaite dof), BH-FDR q={alpha}")
    return UnitVoxelMaps(out["top_units"], out["top_values"], out["n_positive"], out["n_negative"],
                         out["z_threshold"], n_units * Y.shape[1], unit_names, method,
                         {"unit_chunk": uc, "voxel_chunk": vc, "inference": "calibrated",
                          "ar_filter": out["phi"].tolist(), "max_lag": out["max_lag"]})


def _check_top_k(top_k, n_units):
    if not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}.")
    if top_k > n_units:
        raise ValueError(f"top_k={top_k} exceeds the number of units ({n_units}).")
    return int(top_k)


def weight_maps(W, threshold, *, top_k=10, memory_budget="512MiB", unit_chunk=None,
                voxel_chunk=None, unit_names=None, verbose=0):
    """Top units per voxel and signed counts per unit from given weights.

    Parameters
    ----------
    W : array-like of shape (n_units, n_voxels)
        Unit x voxel weights (e.g. an encoder's ``coef_.T``); a memmap works.
    threshold : float
        A weight counts as significant when ``|w| >= threshold``.
    top_k, memory_budget, unit_chunk, voxel_chunk, unit_names, verbose
        As in :func:`unit_voxel_maps`.

    Returns
    -------
    UnitVoxelMaps

    Examples
    --------
    >>> import numpy as np
    >>> W = np.array([[1.0, -2.0], [0.5, 3.0]])
    >>> maps = weight_maps(W, threshold=1.0, top_k=1)
    >>> maps.top_units.tolist(), maps.n_negative.tolist()
    ([[0, 1]], [1, 0])
    """
    if np.ndim(W) != 2:
        raise ValueError(f"W must be 2D (n_units, n_voxels); got {np.ndim(W)}D.")
    n_units, n_voxels = W.shape
    top_k = _check_top_k(top_k, n_units)
    uc, vc = _chunks(n_units, n_voxels, 0, parse_bytes(memory_budget, "memory_budget"),
                     unit_chunk, voxel_chunk)
    counter = _ThresholdCounter(n_units, float(threshold))

    def block_fn(u0, u1, v0, v1, _):
        return np.ascontiguousarray(W[u0:u1, v0:v1], dtype=np.float32)

    top_units, top_values = _run_blocks(
        block_fn, n_units, n_voxels, uc, vc, top_k, counter, None, verbose
    )
    return UnitVoxelMaps(top_units, top_values, counter.pos, counter.neg,
                         float(threshold), n_units * n_voxels, unit_names,
                         f"weights, |w| >= {threshold}",
                         {"unit_chunk": uc, "voxel_chunk": vc})
