"""Each GEMM/FFT-bound stage at HCP size against its floor, on a GPU or the CPU.

Stages (HCP size; ``--quick`` shrinks them to run in about 6 minutes):

* ``ridge``: ``VoxelEncoder`` fit, the exact per-voxel-alpha ridge
  (3,000 scans x 3,072 features x 50,000 voxels, 15 alphas, 5 folds, float32);
  floor: :func:`~nilearn_vlm.encoding.count_flops`'s total at the GEMM rate
  of the solver's validation product. Also himalaya's ``RidgeCV`` (or
  ``KernelRidgeCV`` with a linear kernel when features outnumber training
  scans, as himalaya advises) on its torch backend (``torch_cuda`` on a GPU,
  ``torch`` with ``--cpu``), same folds and alphas, when himalaya is
  installed.
* ``nulls``: ``permutation_null(method="shift")`` of one regressor against
  91,282 grayordinates over 3,655 scans in 4 runs, 1,000 circular shifts,
  float32; floor: the forward and inverse FFTs of the BOLD of every run at the
  FFT rate measured on the same arrays (the gather of the shifts is extra).
* ``atoms``: ``learn_dictionary`` (``SparseAtoms``' solver) of 61,440 units x
  3,000 scans, 64 atoms, a fixed number of alternations (``tol=0``), float32
  products; floor: the start's Gram matrix and the two ``k x n x T`` products
  of each alternation (and the final codes and objective) at the GEMM rate
  of the ``(k, T) @ (T, units)`` product (the FISTA steps are extra).
* ``unit_maps`` (``--cpu`` only; its torch backend is not built yet):
  ``unit_voxel_maps`` of 61,440 units x 50,000 voxels x 3,000 scans; floor:
  its block products at their real sizes.

Every floor is measured in the same run, on the same device, at the stage's
precision; times are medians of ``--repeats`` runs (5; 3 with ``--quick``).
One table is printed (markdown) and each row is appended to ``--out`` (JSON
lines) as soon as it is measured, so a killed run keeps what it did.

    python benchmarks/gpu.py --quick                 # torch on cuda
    python benchmarks/gpu.py --cpu --quick           # the CPU stages, NumPy backend
    python benchmarks/gpu.py --cpu --backend torch --stages ridge,nulls
    python benchmarks/gpu.py --cpu --quick --baseline /path/to/main   # CPU stages against another checkout
"""

import argparse
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FULL = {
    "ridge": dict(n=3000, p=3072, v=50000),
    "nulls": dict(n=3655, runs=4, v=91282, n_perm=1000),
    "atoms": dict(units=61440, T=3000, k=64, iters=10),
    "unit_maps": dict(units=61440, v=50000, T=3000),
}
QUICK = {
    "ridge": dict(n=1000, p=1024, v=4000),
    "nulls": dict(n=3655, runs=4, v=4000, n_perm=1000),
    "atoms": dict(units=8192, T=1000, k=64, iters=5),
    "unit_maps": dict(units=8192, v=8192, T=1000),
}
ALPHAS = np.logspace(-2, 5, 15)
N_FOLDS = 5


def median_time(fn, repeats, sync=None):
    """Median wall time of ``fn()`` over ``repeats`` runs (after ``sync``), and the last result."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        if sync is not None:
            sync()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


class _NumpyKernels:
    """NumPy's kernels, without the library (so ``--baseline`` runs on checkouts that predate backends)."""

    name, device = "numpy", "cpu"

    asarray = staticmethod(np.asarray)
    matmul = staticmethod(np.matmul)

    def rfft(self, a):
        import scipy.fft

        return scipy.fft.rfft(a, axis=0)

    def irfft(self, a, n):
        import scipy.fft

        return scipy.fft.irfft(a, n=n, axis=0)

    def synchronize(self):
        pass


class Device:
    """The backend the stages run on, with its GEMM and FFT kernels for the floors."""

    def __init__(self, backend, device):
        if (backend, device) == ("numpy", "cpu"):
            self.bk = _NumpyKernels()
        else:
            from nilearn_vlm._backend import get_backend

            self.bk = get_backend(backend, device)
        self.name = f"{self.bk.name}:{self.bk.device}"

    @property
    def kw(self):
        """``backend``/``device`` arguments of the stages (none for NumPy on the CPU, the default)."""
        return {} if self.name == "numpy:cpu" else dict(backend=self.bk.name, device=self.bk.device)

    def gemm_rate(self, m, k, n, dtype=np.float32, repeats=3):
        """GFLOP/s of one ``(m, k) @ (k, n)`` product in ``dtype`` on the device."""
        rng = np.random.default_rng(0)
        A = self.bk.asarray(rng.standard_normal((m, k)).astype(dtype))
        B = self.bk.asarray(rng.standard_normal((k, n)).astype(dtype))
        self.bk.matmul(A, B)  # warm-up
        t, _ = median_time(lambda: self.bk.matmul(A, B), repeats, self.bk.synchronize)
        return 2.0 * m * k * n / t / 1e9

    def fft_time(self, arrays, repeats=3):
        """Median time of a forward and an inverse real FFT along axis 0 of each array."""
        dev = [self.bk.asarray(a) for a in arrays]

        def run():
            for a in dev:
                self.bk.irfft(self.bk.rfft(a), a.shape[0])

        run()
        return median_time(run, repeats, self.bk.synchronize)[0]


def _ridge_data(n, p, v, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 64), dtype=np.float32)
    X = Z @ rng.standard_normal((64, p), dtype=np.float32) / 8 + rng.standard_normal((n, p), dtype=np.float32)
    Y = Z @ rng.standard_normal((64, v), dtype=np.float32)
    Y *= np.logspace(-2, 0, v, dtype=np.float32)
    Y += 3 * rng.standard_normal((n, v), dtype=np.float32)
    return X, Y


def stage_ridge(dev, size, repeats, himalaya):
    from nilearn_vlm.encoding import VoxelEncoder, count_flops, make_folds

    n, p, v = size["n"], size["p"], size["v"]
    X, Y = _ridge_data(n, p, v)
    folds = make_folds(N_FOLDS, n)
    n_va, m = n // N_FOLDS, min(n - n // N_FOLDS, p)
    rate = dev.gemm_rate(n_va, m, 4096)
    flops = count_flops(n, p, v, len(ALPHAS), folds)["total"]
    enc = VoxelEncoder(alphas=ALPHAS, cv=folds, dtype="float32", max_memory="2GB", **dev.kw)
    t, fitted = median_time(lambda: enc.fit(X, Y), repeats)
    rows = [dict(stage="ridge", size=f"{n}x{p}x{v}, 15 alphas, 5 folds", device=dev.name, dtype="float32",
                 seconds=t, floor_seconds=flops / rate / 1e9, floor=f"GEMM {rate:.0f} GFLOP/s")]
    if himalaya:
        th, alphas = _himalaya(dev, X, Y, folds, repeats)
        if th is not None:
            agree = float(np.mean(np.isclose(alphas, fitted.alpha_)))
            rows.append(dict(stage="ridge (himalaya)", size=rows[0]["size"], device=th[1], dtype="float32",
                             seconds=th[0], floor_seconds=flops / rate / 1e9, floor=f"same; alphas agree {agree:.1%}"))
    return rows


def _himalaya(dev, X, Y, folds, repeats):
    """himalaya's torch backend on the same problem: (seconds, backend name), alphas."""
    try:
        from himalaya.backend import set_backend
        from himalaya.kernel_ridge import KernelRidgeCV
        from himalaya.ridge import RidgeCV
        from himalaya.scoring import r2_score
    except ImportError:
        return None, None
    name = "torch_cuda" if dev.bk.device.startswith("cuda") else "torch"
    backend = set_backend(name, on_error="raise")
    n_train = len(folds[0][0])
    params = dict(score_func=r2_score, n_targets_batch=4096, n_alphas_batch=len(ALPHAS))
    if X.shape[1] <= n_train:
        est = RidgeCV(alphas=ALPHAS, cv=folds, fit_intercept=True, solver_params=dict(params, warn=False))
    else:
        est = KernelRidgeCV(alphas=ALPHAS, kernel="linear", cv=folds, fit_intercept=True, solver_params=params)

    def fit():
        est.fit(X, Y)
        return np.asarray(backend.to_numpy(est.best_alphas_))

    sync = dev.bk.synchronize
    t, alphas = median_time(fit, repeats, sync)
    return (t, f"himalaya {name}"), alphas


def stage_nulls(dev, size, repeats):
    from nilearn_vlm.stats import permutation_null

    n, n_runs, v, n_perm = size["n"], size["runs"], size["v"], size["n_perm"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.standard_normal((n, v), dtype=np.float32)
    y[:, :100] += 0.2 * x[:, None]
    runs = np.minimum(np.arange(n) * n_runs // n, n_runs - 1)
    bounds = np.flatnonzero(np.diff(runs)) + 1
    t_fft = dev.fft_time(np.split(y, bounds))
    t, _ = median_time(lambda: permutation_null(x, y, method="shift", runs=runs, n_permutations=n_perm,
                                                random_state=0, **dev.kw),
                       repeats)
    return [dict(stage="nulls (shift)", size=f"{n} scans in {n_runs} runs x {v} voxels, {n_perm} shifts",
                 device=dev.name, dtype="float32", seconds=t, floor_seconds=t_fft,
                 floor="FFT of the BOLD (rfft + irfft), same arrays")]


def stage_atoms(dev, size, repeats):
    from nilearn_vlm.decomposition import learn_dictionary

    units, T, k, iters = size["units"], size["T"], size["k"], size["iters"]
    rng = np.random.default_rng(0)
    S = rng.standard_normal((k, T))
    L = rng.standard_normal((units, k)) * (rng.random((units, k)) < 0.05)
    X = (L @ S + rng.standard_normal((units, T))).astype(np.float32)
    X -= X.mean(1, keepdims=True)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    rate = dev.gemm_rate(k, T, 4096)
    gram = 2.0 * units * min(units, T) ** 2 + 2.0 * units * T * k  # start: Gram, varimax loadings
    flops = gram + (iters + 1) * 4.0 * k * units * T

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return learn_dictionary(X, k, 0.1, max_iter=iters, tol=0.0, random_state=0, warn=False, **dev.kw)

    t, _ = median_time(fit, repeats)
    return [dict(stage="atoms (cd)", size=f"{units} units x {T} scans, {k} atoms, {iters} alternations",
                 device=dev.name, dtype="float32", seconds=t, floor_seconds=flops / rate / 1e9,
                 floor=f"GEMM {rate:.0f} GFLOP/s (FISTA steps extra)")]


def stage_unit_maps(dev, size, repeats):
    sys.path.insert(0, HERE)
    from unit_maps import block_shapes, block_time, generate

    from nilearn_vlm._utils import parse_bytes
    from nilearn_vlm.maps import _chunks, unit_voxel_maps

    units, v, T = size["units"], size["v"], size["T"]
    budget = "512MiB"
    with tempfile.TemporaryDirectory() as folder:
        generate(folder, units, v, T)
        X = np.load(os.path.join(folder, "x.npy"), mmap_mode="r")
        Y = np.load(os.path.join(folder, "y.npy"), mmap_mode="r")
        uc, vc = _chunks(units, v, T, parse_bytes(budget, "memory_budget"), None, None)
        shapes = block_shapes(units, v, uc, vc)
        floor = sum(count * block_time(shape, T) for shape, count in shapes.items())
        t, _ = median_time(lambda: unit_voxel_maps(X, Y, top_k=10, threshold="fdr", memory_budget=budget),
                           repeats)
    return [dict(stage="unit_maps", size=f"{units} units x {v} voxels x {T} scans", device="numpy:cpu",
                 dtype="float32", seconds=t, floor_seconds=floor, floor="block GEMMs at their real sizes")]


def table(rows):
    lines = ["| stage | size | device | dtype | seconds | floor (s) | ratio | floor measured as |",
             "|---|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['stage']} | {r['size']} | {r['device']} | {r['dtype']} | {r['seconds']:.2f} | "
                     f"{r['floor_seconds']:.2f} | {r['seconds'] / r['floor_seconds']:.2f}x | {r['floor']} |")
    return "\n".join(lines)


def compare(args, stages, repeats):
    """Each stage of this checkout against ``args.baseline``'s, alternating runs in subprocesses."""
    import subprocess

    roots = {"this": os.path.dirname(HERE), "baseline": os.path.abspath(args.baseline)}
    times = {stage: {label: [] for label in roots} for stage in stages}
    flags = ["--repeats", "1", "--no-himalaya", "--threads", str(args.threads), "--device", "cpu",
             "--backend", "numpy"] + (["--quick"] if args.quick else [])
    with tempfile.TemporaryDirectory() as tmp:
        for stage in stages:
            for i in range(repeats):
                order = list(roots.items())
                for label, root in (order if i % 2 == 0 else order[::-1]):  # who goes first alternates
                    out = os.path.join(tmp, f"{stage}-{label}-{i}.jsonl")
                    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
                    subprocess.run([sys.executable, os.path.abspath(__file__), "--stages", stage, "--out", out,
                                    *flags], env=env, check=True, cwd=tmp, stdout=subprocess.DEVNULL)
                    with open(out) as f:
                        times[stage][label].append(json.loads(f.readline())["seconds"])
            t = {label: float(np.median(v)) for label, v in times[stage].items()}
            print(f"# {stage}: " + "; ".join(f"{label} {np.round(v, 2).tolist()}" for label, v in times[stage].items()),
                  file=sys.stderr, flush=True)
            print(f"| {stage} | {t['this']:.2f} | {t['baseline']:.2f} | {t['this'] / t['baseline']:.3f} |",
                  flush=True)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="run the CPU stages (default: torch on cuda)")
    parser.add_argument("--backend", default=None, help="numpy or torch (default: numpy with --cpu, else torch)")
    parser.add_argument("--device", default=None, help="default: cpu with --cpu, else cuda")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about 6 minutes")
    parser.add_argument("--stages", default=None, help="comma-separated subset of ridge,nulls,atoms,unit_maps")
    parser.add_argument("--repeats", type=int, default=None, help="runs per stage (median); 5, or 3 with --quick")
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads")
    parser.add_argument("--no-himalaya", action="store_true")
    parser.add_argument("--out", default=None, help="JSON lines file, one row per measurement")
    parser.add_argument("--baseline", default=None, help="another checkout's root: time each NumPy CPU stage "
                        "of both, alternating runs (medians of --repeats), and print their ratio")
    args = parser.parse_args(argv)
    device = args.device or ("cpu" if args.cpu else "cuda")
    backend = args.backend or ("numpy" if device == "cpu" else "torch")
    sizes = QUICK if args.quick else FULL
    repeats = args.repeats or (3 if args.quick else 5)
    default = ["ridge", "nulls", "atoms"] + (["unit_maps"] if device == "cpu" else [])
    stages = args.stages.split(",") if args.stages else default

    if args.baseline:
        print(f"# this checkout against {args.baseline}, NumPy on the CPU, median of {repeats} alternating runs")
        print("| stage | this (s) | baseline (s) | this / baseline |\n|---|---:|---:|---:|", flush=True)
        compare(args, stages, repeats)
        return

    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    if backend == "torch":
        import torch

        torch.set_num_threads(args.threads)
    dev = Device(backend, device)
    rows = []
    print(f"# benchmarks/gpu.py {' '.join(sys.argv[1:] if argv is None else argv)}: {dev.name}, {args.threads} thread(s), "
          f"median of {repeats}", flush=True)
    for stage in stages:
        t0 = time.perf_counter()
        if stage == "ridge":
            new = stage_ridge(dev, sizes[stage], repeats, not args.no_himalaya)
        elif stage == "nulls":
            new = stage_nulls(dev, sizes[stage], repeats)
        elif stage == "atoms":
            new = stage_atoms(dev, sizes[stage], repeats)
        elif stage == "unit_maps":
            new = stage_unit_maps(dev, sizes[stage], repeats)
        else:
            raise SystemExit(f"unknown stage {stage!r}; use ridge, nulls, atoms or unit_maps")
        rows += new
        print(f"{stage}: done in {time.perf_counter() - t0:.0f} s", flush=True)
        print(table(new).splitlines()[-1] if len(new) == 1 else "\n".join(table(new).splitlines()[2:]),
              flush=True)
        if args.out:
            with open(args.out, "a") as f:
                for r in new:
                    f.write(json.dumps(dict(r, args=vars(args))) + "\n")
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
