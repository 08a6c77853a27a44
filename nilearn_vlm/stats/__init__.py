"""Statistics that respect fMRI time series.

Permutation nulls that keep autocorrelation (circular shifts, block
permutation, phase randomisation), FDR and max-statistic FWE corrections,
cluster-level inference on volumes and surfaces, noise ceilings from repeated
runs, bootstrap intervals over runs or subjects, and group-level sign-flip
tests, and false-positive rates of null maps with exact intervals
(:func:`clopper_pearson`, :class:`NullRates`). NumPy, SciPy, MNE and nilearn
only.

Typical use (encoding scores of a held-out run)::

    from nilearn_vlm import stats
    res = stats.permutation_null(prediction, bold, method="shift", runs=runs)
    significant = res.significant(0.05, correction="fwe")

This holds for a prediction fixed with respect to the test BOLD (a model
fitted on other data). Out-of-fold scores, where each run is predicted by a
model fitted on the other runs, depend on every run's BOLD: test them with
:func:`nilearn_vlm.encoding.out_of_fold_null`.
"""

from nilearn_vlm.stats._ceiling import (
    BootstrapCI,
    bootstrap_ci,
    noise_ceiling,
    normalized_correlation,
    signal_power,
)
from nilearn_vlm.stats._clusters import (
    ClusterResult,
    cluster_test,
    find_clusters,
    grid_adjacency,
    mesh_adjacency,
)
from nilearn_vlm.stats._corrections import fdr, fwe_max
from nilearn_vlm.stats._group import GroupResult, group_sign_flip
from nilearn_vlm.stats._nulls import PermutationResult, pearson_r, permutation_null
from nilearn_vlm.stats._rates import NullRates, clopper_pearson
from nilearn_vlm.stats._resampling import (
    BLOCK_FACTOR,
    NULL_METHODS,
    auto_block_length,
    autocorrelation,
    block_indices,
    correlation_time,
    default_block_length,
)

__all__ = [
    "BLOCK_FACTOR",
    "NULL_METHODS",
    "auto_block_length",
    "autocorrelation",
    "correlation_time",
    "BootstrapCI",
    "ClusterResult",
    "GroupResult",
    "NullRates",
    "PermutationResult",
    "block_indices",
    "bootstrap_ci",
    "clopper_pearson",
    "cluster_test",
    "default_block_length",
    "fdr",
    "find_clusters",
    "fwe_max",
    "grid_adjacency",
    "group_sign_flip",
    "mesh_adjacency",
    "noise_ceiling",
    "normalized_correlation",
    "pearson_r",
    "permutation_null",
    "signal_power",
]
