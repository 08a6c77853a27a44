"""VoxelEncoder against independent references (sklearn Ridge, himalaya)."""

import numpy as np
import pytest
from himalaya.backend import set_backend
from himalaya.ridge import RidgeCV as HimalayaRidgeCV
from himalaya.scoring import r2_score as h_r2
from scipy.signal import detrend as sp_detrend
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from nilearn_vlm import VoxelEncoder
from nilearn_vlm.encoding import explainable_variance, make_folds, pearson_per_voxel

ALPHAS = np.logspace(-2, 5, 15)


def _sk_predictions(X, Y, alphas, Xtest):
    return np.column_stack([
        Ridge(alpha=a).fit(X, Y[:, j]).predict(Xtest) for j, a in enumerate(alphas)
    ])


def _rel(a, b):
    return np.linalg.norm(a - b, axis=0) / np.linalg.norm(b, axis=0)


def _himalaya(X, Y, folds):
    set_backend("numpy", on_error="raise")
    return HimalayaRidgeCV(alphas=ALPHAS, cv=folds, fit_intercept=True,
                           solver_params=dict(score_func=h_r2)).fit(X, Y)


@pytest.mark.parametrize("dtype, solver", [("float64", "auto"), ("float32", "auto"),
                                           ("float64", "dual"), ("float64", "svd")])
def test_planted_signal_matches_sklearn_and_himalaya(planted, dtype, solver):
    # references run in float64: the exact answer (the kernel form in float32
    # is only used when features outnumber scans, see the wide test)
    X, Y = planted
    Xt = X[::8] * 1.1  # new scans from the features' distribution
    enc = VoxelEncoder(dtype=dtype, solver=solver, max_memory=2e5).fit(X, Y)
    assert len(np.unique(enc.alpha_)) >= 5
    folds = make_folds(None, len(X))
    assert all(np.array_equal(te, np.arange(i * 48, (i + 1) * 48))
               for i, (_, te) in enumerate(folds))
    hm = _himalaya(X, Y, folds)
    same = np.isclose(enc.alpha_, np.asarray(hm.best_alphas_), rtol=1e-6)
    assert same.mean() >= 0.99
    ref = _sk_predictions(X, Y, enc.alpha_, Xt)
    assert _rel(enc.predict(Xt), ref).max() < 1e-4
    np.testing.assert_allclose(enc.cv_scores_, hm.cv_scores_, atol=1e-4)
    ref_coef = np.column_stack(
        [Ridge(alpha=a).fit(X, Y[:, j]).coef_ for j, a in enumerate(enc.alpha_)])
    assert _rel(enc.coef_.T, ref_coef).max() < 1e-3


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dual_form_when_features_outnumber_scans(planted_wide, dtype):
    X, Y = planted_wide
    enc = VoxelEncoder(dtype=dtype).fit(X, Y)
    folds = make_folds(None, len(X))
    hm = _himalaya(X, Y, folds)
    same = np.isclose(enc.alpha_, np.asarray(hm.best_alphas_))
    assert len(np.unique(enc.alpha_)) >= 3
    assert same.mean() >= 0.99
    ref = _sk_predictions(X, Y, enc.alpha_, X[:20] * 1.1)
    assert _rel(enc.predict(X[:20] * 1.1), ref).max() < 1e-4


def test_cv_scores_are_out_of_fold_r2(planted):
    X, Y = planted
    Y = Y[:, ::15]
    enc = VoxelEncoder(dtype="float64").fit(X, Y)
    folds = make_folds(None, len(X))
    for j in range(Y.shape[1]):
        r2 = [r2_score(Y[te, j], Ridge(alpha=enc.alpha_[j]).fit(X[tr], Y[tr, j])
                       .predict(X[te])) for tr, te in folds]
        assert enc.cv_scores_[j] == pytest.approx(np.mean(r2), abs=1e-8)


def test_runs_give_leave_one_run_out(planted):
    X, Y = planted
    runs = np.repeat([0, 1, 2, 3], 60)
    enc = VoxelEncoder(dtype="float64").fit([X[runs == r] for r in range(4)], Y,
                                            groups=runs)
    folds = [(np.flatnonzero(runs != r), np.flatnonzero(runs == r)) for r in range(4)]
    hm = _himalaya(X, Y, folds)
    assert np.isclose(enc.alpha_, np.asarray(hm.best_alphas_)).mean() >= 0.99


def test_nested_cv_matches_himalaya_per_outer_fold(planted):
    X, Y = planted
    Y = Y[:, ::5]
    enc = VoxelEncoder(dtype="float64", cv=3, nested_cv=True).fit(X, Y)
    outer = make_folds(3, len(X))
    ref = []
    for tr, te in outer:
        hm = _himalaya(X[tr], Y[tr], make_folds(3, len(tr)))
        pred = X[te] @ np.asarray(hm.coef_) + np.asarray(hm.intercept_)
        ref.append([r2_score(Y[te, j], pred[:, j]) for j in range(Y.shape[1])])
    np.testing.assert_allclose(enc.nested_scores_, np.mean(ref, 0), atol=1e-6)
    assert np.all(enc.nested_scores_ <= enc.cv_scores_ + 0.05)


def test_detrend_and_confounds_apply_to_both(planted):
    X, Y = planted
    rng = np.random.default_rng(3)
    C = rng.standard_normal((len(X), 2))
    enc = VoxelEncoder(dtype="float64", detrend=True).fit(X, Y[:, :20],
                                                          confounds=C)
    D = np.column_stack([np.ones(len(X)), np.linspace(-1, 1, len(X)), C])
    proj = np.eye(len(X)) - D @ np.linalg.pinv(D)
    Xc, Yc = proj @ X, proj @ Y[:, :20]
    ref = VoxelEncoder(dtype="float64").fit(Xc, Yc)
    np.testing.assert_allclose(enc.alpha_, ref.alpha_)
    pred = _sk_predictions(Xc, Yc, enc.alpha_, sp_detrend(X, axis=0))
    assert _rel(enc.predict(X), pred).max() < 1e-4


def test_standardize_and_no_intercept(planted):
    X, Y = planted
    Xs = X * np.arange(1, X.shape[1] + 1) + 7
    enc = VoxelEncoder(dtype="float64", standardize=True).fit(Xs, Y[:, :30])
    sc = StandardScaler().fit(Xs)
    ref = _sk_predictions(sc.transform(Xs), Y[:, :30], enc.alpha_,
                          sc.transform(Xs[:25]))
    assert _rel(enc.predict(Xs[:25]), ref).max() < 1e-4
    enc = VoxelEncoder(dtype="float64", fit_intercept=False).fit(X, Y[:, :30])
    ref = np.column_stack([Ridge(alpha=a, fit_intercept=False).fit(X, Y[:, j])
                           .predict(X) for j, a in enumerate(enc.alpha_)])
    assert _rel(enc.predict(X), ref).max() < 1e-4


def test_score_is_mean_pearson(planted):
    # one run: Pearson r of the linearly detrended prediction and BOLD (scipy)
    X, Y = planted
    enc = VoxelEncoder().fit(X, Y)
    pred = sp_detrend(enc.predict(X), axis=0)
    Yd = sp_detrend(Y, axis=0)
    r = [np.corrcoef(Yd[:, j], pred[:, j])[0, 1] for j in range(Y.shape[1])]
    assert enc.score(X, Y) == pytest.approx(np.mean(r), abs=1e-5)
    np.testing.assert_allclose(enc.score_img(X, Y), r, atol=1e-5)


def test_nan_and_constant_voxels_are_excluded(planted):
    X, Y = planted
    Y = Y[:, :10].copy()
    Y[4, 2] = np.nan
    Y[:, 5] = 1.5
    with pytest.warns(UserWarning, match="excluded from the fit"):
        enc = VoxelEncoder().fit(X, Y)
    assert np.isnan(enc.alpha_[[2, 5]]).all() and np.isnan(enc.cv_scores_[2])
    assert np.all(enc.coef_[[2, 5]] == 0)
    pred = enc.predict(X)
    np.testing.assert_allclose(pred[:, 5], 1.5)
    assert np.isfinite(enc.alpha_[[0, 1, 3, 4]]).all()


def test_pipeline_clone_gridsearch(planted):
    X, Y = planted
    pipe = Pipeline([("scale", StandardScaler()), ("enc", VoxelEncoder(cv=3))])
    pipe.fit(X, Y[:, :20])
    assert pipe.predict(X).shape == (len(X), 20)
    enc = clone(VoxelEncoder(alphas=[1.0, 10.0], solver="dual"))
    assert enc.get_params()["solver"] == "dual" and not hasattr(enc, "alpha_")
    grid = {"alphas": [[1e-2], [1e4]]}
    gs = GridSearchCV(VoxelEncoder(cv=3), grid, cv=KFold(3)).fit(X, Y[:, :20])
    assert gs.best_estimator_.coef_.shape == (20, X.shape[1])
    for i, alphas in enumerate(grid["alphas"]):  # the score by hand (one run: detrended r)
        rs = []
        for tr, te in KFold(3).split(X):
            pred = sp_detrend(_sk_predictions(X[tr], Y[tr, :20], alphas * 20, X[te]), axis=0)
            yd = sp_detrend(Y[te, :20], axis=0)
            rs.append(np.mean([np.corrcoef(yd[:, j], pred[:, j])[0, 1]
                               for j in range(20)]))
        assert gs.cv_results_["mean_test_score"][i] == pytest.approx(
            np.mean(rs), abs=1e-4)


def test_explainable_variance_closed_form():
    rng = np.random.default_rng(0)
    n, v, reps = 4000, 4, 5
    snr_var = np.array([0.0, 0.25, 1.0, 4.0])  # signal var / noise var
    signal = rng.standard_normal((n, v)) * np.sqrt(snr_var)
    data = np.stack([signal + rng.standard_normal((n, v)) for _ in range(reps)])
    ev = explainable_variance(data)
    np.testing.assert_allclose(ev, snr_var / (1 + snr_var), atol=0.03)
    # the formula written out, without bias correction nor z-scoring
    raw = explainable_variance(data, bias_correction=False, zscore=False)
    num = np.var(data.mean(0), axis=0, ddof=1)
    den = np.mean([np.var(d, axis=0, ddof=1) for d in data], axis=0)
    np.testing.assert_allclose(raw, num / den)
    X = rng.standard_normal((n, 3))
    enc = VoxelEncoder(alphas=[1.0]).fit(X, data[0], repeats=list(data))
    np.testing.assert_allclose(enc.explainable_variance_, ev)
    with pytest.raises(ValueError, match="at least 2 repeats"):
        explainable_variance(data[:1])
    assert pearson_per_voxel(data[0], data[0])[1] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs, fit_kwargs, match",
    [
        ({}, {"y": np.ones((9, 3))}, "X has 10 scans.*y has 9"),
        ({"cv": 6}, {}, "too few for 6 contiguous folds"),
        ({"cv": 3}, {"groups": [0] * 5 + [1] * 5}, "cv=3 folds but only 2 runs"),
        ({}, {"groups": [0] * 9 + [1]}, "only 1 scan"),
        ({"high_pass": 0.01}, {}, "pass t_r"),
        ({"alphas": [1.0, -1.0]}, {}, "alphas must be positive"),
        ({"max_memory": "lots"}, {}, "is not a size"),
    ],
)
def test_clear_errors(kwargs, fit_kwargs, match):
    rng = np.random.default_rng(0)
    args = {"y": rng.standard_normal((10, 3)), **fit_kwargs}
    with pytest.raises(ValueError, match=match):
        VoxelEncoder(**kwargs).fit(rng.standard_normal((10, 2)), **args)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predictions_take_the_input_floating_dtype(planted, dtype):
    X, Y = planted[0][:, :5], planted[1][:, :4]
    enc = VoxelEncoder(dtype=dtype).fit(X, Y)
    assert enc.coef_.dtype == dtype  # the working precision
    p64 = enc.predict(X.astype(np.float64))
    p32 = enc.predict(X.astype(np.float32))
    assert p64.dtype == np.float64 and p32.dtype == np.float32
    assert enc.predict(np.rint(10 * X).astype(np.int64)).dtype == np.float64
    # the weights in the working precision; the product in the wider of theirs and the input's
    # (a float32 product depends on the rows' order at 1e-7: sklearn's sample-order check)
    ref = X.astype(np.float64) @ enc.coef_.astype(np.float64).T + enc.intercept_
    np.testing.assert_allclose(p64, ref, rtol=1e-12, atol=1e-12)
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_allclose(enc.predict(X.astype(np.float64)[order]), p64[order], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(p32, p64, rtol=1e-5, atol=1e-5)
