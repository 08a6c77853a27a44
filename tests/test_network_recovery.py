"""End to end on real atlas networks: units -> atoms -> GLM -> per-network tables.

Ground truth: 3 latent features (white noise convolved with nilearn's Glover
HRF, TR = 1 s, 500 scans) each drive 20 units of one layer (plus 160 noise
units). On HCP grayordinates, 40 voxels sampled from each of four
Cole-Anticevic networks follow the features: vision +f0, language -f1,
default mode +f2, and attention (dorsal) carries noise only, as do 80
voxels of the other networks. Voxel signal-to-noise variance ratio 0.25
(|r| about 0.45) with AR(1) noise (rho = 0.4).

The pipeline (SparseAtoms, VoxelGLM with FDR 0.05, Results.add_network_tables
on the cole_anticevic and language_hcp atlases, canonical network names) must
give each feature's atom the right network and sign (best Dice), and no
network to the other atoms.
"""

import numpy as np
import pytest
from nilearn.glm.first_level import glover_hrf

from nilearn_vlm import get_atlas
from nilearn_vlm.decomposition import SparseAtoms
from nilearn_vlm.glm import VoxelGLM
from nilearn_vlm.networks import AtlasLabels, best_network
from nilearn_vlm.plugins import ALLOW_ENV, reset_plugins
from nilearn_vlm.results import ImageSpace, Results

N_SCANS, SNR, RHO = 500, 0.25, 0.4
DRIVE = {"vision": (0, +1), "language": (1, -1), "default mode": (2, +1)}


@pytest.fixture(autouse=True, scope="module")
def _only_core_atlases():
    mp = pytest.MonkeyPatch()
    mp.setenv(ALLOW_ENV, "atlases")
    reset_plugins()
    yield
    mp.undo()
    reset_plugins()


def _hrf(x):
    h = glover_hrf(1.0, oversampling=1, time_length=32.0)
    return np.stack([np.convolve(c, h)[: len(c)] for c in x.T], axis=1)


def _subset(labels, idx):
    return AtlasLabels(labels.atlas, labels.space, labels.labels[idx], labels.lookup, labels.description)


@pytest.fixture(scope="module")
def simulated():
    rng = np.random.default_rng(0)
    F = _hrf(rng.standard_normal((N_SCANS, 3)))
    F = (F - F.mean(0)) / F.std(0)
    cols, names = [], []
    for layer, k in (("vision.2", 0), ("text.1", 1), ("text.3", 2), ("vision.0", -1), ("text.0", -1)):
        for i in range(20 if k >= 0 else 80):
            noise = _hrf(rng.standard_normal((N_SCANS, 1)))[:, 0]
            noise /= noise.std()
            cols.append(F[:, k] + noise if k >= 0 else noise)
            names.append(f"{layer}.attn_out.{i}")
    units = np.column_stack(cols)
    ca = get_atlas("cole_anticevic").load(91282)
    canon = dict(zip(ca.lookup["index"], ca.lookup["canonical"]))
    net_of = np.array([canon.get(i, "") for i in ca.labels])
    lang = get_atlas("language_hcp").load(91282).labels == 1
    pools = {
        "vision": np.flatnonzero(net_of == "vision"),
        "language": np.flatnonzero((net_of == "language") & lang),  # both atlases agree
        "default mode": np.flatnonzero((net_of == "default mode") & ~lang),
        "attention": np.flatnonzero(net_of == "attention"),
        "other": np.flatnonzero(np.isin(net_of, ["somatomotor", "auditory", "limbic"])),
    }
    idx, truth = [], []
    for net, pool in pools.items():
        pick = rng.choice(pool, 80 if net == "other" else 40, replace=False)
        idx.append(pick)
        truth += [net] * len(pick)
    idx, truth = np.concatenate(idx), np.array(truth)
    e = rng.standard_normal((N_SCANS, len(idx)))
    for t in range(1, N_SCANS):
        e[t] += RHO * e[t - 1]
    e /= e.std(0)
    Y = e.copy()
    for net, (k, s) in DRIVE.items():
        Y[:, truth == net] = s * np.sqrt(SNR) * F[:, [k]] + e[:, truth == net]
    atoms = SparseAtoms(n_atoms=8, random_state=0).fit(units)
    glm = VoxelGLM(t_r=1.0).fit(atoms.transform(units), Y)
    res = Results.from_estimators("toy", "sim-01", atoms=atoms, glm=glm, unit_names=names)
    res.space = ImageSpace.from_array(len(idx), space="fsLR_91k")
    labels = [_subset(ca, idx), _subset(get_atlas("language_hcp").load(91282), idx)]
    res.add_network_tables(labels, level="canonical")
    return res, F, truth


def test_each_feature_atom_gets_its_network_and_sign(simulated):
    res, F, truth = simulated
    dice = res.tables["network_dice"]
    r = np.corrcoef(np.c_[F, res.atom_timecourses].T)[:3, 3:]
    assigned = set()
    for net, (k, s) in DRIVE.items():
        atom = res.regressor_names[int(np.argmax(np.abs(r[k])))]
        assigned.add(atom)
        sign = "pos" if s > 0 else "neg"
        ca_best = best_network(dice[dice["atlas"] == "cole_anticevic"], sign=sign)
        assert ca_best[atom] == net, (net, atom, ca_best.to_dict())
        d = dice.set_index(["atlas", "map", "sign", "network"])["dice"]
        assert d[("cole_anticevic", atom, sign, net)] > 0.7
        # >= 95% of the atom's significant voxels in the driven network have the right sign
        row = res.glm_sign_sets[res.regressor_names.index(atom)][truth == net]
        assert (row == s).sum() >= 0.95 * (row != 0).sum() and (row != 0).mean() > 0.5
    lang = dice[(dice["atlas"] == "language_hcp") & (dice["sign"] == "neg")].set_index("map")["dice"]
    lang_atom = res.regressor_names[int(np.argmax(np.abs(r[1])))]
    assert lang[lang_atom] > 0.7
    # atoms of no feature get no network (Dice below 0.3 everywhere)
    others = dice[~dice["map"].isin(assigned) & (dice["atlas"] == "cole_anticevic")]
    assert np.nanmax(others["dice"].to_numpy()) < 0.3


def test_counts_table_agrees_with_sign_sets(simulated):
    res, _, truth = simulated
    counts = res.tables["network_counts"]
    ca = counts[counts["atlas"] == "cole_anticevic"].set_index(["map", "network"])
    for j, atom in enumerate(res.regressor_names):
        for net in ("vision", "default mode"):
            row = res.glm_sign_sets[j][truth == net]
            assert ca.loc[(atom, net), "n_pos"] == (row > 0).sum()
            assert ca.loc[(atom, net), "n_neg"] == (row < 0).sum()
