"""Dask engine: 1 vs 2 workers here, per-chunk costs, and a cluster estimate.

In one run, on one synthetic subject (``--scans`` x ``--voxels`` BOLD,
``--features`` encoder features, ``--units`` unit time series):

* ``encoder``: ``VoxelEncoder`` fit (15 alphas, 5 contiguous folds);
* ``maps``: ``unit_voxel_maps`` (FDR);
* ``null``: ``permutation_null`` (circular shifts, ``--perms`` nulls);
* ``subjects``: ``run_subjects`` of the encoder fit over 4 subjects;

each timed (median of ``--repeats``) locally with one job, then inside
``use_dask`` on a ``LocalCluster`` of 1 and of 2 worker processes (one
thread each; one untimed warm-up call first, which imports the library in
the workers). Results are checked equal to the local ones.

Per-chunk costs are measured in the same run (one job, one BLAS thread): a
ridge task's seconds per FLOP (:func:`~nilearn_vlm.encoding.count_flops`),
the maps' seconds per unit x voxel x scan, the shift null's seconds per voxel
x permutation and per voxel x scan; they give core-hours for 100 subjects x
91,282 grayordinates and wall time on a cluster of ``--cores`` cores.

    /work/venv/bin/python benchmarks/dask_scaling.py            # ~2-4 min
    /work/venv/bin/python benchmarks/dask_scaling.py --voxels 4096 --repeats 1

The machine may be shared: compare numbers of the same run only.
"""

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

ALPHAS = np.logspace(-2, 5, 15)


def _data(n, p, v, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 32), dtype=np.float32)
    X = Z @ rng.standard_normal((32, p), dtype=np.float32) / 6
    X += rng.standard_normal((n, p), dtype=np.float32)
    Y = Z @ rng.standard_normal((32, v), dtype=np.float32) * 0.3
    Y += rng.standard_normal((n, v), dtype=np.float32)
    return X, Y


def fit_subject(seed, n, p, v):
    """One subject's encoder fit (module level: shipped to the workers)."""
    from nilearn_vlm import VoxelEncoder

    X, Y = _data(n, p, v, seed)
    return VoxelEncoder(alphas=ALPHAS, cv=5, n_threads=1).fit(X, Y).alpha_


def _median_time(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def _workloads(args, X, Y, U):
    from nilearn_vlm import VoxelEncoder
    from nilearn_vlm.maps import unit_voxel_maps
    from nilearn_vlm.parallel import run_subjects
    from nilearn_vlm.stats import permutation_null

    return {
        "encoder": lambda: VoxelEncoder(alphas=ALPHAS, cv=5, n_threads=1,
                                        max_memory=args.max_memory)
        .fit(X, Y).coef_,
        "maps": lambda: unit_voxel_maps(U, Y, top_k=5,
                                        voxel_chunk=1024).top_values,
        "null": lambda: permutation_null(U[:, 0], Y, n_permutations=args.perms,
                                         random_state=0).null_max,
        "subjects": lambda: np.stack(run_subjects(
            fit_subject, range(4), n=args.scans, p=args.features,
            v=args.voxels // 4)),
    }


def per_chunk_costs(args, X, Y, U):
    """Seconds per unit of work, one job, one BLAS thread."""
    from nilearn_vlm.encoding import make_folds
    from nilearn_vlm.encoding._solver import count_flops, ridge_cv_path
    from nilearn_vlm.maps import unit_voxel_maps
    from nilearn_vlm.stats import permutation_null

    n, p = X.shape
    v = min(Y.shape[1], 2048)
    folds = make_folds(5, n)
    t, _ = _median_time(lambda: ridge_cv_path(X, Y[:, :v], ALPHAS, folds,
                                              n_jobs=1), args.repeats)
    ridge = t / count_flops(n, p, v, len(ALPHAS), folds)["total"]
    t, _ = _median_time(lambda: unit_voxel_maps(U, Y[:, :v], top_k=5, n_jobs=1),
                        args.repeats)
    maps = t / (U.shape[1] * v * n)
    t_lo, _ = _median_time(lambda: permutation_null(
        U[:, 0], Y[:, :v], n_permutations=10, random_state=0, n_jobs=1),
        args.repeats)
    t_hi, _ = _median_time(lambda: permutation_null(
        U[:, 0], Y[:, :v], n_permutations=args.perms, random_state=0,
        n_jobs=1), args.repeats)
    per_perm = max(t_hi - t_lo, 0) / ((args.perms - 10) * v)
    per_scan = max(t_lo - 10 * per_perm * v, 0) / (v * n)
    return dict(ridge_s_per_flop=ridge, maps_s_per_uvn=maps,
                null_s_per_voxel_perm=per_perm, null_s_per_voxel_scan=per_scan)


def estimate(costs, cores, efficiency, n_subjects=100, v=91282, n=3000,
             p=768, units=61440, perms=1000, n_runs=4):
    """Core-hours and cluster wall time for a study, from per-chunk costs."""
    from nilearn_vlm.encoding._solver import count_flops

    bounds = np.linspace(0, n, n_runs + 1).astype(int)
    idx = np.arange(n)
    folds = [(np.r_[idx[:a], idx[b:]], idx[a:b])
             for a, b in zip(bounds[:-1], bounds[1:])]
    enc = costs["ridge_s_per_flop"] * count_flops(n, p, v, len(ALPHAS),
                                                  folds)["total"]
    maps = costs["maps_s_per_uvn"] * units * v * n
    null = v * (costs["null_s_per_voxel_perm"] * perms
                + costs["null_s_per_voxel_scan"] * n)
    per_subject = dict(encoder=enc, maps=maps, null=null)
    total_h = n_subjects * sum(per_subject.values()) / 3600
    wall_h = total_h / (cores * efficiency)
    return per_subject, total_h, wall_h


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scans", type=int, default=600)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--voxels", type=int, default=8192)
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--perms", type=int, default=200)
    parser.add_argument("--max-memory", default="18MB")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=320,
                        help="cluster cores for the estimate (e.g. 10 nodes x 32)")
    parser.add_argument("--efficiency", type=float, default=0.8,
                        help="parallel efficiency assumed on the cluster")
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()

    import distributed

    from nilearn_vlm.parallel import use_dask

    X, Y = _data(args.scans, args.features, args.voxels)
    U = _data(args.scans, args.units, 1, seed=1)[0]
    work = _workloads(args, X, Y, U)
    names = args.only or list(work)
    rows = {}
    with threadpool_limits(1):
        for name in names:
            rows[name] = {"local": _median_time(work[name], args.repeats)}
        costs = per_chunk_costs(args, X, Y, U)
    for n_workers in (1, 2):
        with distributed.LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=True,
                dashboard_address=None, host="127.0.0.1") as cluster, \
                use_dask(cluster):
            for name in names:
                work[name]()  # warm-up: imports in the workers
                rows[name][n_workers] = _median_time(work[name], args.repeats)

    print(f"subject: {args.scans} scans, {args.features} features, "
          f"{args.voxels} voxels, {args.units} units, {args.perms} shift "
          f"nulls; median of {args.repeats}")
    print(f"{'work':10s} {'local 1 job':>12s} {'dask 1 worker':>14s} "
          f"{'dask 2 workers':>15s} {'speed-up 2/1':>13s}  identical (max |diff|)")
    for name, r in rows.items():
        same = all(np.array_equal(r["local"][1], r[k][1]) for k in (1, 2))
        diff = max(float(np.max(np.abs(r["local"][1].astype(float)
                                       - r[k][1].astype(float))))
                   for k in (1, 2))
        print(f"{name:10s} {r['local'][0]:11.2f}s {r[1][0]:13.2f}s "
              f"{r[2][0]:14.2f}s {r[1][0] / r[2][0]:12.2f}x  {same} ({diff:.1e})")
    print("per-chunk costs (one job, one BLAS thread): "
          f"ridge {1e-9 / costs['ridge_s_per_flop']:.2f} GFLOP/s, "
          f"maps {1e-9 / costs['maps_s_per_uvn']:.2f} G unit-voxel-scans/s, "
          f"shift null {costs['null_s_per_voxel_perm'] * 1e9:.1f} ns per "
          f"voxel x null + {costs['null_s_per_voxel_scan'] * 1e9:.1f} ns per "
          "voxel x scan")
    measured = min(1.0, rows["encoder"][1][0] / rows["encoder"][2][0] / 2) \
        if "encoder" in rows else float("nan")
    print(f"measured 2-worker efficiency here (encoder): {measured:.2f}; the "
          f"estimate assumes {args.efficiency:.2f} on dedicated cores")
    for p in (768, 3072):
        per_sub, total_h, wall_h = estimate(costs, args.cores, args.efficiency,
                                            p=p)
        parts = ", ".join(f"{k} {v / 3600:.2f} h" for k, v in per_sub.items())
        print(f"estimate, 100 subjects x 91,282 grayordinates x 3000 scans, "
              f"p={p} features, 61,440 units, 1000 nulls: per subject "
              f"{parts}; total {total_h:.0f} core-hours; on {args.cores} "
              f"cores: {wall_h:.1f} h")


if __name__ == "__main__":
    main()
