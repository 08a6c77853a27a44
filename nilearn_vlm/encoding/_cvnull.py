"""The cross-fitted circular-shift null of out-of-fold encoding scores.

The score of an encoder on held-out runs (the nested out-of-fold r: per held-out
run ``k`` the model is fitted on the other runs, its alphas chosen inside them,
and the within-run r of its prediction is averaged over runs) is not the score
of a fixed prediction: run ``k``'s prediction depends on the BOLD of the other
runs through the fitted model, so the runs' r share terms and the mean over
runs varies about twice as much as a null that resamples each run's prediction
on its own would say (measured: 3 runs x 38 scans of white BOLD, out-of-fold
ridge predictions, null voxels significant at 5% in 11-13% of cases with
:func:`nilearn_vlm.stats.permutation_null`).

:func:`out_of_fold_null` resamples what the score is made of instead: each
run's BOLD is shifted circularly by a random lag, the same shifted
series serving as training targets in every fold that trains on the run and
as held-out targets where it is held out, and the out-of-fold predictions and
their within-run r are recomputed for every draw. The features stay in place,
so each fold's ridge problem keeps its decomposition and its alphas (the
nested choice on the observed data), and all lags come from FFT
cross-correlations:

with the fold's training features ``X_c = W V^T`` (eigenbasis of
:func:`~nilearn_vlm.encoding._solver.decompose`), its held-out features mapped
to that basis and cleaned with the score's nuisance, ``P_k X_k V = Z S R^T``
(thin SVD, ``Z`` orthonormal), a voxel with alpha ``a`` predicts run ``k``
(cleaned) as ``Z e`` with ``e = S R^T diag(1 / (s + a)) W^T y*_train``. So

``r_k = <e, Z^T y*_k> / (|e| |P_k y*_k|)``,

and ``W_j^T roll(y_j, s)``, ``Z^T roll(y_k, s)`` and ``Q^T roll(y_k, s)`` (``Q``
the run's nuisance basis, for ``|P_k y*_k|``) are cross-correlations at every
lag ``s``. Each draw then costs ``O(m n_runs)`` per voxel and fold (``m`` the
number of features).

Measured (``benchmarks/scores.py``): null voxels significant at 5% in 0.050
(3 x 38 scans, white BOLD) and 0.049-0.054 (4 x 100 scans, AR(1) 0.3-0.9) of
cases, where the fixed-prediction null gives 0.126-0.144; a voxel significant
after max-statistic correction in 0.048 [0.033, 0.069] of 600 null data sets.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from sklearn.base import clone

from nilearn_vlm._utils import (
    clean_signals,
    column_scale,
    is_flat,
    run_basis,
    run_slices,
    warn_unscored,
)
from nilearn_vlm.encoding._solver import _fold_scaling, decompose
from nilearn_vlm.parallel import map_tasks
from nilearn_vlm.stats._nulls import ALTERNATIVES, PermutationResult, _fwe_pvalues, _oriented
from nilearn_vlm.stats._resampling import default_block_length, draw_shifts

__all__ = ["OutOfFoldNull", "out_of_fold_null"]


@dataclass
class OutOfFoldNull(PermutationResult):
    """:class:`~nilearn_vlm.stats.PermutationResult` of :func:`out_of_fold_null`.

    ``statistic`` is the nested out-of-fold score (mean over held-out runs of
    the within-run r); ``draws`` holds the lags of each run
    (``(n_permutations,)`` per run, BOLD time ``t`` of the shifted run is
    time ``t - lag`` of the original); ``block_length`` the minimum lag per
    run.

    Attributes
    ----------
    alphas : ndarray of shape (n_runs, n_voxels)
        The alpha of each voxel in the model that predicts each held-out run
        (chosen inside that model's training runs; NaN where the voxel was
        excluded from the fit, whose prediction is flat and scores 0).
    """

    alphas: np.ndarray | None = None


def _check(encoder, X, Y, runs, confounds):
    if getattr(encoder, "standardize", False) == "run":
        raise ValueError(
            "out_of_fold_null does not support standardize='run' (per-run scaling of the BOLD "
            "changes with each shift); use standardize=True (per training set) or False."
        )
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y must be 2-D arrays with one row per scan; got shapes {X.shape} and {Y.shape}."
        )
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        raise ValueError("X and Y contain NaN or infinite values; clean or mask them first.")
    n = X.shape[0]
    slices = run_slices(runs, n)
    if len(slices) < 2:
        raise ValueError(
            "out_of_fold_null needs at least 2 runs (folds) to hold out; pass runs with one label "
            "per scan (a single run: nilearn_vlm.pipeline.cv_folds cuts it into blocks)."
        )
    conf = None if confounds is None else np.asarray(confounds, dtype=np.float64).reshape(n, -1)
    return X, Y, slices, conf


def _fold_models(encoder, X, Y, runs, conf, slices, n):
    """Nested alphas and valid voxels of each fold's model (the encoder fitted on the other runs)."""
    labels = np.empty(n, dtype=np.int64)
    for k, idx in enumerate(slices):
        labels[idx] = k
    alphas, valid = [], []
    for k in range(len(slices)):
        train = labels != k
        with warnings.catch_warnings():  # excluded and unscored voxels are counted by the caller
            warnings.simplefilter("ignore", UserWarning)
            enc = clone(encoder).fit(X[train], Y[train], groups=labels[train],
                                     confounds=None if conf is None else conf[train])
        alphas.append(np.asarray(enc.alpha_, dtype=np.float64).reshape(-1))
        valid.append(np.asarray(enc.valid_voxels_).reshape(-1))
    return labels, np.array(alphas), np.array(valid)


def _fold_operators(encoder, Xc, labels, slices, k, basis, fold_alphas, dtype):
    """What fold ``k`` needs for every lag: FFTs of its eigenbasis rows and of its held-out basis.

    With ``SR`` such that the cleaned held-out prediction of a voxel with alpha
    ``a`` is ``Z @ SR @ (d_a * W^T y)`` (``d_a = 1 / (s + a)``), returns
    ``{a: {run j: rfft of W_j (SR d_a)^T}}`` (each row of ``e = SR d_a W^T y``
    as a time series on run ``j``), the rfft of ``Z`` (n_k, m') and of the
    score's nuisance basis of run ``k``.
    """
    train = np.flatnonzero(labels != k)
    mean, sd = _fold_scaling(Xc, train, encoder.fit_intercept, encoder.standardize is True,
                             np.float64)
    Xtr = Xc[train] - mean
    if sd is not None:
        Xtr = Xtr / sd
    s, W, V = decompose(Xtr, encoder.solver)
    Vk = V if sd is None else V / sd[:, None]
    A = Xc[slices[k]] @ Vk
    A = A - basis @ (basis.T @ A)
    Z, S, Rt = np.linalg.svd(A, full_matrices=False)
    keep = S > S.max(initial=0.0) * max(A.shape) * np.finfo(float).eps
    Z, SR = Z[:, keep], S[keep, None] * Rt[keep]
    pos = np.empty(len(labels), dtype=np.int64)
    pos[train] = np.arange(train.size)
    Wj = {j: W[pos[np.arange(len(labels))[idx]]] for j, idx in enumerate(slices) if j != k}
    Mf, Msum = {}, {}
    for a in fold_alphas:
        M = SR * (1.0 / (s.astype(np.float64) + a))[None, :]  # (m', m)
        Mf[a] = {j: sfft.rfft((Wr @ M.T).astype(dtype), axis=0) for j, Wr in Wj.items()}
        Msum[a] = {j: Wr.sum(0) @ M.T for j, Wr in Wj.items()}  # what a run's constant adds
    return (Mf, Msum, sfft.rfft(Z.astype(dtype), axis=0), sfft.rfft(basis.astype(dtype), axis=0),
            Z.shape[1])


def _corr_all_lags(Mf, Yf, n):
    """``out[s, i, v] = sum_t M[t, i] y[t - s, v]`` for every lag ``s`` (rfft inputs)."""
    return sfft.irfft(Mf[:, :, None] * np.conj(Yf)[:, None, :], n=n, axis=0)


def _chunk_null(Yt, means, y_ok, ny2, slices, ops, alphas, valid, lags, dtype):
    """Observed (row 0) and null sums over held-out runs of ``r_k``, for one voxel chunk.

    ``Yt`` is the shifted BOLD with each run's mean removed (``means``, which
    no shift changes, enter the training targets analytically).
    """
    n_draws, n_vox = lags.shape[0], Yt.shape[1]
    lens = [np.arange(Yt.shape[0])[idx].size for idx in slices]
    Yf = [sfft.rfft(np.asarray(Yt[idx], dtype=dtype), axis=0) for idx in slices]
    total = np.zeros((n_draws, n_vox))
    for k, (Mf, Msum, Zf, Qf, m) in enumerate(ops):
        ok = y_ok[k]
        if not ok.any():
            continue
        # voxels sorted by alpha (contiguous groups); unfitted ones (inf) predict nothing
        a_k = np.where(valid[k] & ok, alphas[k], np.inf)
        order = np.argsort(a_k, kind="stable")
        a_sorted = a_k[order]
        e = np.zeros((n_draws, m, n_vox), dtype=dtype)
        for a in np.unique(a_sorted[np.isfinite(a_sorted)]):
            lo, hi = np.searchsorted(a_sorted, a, "left"), np.searchsorted(a_sorted, a, "right")
            cols = order[lo:hi]
            for j, Mfj in Mf[a].items():
                E = _corr_all_lags(Mfj, Yf[j][:, cols], lens[j])
                e[:, :, lo:hi] += E[lags[:, j]]
                e[:, :, lo:hi] += (Msum[a][j][:, None] * means[j, cols][None, :]).astype(dtype)
                del E
        G = _corr_all_lags(Zf, Yf[k][:, order], lens[k])[lags[:, k]]
        c = np.einsum("dmv,dmv->dv", e, G, dtype=np.float64)
        ne2 = np.einsum("dmv,dmv->dv", e, e, dtype=np.float64)
        del G, e
        N = _corr_all_lags(Qf, Yf[k][:, order], lens[k])[lags[:, k]]
        ny2_star = np.maximum(ny2[k][order][None, :] - np.einsum("dqv,dqv->dv", N, N, dtype=np.float64),
                              0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where((ne2 > 0) & (ny2_star > 0), c / np.sqrt(ne2 * ny2_star), 0.0)
        total[:, order] += np.where(ok[order][None, :], np.clip(r, -1.0, 1.0), 0.0)
    return total


def out_of_fold_null(encoder, X, Y, runs, *, confounds=None, n_permutations=1000, min_shift=None,
                     shifted="raw",
                     alternative="greater", return_null=False, dtype=np.float32, max_memory=64e6,
                     random_state=None, n_jobs=None, verbose=0):
    """Nested out-of-fold scores of an encoder and their cross-fitted circular-shift null.

    **The statistic**: for each run ``k``, ``encoder`` is fitted on the other
    runs (alphas chosen by its cross-validation inside them, leave-one-run-out
    by default) and predicts run ``k``; per run, the run's constant, linear
    trend, cosine drifts (the encoder's ``high_pass`` and ``t_r``) and
    ``confounds`` are projected out of the prediction and the BOLD alike and
    their Pearson r is computed; the score is the mean over runs (each run
    weighted equally), the statistic of
    :func:`nilearn_vlm._utils.run_scores` on the out-of-fold predictions.

    **The null**: each run's cleaned BOLD (cleaned as the encoder cleans it)
    is shifted circularly by its own random lag of at least ``min_shift``
    scans; the shifted series is the training target of every fold that
    trains on the run and the held-out target of the fold that holds it out,
    and the statistic is recomputed from scratch with each fold's alphas fixed
    at their observed (nested) choice. This keeps what makes out-of-fold
    scores vary: each run's prediction depends on the other runs' BOLD, so
    the runs' r are correlated, which a null resampling each run's fixed
    prediction (:func:`nilearn_vlm.stats.permutation_null`) ignores, and is
    anti-conservative for (module docstring). The features never move, so
    every fold's decomposition is reused: the lags come from FFT
    cross-correlations, and a draw costs ``O(n_features * n_runs)`` per voxel
    and fold.

    Parameters
    ----------
    encoder : VoxelEncoder
        Unfitted; cloned and fitted once per held-out run. Its cleaning
        (``detrend``, ``high_pass``, ``t_r``), ``standardize`` (False or True),
        ``fit_intercept``, ``cv``, ``alphas`` and ``solver`` are used.
    X : ndarray of shape (n_scans, n_features)
    Y : ndarray of shape (n_scans, n_voxels)
    runs : array-like of shape (n_scans,)
        Run (fold) label per scan, at least 2 runs.
    confounds : ndarray of shape (n_scans, n_confounds), optional
        Removed run by run in the fits and the scores.
    n_permutations : int, default=1000
    min_shift : int, optional
        Smallest lag (and its mirror ``n_run - min_shift``); default
        ``ceil(sqrt(n_run))`` per run.
    shifted : {"raw", "cleaned"}, default="raw"
        The series that is shifted: ``"raw"``, the BOLD as given with each
        run's ``confounds`` removed (a stationary noise stays exactly as
        likely shifted as not; a drift wraps into a step, which makes the
        null conservative); ``"cleaned"``, the BOLD as the encoder cleans it
        (drifts removed too: a cleaned series is no longer stationary, and
        the null is slightly anti-conservative). Measured on null data with
        HRF-smooth features and ``high_pass=0.01``, ``"raw"`` against
        ``"cleaned"`` at 5%: white BOLD (3 x 38 scans) 0.050 against 0.058;
        AR(1) 0.3 noise with strong linear drifts and random walks (4 x 100
        scans) 0.041 against 0.056 (``benchmarks/scores.py``, case
        ``drift``). Without drifts ``"raw"`` gives 0.049-0.054 for AR(1)
        0.3-0.9 (case ``ar1``).
    alternative : {"greater", "less", "two-sided"}, default="greater"
    return_null : bool, default=False
        Keep every null map (``n_permutations * n_voxels`` values).
    dtype : numpy dtype, default=np.float32
        Precision of the per-lag cross-correlations (the decompositions,
        sums of squares and scores are float64); float64 is about twice as
        slow.
    max_memory : float, default=64e6
        Bytes of working memory per voxel chunk.
    random_state : int, Generator or None
    n_jobs : int or None, default=None
        Voxel chunks as parallel tasks (:func:`nilearn_vlm.parallel.map_tasks`).
    verbose : int, default=0

    Returns
    -------
    OutOfFoldNull
        Scores, p-values ``(1 + #{null >= observed}) / (1 + n_permutations)``,
        max-statistic FWE p-values, the null maxima, the lags, the alphas;
        voxels flat in every run are NaN and counted (``n_unscored``).

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm import VoxelEncoder
    >>> rng = np.random.default_rng(0)
    >>> runs = np.repeat([0, 1, 2], 60)
    >>> X = rng.standard_normal((180, 3))
    >>> Y = rng.standard_normal((180, 20))
    >>> Y[:, 0] += X @ [1.0, -1.0, 0.5]
    >>> res = out_of_fold_null(VoxelEncoder(alphas=[1.0, 100.0]), X, Y, runs,
    ...                        n_permutations=99, random_state=0)
    >>> bool(res.pvalues[0] == 0.01), res.statistic.shape
    (True, (20,))
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}; got {alternative!r}")
    if int(n_permutations) != n_permutations or n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive integer; got {n_permutations!r}")
    if shifted not in ("raw", "cleaned"):
        raise ValueError(f"shifted must be 'raw' or 'cleaned'; got {shifted!r}")
    if min_shift is not None and (int(min_shift) != min_shift or min_shift < 1):
        raise ValueError(f"min_shift must be a positive integer (scans) or None; got {min_shift!r}")
    X, Y, slices, conf = _check(encoder, X, Y, runs, confounds)
    n, n_vox = Y.shape
    dtype = np.dtype(dtype)
    labels, alphas, valid = _fold_models(encoder, X, Y, runs, conf, slices, n)
    # the encoder's cleaning (each run's own fit), shared by every fold's training set
    kw = dict(detrend=encoder.detrend, high_pass=encoder.high_pass, t_r=encoder.t_r)
    Xc = clean_signals(X, None, labels, conf, **kw)[0]
    lens = [np.arange(n)[idx].size for idx in slices]
    # the shifted BOLD, run by run in float64, each run's mean removed, kept in ``dtype``
    Yt = np.empty(Y.shape, dtype=dtype)
    means = np.empty((len(slices), n_vox))
    for k, idx in enumerate(slices):
        yk = np.array(Y[idx], dtype=np.float64)
        c_k = None if conf is None else conf[idx]
        if shifted == "raw":  # the BOLD as given (its confounds removed), not its drifts
            if c_k is not None:
                yk = clean_signals(None, yk, None, c_k)[1]
        else:  # as the encoder cleans it
            yk = clean_signals(None, yk, None, c_k, **kw)[1]
        means[k] = yk.mean(0)
        Yt[idx] = yk - means[k]
    # the score's nuisance: constant, trend, cosine drifts, confounds (run_scores with detrend)
    bases = [run_basis(m, True, encoder.high_pass, encoder.t_r, None if conf is None else conf[idx])
             for m, idx in zip(lens, slices)]
    ops = [_fold_operators(encoder, Xc, labels, slices, k, bases[k],
                           np.unique(alphas[k][valid[k] & np.isfinite(alphas[k])]), dtype)
           for k in range(len(slices))]
    # observed flatness of each run's cleaned BOLD, relative to its raw scale (as run_scores)
    y_ok, ny2 = [], []
    for k, idx in enumerate(slices):
        yk = np.asarray(Yt[idx], dtype=np.float64)
        ss = ((yk - bases[k] @ (bases[k].T @ yk)) ** 2).sum(0)
        y_ok.append(~is_flat(ss, column_scale(Y[idx]), lens[k], Y.dtype))
        ny2.append((yk**2).sum(0))
    y_ok, ny2 = np.array(y_ok), np.array(ny2)

    rng = np.random.default_rng(random_state)
    per_run = [default_block_length(m) if min_shift is None else int(min_shift) for m in lens]
    lags = draw_shifts(lens, int(n_permutations), per_run, rng)
    n_perm = lags.shape[0]
    all_lags = np.vstack([np.zeros((1, len(slices)), dtype=lags.dtype), lags])  # row 0: observed

    m = max(op[4] for op in ops)
    # per voxel: one run's cross-correlations at every lag (and their spectra), e and G per draw
    per_vox = dtype.itemsize * (4 * max(lens) * (m + 4) + 3 * (n_perm + 1) * (m + 2))
    chunk = int(max(1, min(n_vox, max_memory // per_vox)))
    chunks = [slice(v0, min(v0 + chunk, n_vox)) for v0 in range(0, n_vox, chunk)]

    def args():
        for sl in chunks:
            yield (Yt[:, sl], means[:, sl], y_ok[:, sl], ny2[:, sl], slices, ops, alphas[:, sl], valid[:, sl],
                   all_lags, dtype)

    total = np.empty((n_perm + 1, n_vox))
    for sl, t in zip(chunks, map_tasks(_chunk_null, args(), n_jobs=n_jobs, verbose=verbose,
                                       desc="out-of-fold null (voxel chunks)", total=len(chunks))):
        total[:, sl] = t
    n_scored = y_ok.sum(0)
    unscored = n_scored == 0
    total /= np.maximum(n_scored, 1)
    stat = np.where(unscored, np.nan, total[0])
    null = total[1:]
    o = _oriented(null, alternative)
    o[:, unscored] = -np.inf
    score = _oriented(stat, alternative)
    tol = 64 * np.finfo(dtype).eps * np.maximum(1.0, np.abs(np.nan_to_num(score)))
    counts = (o >= (score - tol)).sum(0)
    null_max = o.max(1)
    pvalues = np.where(unscored, np.nan, (1.0 + counts) / (1.0 + n_perm))
    pvalues_fwe = np.where(unscored, np.nan, _fwe_pvalues(np.nan_to_num(score), null_max, tol))
    warn_unscored(int(unscored.sum()), n_vox, "out-of-fold scores and p-values",
                  "flat BOLD in every run (variance at or below the floor relative to the voxel's scale)")
    if return_null:
        null = null.copy()
        null[:, unscored] = np.nan
    return OutOfFoldNull(
        statistic=stat, pvalues=pvalues, pvalues_fwe=pvalues_fwe, null_max=null_max,
        null=null if return_null else None, method="shift", statistic_name="r",
        alternative=alternative, n_permutations=n_perm, block_length=per_run,
        draws=[lags[:, k] for k in range(len(slices))], n_unscored=int(unscored.sum()),
        alphas=alphas,
    )
