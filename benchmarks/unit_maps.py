"""Benchmark unit_voxel_maps against the GEMM floor of this machine.

Target: 61,440 units x 50,000 voxels x 3,000 scans within 2x of the float32
matrix-product floor, under 4 GiB peak. Inputs are float32 .npy memmaps
written by a child process (so the peak RSS is the computation's own).
The floor is measured in the same run: the median time of each block
product the computation runs (the full block and the partial edge blocks,
each at its real size), times the number of blocks of that size.

    /work/venv/bin/python benchmarks/unit_maps.py                     # full size
    /work/venv/bin/python benchmarks/unit_maps.py --units 16384 --voxels 8192

Time scales linearly with voxels (each voxel chunk is the same work), so a
run over fewer voxels at the full unit count measures the full-size peak
memory and floor ratio.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def generate(folder, n_units, n_voxels, n_trs, seed=0, chunk=4096):
    rng = np.random.default_rng(seed)
    S = rng.standard_normal((n_trs, 32)).astype(np.float32)
    X = np.lib.format.open_memmap(os.path.join(folder, "x.npy"), "w+",
                                  np.float32, (n_trs, n_units))
    for s in range(0, n_units, chunk):
        m = min(chunk, n_units - s)
        X[:, s:s + m] = rng.standard_normal((n_trs, m), dtype=np.float32)
        X[:, s:s + m] += S[:, rng.integers(0, 32, m)] * 0.3
    Y = np.lib.format.open_memmap(os.path.join(folder, "y.npy"), "w+",
                                  np.float32, (n_trs, n_voxels))
    for s in range(0, n_voxels, chunk):
        m = min(chunk, n_voxels - s)
        Y[:, s:s + m] = rng.standard_normal((n_trs, m), dtype=np.float32)
        Y[:, s:s + m] += S[:, rng.integers(0, 32, m)] * 0.3
    X.flush()
    Y.flush()


def block_shapes(n_units, n_voxels, uc, vc):
    """``{(units, voxels): count}`` of the blocks of a tiling, edge blocks at their real size.

    >>> block_shapes(10, 7, 4, 5)
    {(4, 5): 2, (4, 2): 2, (2, 5): 1, (2, 2): 1}
    """
    out = {}
    for u0 in range(0, n_units, uc):
        for v0 in range(0, n_voxels, vc):
            shape = (min(uc, n_units - u0), min(vc, n_voxels - v0))
            out[shape] = out.get(shape, 0) + 1
    return out


def block_time(shape, n_trs, repeats=3, seed=1):
    """Median time of one float32 ``(units, scans) @ (scans, voxels)`` block product."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((shape[0], n_trs), dtype=np.float32)
    B = rng.standard_normal((n_trs, shape[1]), dtype=np.float32)
    out = np.empty(shape, np.float32)
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        np.matmul(A, B, out=out)
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=61440)
    parser.add_argument("--voxels", type=int, default=50000)
    parser.add_argument("--trs", type=int, default=3000)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--threshold", default="fdr")
    parser.add_argument("--memory-budget", default="512MiB")
    parser.add_argument("--folder", default=None)
    parser.add_argument("--generate-only", action="store_true")
    args = parser.parse_args()
    if args.generate_only:
        generate(args.folder, args.units, args.voxels, args.trs)
        return
    from nilearn_vlm._utils import parse_bytes
    from nilearn_vlm.maps import _chunks, unit_voxel_maps

    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--generate-only", "--folder", folder,
                        "--units", str(args.units), "--voxels", str(args.voxels),
                        "--trs", str(args.trs)], check=True)
        print(f"generated inputs in {time.perf_counter() - t0:.1f} s")
        X = np.load(os.path.join(folder, "x.npy"), mmap_mode="r")
        Y = np.load(os.path.join(folder, "y.npy"), mmap_mode="r")
        uc, vc = _chunks(args.units, args.voxels, args.trs,
                         parse_bytes(args.memory_budget, "memory_budget"), None, None)
        shapes = block_shapes(args.units, args.voxels, uc, vc)

        def gemm_time():
            """Median time of each distinct block product, by the blocks' real sizes."""
            return {shape: block_time(shape, args.trs) for shape in shapes}

        before = gemm_time()
        threshold = args.threshold if args.threshold == "fdr" else float(args.threshold)
        t0 = time.perf_counter()
        maps = unit_voxel_maps(X, Y, top_k=args.top_k, threshold=threshold,
                               memory_budget=args.memory_budget)
        elapsed = time.perf_counter() - t0
        after = gemm_time()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    # partial edge blocks count by their real size (not as full blocks)
    floor = sum(count * min(before[shape], after[shape]) for shape, count in shapes.items())
    flops = 2.0 * args.units * args.voxels * args.trs
    full = 2.0 * uc * vc * args.trs
    print(f"size: {args.units} units x {args.voxels} voxels x {args.trs} scans, "
          f"blocks {uc} x {vc}, budget {args.memory_budget}, threshold {args.threshold}")
    print(f"GEMM rate (block product, before/after): "
          f"{full / before[(uc, vc)] / 1e9:.1f} / {full / after[(uc, vc)] / 1e9:.1f} GFLOP/s "
          f"(full {uc} x {vc} block); whole-problem rate at the floor {flops / floor / 1e9:.1f} GFLOP/s")
    print(f"unit_voxel_maps: {elapsed:.1f} s; GEMM floor {floor:.1f} s; "
          f"ratio {elapsed / floor:.2f}x")
    print(f"peak RSS {peak:.2f} GiB; FDR |r| threshold {maps.threshold:.4f}; "
          f"significant pairs {int(maps.n_positive.sum() + maps.n_negative.sum())}")


if __name__ == "__main__":
    main()
