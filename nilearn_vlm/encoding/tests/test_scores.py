"""Scores that respect runs and the variance floors, against independent references."""

import warnings

import numpy as np
import pytest
import sklearn
from scipy.signal import detrend
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nilearn_vlm import VoxelEncoder

ALPHAS = np.logspace(-2, 5, 15)


def _runs_data(seed=0, n_runs=4, n=100, p=5, v=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_runs * n, p))
    Y = X @ rng.standard_normal((p, v)) + rng.standard_normal((n_runs * n, v))
    return X, Y, np.repeat(np.arange(n_runs), n)


def _within_run_r(pred, Y, runs):
    """Mean over runs of the Pearson r of the linearly detrended runs (scipy, numpy)."""
    out = []
    for r in np.unique(runs):
        m = runs == r
        p, y = detrend(pred[m], axis=0), detrend(Y[m], axis=0)
        out.append([np.corrcoef(p[:, j], y[:, j])[0, 1] for j in range(Y.shape[1])])
    return np.mean(out, axis=0)


def test_voxel_flat_in_one_run_gets_no_absurd_cv_score():
    # before the floor: float32 rounding left the flat held-out run a variance
    # of ~1e-12, R^2 = -3e13 and the largest alpha, silently
    X, Y, runs = _runs_data()
    Y[100:200, 1] = 0.1  # voxel 1 is flat in run 1
    with pytest.warns(UserWarning, match="1 voxel.* flat .* in some of the 4 validation folds"):
        enc = VoxelEncoder().fit(X, Y.astype(np.float32), groups=runs)
    # reference: sklearn Ridge in float64, R^2 averaged over the three other folds
    cv = []
    for a in ALPHAS:
        r2 = []
        for k in (0, 2, 3):
            tr, te = runs != k, runs == k
            pred = Ridge(alpha=a).fit(X[tr], Y[tr, 1]).predict(X[te])
            yt = Y[te, 1]
            r2.append(1 - ((yt - pred) ** 2).sum() / ((yt - yt.mean()) ** 2).sum())
        cv.append(np.mean(r2))
    best = int(np.argmax(cv))
    assert enc.alpha_[1] == pytest.approx(ALPHAS[best])
    assert enc.cv_scores_[1] == pytest.approx(cv[best], abs=1e-4)
    assert enc.cv_scores_[1] > 0.3 and enc.n_unscored_ == 0


def test_voxel_flat_up_to_rounding_is_excluded_and_counted():
    X, Y, runs = _runs_data()
    Y[:, 2] = np.float32(0.1) + np.float32(1e-9) * np.arange(len(Y))  # flat up to float32 ulps
    with pytest.warns(UserWarning, match="1 constant voxel"):
        enc = VoxelEncoder().fit(X, Y.astype(np.float32), groups=runs)
    assert np.isnan(enc.cv_scores_[2]) and enc.n_unscored_ == 1
    assert not enc.valid_voxels_[2]


def test_score_is_within_run_r_with_run_baselines():
    X, Y, runs = _runs_data(seed=1)
    enc = VoxelEncoder(dtype="float64").fit(X, Y, groups=runs)
    rng = np.random.default_rng(5)
    Yb = Y + rng.uniform(-50, 50, 4)[runs][:, None] + 0.02 * np.arange(len(Y))[:, None]
    pred = X @ enc.coef_.T + enc.intercept_
    ref = _within_run_r(pred, Yb, runs)
    np.testing.assert_allclose(enc.score_img(X, Yb, groups=runs), ref, atol=1e-10)
    assert enc.score(X, Yb, groups=runs) == pytest.approx(ref.mean(), abs=1e-10)
    # lists of runs give the same runs
    Xl = [X[runs == r] for r in range(4)]
    Yl = [Yb[runs == r] for r in range(4)]
    assert enc.score(Xl, Yl) == pytest.approx(ref.mean(), abs=1e-10)
    # pooled over runs, the baselines set the score: far from the within-run one
    pooled = [np.corrcoef(pred[:, j], Yb[:, j])[0, 1] for j in range(3)]
    assert np.max(np.abs(np.array(pooled) - ref)) > 0.2


def test_score_groups_through_metadata_routing():
    X, Y, runs = _runs_data(seed=2)
    Yb = Y + 30.0 * runs[:, None]
    with sklearn.config_context(enable_metadata_routing=True):
        enc = VoxelEncoder().set_fit_request(groups=True, confounds=False, repeats=False)
        enc = enc.set_score_request(groups=True, confounds=False)
        pipe = make_pipeline(StandardScaler(), enc).fit(X, Yb, groups=runs)
        got = pipe.score(X, Yb, groups=runs)
    Xs = StandardScaler().fit_transform(X)
    fitted = pipe[-1]
    ref = _within_run_r(Xs @ fitted.coef_.T + fitted.intercept_, Yb, runs).mean()
    assert got == pytest.approx(ref, abs=1e-5)
    # without groups the scans are one run: the baselines leak into the score
    with sklearn.config_context(enable_metadata_routing=True):
        assert abs(pipe.score(X, Yb) - got) > 0.05


def test_score_voxel_flat_in_every_run_is_nan_and_counted():
    X, Y, runs = _runs_data(seed=3)
    enc = VoxelEncoder().fit(X, Y, groups=runs)
    Yt = Y.copy()
    Yt[:, 0] = 5.0 + runs  # flat within each run (different baselines)
    Yt[runs == 2, 1] = 7.0  # flat in run 2 only: scored on the other runs
    with pytest.warns(UserWarning, match="1 of 3 voxel"):
        r = enc.score_img(X, Yt, groups=runs)
    assert np.isnan(r[0]) and np.isfinite(r[1:]).all()
    pred = X @ enc.coef_.T + enc.intercept_
    keep = runs != 2
    assert r[1] == pytest.approx(_within_run_r(pred[keep], Yt[keep], runs[keep])[1], abs=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert enc.score(X, Yt, groups=runs) == pytest.approx(np.nanmean(r))


def test_standardize_uses_training_statistics_only():
    # standardize=True: each fold scales with its training scans; the held-out
    # run's feature scale does not change the other folds' validation scores
    X, Y, runs = _runs_data(seed=4)
    enc = VoxelEncoder(standardize=True, dtype="float64").fit(X, Y, groups=runs)
    X2 = X.copy()
    X2[runs == 3] *= 10.0  # only run 3's features change
    # the fold that holds out run 3 trains on runs 0-2: same scaling, same predictions
    a = VoxelEncoder(standardize=True, dtype="float64", alphas=[enc.alpha_[0]])
    p1 = a.fit(X[runs != 3], Y[runs != 3, :1], groups=runs[runs != 3]).predict(X[runs == 3])
    p2 = a.fit(X2[runs != 3], Y[runs != 3, :1], groups=runs[runs != 3]).predict(X[runs == 3])
    np.testing.assert_allclose(p1, p2)
    # per-run scaling: every run of features and BOLD at unit variance; r unchanged
    run_scaled = VoxelEncoder(standardize="run", dtype="float64").fit(X, Y * (1 + runs[:, None]), groups=runs)
    assert np.isfinite(run_scaled.cv_scores_).all()
