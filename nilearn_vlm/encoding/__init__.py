"""Voxelwise encoding: the ridge encoder and the image input/output base.

:class:`VoxelEncoder` fits a ridge model per voxel with a cross-validated
alpha per voxel (exact multi-alpha solver, :mod:`._solver`);
:class:`BaseVoxelEstimator` is the image input/output base it shares with
``VoxelGLM``. :func:`out_of_fold_null` tests its nested out-of-fold scores
(the cross-fitted circular-shift null, :mod:`._cvnull`).
"""

from nilearn_vlm.encoding._base import (
    BaseVoxelEstimator,
    Targets,
    clean_signals,
    nuisance_design,
)
from nilearn_vlm.encoding._cvnull import OutOfFoldNull, out_of_fold_null
from nilearn_vlm.encoding._encoder import DEFAULT_ALPHAS, VoxelEncoder, make_folds
from nilearn_vlm.encoding._metrics import explainable_variance, pearson_per_voxel
from nilearn_vlm.encoding._solver import count_flops, ridge_cv_path

__all__ = [
    "DEFAULT_ALPHAS",
    "BaseVoxelEstimator",
    "OutOfFoldNull",
    "Targets",
    "VoxelEncoder",
    "clean_signals",
    "count_flops",
    "explainable_variance",
    "make_folds",
    "nuisance_design",
    "out_of_fold_null",
    "pearson_per_voxel",
    "ridge_cv_path",
]
