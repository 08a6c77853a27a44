"""The shared numerics against independent references, on random inputs."""

import doctest

import numpy as np
import pytest
from scipy import stats
from sklearn.model_selection import KFold, LeaveOneGroupOut

from nilearn_vlm import NeuronActivations, SparseAtoms, TRAligner, VoxelEncoder, VoxelGLM, _utils
from nilearn_vlm._utils import (
    _bootstrap,
    _estimators,
    _folds,
    _sizes,
    _stats,
    bootstrap_ci,
    bootstrap_sums,
    fold_labels,
    make_folds,
    output_dtype,
    parse_bytes,
    pearson_r,
    resampled_rows,
    signal_power,
    zscore,
)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis, ddof", [(0, 0), (1, 0), (0, 1)])
def test_zscore_matches_the_closed_form(dtype, axis, ddof):
    rng = np.random.default_rng(0)
    X = (3 * rng.standard_normal((40, 7)) + 5).astype(dtype)
    X[:, 2] = 4.0  # a constant column
    X[3] = 4.0  # a constant row (crossing the constant column)
    mean = X.astype(np.float64).mean(axis, keepdims=True)
    std = X.astype(np.float64).std(axis, ddof=ddof, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = np.where(std > 0, (X - mean) / std, 0.0)
    Z = zscore(X, axis=axis, ddof=ddof)
    assert Z.dtype == dtype
    np.testing.assert_allclose(Z, ref, atol=1e-5 if dtype == np.float32 else 1e-12)
    constant = (X == X.take([0], axis=axis)).all(axis=axis)
    assert constant.any() and np.all(np.compress(constant, Z, axis=1 - axis) == 0)


def test_zscore_nan_ints_and_3d():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 3))
    X[4, 1] = np.nan
    Z = zscore(X)
    assert np.isnan(Z[:, 1]).all() and np.isfinite(Z[:, [0, 2]]).all()  # NaN is not "constant"
    assert zscore(np.arange(6).reshape(3, 2)).dtype == np.float64
    Y = rng.standard_normal((3, 50, 4))
    np.testing.assert_allclose(zscore(Y, axis=1), stats.zscore(Y, axis=1), rtol=1e-12)


@pytest.mark.parametrize("shared", [True, False])
def test_pearson_r_matches_scipy(shared):
    rng = np.random.default_rng(2)
    n, v = 60, 700  # more columns than one chunk
    y = rng.standard_normal((n, v)) + 2.0
    x = rng.standard_normal(n) if shared else y + rng.standard_normal((n, v))
    r = pearson_r(x, y)
    ref = [stats.pearsonr(x if shared else x[:, j], y[:, j]).statistic for j in range(v)]
    np.testing.assert_allclose(r, ref, atol=1e-12)
    y[:, 3] = 1.0
    assert pearson_r(x, y)[3] == 0.0
    np.testing.assert_allclose(pearson_r(y[:, :5], y[:, :5]), [1, 1, 1, 0, 1], rtol=1e-15)
    with pytest.raises(ValueError, match="x has 3 columns and y 700 voxels"):
        pearson_r(y[:, :3], y)


def test_signal_power_closed_form():
    rng = np.random.default_rng(3)
    reps = rng.standard_normal((4, 300, 5)) + rng.standard_normal((1, 300, 5))
    sp, noise = signal_power(reps)
    n = reps.shape[0]
    # SP = (N Var(mean) - mean Var(single)) / (N - 1), population variances
    ref = (n * reps.mean(0).var(0) - reps.var(1).mean(0)) / (n - 1)
    np.testing.assert_allclose(sp, ref, rtol=1e-10)
    np.testing.assert_allclose(sp + noise, reps.var(1).mean(0), rtol=1e-10)
    reps[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        signal_power(reps)
    sp_nan, _ = signal_power(reps, allow_nan=True)
    assert np.isnan(sp_nan[0]) and np.allclose(sp_nan[1:], ref[1:])
    with pytest.raises(ValueError, match="at least 2 repeats"):
        signal_power(reps[:1])


def test_resampled_rows_and_bootstraps_share_one_stream():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((25, 3))
    draws = [idx for _, idx in resampled_rows(25, 70, 30, random_state=5)]
    assert [len(d) for d in draws] == [30, 30, 10]
    idx = np.vstack(draws)
    assert idx.min() >= 0 and idx.max() < 25
    # bootstrap_sums with chunks of 30 replicates resamples the same rows
    sums = bootstrap_sums(x, 70, random_state=5, max_memory=30 * 8 * 25)
    np.testing.assert_allclose(sums, x[idx].sum(1), rtol=1e-12)
    # bootstrap_ci: statistic of the resampled rows, percentile interval
    ci = bootstrap_ci(x, statistic=np.median, n_bootstrap=70, random_state=5)
    ref = np.median(x[np.vstack([i for _, i in resampled_rows(25, 70, 2**24 // x.size, 5)])], axis=1)
    np.testing.assert_allclose(ci.distribution, ref)
    np.testing.assert_allclose(ci.low, np.quantile(ref, 0.025, axis=0))
    np.testing.assert_allclose(ci.estimate, np.median(x, axis=0))


def test_bootstrap_ci_agrees_with_scipy_percentile_bootstrap():
    x = np.random.default_rng(6).standard_normal((40, 2)) + [0.0, 1.0]
    ci = bootstrap_ci(x, n_bootstrap=20000, random_state=0)
    for j in range(2):
        ref = stats.bootstrap((x[:, j],), np.mean, n_resamples=20000, method="percentile",
                              random_state=1).confidence_interval
        assert abs(ci.low[j] - ref.low) < 0.03 and abs(ci.high[j] - ref.high) < 0.03


@pytest.mark.parametrize("n_scans, n_blocks", [(40, 4), (43, 4), (37, 5), (10, 2)])
def test_folds_of_one_run_are_sklearn_kfold_blocks(n_scans, n_blocks):
    folds = make_folds(None, n_scans, n_blocks=n_blocks)
    ref = list(KFold(n_blocks).split(np.empty((n_scans, 1))))
    assert len(folds) == n_blocks
    for (tr, te), (rtr, rte) in zip(folds, ref):
        np.testing.assert_array_equal(te, rte)
        np.testing.assert_array_equal(tr, rtr)
        assert np.all(np.diff(te) == 1)  # contiguous: time is never shuffled
    labels = fold_labels(np.zeros(n_scans), n_blocks)
    assert np.all(np.diff(labels) >= 0) and set(labels) == set(range(1, n_blocks + 1))
    for k, (_, te) in enumerate(folds, start=1):
        np.testing.assert_array_equal(np.flatnonzero(labels == k), te)


def test_folds_of_several_runs_leave_one_run_out():
    runs = np.repeat([3, 1, 2], [5, 4, 6])
    folds = make_folds(None, runs.size, runs)
    ref = list(LeaveOneGroupOut().split(np.empty((runs.size, 1)), groups=runs))
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(folds, ref))
    # the labels rank the runs: 1 for the smallest run label
    np.testing.assert_array_equal(fold_labels(runs), np.repeat([3, 1, 2], [5, 4, 6]))
    np.testing.assert_array_equal(fold_labels(np.repeat([1, 2], 4), n_blocks=4), np.repeat([1, 2], 4))
    with pytest.raises(ValueError, match="too few for 4 contiguous folds"):
        make_folds(None, 7, n_blocks=4)
    with pytest.raises(ValueError, match="cv=4 folds but only 3 runs"):
        make_folds(4, runs.size, runs)


@pytest.mark.parametrize("text, expected", [
    ("1GB", 10**9), ("1 gb", 10**9), ("1GiB", 2**30), ("512MB", 512 * 10**6), ("512MiB", 512 * 2**20),
    ("1.5kB", 1500), ("2G", 2 * 10**9), ("2Gi", 2 * 2**30), ("3TB", 3 * 10**12), ("100", 100),
    ("1e3B", 1000), (4096, 4096), (2.5e9, 2_500_000_000), (np.int64(7), 7),
])
def test_parse_bytes_si_and_iec(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("bad, match", [
    ("lots", "max_memory='lots' is not a size"), ("5iB", "is not a size"), ("1.2.3GB", "is not a size"),
    (True, "is not a size"), (None, "is not a size"), (0, "must be a positive"), ("-1GB", "is not a size"),
])
def test_parse_bytes_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        parse_bytes(bad, "max_memory")


def test_output_dtype_follows_floating_inputs():
    assert output_dtype(np.ones(3, np.float32)) == np.float32
    assert output_dtype(np.ones(3)) == np.float64
    assert output_dtype(np.ones(3, np.int32)) == np.float64
    assert output_dtype(np.ones(3, np.float16)) == np.float64
    assert output_dtype([[1.0, 2.0]]) == np.float64


def test_estimators_carry_nilearn_input_tags():
    tags_module = pytest.importorskip("nilearn._utils.tags")
    for est in (NeuronActivations(), TRAligner(), SparseAtoms(), VoxelEncoder(), VoxelGLM()):
        tags = est.__sklearn_tags__()
        assert isinstance(tags.input_tags, tags_module.InputTags), type(est).__name__
        # X is an array (a stimuli table for NeuronActivations); images go in y
        assert not tags_module.accept_niimg_input(est) and not tags_module.accept_surf_img_input(est)
        assert tags.input_tags.two_d_array


def test_docstring_examples_run():
    for mod in (_bootstrap, _estimators, _folds, _sizes, _stats):
        result = doctest.testmod(mod, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, mod.__name__
    assert set(_utils.__all__) <= set(dir(_utils))


def test_blas_threads_limits_blas_and_restores_it():
    from threadpoolctl import threadpool_info, threadpool_limits

    from nilearn_vlm._utils import blas_threads

    def blas_threads_now():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    if not blas_threads_now():
        pytest.skip("no BLAS library that threadpoolctl can see")
    with threadpool_limits(limits=2, user_api="blas"):  # a known starting point above 1
        assert set(blas_threads_now()) == {2}
        for _ in range(2):  # the cached controller works on later calls too
            with blas_threads(1):
                assert set(blas_threads_now()) == {1}
            assert set(blas_threads_now()) == {2}
