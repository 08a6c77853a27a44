"""Tests of the out-of-core unit x voxel maps against brute force."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nilearn_vlm.maps import unit_voxel_maps, weight_maps


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """One BLAS thread: small LAPACK calls are many times slower when the
    shared test machine is oversubscribed."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _data(seed=0, n=120, u=300, v=70):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, u))
    Y = rng.standard_normal((n, v))
    # planted positive and negative couplings
    Y[:, :20] += 0.8 * X[:, [5]]
    Y[:, 20:35] -= 0.8 * X[:, [7]]
    Y[:, 40] = 3.0  # constant voxel: r = 0 everywhere
    return X, Y


def _brute_r(X, Y):
    u = X.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        R = np.corrcoef(X.T, Y.T)[:u, u:]
    return np.nan_to_num(R)


def _check_top(maps, R, k):
    order = np.argsort(-np.abs(R), axis=0, kind="stable")[:k]
    exp_abs = np.take_along_axis(np.abs(R), order, axis=0)
    got_abs = np.abs(maps.top_values)
    np.testing.assert_allclose(got_abs, exp_abs, atol=1e-5)
    # the kept units carry their own signed r
    np.testing.assert_allclose(
        maps.top_values, np.take_along_axis(R, maps.top_units.astype(int), axis=0),
        atol=1e-5,
    )


@pytest.mark.parametrize("chunks", [(None, None), (64, 16), (1000, 7)])
def test_top_k_and_threshold_counts_equal_brute_force(chunks):
    X, Y = _data()
    R = _brute_r(X, Y)
    maps = unit_voxel_maps(X, Y, top_k=4, threshold=0.3, unit_chunk=chunks[0],
                           voxel_chunk=chunks[1])
    _check_top(maps, R, 4)
    assert np.all(maps.top_units[0, :20] == 5)
    assert np.all(maps.top_units[0, 20:35] == 7)
    assert np.all(maps.top_values[0, 20:35] < 0)
    np.testing.assert_array_equal(maps.n_positive, (R >= 0.3).sum(1))
    np.testing.assert_array_equal(maps.n_negative, (R <= -0.3).sum(1))
    assert maps.n_positive[5] == 20 and maps.n_negative[7] == 15


def test_fdr_threshold_matches_scipy_to_bin_width():
    X, Y = _data(seed=1)
    R = _brute_r(X, Y)
    n = X.shape[0]
    dof = n - 2
    t = R * np.sqrt(dof / np.clip(1 - R**2, 1e-12, None))
    p = 2 * stats.t.sf(np.abs(t), dof)
    q = stats.false_discovery_control(p.ravel()).reshape(p.shape)
    rejected = q <= 0.05
    width = 1e-3
    maps = unit_voxel_maps(X, Y, threshold="fdr", alpha=0.05, r_resolution=width, inference="iid")
    ours = np.abs(R) >= maps.threshold
    # a subset of the exact BH rejections, missing at most one bin of |r|
    assert ours.sum() > 30 and not np.any(ours & ~rejected)
    assert np.all(np.abs(R[rejected & ~ours]) >= maps.threshold - width)
    np.testing.assert_array_equal(maps.n_positive, (R >= maps.threshold).sum(1))
    np.testing.assert_array_equal(maps.n_negative, (R <= -maps.threshold).sum(1))
    assert np.all(maps.n_positive <= (rejected & (R > 0)).sum(1))
    assert maps.n_positive[5] == 20 and maps.n_negative[7] == 15
    # a smaller effective dof is more conservative
    strict = unit_voxel_maps(X, Y, threshold="fdr", dof=30, inference="iid")
    assert strict.threshold > maps.threshold


@pytest.mark.parametrize("inference", ["iid", "calibrated"])
def test_fdr_with_pure_noise_rejects_nothing(inference):
    rng = np.random.default_rng(2)
    maps = unit_voxel_maps(rng.standard_normal((200, 50)),
                           rng.standard_normal((200, 40)), inference=inference)
    assert maps.threshold == np.inf and maps.info["inference"] == inference
    assert maps.n_positive.sum() == 0 and maps.n_negative.sum() == 0


def test_memmap_inputs_and_unit_table(tmp_path):
    X, Y = _data(seed=3, u=40)
    names = [f"vision.{i // 10}.attn_out.{i % 10}" for i in range(40)]
    xm = np.lib.format.open_memmap(tmp_path / "x.npy", "w+", np.float32, X.shape)
    xm[:] = X
    ym = np.lib.format.open_memmap(tmp_path / "y.npy", "w+", np.float32, Y.shape)
    ym[:] = Y
    maps = unit_voxel_maps(pd.DataFrame(np.asarray(xm), columns=names), ym,
                           top_k=2, threshold=0.3, voxel_chunk=16)
    _check_top(maps, _brute_r(X, Y), 2)
    table = maps.unit_table()
    assert list(table.columns[:6]) == ["unit", "name", "stream", "layer", "kind", "index"]
    assert table.loc[5, "n_positive"] == 20 and table.loc[5, "layer"] == 0


def test_weight_maps_equal_brute_force():
    rng = np.random.default_rng(4)
    W = rng.standard_normal((90, 33))
    maps = weight_maps(W, threshold=1.5, top_k=3, unit_chunk=64, voxel_chunk=10)
    _check_top(maps, W, 3)
    np.testing.assert_array_equal(maps.n_positive, (W >= 1.5).sum(1))
    np.testing.assert_array_equal(maps.n_negative, (W <= -1.5).sum(1))


def test_errors():
    X, Y = _data(u=20)
    with pytest.raises(ValueError, match="X has 120 scans but Y has 119"):
        unit_voxel_maps(X, Y[:-1])
    with pytest.raises(ValueError, match="top_k=30 exceeds"):
        unit_voxel_maps(X, Y, top_k=30)
    with pytest.raises(ValueError, match="threshold='bonf'"):
        unit_voxel_maps(X, Y, threshold="bonf")
    with pytest.raises(ValueError, match="memory_budget"):
        unit_voxel_maps(X, Y, memory_budget="10KB")
    with pytest.raises(ValueError, match="is not a size"):
        unit_voxel_maps(X, Y, memory_budget="lots")
    with pytest.raises(ValueError, match="dof must lie"):
        unit_voxel_maps(X, Y, dof=500, inference="iid")
    with pytest.raises(ValueError, match="dof sets the degrees of freedom of the 'iid' t-test"):
        unit_voxel_maps(X, Y, dof=50)
    with pytest.raises(ValueError, match="inference='bayes' is not supported"):
        unit_voxel_maps(X, Y, inference="bayes")
