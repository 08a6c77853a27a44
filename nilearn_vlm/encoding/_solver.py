"""Exact multi-alpha ridge with a separate alpha per target.

One eigendecomposition of the smaller Gram matrix per training fold
(``Xtr^T Xtr`` when ``p <= n_train``, else ``Xtr Xtr^T``, LAPACK ``syevd``
through :func:`scipy.linalg.eigh` with ``driver="evd"``) gives, for every
alpha and every target, the validation predictions as ``(A * d_alpha) @ B``
with ``A`` the validation features in the eigenbasis, ``d_alpha = 1 / (s +
alpha)`` and ``B`` the training targets in the eigenbasis. Targets are
processed in chunks sized by a memory budget; each chunk is read once, scored
for all alphas and folds, and refit on all rows at its chosen alphas as one
diagonal scaling of ``W^T Y``.

The dominant cost is ``n_alphas * 2 * n_val * min(n_train, p) * n_targets``
flops per fold (:func:`count_flops` counts all of it).
"""

import numpy as np
from scipy import linalg

from nilearn_vlm._utils import column_scale, is_flat

__all__ = ["count_flops", "decompose", "ridge_cv_path"]

SOLVERS = ("auto", "primal", "dual", "svd")


def decompose(Xtr, solver="auto"):
    """Diagonalise the ridge problem of one training set.

    Parameters
    ----------
    Xtr : ndarray, shape (n_train, p)
        Centred training features.
    solver : {"auto", "primal", "dual", "svd"}
        ``primal``: eigh of ``Xtr^T Xtr``; ``dual``: eigh of ``Xtr Xtr^T``;
        ``auto``: the smaller of the two; ``svd``: LAPACK ``gesdd`` of
        ``Xtr`` (slower, for checking).

    Returns
    -------
    s : ndarray, shape (m,)
        Eigenvalues of the Gram matrix (squared singular values), >= 0.
    W : ndarray, shape (n_train, m)
        ``Xtr V`` (primal, svd) or ``U`` (dual): ``W^T Ytr`` puts the
        training targets in the eigenbasis.
    V : ndarray, shape (p, m)
        Maps eigenbasis weights to feature weights: ``coef = V @ (d * W^T Y)``.
    """
    n, p = Xtr.shape
    if solver == "auto":
        solver = "primal" if p <= n else "dual"
    if solver == "svd":
        U, S, Vt = linalg.svd(Xtr, full_matrices=False, lapack_driver="gesdd",
                              check_finite=False)
        return S**2, U * S, Vt.T
    if solver == "primal":
        s, V = linalg.eigh(Xtr.T @ Xtr, driver="evd", overwrite_a=True,
                           check_finite=False)
        np.maximum(s, 0, out=s)
        return s, Xtr @ V, V
    if solver == "dual":
        s, U = linalg.eigh(Xtr @ Xtr.T, driver="evd", overwrite_a=True,
                           check_finite=False)
        np.maximum(s, 0, out=s)
        return s, U, Xtr.T @ U
    raise ValueError(f"solver must be one of {SOLVERS}; got {solver!r}.")


def count_flops(n, p, v, n_alphas, folds, refit=True, solver="auto"):
    """Count the floating-point operations of :func:`ridge_cv_path`.

    Matrix products count ``2 m n k``; ``syevd`` of an ``m x m`` matrix is
    counted as ``(4/3 + 2) m^3``-ish (``9 m^3``, a generous estimate);
    elementwise work is not counted.

    Parameters
    ----------
    n, p, v : int
        Scans, features, targets.
    n_alphas : int
    folds : list of (train, val) index arrays
    refit : bool
    solver : str

    Returns
    -------
    dict
        ``{"validation": ..., "decompose": ..., "project": ..., "refit": ...,
        "total": ...}``; ``validation`` is the per-alpha floor.
    """
    out = dict(validation=0.0, decompose=0.0, project=0.0, refit=0.0)
    sets = [(len(tr), len(va)) for tr, va in folds]
    if refit:
        sets.append((n, 0))
    for i, (nt, nv) in enumerate(sets):
        primal = solver == "primal" or (solver in ("auto", "svd") and p <= nt)
        m = min(nt, p)
        gram = 2.0 * nt * p * p if primal else 2.0 * nt * nt * p
        out["decompose"] += gram + 9.0 * m**3 + 2.0 * nt * p * m
        out["project"] += 2.0 * nv * p * m
        if nv and _direct(n_alphas, nt, nv, m):
            out["decompose"] += n_alphas * 2.0 * nv * m * nt
            out["validation"] += n_alphas * 2.0 * nv * nt * v
        else:
            out["project"] += 2.0 * nt * m * v
            out["validation"] += n_alphas * 2.0 * nv * m * v
        if refit and i == len(sets) - 1:
            out["refit"] += 2.0 * p * m * v
    out["total"] = sum(out.values())
    return out


def _direct(n_alphas, n_tr, n_va, m):
    """Whether per-alpha products with Y_train beat projecting Y first.

    Projected: ``2 m (n_tr + n_alphas n_va)`` flops per target; direct
    (resolution matrices, as himalaya does): ``2 n_alphas n_va n_tr``.
    """
    return n_alphas * n_va * n_tr < m * (n_tr + n_alphas * n_va)


def _chunks(n_cols, chunk):
    return [slice(i, min(i + chunk, n_cols)) for i in range(0, n_cols, chunk)]


def chunk_size(n, p, n_alphas, folds, itemsize, budget, n_targets):
    """Targets per chunk so that the solver's working memory fits ``budget``.

    Folds are decomposed one at a time, so the fixed part is the features
    and one decomposition (``W``, ``A``, ``V``, the Gram matrix); per target
    come the training and validation copies of a chunk of Y, ``B`` and one
    prediction block (or, at refit, the chunk and ``C``). At least 16
    targets per chunk whatever the budget.
    """
    m = min(n, p)
    n_va = max([len(va) for _, va in folds] + [0])
    fixed = itemsize * (2 * n * p + n * m + 2 * m * m + p * m
                        + n_alphas * n_va * n)
    per_target = itemsize * (2 * n + 2 * m) + 16 * n_alphas
    chunk = int((budget - fixed) // per_target)
    return int(np.clip(chunk, 16, max(n_targets, 16)))


def _take(Y, row_idx, c, dtype):
    """Copy ``Y[row_idx][:, c]`` without copying more than that block."""
    block = Y[:, c][row_idx] if isinstance(c, slice) else Y[np.ix_(row_idx, c)]
    return np.asarray(block, dtype=dtype)


def _r2(sse, sst, ok):
    """R^2 where the validation targets have variance (``ok``), NaN elsewhere."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, 1.0 - sse / np.where(ok, sst, 1), np.nan)


def _fold_scaling(Xr, rows_idx, fit_intercept, standardize, dtype):
    """Training mean and scale of the features of one training set."""
    p = Xr.shape[1]
    mean = Xr[rows_idx].mean(0) if (fit_intercept or standardize) else np.zeros(p, dtype)
    if not standardize:
        return mean, None
    sd = Xr[rows_idx].std(0, dtype=np.float64)
    flat = is_flat(sd**2 * len(rows_idx), column_scale(Xr[rows_idx]), len(rows_idx), dtype)
    return mean, np.where(flat, 1.0, sd).astype(dtype)


def ridge_cv_path(X, Y, alphas, folds, cols=None, rows=None, fit_intercept=True,
                  solver="auto", dtype=np.float32, max_memory=512e6,
                  refit=True, eval_rows=None, progress=False, n_jobs=None,
                  scale=None, standardize=False):
    """Cross-validated ridge with one alpha per target, exact, chunked.

    Folds are processed one after the other (one decomposition in memory at
    a time), each over chunks of targets; then alphas are chosen and the
    refit runs over the chunks again.

    Parameters
    ----------
    X : ndarray, shape (n_scans, p)
        Features (all scans; ``rows`` selects those used).
    Y : ndarray, shape (n_scans, n_voxels)
        Targets; never copied whole (blocks of a chunk are).
    alphas : ndarray, shape (n_alphas,)
    folds : list of (train, val)
        Index arrays into ``rows`` (positions in the selected scans).
    cols : ndarray of int, optional
        Targets to fit (default: all).
    rows : ndarray of int, optional
        Scans to use (default: all).
    fit_intercept : bool
        Centre features and targets with training means (per fold).
    standardize : bool, default=False
        Scale the features to unit variance with the statistics of each
        training set (each fold's, then all ``rows`` for the refit): nothing
        is estimated on validation scans. Flat features keep scale 1. The
        coefficients are returned for the unscaled features.
    solver : {"auto", "primal", "dual", "svd"}
    dtype : numpy dtype
        Working precision (float32 or float64); scores accumulate in float64.
    max_memory : float
        Working-memory budget in bytes (beyond X, Y and the coefficients).
    refit : bool
        Refit on all ``rows`` at the chosen alphas and return coefficients.
    eval_rows : ndarray of int, optional
        Scans (outside ``rows``) on which to score the refit model (R^2);
        used by nested cross-validation.
    progress : bool
        Show a progress bar over folds and chunks.
    n_jobs : int or None, default=None
        Tasks over groups of whole target chunks (threads here, Dask tasks
        inside :func:`nilearn_vlm.parallel.use_dask`); each task decomposes
        the folds itself and uses up to ``max_memory``. None: 1 unless a
        joblib context says otherwise. Results are identical to one job's.
    scale : ndarray (n_cols,), optional
        Root mean square of each target before any cleaning (default: over
        ``rows`` of ``Y``). A validation set on which a target's centred sum
        of squares is at or below the variance floor relative to it
        (:mod:`nilearn_vlm._utils._guards`, in ``dtype``) gives no R^2
        there: float32 rounding leaves a flat run a variance of ~1e-12 that
        would give an R^2 of -1e12.

    Returns
    -------
    dict with ``alpha`` (n_cols,), ``cv_score`` (n_cols,), ``scores``
    (n_alphas, n_cols) mean R^2 over the folds where the target is not flat
    (NaN where it is flat in every fold), ``n_scored`` (n_cols,) the number
    of those folds, and with ``refit``: ``coef`` (p, n_cols), ``intercept``
    (n_cols,), and ``eval_score`` when ``eval_rows`` is given (NaN where the
    evaluation targets are flat).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 3)), rng.standard_normal((50, 4))
    >>> folds = [(np.arange(25, 50), np.arange(25)),
    ...          (np.arange(25), np.arange(25, 50))]
    >>> out = ridge_cv_path(X, Y, [0.1, 10.0], folds)
    >>> out["coef"].shape, out["alpha"].shape
    ((3, 4), (4,))
    """
    dtype = np.dtype(dtype)
    alphas = np.asarray(alphas, dtype=np.float64)
    rows = np.arange(X.shape[0]) if rows is None else np.asarray(rows)
    Xr = np.asarray(X[rows], dtype=dtype)
    n, p = Xr.shape
    n_cols = Y.shape[1] if cols is None else len(cols)
    chunk = chunk_size(n, p, len(alphas), folds, dtype.itemsize, max_memory,
                       n_cols)
    if scale is None:
        scale = column_scale(Y[rows] if cols is None else Y[np.ix_(rows, cols)])
    scale = np.asarray(scale, dtype=np.float64)
    if n_jobs != 1:
        from nilearn_vlm.parallel import chunk_groups

        groups = chunk_groups(n_cols, chunk, n_jobs)
        if len(groups) > 1:
            return _ridge_tasks(X, Y, alphas, folds, cols, rows, groups, n_jobs,
                                progress, dict(
                                    fit_intercept=fit_intercept, solver=solver,
                                    dtype=dtype, max_memory=max_memory,
                                    refit=refit, eval_rows=eval_rows,
                                    scale=scale, standardize=standardize))
    slices = _chunks(n_cols, chunk)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(slices) * (len(folds) + int(refit)),
                   desc="ridge (folds x voxel chunks)", leave=False)

    scores = np.zeros((len(alphas), n_cols))
    n_scored = np.zeros(n_cols, dtype=np.int64)
    for tr, va in folds:
        mean, sd = _fold_scaling(Xr, tr, fit_intercept, standardize, dtype)
        Xtr, Xva = Xr[tr] - mean, Xr[va] - mean
        if sd is not None:
            Xtr /= sd
            Xva /= sd
        s, W, V = decompose(Xtr, solver)
        A = Xva @ V
        del Xtr, Xva
        del V
        inv = (1.0 / (s[None, :].astype(np.float64) + alphas[:, None])).astype(dtype)
        n_tr, n_va = len(tr), len(va)
        if _direct(len(alphas), n_tr, n_va, W.shape[1]):
            # resolution matrices (A d_k) W^T, (n_va, n_tr) per alpha: no
            # projection of Y (cheaper in the kernel form)
            M = np.stack([(A * inv[k]) @ W.T for k in range(len(alphas))])
        else:
            M = None
        for sl in slices:
            c = sl if cols is None else cols[sl]
            Ytr, Yv = _take(Y, rows[tr], c, dtype), _take(Y, rows[va], c, dtype)
            if fit_intercept:
                # centring Y is exact in theory (W is orthogonal to the
                # constant) but in float32 an uncentred offset leaks through
                # near-null directions of the kernel, amplified by 1/alpha
                y_mean = Ytr.mean(0)
                Ytr -= y_mean
                Yv -= y_mean
            B = W.T @ Ytr if M is None else Ytr
            del Ytr
            sst = ((Yv - Yv.mean(0)) ** 2).sum(0, dtype=np.float64)
            ok = ~is_flat(sst, scale[sl], n_va, dtype)
            n_scored[sl] += ok
            P = np.empty_like(Yv)
            for k in range(len(alphas)):
                np.matmul(A * inv[k] if M is None else M[k], B, out=P)
                np.subtract(P, Yv, out=P)
                sse = np.einsum("ij,ij->j", P, P, dtype=np.float64)
                scores[k, sl] += np.nan_to_num(_r2(sse, sst, ok))
            del B, P, Yv
            if bar is not None:
                bar.update()
        del W, A, M
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(n_scored > 0, scores / np.maximum(n_scored, 1), np.nan)
    best = np.argmax(np.nan_to_num(scores, nan=-np.inf) + np.log(alphas)[:, None] * 1e-10, axis=0)
    out = dict(alpha=alphas[best], scores=scores, n_scored=n_scored,
               cv_score=scores[best, np.arange(n_cols)])
    if not refit:
        return out

    x_mean, x_sd = _fold_scaling(Xr, np.arange(n), fit_intercept, standardize, dtype)
    Xc = Xr - x_mean
    if x_sd is not None:
        Xc /= x_sd
    s_full, W_full, V_full = decompose(Xc, solver)
    del Xc
    if x_sd is not None:
        V_full = V_full / x_sd[:, None]  # coefficients of the unscaled features
    s_full = s_full.astype(np.float64)
    out["coef"] = np.empty((p, n_cols), dtype)
    out["intercept"] = np.empty(n_cols, dtype)
    if eval_rows is not None:
        Xe = np.asarray(X[eval_rows], dtype=dtype)
        out["eval_score"] = np.empty(n_cols)
    for sl in slices:
        c = sl if cols is None else cols[sl]
        Yc = _take(Y, rows, c, dtype)
        y_mean = Yc.mean(0) if fit_intercept else np.zeros(Yc.shape[1], dtype)
        if fit_intercept:
            Yc -= y_mean
        C = W_full.T @ Yc
        del Yc
        C /= (s_full[:, None] + out["alpha"][sl][None, :]).astype(dtype)
        coef = out["coef"][:, sl]
        np.matmul(V_full, C, out=coef)
        out["intercept"][sl] = y_mean - x_mean @ coef
        if eval_rows is not None:
            Ye = _take(Y, eval_rows, c, dtype)
            res = Xe @ coef + out["intercept"][sl] - Ye
            sst = ((Ye - Ye.mean(0)) ** 2).sum(0, dtype=np.float64)
            ok = ~is_flat(sst, scale[sl], len(eval_rows), dtype)
            out["eval_score"][sl] = _r2(
                np.einsum("ij,ij->j", res, res, dtype=np.float64), sst, ok)
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return out


def _ridge_tasks(X, Y, alphas, folds, cols, rows, groups, n_jobs, progress, kw):
    """:func:`ridge_cv_path` over groups of whole target chunks, as tasks.

    Each task gets only its targets (all scans), so the chunks it solves are
    those of a one-job run: same arithmetic, same results.
    """
    from nilearn_vlm.parallel import map_tasks

    dtype = kw["dtype"]
    idx = None if cols is None else np.asarray(cols)

    def args():
        for g in groups:
            c = g if idx is None else idx[g]
            yield (X, np.asarray(Y[:, c], dtype=dtype), alphas, folds, None, rows,
                   kw["fit_intercept"], kw["solver"], dtype, kw["max_memory"],
                   kw["refit"], kw["eval_rows"], False, 1, kw["scale"][g],
                   kw["standardize"])

    n_cols = groups[-1].stop
    out = None
    results = map_tasks(ridge_cv_path, args(), n_jobs=n_jobs, verbose=progress,
                        desc="ridge (voxel groups)", total=len(groups))
    for g, res in zip(groups, results):
        if out is None:
            out = {k: np.empty(v.shape[:-1] + (n_cols,), v.dtype)
                   for k, v in res.items()}
        for k, v in res.items():
            out[k][..., g] = v
    return out
