"""Calibration, power and coverage of the analyses' statistics (polarity, redundancy, compare, VLM vs unimodal).

Every rate is printed as ``rate [95% Clopper-Pearson] (k/n)`` and written to
``OUT/SECTION.json``. Targets (issue 17): nulls at p < 0.05 with an upper
Clopper-Pearson bound <= 0.07 (>= 500 replicates per statistic); power >= 0.8
with a lower bound >= 0.7 (>= 100 planted replicates at the default study's
design: 4 runs x 80 scans, TR 2 s, variance SNR 0.25, AR(1) noise 0.4);
interval coverage >= 0.9 (>= 200 subjects); end to end through the pipeline,
>= 100 null subjects with an upper bound <= 0.08.

Usage::

    python benchmarks/analyses.py SECTION [--quick] [--seed N] [--out DIR] [--memory DIR]

SECTION: ``polarity``, ``redundancy``, ``spin``, ``streams`` (compare and VLM
vs unimodal), ``end_to_end``, or ``all``. ``--quick`` runs small counts (a
smoke run: the checks are not applied). ``--memory`` is the cache folder of
the surrogate banks (built once per mask or mesh).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from nilearn_vlm.analyses import clopper_pearson  # noqa: E402
from nilearn_vlm.testing import analyses as sim  # noqa: E402

TARGETS = {"null": 0.07, "power": 0.7, "coverage": 0.9, "end_to_end": 0.08}


def rate(flags, kind=None):
    """Rate, Clopper-Pearson interval and whether it meets its target (``kind``)."""
    flags = np.asarray(flags, bool)
    k, n = int(flags.sum()), int(flags.size)
    low, high = clopper_pearson(k, n) if n else (np.nan, np.nan)
    out = {"k": k, "n": n, "rate": k / n if n else np.nan, "low": low, "high": high}
    if kind in ("null", "end_to_end"):
        out["meets_target"] = bool(high <= TARGETS[kind])
    elif kind == "power":
        out["meets_target"] = bool(out["rate"] >= 0.8 and low >= TARGETS["power"])
    elif kind == "coverage":
        out["meets_target"] = bool(out["rate"] >= TARGETS["coverage"])
    out["kind"] = kind
    return out


def fmt(r):
    mark = {True: " ok", False: " MISSED", None: ""}[r.get("meets_target")]
    return f"{r['rate']:.3f} [{r['low']:.3f}, {r['high']:.3f}] ({r['k']}/{r['n']}){mark}"


def report(section, payload, out_dir, seconds):
    payload["seconds"] = seconds
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{section}.json").write_text(json.dumps(payload, indent=1, default=float))
    print(f"\n== {section} ({seconds / 60:.1f} min)")
    for key, val in payload.items():
        if isinstance(val, dict) and "rate" in val:
            print(f"  {key:45s} {fmt(val)}")


# ------------------------------------------------------------------------------------------- polarity
def polarity(quick, seed, memory):
    from nilearn_vlm_polarity import PolarityAnalysis, balance_trend, layer_counts

    rng = np.random.default_rng(seed)
    n_null, n_power = (20, 20) if quick else (500, 200)
    n_perm = 199 if quick else 999
    payload = {}
    for design, n in (("random", n_null), ("bias_totals", n_null), ("default", n_null), ("trend", n_power),
                      ("trend_totals", n_power // 2)):
        p, p_layer, covered = [], [], []
        for _ in range(n):
            res, truth = sim.polarity_subject(design, rng, with_atlas=False)
            out = PolarityAnalysis().run(res, n_permutations=n_perm, random_state=rng)
            p.append(out.stats["p_trend"] < 0.05)
            p_layer.append(out.stats["p_layer_permutation"] < 0.05)
            atoms = truth["atoms"]
            layer = (atoms["stream"] == "text").to_numpy() * 12 + atoms["layer"].to_numpy()
            tp, tn = layer_counts(truth["true_sets"], layer, 24, np.ones((1, truth["true_sets"].shape[1]), bool))
            depth = np.r_[(np.arange(12) + 1) / 12, (np.arange(12) + 1) / 12]
            true = balance_trend(tp, tn, depth, ["v"] * 12 + ["t"] * 12, n_permutations=1)["slope"][0]
            if np.isfinite(true):
                covered.append(out.stats["slope_low"] <= true <= out.stats["slope_high"])
        kind = "power" if design.startswith("trend") else "null"
        payload[f"driver_trend:{design}"] = rate(p, kind)
        payload[f"layer_permutation:{design}"] = rate(p_layer)
        payload[f"slope_coverage:{design}"] = rate(covered, "coverage" if len(covered) >= 200 else None)
    return payload


# ------------------------------------------------------------------------------------------- redundancy
def _mni_geometry():
    import nibabel as nib
    from nilearn.datasets import load_mni152_brain_mask

    from nilearn_vlm import get_atlas
    from nilearn_vlm.spaces import ImageSpace

    img = load_mni152_brain_mask(resolution=4)
    mask = np.asarray(img.dataobj) > 0
    from nilearn.maskers import NiftiMasker

    space = ImageSpace.from_masker(NiftiMasker(nib.Nifti1Image(mask.astype(np.int8), img.affine)).fit())
    names, rows = [], []
    for atlas in ("seitzman2018", "language_mni"):
        n, mem = get_atlas(atlas).load(space.atlas_target()).membership("canonical")
        for name, row in zip(n, mem):
            if name not in names:
                names.append(str(name))
                rows.append(np.asarray(row, bool))
    return mask, names, np.vstack(rows)


def redundancy(quick, seed, memory):
    from nilearn_vlm.analyses import FieldBank
    from nilearn_vlm_redundancy import cooccurrence_test

    rng = np.random.default_rng(seed)
    mask, names, member = _mni_geometry()
    t0 = time.perf_counter()
    bank = FieldBank.from_mask(mask, 4.0, n_fields=30 if quick else 300, memory=memory)
    build = time.perf_counter() - t0
    full = np.vstack([np.ones(member.shape[1], bool), member])
    labels = ["(all)", *names]
    target = names.index("default mode")
    n_null, n_power, n_draws = (10, 10, 200) if quick else (500, 100, 500)
    null, power = [], []
    for design, n, store in (("independent", n_null, null), ("overlap", n_power, power)):
        for _ in range(n):
            sets = sim.redundancy_maps(design, rng, mask, member, n_maps=6, sizes=(30, 600), target=target)
            table = cooccurrence_test(sets, full, labels, bank, n_draws, rng)
            p = table["p_holm"].to_numpy()[1:]
            store.append((p < 0.05).any() if design == "independent" else p[target] < 0.05)
    return {"bank_seconds_or_cached": build, "any_network_holm:independent_maps": rate(null, "null"),
            "target_network_holm:overlap": rate(power, "power")}


def spin(quick, seed, memory):
    from nilearn.datasets import load_fsaverage

    from nilearn_vlm.analyses import SpinBank
    from nilearn_vlm_redundancy import cooccurrence_test

    rng = np.random.default_rng(seed)
    spins = SpinBank.fsaverage("fsaverage5", n_rotations=100 if quick else 1000, memory=memory)
    sphere = load_fsaverage("fsaverage5")["sphere"]
    coords = np.vstack([sphere.parts["left"].coordinates, sphere.parts["right"].coordinates])
    unit = coords / np.linalg.norm(coords, axis=1, keepdims=True)

    def patch(size, r):
        centre = r.standard_normal(3)
        score = unit @ (centre / np.linalg.norm(centre)) + 0.05 * r.standard_normal(len(unit))
        out = np.zeros(len(unit), bool)
        out[np.argsort(-score)[:size]] = True
        return out

    nets = np.vstack([np.ones(len(unit), bool)] + [patch(800 + 100 * k, np.random.default_rng(100 + k))
                                                   for k in range(6)])
    labels = ["(all)"] + [f"patch{k}" for k in range(6)]
    null, power = [], []
    for design, n, store in (("independent", 10 if quick else 500, null), ("overlap", 10 if quick else 100, power)):
        for _ in range(n):
            maps = [patch(int(rng.integers(100, 1500)), rng) for _ in range(6)]
            if design == "overlap":
                maps[:3] = [nets[1] & (rng.random(len(unit)) < rng.uniform(0.7, 1.0)) for _ in range(3)]
            table = cooccurrence_test(np.stack(maps), nets, labels, spins, 200 if quick else 500, rng)
            p = table["p_holm"].to_numpy()[1:]
            store.append((p < 0.05).any() if design == "independent" else p[0] < 0.05)
    return {"any_patch_holm:independent_caps": rate(null, "null"), "target_patch_holm:overlap": rate(power, "power")}


# ------------------------------------------------------------------------------------------- compare, VLM
def streams(quick, seed, memory):
    from nilearn_vlm_compare import CompareAnalysis

    rng = np.random.default_rng(seed)
    n = 4 if quick else 250
    runs = sim.run_labels()
    rows = {k: [] for k in ("spec_null", "spec_power", "spec_null_blocks_only", "vlm_null", "vlm_roi_null",
                            "vlm_power", "vlm_roi_covers", "spec_covers")}
    recall = []
    for _ in range(n):
        src = sim.stimulus_sources(rng, runs)
        brain = sim.compare_bold(src, rng, runs, n_vision=279, n_language=200, n_roi=300, n_driven=120)
        labels = np.where(brain["vision"], 1, np.where(brain["language"], 2, 0))
        m = {}
        for name, kind in (("towers_a", "towers"), ("towers_b", "towers"), ("fused_a", "fused"), ("fused_b", "fused")):
            units, U = sim.model_units(kind, src, rng, units_per_layer=8)
            m[name] = sim.model_results(name, units, U, brain["Y"], runs, labels=labels)
        rows["spec_power"].append(CompareAnalysis().run([m["towers_a"], m["fused_a"]]).stats["p_specificity"] < 0.05)
        for x, y in (("towers_a", "towers_b"), ("fused_a", "fused_b")):
            s = CompareAnalysis().run([m[x], m[y]]).stats
            rows["spec_null"].append(s["p_specificity"] < 0.05)
            rows["spec_covers"].append(s["specificity_low"] <= 0 <= s["specificity_high"])
            rows["spec_null_blocks_only"].append(
                CompareAnalysis().run([m[x], m[y]], layer_jackknife=False).stats["p_specificity"] < 0.05)
            t = CompareAnalysis().run([m[x], m[y]], baseline=y, vlms=[x], roi=brain["roi"], random_state=rng)
            v = t.tables["vlm_vs_unimodal"].iloc[0]
            rows["vlm_null"].append(v["n_better_voxels"] > 0)
            rows["vlm_roi_null"].append(v["roi_p"] < 0.05)
            rows["vlm_roi_covers"].append(v["low"] <= 0 <= v["high"])
        t = CompareAnalysis().run([m["fused_a"], m["towers_a"]], baseline="towers_a", vlms=["fused_a"],
                                  roi=brain["roi"], random_state=rng)
        rows["vlm_power"].append(t.tables["vlm_vs_unimodal"]["n_better_voxels"].iloc[0] > 0)
        vox = t.tables["vlm_voxels"]
        recall.append(float(vox["significant"].to_numpy()[brain["roi_driven"][brain["roi"]]].mean()))
    return {"specificity:towers_vs_fused": rate(rows["spec_power"], "power"),
            "specificity:same_architecture (blocks + layers)": rate(rows["spec_null"], "null"),
            "specificity:same_architecture (blocks only)": rate(rows["spec_null_blocks_only"]),
            "specificity:interval_covers_0_on_nulls": rate(rows["spec_covers"], "coverage"),
            "vlm_vs_unimodal:interaction_voxels (any BH discovery)": rate(rows["vlm_power"], "power"),
            "vlm_vs_unimodal:same_architecture (any BH discovery)": rate(rows["vlm_null"], "null"),
            "vlm_vs_unimodal:same_architecture (ROI-level test)": rate(rows["vlm_roi_null"]),
            "vlm_vs_unimodal:ROI_interval_covers_0_on_nulls": rate(rows["vlm_roi_covers"], "coverage"),
            "vlm_vs_unimodal:mean_recall_of_driven_voxels": float(np.mean(recall))}


# ------------------------------------------------------------------------------------------- end to end
def end_to_end(quick, seed, memory):
    """Null subjects (no planted driver) through ``fit_subject`` (CLIP, random weights, two seeds)."""
    from nilearn_vlm.datasets import make_default_study
    from nilearn_vlm.pipeline import fit_subject
    from nilearn_vlm_compare import CompareAnalysis
    from nilearn_vlm_polarity import PolarityAnalysis
    from nilearn_vlm_redundancy import RedundancyAnalysis

    n = 2 if quick else 100
    rng = np.random.default_rng(seed)
    study = make_default_study(drivers=(), memory=memory, seed=seed)
    mask = study.mask
    n_scans = study.n_scans
    rows = {k: [] for k in ("polarity", "redundancy", "specificity", "vlm")}
    import nibabel as nib

    m = np.asarray(mask.dataobj) > 0
    for s in range(n):
        bold = []
        for r, length in enumerate(n_scans.values() if isinstance(n_scans, dict) else n_scans):
            data = np.zeros(m.shape + (int(length),), np.float32)
            data[m] = sim.ar1_noise(int(m.sum()), np.zeros(int(length), int), 0.4, rng).T
            bold.append(nib.Nifti1Image(data, mask.affine))
        fits = [fit_subject(study.events, bold, study.t_r, mask=mask, model="clip",
                            model_params={**study.model_params, "seed": k}, memory=memory, subject=f"null{s}",
                            verbose=0) for k in (0, 1)]
        a, b = fits
        rows["polarity"].append(PolarityAnalysis().run(a, n_permutations=999).stats["p_trend"] < 0.05)
        red = RedundancyAnalysis().run(a, n_draws=500, memory=memory).tables["cooccurrence"]
        rows["redundancy"].append((red["p_holm"].to_numpy()[1:] < 0.05).any())
        b.model = "clip_seed1"
        rows["specificity"].append(CompareAnalysis().run([a, b]).stats["p_specificity"] < 0.05)
        v = CompareAnalysis().run([a, b], baseline="clip_seed1", vlms=["clip"]).tables.get("vlm_vs_unimodal")
        rows["vlm"].append(bool(v is not None and v["n_better_voxels"].iloc[0] > 0))
        print(f"  end-to-end subject {s + 1}/{n}: {[r[-1] for r in rows.values()]}", flush=True)
    return {f"{k}:null_subjects": rate(v, "end_to_end") for k, v in rows.items()}


SECTIONS = {"polarity": polarity, "redundancy": redundancy, "spin": spin, "streams": streams,
            "end_to_end": end_to_end}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", choices=[*SECTIONS, "all"])
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="analyses_benchmark", help="folder of the SECTION.json files")
    parser.add_argument("--memory", default=None, help="cache folder (surrogate banks, activations)")
    args = parser.parse_args(argv)
    names = list(SECTIONS) if args.section == "all" else [args.section]
    missed = []
    for name in names:
        t0 = time.perf_counter()
        payload = SECTIONS[name](args.quick, args.seed, args.memory)
        if args.quick:  # a smoke run: its counts are too small to judge the targets
            for val in payload.values():
                if isinstance(val, dict):
                    val.pop("meets_target", None)
        report(name, payload, Path(args.out), time.perf_counter() - t0)
        missed += [f"{name}:{k}" for k, v in payload.items() if isinstance(v, dict) and v.get("meets_target") is False]
    if missed and not args.quick:
        print("targets missed:", missed)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
