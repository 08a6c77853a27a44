"""Out-of-fold scores and their shift null on semi-synthetic multi-run data.

Real resting-state noise (``neuropycon-data``, the ``test`` extra: 11,953
grey-matter voxels x 88 scans, TR 2.5 s) is cut into 4 runs of 22 scans, and
each run gets its own baseline offset (1-5% of each voxel's mean signal, random
sign) and its own linear drift (1-5% of the mean over the run): raw BOLD as
scanners write it. Four random regressors convolved with nilearn's Glover HRF
drive a known 5% of the voxels linearly, at a variance SNR of 0.25 relative to
each voxel's real (run-centred) noise; the other voxels get nothing.

The score is what the pipeline reports, the statistic of
:func:`nilearn_vlm.encoding.out_of_fold_null` (the mean over held-out runs of
the within-run r of nested out-of-fold predictions). Checked, pooled over
``SEEDS`` draws of the features, offsets, drifts and planted voxels: the median
score of the non-responsive voxels lies in [-0.02, 0.02]; their shift-null
false-positive rate at 0.05 has a 95% Clopper-Pearson upper bound <= 0.07
(the calibrated-maps issue's bound); the planted voxels are found; and the
planted voxels' scores are within 0.02 of the within-run r computed here by
hand (numpy, scipy and nilearn's drift regressors) from the same out-of-fold
predictions.

Measured here (4 draws, 45,424 non-responsive voxel scores): median 0.012
(mean -0.0003: out-of-fold r averaged over runs is skewed left, each run's r
being symmetric about 0), false-positive rate 0.0498 [0.0478, 0.0518] (the
interval treats voxels as independent; they share the noise's spatial
correlation), planted voxels found 0.74, max |score - hand r| 2e-7 (float32
cross-correlations). ``benchmarks/scores.py --cases semisynthetic`` runs 20
draws (median 0.010, per draw -0.002 to 0.023; FPR 0.049, per draw 0.042 to
0.059) and ``brainfc`` noise as well.
"""

import warnings

import numpy as np
import pytest
from scipy.signal import lfilter
from scipy.stats import binomtest, pearsonr
from sklearn.base import clone

from nilearn_vlm import VoxelEncoder
from nilearn_vlm.encoding import out_of_fold_null

N_RUNS = 4
SEEDS = (0, 1, 2, 3)
HIGH_PASS = 0.01
N_PERMUTATIONS = 200


@pytest.fixture(autouse=True)
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _semisynthetic(Y0, t_r, seed, n_runs=N_RUNS, n_features=4, share=0.05, snr=0.25):
    """Real rest noise cut into runs with their own offsets and drifts, plus planted responses."""
    from nilearn.glm.first_level import glover_hrf

    rng = np.random.default_rng(seed)
    n = Y0.shape[0] // n_runs
    Y0 = Y0[: n * n_runs]
    runs = np.repeat(np.arange(n_runs), n)
    h = glover_hrf(t_r, oversampling=1, time_length=32.0)
    # random regressors convolved with the HRF, each run on its own (20 scans of burn-in)
    X = np.vstack([lfilter(h, [1.0], rng.standard_normal((n + 20, n_features)), axis=0)[20:]
                   for _ in range(n_runs)])
    mean = Y0.mean(0)
    Y = Y0.copy()
    ramp = np.linspace(-0.5, 0.5, n)[:, None]
    for k in range(n_runs):
        offset = rng.uniform(0.01, 0.05) * rng.choice([-1.0, 1.0])
        drift = rng.uniform(0.01, 0.05) * rng.choice([-1.0, 1.0])
        Y[runs == k] += mean * (offset + drift * ramp)
    responsive = np.sort(rng.choice(Y.shape[1], int(share * Y.shape[1]), replace=False))
    noise = np.vstack([Y0[runs == k][:, responsive] - Y0[runs == k][:, responsive].mean(0)
                       for k in range(n_runs)])
    signal = X @ rng.standard_normal((n_features, responsive.size))
    Y[:, responsive] += signal / signal.std(0) * noise.std(0) * np.sqrt(snr)
    return X, Y, runs, responsive


def _encoder(t_r):
    return VoxelEncoder(detrend=True, high_pass=HIGH_PASS, t_r=t_r)


@pytest.fixture(scope="module")
def semisynthetic():
    pytest.importorskip("neuropycon_data",
                        reason="real rest noise needs neuropycon-data (pip install nilearn-vlm[test])")
    from nilearn_vlm.testing import rest_noise

    Y0, t_r = rest_noise("neuropycon")
    out = []
    for seed in SEEDS:
        X, Y, runs, responsive = _semisynthetic(Y0, t_r, seed)
        with warnings.catch_warnings():  # every voxel is scored (asserted below)
            warnings.simplefilter("error", UserWarning)
            res = out_of_fold_null(_encoder(t_r), X, Y, runs, n_permutations=N_PERMUTATIONS,
                                   random_state=seed)
        out.append((X, Y, runs, responsive, res))
    return out, t_r


def test_non_responsive_scores_are_centred_and_their_null_calibrated(semisynthetic):
    data, _ = semisynthetic
    scores, pvals, found, planted = [], [], 0, 0
    for X, Y, runs, responsive, res in data:
        null = np.ones(Y.shape[1], dtype=bool)
        null[responsive] = False
        assert np.isfinite(res.statistic).all()
        scores.append(res.statistic[null])
        pvals.append(res.pvalues[null])
        found += int((res.pvalues[responsive] <= 0.05).sum())
        planted += responsive.size
    scores, pvals = np.concatenate(scores), np.concatenate(pvals)
    # the offsets and drifts (as large as the noise) set no score: centred at 0
    assert -0.02 <= np.median(scores) <= 0.02, np.median(scores)
    false = int((pvals <= 0.05).sum())
    ci = binomtest(false, pvals.size).proportion_ci(confidence_level=0.95, method="exact")
    assert ci.high <= 0.07, (false / pvals.size, ci)
    # and the null is not conservative to the point of finding nothing: the planted voxels
    # (variance SNR 0.25, 88 scans) are found (measured: about 3 in 4)
    assert found / planted >= 0.5, found / planted


def _hand_within_run_r(pred, Y, frame_times, high_pass):
    """Per-run Pearson r after removing a constant, a linear trend and nilearn's cosine drifts."""
    from nilearn.glm.first_level import make_first_level_design_matrix

    drifts = make_first_level_design_matrix(frame_times, drift_model="cosine",
                                            high_pass=high_pass).to_numpy()  # cosines + constant
    D = np.column_stack([drifts, frame_times])
    resid = [A - D @ np.linalg.lstsq(D, A, rcond=None)[0] for A in (pred, Y)]
    return pearsonr(resid[0], resid[1], axis=0).statistic


def test_responsive_scores_equal_the_within_run_r_by_hand(semisynthetic):
    data, t_r = semisynthetic
    worst = 0.0
    for X, Y, runs, responsive, res in data:
        # the out-of-fold predictions: for each held-out run, the encoder fitted on the other runs
        # (groups: leave-one-run-out inside them, so each voxel's alpha is chosen without the
        # held-out run), predicting the held-out run from its features. These are the models the
        # score is made of: their alphas are the ones out_of_fold_null reports.
        hand = np.zeros((N_RUNS, responsive.size))
        tied = np.zeros((N_RUNS, responsive.size), bool)
        for k in range(N_RUNS):
            test = runs == k
            with warnings.catch_warnings():  # a voxel flat in the training runs is excluded
                warnings.simplefilter("ignore", UserWarning)
                enc = clone(_encoder(t_r)).fit(X[~test], Y[~test], groups=runs[~test])
            # the same models: the same alpha for every voxel but a float-rounding tie or two
            # (two alphas with equal CV scores, which the BLAS thread count can flip); those voxels
            # are left out of the comparison below
            same = (enc.alpha_ == res.alphas[k]) | (np.isnan(enc.alpha_) & np.isnan(res.alphas[k]))
            assert same.mean() >= 0.999, same.mean()
            tied[k] = ~same[responsive]
            pred = enc.predict(X[test])[:, responsive].astype(np.float64)
            frame_times = np.arange(test.sum()) * t_r
            hand[k] = _hand_within_run_r(pred, Y[test][:, responsive], frame_times, HIGH_PASS)
        keep = ~tied.any(0)
        assert keep.mean() >= 0.99, keep.mean()
        diff = np.abs(res.statistic[responsive][keep] - hand.mean(0)[keep])
        assert diff.max() <= 0.02, diff.max()  # the criterion
        assert diff.max() <= 1e-4, diff.max()  # what float32 cross-correlations allow (2e-7)
        worst = max(worst, diff.max())
        # the planted voxels are predicted (scores well above the non-responsive ones' 0)
        assert np.median(hand.mean(0)) > 0.2
    assert worst <= 0.02
