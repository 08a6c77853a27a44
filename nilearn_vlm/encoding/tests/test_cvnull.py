"""The cross-fitted shift null of out-of-fold scores: brute-force refits, calibration, power."""

import warnings

import numpy as np
import pytest
from scipy.signal import detrend, lfilter
from scipy.stats import binomtest
from sklearn.base import clone
from sklearn.linear_model import Ridge

from nilearn_vlm import VoxelEncoder
from nilearn_vlm._utils import clean_signals, run_scores
from nilearn_vlm.encoding import out_of_fold_null
from nilearn_vlm.stats import permutation_null


def _hrf_features(rng, n_runs, n, p=4):
    """HRF-smooth features (a gamma-shaped kernel, 2 s scans), per run."""
    t = np.arange(16) * 2.0
    h = t**5 * np.exp(-t) / 120 - t**15 * np.exp(-t) / (6 * 1.3e12)
    return np.vstack([lfilter(h, [1], rng.standard_normal((n + 20, p)), axis=0)[20:]
                      for _ in range(n_runs)])


def _refit_scores(X, Ys, runs, alphas, enc, conf):
    """Out-of-fold within-run r of explicit sklearn refits on the (shifted) BOLD ``Ys``."""
    kw = dict(detrend=enc.detrend, high_pass=enc.high_pass, t_r=enc.t_r)
    Xc, Yc = clean_signals(X, Ys, runs, conf, **kw)  # what the encoder does to its input
    P = np.zeros_like(Ys)
    for k in np.unique(runs):
        tr = runs != k
        Xtr, Xte = Xc[tr], Xc[~tr]
        if enc.standardize:
            sd = Xtr.std(0)
            Xtr, Xte = Xtr / sd, Xte / sd
        for v in range(Ys.shape[1]):
            P[~tr, v] = Ridge(alpha=alphas[k, v]).fit(Xtr, Yc[tr, v]).predict(Xte)
    return run_scores(P, Ys, runs, high_pass=enc.high_pass, t_r=enc.t_r, confounds=conf).score


@pytest.mark.parametrize("shifted", ["raw", "cleaned"])
@pytest.mark.parametrize("params, with_confounds", [
    (dict(), False),
    (dict(high_pass=0.01, t_r=2.0), True),
    (dict(standardize=True, detrend=True, high_pass=0.02, t_r=2.0), True),
])
def test_null_equals_explicit_refits_on_shifted_bold(params, with_confounds, shifted):
    rng = np.random.default_rng(1)
    lens = [40, 37, 45]
    runs = np.repeat(np.arange(3), lens)
    n = runs.size
    X = rng.standard_normal((n, 4))
    Y = rng.standard_normal((n, 5)) + 5.0 * runs[:, None]  # run baselines
    Y[:, 0] += X @ [1.0, 0.5, 0.0, 0.0]
    Y += np.linspace(0, 2, n)[:, None]  # a drift
    conf = rng.standard_normal((n, 2)) if with_confounds else None
    enc = VoxelEncoder(alphas=[0.1, 10.0, 1000.0], dtype="float64", **params)
    Y0 = Y.copy()
    res = out_of_fold_null(enc, X, Y, runs, confounds=conf, n_permutations=4, random_state=0,
                           return_null=True, dtype=np.float64, shifted=shifted)
    np.testing.assert_array_equal(Y, Y0)  # the input is left alone
    # the BOLD that is shifted: as given (its confounds removed), or as the encoder cleans it
    if shifted == "raw":
        Yt = Y if conf is None else clean_signals(None, Y, runs, conf)[1]
    else:
        Yt = clean_signals(None, Y, runs, conf, detrend=enc.detrend, high_pass=enc.high_pass,
                           t_r=enc.t_r)[1]
    for d in range(res.n_permutations):
        Ys = Yt.copy()
        for k in range(3):
            Ys[runs == k] = np.roll(Yt[runs == k], res.draws[k][d], axis=0)
        ref = _refit_scores(X, Ys, runs, res.alphas, enc, conf)
        np.testing.assert_allclose(res.null[d], ref, atol=1e-10)
    # the observed statistic: each held-out run predicted by the encoder fitted on the others
    # (its alphas chosen inside them), scored within runs (scipy detrend, numpy corrcoef)
    if not params:
        r = []
        for k in range(3):
            tr = runs != k
            fold = clone(enc).fit(X[tr], Y[tr], groups=runs[tr])
            np.testing.assert_array_equal(fold.alpha_, res.alphas[k])
            p, y = detrend(fold.predict(X[~tr]), axis=0), detrend(Y[~tr], axis=0)
            r.append([np.corrcoef(p[:, j], y[:, j])[0, 1] for j in range(5)])
        np.testing.assert_allclose(res.statistic, np.mean(r, axis=0), atol=1e-8)
    assert (res.draws[0] >= 7).all() and (res.draws[0] <= 40 - 7).all()  # min_shift ceil(sqrt(40))


def _null_data(seed, n_runs=3, n=38, v=1500):
    rng = np.random.default_rng(seed)
    return _hrf_features(rng, n_runs, n), rng.standard_normal((n_runs * n, v)), \
        np.repeat(np.arange(n_runs), n)


def test_calibrated_on_null_voxels_where_resampling_fixed_predictions_is_not():
    # white BOLD, HRF-smooth features, 3 runs of 38 scans (where the gap is largest)
    p_new, p_old = [], []
    for seed in range(3):
        X, Y, runs = _null_data(seed)
        enc = VoxelEncoder()
        res = out_of_fold_null(enc, X, Y, runs, n_permutations=200, random_state=seed)
        p_new.append(res.pvalues)
        pred = np.zeros_like(Y)
        for k in range(3):
            tr = runs != k
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pred[~tr] = clone(enc).fit(X[tr], Y[tr], groups=runs[tr]).predict(X[~tr])
        old = permutation_null(pred, Y, runs=runs, method="shift", n_permutations=200,
                               random_state=seed)
        np.testing.assert_allclose(old.statistic, res.statistic, atol=1e-3)  # same score (float32 fits)
        p_old.append(old.pvalues)
    for p, inside in ((np.concatenate(p_new), True), (np.concatenate(p_old), False)):
        k = int((p <= 0.05).sum())
        ci = binomtest(k, p.size).proportion_ci(method="exact")
        if inside:
            assert ci.low <= 0.05 <= ci.high and ci.high < 0.10, (k / p.size, ci)
        else:  # each run's fixed prediction resampled alone: anti-conservative
            assert ci.low > 0.08, (k / p.size, ci)


def test_fwe_pvalues_are_those_of_the_null_maxima_and_planted_voxels_are_found():
    rng = np.random.default_rng(3)
    n_runs, n, v = 4, 80, 300
    runs = np.repeat(np.arange(n_runs), n)
    X = _hrf_features(rng, n_runs, n)
    X /= X.std(0)
    Y = rng.standard_normal((n_runs * n, v)) + 3.0 * runs[:, None]
    planted = np.arange(40)
    Y[:, planted] += 0.5 * X @ rng.standard_normal((4, planted.size))
    res = out_of_fold_null(VoxelEncoder(high_pass=0.01, t_r=2.0), X, Y, runs, n_permutations=300,
                           random_state=0, return_null=True, dtype=np.float64)
    # p-values from the null maps: +1 correction, and max-statistic FWE
    np.testing.assert_allclose(res.null_max, res.null.max(1))
    p = (1 + (res.null >= res.statistic - 1e-12).sum(0)) / (1 + res.n_permutations)
    np.testing.assert_allclose(res.pvalues, p)
    p_fwe = (1 + (res.null_max[:, None] >= res.statistic - 1e-12).sum(0)) / (1 + res.n_permutations)
    np.testing.assert_allclose(res.pvalues_fwe, p_fwe)
    # power: every planted voxel is found, family-wise corrected, and few others
    assert (res.pvalues_fwe[planted] <= 0.05).mean() >= 0.9
    others = np.setdiff1d(np.arange(v), planted)
    assert (res.pvalues_fwe[others] <= 0.05).sum() <= 2
    assert (res.pvalues[others] <= 0.05).mean() < 0.1


def test_flat_voxels_are_nan_and_counted():
    X, Y, runs = _null_data(0, v=6)
    Y[:, 2] = 7.0
    with pytest.warns(UserWarning, match=r"1 of 6 voxel\(s\) cannot be scored \(out-of-fold scores"):
        res = out_of_fold_null(VoxelEncoder(), X, Y, runs, n_permutations=20, random_state=0)
    assert np.isnan(res.statistic[2]) and np.isnan(res.pvalues[2]) and res.n_unscored == 1
    assert np.isfinite(np.delete(res.pvalues, 2)).all()


def test_bad_input_names_the_problem():
    X, Y, runs = _null_data(0, v=3)
    with pytest.raises(ValueError, match="standardize='run'"):
        out_of_fold_null(VoxelEncoder(standardize="run"), X, Y, runs)
    with pytest.raises(ValueError, match="shifted must be 'raw' or 'cleaned'"):
        out_of_fold_null(VoxelEncoder(), X, Y, runs, shifted="bold")
    with pytest.raises(ValueError, match="at least 2 runs"):
        out_of_fold_null(VoxelEncoder(), X, Y, np.zeros(len(Y)))
    Y[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        out_of_fold_null(VoxelEncoder(), X, Y, runs)
