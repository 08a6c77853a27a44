"""Time and peak memory of permutation nulls (nilearn_vlm.stats.permutation_null).

Default size: 1,000 nulls for 50,000 voxels and 3,000 scans (one run), float32.
Each case runs in its own Python process, so its peak resident memory (resource
``ru_maxrss``) is its own; the data alone (BOLD + per-voxel predictions, 1.2 GB)
is measured as the ``data only`` row. The baseline is the direct way: gather the
permuted predictions and sum products, one permutation at a time, on a subset of
voxels, scaled to the full size.

Usage::

    python benchmarks/permutation.py                         # full size (~1-2 min, 2 cores)
    python benchmarks/permutation.py --n-voxels 5000         # quick
    python benchmarks/permutation.py --cases block-paired shift-paired

Timings on a shared machine are noisy: compare rows of one run, and read the
CPU-time column beside the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

CASES = {
    "data only": None,
    "block-paired": ("block", True),
    "block-shared": ("block", False),
    "shift-paired": ("shift", True),
    "shift-shared": ("shift", False),
    "phase-paired": ("phase", True),
    "direct-block-paired": ("direct", True),
}


def _data(n_scans, n_voxels, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    y = rng.standard_normal((n_scans, n_voxels), dtype=np.float32)
    pred = rng.standard_normal((n_scans, n_voxels), dtype=np.float32)
    return y, pred


def _direct(pred, y, n_permutations, subset, rng):
    """One permutation at a time: gather permuted predictions, sum products (r up to scale)."""
    import numpy as np

    from nilearn_vlm.stats import block_indices, default_block_length
    from nilearn_vlm.stats._resampling import draw_blocks

    n = y.shape[0]
    length = default_block_length(n)
    offsets, orders = draw_blocks(n, length, n_permutations, 1, rng)
    p, yy = pred[:, :subset], y[:, :subset]
    for k in range(n_permutations):
        idx = block_indices(n, length, offsets[k], orders[k])
        np.einsum("tv,tv->v", p[idx], yy)


def run_case(name, n_scans, n_voxels, n_permutations, direct_voxels):
    import numpy as np
    from threadpoolctl import threadpool_info

    from nilearn_vlm.stats import permutation_null

    y, pred = _data(n_scans, n_voxels)
    spec = CASES[name]
    t0, c0 = time.perf_counter(), time.process_time()
    scale = 1.0
    if spec is not None:
        method, paired = spec
        if method == "direct":
            sub = min(direct_voxels, n_voxels)
            _direct(pred, y, n_permutations, sub, np.random.default_rng(0))
            scale = n_voxels / sub
        else:
            x = pred if paired else pred[:, 0]
            res = permutation_null(x, y, method=method, n_permutations=n_permutations, random_state=0)
            assert res.pvalues.shape == (n_voxels,)
    wall = (time.perf_counter() - t0) * scale
    cpu = (time.process_time() - c0) * scale
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    threads = {i["internal_api"]: i["num_threads"] for i in threadpool_info()}
    return dict(
        case=name, wall_s=wall, cpu_s=cpu, max_rss_gb=rss_gb, scaled=scale != 1.0, threads=threads
    )


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-voxels", type=int, default=50000)
    parser.add_argument("--n-scans", type=int, default=3000)
    parser.add_argument("--n-permutations", type=int, default=1000)
    parser.add_argument("--direct-voxels", type=int, default=1000, help="voxels of the direct baseline")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:  # child process
        out = run_case(args.case, args.n_scans, args.n_voxels, args.n_permutations, args.direct_voxels)
        print(json.dumps(out))
        return
    print(f"{args.n_permutations} nulls, {args.n_voxels} voxels, {args.n_scans} scans, float32; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"| case | wall s | CPU s | peak RSS GB |\n|---|---|---|---|")
    for name in args.cases:
        cmd = [sys.executable, __file__, "--case", name, "--n-voxels", str(args.n_voxels),
               "--n-scans", str(args.n_scans), "--n-permutations", str(args.n_permutations),
               "--direct-voxels", str(args.direct_voxels)]
        proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
        res = json.loads(proc.stdout.splitlines()[-1])
        note = f" (scaled from {args.direct_voxels} voxels)" if res["scaled"] else ""
        row = f"{res['wall_s']:.1f} | {res['cpu_s']:.1f} | {res['max_rss_gb']:.2f}"
        print(f"| {name}{note} | {row} |", flush=True)
    print(f"threads: {res['threads']}; load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
