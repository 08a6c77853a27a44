"""Polarity analysis for nilearn_vlm (registered as ``polarity``)."""

from nilearn_vlm_polarity._analysis import PolarityAnalysis, mirrored_trend, polarity_figures
from nilearn_vlm_polarity._version import __version__

__all__ = ["PolarityAnalysis", "__version__", "mirrored_trend", "polarity_figures"]
