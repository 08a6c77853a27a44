"""Polarity analysis for nilearn_vlm (registered as ``polarity``)."""

from nilearn_vlm_polarity._analysis import PolarityAnalysis, PolarityResult, mirrored_trend
from nilearn_vlm_polarity._version import __version__

__all__ = ["PolarityAnalysis", "PolarityResult", "__version__", "mirrored_trend"]
