"""Calibration benchmark: GLM and unit x voxel maps on real resting-state noise (issue 16's figures).

Every figure of the calibration section of the statistics guide, in one run::

    python benchmarks/calibration.py            # full counts (about 1 h on 2 busy cores)
    python benchmarks/calibration.py --quick    # small counts (a few minutes)
    python benchmarks/calibration.py --sections demo --repeats 3   # demo per-step timings

Run it single-threaded for comparable timings (``OMP_NUM_THREADS=1``).

Data: real resting-state BOLD from registry packages (the ``test`` extra,
:func:`nilearn_vlm.testing.rest_noise`): ``neuropycon`` (11,953 grey-matter
voxels x 88 scans, TR 2.5 s) and ``brainfc`` (100 parcels x 145 frames, TR 2 s,
raw: long autocorrelation). A random design cannot be in a rest run, so every
rejection is false.

Sections (per data set; inference ``calibrated``, the default, and ``ar1``,
nilearn's AR(1), for comparison on fewer designs):

null    random event designs (:func:`nilearn_vlm.calibration.random_event_design`),
        4 regressors each, both GLM modes: one family per regressor map.
atoms   the pipeline's design: 64 :class:`~nilearn_vlm.SparseAtoms` atoms
        (alpha 0.1, 10 epochs) of 1,024 random HRF-smooth units, both modes.
units   random 64-unit HRF-smooth sets through :func:`~nilearn_vlm.maps.unit_voxel_maps`:
        one family per whole 64 x V matrix (voxelwise rates from the same test, one GLM per unit).
cost    time of the calibrated inference against the ``ar1`` path it replaces (nilearn's
        AR(1) GLM, the unit maps' Pearson test), both in the same run, medians of
        ``--repeats`` interleaved repeats: ``VoxelGLM`` (both modes) and ``unit_voxel_maps``
        at the demo's sizes (4 runs x 80 scans, TR 2 s, 32 atoms; ``--cost-voxels`` voxels,
        ``--cost-units`` units), and, with ``--sections demo``, the per-step timings of
        ``nilearn-vlm demo`` (:func:`nilearn_vlm.demo.run_demo`) with ``inference`` set to
        each (its ``ar1`` steps are the previous commit's code path).
power   planted effects (voxel-variance SNR 0.25 in 20% of the voxels; unit maps: 4
        units x 5% of the voxels) added to the rest data; recall at FDR 0.05 against the
        oracle: the same |t| thresholded at its empirical null pooled over the null
        section's maps of that data set and mode (BH on the empirical p-values).

Targets (issue 16): voxelwise FPR in [0.04, 0.06] at p < 0.05 and in [0.0005, 0.002] at
p < 0.001; the 95% Clopper-Pearson upper bound of the share of families with any
discovery <= 0.07; recall >= 0.9 x oracle; cost <= 2 x. Results: ``--out`` (JSON and markdown).
"""

from __future__ import annotations

import argparse
import json
import re
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import stats as sps

from nilearn_vlm import SparseAtoms, VoxelGLM
from nilearn_vlm._glm_solver import drift_terms
from nilearn_vlm.calibration import random_event_design, random_unit_series
from nilearn_vlm.maps import unit_voxel_maps
from nilearn_vlm.stats import NullRates, permutation_null
from nilearn_vlm.testing import rest_noise

FULL = dict(n_designs=250, n_designs_ar1=50, n_atom_sets=20, n_atom_sets_ar1=5, n_unit_sets=200,
            n_unit_sets_ar1=50, n_planted=20, cost_voxels=29398, cost_units=15360)
QUICK = dict(n_designs=12, n_designs_ar1=4, n_atom_sets=2, n_atom_sets_ar1=1, n_unit_sets=10,
             n_unit_sets_ar1=4, n_planted=4, cost_voxels=4000, cost_units=1024)
MODES = ("univariate", "joint")


class AbsHist:
    """Pooled null distribution of |t| (bins of 1e-3 up to 60): the oracle's threshold."""

    def __init__(self):
        self.counts = np.zeros(60000, dtype=np.int64)

    def _bins(self, t):
        return np.minimum((np.abs(np.ravel(t)) / 1e-3).astype(np.int64), self.counts.size - 1)

    def add(self, t):
        t = np.ravel(t)
        np.add.at(self.counts, self._bins(t[np.isfinite(t)]), 1)

    def pvalue(self, t):
        """P_null(|T| >= |t|) with the +1 of an empirical p-value (conservative within a bin)."""
        tail = np.cumsum(self.counts[::-1])[::-1]
        return (tail[self._bins(t)] + 1) / (tail[0] + 1)

    @property
    def n(self):
        return int(self.counts.sum())


def bh_reject(p, q=0.05):
    p = np.ravel(p)
    order = np.argsort(p)
    ok = p[order] <= q * np.arange(1, p.size + 1) / p.size
    out = np.zeros(p.size, bool)
    if ok.any():
        out[order[: np.flatnonzero(ok).max() + 1]] = True
    return out


def atoms_design(n, t_r, seed):
    """64 SparseAtoms atoms of 1,024 random HRF-smooth units (16 shared factors)."""
    rng = np.random.default_rng([seed, 7])
    X = random_unit_series(n, t_r, rng, n_units=1024, n_factors=16)
    return SparseAtoms(n_atoms=64, alpha=0.1, max_iter=10, random_state=seed).fit_transform(X)


def glm_null(Y, t_r, design, n_rep, noise_model, hists=None, seed=0, log=print, tag=""):
    tallies = {m: NullRates() for m in MODES}
    dofs = {m: [] for m in MODES}
    rng = np.random.default_rng(seed)
    t0 = time.time()
    for rep in range(n_rep):
        X = atoms_design(Y.shape[0], t_r, 1000 * seed + rep) if design == "atoms" else random_event_design(Y.shape[0], t_r, rng)
        for mode in MODES:
            g = VoxelGLM(t_r=t_r, mode=mode, noise_model=noise_model).fit(X, Y)
            for j in range(X.shape[1]):
                tallies[mode].add_family(n_tests=Y.shape[1],
                                         counts={a: int((g.p_[:, j] < a).sum()) for a in (0.05, 0.001)},
                                         any_discovery=bool(g.signed_[:, j].any()))
            if noise_model == "calibrated":
                dofs[mode].append(float(np.median(g.dof_)))
            if hists is not None:
                hists[mode].add(g.t_)
        if (rep + 1) % max(1, n_rep // 5) == 0:
            log(f"  [{tag} {design} {noise_model}] {rep + 1}/{n_rep} ({time.time() - t0:.0f} s)")
    return {m: {**t.summary(), "median_dof": float(np.median(dofs[m])) if dofs[m] else None}
            for m, t in tallies.items()}


def unit_glm(t_r, inference):
    if inference == "calibrated":
        return VoxelGLM(t_r=t_r, mode="univariate", height_control=None)
    return VoxelGLM(drift_model=None, noise_model="ols", mode="univariate", height_control=None)


def unit_null(Y, t_r, n_rep, inference, hist=None, seed=5, log=print, tag=""):
    tally = NullRates()
    rng = np.random.default_rng(seed)
    t0 = time.time()
    for rep in range(n_rep):
        U = random_unit_series(Y.shape[0], t_r, rng)
        maps = unit_voxel_maps(U, Y, t_r=t_r, inference=inference, top_k=1)
        g = unit_glm(t_r, inference).fit(U, Y)
        tally.add_family(n_tests=g.p_.size, counts={a: int((g.p_ < a).sum()) for a in (0.05, 0.001)},
                         any_discovery=bool((maps.n_positive + maps.n_negative).sum()))
        if hist is not None:
            hist.add(g.t_)
        if (rep + 1) % max(1, n_rep // 5) == 0:
            log(f"  [{tag} units {inference}] {rep + 1}/{n_rep} ({time.time() - t0:.0f} s)")
    return tally.summary()


def _median_times(fns, repeats):
    """Interleaved repeats of each named callable: median wall and CPU seconds (and all of them).

    CPU time (this process) is the steadier figure on a shared machine.
    """
    times = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {name: {"median_s": float(np.median(t)), "all_s": [round(x, 3) for x in t],
                   "median_cpu_s": float(np.median(cpu[name])),
                   "all_cpu_s": [round(x, 3) for x in cpu[name]]}
            for name, t in times.items()}


def cost(n_voxels, n_units, repeats, seed=0, log=print):
    """Calibrated vs ar1 path at the demo's sizes: one row per step, ratio of the medians."""
    n_runs, n_run, t_r = 4, 80, 2.0
    n = n_runs * n_run
    runs = np.repeat(np.arange(n_runs), n_run)
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((n + 2, n_voxels))
    Y = (e[2:] + 0.5 * e[1:-1] + 0.2 * e[:-2]).astype(np.float32)  # autocorrelated noise
    A = random_unit_series(n, t_r, rng, runs=runs, n_units=32).astype(np.float32)
    U = random_unit_series(n, t_r, rng, runs=runs, n_units=n_units).astype(np.float32)
    rows = []
    for mode in MODES:
        fns = {nm: (lambda nm=nm: VoxelGLM(t_r=t_r, mode=mode, noise_model=nm).fit(A, Y, groups=runs))
               for nm in ("calibrated", "ar1")}
        rows.append((f"VoxelGLM {mode} (32 atoms)", _median_times(fns, repeats)))
        log(f"  [cost] {rows[-1]}")
    fns = {key: (lambda inf=inf: unit_voxel_maps(U, Y, runs=runs, t_r=t_r, inference=inf, top_k=10))
           for key, inf in (("calibrated", "calibrated"), ("ar1", "iid"))}
    rows.append((f"unit_voxel_maps ({n_units} units)", _median_times(fns, repeats)))
    log(f"  [cost] {rows[-1]}")
    # the pipeline's null step (the encoder's circular-shift null, 200 shifts): the same code in both
    pred = Y + 0.1 * rng.standard_normal(Y.shape).astype(np.float32)
    null = _median_times({"both": lambda: permutation_null(pred, Y, method="shift", runs=runs,
                                                           n_permutations=200, random_state=0)}, repeats)
    rows.append(("encoder null (200 shifts, unchanged)", {"calibrated": null["both"], "ar1": null["both"]}))
    out = [_cost_row(step, t, repeats, f"{n} scans x {n_voxels} voxels") for step, t in rows]
    for label, idx in (("univariate GLM + unit maps", [0, 2]), ("univariate GLM + unit maps + null", [0, 2, 3])):
        new, old = sum(out[i]["calibrated_s"] for i in idx), sum(out[i]["ar1_s"] for i in idx)
        cnew, cold = sum(out[i]["calibrated_cpu_s"] for i in idx), sum(out[i]["ar1_cpu_s"] for i in idx)
        out.append({"step": f"{label} (sum of medians)", "size": out[0]["size"], "repeats": repeats,
                    "calibrated_s": new, "ar1_s": old, "ratio": new / old,
                    "calibrated_cpu_s": cnew, "ar1_cpu_s": cold, "cpu_ratio": cnew / cold})
    return out


def _cost_row(step, t, repeats, size):
    new, old = t["calibrated"]["median_s"], t["ar1"]["median_s"]
    row = {"step": step, "size": size, "repeats": repeats, "calibrated_s": new, "ar1_s": old,
           "ratio": new / old if old > 0 else float("nan"), "all_s": t}
    if "median_cpu_s" in t["calibrated"]:
        new, old = t["calibrated"]["median_cpu_s"], t["ar1"]["median_cpu_s"]
        row.update(calibrated_cpu_s=new, ar1_cpu_s=old, cpu_ratio=new / old if old > 0 else float("nan"))
    return row


def demo_cost(repeats, out, log=print):
    """Per-step timings of the demo with ``inference`` calibrated and ar1 (interleaved repeats)."""
    from nilearn_vlm.demo import run_demo

    times = {"calibrated": [], "ar1": []}
    run_demo(out / "demo_warmup", verbose=0)  # fills the activation cache of later runs
    for rep in range(repeats):
        for inf in times:
            folder = out / f"demo_{inf}"
            summary = run_demo(folder, verbose=0, settings={"inference": inf})
            # step names carry the settings ("voxelwise GLM on the atoms (ar1, univariate)")
            times[inf].append({re.sub(r" \(.*\)$", "", k): v for k, v in summary["timings_s"].items()})
            log(f"  [demo {inf} {rep + 1}/{repeats}] {summary['elapsed_s']} s")
    steps = [k for k in times["calibrated"][0] if k in times["ar1"][0]]
    rows = []
    for k in steps:
        t = {inf: {"median_s": float(np.median([r[k] for r in times[inf]])),
                   "all_s": [round(r[k], 3) for r in times[inf]]} for inf in times}
        rows.append(_cost_row(k, t, repeats, "demo"))
    # the steps the inference changes (GLM, unit maps), and with the encoder's null step (same code in
    # both: the "GLM, unit-map and null steps")
    steps_rows = list(rows)
    for label, keys in (("GLM + unit maps", ("GLM", "unit x voxel")),
                        ("GLM + unit maps + null", ("GLM", "unit x voxel", "null"))):
        sel = [r for r in steps_rows if any(k in r["step"] for k in keys)]
        new, old = sum(r["calibrated_s"] for r in sel), sum(r["ar1_s"] for r in sel)
        rows.append({"step": f"{label} (sum of medians)", "size": "demo", "repeats": repeats,
                     "calibrated_s": new, "ar1_s": old, "ratio": new / old if old else float("nan")})
    return rows


def _plant(Y, N, x, frac, rng, snr=0.25):
    """Add b_v x~ to a random ``frac`` of voxels, var(b x~) = snr var(y~_v) (~: drifts removed)."""
    Q = np.linalg.qr(N)[0]
    yt, xt = Y - Q @ (Q.T @ Y), x - Q @ (Q.T @ x)
    act = rng.random(Y.shape[1]) < frac
    b = np.sqrt(snr * yt.var(0) / xt.var()) * rng.choice([-1.0, 1.0], Y.shape[1]) * act
    return Y + np.outer(xt, b), act


def power(Y, t_r, design, hists, n_planted, seed=1234):
    """Recall at BH 0.05 of the method and of the oracle (its |t| at the pooled empirical null)."""
    n = Y.shape[0]
    N = drift_terms(n, None, t_r).to_numpy()
    rng = np.random.default_rng(seed)
    out = {}
    for mode, hist in hists.items():
        rec, reco, fdp = [], [], []
        for i in range(n_planted):
            if design == "units":
                U = random_unit_series(n, t_r, rng)
                Yp, planted = Y.copy(), np.zeros((U.shape[1], Y.shape[1]), bool)
                for u in rng.choice(U.shape[1], 4, replace=False):
                    Yp, planted[u] = _plant(Yp, N, U[:, u], 0.05, rng)
                g = unit_glm(t_r, "calibrated").fit(U, Yp)
                rej = bh_reject(g.p_.T).reshape(planted.shape)  # one BH over all pairs
                rejo = bh_reject(hist.pvalue(g.t_.T)).reshape(planted.shape)
                truth = planted
            else:
                X = atoms_design(n, t_r, 100 + i) if design == "atoms" else random_event_design(n, t_r, rng)
                j = int(rng.integers(X.shape[1]))
                Yp, truth = _plant(Y, N, X[:, j], 0.2, rng)
                g = VoxelGLM(t_r=t_r, mode=mode).fit(X, Yp)
                rej = g.signed_[:, j] != 0
                rejo = bh_reject(hist.pvalue(g.t_[:, j]))
            rec.append(rej[truth].mean())
            reco.append(rejo[truth].mean())
            fdp.append((rej & ~truth).sum() / max(rej.sum(), 1))
        r, ro = float(np.mean(rec)), float(np.mean(reco))
        out[mode] = {"recall": r, "oracle_recall": ro, "ratio": r / ro if ro > 0 else float("nan"),
                     "n_maps": n_planted, "mean_fdp": float(np.mean(fdp)), "oracle_null_size": hist.n}
    return out


def _rate(s, key):
    lo, hi = s[key + "_ci"]
    digits = 4 if key != "fpr_0.001" else 5
    return f"{s[key]:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _passes(s):
    return (0.04 <= s["fpr_0.05"] <= 0.06 and 0.0005 <= s["fpr_0.001"] <= 0.002
            and s["familywise_ci"][1] <= 0.07)


def report(results):
    lines = ["| data | maps | inference | mode | families | FPR p<0.05 | FPR p<0.001 | "
             "families with a discovery | median dof | targets met |", "|" + "---|" * 10]
    for row in results["null"]:
        s = row["summary"]
        dof = f"{s['median_dof']:.0f}" if s.get("median_dof") else ""
        lines.append(f"| {row['data']} | {row['design']} | {row['inference']} | {row['mode']} | "
                     f"{s['n_families']} | {_rate(s, 'fpr_0.05')} | {_rate(s, 'fpr_0.001')} | "
                     f"{_rate(s, 'familywise')} | {dof} | {'yes' if _passes(s) else 'no'} |")
    lines += ["", "| data | maps | mode | planted maps | recall | oracle recall | ratio | mean FDP |",
              "|" + "---|" * 8]
    for row in results.get("power", []):
        s = row["summary"]
        lines.append(f"| {row['data']} | {row['design']} | {row['mode']} | {s['n_maps']} | {s['recall']:.3f} | "
                     f"{s['oracle_recall']:.3f} | {s['ratio']:.3f} | {s['mean_fdp']:.3f} |")
    if results.get("cost"):
        lines += ["", "| step | size | calibrated (s) | ar1 path (s) | ratio | CPU calibrated (s) | "
                  "CPU ar1 path (s) | CPU ratio | repeats |", "|" + "---|" * 9]
        for r in results["cost"]:
            cpu = (f"{r['calibrated_cpu_s']:.3f} | {r['ar1_cpu_s']:.3f} | {r['cpu_ratio']:.2f}"
                   if "cpu_ratio" in r else " |  | ")
            lines.append(f"| {r['step']} | {r['size']} | {r['calibrated_s']:.3f} | {r['ar1_s']:.3f} | "
                         f"{r['ratio']:.2f} | {cpu} | {r['repeats']} |")
    return "\n".join(lines)


def _save(results, out):
    """Write what is measured so far (a run stopped early keeps its finished sections)."""
    with open(out / "calibration.json", "w") as f:
        json.dump(results, f, indent=1, default=str)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small counts (a few minutes)")
    ap.add_argument("--datasets", default="neuropycon,brainfc")
    ap.add_argument("--sections", default="null,atoms,units,power,cost",
                    help="any of null, atoms, units, power, cost, demo (comma-separated)")
    ap.add_argument("--out", default="calibration_results")
    ap.add_argument("--repeats", type=int, default=3, help="timing repeats (medians)")
    ap.add_argument("--n-planted", type=int, help="planted maps per power case (default: 20, --quick 4)")
    ap.add_argument("--seed", type=int, default=0, help="offset of every seed (independent replicates)")
    ap.add_argument("--counts", default="", help="other counts, e.g. n_atom_sets=12,n_atom_sets_ar1=3")
    ap.add_argument("--cost-voxels", type=int, help="voxels of the cost section")
    ap.add_argument("--cost-units", type=int, help="units of the cost section's unit maps")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    cfg = QUICK if args.quick else FULL
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sections = args.sections.split(",")
    cfg = {**cfg, "cost_voxels": args.cost_voxels or cfg["cost_voxels"],
           "cost_units": args.cost_units or cfg["cost_units"], "repeats": args.repeats,
           "n_planted": args.n_planted or cfg["n_planted"]}
    for item in filter(None, args.counts.split(",")):
        key, value = item.split("=")
        if key not in cfg:
            raise SystemExit(f"--counts: unknown count {key!r}; known: {sorted(cfg)}")
        cfg[key] = int(value)
    results = {"config": cfg, "started": time.ctime(), "null": [], "power": [], "cost": []}
    t_all = time.time()
    if "cost" in sections:
        results["cost"] += cost(cfg["cost_voxels"], cfg["cost_units"], args.repeats)
        _save(results, out)
    if "demo" in sections:
        results["cost"] += demo_cost(args.repeats, out)
    datasets = args.datasets.split(",") if set(sections) - {"cost", "demo"} else []
    for ds in datasets:
        Y, t_r = rest_noise(ds)
        hists = {d: {m: AbsHist() for m in MODES} for d in ("random", "atoms")}
        hists["units"] = {"univariate": AbsHist()}
        for design, key in (("random", "n_designs"), ("atoms", "n_atom_sets")):
            if ("null" if design == "random" else "atoms") not in sections:
                continue
            for inference, noise_model, n_rep in (("calibrated", "calibrated", cfg[key]),
                                                  ("ar1", "ar1", cfg[key + "_ar1"])):
                res = glm_null(Y, t_r, design, n_rep, noise_model,
                               hists[design] if inference == "calibrated" else None, seed=args.seed, tag=ds)
                results["null"] += [{"data": ds, "design": design, "inference": inference, "mode": m,
                                     "summary": s} for m, s in res.items()]
                _save(results, out)
        if "units" in sections:
            for inference, n_rep in (("calibrated", cfg["n_unit_sets"]), ("iid", cfg["n_unit_sets_ar1"])):
                s = unit_null(Y, t_r, n_rep, inference,
                              hists["units"]["univariate"] if inference == "calibrated" else None,
                              seed=5 + args.seed, tag=ds)
                results["null"].append({"data": ds, "design": "units", "inference": inference,
                                        "mode": "univariate", "summary": s})
                _save(results, out)
        if "power" in sections:
            for design in ("random", "atoms", "units"):
                hs = {m: h for m, h in hists[design].items() if h.n}
                if hs:
                    res = power(Y, t_r, design, hs, cfg["n_planted"])
                    results["power"] += [{"data": ds, "design": design, "mode": m, "summary": s}
                                         for m, s in res.items()]
                    print(f"  [{ds} power {design}] {res}", flush=True)
                    _save(results, out)
    results["elapsed_s"] = round(time.time() - t_all)
    _save(results, out)
    text = report(results)
    (out / "calibration.md").write_text(text + "\n")
    print(text)
    return results


if __name__ == "__main__":
    main()
