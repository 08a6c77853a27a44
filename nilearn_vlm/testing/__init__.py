"""Testing helpers for nilearn_vlm and for plugin authors.

:func:`check_adapter` is the conformance check every adapter plugin's tests
call; :class:`ToyAdapter` is a small NumPy dual-encoder with random weights;
:func:`rest_noise` loads real resting-state BOLD shipped in registry packages
(the ``test`` extra) for null-calibration tests.
"""

from nilearn_vlm.testing._check_adapter import check_adapter, default_batch, make_images
from nilearn_vlm.testing._rest import REST_DATASETS, rest_noise
from nilearn_vlm.testing._toy import ToyAdapter

__all__ = ["REST_DATASETS", "ToyAdapter", "check_adapter", "default_batch", "make_images", "rest_noise"]
