"""Architecture-comparison analysis for nilearn_vlm (registered as ``compare``)."""

from nilearn_vlm_compare._analysis import CompareAnalysis, compare_figures
from nilearn_vlm_compare._features import LOWLEVEL_COLUMNS, lowlevel_features
from nilearn_vlm_compare._paired import block_differences, sign_flip_test
from nilearn_vlm_compare._streams import (
    STS_TPJ_HARVARD_OXFORD,
    STS_TPJ_HCP_MMP1,
    architecture_encoding_test,
    default_stream_pair,
    encoding_inputs,
    layer_jackknife_variance,
    layer_strata,
    modality_specificity,
    multimodal_roi,
    paired_encoding_test,
    paired_specificity_test,
    specificity,
)
from nilearn_vlm_compare._version import __version__

__all__ = [
    "LOWLEVEL_COLUMNS",
    "STS_TPJ_HARVARD_OXFORD",
    "STS_TPJ_HCP_MMP1",
    "CompareAnalysis",
    "__version__",
    "architecture_encoding_test",
    "block_differences",
    "compare_figures",
    "default_stream_pair",
    "encoding_inputs",
    "layer_jackknife_variance",
    "layer_strata",
    "lowlevel_features",
    "modality_specificity",
    "multimodal_roi",
    "paired_encoding_test",
    "paired_specificity_test",
    "sign_flip_test",
    "specificity",
]
