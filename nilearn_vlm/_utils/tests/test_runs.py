"""Run-wise cleaning, scores within runs and variance floors, against scipy/numpy references."""

import numpy as np
import pytest
from scipy.signal import detrend

from nilearn_vlm._utils import (
    clean_signals,
    column_scale,
    is_flat,
    nuisance_design,
    run_scores,
    variance_floor,
)


def test_floor_separates_rounding_from_signal():
    rng = np.random.default_rng(0)
    for c in rng.uniform(-1e4, 1e4, 50):
        y = np.full(300, c, dtype=np.float32)
        y = y + np.float32(0)  # stored in float32
        ss = float(((y - y.mean(dtype=np.float32)) ** 2).sum(dtype=np.float32))
        assert is_flat(ss, abs(c), 300, np.float32)
    # BOLD at 0.1% of a 10,000 baseline is far above the floor
    y = (1e4 + 10.0 * rng.standard_normal(300)).astype(np.float32)
    ss = ((y.astype(float) - y.mean()) ** 2).sum()
    assert not is_flat(ss, column_scale(y[:, None])[0], 300, np.float32)
    assert ss > 5e3 * variance_floor(column_scale(y[:, None])[0], 300, np.float32)


def test_run_scores_equal_hand_computed_within_run_r():
    rng = np.random.default_rng(1)
    runs = np.repeat([3, 1, 2], [80, 60, 100])  # labels in any order, unequal lengths
    n = runs.size
    x = rng.standard_normal((n, 5))
    y = 0.5 * x + rng.standard_normal((n, 5))
    y += rng.uniform(-100, 100, 4)[runs][:, None] + 0.05 * np.arange(n)[:, None]
    ref_r, ref_r2 = [], []
    for r in (3, 1, 2):
        m = runs == r
        xd, yd = detrend(x[m], axis=0), detrend(y[m], axis=0)
        ref_r.append([np.corrcoef(xd[:, j], yd[:, j])[0, 1] for j in range(5)])
        ref_r2.append(1 - ((yd - xd) ** 2).sum(0) / (yd**2).sum(0))
    got = run_scores(x, y, runs)
    np.testing.assert_allclose(got.per_run, ref_r, atol=1e-12)
    np.testing.assert_allclose(got.score, np.mean(ref_r, 0), atol=1e-12)
    got2 = run_scores(x, y, runs, statistic="r2")
    np.testing.assert_allclose(got2.score, np.mean(ref_r2, 0), atol=1e-10)
    # one shared regressor
    shared = run_scores(x[:, 0], y, runs)
    ref = np.mean([[np.corrcoef(detrend(x[runs == r, 0]), detrend(y[runs == r, j]))[0, 1]
                    for j in range(5)] for r in (3, 1, 2)], 0)
    np.testing.assert_allclose(shared.score, ref, atol=1e-12)


def test_run_scores_flat_runs_are_nan_and_counted():
    rng = np.random.default_rng(2)
    runs = np.repeat([0, 1, 2], 50)
    x = rng.standard_normal((150, 3)).astype(np.float32)
    y = (x + rng.standard_normal((150, 3))).astype(np.float32)
    y[:, 0] = np.float32(0.1) * (1 + runs)  # flat in every run
    y[runs == 1, 1] = np.float32(0.3)  # flat in run 1
    x[:, 2] = np.float32(0.7)  # a flat prediction: r = 0
    got = run_scores(x, y, runs)
    assert got.unscored.tolist() == [True, False, False]
    assert np.isnan(got.score[0]) and got.n_runs_scored.tolist() == [0, 2, 3]
    assert np.isnan(got.per_run[1, 1])
    assert got.score[1] == pytest.approx(np.mean(got.per_run[[0, 2], 1]))
    assert got.score[2] == 0


def test_cleaning_is_per_run_and_matches_scipy():
    rng = np.random.default_rng(3)
    runs = np.repeat([0, 1], 40)
    Y = rng.standard_normal((80, 4)) + 5 * runs[:, None]
    conf = rng.standard_normal((80, 2))
    _, Yc = clean_signals(None, Y, runs, detrend=True)
    np.testing.assert_allclose(Yc[:40], detrend(Y[:40], axis=0), atol=1e-10)
    np.testing.assert_allclose(Yc[40:], detrend(Y[40:], axis=0), atol=1e-10)
    # confounds are fitted per run: changing run 1 leaves run 0's cleaning unchanged
    _, a = clean_signals(None, Y, runs, confounds=conf, detrend=True)
    Y2, conf2 = Y.copy(), conf.copy()
    Y2[40:] *= 3
    conf2[40:] = rng.standard_normal((40, 2))
    _, b = clean_signals(None, Y2, runs, confounds=conf2, detrend=True)
    np.testing.assert_allclose(a[:40], b[:40], atol=1e-10)
    D = nuisance_design(80, runs, conf, detrend=True)
    assert D.shape == (80, 2 * (2 + 2))  # per run: constant, trend, two confounds
    # per-run unit variance
    _, s = clean_signals(None, Y, runs, standardize=True)
    np.testing.assert_allclose(s[:40].std(0), 1)
    np.testing.assert_allclose(s[40:].std(0), 1)


def test_standardize_leaves_flat_runs_at_zero():
    Y = np.ones((20, 2), dtype=np.float32) * np.float32(0.3)
    Y[:10, 1] = np.arange(10)
    _, s = clean_signals(None, Y, np.repeat([0, 1], 10), standardize=True)
    assert np.all(s[:, 0] == 0) and np.all(s[10:, 1] == 0)
    assert np.isfinite(s).all()
