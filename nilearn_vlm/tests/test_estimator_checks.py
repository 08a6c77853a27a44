"""scikit-learn's common estimator checks on the five estimators, at default parameters.

Each estimator is checked as a user builds it: default parameters, plus what
describes the data and cannot have a default (the toy adapter of
:mod:`nilearn_vlm.testing` for :class:`~nilearn_vlm.NeuronActivations`, the
events and scans of :class:`~nilearn_vlm.TRAligner`, the repetition time of
:class:`~nilearn_vlm.VoxelGLM`'s drift terms). A check is expected to fail
only where it cannot apply, with the reason next to it.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import check_estimator, parametrize_with_checks

from nilearn_vlm import NeuronActivations, SparseAtoms, TRAligner, VoxelEncoder, VoxelGLM
from nilearn_vlm.testing import ToyAdapter


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """One BLAS thread: small LAPACK calls are many times slower when the
    shared test machine is oversubscribed."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


#: TRAligner's fixed events: one 1-s event per scan (t_r = 2 s), 30 of them.
N_EVENTS = 30
EVENTS = pd.DataFrame({"onset": 2.0 * np.arange(N_EVENTS), "duration": 1.0})

ESTIMATORS_TO_CHECK = [
    NeuronActivations(model=ToyAdapter),
    TRAligner(events=EVENTS, n_scans=N_EVENTS, t_r=2.0),
    SparseAtoms(),
    VoxelEncoder(),
    VoxelEncoder(solver="dual", dtype="float64"),
    VoxelGLM(t_r=1.0),
]

# NeuronActivations takes a table of stimuli (image and text cells); these
# checks fit or transform numeric arrays of made-up features, which are no
# stimuli and are refused with a TypeError naming the expected table.
_NOT_STIMULI = (
    "sklearn feeds numeric feature arrays; NeuronActivations takes a DataFrame of "
    "stimuli (image and/or text columns) and refuses other input with a TypeError"
)
_STIMULI_CHECKS = [
    "check_complex_data",
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimator_sparse_array",
    "check_estimator_sparse_matrix",
    "check_estimator_sparse_tag",
    "check_estimators_dtypes",
    "check_estimators_empty_data_messages",
    "check_estimators_fit_returns_self",
    "check_estimators_nan_inf",
    "check_estimators_overwrite_params",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_fit1d",
    "check_fit2d_1feature",
    "check_fit2d_1sample",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_pipeline_consistency",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
    "check_transformer_data_not_an_array",
    "check_transformer_general",
    "check_transformer_preserve_dtypes",
]

# TRAligner's rows are its events: these checks draw X with another number of
# rows than the 30 fixed events (or expect as many output rows as input rows
# with other events), which is an error by design ("X has n rows but there are
# 30 events").
_NOT_THE_EVENTS = (
    f"sklearn draws X with a number of rows other than the {N_EVENTS} fixed events; TRAligner "
    "has one row per event, so other row counts are an error by design"
)
_EVENT_CHECKS = [
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimators_dtypes",
    "check_estimators_fit_returns_self",
    "check_estimators_nan_inf",
    "check_estimators_overwrite_params",
    "check_f_contiguous_array_estimator",
    "check_fit2d_1feature",
    "check_fit2d_1sample",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
]


def return_expected_failed_checks(estimator):
    if isinstance(estimator, NeuronActivations):
        return dict.fromkeys(_STIMULI_CHECKS, _NOT_STIMULI)
    if isinstance(estimator, TRAligner):
        return dict.fromkeys(_EVENT_CHECKS, _NOT_THE_EVENTS)
    return {}


@parametrize_with_checks(ESTIMATORS_TO_CHECK, expected_failed_checks=return_expected_failed_checks)
def test_sklearn_checks(estimator, check):
    check(estimator)


def test_check_estimator_voxel_encoder_has_no_expected_failure():
    # float64 input gives float64 predictions whatever the working dtype
    check_estimator(VoxelEncoder())
