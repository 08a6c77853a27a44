"""Key neurons by complementary-pairs stability selection: null (stated bound) and planted subjects."""

import numpy as np
import pytest
from scipy.stats import binomtest

from nilearn_vlm.decomposition import (
    SparseAtoms,
    half_splits,
    match_atoms,
    stability_error_bound,
    stable_key_neurons,
)
from nilearn_vlm.testing import simulate_subject

SMALL = dict(units_per_layer=16, n_scans_per_run=150, n_null_voxels=10, voxels_per_network=2)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _key_triples(model, sub):
    """Predicted and planted (atom, unit, sign) triples, sources matched to atoms by assignment."""
    index, r = match_atoms(sub.sources.T, model.atoms_)
    truth = {(int(index[s]), int(u), int(sub.unit_sign[u] * np.sign(r[s])))
             for s in range(len(index)) for u in sub.key_units[s]}
    atoms, units = np.nonzero(model.key_neurons_)
    pred = {(int(a), int(u), int(model.key_neurons_[a, u])) for a, u in zip(atoms, units)}
    return pred, truth, r


def test_pure_noise_units_respect_the_stated_bound():
    """Atoms with any key neuron on pure-noise units: Clopper-Pearson interval against the bound."""
    n_reps, n_atoms = 4, 16
    counts = []
    for rep in range(n_reps):
        sub = simulate_subject(100 + rep, pure_noise=True, **SMALL)
        model = SparseAtoms(n_atoms=n_atoms, random_state=rep).fit(sub.X, groups=sub.runs)
        counts.append((model.key_neurons_ != 0).sum(1))
        bound = model.key_error_bound_[0]
    counts = np.concatenate(counts)
    assert bound == pytest.approx(stability_error_bound(12, 384, 0.9)) and bound <= 0.5
    # P(an atom has a false key neuron) <= E[false key neurons per atom] <= bound
    ci = binomtest(int((counts > 0).sum()), counts.size).proportion_ci(method="exact")
    assert ci.low <= bound
    assert counts.mean() <= bound


def test_planted_subject_precision_and_recall():
    sub = simulate_subject(0, **SMALL)
    model = SparseAtoms(n_atoms=16, random_state=0, feature_names=sub.units).fit(sub.X, groups=sub.runs)
    pred, truth, r = _key_triples(model, sub)
    assert np.abs(r).min() > 0.9
    tp = len(pred & truth)
    assert tp / len(pred) >= 0.9 and tp / len(truth) >= 0.9
    table = model.key_neuron_table()
    assert len(table) == len(pred)
    assert set(table.columns) >= {"atom", "name", "stream", "layer", "frequency", "error_bound", "sign"}
    assert (table["frequency"] >= model.tau).all()
    assert table["error_bound"].iloc[0] == pytest.approx(stability_error_bound(model.key_q_[0], 384, 0.9))
    # names come from the units table
    assert table["name"].tolist() == sub.units["name"].to_numpy()[table["unit"]].tolist()
    atoms = model.atom_table()
    matched = np.zeros(len(atoms), bool)
    matched[match_atoms(sub.sources.T, model.atoms_)[0]] = True
    assert (atoms.loc[matched, "atom_stability"] >= 0.9).all()
    # atoms follow most of their key neurons
    assert (atoms.loc[matched, "n_positive"] >= atoms.loc[matched, "n_negative"]).all()


def test_one_run_uses_blocks_within_the_run():
    sub = simulate_subject(2, n_runs=1, n_scans_per_run=600, **{k: v for k, v in SMALL.items()
                                                                 if k != "n_scans_per_run"})
    model = SparseAtoms(n_atoms=16, random_state=0).fit(sub.X)
    pred, truth, _ = _key_triples(model, sub)
    tp = len(pred & truth)
    assert tp / len(pred) >= 0.9 and tp / len(truth) >= 0.9


def test_half_splits_are_complementary_blocks_of_runs():
    runs = np.repeat([3, 1, 2, 4], 50)
    pairs = half_splits(runs, n_pairs=10, n_blocks=8, random_state=0)
    assert len(pairs) == 10
    seen = set()
    for half, other in pairs:
        assert half.sum() == other.sum() == 100 and not (half & other).any()
        # contiguous blocks of 25 scans, never across runs
        for mask in (half, other):
            edges = np.flatnonzero(np.diff(mask.astype(int))) + 1
            assert all(e % 25 == 0 for e in edges)
        seen.add(min(tuple(np.flatnonzero(half)), tuple(np.flatnonzero(other))))
    assert len(seen) == 10  # distinct pairs
    assert len(half_splits(runs, n_pairs=100, n_blocks=4)) == 3  # all pairs of 4 blocks
    with pytest.raises(ValueError, match="at least 2 blocks"):
        half_splits(np.ones(1), n_blocks=8)


def test_errors_name_the_problem():
    X = np.random.default_rng(0).standard_normal((40, 12))
    atoms = np.random.default_rng(1).standard_normal((3, 40))
    with pytest.raises(ValueError, match=r"tau must be in \(0.5, 1\]"):
        stable_key_neurons(X, atoms, 0.1, tau=0.5)
    with pytest.raises(ValueError, match=r"atoms has shape \(3, 30\); give \(n_atoms, n_scans\)"):
        stable_key_neurons(X, atoms[:, :30], 0.1)
    with pytest.raises(ValueError, match="groups has 39 labels but X has 40 scans"):
        stable_key_neurons(X, atoms, 0.1, groups=np.ones(39))
    with pytest.raises(ValueError, match="groups has 39 labels but X has 40 scans"):
        SparseAtoms(n_atoms=3).fit(X, groups=np.ones(39))
    with pytest.raises(ValueError, match="'tau' parameter of SparseAtoms"):
        SparseAtoms(n_atoms=3, tau=0.4).fit(X)
