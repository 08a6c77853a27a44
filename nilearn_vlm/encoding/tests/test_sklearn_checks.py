"""scikit-learn's estimator checks on array inputs."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from nilearn_vlm.encoding import VoxelEncoder

ESTIMATORS_TO_CHECK = [VoxelEncoder(), VoxelEncoder(solver="dual", dtype="float64")]


def return_expected_failed_checks(estimator):
    if estimator.dtype == "float32":
        return {
            "check_regressor_multioutput": (
                "float32 is the default working precision (about 2x faster, "
                "same chosen alphas), so predictions are float32; the float64 "
                "instance below passes this check."
            ),
        }
    return {}


@parametrize_with_checks(ESTIMATORS_TO_CHECK,
                         expected_failed_checks=return_expected_failed_checks)
def test_sklearn_checks(estimator, check):
    check(estimator)
