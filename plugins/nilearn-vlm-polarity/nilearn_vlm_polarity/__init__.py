"""Polarity analysis for nilearn_vlm (registered as ``polarity``)."""

from nilearn_vlm_polarity._analysis import PolarityAnalysis, mirrored_trend, polarity_figures
from nilearn_vlm_polarity._stats import (
    balance_trend,
    driver_sign_test,
    layer_counts,
    n_layer_arrangements,
    weighted_trend,
)
from nilearn_vlm_polarity._version import __version__

__all__ = [
    "PolarityAnalysis",
    "__version__",
    "balance_trend",
    "driver_sign_test",
    "layer_counts",
    "mirrored_trend",
    "n_layer_arrangements",
    "polarity_figures",
    "weighted_trend",
]
