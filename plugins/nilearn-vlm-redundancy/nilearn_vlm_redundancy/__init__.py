"""Functional-redundancy analysis for nilearn_vlm (registered as ``redundancy``).

Examples
--------
>>> from nilearn_vlm import get_analysis  # doctest: +SKIP
>>> get_analysis("redundancy")  # doctest: +SKIP
<class 'nilearn_vlm_redundancy._analysis.RedundancyAnalysis'>
"""

from nilearn_vlm_redundancy._analysis import (
    RedundancyAnalysis,
    cooccurrence_test,
    redundancy_figures,
    surrogate_bank,
    voxel_count_table,
)
from nilearn_vlm_redundancy._version import __version__

__all__ = [
    "RedundancyAnalysis",
    "__version__",
    "cooccurrence_test",
    "redundancy_figures",
    "surrogate_bank",
    "voxel_count_table",
]
