"""Quick start: the estimator API in 15 lines
==========================================

Stimuli -> units -> time series -> a voxelwise encoder, on the embedded
movie, with the NumPy toy model (swap in ``model="clip"`` for CLIP) and
simulated BOLD as an array (a list of 4D images works the same way).
"""

import numpy as np

from nilearn_vlm import NeuronActivations, TRAligner, VoxelEncoder
from nilearn_vlm.datasets import make_movie_events
from nilearn_vlm.testing import ToyAdapter

events, durations = make_movie_events(n_runs=3, passes_per_run=1)            # real captioned images
units = NeuronActivations(model=ToyAdapter, sites="*.ffn").fit_transform(events)  # (n_events, n_units)
aligner = TRAligner(events=events, n_scans={r: int(d // 2) for r, d in durations.items()}, t_r=2.0)
X = aligner.fit_transform(units)                                              # (n_scans, n_units), HRF
rng = np.random.default_rng(0)
bold = X[:, :5] @ rng.standard_normal((5, 100)) + 2 * rng.standard_normal((len(X), 100))
encoder = VoxelEncoder().fit(X, bold, groups=aligner.run_labels_)              # leave-one-run-out CV
print("units:", units.shape, "time series:", X.shape)
print(f"median cross-validated R² over 100 voxels: {np.median(encoder.cv_scores_):.2f}")
