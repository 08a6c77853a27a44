"""Cross-validation folds that never shuffle time."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut, check_cv


def make_folds(cv, n_scans, runs=None, *, n_blocks=5):
    """Cross-validation folds that never shuffle time.

    Parameters
    ----------
    cv : None, int, splitter or iterable of (train, test)
        None: leave-one-run-out when at least 2 runs are given, else
        ``n_blocks`` contiguous blocks (:class:`~sklearn.model_selection.KFold`
        without shuffling: the first ``n_scans % n_blocks`` blocks hold one
        scan more). int k: :class:`~sklearn.model_selection.GroupKFold` over
        runs when runs are given (whole runs are held out), else ``k``
        contiguous blocks. A splitter (its ``split(X, groups=runs)`` is used)
        or an iterable of index pairs is used as given.
    n_scans : int
    runs : array-like of int (n_scans,), optional
    n_blocks : int, default=5
        Contiguous blocks of a single run when ``cv`` is None.

    Returns
    -------
    list of (train, test) index arrays

    Examples
    --------
    >>> [len(te) for _, te in make_folds(None, 10)]
    [2, 2, 2, 2, 2]
    >>> [len(te) for _, te in make_folds(None, 10, n_blocks=4)]
    [3, 3, 2, 2]
    >>> [te.tolist() for _, te in make_folds(None, 4, runs=[0, 0, 1, 1])]
    [[0, 1], [2, 3]]
    """
    dummy = np.empty((n_scans, 0))
    n_runs = 0 if runs is None else len(np.unique(runs))
    if cv is None or isinstance(cv, Integral):
        if runs is not None and n_runs >= 2:
            if cv is None or cv == n_runs:
                splitter = LeaveOneGroupOut()
            elif cv > n_runs:
                raise ValueError(
                    f"cv={cv} folds but only {n_runs} runs: use cv=None "
                    f"(leave-one-run-out) or at most {n_runs} folds."
                )
            else:
                splitter = GroupKFold(cv)
            _, counts = np.unique(runs, return_counts=True)
            if counts.min() < 2:
                raise ValueError(
                    f"A run has only {counts.min()} scan(s): each run must "
                    f"have at least 2 scans to be held out as a fold."
                )
        else:
            k = int(n_blocks) if cv is None else int(cv)
            if k < 2:
                raise ValueError(f"cv must be at least 2 folds; got {k}.")
            if n_scans < 2 * k:
                raise ValueError(
                    f"{n_scans} scans are too few for {k} contiguous folds "
                    f"(at least 2 scans per fold): pass a smaller cv, or "
                    f"runs through groups."
                )
            # one run (or none): blocks of it; KFold takes no groups (it warns when given them)
            return [(tr, te) for tr, te in KFold(k, shuffle=False).split(dummy)]
        return [(tr, te) for tr, te in splitter.split(dummy, groups=runs)]
    splitter = check_cv(cv)
    folds = [(np.asarray(tr), np.asarray(te))
             for tr, te in splitter.split(dummy, groups=runs)]
    for tr, te in folds:
        if len(tr) < 2 or len(te) < 1:
            raise ValueError("Each fold needs at least 2 training scans and 1 "
                             "test scan; check cv.")
    return folds


def fold_labels(runs, n_blocks=5):
    """Fold of each scan for leave-one-fold-out: the runs, or blocks of one run.

    The labels of :func:`make_folds` with ``cv=None``, as one integer per
    scan (1, 2, ...): fold ``k`` holds out the ``k``-th run in sorted order
    when there are at least 2 runs, else the ``k``-th of ``n_blocks``
    contiguous blocks.

    Parameters
    ----------
    runs : array-like of shape (n_scans,)
        Run label of each scan.
    n_blocks : int, default=5
        Blocks of a single run.

    Returns
    -------
    ndarray of int, shape (n_scans,)

    Examples
    --------
    >>> fold_labels([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], n_blocks=4).tolist()
    [1, 1, 1, 2, 2, 2, 3, 3, 4, 4]
    >>> fold_labels(["b", "b", "a", "a"]).tolist()
    [2, 2, 1, 1]
    """
    runs = np.asarray(runs)
    several = np.unique(runs).size >= 2
    folds = make_folds(None, runs.size, runs if several else None, n_blocks=n_blocks)
    labels = np.zeros(runs.size, dtype=np.int64)
    for k, (_, test) in enumerate(folds, start=1):
        labels[test] = k
    return labels
