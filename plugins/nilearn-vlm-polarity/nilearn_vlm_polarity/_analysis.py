"""Polarity (finding 3 of arXiv 2510.16870) as an analysis plugin."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from nilearn_vlm.analyses import (
    AnalysisResult,
    BaseAnalysis,
    FigureSpec,
    bootstrap_sums,
    describe_groups,
    network_membership,
    percentile_interval,
    regressor_groups,
)
from nilearn_vlm.stats import bootstrap_ci
from nilearn_vlm.units import group_table, unit_groups


def _corr_last(a, b, method="pearson"):
    """Correlation of ``a`` and ``b`` along the last axis (NaN when one is constant)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if method == "spearman":
        a, b = rankdata(a, axis=-1), rankdata(b, axis=-1)
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(-1) / np.where(den > 0, den, 1), np.nan)


def mirrored_trend(pos_curve, neg_curve, method="pearson"):
    """Mirrored-trend statistics of a positive and a negative layer curve.

    Parameters
    ----------
    pos_curve, neg_curve : array-like, shape (n_layers,)
        E.g. the number of positively and negatively driven voxels per layer.
    method : {"pearson", "spearman"}

    Returns
    -------
    r : float
        Correlation across layers (-1: perfectly mirrored).
    opposite_steps : float
        Fraction of consecutive layer steps where the two curves move in
        opposite directions (steps where either is flat are left out; NaN when
        all are).

    Examples
    --------
    >>> r, steps = mirrored_trend([1, 2, 3, 4], [8, 6, 5, 1])
    >>> round(r, 3), steps
    (-0.965, 1.0)
    """
    r = float(_corr_last(pos_curve, neg_curve, method))
    dp, dn = np.sign(np.diff(pos_curve)), np.sign(np.diff(neg_curve))
    moving = (dp != 0) & (dn != 0)
    steps = float(np.mean(dp[moving] != dn[moving])) if moving.any() else float("nan")
    return r, steps


def _layer_permutation_p(pos_curve, neg_curve, method, n_permutations, rng):
    """One-sided p-value of the mirror correlation against random layer orders."""
    r = _corr_last(pos_curve, neg_curve, method)
    if not np.isfinite(r) or n_permutations < 1:
        return float("nan")
    neg = np.asarray(neg_curve, dtype=float)
    perms = np.argsort(rng.random((n_permutations, neg.size)), axis=1)
    null = _corr_last(np.broadcast_to(np.asarray(pos_curve, float), perms.shape), neg[perms], method)
    return float((1 + np.sum(null <= r + 1e-12)) / (1 + n_permutations))


def polarity_figures(out):
    """Figure specifications of a polarity result: positive and negative curves per stream (whole brain).

    Parameters
    ----------
    out : AnalysisResult
        With the tables ``layer_curves`` and ``mirrored_trend``.

    Returns
    -------
    list of nilearn_vlm.analyses.FigureSpec
    """
    specs = []
    curves = out.tables.get("layer_curves")
    trend = out.tables.get("mirrored_trend")
    if curves is None or not len(curves):
        return specs
    unit = "fraction of the network's voxels" if out.params.get("measure") == "fraction" else "voxels"
    for stream, c in curves[curves["network"] == "(all)"].groupby("stream", sort=False):
        tidy = pd.concat([
            pd.DataFrame({"depth": c["depth"], "sign": "positive", "value": c["n_pos"]}),
            pd.DataFrame({"depth": c["depth"], "sign": "negative", "value": c["n_neg"]}),
        ], ignore_index=True)
        note = ""
        if trend is not None:
            t = trend[(trend["stream"] == stream) & (trend["network"] == "(all)")]
            if len(t):
                t = t.iloc[0]
                note = f"r = {t['r']:.2f} [{t['low']:.2f}, {t['high']:.2f}]"
        specs.append(FigureSpec(
            "line", tidy, x="depth", y="value", hue="sign", colors={"positive": "tab:red", "negative": "tab:blue"},
            title=f"Positive and negative voxels across layers: {stream}", xlabel="fractional depth along the model (0 to 1]",
            ylabel=unit, note=note, size=(5, 3.5),
        ))
    return specs


#: Units (largest absolute loading) per atom whose map correlations are compared.
_MAX_PAIR_UNITS = 64


class PolarityAnalysis(BaseAnalysis):
    """Polarity: positively and negatively driven voxels and units across layers.

    Parts:

    1. **Brain side.** Per layer (regressors grouped by ``stream.layer``),
       stream and network, the voxels with a significantly positive
       (``n_pos``) and negative (``n_neg``) effect of any regressor of the
       layer (``glm_sign_sets``).
    2. **Mirrored trend.** Per stream and network, the correlation across
       layers between the positive and the negative curves (about -1 when
       mirrored), with a percentile bootstrap interval
       (:func:`nilearn_vlm.stats.bootstrap_ci`) over voxels, or over folds
       when ``fold_sign_sets`` are given (the uncertainty of the curves given
       the layers); a one-sided p-value ``p_mirror`` against random layer
       orders of the negative curve (is the mirroring more than chance?); and
       the fraction of layer steps where the curves move in opposite
       directions.
    3. **Neuron side.** Units with positive and negative loadings per layer
       (``atom_loadings``: each unit's sign is that of its largest absolute
       loading), and whether units of opposite loading sign within an atom
       drive opposite voxels: the mean correlation of the signed unit maps of
       opposite-sign pairs against that of same-sign pairs (``opposition`` =
       same minus opposite; about 2 when mirrored, 0 when unrelated). Unit
       maps come from ``unit_maps=`` or the results' ``unit_voxel_topk``.
    4. **Sign consistency** (with ``fold_sign_sets``): for every significant
       regressor-voxel effect, the fraction of folds or runs whose sign agrees
       with the full fit, per network.

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.results import Results
    >>> sets = np.zeros((4, 100), np.int8)
    >>> for l in range(4):
    ...     sets[l, : 10 * (l + 1)] = 1
    ...     sets[l, 50: 50 + 10 * (4 - l)] = -1
    >>> res = Results("toy", glm_sign_sets=sets, regressor_names=[f"vision.{l}.attn_out.0" for l in range(4)])
    >>> out = PolarityAnalysis().run(res, n_bootstrap=200)
    >>> round(out.stats["mirror_r:vision"], 3)
    -1.0
    """

    name = "polarity"
    description = "positive vs negative voxels and units across layers; mirrored trends"
    requires = ("glm_sign_sets",)
    n_results = (1, 1)

    def run(self, results, *, groups=None, atlas=None, level="canonical", measure="count",
            method="pearson", n_bootstrap=2000, confidence=0.95, n_permutations=10000,
            fold_sign_sets=None, unit_maps=None, min_layers=3, random_state=0):
        """Run the analysis.

        Parameters
        ----------
        results : Results
        groups : array-like of str or None
            ``stream.layer`` per regressor (default from unit names or the
            atoms' dominant layer).
        atlas, level
            Networks (:func:`nilearn_vlm.analyses.network_membership`).
        measure : {"count", "fraction"}, default="count"
            Curves as voxel counts or as fractions of the network's voxels.
        method : {"pearson", "spearman"}, default="pearson"
        n_bootstrap : int, default=2000
        confidence : float, default=0.95
        n_permutations : int, default=10000
            Random layer orders of the negative curve for the null of the
            mirror correlation (``p_mirror``, one-sided: more negative than
            chance).
        fold_sign_sets : array-like (n_folds, n_regressors, n_voxels) or None
            Signed maps (or betas/t: their sign is used) of each fold or run:
            bootstrap over folds and sign consistency.
        unit_maps : array-like (n_units, n_voxels) or None
            Signed unit-to-voxel maps (e.g. correlations); default from
            ``unit_voxel_topk``.
        min_layers : int, default=3
            Streams with fewer layers get no mirrored-trend statistic.
        random_state : int or None

        Returns
        -------
        AnalysisResult
            Tables ``layer_curves``, ``stream_counts``, ``mirrored_trend``,
            ``unit_signs``, ``unit_pairs``, ``sign_consistency`` (those whose
            inputs exist) and figures (:func:`polarity_figures`).
        """
        res = self._one(results)
        if measure not in ("count", "fraction"):
            raise ValueError(f"measure must be 'count' or 'fraction', got {measure!r}")
        if method not in ("pearson", "spearman"):
            raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
        sign = res.glm_sign_sets
        layers = regressor_groups(res, "layer", groups)
        net_names, member = network_membership(res, atlas, level)
        folds = None
        if fold_sign_sets is not None:
            folds = np.sign(np.nan_to_num(np.asarray(fold_sign_sets, dtype=float))).astype(np.int8)
            if folds.ndim != 3 or folds.shape[1:] != sign.shape:
                raise ValueError(
                    f"fold_sign_sets must be (n_folds, {sign.shape[0]}, {sign.shape[1]}) like glm_sign_sets; "
                    f"got {folds.shape}"
                )
        params = dict(atlas=atlas, level=level, measure=measure, method=method, n_bootstrap=n_bootstrap,
                      n_permutations=n_permutations,
                      confidence=confidence, min_layers=min_layers, random_state=random_state,
                      bootstrap="folds" if folds is not None else "voxels")
        out = AnalysisResult(self.name, params=params, models=[f"{res.model}/{res.subject}".rstrip("/")])
        out.text = (
            "Polarity: voxels driven positively and negatively by each layer's regressors, per stream and "
            f"network; the mirrored-trend statistic is the {method} correlation across layers of the positive "
            f"and negative curves with a {confidence:.0%} bootstrap interval over {params['bootstrap']}."
        )
        info = describe_groups(res, layers)
        order = info["group"].tolist()
        depth = dict(zip(order, info["depth"]))
        pos = np.vstack([(sign[layers == lab] > 0).any(axis=0) for lab in order])  # (L, v)
        neg = np.vstack([(sign[layers == lab] < 0).any(axis=0) for lab in order])
        size = member.sum(axis=1).astype(float)
        scale = (1.0 / np.where(size > 0, size, np.nan)) if measure == "fraction" else np.ones(len(net_names))
        n_pos = pos.astype(float) @ member.T.astype(float) * scale  # (L, networks)
        n_neg = neg.astype(float) @ member.T.astype(float) * scale
        streams = info["stream"].tolist()
        rows = []
        for i, lab in enumerate(order):
            for j, net in enumerate(net_names):
                rows.append({"stream": streams[i], "layer": lab, "depth": depth[lab], "network": net,
                             "n_pos": n_pos[i, j], "n_neg": n_neg[i, j]})
        out.tables["layer_curves"] = pd.DataFrame(rows)
        stream_of = info.set_index("group")["stream"].loc[list(layers)].to_numpy()
        srows = []
        for stream in dict.fromkeys(streams):
            sp = (sign[stream_of == stream] > 0).any(axis=0)
            sn = (sign[stream_of == stream] < 0).any(axis=0)
            for j, net in enumerate(net_names):
                srows.append({"stream": stream, "network": net, "n_pos": (sp & member[j]).sum() * scale[j],
                              "n_neg": (sn & member[j]).sum() * scale[j],
                              "n_both": (sp & sn & member[j]).sum() * scale[j]})
        out.tables["stream_counts"] = pd.DataFrame(srows)
        out.tables["mirrored_trend"] = self._trend(out, pos, neg, folds, layers, order, streams, net_names,
                                                   member, method, n_bootstrap, confidence, min_layers,
                                                   random_state, n_permutations)
        self._neuron_side(out, res, unit_maps, method)
        if folds is not None:
            self._consistency(out, sign, folds, net_names, member)
        else:
            out.notes.append("Sign consistency needs fold_sign_sets= (n_folds, n_regressors, n_voxels); skipped.")
        out.figures = polarity_figures(out)
        return out

    @staticmethod
    def _trend(out, pos, neg, folds, layers, order, streams, net_names, member, method, n_bootstrap,
               confidence, min_layers, random_state, n_permutations):
        rng = np.random.default_rng(random_state)
        combos, columns = [], []
        for stream in dict.fromkeys(streams):
            idx = [i for i, s in enumerate(streams) if s == stream]
            if len(idx) < min_layers:
                out.notes.append(f"Stream {stream!r} has {len(idx)} layers (< min_layers={min_layers}): "
                                 "no mirrored-trend statistic.")
                continue
            for j in range(len(net_names)):
                combos.append((stream, j, idx))
        if not combos:
            return pd.DataFrame(columns=["stream", "network", "n_layers", "r", "low", "high", "p_mirror",
                                         "opposite_steps"])
        if folds is not None:
            # rows = folds: each fold's own curves, resampled with the core bootstrap
            boot = {}
            for stream, j, idx in combos:
                m = member[j]
                curves = np.stack([
                    np.stack([[(f[layers == order[i]] > 0).any(0)[m].sum() for i in idx],
                              [(f[layers == order[i]] < 0).any(0)[m].sum() for i in idx]])
                    for f in folds]).astype(float)  # (n_folds, 2, L)
                ci = bootstrap_ci(curves, statistic=lambda x, axis=0: _corr_last(
                    x.sum(axis)[..., 0, :], x.sum(axis)[..., 1, :], method),
                    n_bootstrap=n_bootstrap, confidence=confidence, random_state=rng)
                boot[(stream, j)] = ci.distribution
        else:
            # rows = voxels: one matrix product gives every curve of every replicate
            for stream, j, idx in combos:
                m = member[j][:, None]
                columns.append(pos[idx].T & m)
                columns.append(neg[idx].T & m)
            sums = bootstrap_sums(np.hstack(columns).astype(np.float32), n_bootstrap, rng)
            boot, start = {}, 0
            for stream, j, idx in combos:
                n_l = len(idx)
                bp, bn = sums[:, start:start + n_l], sums[:, start + n_l:start + 2 * n_l]
                boot[(stream, j)] = _corr_last(bp, bn, method)
                start += 2 * n_l
        rows = []
        for stream, j, idx in combos:
            net, m = net_names[j], member[j]
            curve_p, curve_n = pos[idx][:, m].sum(1), neg[idx][:, m].sum(1)
            r, steps = mirrored_trend(curve_p, curve_n, method)
            low, high = (np.nan, np.nan)
            if np.isfinite(r):
                low, high = percentile_interval(boot[(stream, j)], confidence)
            p_mirror = _layer_permutation_p(curve_p, curve_n, method, n_permutations, rng)
            rows.append({"stream": stream, "network": net, "n_layers": len(idx), "r": r,
                         "low": float(low), "high": float(high), "p_mirror": p_mirror,
                         "opposite_steps": steps})
            if j == 0:
                out.stats[f"mirror_r:{stream}"] = r
                out.stats[f"mirror_low:{stream}"] = float(low)
                out.stats[f"mirror_high:{stream}"] = float(high)
                out.stats[f"p_mirror:{stream}"] = p_mirror
                out.stats[f"opposite_steps:{stream}"] = steps
        return pd.DataFrame(rows, columns=["stream", "network", "n_layers", "r", "low", "high", "p_mirror",
                                           "opposite_steps"])

    @staticmethod
    def _neuron_side(out, res, unit_maps, method):
        if res.atom_loadings is None or res.units is None:
            out.notes.append("Neuron-side polarity needs atom_loadings and unit_names; skipped.")
            return
        load = res.atom_loadings
        dominant = load[np.abs(load).argmax(axis=0), np.arange(load.shape[1])]
        unit_sign = np.sign(dominant)
        layer = unit_groups(res.units, by="layer")
        rows = []
        for lab, stream in group_table(res.units, "layer")[["group", "stream"]].itertuples(index=False):
            sel = layer == lab
            rows.append({"stream": stream, "layer": lab, "n_units": int(sel.sum()),
                         "n_pos_units": int((unit_sign[sel] > 0).sum()),
                         "n_neg_units": int((unit_sign[sel] < 0).sum())})
        out.tables["unit_signs"] = pd.DataFrame(rows)
        out.stats["n_pos_units"] = int((unit_sign > 0).sum())
        out.stats["n_neg_units"] = int((unit_sign < 0).sum())
        maps = unit_maps
        if maps is None and res.unit_voxel_topk is not None:
            from scipy import sparse

            idx, val = np.asarray(res.unit_voxel_topk["index"]), np.asarray(res.unit_voxel_topk["value"])
            cols = np.broadcast_to(np.arange(idx.shape[1]), idx.shape)
            # sparse: the top-k maps of tens of thousands of units do not fit densely
            maps = sparse.csr_matrix((val.ravel(), (idx.ravel(), cols.ravel())),
                                     shape=(res.n_units, idx.shape[1]))
        if maps is None:
            out.notes.append("Whether opposite-sign units drive opposite voxels needs unit_maps= or "
                             "unit_voxel_topk; skipped.")
            return
        if maps.shape[0] != res.n_units:
            raise ValueError(f"unit_maps must have one row per unit ({res.n_units}), got {maps.shape}")
        pair_rows = []
        for k in range(load.shape[0]):
            units = np.flatnonzero(load[k] != 0)
            # the units of largest |loading| only: pairs grow as the square of the units
            units = units[np.argsort(-np.abs(load[k, units]), kind="stable")[:_MAX_PAIR_UNITS]]
            if units.size < 2:
                continue
            sub = maps[units]
            sub = np.asarray(sub.todense() if hasattr(sub, "todense") else sub, dtype=float)
            varies = sub.std(axis=1) > 0  # a unit in no voxel's top list has no map to correlate
            units, sub = units[varies], sub[varies]
            if units.size < 2:
                continue
            corr = np.corrcoef(sub)
            s = np.sign(load[k, units])
            for a in range(len(units)):
                for b in range(a + 1, len(units)):
                    pair_rows.append({"atom": res.atom_names[k], "unit_a": res.unit_names[units[a]],
                                      "unit_b": res.unit_names[units[b]],
                                      "pair": "same-sign" if s[a] == s[b] else "opposite-sign",
                                      "map_r": corr[a, b]})
        pairs = pd.DataFrame(pair_rows, columns=["atom", "unit_a", "unit_b", "pair", "map_r"])
        out.tables["unit_pairs"] = pairs
        means = pairs.groupby("pair")["map_r"].mean()
        same, opp = float(means.get("same-sign", np.nan)), float(means.get("opposite-sign", np.nan))
        out.stats.update(map_r_same_sign=same, map_r_opposite_sign=opp, opposition=same - opp)

    @staticmethod
    def _consistency(out, sign, folds, net_names, member):
        sig = sign != 0
        agree = (folds == sign[None]).mean(axis=0)  # (n_reg, v)
        with np.errstate(invalid="ignore"):
            per_voxel = np.where(sig.any(0), (agree * sig).sum(0) / np.maximum(sig.sum(0), 1), np.nan)
        rows = []
        for name, m in zip(net_names, member):
            v = per_voxel[m]
            v = v[np.isfinite(v)]
            rows.append({"network": name, "n_voxels": int(v.size),
                         "mean_consistency": float(v.mean()) if v.size else np.nan,
                         "frac_fully_consistent": float(np.mean(v == 1)) if v.size else np.nan})
        out.tables["sign_consistency"] = pd.DataFrame(rows)
        out.stats["sign_consistency"] = rows[0]["mean_consistency"]
