"""The analysis contract: analyses run on fitted :class:`~nilearn_vlm.results.Results`.

An analysis is a subclass of :class:`BaseAnalysis` registered by a plugin
through the ``register_analyses`` hook and found with
:func:`nilearn_vlm.get_analysis`. It declares what it needs (``requires``:
fields of the results object; ``n_results``: how many models), says whether
given results allow it (:meth:`BaseAnalysis.check`) and returns an
:class:`AnalysisResult`: data only, namely tidy tables (``to_frame()``), key
numbers (``stats``), text, and figures as :class:`FigureSpec` objects (a
kind, a tidy table, which columns go on x, y, hue and error bars, title and
axis labels with units). The report renders them
(:func:`nilearn_vlm.report.analysis_section`); ``plot()`` draws the figures
and ``summary()`` gives a JSON-able summary. :func:`run_analyses` runs every
installed analysis the results allow and says which were skipped and why;
:func:`save_analyses` writes their results to a folder.

Shared helpers used by the analysis plugins live here too: grouping of GLM
regressors into layers and streams (:func:`regressor_groups`), their
streams and fractional depths from the units table (:func:`describe_groups`,
:func:`units_of`; see :mod:`nilearn_vlm.units`), network
membership (:func:`network_membership`), overlap matrices with a spatial
block-permutation null (:func:`overlap_matrix`, :func:`overlap_null`) and
variance partitioning with cross-validated ridge
(:func:`variance_partition`, :func:`greedy_unit_selection`).

Inference shared by the analyses (each states its null hypothesis, what it
resamples and how many distinct resamples exist: :func:`inference_table`):
resampling p-values (:func:`permutation_pvalue`), Holm's correction
(:func:`holm`), leave-one-run-out jackknife intervals with ``n - 1``
degrees of freedom (:func:`jackknife_interval`), Clopper-Pearson intervals
of rates (:func:`clopper_pearson`); time blocks within runs and the block
sums of held-out predictions the paired tests resample
(:func:`time_blocks`, :func:`bold_block_sums`,
:func:`prediction_block_sums`, :func:`within_run_r`,
:func:`heldout_predictions`, :func:`layer_groups`,
:func:`layer_deleted_sse`); surrogate maps that keep each map's size and
spatial autocorrelation (:class:`ClusterMoves` and :class:`FieldBank` on
volumes, :class:`SpinBank` on fsaverage surfaces) and the co-occurrence of maps
(:func:`cooccurrence`).

Examples
--------
>>> import numpy as np
>>> from nilearn_vlm.analyses import BaseAnalysis, AnalysisResult, run_analyses
>>> from nilearn_vlm.results import Results
>>> class CountSignificant(BaseAnalysis):
...     name = "count-significant"
...     requires = ("glm_sign_sets",)
...     def run(self, results, **params):
...         res = self._one(results)
...         n = int((res.glm_sign_sets != 0).any(axis=0).sum())
...         import pandas as pd
...         return AnalysisResult(self.name, tables={"main": pd.DataFrame({"n_significant": [n]})},
...                               stats={"n_significant": n})
>>> res = Results("toy", glm_sign_sets=np.array([[1, 0, -1]]))
>>> CountSignificant().check([res])
(True, '')
>>> CountSignificant().run(res).summary()["stats"]
{'n_significant': 2}
"""

from nilearn_vlm._utils import bootstrap_sums, percentile_interval
from nilearn_vlm.analyses._base import AnalysisResult, BaseAnalysis, run_analyses, save_analyses
from nilearn_vlm.analyses._blocks import (
    block_sse,
    block_sst,
    bold_block_sums,
    heldout_predictions,
    layer_deleted_sse,
    layer_groups,
    prediction_block_sums,
    time_blocks,
    within_run_r,
)
from nilearn_vlm.analyses._figures import FIGURE_KINDS, FigureSpec
from nilearn_vlm.analyses._groups import (
    branch_of_stream,
    describe_groups,
    network_membership,
    regressor_groups,
    units_of,
)
from nilearn_vlm.analyses._inference import (
    INFERENCE_COLUMNS,
    clopper_pearson,
    holm,
    inference_table,
    jackknife_interval,
    n_sign_arrangements,
    permutation_pvalue,
)
from nilearn_vlm.analyses._moves import ClusterMoves
from nilearn_vlm.analyses._overlap import overlap_matrix, overlap_null, spatial_block_permutations
from nilearn_vlm.analyses._surrogates import (
    FieldBank,
    SpinBank,
    cooccurrence,
    cooccurrence_from_counts,
    spin_permutations,
)
from nilearn_vlm.analyses._varpart import cv_r2, greedy_unit_selection, variance_partition

__all__ = [
    "FIGURE_KINDS",
    "INFERENCE_COLUMNS",
    "AnalysisResult",
    "BaseAnalysis",
    "ClusterMoves",
    "FieldBank",
    "FigureSpec",
    "SpinBank",
    "block_sse",
    "block_sst",
    "bold_block_sums",
    "bootstrap_sums",
    "branch_of_stream",
    "clopper_pearson",
    "cooccurrence",
    "cooccurrence_from_counts",
    "cv_r2",
    "describe_groups",
    "greedy_unit_selection",
    "heldout_predictions",
    "holm",
    "inference_table",
    "jackknife_interval",
    "n_sign_arrangements",
    "network_membership",
    "overlap_matrix",
    "overlap_null",
    "layer_deleted_sse",
    "layer_groups",
    "percentile_interval",
    "permutation_pvalue",
    "prediction_block_sums",
    "regressor_groups",
    "run_analyses",
    "save_analyses",
    "spatial_block_permutations",
    "spin_permutations",
    "time_blocks",
    "units_of",
    "variance_partition",
    "within_run_r",
]
