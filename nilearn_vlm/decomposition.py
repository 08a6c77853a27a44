"""Sparse dictionary learning over units: atoms and key neurons.

:class:`SparseAtoms` learns a dictionary of ``n_atoms`` representative time
courses ("atoms") from unit time series: each unit's time series is one
sample, so ``X.T (n_units, n_scans) ~ codes (n_units, n_atoms) @ atoms
(n_atoms, n_scans)`` with an l1 penalty on the codes (the objective of
scikit-learn's :class:`~sklearn.decomposition.DictionaryLearning`). The codes,
transposed, are the loadings ``(n_atoms, n_units)``.

**A dictionary that converges.** :func:`learn_dictionary` starts from a
varimax rotation of the exact principal subspace, solves the codes by
screened FISTA and the atoms by scikit-learn's block-coordinate update, and
stops when the relative decrease of the objective is at most ``tol`` (1e-5
by default); ``max_iter`` is a cap, and reaching it warns
(:class:`~sklearn.exceptions.ConvergenceWarning`). ``n_iter_``,
``converged_``, ``tol_reached_`` and ``objective_`` record where it stopped.

**Key neurons as a test.** The key neurons of an atom are the units that
dictionaries learned independently on complementary halves of the scans
select consistently (:func:`stable_key_neurons`: complementary-pairs
stability selection, Shah & Samworth 2013). Halves are made of contiguous
blocks of the runs (``groups`` in :meth:`SparseAtoms.fit`); each half's atoms
are matched to the full-data atoms by the Hungarian assignment; a half
selects the ``q`` units of largest absolute loading of each matched atom; a unit
selected in at least a share ``tau`` of the halves is a key neuron. The
expected number of false key neurons per atom is at most
``q^2 / ((2 tau - 1) n_units)`` (:func:`stability_error_bound`), stated in
the key-neuron table (``error_bound``); ``q`` is chosen so that this bound is
at most ``error_bound`` (0.5 by default). On pure-noise units no atom gets a
key neuron. Atom signs are arbitrary in dictionary learning, so each atom and
its loadings are flipped when most of its key neurons load negatively.
"""

import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.decomposition import DictionaryLearning, MiniBatchDictionaryLearning
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from nilearn_vlm._dictionary import DictionaryFit, learn_dictionary, sparse_codes
from nilearn_vlm._stability import (
    StableKeyNeurons,
    half_splits,
    match_atoms,
    stability_error_bound,
    stable_key_neurons,
)
from nilearn_vlm._utils import nilearn_input_tags
from nilearn_vlm.units import as_units_table, unit_groups

__all__ = [
    "DictionaryFit",
    "SparseAtoms",
    "StableKeyNeurons",
    "half_splits",
    "learn_dictionary",
    "match_atoms",
    "sparse_codes",
    "stability_error_bound",
    "stable_key_neurons",
]


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
        site (``stream.layer.kind``) of the unit names; atoms are stacked,
        and each dictionary gets its own key-neuron test.
    feature_names : list of str, units table or None, default=None
        Unit names ``stream.layer.kind.index``, or the units table of
        :class:`~nilearn_vlm.NeuronActivations` (``units_``, see
        :mod:`nilearn_vlm.units`); by default the columns of a DataFrame
        ``X``.
    init : {"varimax", "svd"}, default="varimax"
        Start of the atoms (``solver="cd"``): ``"varimax"``, a varimax
        rotation of the exact top ``n_atoms`` right singular vectors;
        ``"svd"``, scikit-learn's start (the same vectors scaled by the
        singular values), which follows ``DictionaryLearning``'s path.
    solver : {"cd", "minibatch", "batch"}, default="cd"
        ``"cd"``: :func:`learn_dictionary`, scikit-learn's batch objective and
        block-coordinate atom update, with the codes of all units solved at
        once and the objective stopping rule (``benchmarks/atoms.py``).
        ``"minibatch"``: :class:`~sklearn.decomposition.MiniBatchDictionaryLearning`;
        ``"batch"``: :class:`~sklearn.decomposition.DictionaryLearning`.
    code_solver : {"fista", "cd"}, default="fista"
        Lasso solver of the codes (``solver="cd"``): screened FISTA or
        vectorised coordinate descent (same objective).
    max_iter : int, default=500
        A cap on the iterations (``"cd"``, ``"batch"``) or epochs
        (``"minibatch"``); reaching it before ``tol`` warns
        (:class:`~sklearn.exceptions.ConvergenceWarning`).
    tol : float, default=1e-5
        ``"cd"``: stop when the relative decrease of the objective,
        ``|F_{t-1} - F_t| / F_t``, is at most ``tol``; ``"batch"`` and
        ``"minibatch"``: scikit-learn's ``tol``.
    key_neurons : {"stability"} or None, default="stability"
        ``"stability"``: key neurons by complementary-pairs stability
        selection (:func:`stable_key_neurons`; run labels through ``groups``
        in :meth:`fit`); None: no key neurons (faster, e.g. to learn the
        dictionary alone).
    n_pairs : int, default=10
        Complementary pairs of halves of the scans (``2 * n_pairs`` more
        dictionaries are learned per dictionary).
    n_blocks : int, default=8
        The halves are made of at least ``n_blocks`` contiguous blocks (each
        run is cut into ``ceil(n_blocks / n_runs)`` blocks).
    tau : float, default=0.9
        A key neuron is selected in at least this share of the halves.
    error_bound : float, default=0.5
        The stated bound on the expected number of false key neurons per
        atom; sets ``q``, the units each half selects per atom (an atom has
        at most ``q`` key neurons: ``q`` grows as the square root of the bound).
    batch_size : int, default=256
        Units per mini-batch (``"minibatch"``).
    fit_algorithm : {"cd", "lars"}, default="cd"
        Sparse coding algorithm of scikit-learn's solvers.
    random_state : int, RandomState or None, default=None
    n_jobs : int or None, default=None
        Jobs for sparse coding (scikit-learn's solvers).
    verbose : int, default=0

    Attributes
    ----------
    atoms_ : ndarray of shape (n_atoms_total, n_scans)
        The learned atoms (norm at most 1, sign-flipped).
    loadings_ : ndarray of float32, shape (n_atoms_total, n_units)
        Sparse codes of the units (zero outside an atom's group).
    key_neurons_ : ndarray of int8, shape (n_atoms_total, n_units)
        +1 for positive key neurons, -1 for negative ones, 0 elsewhere.
    key_frequency_ : ndarray of float32, shape (n_atoms_total, n_units)
        Share of the halves that selected each unit for each atom.
    atom_stability_ : ndarray of shape (n_atoms_total,)
        Share of the halves in which the atom is matched (``|r| >= 0.5``); NaN
        without key neurons.
    key_error_bound_ : ndarray of shape (n_atoms_total,)
        The stated bound on the expected number of false key neurons of each
        atom (:func:`stability_error_bound`); NaN without key neurons.
    key_q_ : ndarray of int, shape (n_atoms_total,)
        Units selected per half for each atom (0 without key neurons).
    atom_names_ : ndarray of str
        ``"atom<k>"``, or ``"<group>:atom<k>"`` with ``groupby``.
    atom_groups_ : ndarray of str
        Group of each atom (``"all"`` without ``groupby``).
    flipped_ : ndarray of bool
        Atoms whose sign was flipped.
    n_iter_ : ndarray of int
        Iterations (epochs) run by each dictionary's learner.
    converged_ : ndarray of bool
        Whether each dictionary reached its stopping rule before ``max_iter``.
    tol_reached_ : ndarray of float
        Relative change of the objective at each dictionary's last iteration
        (``"cd"``; NaN for scikit-learn's solvers).
    objective_ : ndarray of float
        Each dictionary's objective ``0.5 ||X - Z D||^2 + alpha ||Z||_1`` at
        the returned atoms and codes.
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
    >>> atoms.transform(X).shape, atoms.loadings_.shape, bool(atoms.converged_[0])
    ((100, 5), (5, 300), True)
    >>> int((atoms.key_neurons_ != 0).sum())  # pure noise: no key neuron
    0
    """

    _parameter_constraints = {
        "n_atoms": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "standardize": ["boolean"],
        "groupby": [StrOptions({"stream", "layer", "site"}), None],
        "feature_names": ["array-like", None],
        "init": [StrOptions({"varimax", "svd"})],
        "solver": [StrOptions({"cd", "minibatch", "batch"})],
        "code_solver": [StrOptions({"fista", "cd"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "key_neurons": [StrOptions({"stability"}), None],
        "n_pairs": [Interval(Integral, 1, None, closed="left")],
        "n_blocks": [Interval(Integral, 2, None, closed="left")],
        "tau": [Interval(Real, 0.5, 1, closed="right")],
        "error_bound": [Interval(Real, 0, None, closed="neither")],
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
        init="varimax",
        solver="cd",
        code_solver="fista",
        max_iter=500,
        tol=1e-5,
        key_neurons="stability",
        n_pairs=10,
        n_blocks=8,
        tau=0.9,
        error_bound=0.5,
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
        self.init = init
        self.solver = solver
        self.code_solver = code_solver
        self.max_iter = max_iter
        self.tol = tol
        self.key_neurons = key_neurons
        self.n_pairs = n_pairs
        self.n_blocks = n_blocks
        self.tau = tau
        self.error_bound = error_bound
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
            return DictionaryLearning(max_iter=self.max_iter, tol=self.tol, **common)
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
        """Standardized units ``idx`` as samples (n_units, n_scans).

        Built in chunks of units so no full-size temporary is made. float32
        for ``solver="cd"`` (its products run in float32, codes and atoms in
        float64); float64 for scikit-learn's solvers, whose coordinate descent
        converges poorly in float32.
        """
        dtype = np.float32 if self.solver == "cd" else np.float64
        out = np.empty((len(idx), X.shape[0]), dtype=dtype)
        for s in range(0, len(idx), chunk):
            j = idx[s : s + chunk]
            out[s : s + chunk] = ((X[:, j] - self.mean_[j]) / self.scale_[j]).T
        return out

    def _dictionary(self, data, k):
        """One dictionary: a :class:`DictionaryFit` (codes (k, n_units))."""
        if self.solver == "cd":
            return learn_dictionary(data, k, self.alpha, init=self.init, max_iter=self.max_iter, tol=self.tol,
                                    code_solver=self.code_solver, random_state=self.random_state, warn=False)
        learner = self._learner(k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            learner.fit(data)
        codes = learner.transform(data).T
        D = learner.components_
        objective = 0.5 * float(((data - codes.T @ D) ** 2).sum()) + self.alpha * float(np.abs(codes).sum())
        n_iter = int(learner.n_iter_)
        return DictionaryFit(D, codes, n_iter, n_iter < self.max_iter, float("nan"), objective)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, groups=None):
        """Learn the atoms, the units' sparse loadings and the key neurons.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_scans, n_units)
            Unit time series (one column per unit).
        y : None
            Ignored.
        groups : array-like of shape (n_scans,) or None, default=None
            Run label of each scan, as in :meth:`nilearn_vlm.VoxelGLM.fit`:
            the halves of the key-neuron test are made of blocks of runs.
            None: one run, cut into ``n_blocks`` contiguous blocks.

        Returns
        -------
        self
        """
        X = validate_data(self, X, dtype=[np.float32, np.float64], ensure_min_samples=2)
        n_scans, n_units = X.shape
        if groups is not None and np.shape(groups) != (n_scans,):
            raise ValueError(f"groups has {np.size(groups)} labels but X has {n_scans} scans (rows); "
                             "give one run label per scan.")
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
        dictionaries = self._groups(names, n_units)
        fits, tests, blocks, atom_names, atom_groups = [], [], [], [], []
        iterator = dictionaries.items()
        if self.verbose:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, total=len(dictionaries), desc="dictionaries")
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
            fit = self._dictionary(self._samples(X, idx), k)
            if not fit.converged:
                warnings.warn(
                    f"dictionary {key!r} reached max_iter={self.max_iter} before its stopping rule "
                    f"(relative objective change {fit.tol_reached:.1e}, tol={self.tol:.0e}); "
                    "raise max_iter.", ConvergenceWarning, stacklevel=2)
            tests.append(None if self.key_neurons is None else stable_key_neurons(
                X[:, idx], fit.atoms, self.alpha, groups=groups, n_pairs=self.n_pairs, n_blocks=self.n_blocks,
                tau=self.tau, error_bound=self.error_bound, random_state=self.random_state,
                dictionary_params={"code_solver": self.code_solver, "tol": max(self.tol, 1e-4)}))
            fits.append(fit)
            blocks.append(idx)
            prefix = "" if self.groupby is None else f"{key}:"
            atom_names += [f"{prefix}atom{j}" for j in range(k)]
            atom_groups += [key] * k
        self._finalize(fits, tests, blocks, n_units)
        self.atom_names_ = np.asarray(atom_names, dtype=object)
        self.atom_groups_ = np.asarray(atom_groups, dtype=object)
        self.n_iter_ = np.asarray([f.n_iter for f in fits])
        self.converged_ = np.asarray([f.converged for f in fits])
        self.tol_reached_ = np.asarray([f.tol_reached for f in fits])
        self.objective_ = np.asarray([f.objective for f in fits])
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

    def _finalize(self, fits, tests, blocks, n_units):
        n_total = sum(len(f.atoms) for f in fits)
        n_scans = fits[0].atoms.shape[1]
        self.atoms_ = np.zeros((n_total, n_scans))
        self.loadings_ = np.zeros((n_total, n_units), dtype=np.float32)
        self.key_neurons_ = np.zeros((n_total, n_units), dtype=np.int8)
        self.key_frequency_ = np.zeros((n_total, n_units), dtype=np.float32)
        self.atom_stability_ = np.full(n_total, np.nan)
        self.key_error_bound_ = np.full(n_total, np.nan)
        self.key_q_ = np.zeros(n_total, dtype=int)
        self.flipped_ = np.zeros(n_total, dtype=bool)
        self._projections = []
        row = 0
        for fit, test, idx in zip(fits, tests, blocks):
            D, A = fit.atoms, fit.codes
            k = len(D)
            rows = slice(row, row + k)
            signed = np.zeros(A.shape, dtype=np.int8) if test is None else test.key_neurons
            key = signed != 0
            n_pos, n_neg = (signed > 0).sum(1), (signed < 0).sum(1)
            # atoms without key neurons: heaviest loadings positive (skewness)
            mass = np.where(key.any(1), np.where(key, A, 0).sum(1), (A**3).sum(1))
            flip = (n_neg > n_pos) | ((n_neg == n_pos) & (mass < 0))
            s = np.where(flip, -1.0, 1.0)[:, None]
            D, A = D * s, A * s
            self.atoms_[rows] = D
            self.loadings_[rows][:, idx] = A  # basic slice: a view
            self.key_neurons_[rows][:, idx] = (signed * s).astype(np.int8)
            self.flipped_[rows] = flip
            if test is not None:
                self.key_frequency_[rows][:, idx] = test.frequency
                self.atom_stability_[rows] = test.atom_stability
                self.key_error_bound_[rows] = test.error_bound
                self.key_q_[rows] = test.q
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
        """One row per key neuron of each atom, with its stream, layer, kind and the stated bound.

        Returns
        -------
        pandas.DataFrame
            Columns ``atom, group, unit, name, stream, layer, kind, index,
            loading, frequency, atom_stability, error_bound, sign``:
            ``frequency`` is the share of halves that selected the unit,
            ``error_bound`` the bound on the expected number of false key
            neurons of the atom (:func:`stability_error_bound`); ``name`` is
            missing without unit names, ``stream, layer, kind, index``
            without a units table (names that are not
            ``stream.layer.kind.index``).
        """
        check_is_fitted(self)
        atom_idx, unit_idx = np.nonzero(self.key_neurons_)
        table = pd.DataFrame(
            {
                "atom": self.atom_names_[atom_idx],
                "group": self.atom_groups_[atom_idx],
                "unit": unit_idx,
                "loading": self.loadings_[atom_idx, unit_idx],
                "frequency": self.key_frequency_[atom_idx, unit_idx],
                "atom_stability": self.atom_stability_[atom_idx],
                "error_bound": self.key_error_bound_[atom_idx],
                "sign": self.key_neurons_[atom_idx, unit_idx],
            }
        )
        if self.unit_names_ is not None:
            table.insert(3, "name", self.unit_names_[unit_idx])
        if self.units_ is not None:
            rows = self.units_.iloc[unit_idx]
            for j, col in enumerate(("stream", "layer", "kind", "index")):
                table.insert(4 + j, col, rows[col].to_numpy())
        return table

    def atom_table(self):
        """One row per atom: its key-neuron test and its dictionary's convergence.

        Returns
        -------
        pandas.DataFrame
            Columns ``atom, group, n_key, n_positive, n_negative,
            atom_stability, q, error_bound, n_iter, converged, tol_reached,
            objective`` (the last four are those of the atom's dictionary).
        """
        check_is_fitted(self)
        keys = self.key_neurons_
        order = {g: i for i, g in enumerate(dict.fromkeys(self.atom_groups_.tolist()))}
        d = np.array([order[g] for g in self.atom_groups_.tolist()], dtype=int)
        return pd.DataFrame(
            {
                "atom": self.atom_names_,
                "group": self.atom_groups_,
                "n_key": (keys != 0).sum(1),
                "n_positive": (keys > 0).sum(1),
                "n_negative": (keys < 0).sum(1),
                "atom_stability": self.atom_stability_,
                "q": self.key_q_,
                "error_bound": self.key_error_bound_,
                "n_iter": self.n_iter_[d],
                "converged": self.converged_[d],
                "tol_reached": self.tol_reached_[d],
                "objective": self.objective_[d],
            }
        )

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
