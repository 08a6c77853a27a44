"""VoxelEncoder's exact per-voxel ridge against himalaya and scikit-learn.

In one run, at (n=1500, p=768, v=20000) and (n=3000, p=3072, v=50000), 15
alphas (logspace(-2, 5)), 5 contiguous folds:

* ``ours``: :func:`nilearn_vlm.encoding.ridge_cv_path` through
  ``VoxelEncoder(dtype="float32")`` (fit only: CV over alphas + refit);
* ``himalaya``: ``himalaya.ridge.RidgeCV`` (numpy backend, float32, the same
  folds, ``score_func=r2_score``);
* ``sklearn``: ``RidgeCV(alpha_per_target=True)`` (float64, leave-one-out
  GCV: not the same folds) at the small size only.

Each fit runs in its own subprocess (same thread count) so that the peak
resident memory (``getrusage`` max RSS, which sees BLAS buffers, unlike
tracemalloc) is per method; the data are generated in the child before the
clock starts and their RSS is reported apart. In the same run a child
measures the BLAS sgemm rate (square 2048 and the solver's own validation
shape); the FLOP floor is :func:`~nilearn_vlm.encoding.count_flops`'s total
divided by the best measured rate.

    /work/venv/bin/python benchmarks/encoder.py                 # both sizes
    /work/venv/bin/python benchmarks/encoder.py --sizes small --threads 2

The machine may be shared: read the ratios measured in the same run.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

SIZES = {"tiny": (300, 64, 1000), "small": (1500, 768, 20000),
         "large": (3000, 3072, 50000)}
ALPHAS = np.logspace(-2, 5, 15)
N_FOLDS = 5


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _data(n, p, v, seed=0):
    """Low-rank features and voxels with a signal of varying strength."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 64), dtype=np.float32)
    X = Z @ rng.standard_normal((64, p), dtype=np.float32) / 8
    X += rng.standard_normal((n, p), dtype=np.float32)
    Y = Z @ rng.standard_normal((64, v), dtype=np.float32)
    Y *= np.logspace(-2, 0, v, dtype=np.float32)
    for start in range(0, n, 100):  # no full-size temporary (peak RSS)
        Y[start:start + 100] += 3 * rng.standard_normal(
            (min(100, n - start), v), dtype=np.float32)
    return X, Y


def _folds(n):
    from nilearn_vlm.encoding import make_folds

    return make_folds(N_FOLDS, n)


def _sgemm_rate(n, p, seconds=1.0):
    """GFLOP/s of float32 matmul at the solver's validation shape."""
    nv, m = n // N_FOLDS, min(n - n // N_FOLDS, p)
    A, B = np.ones((nv, m), np.float32), np.ones((m, 4096), np.float32)
    A @ B
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        A @ B
        done += 1
    return 2.0 * nv * m * 4096 * done / (time.perf_counter() - t0) / 1e9


def child(method, size, out):
    n, p, v = SIZES[size]
    # imports first: "data" RSS is the interpreter, libraries, X and Y
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV as HRidgeCV
    from himalaya.scoring import r2_score
    from sklearn.linear_model import RidgeCV

    from nilearn_vlm import VoxelEncoder

    X, Y = _data(n, p, v)
    rss_data = _rss_mb()
    folds = _folds(n)

    rate_before = _sgemm_rate(n, p) if method != "gemm" else None
    t0 = time.perf_counter()
    if method == "ours":
        est = VoxelEncoder(alphas=ALPHAS, cv=folds, dtype="float32").fit(X, Y)
        alphas = est.alpha_
    elif method == "himalaya":
        set_backend("numpy", on_error="raise")
        est = HRidgeCV(alphas=ALPHAS, cv=folds, fit_intercept=True,
                      solver_params=dict(score_func=r2_score, warn=False))
        est.fit(X, Y)
        alphas = np.asarray(est.best_alphas_)
    elif method == "sklearn":
        est = RidgeCV(alphas=ALPHAS, alpha_per_target=True)
        est.fit(X.astype(np.float64), Y.astype(np.float64))
        alphas = np.asarray(est.alpha_)
    elif method == "gemm":
        from threadpoolctl import threadpool_info

        rates = {}
        a = np.ones((2048, 2048), np.float32)
        nv, m = n // N_FOLDS, min(n - n // N_FOLDS, p)
        shapes = {"square2048": (a, a),
                  "validation": (np.ones((nv, m), np.float32),
                                 np.ones((m, 4096), np.float32))}
        for name, (A, B) in shapes.items():
            A @ B
            best = np.inf
            for _ in range(5):
                t = time.perf_counter()
                A @ B
                best = min(best, time.perf_counter() - t)
            rates[name] = 2.0 * A.shape[0] * A.shape[1] * B.shape[1] / best / 1e9
        info = threadpool_info()
        json.dump({"gflops": rates, "blas": [
            {k: d.get(k) for k in ("internal_api", "num_threads", "architecture",
                                   "version")} for d in info]}, open(out, "w"))
        return
    seconds = time.perf_counter() - t0
    peak = _rss_mb()
    rate = (rate_before + _sgemm_rate(n, p)) / 2
    np.save(out + ".alphas.npy", np.asarray(alphas, np.float64))
    json.dump({"seconds": seconds, "peak_rss_mb": peak, "gflops_around": rate,
               "data_rss_mb": rss_data}, open(out, "w"))


def run_child(method, size, threads, tmp):
    out = os.path.join(tmp, f"{method}-{size}.json")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, __file__, "--child", method, size, out],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    res = json.load(open(out))
    if os.path.exists(out + ".alphas.npy"):
        res["alphas"] = np.load(out + ".alphas.npy")
    return res


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,large")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", default="ours,himalaya,sklearn",
                        help="sklearn runs at the small size only")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    import tempfile

    from nilearn_vlm.encoding import count_flops

    print(f"threads={args.threads} OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')} "
          f"load={os.getloadavg()[0]:.1f} cpus={os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            n, p, v = SIZES[size]
            gemm = run_child("gemm", size, args.threads, tmp)
            rate = max(gemm["gflops"].values())
            flops = count_flops(n, p, v, len(ALPHAS), _folds(n))
            floor = flops["total"] / (rate * 1e9)
            print(f"\n== {size}: n={n} p={p} v={v}, {len(ALPHAS)} alphas, "
                  f"{N_FOLDS} folds")
            print(f"BLAS sgemm GFLOP/s: " + ", ".join(
                f"{k} {r:.0f}" for k, r in gemm["gflops"].items())
                + f" ({gemm['blas'][0]['architecture']})")
            print("FLOPs (G): " + ", ".join(f"{k} {x / 1e9:.0f}"
                                            for k, x in flops.items())
                  + f"; floor at {rate:.0f} GFLOP/s: {floor:.1f} s")
            print("time; x floor (at the rate above); x floor' (at the sgemm rate "
                  "measured in the child around its fit, which follows the load)")
            methods = [m for m in args.methods.split(",")
                       if m != "sklearn" or size in ("tiny", "small")]
            ours = {}
            for m in methods:
                r = run_child(m, size, args.threads, tmp)
                if "error" in r:
                    print(f"{m:9s} FAILED: {r['error']}", flush=True)
                    continue
                floor_c = flops["total"] / (r["gflops_around"] * 1e9)
                r["norm"] = r["seconds"] / floor_c
                line = (f"{m:9s} {r['seconds']:7.1f} s  {r['seconds'] / floor:5.2f}x "
                        f"floor  {r['norm']:5.2f}x floor' "
                        f"({r['gflops_around']:.0f} GFLOP/s)  peak RSS "
                        f"{r['peak_rss_mb'] / 1024:5.2f} GB (data "
                        f"{r['data_rss_mb'] / 1024:4.2f} GB)")
                if m == "ours":
                    ours = r
                elif ours:
                    same = np.isclose(r["alphas"], ours["alphas"], rtol=1e-4).mean()
                    line += (f"\n          ours: {r['seconds'] / ours['seconds']:4.2f}x "
                             f"faster ({r['norm'] / ours['norm']:4.2f}x load-adjusted),"
                             f" {r['peak_rss_mb'] / ours['peak_rss_mb']:4.2f}x less "
                             f"peak memory; same alpha for {100 * same:5.1f}% voxels")
                print(line, flush=True)


if __name__ == "__main__":
    main()
