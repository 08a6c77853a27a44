"""Benchmark SparseAtoms at the paper's scale (61,440 units x 3,600 TRs).

Synthetic units: 64 latent HRF-like sources drive sparse groups of units
(signed), plus white noise. Reports fit time, epochs run, time per unit and
epoch, peak memory, and recovery of the planted sources.

    /work/venv/bin/python benchmarks/atoms.py                      # full size
    /work/venv/bin/python benchmarks/atoms.py --units 8192 --solver minibatch

The machine is shared: compare runs made at the same time, repeat, and read
the per-unit cost (scikit-learn's sparse coding runs one Lasso per unit and
epoch; solver "cd" codes all units at once).
"""

import argparse
import resource
import time
import warnings

import numpy as np

from nilearn_vlm.decomposition import SparseAtoms


def simulate(n_units, n_trs, n_sources, seed=0, chunk=4096):
    rng = np.random.default_rng(seed)
    t = np.arange(n_trs)
    S = rng.standard_normal((n_trs, n_sources))
    kernel = (t[:30] ** 5) * np.exp(-t[:30]) / 120  # gamma-like smoothing
    S = np.stack([np.convolve(s, kernel)[:n_trs] for s in S.T], 1)
    S /= S.std(0)
    X = np.empty((n_trs, n_units), dtype=np.float32)
    owner = rng.integers(0, n_sources, n_units)
    sign = rng.choice([1.0, 1.0, 1.0, -1.0], n_units)
    driven = rng.random(n_units) < 0.3
    for s in range(0, n_units, chunk):
        sl = slice(s, s + chunk)
        block = rng.standard_normal((n_trs, len(owner[sl])))
        block += S[:, owner[sl]] * (sign[sl] * driven[sl])
        X[:, sl] = block
    return X, S


def _gemm_gflops(n=2000, repeats=3):
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / np.median(times) / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=61440)
    parser.add_argument("--trs", type=int, default=3600)
    parser.add_argument("--atoms", type=int, default=64)
    parser.add_argument("--max-iter", type=int, default=30)
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--solver", default="cd")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    X, S = simulate(args.units, args.trs, args.atoms)
    t_sim = time.perf_counter() - t0
    model = SparseAtoms(
        n_atoms=args.atoms, alpha=args.alpha, max_iter=args.max_iter,
        solver=args.solver, random_state=0,
    )
    t0 = time.perf_counter()
    model.fit(X)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    Z = model.transform(X)
    t_tr = time.perf_counter() - t0
    epochs = model.n_iter_[0] if hasattr(model, "n_iter_") else float("nan")
    c = np.corrcoef(S.T, model.atoms_)[: S.shape[1], S.shape[1]:]
    best = np.abs(c).max(1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"solver={args.solver} units={args.units} trs={args.trs} "
          f"atoms={args.atoms} alpha={args.alpha}")
    print(f"simulate {t_sim:.1f} s; fit {t_fit:.1f} s; transform {t_tr:.2f} s")
    print(f"iterations/epochs run {epochs}; fit cost per unit and iteration "
          f"{t_fit / args.units / max(epochs, 1) * 1e3:.3f} ms")
    gflops = _gemm_gflops()
    print(f"float32 GEMM on this machine now: {gflops:.0f} GFLOP/s")
    print(f"peak RSS {peak:.2f} GiB; transform shape {Z.shape}")
    print(f"planted sources recovered (|r| best atom): median {np.median(best):.3f}, "
          f"min {best.min():.3f}, >0.9: {(best > 0.9).mean():.0%}")
    print(f"key neurons per atom: median {np.median((model.key_neurons_ != 0).sum(1)):.0f}")


if __name__ == "__main__":
    main()
