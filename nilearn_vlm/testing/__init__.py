"""Testing helpers for nilearn_vlm and for plugin authors.

:func:`check_adapter` is the conformance check every adapter plugin's tests
call; :class:`ToyAdapter` is a small NumPy dual-encoder with random weights;
:func:`simulate_subject` is a simulated subject with planted sources, key
units and signed voxel networks (the tests and benchmarks of the atoms).
:mod:`nilearn_vlm.testing.analyses` simulates subjects with known answers
for the analyses (nulls and planted effects of polarity, redundancy and the
model comparisons). :func:`rest_noise` loads real resting-state BOLD shipped
in registry packages (the ``test`` extra) for null-calibration tests.
"""

from nilearn_vlm.testing._check_adapter import check_adapter, default_batch, make_images
from nilearn_vlm.testing._rest import REST_DATASETS, rest_noise
from nilearn_vlm.testing._simulate import SimulatedSubject, ar1_noise, hrf_smooth_noise, simulate_subject
from nilearn_vlm.testing._toy import ToyAdapter

__all__ = [
    "REST_DATASETS",
    "SimulatedSubject",
    "ToyAdapter",
    "ar1_noise",
    "check_adapter",
    "default_batch",
    "hrf_smooth_noise",
    "make_images",
    "rest_noise",
    "simulate_subject",
]
