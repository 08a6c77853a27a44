"""Architecture comparison (finding 4 of arXiv 2510.16870) as an analysis plugin."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nilearn_vlm.analyses import (
    AnalysisResult,
    BaseAnalysis,
    FigureSpec,
    bootstrap_sums,
    branch_of_stream,
    describe_groups,
    network_membership,
    percentile_interval,
    regressor_groups,
    variance_partition,
)
from nilearn_vlm.stats import fdr
from nilearn_vlm_compare._paired import block_differences, sign_flip_test


def _label(res):
    return f"{res.model}/{res.subject}" if res.subject else str(res.model)


def _by_model(mapping, res, label, what):
    for key in (label, res.model):
        if key in mapping:
            return mapping[key]
    raise ValueError(f"{what} has no entry for {label!r}; give a dict keyed by model name (have {sorted(mapping)})")


def masked_mean_ci(values, masks, n_bootstrap=2000, confidence=0.95, random_state=None, max_columns=256):
    """Mean of each column within each mask, with percentile bootstrap intervals over rows (voxels).

    Every (column, mask) pair is resampled with the same voxel draws
    (:func:`nilearn_vlm.analyses.bootstrap_sums`); NaN values are left out.

    Parameters
    ----------
    values : array-like, shape (n_voxels,) or (n_voxels, n_columns)
    masks : array-like of bool, shape (n_masks, n_voxels)
    n_bootstrap : int
    confidence : float
    random_state : int, Generator or None
    max_columns : int
        Columns resampled per matrix product (memory).

    Returns
    -------
    mean, low, high : ndarray, shape (n_columns, n_masks)
        NaN where a mask holds fewer than 2 finite values (no interval) or none.

    Examples
    --------
    >>> v = np.arange(6.0)
    >>> mean, low, high = masked_mean_ci(v, np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], bool), 500)
    >>> mean.tolist(), bool(low[0, 0] < 1 < high[0, 0])
    ([[1.0, 4.0]], True)
    """
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        v = v[:, None]
    masks = np.asarray(masks, dtype=bool)
    finite = np.isfinite(v)
    v0 = np.where(finite, v, 0.0)
    n_col, n_mask = v.shape[1], masks.shape[0]
    num = (v0[:, :, None] * masks.T[:, None, :]).reshape(v.shape[0], -1)  # (n_vox, n_col * n_mask)
    den = (finite[:, :, None] & masks.T[:, None, :]).reshape(v.shape[0], -1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (num.sum(0) / den.sum(0)).reshape(n_col, n_mask)
    seed = int(np.random.default_rng(random_state).integers(2**32))
    low = np.full(num.shape[1], np.nan)
    high = np.full(num.shape[1], np.nan)
    shared_den = bool(finite.all())  # then the counts are the masks': resample them once
    if shared_den:
        den_boot = bootstrap_sums(masks.T.astype(float), n_bootstrap, seed)  # (n_bootstrap, n_mask)
    for start in range(0, num.shape[1], max_columns):
        sl = slice(start, start + max_columns)
        cols = np.arange(num.shape[1])[sl]
        if shared_den:
            sums = bootstrap_sums(num[:, sl], n_bootstrap, seed)
            denom = den_boot[:, cols % n_mask]
        else:
            both = bootstrap_sums(np.hstack([num[:, sl], den[:, sl]]), n_bootstrap, seed)
            sums, denom = both[:, :cols.size], both[:, cols.size:]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = sums / denom
        low[sl], high[sl] = percentile_interval(ratio, confidence)
    few = (den.sum(0) < 2).reshape(n_col, n_mask)
    low, high = low.reshape(n_col, n_mask), high.reshape(n_col, n_mask)
    low[few] = high[few] = np.nan
    return mean, low, high


def _dice_diff_stat(sample, axis=0):
    s = sample.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2 * s[..., 0] / s[..., 1] - 2 * s[..., 2] / s[..., 3]


def branch_maps(results, branches=None, n_per_branch=None, rng=None):
    """Union of the significant voxels of each branch's regressors.

    Parameters
    ----------
    results : Results
    branches : dict or None
        Branch to stream names (see :func:`nilearn_vlm.analyses.branch_of_stream`).
    n_per_branch : dict of str to int, optional
        Use a random subset of this many regressors per branch (matched unit
        counts across models).
    rng : numpy Generator or None

    Returns
    -------
    maps : dict of str to ndarray of bool (n_voxels,)
        ``"vision"`` and ``"text"``.
    counts : dict of str to int
        Regressors of each branch (before subsampling).
    """
    streams = regressor_groups(results, "stream")
    branch = np.asarray([branch_of_stream(s, branches) for s in streams])
    sig = results.glm_sign_sets != 0
    maps, counts = {}, {}
    rng = np.random.default_rng(rng)
    for b in ("vision", "text"):
        idx = np.flatnonzero(branch == b)
        counts[b] = int(idx.size)
        if n_per_branch is not None and idx.size > n_per_branch[b]:
            idx = np.sort(rng.choice(idx, n_per_branch[b], replace=False))
        maps[b] = sig[idx].any(axis=0) if idx.size else np.zeros(sig.shape[1], bool)
    return maps, counts


def compare_figures(out):
    """Figure specifications of a comparison: modality specificity, score differences, layer curves.

    Parameters
    ----------
    out : AnalysisResult

    Returns
    -------
    list of nilearn_vlm.analyses.FigureSpec
    """
    specs = []
    msi = out.tables.get("modality_specificity")
    if msi is not None and len(msi):
        specs.append(FigureSpec(
            "bar", msi[["network", "model", "msi"]], x="network", y="msi", hue="model",
            title="Modality-specificity index (vision-text overlap) by network",
            ylabel="Dice(vision, text): low = specific, high = unified",
        ))
    diff = out.tables.get("score_difference")
    if diff is not None and len(diff):
        a, b = out.params.get("pair", ["A", "B"])
        specs.append(FigureSpec(
            "bar", diff[["network", "mean_diff", "low", "high"]], x="network", y="mean_diff", low="low", high="high",
            title="Paired score difference by network", ylabel=f"{a} minus {b} (encoder score)", reference=0.0,
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
    """Compare two fitted models (e.g. CLIP and METER), with baselines and controls.

    Parts, each run when its inputs exist:

    1. **Modality specificity** (``glm_sign_sets`` of both models): per
       network the Dice overlap of the vision-branch and text-branch
       significant voxels (low: modality-specific; high: unified), with unit
       counts matched by subsampling each branch to the smaller model's count;
       the difference between the models with a bootstrap interval over voxels.
    2. **Paired voxelwise score differences** with FDR: from held-out
       ``predictions`` and ``bold`` (sign flips of blocks of time: squared
       error differences per block), or from per-fold scores
       (``fold_scores``: sign flips over folds); per network the mean
       difference of ``encoder_scores`` with a bootstrap interval.
    3. **Per-layer curves** (``layer_scores``) per model, stream and network,
       with bootstrap intervals over voxels, against the fractional depth of the layer
       along the model (:mod:`nilearn_vlm.units`).
    4. **Baselines**: every other result (e.g. ViT, RoBERTa) against each of
       the two models, as paired per-network differences of
       ``encoder_scores``.
    5. **Controls** (``features``, ``controls``, ``bold``): variance
       partitioning of each model's features against control features
       (low-level stimulus features from :func:`lowlevel_features`, the same
       architecture with random weights, ...); the model's unique share per
       network.

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.results import Results
    >>> names = ["vision.0.attn_out.0", "text.0.attn_out.0"]
    >>> towers = Results("clip", glm_sign_sets=np.array([[1] * 5 + [0] * 5, [0] * 5 + [1] * 5]),
    ...                  regressor_names=names)
    >>> fused = Results("meter", glm_sign_sets=np.array([[1] * 5 + [0] * 5, [1] * 5 + [0] * 5]),
    ...                 regressor_names=names)
    >>> out = CompareAnalysis().run([towers, fused], n_bootstrap=100)
    >>> out.stats["msi:clip"], out.stats["msi:meter"]
    (0.0, 1.0)
    """

    name = "compare"
    description = "two models: modality specificity, paired score differences, layer curves, baselines, controls"
    requires = (("glm_sign_sets", "encoder_scores", "layer_scores"),)
    n_results = (2, None)

    def run(self, results, *, models=None, branches=None, match_units="subsample", atlas=None,
            level="canonical", predictions=None, bold=None, runs=None, fold_scores=None, block_length=None,
            n_permutations=5000, alpha=0.05, n_bootstrap=2000, confidence=0.95,
            integration_networks=None, features=None, controls=None, cv=None, random_state=0):
        """Run the analysis.

        Parameters
        ----------
        results : list of Results
            Two or more; the pair compared is ``models`` and the rest are
            baselines.
        models : tuple of two str or int, optional
            The pair (model names or positions); default the first two.
        branches : dict or None
            Branch to stream names; default vision/cross_image -> vision,
            text/cross_text -> text.
        match_units : {"subsample", "error", "none"}, default="subsample"
            Regressor counts per branch must match between the two models:
            subsample the larger, raise, or ignore.
        atlas, level
            Networks (:func:`nilearn_vlm.analyses.network_membership`).
        predictions : dict of str to array (n_scans, n_voxels), optional
            Held-out predictions per model name (or ``model/subject`` label),
        with ``bold``.
        bold : array-like (n_scans, n_voxels), optional
        runs : array-like (n_scans,), optional
        fold_scores : dict of str to array (n_folds, n_voxels), optional
            Per-fold scores per model name (used when no predictions).
        block_length : int or None
            Scans per block for the paired test (default sqrt of run length).
        n_permutations : int, default=5000
        alpha : float, default=0.05
            FDR level.
        n_bootstrap : int, default=2000
        confidence : float, default=0.95
        integration_networks : list of str or None
            Networks summarised in the ``baseline_diff`` statistics (default
            every voxel).
        features : dict of str to array (n_scans, p), optional
            Unit time courses per model name, for the controls.
        controls : dict of str to array (n_scans, k), optional
            Control features (e.g. ``{"lowlevel": ..., "random_weights": ...}``).
        cv : optional
            Folds of the control fits.
        random_state : int or None

        Returns
        -------
        AnalysisResult
            Tables ``modality_specificity``, ``specificity_difference``,
            ``voxel_differences``, ``score_difference``, ``layer_curves``,
            ``baselines``, ``controls`` (those whose inputs exist) and
            figures (:func:`compare_figures`).
        """
        results = self._checked(results)
        if match_units not in ("subsample", "error", "none"):
            raise ValueError(f"match_units must be 'subsample', 'error' or 'none', got {match_units!r}")
        rng = np.random.default_rng(random_state)
        labels = [r.model for r in results]
        if len(set(labels)) < len(labels):  # the same model for several subjects
            labels = [_label(r) for r in results]
        pair = self._pick(results, labels, models)
        a, b = results[pair[0]], results[pair[1]]
        la, lb = labels[pair[0]], labels[pair[1]]
        if a.n_voxels != b.n_voxels:
            raise ValueError(f"{la} has {a.n_voxels} voxels but {lb} {b.n_voxels}: fit both on the same mask")
        net_names, member = network_membership(a, atlas, level)
        params = dict(pair=[la, lb], match_units=match_units, atlas=atlas, level=level, alpha=alpha,
                      n_permutations=n_permutations, n_bootstrap=n_bootstrap, confidence=confidence,
                      integration_networks=integration_networks, random_state=random_state)
        out = AnalysisResult(self.name, params=params, models=labels)
        out.text = (
            f"Architecture comparison of {la} and {lb}: overlap of vision- and text-branch maps per network "
            "(modality specificity), paired voxelwise score differences with FDR, per-layer curves, "
            "baselines and controls."
        )
        ctx = dict(net_names=net_names, member=member, rng=rng, n_bootstrap=n_bootstrap, confidence=confidence)
        if a.glm_sign_sets is not None and b.glm_sign_sets is not None:
            self._specificity(out, a, b, la, lb, branches, match_units, **ctx)
        else:
            out.notes.append("Modality specificity needs glm_sign_sets of both models; skipped.")
        self._scores(out, a, b, la, lb, predictions, bold, runs, fold_scores, block_length, n_permutations,
                     alpha, **ctx)
        self._layers(out, results, labels, **ctx)
        others = [i for i in range(len(results)) if i not in pair]
        if others:
            self._baselines(out, results, labels, pair, others, integration_networks, **ctx)
        if controls is not None:
            self._controls(out, [la, lb], features, controls, bold, runs, cv, net_names, member)
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
    def _specificity(out, a, b, la, lb, branches, match_units, net_names, member, rng, n_bootstrap,
                     confidence):
        _, ca = branch_maps(a, branches)
        _, cb = branch_maps(b, branches)
        for model, counts in ((la, ca), (lb, cb)):
            missing = [k for k, v in counts.items() if v == 0]
            if missing:
                raise ValueError(
                    f"{model} has no regressors in the {missing} branch: name streams vision/text "
                    "(or pass branches={'vision': [...], 'text': [...]})"
                )
        n = None
        if ca != cb:
            if match_units == "error":
                raise ValueError(f"unit counts per branch differ: {la} {ca}, {lb} {cb}; use match_units='subsample'")
            if match_units == "subsample":
                n = {k: min(ca[k], cb[k]) for k in ca}
                out.notes.append(f"Branches subsampled to matched regressor counts {n}.")
        maps = {la: branch_maps(a, branches, n, rng)[0], lb: branch_maps(b, branches, n, rng)[0]}
        rows, diff_rows = [], []
        for name, m in zip(net_names, member):
            for model, mp in maps.items():
                v, t = mp["vision"][m], mp["text"][m]
                denom = v.sum() + t.sum()
                msi = 2 * (v & t).sum() / denom if denom else np.nan
                rows.append({"model": model, "network": name, "n_vision": int(v.sum()), "n_text": int(t.sum()),
                             "n_both": int((v & t).sum()), "msi": float(msi),
                             "selectivity": float((v.sum() - t.sum()) / denom) if denom else np.nan})
            va, ta, vb, tb = (maps[la]["vision"][m], maps[la]["text"][m], maps[lb]["vision"][m], maps[lb]["text"][m])
            data = np.stack([va & ta, va.astype(int) + ta, vb & tb, vb.astype(int) + tb], axis=1).astype(np.float32)
            est = float(_dice_diff_stat(data))
            low = high = np.nan
            if data.shape[0] >= 2 and np.isfinite(est):
                low, high = percentile_interval(_dice_diff_stat(
                    bootstrap_sums(data, n_bootstrap, rng)[:, None, :], axis=1), confidence)
            diff_rows.append({"network": name, "msi_diff": est, "low": float(low), "high": float(high)})
        out.tables["modality_specificity"] = pd.DataFrame(rows)
        out.tables["specificity_difference"] = pd.DataFrame(diff_rows)
        table = out.tables["modality_specificity"]
        whole = table[table["network"] == net_names[0]].set_index("model")["msi"]
        out.stats[f"msi:{la}"] = float(whole[la])
        out.stats[f"msi:{lb}"] = float(whole[lb])
        out.stats["msi_diff"] = diff_rows[0]["msi_diff"]
        out.stats["msi_diff_low"], out.stats["msi_diff_high"] = diff_rows[0]["low"], diff_rows[0]["high"]

    @staticmethod
    def _scores(out, a, b, la, lb, predictions, bold, runs, fold_scores, block_length, n_permutations, alpha,
                net_names, member, rng, n_bootstrap, confidence):
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
            out.notes.append("Score differences need encoder_scores, predictions= with bold=, or fold_scores=; "
                             "skipped.")
            return
        else:
            out.notes.append("Voxelwise paired test needs predictions= with bold=, or fold_scores=; only "
                             "per-network mean differences are given.")
        diff = stat if a.encoder_scores is None or b.encoder_scores is None else a.encoder_scores - b.encoder_scores
        rows = []
        means, lows, highs = masked_mean_ci(diff, member, n_bootstrap, confidence, rng)
        for k, (name, m) in enumerate(zip(net_names, member)):
            mean, low, high = means[0, k], lows[0, k], highs[0, k]
            row = {"network": name, "mean_diff": mean, "low": low, "high": high}
            if stat is not None:
                row["n_better_a"] = int((reject[m] & (stat[m] > 0)).sum())
                row["n_better_b"] = int((reject[m] & (stat[m] < 0)).sum())
            rows.append(row)
        out.tables["score_difference"] = pd.DataFrame(rows)
        out.stats["mean_score_diff"] = rows[0]["mean_diff"]

    @staticmethod
    def _layers(out, results, labels, net_names, member, rng, n_bootstrap, confidence):
        rows = []
        for res, lab in zip(results, labels):
            if not res.layer_scores:
                continue
            info = describe_groups(res, list(res.layer_scores))
            order = info["group"].tolist()
            means, lows, highs = masked_mean_ci(np.stack([res.layer_scores[k] for k in order], axis=1), member,
                                                n_bootstrap, confidence, rng)
            for i, (layer, stream, depth) in enumerate(info[["group", "stream", "depth"]].itertuples(index=False)):
                for k, name in enumerate(net_names):
                    rows.append({"model": lab, "stream": stream, "layer": layer, "depth": depth, "network": name,
                                 "mean": means[i, k], "low": lows[i, k], "high": highs[i, k]})
        if rows:
            out.tables["layer_curves"] = pd.DataFrame(rows)

    @staticmethod
    def _baselines(out, results, labels, pair, others, integration_networks, net_names, member, rng,
                   n_bootstrap, confidence):
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
                    out.notes.append(f"No encoder_scores for {labels[i]} or {labels[j]}: baseline skipped.")
                    continue
                d = si - sj
                means, lows, highs = masked_mean_ci(d, np.vstack([member, keep]), n_bootstrap, confidence, rng)
                for k, (name, m) in enumerate(zip(net_names, member)):
                    rows.append({"model": labels[i], "baseline": labels[j], "network": name,
                                 "mean_diff": means[0, k], "low": lows[0, k], "high": highs[0, k],
                                 "frac_model_better": float(np.mean(d[m] > 0))})
                out.stats[f"baseline_diff:{labels[i]}-{labels[j]}"] = float(means[0, -1])
                out.stats[f"baseline_low:{labels[i]}-{labels[j]}"] = float(lows[0, -1])
                out.stats[f"baseline_high:{labels[i]}-{labels[j]}"] = float(highs[0, -1])
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
