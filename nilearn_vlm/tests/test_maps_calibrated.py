"""Calibrated unit x voxel maps against the calibrated GLM (one model per unit) and brute force."""

import numpy as np
import pytest
from scipy import stats

from nilearn_vlm._glm_calibrated import calibrated_glm
from nilearn_vlm._glm_noise import ar_whiten, orth_basis
from nilearn_vlm._glm_solver import drift_terms
from nilearn_vlm._maps_calibrated import calibrated_unit_maps
from nilearn_vlm.maps import unit_voxel_maps


@pytest.fixture(autouse=True)
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _smooth(rng, n, k, width=3.0):
    """HRF-like smooth series (Gaussian kernel over white noise)."""
    t = np.arange(-12, 13)
    kern = np.exp(-0.5 * (t / width) ** 2)
    e = rng.standard_normal((n + t.size - 1, k))
    return np.stack([np.convolve(e[:, j], kern, mode="valid") for j in range(k)], axis=1)


def _data(seed=0, n=150, u=40, v=90):
    rng = np.random.default_rng(seed)
    runs = np.repeat([1, 2], [70, n - 70])
    X = _smooth(rng, n, u)
    Y = 0.5 * _smooth(rng, n, v, 1.5) + rng.standard_normal((n, v))
    Y[:, :15] += 1.5 * X[:, [3]] / X[:, 3].std()
    Y[:, 15:25] -= 1.5 * X[:, [8]] / X[:, 8].std()
    return X, Y, runs


def test_pairs_equal_the_calibrated_glm_and_bh():
    X, Y, runs = _data()
    N = drift_terms(len(X), runs, 2.0).to_numpy()
    out = calibrated_unit_maps(X, Y, N, runs, unit_chunk=16, voxel_chunk=32, return_p=True)
    ref = calibrated_glm(X, Y, N, mode="univariate", runs=runs)
    # float32 blocks and low-rank Satterthwaite moments against the float64 GLM
    np.testing.assert_allclose(np.log(out["p"]), np.log(ref["p"]), rtol=0.02, atol=0.02)
    q = stats.false_discovery_control(ref["p"].ravel()).reshape(ref["p"].shape)
    rejected = q <= 0.05
    counts = out["n_positive"] + out["n_negative"]
    assert counts[3] >= 13 and counts[8] >= 8
    # exact BH, up to the pairs within one |z| bin of the cut (and float32)
    assert abs(int(counts.sum()) - int(rejected.sum())) <= max(3, 0.05 * rejected.sum())
    np.testing.assert_array_equal(out["phi"], ref["phi"])


def test_top_units_are_the_whitened_partial_correlations():
    X, Y, runs = _data(seed=1)
    N = drift_terms(len(X), runs, 2.0).to_numpy()
    out = calibrated_unit_maps(X, Y, N, runs, top_k=3, unit_chunk=7, voxel_chunk=20)
    Q = orth_basis(ar_whiten(N, out["phi"], runs))

    def clean(A):
        A = ar_whiten(A, out["phi"], runs)
        A = A - Q @ (Q.T @ A)
        return A / np.linalg.norm(A, axis=0)

    R = clean(X).T @ clean(Y)
    order = np.argsort(-np.abs(R), axis=0)[:3]
    np.testing.assert_array_equal(out["top_units"], order)
    np.testing.assert_allclose(out["top_values"], np.take_along_axis(R, order, 0), atol=1e-5)


def test_chunks_and_jobs_leave_the_numbers_alone():
    X, Y, runs = _data(seed=2, v=60)
    kw = dict(t_r=2.0, runs=runs, top_k=2)
    a = unit_voxel_maps(X, Y, unit_chunk=64, voxel_chunk=16, **kw)
    b = unit_voxel_maps(X, Y, unit_chunk=40, voxel_chunk=60, **kw)
    c = unit_voxel_maps(X, Y, unit_chunk=64, voxel_chunk=16, n_jobs=2, **kw)
    for other in (b, c):
        np.testing.assert_array_equal(other.n_positive, a.n_positive)
        np.testing.assert_array_equal(other.n_negative, a.n_negative)
        np.testing.assert_array_equal(other.top_units, a.top_units)
    np.testing.assert_array_equal(c.top_values, a.top_values)
    assert a.n_positive[3] >= 13 and a.n_negative[8] >= 8
    assert "calibrated" in a.method and a.info["inference"] == "calibrated"


def test_calibrated_is_not_fooled_by_smooth_noise():
    """Smooth units against smooth noise: the iid test finds pairs, the calibrated one does not."""
    rng = np.random.default_rng(3)
    n = 120
    X = _smooth(rng, n, 60, 4.0)
    Y = _smooth(rng, n, 200, 4.0) + 0.3 * rng.standard_normal((n, 200))
    iid = unit_voxel_maps(X, Y, inference="iid")
    cal = unit_voxel_maps(X, Y, t_r=2.0)
    assert (iid.n_positive + iid.n_negative).sum() > 50
    assert (cal.n_positive + cal.n_negative).sum() <= 2


def test_kept_voxels_and_moment_paths_give_the_same_maps(monkeypatch):
    # whitened voxels kept or recomputed, Satterthwaite moments per pair or as
    # block products: the same maps (up to float32 rounding)
    import nilearn_vlm._maps_calibrated as mc

    X, Y, runs = _data(seed=2)
    N = drift_terms(len(X), runs, 2.0).to_numpy()
    kw = dict(unit_chunk=16, voxel_chunk=32, return_p=True)
    ref = calibrated_unit_maps(X, Y, N, runs, keep_bytes=0, **kw)
    kept = calibrated_unit_maps(X, Y, N, runs, keep_bytes=10**9, **kw)
    for key in ("top_units", "top_values", "n_positive", "n_negative", "p"):
        np.testing.assert_array_equal(kept[key], ref[key])
    for share in (0.0, 1.0):  # always block products / always per pair
        monkeypatch.setattr(mc, "DENSE_MOMENTS", share)
        out = calibrated_unit_maps(X, Y, N, runs, **kw)
        np.testing.assert_array_equal(out["n_positive"], ref["n_positive"])
        np.testing.assert_array_equal(out["n_negative"], ref["n_negative"])
        np.testing.assert_array_equal(out["top_units"], ref["top_units"])
