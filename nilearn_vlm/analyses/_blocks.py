"""Time blocks within runs: held-out predictions reduced to sums per block.

The paired tests of the comparison analyses resample *time blocks within
runs* (contiguous stretches of scans, long enough to hold the BOLD's
autocorrelation), never voxels. What a test needs of a model's held-out
predictions is a few sums per block and voxel, so results keep those sums
instead of the predictions:

- :func:`bold_block_sums`: ``n``, ``sum y``, ``sum y^2`` of the BOLD;
- :func:`prediction_block_sums`: ``sum p``, ``sum p^2``, ``sum p y``.

Both are taken after centring each run on its own mean (BOLD and
predictions alike), so run baselines never enter and float32 storage keeps
its precision. From them: the within-run correlation of a model with the
BOLD with any blocks left out (:func:`within_run_r`), and the squared error
per block (:func:`block_sse`, :func:`block_sst`); the squared error of
all units refitted without each layer (:func:`layer_deleted_sse`), the
delete-one-layer jackknife of a model's units.
"""

from __future__ import annotations

import numpy as np

from nilearn_vlm._utils import blas_threads, fold_labels


def time_blocks(runs, block_length=20):
    """Block of each scan: contiguous blocks of about ``block_length`` scans inside each run.

    Each run of ``m`` scans is cut into ``max(1, round(m / block_length))``
    blocks of (nearly) equal length, so no block straddles two runs.

    Parameters
    ----------
    runs : array-like of shape (n_scans,)
        Run label of each scan (runs in order of first appearance).
    block_length : int, default=20
        Scans per block (20 scans = 40 s at TR 2 s: several times the
        autocorrelation length of BOLD noise).

    Returns
    -------
    blocks : ndarray of int, shape (n_scans,)
        Block index 0, 1, ... of each scan.
    block_runs : ndarray, shape (n_blocks,)
        Run label of each block.

    Examples
    --------
    >>> blocks, block_runs = time_blocks([1] * 6 + [2] * 4, block_length=3)
    >>> blocks.tolist(), block_runs.tolist()
    ([0, 0, 0, 1, 1, 1, 2, 2, 2, 2], [1, 1, 2])
    """
    runs = np.asarray(runs)
    if runs.ndim != 1:
        raise ValueError(f"runs must be 1-D (one label per scan), got shape {runs.shape}")
    if int(block_length) < 1:
        raise ValueError(f"block_length must be a positive number of scans, got {block_length!r}")
    blocks = np.empty(runs.size, dtype=np.int64)
    block_runs, nb = [], 0
    for r in dict.fromkeys(runs.tolist()):
        idx = np.flatnonzero(runs == r)
        k = max(1, int(round(idx.size / int(block_length))))
        lab = np.minimum(np.arange(idx.size) * k // idx.size, k - 1)
        blocks[idx] = nb + lab
        block_runs += [r] * k
        nb += k
    return blocks, np.asarray(block_runs)


def _run_centred(a, runs):
    out = np.array(a, dtype=np.float64, copy=True)
    for r in np.unique(runs):
        sel = runs == r
        out[sel] -= out[sel].mean(axis=0)
    return out


def _onehot(blocks):
    blocks = np.asarray(blocks)
    onehot = np.zeros((int(blocks.max()) + 1, blocks.size))
    onehot[blocks, np.arange(blocks.size)] = 1.0
    return onehot


def bold_block_sums(Y, runs, blocks):
    """``n``, ``sum y`` and ``sum y^2`` per block and voxel of the run-centred BOLD.

    Parameters
    ----------
    Y : array-like (n_scans, n_voxels)
    runs, blocks : array-like (n_scans,)
        Run and block (:func:`time_blocks`) of each scan.

    Returns
    -------
    ndarray of float64, shape (3, n_blocks, n_voxels)

    Examples
    --------
    >>> s = bold_block_sums(np.arange(4.0)[:, None], [1, 1, 1, 1], [0, 0, 1, 1])
    >>> s[:, :, 0].tolist()
    [[2.0, 2.0], [-2.0, 2.0], [2.5, 2.5]]
    """
    Y = _run_centred(Y, np.asarray(runs))
    onehot = _onehot(blocks)
    n = np.broadcast_to(onehot.sum(1)[:, None], (onehot.shape[0], Y.shape[1]))
    with blas_threads(1):  # small products: threads only contend
        return np.stack([n, onehot @ Y, onehot @ (Y * Y)])


def prediction_block_sums(pred, Y, runs, blocks):
    """``sum p``, ``sum p^2`` and ``sum p y`` per block and voxel (run-centred).

    Parameters
    ----------
    pred, Y : array-like (n_scans, n_voxels)
        Held-out predictions and the BOLD.
    runs, blocks : array-like (n_scans,)

    Returns
    -------
    ndarray of float64, shape (3, n_blocks, n_voxels)
    """
    pred, Y = np.asarray(pred), np.asarray(Y)
    if pred.shape != Y.shape:
        raise ValueError(f"pred and Y must have the same shape; got {pred.shape} and {Y.shape}")
    runs = np.asarray(runs)
    P, Yc = _run_centred(pred, runs), _run_centred(Y, runs)
    onehot = _onehot(blocks)
    with blas_threads(1):
        return np.stack([onehot @ P, onehot @ (P * P), onehot @ (P * Yc)])


def within_run_r(pred_sums, bold_sums, block_runs, drop=None):
    """Correlation of predictions and BOLD within runs, from block sums; ``drop`` leaves blocks out.

    The kept blocks of each run are pooled and centred on their own mean
    (run baselines never enter), and the centred cross-products of all runs
    are added: the within-run Pearson r.

    Parameters
    ----------
    pred_sums : ndarray (3, n_blocks, n_voxels)
        :func:`prediction_block_sums`.
    bold_sums : ndarray (3, n_blocks, n_voxels)
        :func:`bold_block_sums`.
    block_runs : array-like (n_blocks,)
    drop : int, array of int or None
        Blocks left out (the jackknife); None keeps all.

    Returns
    -------
    ndarray (n_voxels,)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> runs = np.repeat([1, 2], 40)
    >>> blocks, block_runs = time_blocks(runs, 20)
    >>> y = rng.standard_normal((80, 2)); p = y + rng.standard_normal((80, 2))
    >>> r = within_run_r(prediction_block_sums(p, y, runs, blocks), bold_block_sums(y, runs, blocks), block_runs)
    >>> yc = y - np.r_[y[:40].mean(0)[None].repeat(40, 0), y[40:].mean(0)[None].repeat(40, 0)]
    >>> pc = p - np.r_[p[:40].mean(0)[None].repeat(40, 0), p[40:].mean(0)[None].repeat(40, 0)]
    >>> bool(np.allclose(r, (yc * pc).sum(0) / np.sqrt((yc**2).sum(0) * (pc**2).sum(0))))
    True
    """
    block_runs = np.asarray(block_runs)
    keep = np.ones(block_runs.size, bool)
    if drop is not None:
        keep[np.atleast_1d(drop)] = False
    sp, spp, spy = (np.asarray(a, dtype=np.float64) for a in pred_sums)
    n, sy, syy = (np.asarray(a, dtype=np.float64) for a in bold_sums)
    cxx = cyy = cxy = 0.0
    for r in dict.fromkeys(block_runs.tolist()):
        sel = keep & (block_runs == r)
        if not sel.any():
            continue
        nn = n[sel].sum(0)
        px, py = sp[sel].sum(0), sy[sel].sum(0)
        cxx = cxx + spp[sel].sum(0) - px * px / nn
        cyy = cyy + syy[sel].sum(0) - py * py / nn
        cxy = cxy + spy[sel].sum(0) - px * py / nn
    with np.errstate(invalid="ignore", divide="ignore"):
        return cxy / np.sqrt(cxx * cyy)


def block_sse(pred_sums, bold_sums):
    """Squared error ``sum (y - p)^2`` per block and voxel (run-centred y and p).

    Returns
    -------
    ndarray (n_blocks, n_voxels)
    """
    return (np.asarray(bold_sums[2], np.float64) - 2 * np.asarray(pred_sums[2], np.float64)
            + np.asarray(pred_sums[1], np.float64))


def block_sst(bold_sums):
    """Sum of squares of the BOLD around each block's own mean, per block and voxel.

    Returns
    -------
    ndarray (n_blocks, n_voxels)
    """
    n, sy, syy = (np.asarray(a, dtype=np.float64) for a in bold_sums)
    with np.errstate(invalid="ignore", divide="ignore"):
        return syy - np.where(n > 0, sy * sy / np.where(n > 0, n, 1), 0.0)


def heldout_predictions(X, Y, runs, n_components=16, alpha=1.0):
    """Leave-one-run-out predictions of ridge on features reduced inside the training runs.

    In each fold the features are z-scored and reduced to their first
    ``n_components`` principal components *on the training runs only*, then a
    ridge of penalty ``alpha`` maps them to the BOLD. Reducing every model's
    features to the same number of components makes models of different
    widths comparable (a dimension-matched baseline) without leaking the
    held-out run into the reduction.

    Parameters
    ----------
    X : array-like (n_scans, n_features)
    Y : array-like (n_scans, n_voxels)
    runs : array-like (n_scans,)
        Folds are the runs (4 contiguous blocks for a single run).
    n_components : int, default=16
        At most ``min(n_features, n_training_scans - 1)`` are used.
    alpha : float, default=1.0

    Returns
    -------
    ndarray of float32 (n_scans, n_voxels)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> S = rng.standard_normal((120, 3))  # three sources behind 30 features
    >>> X = S @ rng.standard_normal((3, 30)) + 0.1 * rng.standard_normal((120, 30))
    >>> Y = S[:, :1] + 0.5 * rng.standard_normal((120, 1))
    >>> pred = heldout_predictions(X, Y, np.repeat([1, 2, 3], 40), n_components=3)
    >>> pred.shape, bool(np.corrcoef(pred[:, 0], Y[:, 0])[0, 1] > 0.5)
    ((120, 1), True)
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must be (n_scans, ...) with the same scans; got {X.shape} and {Y.shape}")
    folds = fold_labels(np.asarray(runs), 4)
    pred = np.empty(Y.shape, dtype=np.float32)
    with blas_threads(1):  # many small factorisations: threads only contend
        for f in np.unique(folds):
            tr, te = folds != f, folds == f
            mu, sd = X[tr].mean(0), X[tr].std(0)
            sd[sd == 0] = 1.0
            Z = (X[tr] - mu) / sd
            k = int(min(n_components, Z.shape[1], Z.shape[0] - 1))
            V = _principal_axes(Z, k)
            F, Fte = Z @ V, ((X[te] - mu) / sd) @ V
            fm, ym = F.mean(0), Y[tr].mean(0)
            F, Fte = F - fm, Fte - fm
            B = np.linalg.solve(F.T @ F + alpha * np.eye(k), F.T @ (Y[tr] - ym))
            pred[te] = Fte @ B + ym
    return pred


def layer_groups(units):
    """The model's layers as (stream, layer) groups: a label per unit and the stream of each group.

    Groups are numbered in order of first appearance in the units table (the
    order of ``Results.stream_layer_sse["all"]``'s rows).

    Parameters
    ----------
    units : pandas.DataFrame
        Units table with ``stream`` and ``layer``.

    Returns
    -------
    labels : ndarray of int (n_units,)
    group_streams : ndarray of str (n_groups,)

    Examples
    --------
    >>> import pandas as pd
    >>> lab, st = layer_groups(pd.DataFrame({"stream": ["v", "v", "t", "v"], "layer": [0, 1, 0, 0]}))
    >>> lab.tolist(), st.tolist()
    ([0, 1, 2, 0], ['v', 'v', 't'])
    """
    keys = list(zip(units["stream"].astype(str), units["layer"].tolist()))
    order = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    return np.array([order[k] for k in keys]), np.array([k[0] for k in order], dtype=object)


def layer_deleted_sse(X, Y, runs, labels, n_components=16):
    """Held-out squared error of all units refitted without each layer group (delete-one-layer jackknife).

    For each group ``g`` of ``labels`` (in order of first appearance), the
    leave-one-run-out predictions of :func:`heldout_predictions` from the
    columns of ``X`` outside ``g``, and their squared error against ``Y``
    after centring both on each run's mean, summed over scans: the
    ``block_sse`` of those predictions summed over blocks.

    Parameters
    ----------
    X : array-like (n_scans, n_units)
    Y : array-like (n_scans, n_voxels)
    runs : array-like (n_scans,)
    labels : array-like (n_units,)
        Group of each unit (:func:`layer_groups`).
    n_components : int, default=16

    Returns
    -------
    ndarray of float64 (n_groups, n_voxels)
    """
    X, labels, runs = np.asarray(X), np.asarray(labels), np.asarray(runs)
    if labels.shape != (X.shape[1],):
        raise ValueError(f"labels must give a group to each of the {X.shape[1]} units, got shape {labels.shape}")
    Yc = _run_centred(Y, runs)
    out = []
    for g in dict.fromkeys(labels.tolist()):
        pred = _run_centred(heldout_predictions(X[:, labels != g], Y, runs, n_components), runs)
        out.append(((Yc - pred) ** 2).sum(0))
    return np.vstack(out) if out else np.zeros((0, Yc.shape[1]))


def _principal_axes(Z, k):
    """The first ``k`` right singular vectors of ``Z`` from the smaller Gram matrix (signs arbitrary)."""
    n, p = Z.shape
    if p <= n:
        w, v = np.linalg.eigh(Z.T @ Z)
        return v[:, ::-1][:, :k]
    w, u = np.linalg.eigh(Z @ Z.T)
    w, u = w[::-1][:k], u[:, ::-1][:, :k]
    return (Z.T @ u) / np.sqrt(np.maximum(w, 1e-12))
