"""Calibration and power of the nulls of out-of-fold encoding scores.

The score is the nested out-of-fold r (each run predicted by the encoder fitted
on the other runs, alphas chosen inside them, r within runs, mean over runs).
Two nulls of it:

* ``fixed``: :func:`nilearn_vlm.stats.permutation_null` (``method="shift"``) on
  the out-of-fold predictions: each run's prediction is held fixed and shifted
  against its BOLD. It ignores that a run's prediction depends on the other
  runs' BOLD (through the fitted model), so it is anti-conservative.
* ``crossfit``: :func:`nilearn_vlm.encoding.out_of_fold_null`: each run's BOLD
  shifted once and used in every fold, the out-of-fold predictions recomputed
  per draw (``cleaned``: the same, shifting the BOLD cleaned as the encoder
  cleans it, ``shifted="cleaned"``).

Cases (rows): semi-synthetic data (``semisynthetic``: real resting-state noise
from ``neuropycon-data`` and ``brainfc`` cut into 4 runs, each run with its own
baseline offset and linear drift, planted responses in a known 5% of voxels;
the median score and the null's false-positive rate of the non-responsive
voxels, the planted voxels' scores against their within-run r by hand); null
data (features independent of the BOLD) for the false positive rates (uncorrected over voxels, FWE over datasets: the share of
datasets with any voxel significant after max-statistic correction), with
exact Clopper-Pearson 95% intervals; planted data for power; the time of one
pipeline-sized call; the block null of fixed regressors with its automatic
block length (``block``).

Usage::

    python benchmarks/scores.py                 # all cases (~3-5 min on 2 busy cores)
    python benchmarks/scores.py --cases short   # one case
    python benchmarks/scores.py --cases semisynthetic   # needs nilearn-vlm[test] (~2 min)
    python benchmarks/scores.py --cases block   # the block null's automatic block length (~5 min)
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy.signal import lfilter
from scipy.stats import binomtest
from sklearn.base import clone

from nilearn_vlm import VoxelEncoder
from nilearn_vlm.encoding import out_of_fold_null
from nilearn_vlm.stats import permutation_null


def hrf_features(rng, n_runs, n, p):
    t = np.arange(16) * 2.0
    h = t**5 * np.exp(-t) / 120 - t**15 * np.exp(-t) / (6 * 1.3e12)  # SPM-like, TR 2 s
    X = np.vstack([lfilter(h, [1], rng.standard_normal((n + 20, p)), axis=0)[20:]
                   for _ in range(n_runs)])
    return X / X.std(0)


def ar1(rng, shape, phi):
    e = rng.standard_normal((shape[0] + 50, shape[1]))
    return lfilter([1.0], [1.0, -phi], e, axis=0)[50:] * np.sqrt(1 - phi**2)


def oof_predictions(enc, X, Y, runs):
    pred = np.zeros_like(Y)
    for k in np.unique(runs):
        tr = runs != k
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred[~tr] = clone(enc).fit(X[tr], Y[tr], groups=runs[tr]).predict(X[~tr])
    return pred


def rate(k, n):
    ci = binomtest(int(k), int(n)).proportion_ci(method="exact")
    return f"{k / n:.4f} [{ci.low:.4f}, {ci.high:.4f}] ({int(k)}/{int(n)})"


def null_case(name, n_runs, n, p, v, phi, datasets, n_perm, fixed=True, drift=False, cleaned=False):
    # voxels significant, voxels, datasets with any FWE
    fp = {"crossfit": [0, 0, 0], "cleaned": [0, 0, 0], "fixed": [0, 0, 0]}
    t0 = time.time()
    for seed in range(datasets):
        rng = np.random.default_rng(seed)
        runs = np.repeat(np.arange(n_runs), n)
        X = hrf_features(rng, n_runs, n, p)
        Y = ar1(rng, (n_runs * n, v), phi) if phi else rng.standard_normal((n_runs * n, v))
        Y += rng.standard_normal(n_runs)[runs][:, None]  # run baselines
        if drift:  # a linear drift (2 sd over a run) and a random walk per voxel
            Y += np.tile(np.linspace(-1, 1, n), n_runs)[:, None] * 2 * rng.standard_normal((1, v))
            Y += np.cumsum(rng.standard_normal((n_runs * n, v)), 0) * 0.1
        enc = VoxelEncoder(high_pass=0.01, t_r=2.0)
        res = out_of_fold_null(enc, X, Y, runs, n_permutations=n_perm, random_state=seed)
        out = [("crossfit", res)]
        if cleaned:
            out.append(("cleaned", out_of_fold_null(enc, X, Y, runs, n_permutations=n_perm,
                                                    random_state=seed, shifted="cleaned")))
        if fixed:
            pred = oof_predictions(enc, X, Y, runs)
            out.append(("fixed", permutation_null(pred, Y, runs=runs, n_permutations=n_perm,
                                                  high_pass=0.01, t_r=2.0, random_state=seed)))
        for key, r in out:
            fp[key][0] += int((r.pvalues <= 0.05).sum())
            fp[key][1] += v
            fp[key][2] += int((r.pvalues_fwe <= 0.05).any())
    print(f"\n{name}: {n_runs} runs x {n} scans, {p} HRF features, BOLD "
          f"{'AR(1) phi ' + str(phi) if phi else 'white'}{' + drifts' if drift else ''}, "
          f"{datasets} datasets x {v} voxels, "
          f"{n_perm} shifts ({time.time() - t0:.0f} s)")
    for key, (k, nv, kf) in fp.items():
        if nv:
            print(f"  {key:9s} FPR {rate(k, nv)}   FWE {rate(kf, datasets)}")


def power_case(n_runs=4, n=150, p=16, v=400, planted=100, snr=0.1, datasets=3, n_perm=200):
    found = found_fwe = total = false = 0
    t0 = time.time()
    for seed in range(datasets):
        rng = np.random.default_rng(100 + seed)
        runs = np.repeat(np.arange(n_runs), n)
        X = hrf_features(rng, n_runs, n, p)
        Y = ar1(rng, (n_runs * n, v), 0.3)
        signal = X @ rng.standard_normal((p, planted))
        Y[:, :planted] += signal / signal.std(0) * np.sqrt(snr)
        res = out_of_fold_null(VoxelEncoder(high_pass=0.01, t_r=2.0), X, Y, runs,
                               n_permutations=n_perm, random_state=seed)
        found += int((res.pvalues[:planted] <= 0.05).sum())
        found_fwe += int((res.pvalues_fwe[:planted] <= 0.05).sum())
        false += int((res.pvalues[planted:] <= 0.05).sum())
        total += planted
    print(f"\npower: {n_runs} runs x {n} scans, {p} features, variance SNR {snr}, AR(1) 0.3, "
          f"{datasets} datasets x {planted} planted of {v} voxels ({time.time() - t0:.0f} s)")
    print(f"  planted p <= 0.05 {rate(found, total)}   FWE {rate(found_fwe, total)}   "
          f"null voxels FPR {rate(false, datasets * (v - planted))}")


def semisynthetic_data(Y0, t_r, seed, n_runs=4, p=4, share=0.05, snr=0.25):
    """Rest noise cut into runs, each with its own offset and drift (1-5% of the voxel mean),
    plus HRF-convolved random regressors (nilearn's Glover HRF) planted in ``share`` of the voxels
    at variance SNR ``snr`` against each voxel's run-centred noise (as in
    ``nilearn_vlm/encoding/tests/test_semisynthetic.py``)."""
    from nilearn.glm.first_level import glover_hrf

    rng = np.random.default_rng(seed)
    n = Y0.shape[0] // n_runs
    Y0 = Y0[: n * n_runs]
    runs = np.repeat(np.arange(n_runs), n)
    h = glover_hrf(t_r, oversampling=1, time_length=32.0)
    X = np.vstack([lfilter(h, [1.0], rng.standard_normal((n + 20, p)), axis=0)[20:]
                   for _ in range(n_runs)])
    mean, Y = Y0.mean(0), Y0.copy()
    ramp = np.linspace(-0.5, 0.5, n)[:, None]
    for k in range(n_runs):
        offset = rng.uniform(0.01, 0.05) * rng.choice([-1.0, 1.0])
        drift = rng.uniform(0.01, 0.05) * rng.choice([-1.0, 1.0])
        Y[runs == k] += mean * (offset + drift * ramp)
    resp = np.sort(rng.choice(Y.shape[1], max(1, int(share * Y.shape[1])), replace=False))
    noise = np.vstack([Y0[runs == k][:, resp] - Y0[runs == k][:, resp].mean(0) for k in range(n_runs)])
    signal = X @ rng.standard_normal((p, resp.size))
    Y[:, resp] += signal / signal.std(0) * noise.std(0) * np.sqrt(snr)
    return X, Y, runs, resp


def hand_r(enc, X, Y, runs, cols, t_r, high_pass):
    """Within-run r by hand (constant, linear trend and nilearn's cosine drifts removed by least
    squares, scipy's pearsonr) of each held-out run's prediction by the encoder fitted on the others."""
    from nilearn.glm.first_level import make_first_level_design_matrix
    from scipy.stats import pearsonr

    r = []
    for k in np.unique(runs):
        test = runs == k
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            fold = clone(enc).fit(X[~test], Y[~test], groups=runs[~test])
        ft = np.arange(test.sum()) * t_r
        D = np.column_stack([make_first_level_design_matrix(ft, drift_model="cosine",
                                                            high_pass=high_pass).to_numpy(), ft])
        a, b = (A - D @ np.linalg.lstsq(D, A, rcond=None)[0]
                for A in (fold.predict(X[test])[:, cols].astype(np.float64), Y[test][:, cols]))
        r.append(pearsonr(a, b, axis=0).statistic)
    return np.mean(r, axis=0)


def semisynthetic_case(name, datasets, n_runs=4, n_perm=200, high_pass=0.01):
    from nilearn_vlm.testing import rest_noise

    try:
        Y0, t_r = rest_noise(name)
    except ImportError as err:
        print(f"\nsemi-synthetic ({name}): skipped ({err})")
        return
    t0 = time.time()
    enc = VoxelEncoder(detrend=True, high_pass=high_pass, t_r=t_r)
    scores, meds, rates, pooled, worst = [], [], [], [], 0.0
    false = total = found = planted = 0
    for seed in range(datasets):
        X, Y, runs, resp = semisynthetic_data(Y0, t_r, seed, n_runs=n_runs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            res = out_of_fold_null(enc, X, Y, runs, n_permutations=n_perm, random_state=seed)
        null = np.ones(Y.shape[1], dtype=bool)
        null[resp] = False
        scores.append(res.statistic[null])
        # the contrast: the same out-of-fold predictions scored with r pooled over all scans (runs
        # ignored, as before scores respected runs): the runs' offsets against the training mean
        pred = oof_predictions(enc, X, Y, runs)[:, null].astype(np.float64)
        pc, yc = pred - pred.mean(0), Y[:, null] - Y[:, null].mean(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            pooled.append((pc * yc).sum(0) / np.sqrt((pc**2).sum(0) * (yc**2).sum(0)))
        meds.append(np.median(res.statistic[null]))
        k = int((res.pvalues[null] <= 0.05).sum())
        rates.append(k / null.sum())
        false, total = false + k, total + int(null.sum())
        found, planted = found + int((res.pvalues[resp] <= 0.05).sum()), planted + resp.size
        worst = max(worst, float(np.abs(res.statistic[resp] - hand_r(enc, X, Y, runs, resp, t_r,
                                                                      high_pass)).max()))
    s = np.concatenate(scores)
    print(f"\nsemi-synthetic ({name}): {n_runs} runs x {Y0.shape[0] // n_runs} scans of real rest noise, "
          f"{Y0.shape[1]} voxels, per-run offsets and drifts 1-5% of the mean, 5% planted at "
          f"variance SNR 0.25, {datasets} datasets, {n_perm} shifts ({time.time() - t0:.0f} s)")
    print(f"  non-responsive score: median {np.median(s):.4f} (mean {s.mean():.4f}; per dataset "
          f"{min(meds):.4f} to {max(meds):.4f})")
    print(f"  contrast, the same predictions scored with r pooled over runs: median "
          f"{np.nanmedian(np.concatenate(pooled)):.4f}")
    print(f"  non-responsive FPR {rate(false, total)} (per dataset {min(rates):.3f} to {max(rates):.3f}: "
          "voxels share the noise's spatial correlation, so the interval is optimistic)")
    print(f"  planted p <= 0.05 {rate(found, planted)}   max |score - hand r| {worst:.2e}")


def timing_case(n_runs=4, n=300, p=64, v=5000, n_perm=200):
    rng = np.random.default_rng(0)
    runs = np.repeat(np.arange(n_runs), n)
    X = hrf_features(rng, n_runs, n, p).astype(np.float32)
    Y = rng.standard_normal((n_runs * n, v)).astype(np.float32)
    enc = VoxelEncoder(high_pass=0.01, t_r=2.0)
    t0 = time.time()
    out_of_fold_null(enc, X, Y, runs, n_permutations=n_perm, random_state=0)
    t1 = time.time() - t0
    t0 = time.time()
    pred = oof_predictions(enc, X, Y, runs)
    permutation_null(pred, Y, runs=runs, n_permutations=n_perm, high_pass=0.01, t_r=2.0)
    t2 = time.time() - t0
    print(f"\ntime: {n_runs} runs x {n} scans, {p} features, {v} voxels, {n_perm} shifts: "
          f"crossfit {t1:.1f} s, fixed (fold fits + permutation_null) {t2:.1f} s")


def block_case(t_r=1.0, n_runs=4, n=300, v=2000, n_perm=500, datasets=5):
    """``permutation_null(method="block")`` with the automatic block length on HRF-smooth regressors.

    Issue criterion: on 4 x 300-scan runs of HRF-smooth regressors against AR(1) BOLD at phi 0.3-0.9, the
    false-positive rate's 95% upper bound is at most 0.07. Fixed predictions (no fit): the block null is the
    null of a given regressor, not of cross-fitted scores (see ``crossfit``). The draws are shared by the
    voxels of one call, so their p-values are not independent: the rate is pooled over ``datasets``
    calls with their own data and draws, and the spread over calls is printed beside it.
    """
    from nilearn.glm.first_level import glover_hrf

    rng = np.random.default_rng(0)
    runs = np.repeat(np.arange(n_runs), n)
    h = glover_hrf(t_r, oversampling=1, time_length=32.0)
    print(f"\nblock null, automatic block length: {n_runs} runs x {n} scans, TR {t_r} s, HRF-smooth "
          f"regressors, AR(1) BOLD, {v} voxels, {n_perm} draws")
    for phi in (0.3, 0.6, 0.9):
        t0 = time.time()
        counts, lengths = [], set()
        for d in range(datasets):
            x = np.vstack([lfilter(h, [1.0], rng.standard_normal((n + 40, v)), axis=0)[40:]
                           for _ in range(n_runs)])
            y = np.vstack([ar1(rng, (n, v), phi) for _ in range(n_runs)])
            res = permutation_null(x, y, method="block", runs=runs, n_permutations=n_perm, random_state=d)
            counts.append(int((res.pvalues <= 0.05).sum()))
            lengths |= set(np.atleast_1d(res.block_length).tolist())
        k, total = sum(counts), v * datasets
        ci = binomtest(k, total).proportion_ci(method="exact")
        verdict = "ok" if ci.high <= 0.07 else "ABOVE 0.07"
        print(f"  phi {phi}: block length {sorted(lengths)}  FPR {rate(k, total)}  upper bound {ci.high:.4f} "
              f"{verdict}; per call {min(counts) / v:.3f}-{max(counts) / v:.3f}  ({time.time() - t0:.0f} s)")


CASES = {
    "semisynthetic": lambda: [semisynthetic_case("neuropycon", 20), semisynthetic_case("brainfc", 60)],
    "short": lambda: null_case("short runs", 3, 38, 4, 1000, 0.0, 8, 200),
    "ar1": lambda: [null_case(f"AR(1) {phi}", 4, 100, 8, 500, phi, 20, 200) for phi in (0.3, 0.6, 0.9)],
    "drift": lambda: [null_case("drifts", 4, 100, 8, 500, 0.3, 10, 200, fixed=False, drift=True,
                                cleaned=True),
                      null_case("short runs, shifted raw or cleaned", 3, 38, 4, 1000, 0.0, 8, 200,
                                fixed=False, cleaned=True)],
    "fwe": lambda: null_case("FWE over datasets", 3, 60, 4, 50, 0.5, 600, 100, fixed=False),
    "power": power_case,
    "time": timing_case,
    "block": lambda: [block_case(t_r) for t_r in (1.0, 2.0)],
}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    for case in parser.parse_args().cases:
        CASES[case]()
