"""Example nilearn_vlm adapter plugin."""

from nilearn_vlm_colorstats.adapter import ColorStatsAdapter

__all__ = ["ColorStatsAdapter"]
