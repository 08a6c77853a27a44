"""Sparse dictionary learning over units: atoms and key neurons.

:class:`SparseAtoms` learns, with scikit-learn's (mini-batch) dictionary
learning, a dictionary of ``n_atoms`` representative time courses ("atoms")
from unit time series: each unit's time series is one sample, so
``X.T (n_units, n_scans) ~ codes (n_units, n_atoms) @ atoms (n_atoms, n_scans)``
with an l1 penalty on the codes. The codes, transposed, are the loadings
``(n_atoms, n_units)``; units whose z-scored loading on an atom reaches
``key_threshold`` in absolute value are that atom's key neurons (the 1.96
convention of the LLM_ACTIVATION code of this line of work). Atom signs are
arbitrary in dictionary learning, so each atom and its loadings are flipped
when most of its key neurons load negatively.
"""

import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.decomposition import DictionaryLearning, MiniBatchDictionaryLearning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from nilearn_vlm._utils import nilearn_input_tags, zscore
from nilearn_vlm.units import as_units_table, unit_groups

__all__ = ["SparseAtoms", "learn_dictionary", "sparse_codes"]


def sparse_codes(samples, atoms, alpha, init=None, max_iter=200, tol=1e-6,
                 chunk=4096):
    """Lasso codes of many samples on a fixed dictionary (vectorized).

    Solves, for every row ``x`` of ``samples``,
    ``min_c 0.5 * ||x - c @ atoms||^2 + alpha * ||c||_1`` (the objective of
    :func:`sklearn.decomposition.sparse_encode` with ``algorithm="lasso_cd"``)
    by cyclic coordinate descent run on all samples of a chunk at once, on the
    Gram matrix of the atoms; only samples whose code moves are updated.

    Parameters
    ----------
    samples : ndarray of shape (n_samples, n_times)
    atoms : ndarray of shape (n_atoms, n_times)
    alpha : float
    init : ndarray of shape (n_samples, n_atoms), default=None
        Warm start.
    max_iter : int, default=200
        Maximum sweeps over the atoms.
    tol : float, default=1e-6
        Stop when the largest change of a code in a sweep is below
        ``tol * max(|codes|)``.
    chunk : int, default=4096
        Samples solved together.

    Returns
    -------
    ndarray of shape (n_samples, n_atoms)

    Examples
    --------
    >>> import numpy as np
    >>> D = np.eye(3)
    >>> sparse_codes(np.array([[2.0, 0.5, -3.0]]), D, alpha=1.0).tolist()
    [[1.0, 0.0, -2.0]]
    """
    atoms = np.asarray(atoms, dtype=np.float64)
    G = atoms @ atoms.T
    diag = np.diag(G).copy()
    n, k = samples.shape[0], atoms.shape[0]
    codes = np.zeros((n, k)) if init is None else np.array(init, dtype=np.float64)
    D32 = atoms.astype(samples.dtype, copy=False)
    for s in range(0, n, chunk):
        C = (D32 @ samples[s : s + chunk].T).astype(np.float64, copy=False)
        code = np.ascontiguousarray(codes[s : s + chunk].T)
        R = C - G @ code
        for _ in range(max_iter):
            max_delta = 0.0
            for j in range(k):
                if diag[j] <= 0:
                    continue
                rho = R[j] + diag[j] * code[j]
                new = (np.maximum(rho - alpha, 0) + np.minimum(rho + alpha, 0)) / diag[j]
                moved = np.flatnonzero(new != code[j])
                if moved.size:
                    delta = new[moved] - code[j, moved]
                    R[:, moved] -= np.outer(G[:, j], delta)
                    code[j, moved] = new[moved]
                    max_delta = max(max_delta, float(np.abs(delta).max()))
            if max_delta <= tol * max(float(np.abs(code).max()), 1e-12):
                break
        codes[s : s + chunk] = code.T
    return codes


def learn_dictionary(samples, n_atoms, alpha, max_iter=30, tol=1e-3,
                     inner_iter=1, random_state=None, verbose=0):
    """Batch dictionary learning by alternating lasso codes and atom updates.

    The objective of :class:`sklearn.decomposition.DictionaryLearning`
    (``0.5 ||X - codes @ atoms||^2 + alpha ||codes||_1``, atoms of norm at
    most 1): initialised from a randomized SVD as scikit-learn does, codes by
    :func:`sparse_codes` warm-started between iterations, atoms by
    scikit-learn's block coordinate update. Stops when no atom moves by more
    than ``tol`` (l2).

    Parameters
    ----------
    samples : ndarray of shape (n_samples, n_times)
    n_atoms : int
    alpha : float
    max_iter : int, default=30
    tol : float, default=1e-3
    inner_iter : int, default=1
        Passes of the atom update per iteration (the codes are fixed, so
        more passes solve the atom step more fully at little cost).
    random_state : int, RandomState or None
    verbose : int, default=0

    Returns
    -------
    atoms : ndarray of shape (n_atoms, n_times)
    codes : ndarray of shape (n_samples, n_atoms)
    n_iter : int
    """
    from sklearn.utils import check_random_state
    from sklearn.utils.extmath import randomized_svd

    rng = check_random_state(random_state)
    _, S, Vt = randomized_svd(samples, n_atoms, n_iter=3, random_state=rng)
    D = Vt.astype(np.float64)
    codes = None
    it = 0
    iterator = range(max_iter)
    if verbose:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="dictionary learning")
    for it in iterator:
        codes = sparse_codes(samples, D, alpha, init=codes, tol=1e-4)
        A = codes.T @ codes
        B = (samples.T @ codes.astype(samples.dtype)).astype(np.float64)
        old = D.copy()
        for _ in range(inner_iter):  # block coordinate descent on the atoms
            for j in range(n_atoms):
                if A[j, j] < 1e-12:  # unused atom: restart it on a random sample
                    D[j] = samples[rng.randint(len(samples))]
                    D[j] /= max(np.linalg.norm(D[j]), 1e-12)
                    continue
                D[j] += (B[:, j] - A[j] @ D) / A[j, j]
                D[j] /= max(np.linalg.norm(D[j]), 1.0)
        if np.max(np.linalg.norm(D - old, axis=1)) < tol:
            break
    codes = sparse_codes(samples, D, alpha, init=codes)
    return D, codes, it + 1


class SparseAtoms(TransformerMixin, BaseEstimator):
    """Dictionary learning over units: atoms (time courses) and key neurons.

    Parameters
    ----------
    n_atoms : int, default=64
        Number of atoms per dictionary (64 in this line of work).
    alpha : float, default=0.1
        l1 penalty on the codes (sparsity). With ``standardize=True`` each
        unit has unit l2 norm, so a unit loads on an atom only when its
        correlation with the atom's residual exceeds about ``alpha``.
    standardize : bool, default=True
        Centre each unit over time and scale it to unit l2 norm.
    groupby : {None, "stream", "layer", "site"}, default=None
        Learn one dictionary per stream, per layer (``stream.layer``) or per
        site (``stream.layer.kind``) of the unit names; atoms are stacked.
    feature_names : list of str, units table or None, default=None
        Unit names ``stream.layer.kind.index``, or the units table of
        :class:`~nilearn_vlm.NeuronActivations` (``units_``, see
        :mod:`nilearn_vlm.units`); by default the columns of a DataFrame
        ``X``.
    key_threshold : float, default=1.96
        Key neurons of an atom: ``|z(loading)| >= key_threshold``, the
        z-score taken over the units of the atom's dictionary.
    solver : {"cd", "minibatch", "batch"}, default="cd"
        ``"cd"``: :func:`learn_dictionary`, scikit-learn's batch objective
        and atom update with the lasso codes solved for all units at once by
        vectorized coordinate descent (:func:`sparse_codes`; 4-5x faster per
        unit than scikit-learn's one-Lasso-per-unit coding, see
        ``benchmarks/atoms.py``). ``"minibatch"``:
        :class:`~sklearn.decomposition.MiniBatchDictionaryLearning`;
        ``"batch"``: :class:`~sklearn.decomposition.DictionaryLearning`.
    max_iter : int, default=30
        Iterations (``"cd"``, ``"batch"``) or epochs (``"minibatch"``).
    tol : float, default=1e-3
        ``"cd"``: stop when no atom moves by more than ``tol``;
        ``"minibatch"``: scikit-learn's ``tol``.
    batch_size : int, default=256
        Units per mini-batch (``"minibatch"``).
    fit_algorithm : {"cd", "lars"}, default="cd"
        Sparse coding algorithm during learning.
    random_state : int, RandomState or None, default=None
    n_jobs : int or None, default=None
        Jobs for sparse coding.
    verbose : int, default=0

    Attributes
    ----------
    atoms_ : ndarray of shape (n_atoms_total, n_scans)
        The learned atoms (unit norm, sign-flipped).
    loadings_ : ndarray of float32, shape (n_atoms_total, n_units)
        Sparse codes of the units (zero outside an atom's group).
    key_neurons_ : ndarray of int8, shape (n_atoms_total, n_units)
        +1 for positive key neurons, -1 for negative ones, 0 elsewhere.
    atom_names_ : ndarray of str
        ``"atom<k>"``, or ``"<group>:atom<k>"`` with ``groupby``.
    atom_groups_ : ndarray of str
        Group of each atom (``"all"`` without ``groupby``).
    flipped_ : ndarray of bool
        Atoms whose sign was flipped.
    n_iter_ : ndarray of int
        Epochs (iterations) run by each dictionary's learner.
    mean_, scale_ : ndarray of shape (n_units,)
        Standardization of the units.
    unit_names_ : ndarray of str or None
        Unit names (``feature_names`` or a DataFrame's columns).
    units_ : pandas.DataFrame or None
        The units table (``feature_names`` when it is one, else built from
        the unit names, see :func:`nilearn_vlm.units.units_table`); None when
        the units have no names or names that are not
        ``stream.layer.kind.index``.
    feature_names_in_ : ndarray of str
        A DataFrame's columns (set for DataFrames only, as in scikit-learn).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm import SparseAtoms
    >>> X = np.random.default_rng(0).standard_normal((100, 300))
    >>> atoms = SparseAtoms(n_atoms=5, random_state=0).fit(X)
    >>> atoms.transform(X).shape, atoms.loadings_.shape
    ((100, 5), (5, 300))
    """

    _parameter_constraints = {
        "n_atoms": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "standardize": ["boolean"],
        "groupby": [StrOptions({"stream", "layer", "site"}), None],
        "feature_names": ["array-like", None],
        "key_threshold": [Interval(Real, 0, None, closed="neither")],
        "solver": [StrOptions({"cd", "minibatch", "batch"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "fit_algorithm": [StrOptions({"cd", "lars"})],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_atoms=64,
        alpha=0.1,
        standardize=True,
        groupby=None,
        feature_names=None,
        key_threshold=1.96,
        solver="cd",
        max_iter=30,
        tol=1e-3,
        batch_size=256,
        fit_algorithm="cd",
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.n_atoms = n_atoms
        self.alpha = alpha
        self.standardize = standardize
        self.groupby = groupby
        self.feature_names = feature_names
        self.key_threshold = key_threshold
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.fit_algorithm = fit_algorithm
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _learner(self, n_components):
        common = dict(
            n_components=n_components,
            alpha=self.alpha,
            fit_algorithm=self.fit_algorithm,
            transform_algorithm="lasso_cd",
            transform_alpha=self.alpha,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
        if self.solver == "batch":
            return DictionaryLearning(max_iter=self.max_iter, **common)
        return MiniBatchDictionaryLearning(
            max_iter=self.max_iter,
            batch_size=self.batch_size,
            tol=self.tol,
            verbose=max(self.verbose - 1, 0),
            **common,
        )

    def _standardize(self, X):
        Xs = (X - self.mean_) / self.scale_
        return Xs.astype(np.float32, copy=False)

    def _samples(self, X, idx, chunk=4096):
        """Standardized units ``idx`` as samples (n_units, n_scans), float64.

        Built in chunks of units so no full-size temporary is made. float32
        for ``solver="cd"`` (its products run in float32, codes in float64);
        float64 for scikit-learn's solvers, whose coordinate descent converges
        poorly in float32.
        """
        dtype = np.float32 if self.solver == "cd" else np.float64
        out = np.empty((len(idx), X.shape[0]), dtype=dtype)
        for s in range(0, len(idx), chunk):
            j = idx[s : s + chunk]
            out[s : s + chunk] = ((X[:, j] - self.mean_[j]) / self.scale_[j]).T
        return out

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the atoms and the units' sparse loadings.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_scans, n_units)
            Unit time series (one column per unit).
        y : None
            Ignored.

        Returns
        -------
        self
        """
        X = validate_data(self, X, dtype=[np.float32, np.float64], ensure_min_samples=2)
        n_scans, n_units = X.shape
        names = self._names(n_units)
        self.unit_names_ = None if names is None else np.asarray(names, dtype=object)
        self.units_ = self._units(names)
        if self.standardize:
            self.mean_ = X.mean(axis=0)
            scale = np.sqrt(((X - self.mean_) ** 2).sum(axis=0))
            self.scale_ = np.where(scale > 0, scale, 1.0)
        else:
            self.mean_ = np.zeros(n_units)
            self.scale_ = np.ones(n_units)
        groups = self._groups(names, n_units)
        atoms, blocks, atom_names, atom_groups = [], [], [], []
        loadings, n_iter = [], []
        iterator = groups.items()
        if self.verbose:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, total=len(groups), desc="dictionaries")
        for key, idx in iterator:
            k = self.n_atoms
            if len(idx) < k:
                warnings.warn(
                    f"group {key!r} has {len(idx)} units, fewer than n_atoms={k}; "
                    f"learning {len(idx)} atoms for it.",
                    UserWarning,
                    stacklevel=2,
                )
                k = len(idx)
            data = self._samples(X, idx)
            if self.solver == "cd":
                D, codes, it = learn_dictionary(
                    data, k, self.alpha, max_iter=self.max_iter, tol=self.tol,
                    random_state=self.random_state, verbose=max(self.verbose - 1, 0),
                )
                codes = codes.T
            else:
                learner = self._learner(k)
                learner.fit(data)
                codes = learner.transform(data).T  # (k, n_group_units)
                D, it = learner.components_, learner.n_iter_
            del data
            atoms.append(D)
            n_iter.append(it)
            blocks.append(idx)
            loadings.append(codes)
            prefix = "" if self.groupby is None else f"{key}:"
            atom_names += [f"{prefix}atom{j}" for j in range(k)]
            atom_groups += [key] * k
        self._finalize(atoms, loadings, blocks, n_units)
        self.atom_names_ = np.asarray(atom_names, dtype=object)
        self.atom_groups_ = np.asarray(atom_groups, dtype=object)
        self.n_iter_ = np.asarray(n_iter)
        return self

    def _names(self, n_units):
        if isinstance(self.feature_names, pd.DataFrame):
            names = as_units_table(self.feature_names)["name"].tolist()
            if len(names) != n_units:
                raise ValueError(
                    f"the units table in feature_names has {len(names)} units but X has {n_units} "
                    "units (columns); give one row per column."
                )
            return names
        if self.feature_names is not None:
            names = [str(n) for n in self.feature_names]
            if len(names) != n_units:
                raise ValueError(
                    f"feature_names has {len(names)} names but X has {n_units} "
                    "units (columns); give one name per column."
                )
            return names
        names = getattr(self, "feature_names_in_", None)
        return None if names is None else [str(n) for n in names]

    def _units(self, names):
        if isinstance(self.feature_names, pd.DataFrame):
            return as_units_table(self.feature_names)
        if names is None:
            return None
        try:
            return as_units_table(names)
        except ValueError:
            return None

    def _groups(self, names, n_units):
        if self.groupby is None:
            return {"all": np.arange(n_units)}
        if self.units_ is None:
            bad = "" if names is None else f" (got names such as {names[0]!r})"
            raise ValueError(
                f"groupby={self.groupby!r} needs unit names 'stream.layer.kind.index'{bad}: "
                "pass X as a DataFrame with named columns or feature_names=."
            )
        keys = unit_groups(self.units_, self.groupby).astype(object)
        _, first = np.unique(keys, return_index=True)
        order = keys[np.sort(first)]
        return {key: np.flatnonzero(keys == key) for key in order}

    def _finalize(self, atoms, loadings, blocks, n_units):
        n_total = sum(len(a) for a in atoms)
        n_scans = atoms[0].shape[1]
        self.atoms_ = np.zeros((n_total, n_scans))
        self.loadings_ = np.zeros((n_total, n_units), dtype=np.float32)
        self.key_neurons_ = np.zeros((n_total, n_units), dtype=np.int8)
        self.flipped_ = np.zeros(n_total, dtype=bool)
        self._projections = []
        row = 0
        for D, A, idx in zip(atoms, loadings, blocks):
            k = len(D)
            key = np.abs(zscore(A, axis=1)) >= self.key_threshold
            signed = np.sign(A) * key
            n_pos, n_neg = (signed > 0).sum(1), (signed < 0).sum(1)
            mass = np.where(key, A, 0).sum(1)
            flip = (n_neg > n_pos) | ((n_neg == n_pos) & (mass < 0))
            s = np.where(flip, -1.0, 1.0)[:, None]
            D, A = D * s, A * s
            rows = slice(row, row + k)
            self.atoms_[rows] = D
            self.loadings_[rows][:, idx] = A  # basic slice: a view
            self.key_neurons_[rows][:, idx] = (signed * s).astype(np.int8)
            self.flipped_[rows] = flip
            self._projections.append((idx, np.linalg.pinv(A).astype(np.float32)))
            row += k

    def transform(self, X):
        """Time courses of the atoms in new unit time series.

        The least-squares fit of the standardized units on the loadings,
        ``Xs @ pinv(loadings)`` per dictionary: for the training data this
        is the atoms refitted given the codes (close to ``atoms_.T`` up to
        each atom's scale).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_scans, n_units)

        Returns
        -------
        ndarray of shape (n_scans, n_atoms_total)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        Xs = self._standardize(X)
        out = [Xs[:, idx] @ P for idx, P in self._projections]
        return np.concatenate(out, axis=1).astype(X.dtype, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return nilearn_input_tags(tags)

    def get_feature_names_out(self, input_features=None):
        """Atom names, the output features of :meth:`transform`."""
        check_is_fitted(self)
        return self.atom_names_.copy()

    # ------------------------------------------------------------ tables
    def key_neuron_table(self):
        """One row per key neuron of each atom, with its stream, layer, kind.

        Returns
        -------
        pandas.DataFrame
            Columns ``atom, group, unit, name, stream, layer, kind, index,
            loading, z, sign``; ``name`` is missing without unit names,
            ``stream, layer, kind, index`` without a units table (names
            that are not ``stream.layer.kind.index``).
        """
        check_is_fitted(self)
        atom_idx, unit_idx = np.nonzero(self.key_neurons_)
        z = np.zeros(len(atom_idx))
        start = 0
        for idx, P in self._projections:
            rows = np.arange(start, start + P.shape[1])
            start += P.shape[1]
            sel = np.isin(atom_idx, rows)
            Z = zscore(self.loadings_[rows][:, idx].astype(np.float64), axis=1)
            z[sel] = Z[atom_idx[sel] - rows[0], np.searchsorted(idx, unit_idx[sel])]
        table = pd.DataFrame(
            {
                "atom": self.atom_names_[atom_idx],
                "group": self.atom_groups_[atom_idx],
                "unit": unit_idx,
                "loading": self.loadings_[atom_idx, unit_idx],
                "sign": self.key_neurons_[atom_idx, unit_idx],
            }
        )
        if self.unit_names_ is not None:
            table.insert(3, "name", self.unit_names_[unit_idx])
        if self.units_ is not None:
            rows = self.units_.iloc[unit_idx]
            for j, col in enumerate(("stream", "layer", "kind", "index")):
                table.insert(4 + j, col, rows[col].to_numpy())
        table.insert(len(table.columns) - 1, "z", z)
        return table

    def attribution_table(self, by=("stream", "layer", "kind")):
        """Key neurons of each atom counted by stream, layer and unit kind.

        Parameters
        ----------
        by : str or tuple of str, default=("stream", "layer", "kind")
            Columns of :meth:`key_neuron_table` to group by (with ``atom``).

        Returns
        -------
        pandas.DataFrame
            Columns ``atom, *by, n_positive, n_negative, n_key``.
        """
        by = (by,) if isinstance(by, str) else tuple(by)
        table = self.key_neuron_table()
        missing = [b for b in by if b not in table.columns]
        if missing:
            raise ValueError(
                f"cannot group by {missing}: unit names are unknown; fit with a "
                "DataFrame or feature_names= ('stream.layer.kind.index')."
            )
        table = table.assign(
            n_positive=(table["sign"] > 0).astype(int),
            n_negative=(table["sign"] < 0).astype(int),
        )
        out = (
            table.groupby(["atom", *by], sort=False)[["n_positive", "n_negative"]]
            .sum()
            .reset_index()
        )
        out["n_key"] = out["n_positive"] + out["n_negative"]
        return out
