"""Voxelwise encoding of simulated BOLD
====================================

The embedded default study (:func:`nilearn_vlm.datasets.make_default_study`)
is a simulated subject watching a movie of real captioned images: nilearn's
MNI152 brain mask at 4 mm, networks from the atlas plugins, and planted
effects (chosen units drive chosen networks through the HRF, plus AR(1)
noise). Here its units come from the NumPy toy dual-encoder
(:class:`nilearn_vlm.testing.ToyAdapter`, random weights, no torch) so that
the example runs in seconds; the ``nilearn-vlm demo`` command runs the same
study with CLIP ViT-B/32.

A :class:`nilearn_vlm.VoxelEncoder` (ridge, one penalty per voxel chosen by
leave-one-run-out cross-validation) then predicts every voxel from the units;
the voxels of the driven networks are the well-predicted ones.
"""

import numpy as np
import pandas as pd

from nilearn_vlm import TRAligner, VoxelEncoder
from nilearn_vlm.datasets import Driver, make_default_study
from nilearn_vlm.testing import ToyAdapter

# %% The simulated subject
drivers = (
    Driver("vision.0.attn_out", "vision", +1),
    Driver("text.1.attn_out", "language", +1),
    Driver("vision.1.attn_out", "default mode", -1),
)
study = make_default_study(
    n_runs=3, model=ToyAdapter, model_params={"width": 16, "n_layers": 2, "seed": 0},
    sites="*.attn_out", drivers=drivers, n_driver_units=4, driver_choice="site component", snr=0.5, seed=0,
)
print(study.truth[["site", "network", "sign", "n_voxels"]].to_string(index=False))
print("BOLD runs:", [img.shape for img in study.bold])

# %% Units on the TR grid
aligner = TRAligner(events=study.events[["onset", "duration", "run"]], n_scans=study.n_scans,
                    t_r=study.t_r)
X = aligner.fit_transform(study.units)
print("features:", X.shape)

# %% Fit the encoder on the images (one 4D image per run, leave-one-run-out CV)
encoder = VoxelEncoder(mask=study.mask, alphas=np.logspace(-1, 4, 6))
encoder.fit(X, study.bold)
scores = np.asarray(encoder.cv_scores_)  # out-of-fold R² per voxel at its alpha
print(f"{scores.size} voxels, median cross-validated R² {np.nanmedian(scores):.3f}")

# %% Scores per network: driven networks stand out
table = (pd.DataFrame({"network": np.where(study.networks == "", "(none)", study.networks),
                       "cv_r2": scores})
         .groupby("network")["cv_r2"].median().sort_values(ascending=False))
print(table.round(3).to_string())
driven = {d.network for d in drivers}
best = table.index[0]
print("best-predicted network is driven:", best in driven)

# %% Predictions come back as images in the mask's space
pred_img = encoder.predict(X[: study.n_scans[1]])
print("prediction image:", pred_img.shape)
