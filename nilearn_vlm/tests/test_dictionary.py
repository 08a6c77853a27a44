"""The dictionary learner of SparseAtoms against scikit-learn, and its stopping rule."""

import warnings

import numpy as np
import pytest
from sklearn.decomposition import DictionaryLearning, dict_learning, sparse_encode
from sklearn.exceptions import ConvergenceWarning

from nilearn_vlm.decomposition import SparseAtoms, learn_dictionary, sparse_codes
from nilearn_vlm.testing import simulate_subject


@pytest.fixture(autouse=True)
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _standardized(X):
    """Units of X (n_scans, n_units) as rows: centred, unit norm."""
    Xc = X - X.mean(0)
    return np.ascontiguousarray((Xc / np.linalg.norm(Xc, axis=0)).T)


def _planted_benchmark(n_units, n_scans, n_sources, seed=0):
    """Gamma-smoothed sources; 30% of units driven by one of them, plus white noise (benchmarks/atoms.py)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_scans)
    S = rng.standard_normal((n_scans, n_sources))
    kernel = t[:30] ** 5 * np.exp(-t[:30]) / 120
    S = np.stack([np.convolve(s, kernel)[:n_scans] for s in S.T], 1)
    S /= S.std(0)
    owner = rng.integers(0, n_sources, n_units)
    sign = rng.choice([1.0, 1.0, 1.0, -1.0], n_units)
    driven = rng.random(n_units) < 0.3
    X = rng.standard_normal((n_scans, n_units)) + S[:, owner] * (sign * driven)
    return X, S


def test_svd_start_follows_sklearn_per_iteration():
    rng = np.random.default_rng(0)
    samples = _standardized(rng.standard_normal((40, 300)))
    _, _, errors = dict_learning(samples, 8, alpha=0.1, max_iter=25, tol=0, method="cd", random_state=0,
                                 method_max_iter=10_000)
    fit = learn_dictionary(samples, 8, 0.1, init="svd", max_iter=25, tol=0, code_tol=1e-10, random_state=0,
                           warn=False)
    ours = np.array([row["objective"] for row in fit.trace])
    assert len(ours) == len(errors) == 25
    np.testing.assert_allclose(ours, errors, rtol=1e-6)
    # the estimator's class, through its callback (every 5 iterations), on the same data
    seen = []
    DictionaryLearning(8, alpha=0.1, max_iter=25, tol=0, fit_algorithm="cd", random_state=0,
                       callback=lambda loc: seen.append(float(loc["current_cost"]))).fit(samples)
    np.testing.assert_allclose(ours[::5], seen, rtol=1e-6)


@pytest.mark.parametrize("solver", ["fista", "cd"])
def test_codes_equal_sklearn_sparse_encode(solver):
    rng = np.random.default_rng(4)
    D = rng.standard_normal((8, 50))
    D[1] = 0.8 * D[0] + 0.6 * D[1]  # correlated atoms
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((300, 8)) * (rng.random((300, 8)) < 0.3) @ D
    X += 0.1 * rng.standard_normal(X.shape)
    ref = sparse_encode(X, D, algorithm="lasso_cd", alpha=0.2, max_iter=100_000)
    ours = sparse_codes(X, D, alpha=0.2, tol=1e-12, max_iter=100_000, solver=solver)
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    np.testing.assert_array_equal(ours != 0, ref != 0)
    assert (ref == 0).any(axis=1).sum() > 50  # the screening has units to skip
    warm = sparse_codes(X, D, alpha=0.2, init=ref, tol=1e-12, max_iter=100_000, solver=solver)
    np.testing.assert_allclose(warm, ref, atol=1e-6)


def test_default_reaches_sklearn_objective_on_planted_problem():
    X, S = _planted_benchmark(800, 240, 12, seed=0)
    samples = _standardized(X)
    sk = DictionaryLearning(12, alpha=0.1, max_iter=30, fit_algorithm="cd", transform_algorithm="lasso_cd",
                            transform_alpha=0.1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk_codes = sk.fit_transform(samples)
    sk_objective = 0.5 * ((samples - sk_codes @ sk.components_) ** 2).sum() + 0.1 * np.abs(sk_codes).sum()
    fit = learn_dictionary(samples.astype(np.float32), 12, 0.1, random_state=0)
    assert fit.converged and fit.n_iter < 500 and fit.tol_reached <= 1e-5
    assert fit.objective <= sk_objective * (1 + 1e-4)
    # the recorded objective is the objective of the returned pair
    direct = 0.5 * ((samples - fit.codes.T @ fit.atoms) ** 2).sum() + 0.1 * np.abs(fit.codes).sum()
    np.testing.assert_allclose(fit.objective, direct, rtol=1e-6)
    best = np.abs(np.corrcoef(S.T, fit.atoms)[:12, 12:]).max(1)
    best_sk = np.abs(np.corrcoef(S.T, sk.components_)[:12, 12:]).max(1)
    assert (best > 0.9).mean() >= (best_sk > 0.9).mean()


def test_converges_on_the_simulator_and_records_it():
    sub = simulate_subject(0, units_per_layer=16, n_scans_per_run=150, n_null_voxels=10, voxels_per_network=2)
    model = SparseAtoms(n_atoms=16, random_state=0, key_neurons=None).fit(sub.X)
    assert model.converged_.tolist() == [True]
    assert 1 <= model.n_iter_[0] < model.max_iter
    assert 0 <= model.tol_reached_[0] <= model.tol
    samples = _standardized(sub.X.astype(np.float64))
    Z = model.loadings_.astype(np.float64)
    direct = 0.5 * ((samples - Z.T @ model.atoms_) ** 2).sum() + model.alpha * np.abs(Z).sum()
    np.testing.assert_allclose(model.objective_[0], direct, rtol=1e-4)
    table = model.atom_table()
    assert table["converged"].all() and (table["n_iter"] == model.n_iter_[0]).all()
    # every planted source is matched by an atom
    best = np.abs(np.corrcoef(sub.sources.T, model.atoms_)[:8, 8:]).max(1)
    assert best.min() > 0.9


def test_cap_warns_and_records_not_converged():
    sub = simulate_subject(1, units_per_layer=8, key_units=(2, 4), n_scans_per_run=100, n_null_voxels=10,
                           voxels_per_network=2)
    with pytest.warns(ConvergenceWarning, match=r"reached max_iter=2 before its stopping rule .* raise max_iter"):
        model = SparseAtoms(n_atoms=8, max_iter=2, tol=1e-12, random_state=0, key_neurons=None).fit(sub.X)
    assert model.converged_.tolist() == [False] and model.n_iter_.tolist() == [2]
    assert model.tol_reached_[0] > 1e-12


def test_svd_and_cd_options_reach_the_same_objective():
    X, _ = _planted_benchmark(600, 200, 8, seed=1)
    fits = {(init, solver): SparseAtoms(n_atoms=8, init=init, code_solver=solver, random_state=0,
                                        key_neurons=None).fit(X)
            for init, solver in (("varimax", "fista"), ("varimax", "cd"), ("svd", "fista"))}
    objectives = np.array([m.objective_[0] for m in fits.values()])
    np.testing.assert_allclose(objectives, objectives.min(), rtol=2e-3)
    assert all(m.converged_[0] for m in fits.values())
