"""TRAligner against nilearn's compute_regressor, a hand FIR delayer, and in a Pipeline."""

import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import compute_regressor
from scipy.stats import zscore

from nilearn_vlm.timeseries import HRF_MODELS, TRAligner, regressor_matrices


def _events(rng, n_runs=2, n_per_run=25, run_length=110.0):
    rows = []
    for run in range(n_runs):
        onsets = np.sort(rng.uniform(0, run_length - 10, n_per_run))
        durations = rng.uniform(0, 4, n_per_run)  # straddle TRs, some near 0
        durations[::7] = 0.0
        for o, d in zip(onsets, durations):
            rows.append({"onset": o, "duration": d, "run": f"r{run}"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("hrf_model", HRF_MODELS)
@pytest.mark.parametrize("oversampling,slice_time_ref", [(50, 0.0), (16, 0.5)])
def test_matches_nilearn_compute_regressor(hrf_model, oversampling, slice_time_ref):
    rng = np.random.default_rng(0)
    events = _events(rng)
    t_r, n_scans = 2.0, {"r0": 60, "r1": 57}
    X = rng.standard_normal((len(events), 6))
    aligner = TRAligner(events=events, n_scans=n_scans, t_r=t_r, hrf_model=hrf_model,
                        oversampling=oversampling, slice_time_ref=slice_time_ref,
                        standardize=False, fir_delays=[0, 1, 3])
    Y = aligner.fit_transform(X)
    n_basis = aligner.n_basis_
    assert Y.shape == (117, 6 * n_basis)
    for run in ("r0", "r1"):
        sub = events["run"] == run
        ft = t_r * (np.arange(n_scans[run]) + slice_time_ref)
        for u in range(6):
            cond = np.vstack([events.onset[sub], events.duration[sub], X[sub.to_numpy(), u]])
            ref, _ = compute_regressor(cond, hrf_model, ft, oversampling=oversampling,
                                       fir_delays=[0, 1, 3])
            got = Y[aligner.run_slices_[run], u::6]
            np.testing.assert_allclose(got, ref, atol=1e-6, rtol=0)


def test_threads_and_chunks_give_the_same_result():
    rng = np.random.default_rng(5)
    events = _events(rng)
    X = rng.standard_normal((len(events), 10)).astype(np.float32)
    ref = TRAligner(events=events, n_scans=[60, 60], t_r=2.0).fit_transform(X)
    got = TRAligner(events=events, n_scans=[60, 60], t_r=2.0, chunk_size=3, n_jobs=2).fit_transform(X)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)  # float32 reduction order


def test_zscore_per_run_matches_reference():
    rng = np.random.default_rng(1)
    events = _events(rng)
    X = rng.standard_normal((len(events), 4))
    raw = TRAligner(events=events, n_scans=[60, 60], t_r=2.0, standardize=False).fit_transform(X)
    aligner = TRAligner(events=events, n_scans=[60, 60], t_r=2.0)
    Y = aligner.fit_transform(X)
    for run, sl in aligner.run_slices_.items():
        np.testing.assert_allclose(Y[sl], zscore(raw[sl], axis=0), atol=1e-10)
    assert list(aligner.run_labels_[:60]) == ["r0"] * 60


def test_fir_is_a_hand_delayer():
    # events exactly on the TR grid, one TR long: FIR delay d shifts by d scans
    t_r, n = 1.5, 40
    rng = np.random.default_rng(2)
    events = pd.DataFrame({"onset": t_r * np.arange(n), "duration": t_r})
    X = rng.standard_normal((n, 3))
    delays = [0, 1, 2, 5]
    Y = TRAligner(events=events, n_scans=n, t_r=t_r, hrf_model="fir", fir_delays=delays,
                  standardize=False).fit_transform(X)
    for b, d in enumerate(delays):
        expected = np.zeros_like(X)
        expected[d:] = X[: n - d]
        np.testing.assert_allclose(Y[:, b * 3 : (b + 1) * 3], expected, atol=1e-12)


def test_fir_events_straddling_trs_split_by_overlap():
    # FIR delay 0 at scan s = the part of [t_s, t_s + TR) the event covers,
    # up to the resolution of the oversampled grid (amplitude / oversampling)
    t_r = 2.0
    events = pd.DataFrame({"onset": [1.0, 6.5], "duration": [2.0, 3.0]})
    Y = TRAligner(events=events, n_scans=8, t_r=t_r, hrf_model="fir", fir_delays=[0, 1],
                  oversampling=1000, standardize=False).fit_transform(np.array([[1.0], [10.0]]))
    expected0 = np.array([0.5, 0.5, 0.0, 7.5, 7.5, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(Y[:, 0], expected0, atol=10 * 2 / 1000)
    np.testing.assert_allclose(Y[:, 1], np.r_[0.0, expected0[:-1]], atol=10 * 2 / 1000)


def test_hrf_is_a_hand_convolution_on_the_grid():
    # oversampling=1 and unit events on the grid: a plain discrete convolution
    from nilearn.glm.first_level import spm_hrf

    t_r, n = 1.0, 50
    rng = np.random.default_rng(3)
    events = pd.DataFrame({"onset": t_r * np.arange(n), "duration": t_r})
    x = rng.standard_normal(n)
    Y = TRAligner(events=events, n_scans=n, t_r=t_r, hrf_model="spm", oversampling=1,
                  min_onset=0.0, standardize=False).fit_transform(x[:, None])
    h = spm_hrf(t_r, 1)
    expected = np.convolve(x, h)[:n]
    np.testing.assert_allclose(Y[:, 0], expected, atol=1e-12)


def test_regressor_matrices_are_sparse_and_linear():
    ft = np.arange(30) * 2.0
    mats = regressor_matrices([1.0, 20.0], [1.0, 3.0], ft)
    assert len(mats) == 1 and mats[0].shape == (30, 2)
    assert mats[0].nnz < 60
    ref, _ = compute_regressor(np.array([[1.0, 20.0], [1.0, 3.0], [2.0, -1.0]]), "glover", ft)
    np.testing.assert_allclose(mats[0] @ np.array([2.0, -1.0]), ref[:, 0], atol=1e-12)


def test_float32_agrees_with_float64_and_constant_columns():
    rng = np.random.default_rng(4)
    events = _events(rng)
    X = rng.standard_normal((len(events), 5)) * 1e-6  # small scale stays non-constant
    X[:, 4] = 0.0
    al = TRAligner(events=events, n_scans=[60, 60], t_r=2.0, hrf_model="glover + derivative")
    Y64 = al.fit_transform(X)
    Y32 = al.fit_transform(X.astype(np.float32))
    assert Y32.dtype == np.float32
    np.testing.assert_allclose(Y32, Y64, atol=2e-4)
    assert (Y64[:, [4, 9]] == 0).all() and np.allclose(Y64[:60, 0].std(), 1.0)


def test_dtype_and_feature_names():
    events = pd.DataFrame({"onset": [0.0, 3.0], "duration": [1.0, 1.0]})
    al = TRAligner(events=events, n_scans=10, t_r=1.0, hrf_model="fir", fir_delays=[1, 2])
    Y = al.fit_transform(np.array([[1, 2], [3, 4]], dtype=np.float32))
    assert Y.dtype == np.float32 and Y.shape == (10, 4)
    assert list(al.get_feature_names_out(["a", "b"])) == ["a_delay_1", "b_delay_1", "a_delay_2", "b_delay_2"]


def test_n_scans_checked_against_images():
    events = pd.DataFrame({"onset": [0.0, 2.0, 0.0], "duration": 1.0, "run": [1, 1, 2]})
    imgs = [np.zeros((20, 5)), np.zeros((18, 5))]
    al = TRAligner(events=events, t_r=1.0, imgs=imgs).fit(np.ones((3, 1)))
    assert al.n_scans_ == {1: 20, 2: 18}
    with pytest.raises(ValueError, match=r"run 2: the image has 18 scans but n_scans says 19"):
        TRAligner(events=events, t_r=1.0, n_scans=[20, 19], imgs=imgs).fit(np.ones((3, 1)))
    import nibabel as nib

    img = nib.Nifti1Image(np.zeros((2, 2, 2, 20), dtype=np.float32), np.eye(4))
    al = TRAligner(events=events, t_r=1.0, n_scans={1: img, 2: 18}).fit(np.ones((3, 1)))
    assert al.n_scans_ == {1: 20, 2: 18}


def test_validation_errors():
    events = pd.DataFrame({"onset": [0.0, 2.0], "duration": 1.0, "run": [0, 1]})
    X = np.ones((2, 1))
    with pytest.raises(ValueError, match="needs the events"):
        TRAligner(n_scans=5, t_r=1.0).fit(X)
    with pytest.raises(ValueError, match="t_r must be a positive number"):
        TRAligner(events=events, n_scans=[5, 5]).fit(X)
    with pytest.raises(ValueError, match=r"'t_r' parameter of TRAligner must be a float in the range \(0.0, inf\)"):
        TRAligner(events=events, n_scans=[5, 5], t_r=0).fit(X)
    with pytest.raises(TypeError, match="'events' parameter of TRAligner must be an instance of"):
        TRAligner(events=events.to_dict(), n_scans=[5, 5], t_r=1.0).fit(X)
    with pytest.raises(ValueError, match="'hrf_model' parameter of TRAligner must be a str among .* Got 'gloverr'"):
        TRAligner(events=events, n_scans=[5, 5], t_r=1.0, hrf_model="gloverr").fit(X)
    with pytest.raises(ValueError, match="n_scans has 1 entries but the events have 2 runs"):
        TRAligner(events=events, n_scans=[5], t_r=1.0).fit(X)
    with pytest.raises(ValueError, match=r"events of runs \[1\] have no n_scans entry"):
        TRAligner(events=events, n_scans={0: 5}, t_r=1.0).fit(X)
    with pytest.raises(ValueError, match="X has 3 rows but there are 2 events"):
        TRAligner(events=events, n_scans=[5, 5], t_r=1.0).fit(np.ones((3, 1)))
    with pytest.raises(ValueError, match="fir_delays must be non-negative ints"):
        TRAligner(events=events, n_scans=[5, 5], t_r=1.0, hrf_model="fir", fir_delays=[-1]).fit(X)
    bad = events.assign(onset=[np.nan, 1.0])
    with pytest.raises(ValueError, match="'onset' has NaN"):
        TRAligner(events=bad, n_scans=[5, 5], t_r=1.0).fit(X)
    with pytest.warns(UserWarning, match="start after the last scan"):
        TRAligner(events=events.assign(onset=[0.0, 50.0]), n_scans=[5, 5], t_r=1.0).fit(X)
