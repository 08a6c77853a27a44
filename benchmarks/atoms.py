"""Benchmarks of SparseAtoms: convergence against scikit-learn, HCP size, key neurons.

Three subcommands (one BLAS thread; CPU seconds are ``time.process_time``, wall
seconds ``time.perf_counter``; the machine is shared, so compare rows of one run):

``dict``  objective against time of scikit-learn ``DictionaryLearning``
          (``fit_algorithm="cd"``, 30 iterations, its callback every 5) and of
          ``SparseAtoms`` (default: varimax start, stopping rule tol 1e-5; and
          ``init="svd"``, scikit-learn's start) on the same standardised data:
          15,360 units x 1,200 scans, 64 planted gamma-smoothed sources, 64
          atoms, alpha 0.1. Objectives are those of each method's atoms with
          the codes solved to 1e-10; "recovered" is the share of sources whose
          best atom reaches |r| > 0.9.
``hcp``   ``SparseAtoms`` alone at HCP size (61,440 units x 3,655 scans, the
          simulated subject of :func:`nilearn_vlm.testing.simulate_subject`):
          iterations to the stopping rule, time, peak memory, sources matched.
``keys``  the key-neuron table: seeds x voxel SNR x AR(1) phi of the simulated
          subject (1,536 units, 4 runs x 300 scans, 8 sources), 64 atoms, the
          pipeline's two stages (:func:`nilearn_vlm.pipeline.interpret_atoms`
          with today's ``VoxelGLM``): sources matched, key-neuron precision and
          recall, voxel F1, signs, never-driven voxels significant, noise atoms
          interpreted.

Usage::

    python benchmarks/atoms.py dict [--quick]    # quick: 3,840 x 600, 32 atoms
    python benchmarks/atoms.py hcp [--quick]     # quick: 15,360 x 1,200
    python benchmarks/atoms.py keys [--quick]    # quick: 1 seed, SNR 0.25, phi 0.6
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.decomposition import DictionaryLearning
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from nilearn_vlm import SparseAtoms, VoxelGLM
from nilearn_vlm.decomposition import learn_dictionary, match_atoms, sparse_codes
from nilearn_vlm.pipeline import interpret_atoms
from nilearn_vlm.testing import simulate_subject


def planted_sources(n_units, n_scans, n_sources, seed=0, chunk=4096):
    """64 gamma-smoothed sources; 30% of units driven by one (sign + with prob. 3/4) plus white noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_scans)
    S = rng.standard_normal((n_scans, n_sources))
    kernel = (t[:30] ** 5) * np.exp(-t[:30]) / 120
    S = np.stack([np.convolve(s, kernel)[:n_scans] for s in S.T], 1)
    S /= S.std(0)
    X = np.empty((n_scans, n_units), dtype=np.float32)
    owner = rng.integers(0, n_sources, n_units)
    sign = rng.choice([1.0, 1.0, 1.0, -1.0], n_units)
    driven = rng.random(n_units) < 0.3
    for s in range(0, n_units, chunk):
        sl = slice(s, s + chunk)
        X[:, sl] = rng.standard_normal((n_scans, len(owner[sl]))) + S[:, owner[sl]] * (sign[sl] * driven[sl])
    return X, S


def standardized(X):
    Xc = X - X.mean(0)
    return np.ascontiguousarray((Xc / np.linalg.norm(Xc, axis=0)).T)


def dictionary_objective(samples, atoms, alpha):
    """min over the codes of the objective, for fixed atoms (codes solved to 1e-10)."""
    Z = sparse_codes(samples, atoms, alpha, tol=1e-10, max_iter=20_000, solver="cd")
    R = samples.astype(np.float64) - Z @ atoms
    return 0.5 * float((R * R).sum()) + alpha * float(np.abs(Z).sum())


def recovered(S, atoms, threshold=0.9):
    k = S.shape[1]
    best = np.abs(np.corrcoef(S.T, atoms)[:k, k:]).max(1)
    return float((best > threshold).mean())


def _clock():
    return time.perf_counter(), time.process_time()


def cmd_dict(args):
    X, S = planted_sources(args.units, args.scans, args.atoms, seed=args.seed)
    samples = standardized(X.astype(np.float64))
    rows, traces = [], {}
    for name, init in (("SparseAtoms (varimax start)", "varimax"), ("SparseAtoms (init='svd')", "svd")):
        trace = []
        w0, c0 = _clock()
        fit = learn_dictionary(samples.astype(np.float32), args.atoms, args.alpha, init=init, random_state=0,
                               callback=lambda row: trace.append((row["it"], time.process_time() - c0,
                                                                  row["objective"])))
        w1, c1 = _clock()
        traces[name] = trace
        rows.append(dict(method=name, n_iter=fit.n_iter, converged=fit.converged, cpu_s=c1 - c0, wall_s=w1 - w0,
                         objective=dictionary_objective(samples, fit.atoms, args.alpha),
                         recovered=recovered(S, fit.atoms)))
        print(rows[-1], flush=True)
    trace, state = [], {}

    def callback(loc):
        trace.append((loc["ii"] + 1, time.process_time() - state["c0"], float(loc["current_cost"])))

    model = DictionaryLearning(args.atoms, alpha=args.alpha, max_iter=args.sk_iter, fit_algorithm="cd",
                               transform_algorithm="lasso_cd", transform_alpha=args.alpha, random_state=0,
                               callback=callback)
    state["w0"], state["c0"] = _clock()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(samples)
    w1, c1 = _clock()
    traces["scikit-learn DictionaryLearning (cd)"] = trace
    rows.append(dict(method="scikit-learn DictionaryLearning (cd)", n_iter=int(model.n_iter_), converged=None,
                     cpu_s=c1 - state["c0"], wall_s=w1 - state["w0"],
                     objective=dictionary_objective(samples, model.components_, args.alpha),
                     recovered=recovered(S, model.components_)))
    table = pd.DataFrame(rows)
    table["vs_sklearn_pct"] = 100 * (table["objective"] / table["objective"].iloc[-1] - 1)
    print(f"\n{args.units} units x {args.scans} scans, {args.atoms} atoms, alpha {args.alpha}, seed {args.seed}")
    print(table.round(3).to_string(index=False))
    print("\nobjective against CPU seconds (iteration, CPU s, objective):")
    for name, trace in traces.items():
        print(f"  {name}: " + "; ".join(f"it {i} {c:.1f} s {f:.2f}" for i, c, f in trace[:8]),
              "..." if len(trace) > 8 else "")


def cmd_hcp(args):
    sub = simulate_subject(args.seed, units_per_layer=args.units // 24, n_scans_per_run=-(-args.scans // 4),
                           n_null_voxels=10, voxels_per_network=1)
    X, S = sub.X[: args.scans], sub.sources[: args.scans]
    del sub
    w0, c0 = _clock()
    model = SparseAtoms(n_atoms=args.atoms, alpha=args.alpha, random_state=0, key_neurons=None).fit(X)
    w1, c1 = _clock()
    _, r = match_atoms(S.T, model.atoms_)
    print(f"{X.shape[1]} units x {X.shape[0]} scans, {args.atoms} atoms, alpha {args.alpha}, tol {model.tol}")
    print(f"n_iter {model.n_iter_[0]}, converged {model.converged_[0]}, tol reached {model.tol_reached_[0]:.2e}, "
          f"objective {model.objective_[0]:.2f}")
    print(f"CPU {c1 - c0:.1f} s, wall {w1 - w0:.1f} s, peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    print(f"planted sources matched (|r|): min {np.abs(r).min():.3f}, median {np.median(np.abs(r)):.3f}")


def score(sub, atoms, interpreted, maps):
    """Key-neuron precision/recall (atom, unit, sign triples of interpreted atoms), voxel F1, signs, nulls."""
    index, r = match_atoms(sub.sources.T, atoms.atoms_)
    orient = np.sign(r)
    signed = np.zeros((len(interpreted), sub.Y.shape[1]), dtype=int)
    if maps is not None:
        signed[interpreted] = maps.signed_.T
    key = atoms.key_neurons_
    pred = {(a, u, int(key[a, u])) for a, u in zip(*np.nonzero(key)) if interpreted[a]}
    true = {(int(index[s]), int(u), int(sub.unit_sign[u] * orient[s]))
            for s in range(len(index)) for u in sub.key_units[s]}
    f1, ok, total = [], 0, 0
    for s, a in enumerate(index):
        got = signed[a] * orient[s]
        truth = sub.voxel_sign[:, s]
        tp = np.sum((got != 0) & (got == truth))
        f1.append(2 * tp / max((got != 0).sum() + (truth != 0).sum(), 1))
        inside = (truth != 0) & (got != 0)
        ok += int((got[inside] == truth[inside]).sum())
        total += int(inside.sum())
    noise = np.setdiff1d(np.arange(len(interpreted)), index)
    tp = len(pred & true)
    return dict(min_source_r=float(np.abs(r).min()), key_precision=tp / max(len(pred), 1),
                key_recall=tp / len(true), min_voxel_f1=float(min(f1)), signs=ok / max(total, 1),
                null_voxels=float((signed[:, sub.never_driven] != 0).any(0).mean()),
                noise_interpreted=int(interpreted[noise].sum()), n_key=len(pred))


def cmd_keys(args):
    rows = []
    for seed in args.seeds:
        units = simulate_subject(seed)
        c0 = time.process_time()
        atoms = SparseAtoms(n_atoms=64, random_state=0, feature_names=units.units).fit(units.X, groups=units.runs)
        cpu = time.process_time() - c0
        print(f"seed {seed}: SparseAtoms with the key-neuron test {cpu:.1f} s CPU, n_iter {atoms.n_iter_[0]}, "
              f"q {atoms.key_q_[0]}, bound {atoms.key_error_bound_[0]:.3f}", flush=True)
        for snr in args.snr:
            for phi in args.phi:
                sub = simulate_subject(seed, snr=snr, phi=phi)  # the same units at every snr and phi
                glm = VoxelGLM(t_r=1.0, drift_model="cosine", high_pass=0.01, alpha=0.05, mode="joint")
                _, maps, interpreted = interpret_atoms(atoms.atoms_.T, sub.Y, sub.runs, atoms, glm)
                rows.append(dict(seed=seed, snr=snr, phi=phi, **score(sub, atoms, interpreted, maps)))
                print("  ", rows[-1], flush=True)
    table = pd.DataFrame(rows)
    cols = ["min_source_r", "key_precision", "key_recall", "min_voxel_f1", "signs", "null_voxels",
            "noise_interpreted"]
    print("\nmin / mean over seeds (VoxelGLM's default inference):")
    print(table.groupby(["snr", "phi"])[cols].agg(["min", "mean"]).round(3).to_string())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("dict", "hcp", "keys"):
        p = sub.add_parser(name)
        p.add_argument("--quick", action="store_true")
        p.add_argument("--alpha", type=float, default=0.1)
        p.add_argument("--seed", type=int, default=0)
    sub.choices["dict"].add_argument("--units", type=int, default=15360)
    sub.choices["dict"].add_argument("--scans", type=int, default=1200)
    sub.choices["dict"].add_argument("--atoms", type=int, default=64)
    sub.choices["dict"].add_argument("--sk-iter", type=int, default=30)
    sub.choices["hcp"].add_argument("--units", type=int, default=61440)
    sub.choices["hcp"].add_argument("--scans", type=int, default=3655)
    sub.choices["hcp"].add_argument("--atoms", type=int, default=64)
    sub.choices["keys"].add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    sub.choices["keys"].add_argument("--snr", type=float, nargs="+", default=[0.25, 0.1])
    sub.choices["keys"].add_argument("--phi", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    args = parser.parse_args(argv)
    if args.quick and args.cmd == "dict":
        args.units, args.scans, args.atoms = 3840, 600, 32
    elif args.quick and args.cmd == "hcp":
        args.units, args.scans = 15360, 1200
    elif args.quick:
        args.seeds, args.snr, args.phi = [0], [0.25], [0.6]
    with threadpool_limits(1):
        {"dict": cmd_dict, "hcp": cmd_hcp, "keys": cmd_keys}[args.cmd](args)


if __name__ == "__main__":
    main()
