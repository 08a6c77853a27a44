"""Key neurons as a test: complementary-pairs stability selection over dictionaries.

Re-exported by :mod:`nilearn_vlm.decomposition`; see
:func:`~nilearn_vlm.decomposition.stable_key_neurons`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from math import comb

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.utils import check_random_state

from nilearn_vlm._dictionary import learn_dictionary


def standardize_units(X, dtype=np.float32, chunk=8192):
    """Units of ``X (n_scans, n_units)`` as samples: rows centred, unit l2 norm (constant units: 0)."""
    n_scans, n_units = X.shape
    out = np.empty((n_units, n_scans), dtype=dtype)
    for s in range(0, n_units, chunk):
        b = np.asarray(X[:, s : s + chunk], dtype=np.float64)
        b = b - b.mean(0)
        norm = np.sqrt((b * b).sum(0))
        out[s : s + chunk] = (b / np.where(norm > 0, norm, 1.0)).T
    return out


def match_atoms(reference, atoms):
    """Assign atoms to reference atoms by the Hungarian method on the absolute correlation.

    Parameters
    ----------
    reference : ndarray of shape (k_ref, n_scans)
    atoms : ndarray of shape (k, n_scans)
        Time courses on the same scans.

    Returns
    -------
    index : ndarray of int, shape (k_ref,)
        Row of ``atoms`` matched to each reference atom (-1: unmatched, when
        ``k < k_ref``).
    r : ndarray of shape (k_ref,)
        Signed correlation of each matched pair (0 when unmatched).

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.decomposition import match_atoms
    >>> ref = np.random.default_rng(0).standard_normal((3, 50))
    >>> index, r = match_atoms(ref, -ref[[2, 0, 1]])
    >>> index.tolist(), r.round(3).tolist()
    ([1, 2, 0], [-1.0, -1.0, -1.0])
    """
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(atoms, dtype=np.float64)
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-300)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-300)
    c = a @ b.T
    rows, cols = linear_sum_assignment(-np.abs(c))
    index = np.full(len(a), -1)
    r = np.zeros(len(a))
    index[rows] = cols
    r[rows] = c[rows, cols]
    return index, r


def half_splits(groups, n_pairs=10, n_blocks=8, random_state=None):
    """Complementary halves of the scans, made of contiguous blocks of runs.

    Each run is cut into ``ceil(n_blocks / n_runs)`` contiguous blocks of
    (nearly) equal length, so that there are at least ``n_blocks`` blocks; a
    half is half of the blocks and its complement the other half. Blocks keep
    the autocorrelation of the scans inside a half. ``n_pairs`` distinct
    pairs are drawn (all of them when fewer exist).

    Parameters
    ----------
    groups : array-like of shape (n_scans,)
        Run label of each scan.
    n_pairs : int, default=10
    n_blocks : int, default=8
    random_state : int, RandomState or None, default=None

    Returns
    -------
    list of (ndarray of bool, ndarray of bool)
        ``(half, complement)`` masks over the scans.

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.decomposition import half_splits
    >>> pairs = half_splits(np.repeat([1, 2], 10), n_pairs=3, n_blocks=4, random_state=0)
    >>> len(pairs), [int(h.sum()) for h, _ in pairs]
    (3, [10, 10, 10])
    """
    groups = np.asarray(groups)
    labels = list(dict.fromkeys(groups.tolist()))
    per_run = -(-n_blocks // len(labels))
    block = np.empty(groups.size, dtype=int)
    nb = 0
    for label in labels:
        idx = np.flatnonzero(groups == label)
        for part in np.array_split(idx, min(per_run, idx.size)):
            block[part] = nb
            nb += 1
    if nb < 2:
        raise ValueError(
            f"stability selection needs at least 2 blocks of scans, got {nb} from {groups.size} scans; "
            "give more scans, or the run labels (groups=)."
        )
    half = nb // 2
    rng = np.random.default_rng(check_random_state(random_state).randint(2**31))
    total = comb(nb, half) // (2 if nb == 2 * half else 1)
    if total <= 4 * n_pairs:  # enumerate the pairs {S, complement}, with block 0 in S when halves are equal
        candidates = [c for c in combinations(range(nb), half) if 0 in c or nb != 2 * half]
        chosen = [candidates[i] for i in rng.permutation(len(candidates))[:n_pairs]]
    else:
        seen, chosen = set(), []
        while len(chosen) < n_pairs:
            c = tuple(sorted(int(b) for b in rng.choice(nb, half, replace=False)))
            key = c if (0 in c or nb != 2 * half) else tuple(sorted(set(range(nb)) - set(c)))
            if key not in seen:
                seen.add(key)
                chosen.append(c)
    out = []
    for c in chosen:
        m = np.isin(block, c)
        out.append((m, ~m))
    return out


def stability_error_bound(q, n_units, tau):
    """The stated bound on the expected number of false key neurons per atom.

    ``q^2 / ((2 tau - 1) p)`` for complementary-pairs stability selection of
    ``q`` units per half among ``p = n_units``, threshold ``tau > 1/2``
    (Shah & Samworth 2013, Theorem 1; Meinshausen & Buhlmann 2010). It holds
    for any number of pairs, when the null units are exchangeable and not
    more likely to be selected than the others.

    Examples
    --------
    >>> from nilearn_vlm.decomposition import stability_error_bound
    >>> round(stability_error_bound(24, 1536, 0.9), 3)
    0.469
    """
    return q * q / ((2 * tau - 1) * n_units)


def _q_for_bound(error_bound, n_units, tau):
    """Largest ``q`` (at least 1) whose :func:`stability_error_bound` is at most ``error_bound``."""
    return max(int(np.floor(np.sqrt(error_bound * (2 * tau - 1) * n_units) + 1e-9)), 1)


@dataclass
class StableKeyNeurons:
    """The result of :func:`~nilearn_vlm.decomposition.stable_key_neurons`.

    Attributes
    ----------
    key_neurons : ndarray of int8, shape (n_atoms, n_units)
        +1 / -1 for the stable key neurons (the sign of the mean oriented
        loading), 0 elsewhere.
    frequency : ndarray of shape (n_atoms, n_units)
        Share of the half-sample dictionaries that selected the unit for the atom.
    mean_loading : ndarray of shape (n_atoms, n_units)
        Mean oriented loading over the halves that selected the unit (0 when none).
    match_r : ndarray of shape (n_fits, n_atoms)
        Signed correlation of each atom with its matched atom in each half.
    atom_stability : ndarray of shape (n_atoms,)
        Share of halves in which the atom is matched at ``|r| >= min_match``.
    q : int
        Units selected per half and atom.
    tau : float
    error_bound : float
        The stated bound on the expected number of false key neurons per
        atom (:func:`~nilearn_vlm.decomposition.stability_error_bound`).
    n_fits : int
        Half-sample dictionaries learned (twice the pairs).
    """

    key_neurons: np.ndarray
    frequency: np.ndarray
    mean_loading: np.ndarray
    match_r: np.ndarray
    atom_stability: np.ndarray
    q: int
    tau: float
    error_bound: float
    n_fits: int


def stable_key_neurons(X, atoms, alpha, *, groups=None, n_pairs=10, n_blocks=8, tau=0.9, error_bound=0.5,
                       q=None, min_match=0.5, random_state=None, dictionary_params=None):
    """Key neurons of each atom by complementary-pairs stability selection.

    For each of ``n_pairs`` complementary halves of the scans
    (:func:`half_splits`: contiguous blocks of the runs), a dictionary with
    as many atoms as ``atoms`` is learned on each half independently (same
    ``alpha``, :func:`learn_dictionary` on the units standardised within the
    half; no warm start, which would leak the other half). Each atom,
    restricted to the half's scans, is matched to one half atom by the
    Hungarian assignment on the absolute correlation (:func:`match_atoms`); when
    ``|r| >= min_match`` the half *selects* the ``q`` units of largest
    nonzero absolute loading on it (oriented by the sign of ``r``), otherwise none.
    A unit is a key neuron of the atom when at least a share ``tau`` of the
    halves select it; its sign is that of its mean oriented loading.

    The stated bound: the expected number of falsely selected units per atom
    is at most ``q^2 / ((2 tau - 1) p)`` among ``p`` units
    (:func:`stability_error_bound`; Shah & Samworth 2013). By default ``q``
    is the largest value whose bound is at most ``error_bound``, so an atom
    has at most ``q`` key neurons.

    Parameters
    ----------
    X : array-like of shape (n_scans, n_units)
        Unit time series (not standardised).
    atoms : array-like of shape (n_atoms, n_scans)
        The atoms learned on all scans.
    alpha : float
        The l1 penalty the atoms were learned with.
    groups : array-like of shape (n_scans,) or None, default=None
        Run labels; None is one run (cut into ``n_blocks`` blocks).
    n_pairs : int, default=10
        Complementary pairs (``2 * n_pairs`` dictionaries are learned).
    n_blocks : int, default=8
        At least this many contiguous blocks (each run cut alike).
    tau : float in (0.5, 1], default=0.9
        Selection frequency of a key neuron.
    error_bound : float, default=0.5
        Target of the per-atom bound (ignored when ``q`` is given).
    q : int or None, default=None
    min_match : float, default=0.5
        Smallest ``|r|`` of a matched atom for a half to select units.
    random_state : int, RandomState or None, default=None
        Draws the pairs and seeds the half dictionaries.
    dictionary_params : dict or None, default=None
        Other arguments of :func:`learn_dictionary` for the halves (default
        ``tol=1e-4``).

    Returns
    -------
    StableKeyNeurons

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.decomposition import learn_dictionary, stable_key_neurons
    >>> rng = np.random.default_rng(0)
    >>> source = rng.standard_normal(400)
    >>> X = rng.standard_normal((400, 100))
    >>> X[:, :4] += 2 * source[:, None]
    >>> units = (X - X.mean(0)) / np.linalg.norm(X - X.mean(0), axis=0)
    >>> fit = learn_dictionary(units.T, 4, alpha=0.2, random_state=0)
    >>> res = stable_key_neurons(X, fit.atoms, 0.2, n_pairs=5, random_state=0)
    >>> sorted(np.flatnonzero(np.abs(res.key_neurons).sum(0)).tolist()), res.q
    ([0, 1, 2, 3], 6)
    """
    if not 0.5 < tau <= 1:
        raise ValueError(f"tau must be in (0.5, 1], got {tau!r}: a unit must be selected in more than half "
                         "of the halves.")
    X = np.asarray(X)
    n_scans, p = X.shape
    atoms = np.asarray(atoms, dtype=np.float64)
    if atoms.ndim != 2 or atoms.shape[1] != n_scans:
        raise ValueError(f"atoms has shape {atoms.shape}; give (n_atoms, n_scans) with n_scans = {n_scans} "
                         "(the rows of X).")
    groups = np.ones(n_scans, dtype=int) if groups is None else np.asarray(groups)
    if groups.shape != (n_scans,):
        raise ValueError(f"groups has {groups.size} labels but X has {n_scans} scans; give one run label per scan.")
    k = len(atoms)
    q = _q_for_bound(error_bound, p, tau) if q is None else int(q)
    rng = check_random_state(random_state)
    params = {"tol": 1e-4, **(dictionary_params or {}), "warn": False}
    counts = np.zeros((k, p))
    summed = np.zeros((k, p))
    match_r = []
    for pair in half_splits(groups, n_pairs, n_blocks, rng.randint(2**31)):
        for mask in pair:
            fit = learn_dictionary(standardize_units(X[mask]), k, alpha, random_state=rng.randint(2**31), **params)
            index, r = match_atoms(atoms[:, mask], fit.atoms)
            match_r.append(r)
            for i in np.flatnonzero(np.abs(r) >= min_match):
                z = fit.codes[index[i]] * np.sign(r[i])
                nonzero = np.flatnonzero(z)
                top = nonzero[np.argsort(-np.abs(z[nonzero]), kind="stable")[:q]]
                counts[i, top] += 1
                summed[i, top] += z[top]
    n_fits = len(match_r)
    frequency = counts / n_fits
    mean_loading = np.divide(summed, counts, out=np.zeros_like(summed), where=counts > 0)
    key = np.where(frequency >= tau - 1e-12, np.sign(mean_loading), 0).astype(np.int8)
    match_r = np.array(match_r)
    return StableKeyNeurons(key, frequency, mean_loading, match_r, (np.abs(match_r) >= min_match).mean(0),
                            q, float(tau), stability_error_bound(q, p, tau), n_fits)
