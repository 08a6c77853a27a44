"""Shared numerics and estimator conventions (ground floor, private).

One home for what several modules compute: z-scores, Pearson correlations,
signal power of repeated responses, percentile bootstraps, cross-validation
folds that never shuffle time, run-wise cleaning and scores within runs
(:mod:`._runs`), variance floors relative to each column's scale
(:mod:`._guards`), byte sizes, and the estimators' output dtype
and input tags. Library functions do the work where they fit
(:func:`scipy.stats.zscore`, :mod:`sklearn.model_selection`); the public
names (``nilearn_vlm.stats.pearson_r``, ``nilearn_vlm.stats.bootstrap_ci``,
``nilearn_vlm.encoding.make_folds``, ...) re-export these.
"""

from nilearn_vlm._utils._bootstrap import (
    BootstrapCI,
    bootstrap_ci,
    bootstrap_sums,
    percentile_interval,
    resampled_rows,
)
from nilearn_vlm._utils._estimators import nilearn_input_tags, output_dtype
from nilearn_vlm._utils._folds import fold_labels, make_folds
from nilearn_vlm._utils._guards import (
    FLOOR_ULPS,
    column_scale,
    floor_rtol,
    is_flat,
    variance_floor,
    warn_unscored,
)
from nilearn_vlm._utils._runs import (
    RunScores,
    clean_signals,
    nuisance_design,
    run_basis,
    run_design,
    run_scores,
    run_slices,
)
from nilearn_vlm._utils._sizes import parse_bytes
from nilearn_vlm._utils._stats import (
    as_columns,
    centred_products,
    check_repeats,
    pearson_r,
    signal_power,
    zscore,
)

__all__ = [
    "FLOOR_ULPS",
    "BootstrapCI",
    "RunScores",
    "clean_signals",
    "column_scale",
    "floor_rtol",
    "is_flat",
    "nuisance_design",
    "run_basis",
    "run_design",
    "run_scores",
    "run_slices",
    "variance_floor",
    "warn_unscored",
    "as_columns",
    "bootstrap_ci",
    "bootstrap_sums",
    "centred_products",
    "check_repeats",
    "fold_labels",
    "make_folds",
    "nilearn_input_tags",
    "output_dtype",
    "parse_bytes",
    "pearson_r",
    "percentile_interval",
    "resampled_rows",
    "signal_power",
    "zscore",
]
