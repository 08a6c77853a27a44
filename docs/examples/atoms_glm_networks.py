"""Sparse atoms, a voxelwise GLM and functional networks
=====================================================

The path of arXiv 2510.16870 on the embedded default study: the units' time
series are summarised by a sparse dictionary (:class:`nilearn_vlm.SparseAtoms`:
a few atoms, each with its key neurons), the atoms are the regressors of a
voxelwise GLM with calibrated inference (:class:`nilearn_vlm.VoxelGLM`: FDR-
corrected positive and negative voxel sets per atom), and the signed voxel
sets are counted in the networks of an atlas plugin
(:func:`nilearn_vlm.networks.network_counts`). The planted truth says which
site drives which network with which sign; the atoms find it back.

Units come from the NumPy toy dual-encoder (random weights, no torch) so that
the example runs in seconds; ``nilearn-vlm demo`` does the same with CLIP.
"""

import numpy as np

from nilearn_vlm import SparseAtoms, TRAligner, VoxelGLM, get_atlas
from nilearn_vlm.datasets import STUDY_NETWORKS, Driver, make_default_study
from nilearn_vlm.networks import best_network, dominant_group, network_counts, network_dice
from nilearn_vlm.testing import ToyAdapter
from nilearn_vlm.units import unit_groups

# %% The simulated subject and its units on the TR grid
drivers = (
    Driver("vision.0.attn_out", "vision", +1),
    Driver("text.1.attn_out", "language", +1),
    Driver("vision.1.attn_out", "default mode", -1),
)
study = make_default_study(
    n_runs=3, model=ToyAdapter, model_params={"width": 16, "n_layers": 2, "seed": 0},
    sites="*.attn_out", drivers=drivers, n_driver_units=4, driver_choice="site component", snr=0.5, seed=0,
)
aligner = TRAligner(events=study.events[["onset", "duration", "run"]], n_scans=study.n_scans,
                    t_r=study.t_r)
X = aligner.fit_transform(study.units)

# %% Sparse atoms over all units, and the site most of each atom's key neurons sit in
atoms = SparseAtoms(n_atoms=8, alpha=0.1, feature_names=list(study.unit_names), random_state=0)
A = atoms.fit_transform(X)  # (n_scans, n_atoms): the atoms' time courses
sites = dominant_group(atoms.key_neurons_, unit_groups(study.unit_names, by="site"))
print("atoms:", A.shape, "| dominant site per atom:", [str(x) for x in sites])

# %% Voxelwise GLM on the atoms (drifts, prewhitening, noise model fitted on the data)
glm = VoxelGLM(mask=study.mask, t_r=study.t_r, alpha=0.05)
glm.fit(A, study.bold)
signed = glm.signed_  # (n_voxels, n_atoms): +1 / -1 significant voxels, 0 elsewhere
print("significant voxels per atom (+/-):",
      [(int((s > 0).sum()), int((s < 0).sum())) for s in signed.T])

# %% Networks: the study's voxels carry the canonical networks of the atlas plugins
# (``seitzman2018`` and ``language_mni``, see ``get_atlas(name).load(mask)``)
labels = get_atlas("seitzman2018").load(glm.masker_)
print(f"seitzman2018: {len(labels.lookup)} networks on {labels.n_voxels} voxels")
names = list(STUDY_NETWORKS)
membership = np.array([study.networks == name for name in names])
atom_names = [f"atom {k}" for k in range(A.shape[1])]
counts = network_counts(signed.T, membership, names, map_names=atom_names)
print(counts.pivot(index="map", columns="network", values="n_sig").loc[atom_names].to_string())

# %% Recovery of the planted truth, driver by driver
# The driver's atom is the one its units load on most; the sign of their mean
# loading orients the atom; the atom's network is the one of highest Dice
# overlap with its significant voxels; the sign is checked inside it.
dice = network_dice(signed.T, membership, names, map_names=atom_names, signs=["any"])
best = best_network(dice, sign="any")
index = {name: i for i, name in enumerate(study.unit_names)}
for _, row in study.truth.iterrows():
    cols = [index[u] for u in row["units"].split(";")]
    load = atoms.loadings_[:, cols]
    k = int(np.argmax(np.abs(load.sum(axis=1))))
    orientation = np.sign(load[k].mean())
    network = best[atom_names[k]]
    inside = signed[study.networks == row["network"], k]
    inside = inside[inside != 0]
    sign_ok = float(np.mean(inside * orientation == row["sign"])) if inside.size else float("nan")
    print(f"{row['site']:>18} -> planted {row['network']!r} ({row['sign']:+d}): atom {k}, "
          f"found {network!r}, sign agreement {sign_ok:.0%}")
