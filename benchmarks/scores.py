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

Cases (rows): null data (features independent of the BOLD) for the false
positive rates (uncorrected over voxels, FWE over datasets: the share of
datasets with any voxel significant after max-statistic correction), with
exact Clopper-Pearson 95% intervals; planted data for power; the time of one
pipeline-sized call.

Usage::

    python benchmarks/scores.py                 # all cases (~3-5 min on 2 busy cores)
    python benchmarks/scores.py --cases short   # one case
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


CASES = {
    "short": lambda: null_case("short runs", 3, 38, 4, 1000, 0.0, 8, 200),
    "ar1": lambda: [null_case(f"AR(1) {phi}", 4, 100, 8, 500, phi, 20, 200) for phi in (0.3, 0.6, 0.9)],
    "drift": lambda: [null_case("drifts", 4, 100, 8, 500, 0.3, 10, 200, fixed=False, drift=True,
                                cleaned=True),
                      null_case("short runs, shifted raw or cleaned", 3, 38, 4, 1000, 0.0, 8, 200,
                                fixed=False, cleaned=True)],
    "fwe": lambda: null_case("FWE over datasets", 3, 60, 4, 50, 0.5, 600, 100, fixed=False),
    "power": power_case,
    "time": timing_case,
}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    for case in parser.parse_args().cases:
        CASES[case]()
