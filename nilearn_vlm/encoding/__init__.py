"""Voxelwise encoding: image input/output base and the ridge encoder."""

from nilearn_vlm.encoding._base import (
    BaseVoxelEstimator,
    Targets,
    clean_signals,
    nuisance_design,
)

__all__ = ["BaseVoxelEstimator", "Targets", "clean_signals", "nuisance_design"]
