"""Tests of SparseAtoms: lasso optimality, planted atoms, signs, tables (see also test_dictionary, test_key_neurons)."""

import warnings

import numpy as np
import pandas as pd
import pytest

from nilearn_vlm.decomposition import SparseAtoms

warnings.filterwarnings("ignore", message=".*did not converge.*")


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """One BLAS thread: small LAPACK calls are many times slower when the
    shared test machine is oversubscribed."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _planted(seed=0, n_trs=200, n_sources=4, per_source=40, n_noise=200):
    """Units: groups driven by sources (80% positive), plus pure-noise units."""
    rng = np.random.default_rng(seed)
    S = rng.standard_normal((n_trs, n_sources))
    cols, owner, sign = [], [], []
    for k in range(n_sources):
        s = np.where(rng.random(per_source) < 0.8, 1.0, -1.0)
        cols.append(S[:, [k]] * s * 2 + rng.standard_normal((n_trs, per_source)))
        owner += [k] * per_source
        sign += list(s)
    cols.append(rng.standard_normal((n_trs, n_noise)))
    owner += [-1] * n_noise
    sign += [0] * n_noise
    X = np.concatenate(cols, axis=1)
    names = [f"{'vision' if o % 2 else 'text'}.{max(o, 0)}.attn_out.{i}"
             for i, o in enumerate(owner)]
    return X, S, np.array(owner), np.array(sign), names


def _match(S, atoms):
    c = np.corrcoef(S.T, atoms)[: S.shape[1], S.shape[1]:]
    best = np.abs(c).argmax(1)
    return best, c[np.arange(len(best)), best]


def test_loadings_satisfy_lasso_optimality():
    X, *_ = _planted(seed=1)
    model = SparseAtoms(n_atoms=6, alpha=0.15, batch_size=32, random_state=0).fit(X)
    Xs = (X - X.mean(0)) / np.linalg.norm(X - X.mean(0), axis=0)
    D = model.atoms_  # (k, T), sign flips do not change optimality
    C = model.loadings_.astype(np.float64)  # (k, units)
    grad = D @ (Xs - D.T @ C)  # correlation of the residual with the atoms
    on = C != 0
    assert on.any() and (~on).any()
    np.testing.assert_allclose(grad[on], 0.15 * np.sign(C[on]), atol=2e-3)
    assert np.all(np.abs(grad[~on]) <= 0.15 + 2e-3)


def test_recovers_planted_atoms_key_neurons_and_signs():
    X, S, owner, sign, names = _planted()
    # 40 key units per source: a bound of 6 false key neurons per atom lets q reach 41
    model = SparseAtoms(n_atoms=6, alpha=0.15, error_bound=6.0, random_state=0).fit(X)
    assert model.key_q_[0] == 41
    best, r = _match(S, model.atoms_)
    assert np.all(np.abs(r) > 0.9)
    # flipped so that most key neurons load positively: the driving units
    # are 80% positive, so every matched atom correlates positively
    assert np.all(r > 0)
    for k, a in enumerate(best):
        key = model.key_neurons_[a]
        truth = owner == k
        tp = np.sum((key != 0) & truth)
        f1 = 2 * tp / ((key != 0).sum() + truth.sum())
        assert f1 >= 0.9
        agree = np.sign(key[truth & (key != 0)]) == sign[truth & (key != 0)]
        assert agree.mean() >= 0.95


def test_transform_is_least_squares_on_loadings():
    X, S, *_ = _planted(seed=2)
    model = SparseAtoms(n_atoms=5, alpha=0.15, batch_size=32, random_state=0).fit(X)
    Xs = (X - X.mean(0)) / np.linalg.norm(X - X.mean(0), axis=0)
    ref = np.linalg.lstsq(model.loadings_.T.astype(float), Xs.T, rcond=None)[0].T
    np.testing.assert_allclose(model.transform(X), ref, atol=1e-4)
    Z = model.transform(X[:50])
    assert Z.shape == (50, 5)
    # training time courses are the atoms refitted: same shape of signal
    c = [np.corrcoef(a, z)[0, 1] for a, z in zip(model.atoms_, model.transform(X).T)]
    assert np.min(c) > 0.9


def test_tables_from_dataframe_names():
    X, S, owner, sign, names = _planted()
    df = pd.DataFrame(X, columns=names)
    model = SparseAtoms(n_atoms=6, alpha=0.15, batch_size=32, random_state=0).fit(df)
    assert list(model.feature_names_in_) == names
    table = model.key_neuron_table()
    atom_idx, unit_idx = np.nonzero(model.key_neurons_)
    assert len(table) == len(atom_idx)
    assert set(table.columns) >= {"atom", "name", "stream", "layer", "kind", "frequency", "error_bound"}
    assert np.all(table["frequency"] >= model.tau)
    row = table.iloc[0]
    assert row["name"] == names[row["unit"]]
    attrib = model.attribution_table(by="stream")
    a0 = model.atom_names_[0]
    n_vision = sum(
        1 for u in np.flatnonzero(model.key_neurons_[0] > 0)
        if names[u].startswith("vision")
    )
    got = attrib.query("atom == @a0 and stream == 'vision'")["n_positive"]
    assert (got.sum() if len(got) else 0) == n_vision


def test_groupby_learns_one_dictionary_per_group():
    X, S, owner, sign, names = _planted()
    model = SparseAtoms(
        n_atoms=3, alpha=0.15, groupby="stream", feature_names=names, batch_size=32,
        random_state=0,
    ).fit(X)
    assert list(np.unique(model.atom_groups_)) == ["text", "vision"]
    assert model.atoms_.shape[0] == 6
    vision = np.array([n.startswith("vision") for n in names])
    for a, g in enumerate(model.atom_groups_):
        outside = vision if g == "text" else ~vision
        assert np.all(model.loadings_[a, outside] == 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # names given as a parameter, X an array
        assert model.transform(X).shape == (X.shape[0], 6)
    assert model.atom_names_[0].startswith("text:atom")
    assert list(model.unit_names_) == names


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(n_atoms=0), r"'n_atoms' parameter of SparseAtoms must be an int in the range \[1, inf\)"),
        (dict(alpha=-1.0), r"'alpha' parameter of SparseAtoms must be a float in the range \[0.0, inf\)"),
        (dict(groupby="head"), "'groupby' parameter of SparseAtoms must be a str among .* Got 'head'"),
        (dict(solver="spams"), "'solver' parameter of SparseAtoms must be a str among .* Got 'spams'"),
        (dict(feature_names=["a.0.b.0"]), "feature_names has 1 names"),
        (dict(groupby="layer"), "needs unit names"),
    ],
)
def test_errors(params, match):
    X = np.random.default_rng(0).standard_normal((30, 20))
    with pytest.raises(ValueError, match=match):
        SparseAtoms(**{"n_atoms": 2, **params}).fit(X)


def test_batch_solver_and_sklearn_contract():
    from sklearn.base import clone

    X, S, *_ = _planted(seed=3, n_trs=120, per_source=30, n_noise=60)
    model = SparseAtoms(n_atoms=5, alpha=0.15, solver="batch", max_iter=30,
                        random_state=0)
    best, r = _match(S, clone(model).fit(X).atoms_)
    assert np.all(np.abs(r) > 0.9)
    assert SparseAtoms().get_params()["n_atoms"] == 64


def test_sparse_codes_equal_sklearn_lasso():
    from sklearn.decomposition import sparse_encode

    from nilearn_vlm.decomposition import sparse_codes

    rng = np.random.default_rng(4)
    D = rng.standard_normal((8, 50))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((300, 8)) * (rng.random((300, 8)) < 0.3) @ D
    X += 0.1 * rng.standard_normal(X.shape)
    ours = sparse_codes(X, D, alpha=0.2, tol=1e-10, max_iter=1000)
    ref = sparse_encode(X, D, algorithm="lasso_cd", alpha=0.2, max_iter=5000)
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    warm = sparse_codes(X, D, alpha=0.2, init=ref, tol=1e-10, max_iter=1000)
    np.testing.assert_allclose(warm, ref, atol=1e-6)


def test_minibatch_solver_recovers_planted_atoms():
    X, S, *_ = _planted(seed=0)  # mini-batch can stall in local minima (seed=5)
    model = SparseAtoms(n_atoms=6, alpha=0.15, solver="minibatch", batch_size=32, error_bound=6.0,
                        random_state=0).fit(X)
    _, r = _match(S, model.atoms_)
    assert np.all(np.abs(r) > 0.9) and np.all(r > 0)
