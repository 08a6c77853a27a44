"""Architecture comparison (finding 4 of arXiv 2510.16870) as an analysis plugin."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scipy import stats as sps

from nilearn_vlm.analyses import (
    AnalysisResult,
    BaseAnalysis,
    FigureSpec,
    describe_groups,
    inference_table,
    network_membership,
    variance_partition,
)
from nilearn_vlm.stats import fdr
from nilearn_vlm_compare._paired import block_differences, sign_flip_test
from nilearn_vlm_compare._streams import (
    architecture_encoding_test,
    default_stream_pair,
    encoding_inputs,
    jackknife_variance,
    layer_strata,
    multimodal_roi,
    paired_encoding_test,
    paired_specificity_test,
    specificity,
)


def _label(res):
    return f"{res.model}/{res.subject}" if res.subject else str(res.model)


def _by_model(mapping, res, label, what):
    for key in (label, res.model):
        if key in mapping:
            return mapping[key]
    raise ValueError(f"{what} has no entry for {label!r}; give a dict keyed by model name (have {sorted(mapping)})")


def _run_t_interval(per_run, confidence):
    """Mean over runs and its t-interval on ``n_runs - 1`` degrees of freedom (columns: estimates per run)."""
    per_run = np.asarray(per_run, float)
    n = np.isfinite(per_run).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(per_run, axis=0) if per_run.size else np.nan
        se = np.nanstd(per_run, axis=0, ddof=1) / np.sqrt(n)
    q = sps.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1))
    half = np.where(n >= 2, q * se, np.nan)
    return mean, mean - half, mean + half


def _network_means(values, member):
    """Mean of ``values`` (..., n_voxels) over each network's finite voxels: (..., n_networks)."""
    v = np.asarray(values, float)
    fin = np.isfinite(v)
    m = member.T.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(fin, v, 0.0) @ m) / (fin.astype(float) @ m)


def compare_figures(out):
    """Figure specifications of a comparison: stream scores and specificity, VLM vs unimodal, layer curves.

    Parameters
    ----------
    out : AnalysisResult

    Returns
    -------
    list of nilearn_vlm.analyses.FigureSpec
    """
    specs = []
    si = out.tables.get("specificity")
    if si is not None and len(si):
        specs.append(FigureSpec(
            "bar", si[["model", "specificity", "low", "high"]], x="model", y="specificity", low="low", high="high",
            title="Modality specificity of the stream pair (1: separate towers, 0: unified)",
            ylabel="specificity index", reference=0.0, size=(5, 3.5),
        ))
    vu = out.tables.get("vlm_vs_unimodal")
    if vu is not None and len(vu):
        specs.append(FigureSpec(
            "bar", vu[["vlm", "roi_diff_r2", "low", "high"]], x="vlm", y="roi_diff_r2", low="low", high="high",
            title="VLM minus unimodal baseline in the multimodal region", ylabel="difference of held-out R^2",
            reference=0.0, size=(5, 3.5),
        ))
    diff = out.tables.get("score_difference")
    if diff is not None and len(diff):
        a, b = out.params.get("pair", ["A", "B"])
        specs.append(FigureSpec(
            "bar", diff[["network", "mean_diff"]], x="network", y="mean_diff",
            title="Score difference by network (descriptive)", ylabel=f"{a} minus {b} (encoder score)",
            reference=0.0,
        ))
    curves = out.tables.get("layer_curves")
    if curves is not None and len(curves):
        whole = curves[curves["network"] == "(all)"]
        tidy = whole.assign(series=whole["model"] + " " + whole["stream"])[["depth", "series", "mean", "low", "high"]]
        specs.append(FigureSpec(
            "line", tidy, x="depth", y="mean", hue="series", low="low", high="high",
            title="Per-layer scores (whole brain)", xlabel="fractional depth along the model (0 to 1]",
            ylabel="mean layer score",
        ))
    return specs


class CompareAnalysis(BaseAnalysis):
    """Compare two fitted models (e.g. CLIP and METER), a VLM against a unimodal baseline, and controls.

    Parts, each run when its inputs exist:

    1. **Modality specificity** (finding 4; block sums of per-stream
       held-out predictions, ``stream_block_sums``): per model, a vision-like
       and a text-like stream (CLIP's towers, METER's co-attention streams)
       and the index ``SI = (S_a(V) - S_a(L) - S_b(V) + S_b(L)) / (sum of the
       four)`` from each stream's within-run r over the vision (V) and
       language (L) networks (1: separate towers, 0: unified). The paired
       test of the two models (H0: equal specificity) resamples time blocks
       within runs (delete-one-block jackknife of both models on the same
       blocks) and adds each model's delete-one-layer jackknife variance
       (``stream_layer_r``): two draws of one architecture differ in which
       units they have, which time blocks cannot see. t with
       ``min(n_blocks, n_layers) - 1`` degrees of freedom.
    2. **VLM vs unimodal** (``baseline=``): in the multimodal region
       (STS/TPJ from Harvard-Oxford or HCP-MMP1, or ``roi=``), held-out
       squared errors of each VLM and of a dimension-matched baseline (all
       units reduced to the same number of components inside the training
       runs). The test (H0: the two *architectures* have equal expected
       held-out squared error, over time and over the draw of each model's
       units) adds to the delete-one-block jackknife of the paired
       difference each model's delete-one-layer jackknife
       (``stream_layer_sse["all"]``, stratified by stream); t on
       Welch-Satterthwaite dof per voxel (BH across the region's voxels) and
       for the region (the headline decision, with its interval of the R^2
       difference). The sign-flip tests of the per-block differences (all
       patterns) are kept as ``*_conditional`` columns: they hold for the
       two fitted models, not for their architectures. Two draws of one
       architecture (random weights with two seeds) are a null control of
       this test; as a scientific control a random-weight model is
       meaningful only against pretrained weights.
    3. **Paired voxelwise score differences** with FDR from ``predictions=``
       and ``bold=`` (block sign flips) or ``fold_scores=``; per-network mean
       differences of ``encoder_scores`` (descriptive).
    4. **Per-layer curves** (``layer_scores``) by fractional depth, with
       t-intervals over runs (``layer_fold_scores``, ``n_runs - 1`` dof).
    5. **Baselines** (descriptive per-network mean differences of
       ``encoder_scores``) and **controls** (variance partitioning against
       control features).

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.testing import analyses as sim
    >>> rng = np.random.default_rng(0)
    >>> runs = sim.run_labels()
    >>> src = sim.stimulus_sources(rng, runs)
    >>> brain = sim.compare_bold(src, rng, runs, n_roi=20, n_driven=5)
    >>> labels = np.where(brain["vision"], 1, np.where(brain["language"], 2, 0))
    >>> models = [sim.model_results(kind, *sim.model_units(kind, src, rng, units_per_layer=4), brain["Y"], runs,
    ...                             layer_jackknife=False, labels=labels) for kind in ("towers", "fused")]
    >>> out = CompareAnalysis().run(models, layer_jackknife=False)
    >>> out.stats["specificity:towers"] > 0.5 > out.stats["specificity:fused"]
    True
    """

    name = "compare"
    description = "two models: modality specificity of streams, VLM vs unimodal, score differences, layer curves"
    requires = (("stream_block_sums", "glm_sign_sets", "encoder_scores", "layer_scores"),)
    n_results = (2, None)

    def run(self, results, *, models=None, stream_pairs=None, networks=("vision", "language"),
            layer_jackknife=True, encoding_layer_jackknife=None, baseline=None, vlms=None, roi=None,
            roi_atlas="harvard_oxford", atlas=None,
            level="canonical", predictions=None, bold=None, runs=None, fold_scores=None, block_length=None,
            n_permutations=65536, alpha=0.05, confidence=0.95, integration_networks=None, features=None,
            controls=None, cv=None, random_state=0):
        """Run the analysis.

        Parameters
        ----------
        results : list of Results
            Two or more; the pair compared is ``models``, the rest baselines.
        models : tuple of two str or int, optional
            The pair (model names or positions); default the first two.
        stream_pairs : dict of str to (str, str), optional
            Vision-like and text-like stream per model; default the latest
            stream of each branch (:func:`default_stream_pair`).
        networks : tuple of two str, default=("vision", "language")
            Canonical networks V and L of the specificity index.
        layer_jackknife : bool, default=True
            Add the delete-one-layer variance of each model (needs
            ``stream_layer_r``); False tests time blocks only (calibrated for
            one fixed model, not for two draws of an architecture).
        encoding_layer_jackknife : bool or None, default=None
            The same for the VLM-vs-unimodal test (needs
            ``stream_layer_sse["all"]`` of the VLMs and the baseline); None
            follows ``layer_jackknife``. False: only the conditional
            sign-flip tests (the headline columns then hold them).
        baseline : str or int, optional
            The unimodal baseline result of the VLM-vs-unimodal test.
        vlms : list of str or int, optional
            VLMs tested against the baseline (default the pair).
        roi : array-like of bool (n_voxels,), optional
            The multimodal region; default STS/TPJ of ``roi_atlas``.
        roi_atlas : {"harvard_oxford", "hcp_mmp1"}
        atlas, level
            Networks (:func:`nilearn_vlm.analyses.network_membership`).
        predictions, bold, runs, fold_scores, block_length
            Paired voxelwise score differences (part 3).
        n_permutations : int, default=65536
            Sign patterns of the sign-flip tests (all when fewer exist).
        alpha : float, default=0.05
            FDR level.
        confidence : float, default=0.95
        integration_networks : list of str or None
            Networks summarised in the ``baseline_diff`` statistics.
        features, controls, cv
            Control partitioning (part 5).
        random_state : int or None

        Returns
        -------
        AnalysisResult
            Tables ``specificity``, ``stream_scores``, ``specificity_test``,
            ``vlm_vs_unimodal``, ``vlm_voxels``, ``inference``,
            ``voxel_differences``, ``score_difference``, ``layer_curves``,
            ``baselines``, ``controls`` (those whose inputs exist) and figures
            (:func:`compare_figures`).
        """
        results = self._checked(results)
        rng = np.random.default_rng(random_state)
        labels = [r.model for r in results]
        if len(set(labels)) < len(labels):  # the same model for several subjects
            labels = [_label(r) for r in results]
        if len(set(labels)) < len(labels):  # two draws of one model: numbered
            labels = [f"{lab}#{i}" for i, lab in enumerate(labels)]
        pair = self._pick(results, labels, models)
        a, b = results[pair[0]], results[pair[1]]
        la, lb = labels[pair[0]], labels[pair[1]]
        if a.n_voxels != b.n_voxels:
            raise ValueError(f"{la} has {a.n_voxels} voxels but {lb} {b.n_voxels}: fit both on the same mask")
        net_names, member = network_membership(a, atlas, level)
        params = dict(pair=[la, lb], atlas=atlas, level=level, alpha=alpha, n_permutations=n_permutations,
                      confidence=confidence, layer_jackknife=layer_jackknife, networks=list(networks),
                      integration_networks=integration_networks, random_state=random_state)
        out = AnalysisResult(self.name, params=params, models=labels)
        out.text = (f"Architecture comparison of {la} and {lb}: modality specificity of their vision-like and "
                    "text-like streams, a VLM against a dimension-matched unimodal baseline in multimodal regions, "
                    "score differences, per-layer curves, baselines and controls.")
        tests = []
        if a.stream_block_sums and b.stream_block_sums:
            tests += self._specificity(out, [a, b], [la, lb], stream_pairs, networks, net_names, member,
                                       layer_jackknife, confidence)
        else:
            out.notes.append("Modality specificity needs stream_block_sums of both models (pipeline.analysis_inputs); "
                             "skipped.")
        if baseline is not None:
            enc_jk = layer_jackknife if encoding_layer_jackknife is None else encoding_layer_jackknife
            out.params["encoding_layer_jackknife"] = bool(enc_jk)
            tests += self._vlm_vs_unimodal(out, results, labels, pair, baseline, vlms, roi, roi_atlas, alpha,
                                           n_permutations, confidence, rng, enc_jk)
        self._scores(out, a, b, la, lb, predictions, bold, runs, fold_scores, block_length, n_permutations, alpha,
                     net_names, member, rng)
        self._layers(out, results, labels, net_names, member, confidence)
        others = [i for i in range(len(results)) if i not in pair]
        if others:
            self._baselines(out, results, labels, pair, others, integration_networks, net_names, member)
        if controls is not None:
            self._controls(out, [la, lb], features, controls, bold, runs, cv, net_names, member)
        if tests:
            inference_table(out, tests)
        out.figures = compare_figures(out)
        return out

    @staticmethod
    def _pick(results, labels, models):
        if models is None:
            return (0, 1)
        if len(models) != 2:
            raise ValueError(f"models must name two results, got {models!r}")
        pick = []
        for m in models:
            if isinstance(m, (int, np.integer)):
                pick.append(int(m))
                continue
            hits = [i for i, (r, lab) in enumerate(zip(results, labels)) if m in (r.model, lab)]
            if len(hits) != 1:
                raise ValueError(f"model {m!r} matches {len(hits)} results; results are {labels}")
            pick.append(hits[0])
        return tuple(pick)

    @staticmethod
    def _specificity(out, models, labels, stream_pairs, networks, net_names, member, layer_jackknife, confidence):
        missing = [n for n in networks if n not in net_names]
        if missing:
            raise ValueError(f"networks {missing} are not among the results' networks {net_names}; pass networks=")
        vision, language = (member[net_names.index(n)] for n in networks)
        specs, rows, score_rows = {}, [], []
        for res, lab in zip(models, labels):
            pair = (stream_pairs or {}).get(lab) or (stream_pairs or {}).get(res.model) or default_stream_pair(res)
            sp = specificity(res, tuple(pair), vision, language, layer_jackknife)
            specs[lab] = sp
            low = high = np.nan
            if len(sp["jack"]) >= 2:
                se = np.sqrt(jackknife_variance(sp["jack"]) + sp["layer_var"])
                dof = int(min(len(sp["jack"]), sp["n_layers"]) - 1)
                q = sps.t.ppf(0.5 + confidence / 2, dof)
                low, high = sp["estimate"] - q * se, sp["estimate"] + q * se
            rows.append({"model": lab, "stream_a": pair[0], "stream_b": pair[1], "specificity": sp["estimate"],
                         "low": low, "high": high, "layer_var": sp["layer_var"]})
            out.stats[f"specificity:{lab}"] = sp["estimate"]
            for stream, r in sp["scores"].items():
                means = _network_means(r, member)
                for name, m in zip(net_names, means):
                    score_rows.append({"model": lab, "stream": stream, "network": name, "mean_r": float(m)})
        out.tables["specificity"] = pd.DataFrame(rows)
        out.tables["stream_scores"] = pd.DataFrame(score_rows)
        if models[0].block_runs is None or models[1].block_runs is None or \
                not np.array_equal(models[0].block_runs, models[1].block_runs) or \
                not np.allclose(models[0].bold_block_sums, models[1].bold_block_sums, equal_nan=True, atol=1e-3):
            raise ValueError(f"{labels[0]} and {labels[1]} were not fitted on the same BOLD and time blocks: the "
                             "paired test needs one subject's data for both models")
        t = paired_specificity_test(specs[labels[0]], specs[labels[1]], confidence)
        out.tables["specificity_test"] = pd.DataFrame([t])
        out.stats.update(specificity_diff=t["diff"], specificity_low=t["low"], specificity_high=t["high"],
                         p_specificity=t["p"])
        n_blocks = t["n_blocks"]
        unit = "time blocks within runs (delete-one-block jackknife, both models on the same blocks)"
        if layer_jackknife:
            unit += " plus each model's layers (delete-one-layer jackknife)"
        return [dict(test="specificity_difference",
                     null_hypothesis=f"{labels[0]} and {labels[1]} have the same modality specificity on this subject",
                     statistic="difference of SI = (S_a(V) - S_a(L) - S_b(V) + S_b(L)) / (sum of the four)",
                     resampling_unit=unit, n_resamples=int(n_blocks),
                     n_distinct_resamples=int(n_blocks + (specs[labels[0]]["n_layers"] + specs[labels[1]]["n_layers"]
                                                          if layer_jackknife else 0)),
                     correction="none (one test per stream pair)",
                     interval=f"jackknife t-interval, {t['dof']} dof")]

    @staticmethod
    def _vlm_vs_unimodal(out, results, labels, pair, baseline, vlms, roi, roi_atlas, alpha, n_permutations,
                         confidence, rng, layer_jackknife=True):
        pick = CompareAnalysis._pick
        base = pick(results, labels, (baseline, baseline))[0]
        tested = list(pair) if vlms is None else [pick(results, labels, (v, v))[0] for v in vlms]
        if roi is None:
            try:
                roi = multimodal_roi(results[base], roi_atlas)
            except (ValueError, ImportError) as exc:
                out.notes.append(f"VLM vs unimodal skipped: no ROI ({exc}); pass roi=")
                return []
        roi = np.asarray(roi, bool)
        sse_b, sst = encoding_inputs(results[base])
        if layer_jackknife:
            for i in {base, *tested}:
                if "all" not in results[i].stream_layer_sse:
                    raise ValueError(f"results of {labels[i]} lack stream_layer_sse['all'] (the delete-one-layer "
                                     "squared errors of all units): rerun the pipeline with pipeline.analysis_inputs "
                                     "= true, or pass encoding_layer_jackknife=False for the test conditional on "
                                     "the fitted models")
        rows, vox, tests = [], [], []
        for i in tested:
            if i == base:
                continue
            sse_a, sst_a = encoding_inputs(results[i])
            if not np.allclose(sst_a, sst, equal_nan=True, atol=1e-3):
                raise ValueError(f"{labels[i]} and the baseline {labels[base]} were not fitted on the same BOLD")
            c = paired_encoding_test(sse_a, sse_b, sst, roi, results[i].block_runs, alpha, n_permutations,
                                     confidence=confidence, random_state=rng)
            t = c
            if layer_jackknife:
                t = architecture_encoding_test(sse_a, sse_b, sst, roi, results[i].stream_layer_sse["all"],
                                               results[base].stream_layer_sse["all"], layer_strata(results[i]),
                                               layer_strata(results[base]), alpha, confidence=confidence)
            row = {"vlm": labels[i], "baseline": labels[base], "n_roi_voxels": int(roi.sum()),
                   "n_better_voxels": int(t["voxel_reject"].sum()), "roi_diff_r2": t["roi_diff_r2"],
                   "low": t["roi_low"], "high": t["roi_high"], "roi_p": t["roi_p"],
                   "dof": t.get("roi_dof", c["n_blocks"] - 1), "layer_var_vlm": t.get("roi_layer_var_a", 0.0),
                   "layer_var_baseline": t.get("roi_layer_var_b", 0.0),
                   "n_better_voxels_conditional": int(c["voxel_reject"].sum()), "roi_p_conditional": c["roi_p"],
                   "low_conditional": c["roi_low"], "high_conditional": c["roi_high"]}
            rows.append(row)
            vox.append(pd.DataFrame({"vlm": labels[i], "voxel": np.flatnonzero(roi), "diff_r2": t["voxel_diff_r2"],
                                     "p": t["voxel_p"], "q": t["voxel_q"], "significant": t["voxel_reject"],
                                     "p_conditional": c["voxel_p"], "significant_conditional": c["voxel_reject"]}))
            key = f"{labels[i]}-{labels[base]}"
            out.stats.update({f"n_better_voxels:{key}": row["n_better_voxels"], f"roi_diff_r2:{key}": t["roi_diff_r2"],
                              f"p_roi:{key}": t["roi_p"], f"p_roi_conditional:{key}": c["roi_p"]})
            conditional = dict(
                test=f"vlm_vs_unimodal_conditional:{labels[i]}",
                null_hypothesis=f"per voxel, the two fitted models {labels[i]} and {labels[base]} (these units, "
                                "not their architectures) have equal expected held-out squared error",
                statistic="sum over blocks of the per-block difference of squared errors (baseline minus VLM)",
                resampling_unit="signs of time blocks within runs (sign flips)", n_resamples=c["n_resamples"],
                n_distinct_resamples=int(2 ** c["n_blocks"]),
                correction="BH across the region's voxels; the region-level test is one test",
                interval=f"delete-one-block jackknife of the region's R^2 difference, t with {c['n_blocks'] - 1} dof")
            if not layer_jackknife:
                tests.append({**conditional, "test": f"vlm_vs_unimodal:{labels[i]}"})
                continue
            tests.append(dict(
                test=f"vlm_vs_unimodal:{labels[i]}",
                null_hypothesis=f"the architectures of {labels[i]} and of the unimodal baseline {labels[base]} have "
                                "equal expected held-out squared error on this subject, over time and over the draw "
                                "of each model's units (per voxel, and pooled over the region)",
                statistic="difference of held-out R^2 (VLM minus baseline), per voxel and over the region",
                resampling_unit="time blocks within runs (delete-one-block jackknife, both models on the same "
                                "blocks) plus each model's layers (delete-one-layer jackknife, stratified by stream)",
                n_resamples=int(t["n_blocks"] + t["n_layers_a"] + t["n_layers_b"]),
                n_distinct_resamples=int(t["n_blocks"] + t["n_layers_a"] + t["n_layers_b"]),
                correction="BH across the region's voxels; the region-level test (the headline) is one test",
                interval=f"jackknife t-interval of the region's R^2 difference, {t['roi_dof']:.1f} "
                         "Welch-Satterthwaite dof"))
            tests.append(conditional)
        if rows:
            out.tables["vlm_vs_unimodal"] = pd.DataFrame(rows)
            out.tables["vlm_voxels"] = pd.concat(vox, ignore_index=True)
        return tests

    @staticmethod
    def _scores(out, a, b, la, lb, predictions, bold, runs, fold_scores, block_length, n_permutations, alpha,
                net_names, member, rng):
        stat = pval = None
        if predictions is not None:
            if bold is None:
                raise ValueError("predictions= needs bold= (the held-out BOLD they predict)")
            pa, pb = (_by_model(predictions, r, lab, "predictions") for r, lab in ((a, la), (b, lb)))
            diffs, sst = block_differences(pa, pb, bold, runs, block_length)
            stat, pval = sign_flip_test(diffs, n_permutations, rng)
            stat = stat / np.where(sst > 0, sst, np.nan)  # R2(A) - R2(B)
            method = "block sign-flip of squared-error differences"
        elif fold_scores is not None:
            fa, fb = (np.asarray(_by_model(fold_scores, r, lab, "fold_scores"), dtype=float)
                      for r, lab in ((a, la), (b, lb)))
            if fa.shape != fb.shape:
                raise ValueError(f"fold_scores of the two models differ in shape: {fa.shape} vs {fb.shape}")
            stat, pval = sign_flip_test(fa - fb, n_permutations, rng)
            stat = stat / fa.shape[0]
            method = "sign-flip over folds"
        if stat is not None:
            reject, q = fdr(pval, alpha=alpha)
            out.tables["voxel_differences"] = pd.DataFrame({"voxel": np.arange(stat.size), "diff": stat, "p": pval,
                                                            "q": q, "significant": reject})
            out.stats["n_better_" + la] = int((reject & (stat > 0)).sum())
            out.stats["n_better_" + lb] = int((reject & (stat < 0)).sum())
            out.params["paired_test"] = method
        elif a.encoder_scores is None or b.encoder_scores is None:
            return
        diff = stat if a.encoder_scores is None or b.encoder_scores is None else a.encoder_scores - b.encoder_scores
        means = _network_means(diff, member)
        rows = []
        for k, (name, m) in enumerate(zip(net_names, member)):
            row = {"network": name, "mean_diff": float(means[k])}
            if stat is not None:
                row["n_better_a"] = int((reject[m] & (stat[m] > 0)).sum())
                row["n_better_b"] = int((reject[m] & (stat[m] < 0)).sum())
            rows.append(row)
        out.tables["score_difference"] = pd.DataFrame(rows)
        out.stats["mean_score_diff"] = rows[0]["mean_diff"]

    @staticmethod
    def _layers(out, results, labels, net_names, member, confidence):
        rows = []
        for res, lab in zip(results, labels):
            if not res.layer_scores:
                continue
            info = describe_groups(res, list(res.layer_scores))
            for layer, stream, depth in info[["group", "stream", "depth"]].itertuples(index=False):
                means = _network_means(res.layer_scores[layer], member)
                folds = res.layer_fold_scores.get(layer)
                low = high = np.full(len(net_names), np.nan)
                if folds is not None and folds.shape[0] >= 2:
                    _, low, high = _run_t_interval(_network_means(folds, member), confidence)
                for k, name in enumerate(net_names):
                    rows.append({"model": lab, "stream": stream, "layer": layer, "depth": depth, "network": name,
                                 "mean": float(means[k]), "low": float(low[k]), "high": float(high[k])})
        if rows:
            out.tables["layer_curves"] = pd.DataFrame(rows)

    @staticmethod
    def _baselines(out, results, labels, pair, others, integration_networks, net_names, member):
        rows = []
        keep = np.ones(member.shape[1], bool)
        if integration_networks is not None:
            unknown = set(integration_networks) - set(net_names)
            if unknown:
                raise ValueError(f"integration_networks {sorted(unknown)} not among the networks {net_names}")
            keep = member[[net_names.index(n) for n in integration_networks]].any(axis=0)
        for i in pair:
            for j in others:
                si, sj = results[i].encoder_scores, results[j].encoder_scores
                if si is None or sj is None:
                    continue
                d = si - sj
                means = _network_means(d, np.vstack([member, keep]))
                for k, (name, m) in enumerate(zip(net_names, member)):
                    rows.append({"model": labels[i], "baseline": labels[j], "network": name,
                                 "mean_diff": float(means[k]), "frac_model_better": float(np.mean(d[m] > 0))})
                out.stats[f"baseline_diff:{labels[i]}-{labels[j]}"] = float(means[-1])
        if rows:
            out.tables["baselines"] = pd.DataFrame(rows)

    @staticmethod
    def _controls(out, model_labels, features, controls, bold, runs, cv, net_names, member):
        if features is None or bold is None:
            raise ValueError("controls= needs features={model: (n_scans, p)} and bold= (n_scans, n_voxels)")
        if not isinstance(controls, dict) or not controls:
            raise ValueError("controls must be a dict of name -> (n_scans, k) arrays")
        rows = []
        for lab in model_labels:
            key = lab if lab in features else lab.split("/")[0]
            if key not in features:
                out.notes.append(f"No features for {lab}: control partitioning skipped for it.")
                continue
            groups = {"model": features[key], **{f"control:{k}": v for k, v in controls.items()}}
            parts = variance_partition(groups, bold, runs, cv)
            full = parts["full"]
            for name, m in zip(net_names, member):
                pred = m & (full > 0)
                den = full[pred].sum()
                for part in ["unique:model", "shared"] + [f"unique:control:{k}" for k in controls]:
                    rows.append({"model": lab, "network": name, "part": part.replace("unique:control:", "unique:"),
                                 "share": float(parts[part][pred].sum() / den) if den > 0 else np.nan,
                                 "mean": float(parts[part][pred].mean()) if pred.any() else np.nan})
            whole = [r for r in rows if r["model"] == lab and r["network"] == net_names[0]]
            out.stats[f"unique_share:{lab}"] = next(r["share"] for r in whole if r["part"] == "unique:model")
        if rows:
            out.tables["controls"] = pd.DataFrame(rows)
