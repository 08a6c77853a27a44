"""A simulated subject: chosen units of chosen layers drive voxel groups.

Ground truth: 4 latent stimulus features, each convolved with nilearn's
Glover HRF (TR = 1 s, 600 scans), drive 25 units of one chosen layer (80%
with positive, 20% with negative sign, unit signal-to-noise variance ratio
1); 380 other units carry independent HRF-smoothed noise. Each feature drives
two voxel groups of 30 voxels (standing in for functional networks): one
positively, one negatively, at a signal-to-noise variance ratio of 0.25
(|r| about 0.45 with the feature, a realistic single-subject movie-fMRI
effect) with AR(1) noise (rho = 0.4); 200 voxels carry noise only.

The pipeline (SparseAtoms -> VoxelGLM, FDR 0.05) must recover each driving
group's atom, its key neurons and their layer, the voxel groups ("network
assignment", F1 >= 0.9) and their signs (>= 95% correct).
"""

import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import glover_hrf

from nilearn_vlm.decomposition import SparseAtoms
from nilearn_vlm.glm import VoxelGLM
from nilearn_vlm.units import layer_name, unit_groups, unit_name

N_SCANS, T_R = 600, 1.0
LAYERS = ["vision.1", "vision.3", "text.0", "text.2"]  # one driving layer per feature
SNR_VOXEL, RHO = 0.25, 0.4


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """One BLAS thread: small LAPACK calls are many times slower when the
    shared test machine is oversubscribed."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _hrf_convolve(x):
    h = glover_hrf(T_R, oversampling=1, time_length=32.0)
    return np.stack([np.convolve(c, h)[: len(c)] for c in x.T], axis=1)


def _simulate(seed=0):
    rng = np.random.default_rng(seed)
    F = _hrf_convolve(rng.standard_normal((N_SCANS, 4)))
    F = (F - F.mean(0)) / F.std(0)
    names, cols, owner, sign = [], [], [], []
    for stream, depth in [(s, d) for s in ("vision", "text") for d in range(4)]:
        layer = layer_name(stream, depth)
        for i in range(50 if layer in LAYERS else 70):
            k = LAYERS.index(layer) if layer in LAYERS and i < 25 else -1
            s = (1.0 if rng.random() < 0.8 else -1.0) if k >= 0 else 0.0
            noise = _hrf_convolve(rng.standard_normal((N_SCANS, 1)))[:, 0]
            noise /= noise.std()
            cols.append(s * F[:, k] + noise if k >= 0 else noise)
            names.append(unit_name(stream, depth, "attn_out", i))
            owner.append(k)
            sign.append(s)
    X = pd.DataFrame(np.column_stack(cols), columns=names)
    groups = np.repeat(np.arange(8), 30)
    groups = np.concatenate([groups, np.full(200, -1)])
    Y = np.empty((N_SCANS, len(groups)))
    e = rng.standard_normal(Y.shape)
    for t in range(1, N_SCANS):
        e[t] += RHO * e[t - 1]
    e /= e.std(0)
    for v, g in enumerate(groups):
        signal = 0.0 if g < 0 else (1 if g % 2 == 0 else -1) * F[:, g // 2]
        Y[:, v] = np.sqrt(SNR_VOXEL) * signal + e[:, v] + 100.0
    return X, Y, F, np.array(owner), np.array(sign), groups


@pytest.fixture(scope="module")
def fitted():
    from threadpoolctl import threadpool_limits

    X, Y, F, owner, sign, groups = _simulate()
    with threadpool_limits(1):
        # 25 key units per feature: a bound of 2 false key neurons per atom lets q reach 27
        atoms = SparseAtoms(n_atoms=8, alpha=0.1, error_bound=2.0, random_state=0).fit(X)
        glm = VoxelGLM(t_r=T_R, drift_model="cosine", high_pass=0.01)
        glm.fit(pd.DataFrame(atoms.transform(X), columns=atoms.atom_names_), Y)
    return X, F, owner, sign, groups, atoms, glm


def _matched_atoms(F, atoms):
    c = np.corrcoef(F.T, atoms.atoms_)[:4, 4:]
    best = np.abs(c).argmax(1)
    return best, c[np.arange(4), best]


def test_recovers_driving_atoms_key_neurons_and_layers(fitted):
    X, F, owner, sign, groups, atoms, glm = fitted
    best, r = _matched_atoms(F, atoms)
    assert len(set(best)) == 4 and np.all(np.abs(r) > 0.9)
    assert np.all(r > 0)  # flipped: most key neurons load positively
    table = atoms.key_neuron_table()
    for k, a in enumerate(best):
        key = atoms.key_neurons_[a] != 0
        truth = owner == k
        f1 = 2 * np.sum(key & truth) / (key.sum() + truth.sum())
        assert f1 >= 0.9
        rows = table[table["atom"] == atoms.atom_names_[a]]
        layer = unit_groups(atoms.units_.iloc[rows["unit"]], "layer")
        assert (layer == LAYERS[k]).mean() >= 0.9
        ok = np.sign(atoms.key_neurons_[a][key & truth]) == sign[key & truth]
        assert ok.mean() >= 0.95


def test_recovers_networks_and_signs(fitted):
    X, F, owner, sign, groups, atoms, glm = fitted
    best, _ = _matched_atoms(F, atoms)
    # network assignment: (atom, group, sign) triples where at least half of
    # the group's voxels are significant with that sign
    predicted, truth = set(), set()
    for a in range(glm.signed_.shape[1]):
        for g in range(8):
            for s in (1, -1):
                if np.mean(glm.signed_[groups == g, a] == s) >= 0.5:
                    predicted.add((a, g, s))
    for k, a in enumerate(best):
        truth |= {(a, 2 * k, 1), (a, 2 * k + 1, -1)}
    tp = len(predicted & truth)
    f1 = 2 * tp / (len(predicted) + len(truth))
    assert f1 >= 0.9, (predicted, truth)
    # signs of the significant voxels of each driving atom in its groups
    correct = total = 0
    for k, a in enumerate(best):
        for g, s in ((2 * k, 1), (2 * k + 1, -1)):
            sig = glm.signed_[groups == g, a]
            correct += np.sum(sig == s)
            total += np.sum(sig != 0)
    assert total > 0.8 * 8 * 30 and correct / total >= 0.95
    # voxel-level recovery of the groups
    for k, a in enumerate(best):
        pos, neg = glm.voxel_sets()[atoms.atom_names_[a]]
        for found, g in ((pos, 2 * k), (neg, 2 * k + 1)):
            true = np.flatnonzero(groups == g)
            tp = len(np.intersect1d(found, true))
            assert 2 * tp / (len(found) + len(true)) >= 0.9
