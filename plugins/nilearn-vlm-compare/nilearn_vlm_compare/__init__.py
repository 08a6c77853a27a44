"""Architecture-comparison analysis for nilearn_vlm (registered as ``compare``)."""

from nilearn_vlm_compare._analysis import CompareAnalysis, branch_maps, compare_figures, masked_mean_ci
from nilearn_vlm_compare._features import LOWLEVEL_COLUMNS, lowlevel_features
from nilearn_vlm_compare._paired import block_differences, sign_flip_test
from nilearn_vlm_compare._version import __version__

__all__ = [
    "LOWLEVEL_COLUMNS",
    "CompareAnalysis",
    "__version__",
    "block_differences",
    "branch_maps",
    "compare_figures",
    "lowlevel_features",
    "masked_mean_ci",
    "sign_flip_test",
]
