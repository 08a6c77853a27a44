"""Calibration, power and coverage of the analyses' statistics (polarity, redundancy, compare, VLM vs unimodal).

Every rate is printed as ``rate [95% Clopper-Pearson] (k/n)`` and written to
``OUT/SECTION.json``. Targets (issue 17): nulls at p < 0.05 with an upper
Clopper-Pearson bound <= 0.07 (>= 500 replicates per statistic); power >= 0.8
with a lower bound >= 0.7 (>= 100 planted replicates at the default study's
design: 4 runs x 80 scans, TR 2 s, variance SNR 0.25, AR(1) noise 0.4);
interval coverage >= 0.9 (>= 200 subjects); end to end through the pipeline,
>= 100 null subjects with an upper bound <= 0.08.

Usage::

    python benchmarks/analyses.py SECTION [--quick] [--n N] [--designs A,B] [--seed N] [--out DIR] [--memory DIR]
    python benchmarks/analyses.py SECTION --pool [--markdown] [--out DIR]

SECTION: ``polarity``, ``redundancy``, ``spin``, ``streams`` (compare and VLM
vs unimodal), ``end_to_end``, or ``all``. ``--quick`` runs small counts (a
smoke run: the checks are not applied). ``--n`` sets the replicates of each
selected design (``--designs``: a comma-separated subset of the section's
designs; ``streams``: ``specificity``, ``vlm``). ``--memory`` is the cache folder of the surrogate banks (built once
per mask or mesh) and of the activations.

Every replicate is appended to ``OUT/SECTION.seedS.jsonl`` as it ends (a
killed run keeps what it did); the summary ``OUT/SECTION.json`` pools every
``SECTION.seed*.jsonl`` in ``OUT``, so runs with different seeds split a
count and pool (``--pool`` only re-summarises). A rate meets its target only
at the issue's count (nulls >= 500, power >= 100, coverage >= 200, end to end
>= 100).
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
#: Replicates the issue asks for before a rate of each kind is judged.
MIN_COUNT = {"null": 500, "power": 100, "coverage": 200, "end_to_end": 100}


def rate(flags, kind=None):
    """Rate, Clopper-Pearson interval and whether it meets its target (``kind``) at the required count."""
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
    if kind is not None:
        out["enough"] = n >= MIN_COUNT[kind]
        out["meets_target"] = out["meets_target"] and out["enough"]
    out["kind"] = kind
    return out


def fmt(r):
    mark = {True: " ok", False: " MISSED", None: ""}[r.get("meets_target")]
    if r.get("meets_target") is False and not r.get("enough", True):
        mark += f" (fewer than {MIN_COUNT[r['kind']]} replicates)"
    return f"{r['rate']:.3f} [{r['low']:.3f}, {r['high']:.3f}] ({r['k']}/{r['n']}){mark}"


class Recorder:
    """Appends each replicate's outcomes to ``OUT/SECTION.seedS.jsonl`` as it ends (flushed)."""

    def __init__(self, out_dir, section, seed, quick):
        out_dir.mkdir(parents=True, exist_ok=True)
        self.path = out_dir / f"{'quick-' if quick else ''}{section}.seed{seed}.jsonl"
        self.seed = seed

    def add(self, key, flag=None, kind=None, value=None):
        row = {"key": key, "seed": self.seed, "kind": kind}
        row.update({"flag": bool(flag)} if value is None else {"value": float(value)})
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def summarise(section, out_dir, quick=False):
    """Pool every ``SECTION.seed*.jsonl`` of ``out_dir`` into rates (flags) and means (values)."""
    flags, kinds, values, seeds = {}, {}, {}, set()
    for path in sorted(out_dir.glob(f"{'quick-' if quick else ''}{section}.seed*.jsonl")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            seeds.add(row["seed"])
            if "flag" in row:
                flags.setdefault(row["key"], []).append(row["flag"])
                kinds[row["key"]] = row["kind"]
            else:
                values.setdefault(row["key"], []).append(row["value"])
    payload = {key: rate(v, kinds[key]) for key, v in flags.items()}
    payload.update({key: {"mean": float(np.mean(v)), "n": len(v)} for key, v in values.items()})
    payload["seeds"] = sorted(seeds)
    return payload


def markdown_rows(section, payload):
    """One Markdown table row per rate: statistic, kind, k/n, rate [95% Clopper-Pearson], target."""
    rows = []
    goal = {"null": "upper <= 0.07", "end_to_end": "upper <= 0.08", "power": ">= 0.8, lower >= 0.7",
            "coverage": ">= 0.90", None: "(descriptive)"}
    for key, r in payload.items():
        if isinstance(r, dict) and "rate" in r:
            met = {True: "yes", False: "no", None: ""}[r.get("meets_target")]
            if r.get("meets_target") is False and not r.get("enough", True):
                met = f"no (n < {MIN_COUNT[r['kind']]})"
            rows.append(f"| {section} | {key} | {r['kind'] or ''} | {r['k']}/{r['n']} | {r['rate']:.3f} "
                        f"[{r['low']:.3f}, {r['high']:.3f}] | {goal[r['kind']]} | {met} |")
    return rows


def report(section, payload, out_dir, seconds=None):
    if seconds is not None:
        payload["seconds_last_run"] = seconds
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{section}.json").write_text(json.dumps(payload, indent=1, default=float))
    took = "" if seconds is None else f", last run {seconds / 60:.1f} min"
    print(f"\n== {section} (seeds {payload['seeds']}{took})")
    for key, val in payload.items():
        if isinstance(val, dict) and "rate" in val:
            print(f"  {key:55s} {fmt(val)}")
        elif isinstance(val, dict) and "mean" in val:
            print(f"  {key:55s} mean {val['mean']:.4g} ({val['n']})")


# ------------------------------------------------------------------------------------------- polarity
#: Replicates of each polarity design (full run): the biased-totals null needs ~1500 to show its bound.
POLARITY_COUNTS = {"random": 500, "bias_totals": 1500, "default": 500, "trend": 200, "trend_totals": 100}


def polarity(quick, seed, memory, rec, n=None, designs=None):
    from nilearn_vlm_polarity import PolarityAnalysis, balance_trend, layer_counts

    rng = np.random.default_rng(seed)
    n_perm = 199 if quick else 999
    for design in designs or POLARITY_COUNTS:
        kind = "power" if design.startswith("trend") else "null"
        for _ in range(n or (20 if quick else POLARITY_COUNTS[design])):
            res, truth = sim.polarity_subject(design, rng, with_atlas=False)
            out = PolarityAnalysis().run(res, n_permutations=n_perm, random_state=rng)
            rec.add(f"driver_trend:{design}", out.stats["p_trend"] < 0.05, kind)
            rec.add(f"layer_permutation:{design}", out.stats["p_layer_permutation"] < 0.05)
            atoms = truth["atoms"]
            layer = (atoms["stream"] == "text").to_numpy() * 12 + atoms["layer"].to_numpy()
            tp, tn = layer_counts(truth["true_sets"], layer, 24, np.ones((1, truth["true_sets"].shape[1]), bool))
            depth = np.r_[(np.arange(12) + 1) / 12, (np.arange(12) + 1) / 12]
            true = balance_trend(tp, tn, depth, ["v"] * 12 + ["t"] * 12, n_permutations=1)["slope"][0]
            if np.isfinite(true):
                rec.add(f"slope_coverage:{design}", out.stats["slope_low"] <= true <= out.stats["slope_high"],
                        "coverage")


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


def redundancy(quick, seed, memory, rec, n=None, designs=None):
    """Designs ``independent`` / ``overlap`` against the field bank; ``*_moves`` against :class:`ClusterMoves`."""
    from nilearn_vlm.analyses import ClusterMoves, FieldBank
    from nilearn_vlm_redundancy import cooccurrence_test

    rng = np.random.default_rng(seed)
    mask, names, member = _mni_geometry()
    t0 = time.perf_counter()
    banks = {"fields": FieldBank.from_mask(mask, 4.0, n_fields=30 if quick else 300, memory=memory),
             "moves": ClusterMoves(mask)}
    print(f"  surrogates: {time.perf_counter() - t0:.0f} s (built or read from --memory)", flush=True)
    full = np.vstack([np.ones(member.shape[1], bool), member])
    labels = ["(all)", *names]
    target = names.index("default mode")
    counts = {d: (10 if quick else c) for d, c in (("independent", 500), ("overlap", 100), ("independent_moves", 500),
                                                   ("overlap_moves", 100))}
    n_draws = 200 if quick else 500
    for design in designs or counts:
        kind, _, method = design.partition("_")
        bank, tag = banks[method or "fields"], f" ({method})" if method else ""
        for _ in range(n or counts[design]):
            sets = sim.redundancy_maps(kind, rng, mask, member, n_maps=6, sizes=(30, 600), target=target)
            table = cooccurrence_test(sets, full, labels, bank, n_draws, rng)
            p = table["p_holm"].to_numpy()[1:]
            if kind == "independent":
                rec.add(f"any_network_holm:independent_maps{tag}", (p < 0.05).any(), "null")
            else:
                rec.add(f"target_network_holm:overlap{tag}", p[target] < 0.05, "power")


def spin(quick, seed, memory, rec, n=None, designs=None):
    from nilearn.datasets import load_fsaverage

    from nilearn_vlm.analyses import SpinBank
    from nilearn_vlm_redundancy import cooccurrence_test

    rng = np.random.default_rng(seed)
    spins = SpinBank.fsaverage("fsaverage5", n_rotations=100 if quick else 1000, memory=memory)
    sphere = load_fsaverage("fsaverage5")["sphere"]
    # the right sphere mirrored (x -> -x): a cap is then bilateral-symmetric, as the spins' reflected rotation of the
    # right hemisphere assumes (caps at the same raw coordinates in both hemispheres are not spin-invariant: 0.054
    # [0.036, 0.078] of 500 nulls rejected with them)
    coords = np.vstack([sphere.parts["left"].coordinates, sphere.parts["right"].coordinates * [-1.0, 1.0, 1.0]])
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
    counts = {"independent": 10 if quick else 500, "overlap": 10 if quick else 100}
    for design in designs or counts:
        for _ in range(n or counts[design]):
            maps = [patch(int(rng.integers(100, 1500)), rng) for _ in range(6)]
            if design == "overlap":
                maps[:3] = [nets[1] & (rng.random(len(unit)) < rng.uniform(0.7, 1.0)) for _ in range(3)]
            table = cooccurrence_test(np.stack(maps), nets, labels, spins, 200 if quick else 500, rng)
            p = table["p_holm"].to_numpy()[1:]
            if design == "independent":
                rec.add("any_patch_holm:independent_caps", (p < 0.05).any(), "null")
            else:
                rec.add("target_patch_holm:overlap", p[0] < 0.05, "power")


# ------------------------------------------------------------------------------------------- compare, VLM
def streams(quick, seed, memory, rec, n=None, designs=None):
    """Each replicate: two independent draws of each architecture (two null pairs) and one towers-vs-fused pair.

    Designs: ``specificity`` (modality specificity) and ``vlm`` (VLM vs
    unimodal: the architecture-level test, blocks + layers, and the sign-flip
    test conditional on the fitted models); default both. ``vlm`` alone skips
    the per-stream layer jackknife (the specificity's input). ``vlm_sparse``
    (only when named): power with 30 of the 300 region voxels driven.
    ``vlm_variance`` (only when named): per subject (fixed data), the
    variance of the region's ``SSE / SST`` across 30 draws of each
    architecture against the mean of its delete-one-layer jackknife variance.
    """
    from nilearn_vlm_compare import CompareAnalysis

    designs = designs or ["specificity", "vlm"]
    unknown = set(designs) - {"specificity", "vlm", "vlm_sparse", "vlm_variance"}
    if unknown:
        raise ValueError("streams designs are 'specificity', 'vlm', 'vlm_sparse' and 'vlm_variance', got "
                         f"{sorted(unknown)}")
    if "vlm_sparse" in designs:
        _vlm_sparse(seed, rec, n or (4 if quick else 100))
    if "vlm_variance" in designs:
        _vlm_variance(seed, rec, n or (1 if quick else 3), 5 if quick else 30)
    designs = [d for d in designs if d in ("specificity", "vlm")]
    if not designs:
        return
    spec, vlm = "specificity" in designs, "vlm" in designs
    rng = np.random.default_rng(seed)
    runs = sim.run_labels()
    for _ in range(n or (4 if quick else 250)):
        src = sim.stimulus_sources(rng, runs)
        brain = sim.compare_bold(src, rng, runs, n_vision=279, n_language=200, n_roi=300, n_driven=120)
        labels = np.where(brain["vision"], 1, np.where(brain["language"], 2, 0))
        m = {}
        for name, kind in (("towers_a", "towers"), ("towers_b", "towers"), ("fused_a", "fused"), ("fused_b", "fused")):
            units, U = sim.model_units(kind, src, rng, units_per_layer=8)
            pair = ("vision", "text") if kind == "towers" else ("cross_image", "cross_text")  # the compared streams
            m[name] = sim.model_results(name, units, U, brain["Y"], runs, labels=labels,
                                        layer_jackknife=pair if spec else False, layer_sse=vlm)
        if spec:
            rec.add("specificity:towers_vs_fused",
                    CompareAnalysis().run([m["towers_a"], m["fused_a"]]).stats["p_specificity"] < 0.05, "power")
        for x, y in (("towers_a", "towers_b"), ("fused_a", "fused_b")):
            if spec:
                s = CompareAnalysis().run([m[x], m[y]]).stats
                rec.add("specificity:same_architecture (blocks + layers)", s["p_specificity"] < 0.05, "null")
                rec.add("specificity:interval_covers_0_on_nulls", s["specificity_low"] <= 0 <= s["specificity_high"],
                        "coverage")
                rec.add("specificity:same_architecture (blocks only)",
                        CompareAnalysis().run([m[x], m[y]], layer_jackknife=False).stats["p_specificity"] < 0.05)
            if vlm:
                t = CompareAnalysis().run([m[x], m[y]], baseline=y, vlms=[x], roi=brain["roi"], random_state=rng,
                                          layer_jackknife=False, encoding_layer_jackknife=True)
                v = t.tables["vlm_vs_unimodal"].iloc[0]
                rec.add("vlm_vs_unimodal:same_architecture (ROI-level, blocks + layers)", v["roi_p"] < 0.05, "null")
                rec.add("vlm_vs_unimodal:same_architecture (any BH voxel, blocks + layers)", v["n_better_voxels"] > 0,
                        "null")
                rec.add("vlm_vs_unimodal:ROI_interval_covers_0_on_nulls (blocks + layers)", v["low"] <= 0 <= v["high"],
                        "coverage")
                rec.add("vlm_vs_unimodal:same_architecture (ROI-level, conditional sign flips)",
                        v["roi_p_conditional"] < 0.05)
                rec.add("vlm_vs_unimodal:same_architecture (any BH voxel, conditional sign flips)",
                        v["n_better_voxels_conditional"] > 0)
                rec.add("vlm_vs_unimodal:ROI_interval_covers_0_on_nulls (blocks only)",
                        v["low_conditional"] <= 0 <= v["high_conditional"])
        if vlm:
            t = CompareAnalysis().run([m["fused_a"], m["towers_a"]], baseline="towers_a", vlms=["fused_a"],
                                      roi=brain["roi"], random_state=rng, layer_jackknife=False,
                                      encoding_layer_jackknife=True)
            v = t.tables["vlm_vs_unimodal"].iloc[0]
            rec.add("vlm_vs_unimodal:interaction_voxels (ROI-level, blocks + layers)", v["roi_p"] < 0.05, "power")
            rec.add("vlm_vs_unimodal:interaction_voxels (any BH voxel, blocks + layers)", v["n_better_voxels"] > 0,
                    "power")
            rec.add("vlm_vs_unimodal:interaction_voxels (any BH voxel, conditional sign flips)",
                    v["n_better_voxels_conditional"] > 0)
            vox = t.tables["vlm_voxels"]
            driven = brain["roi_driven"][brain["roi"]]
            rec.add("vlm_vs_unimodal:mean_recall_of_driven_voxels (blocks + layers)",
                    value=float(vox["significant"].to_numpy()[driven].mean()))
            rec.add("vlm_vs_unimodal:mean_recall_of_driven_voxels (conditional sign flips)",
                    value=float(vox["significant_conditional"].to_numpy()[driven].mean()))
            rec.add("vlm_vs_unimodal:mean_false_discoveries_among_undriven (blocks + layers)",
                    value=float(vox["significant"].to_numpy()[~driven].sum()))


def _vlm_sparse(seed, rec, n):
    """Power of both VLM-vs-unimodal tests when 30 of the 300 region voxels carry the interaction."""
    from nilearn_vlm_compare import CompareAnalysis

    rng = np.random.default_rng(seed)
    runs = sim.run_labels()
    for _ in range(n):
        src = sim.stimulus_sources(rng, runs)
        brain = sim.compare_bold(src, rng, runs, n_vision=279, n_language=200, n_roi=300, n_driven=30)
        labels = np.where(brain["vision"], 1, np.where(brain["language"], 2, 0))
        m = {k: sim.model_results(k, *sim.model_units(k, src, rng, units_per_layer=8), brain["Y"], runs,
                                  labels=labels, layer_jackknife=False) for k in ("fused", "towers")}
        v = CompareAnalysis().run([m["fused"], m["towers"]], baseline="towers", vlms=["fused"], roi=brain["roi"],
                                  random_state=rng, layer_jackknife=False,
                                  encoding_layer_jackknife=True).tables["vlm_vs_unimodal"].iloc[0]
        rec.add("vlm_vs_unimodal:30_interaction_voxels (ROI-level, blocks + layers)", v["roi_p"] < 0.05, "power")
        rec.add("vlm_vs_unimodal:30_interaction_voxels (any BH voxel, blocks + layers)", v["n_better_voxels"] > 0,
                "power")
        rec.add("vlm_vs_unimodal:30_interaction_voxels (ROI-level, conditional sign flips)",
                v["roi_p_conditional"] < 0.05)
        rec.add("vlm_vs_unimodal:30_interaction_voxels (any BH voxel, conditional sign flips)",
                v["n_better_voxels_conditional"] > 0)


def _vlm_variance(seed, rec, n, n_draws):
    """Between-draw variance of the region's SSE / SST against the delete-one-layer jackknife's (fixed data)."""
    from nilearn_vlm.analyses import block_sse, block_sst
    from nilearn_vlm_compare import layer_jackknife_variance, layer_strata

    rng = np.random.default_rng(seed)
    runs = sim.run_labels()
    for _ in range(n):
        src = sim.stimulus_sources(rng, runs)
        brain = sim.compare_bold(src, rng, runs, n_vision=279, n_language=200, n_roi=300, n_driven=120)
        roi = brain["roi"]
        for kind in ("towers", "fused"):
            values, jack = [], []
            for _ in range(n_draws):
                res = sim.model_results(kind, *sim.model_units(kind, src, rng, units_per_layer=8), brain["Y"], runs,
                                        layer_jackknife=False)
                sst = block_sst(res.bold_block_sums)[:, roi].sum()
                values.append(block_sse(res.stream_block_sums["all"], res.bold_block_sums)[:, roi].sum() / sst)
                lay = np.asarray(res.stream_layer_sse["all"], float)[:, roi].sum(1) / sst
                jack.append(float(layer_jackknife_variance(lay, layer_strata(res))[0]))
            between = float(np.var(values, ddof=1))
            rec.add(f"vlm_variance:{kind} between-draw variance of the region's SSE/SST", value=between)
            rec.add(f"vlm_variance:{kind} mean delete-one-layer jackknife variance", value=float(np.mean(jack)))
            rec.add(f"vlm_variance:{kind} jackknife / between-draw variance", value=float(np.mean(jack)) / between)


# ------------------------------------------------------------------------------------------- end to end
#: Resolution (mm) of the end-to-end null subjects' MNI152 mask: 8 mm (about 3,700 voxels, an eighth of the
#: default study's 4 mm) keeps the design (4 runs of the movie, TR 2 s, AR(1) noise 0.4; no planted driver, so
#: the SNR does not enter) at a cost that allows 100 subjects.
E2E_RESOLUTION = 8


def end_to_end(quick, seed, memory, rec, n=None, designs=None):
    """Null subjects (AR(1) noise, no driver) through ``fit_subject`` twice (CLIP, random weights, seeds 0, 1).

    Each subject gets fresh noise; the two models are two independent draws
    of one architecture (the comparison's null), and neither drives the
    noise (the polarity and redundancy nulls).
    """
    import nibabel as nib
    from nilearn.datasets import load_mni152_brain_mask

    from nilearn_vlm.datasets import DEFAULT_MODEL, make_movie_events
    from nilearn_vlm.pipeline import fit_subject
    from nilearn_vlm_compare import CompareAnalysis
    from nilearn_vlm_polarity import PolarityAnalysis
    from nilearn_vlm_redundancy import RedundancyAnalysis

    n = n or (2 if quick else 100)
    rng = np.random.default_rng(seed)
    t_r, phi = sim.DESIGN["t_r"], sim.DESIGN["phi"]
    events, durations = make_movie_events(n_runs=sim.DESIGN["n_runs"], seed=0)
    n_scans = [int(np.ceil(d / t_r)) for _, d in sorted(durations.items())]
    img = load_mni152_brain_mask(resolution=E2E_RESOLUTION)
    m = np.asarray(img.dataobj) > 0
    mask = nib.Nifti1Image(m.astype(np.int8), img.affine)
    print(f"  null subjects: {int(m.sum())} voxels, runs of {n_scans} scans", flush=True)
    for s in range(n):
        t0 = time.perf_counter()
        bold = []
        for length in n_scans:
            data = np.zeros(m.shape + (length,), np.float32)
            data[m] = sim.ar1_noise(int(m.sum()), np.zeros(length, int), phi, rng).T
            bold.append(nib.Nifti1Image(data, img.affine))
        a, b = (fit_subject(events, bold, t_r, mask=mask, model="clip", model_params={**DEFAULT_MODEL, "seed": k},
                            memory=memory, subject=f"null{seed}_{s}", verbose=0) for k in (0, 1))
        b.model = "clip_seed1"
        row = {
            "polarity": PolarityAnalysis().run(a, n_permutations=999, random_state=rng).stats["p_trend"] < 0.05,
            "redundancy": (RedundancyAnalysis().run(a, n_draws=500, memory=memory, random_state=rng)
                           .tables["cooccurrence"]["p_holm"].to_numpy()[1:] < 0.05).any(),
            "specificity": CompareAnalysis().run([a, b]).stats["p_specificity"] < 0.05,
        }
        v = CompareAnalysis().run([a, b], baseline="clip_seed1", vlms=["clip"], random_state=rng).tables.get(
            "vlm_vs_unimodal")
        row["vlm"] = bool(v is not None and v["n_better_voxels"].iloc[0] > 0)
        for k, flag in row.items():
            rec.add(f"{k}:null_subjects", flag, "end_to_end")
        print(f"  end-to-end subject {s + 1}/{n} ({time.perf_counter() - t0:.0f} s): {row}", flush=True)


SECTIONS = {"polarity": polarity, "redundancy": redundancy, "spin": spin, "streams": streams,
            "end_to_end": end_to_end}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", choices=[*SECTIONS, "all"])
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    parser.add_argument("--n", type=int, default=None, help="replicates of each selected design")
    parser.add_argument("--designs", default=None, help="comma-separated designs of the section (default: all)")
    parser.add_argument("--pool", action="store_true", help="only summarise the replicates already in --out")
    parser.add_argument("--markdown", action="store_true", help="also print the pooled rates as Markdown rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="analyses_benchmark", help="folder of the SECTION.json(l) files")
    parser.add_argument("--memory", default=None, help="cache folder (surrogate banks, activations)")
    args = parser.parse_args(argv)
    names = list(SECTIONS) if args.section == "all" else [args.section]
    out_dir = Path(args.out)
    designs = None if args.designs is None else args.designs.split(",")
    missed = []
    for name in names:
        t0 = time.perf_counter()
        if not args.pool:
            rec = Recorder(out_dir, name, args.seed, args.quick)
            SECTIONS[name](args.quick, args.seed, args.memory, rec, n=args.n, designs=designs)
        payload = summarise(name, out_dir, args.quick)
        if args.quick:  # a smoke run: its counts are too small to judge the targets
            for val in payload.values():
                if isinstance(val, dict):
                    val.pop("meets_target", None)
        report(f"quick-{name}" if args.quick else name, payload, out_dir,
               None if args.pool else time.perf_counter() - t0)
        missed += [f"{name}:{k}" for k, v in payload.items() if isinstance(v, dict) and v.get("meets_target") is False]
        if args.markdown:
            print("\n".join(markdown_rows(name, payload)))
    if missed and not args.quick:
        print("targets missed:", missed)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
