"""Polarity (finding 3 of arXiv 2510.16870) as an analysis plugin."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.stats import rankdata

from nilearn_vlm.analyses import (
    AnalysisResult,
    BaseAnalysis,
    FigureSpec,
    describe_groups,
    holm,
    inference_table,
    network_membership,
    regressor_groups,
)
from nilearn_vlm.units import unit_groups
from nilearn_vlm_polarity._stats import balance_trend, driver_sign_test, layer_counts


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


def polarity_figures(out):
    """Figure specifications of a polarity result (descriptive): positive and negative voxels by depth.

    One line figure per stream (whole brain): the voxels driven positively
    and negatively by each layer's regressors against the layer's fractional
    depth (the paper's mirror picture). The figure is descriptive; the test
    is the driver-sign permutation (table ``driver_trend``).

    Parameters
    ----------
    out : AnalysisResult
        With the table ``layer_curves``.

    Returns
    -------
    list of nilearn_vlm.analyses.FigureSpec
    """
    specs = []
    curves = out.tables.get("layer_curves")
    if curves is None or not len(curves):
        return specs
    unit = "fraction of the network's voxels" if out.params.get("measure") == "fraction" else "voxels"
    trend = out.tables.get("driver_trend")
    for stream, c in curves[curves["network"] == "(all)"].groupby("stream", sort=False):
        tidy = pd.concat([
            pd.DataFrame({"depth": c["depth"], "sign": "positive", "value": c["n_pos"]}),
            pd.DataFrame({"depth": c["depth"], "sign": "negative", "value": c["n_neg"]}),
        ], ignore_index=True)
        note = ""
        if trend is not None:
            t = trend[(trend["scope"] == stream) & (trend["network"] == "(all)")]
            if len(t) and np.isfinite(t["r"].iloc[0]):
                t = t.iloc[0]
                note = f"driver signs vs depth: r = {t['r']:.2f}, p = {t['p']:.3g} ({t['n_drivers']} drivers)"
        specs.append(FigureSpec(
            "line", tidy, x="depth", y="value", hue="sign", colors={"positive": "tab:red", "negative": "tab:blue"},
            title=f"Positive and negative voxels across layers: {stream}",
            xlabel="fractional depth along the model (0 to 1]", ylabel=unit, note=note, size=(5, 3.5),
        ))
    return specs


#: Units (largest absolute loading) per atom whose map correlations are compared.
_MAX_PAIR_UNITS = 64

_TREND_H0 = ("a driving regressor's net sign does not depend on its fractional depth (signs exchangeable "
             "among the drivers of each stream)")


def _families(table):
    """Holm within the family of each row: primary (pooled, whole brain), networks, streams, stream x network."""
    whole = table["network"] == "(all)"
    pooled = table["scope"] == "pooled"
    family = np.where(pooled & whole, "primary", np.where(pooled, "networks",
                      np.where(whole, "streams", "stream x network")))
    table["family"] = family
    table["p_holm"] = np.nan
    for fam, grp in table.groupby("family"):
        table.loc[grp.index, "p_holm"] = grp["p"].to_numpy() if fam == "primary" else holm(grp["p"].to_numpy())
    return table


class PolarityAnalysis(BaseAnalysis):
    """Polarity: do the signs of the voxels a model drives change with depth along the model?

    Hypothesis (finding 3): the balance of positively and negatively driven
    voxels changes monotonically with fractional depth. Null: a driving
    regressor's sign does not depend on where it sits.

    Parts:

    1. **Driver test** (table ``driver_trend``, the test). A driver is a GLM
       regressor (atom or unit) with at least ``min_voxels`` significant
       voxels in the network; its net sign is ``(P - N) / (P + N)``. The
       statistic is the correlation of the drivers' net signs with their
       fractional depth (:mod:`nilearn_vlm.units`), pooled over streams;
       signs are permuted among the drivers of each stream
       (:func:`~nilearn_vlm_polarity.driver_sign_test`), which is exact
       whenever the signs are exchangeable, whatever the number of drivers
       per layer or a constant sign bias. The number of distinct sign
       arrangements is reported: with few drivers no small p-value is
       possible, and the test says so. The pooled whole-brain test is the
       primary one; per-network (pooled), per-stream and stream x network
       tests are Holm-corrected within their family. Heterogeneity across
       layers (between-layer sum of squares of the mean sign) is tested on
       the same permutations.
    2. **Effect size** (table ``balance_trend``): the voxel-weighted slope of
       the layer balance on depth, with a leave-one-run-out jackknife
       interval (t with ``n_runs - 1`` degrees of freedom) from
       ``glm_sign_sets_loro``, and a layer-label permutation (depths
       shuffled among a stream's layers) as a secondary test, exact only
       when the layers are exchangeable.
    3. **Neuron side** (table ``unit_trend``): the same driver test with the
       units as regressors, each with its own signed association with the
       voxels (``unit_sign_sets=``, or the signs of ``unit_voxel_topk``): no
       atom orientation enters.
    4. **Descriptive**: positive and negative voxels per layer and stream by
       fractional depth (``layer_curves``, ``stream_counts``, the mirror
       figure and the ``mirror`` table's correlation of the two curves: a
       picture, not a test); whether opposite-loading units of an atom drive
       opposite voxels (``unit_pairs``, invariant to flipping an atom); sign
       consistency across runs (``sign_consistency``).

    The counts use ``glm_sign_sets_fwe`` (family-wise sets per map) when the
    results have them, else ``glm_sign_sets`` (noted: FDR sets hold false
    positives that bias the slope toward 0).

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.results import Results
    >>> sets = np.zeros((8, 200), np.int8)
    >>> for l in range(8):
    ...     sets[l, 20 * l: 20 * l + 20] = 1 if l < 4 else -1
    >>> res = Results("toy", glm_sign_sets=sets, regressor_names=[f"vision.{l}.attn_out.0" for l in range(8)])
    >>> out = PolarityAnalysis().run(res, n_permutations=999)
    >>> out.stats["n_drivers"], out.stats["n_distinct_resamples:driver_trend"], out.stats["p_trend"] < 0.05
    (8, 70, True)
    """

    name = "polarity"
    description = "signs of driven voxels against fractional depth: driver-sign permutation test"
    requires = ("glm_sign_sets",)
    n_results = (1, 1)

    def run(self, results, *, groups=None, atlas=None, level="canonical", measure="count", min_voxels=10,
            n_permutations=9999, confidence=0.95, fold_sign_sets=None, unit_sign_sets=None, unit_maps=None,
            random_state=0):
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
            Descriptive curves as voxel counts or fractions of the network.
        min_voxels : int, default=10
            Significant voxels (in the network) a regressor needs to be a
            driver: keeps out noise regressors whose few false-positive
            voxels carry a 50/50 sign.
        n_permutations : int, default=9999
            Sign permutations (and layer-label permutations).
        confidence : float, default=0.95
        fold_sign_sets : array-like (n_runs, n_regressors, n_voxels) or None
            Sign sets with each run left out; default ``glm_sign_sets_loro``.
        unit_sign_sets : array-like (n_units, n_voxels) or None
            Each unit's significant signed association with the voxels
            (neuron side); default the signs of ``unit_voxel_topk``.
        unit_maps : array-like (n_units, n_voxels) or None
            Signed unit maps for the descriptive ``unit_pairs`` table.
        random_state : int or None

        Returns
        -------
        AnalysisResult
            Tables ``driver_trend``, ``balance_trend``, ``unit_trend``,
            ``inference``, ``layer_curves``, ``stream_counts``, ``mirror``,
            ``unit_pairs``, ``sign_consistency`` (those whose inputs exist)
            and figures (:func:`polarity_figures`).
        """
        res = self._one(results)
        if measure not in ("count", "fraction"):
            raise ValueError(f"measure must be 'count' or 'fraction', got {measure!r}")
        if int(min_voxels) < 1:
            raise ValueError(f"min_voxels must be a positive number of voxels, got {min_voxels!r}")
        rng = np.random.default_rng(random_state)
        sign, source = (res.glm_sign_sets_fwe, "glm_sign_sets_fwe") if res.glm_sign_sets_fwe is not None \
            else (res.glm_sign_sets, "glm_sign_sets")
        layers = regressor_groups(res, "layer", groups)
        net_names, member = network_membership(res, atlas, level)
        folds = res.glm_sign_sets_loro if fold_sign_sets is None else fold_sign_sets
        if folds is not None:
            folds = np.sign(np.nan_to_num(np.asarray(folds, dtype=float))).astype(np.int8)
            if folds.ndim != 3 or folds.shape[1:] != sign.shape or folds.shape[0] < 2:
                raise ValueError(
                    f"fold_sign_sets must be (n_runs >= 2, {sign.shape[0]}, {sign.shape[1]}) like the sign sets; "
                    f"got {folds.shape}"
                )
        params = dict(atlas=atlas, level=level, measure=measure, min_voxels=int(min_voxels),
                      n_permutations=n_permutations, confidence=confidence, random_state=random_state,
                      sign_sets=source)
        out = AnalysisResult(self.name, params=params, models=[f"{res.model}/{res.subject}".rstrip("/")])
        out.text = (f"Polarity: do the signs of the voxels driven by the model's regressors change with their "
                    f"fractional depth? Sign sets: {source}.")
        if source == "glm_sign_sets":
            out.notes.append("Counts use glm_sign_sets (no glm_sign_sets_fwe in the results): FDR sets hold "
                             "false-positive voxels that bias the slope toward 0.")
        info = describe_groups(res, layers)
        order = info["group"].tolist()
        index = {lab: i for i, lab in enumerate(order)}
        layer_index = np.array([index[lab] for lab in layers])
        depth_of_layer = info["depth"].to_numpy(dtype=float)
        stream_of_layer = info["stream"].to_numpy().astype(str)
        reg = {"layer": np.asarray(layers), "depth": depth_of_layer[layer_index],
               "stream": stream_of_layer[layer_index]}
        self._descriptive(out, sign, layer_index, info, net_names, member, measure)
        trend = _driver_table(sign, reg, net_names, member, int(min_voxels), n_permutations, rng)
        out.tables["driver_trend"] = _families(trend)
        prim = trend[(trend["scope"] == "pooled") & (trend["network"] == "(all)")].iloc[0]
        out.stats.update(trend_r=float(prim["r"]), p_trend=float(prim["p"]), n_drivers=int(prim["n_drivers"]),
                         p_heterogeneity=float(prim["p_heterogeneity"]))
        for row in trend[(trend["network"] == "(all)") & (trend["scope"] != "pooled")].itertuples():
            out.stats[f"p_trend:{row.scope}"] = float(row.p_holm)
        self._balance(out, sign, folds, layer_index, info, net_names, member, n_permutations, confidence, rng)
        unit_prim = self._neuron_side(out, res, unit_sign_sets, unit_maps, net_names, member, int(min_voxels),
                                      n_permutations, rng)
        if folds is not None:
            self._consistency(out, sign, folds, net_names, member)
        rows = [dict(test="driver_trend", null_hypothesis=_TREND_H0,
                     statistic="Pearson r of the drivers' net signs with fractional depth, pooled over streams",
                     resampling_unit="driver signs permuted within streams", n_resamples=n_permutations,
                     n_distinct_resamples=_n(prim["n_distinct"]),
                     correction="pooled whole-brain test primary (none); networks, streams and stream x network: "
                                "Holm within each family",
                     interval="effect size: balance_slope"),
                dict(test="driver_heterogeneity", null_hypothesis=_TREND_H0,
                     statistic="between-layer sum of squares of the drivers' mean net sign",
                     resampling_unit="driver signs permuted within streams", n_resamples=n_permutations,
                     n_distinct_resamples=_n(prim["n_distinct"]), correction="none (one test, pooled whole brain)")]
        bal = out.tables["balance_trend"]
        bprim = bal[(bal["scope"] == "pooled") & (bal["network"] == "(all)")].iloc[0]
        rows.append(dict(test="balance_slope", null_hypothesis="layers exchangeable with respect to depth within "
                         "each stream (exact only for exchangeable layers: a secondary test)",
                         statistic="voxel-weighted correlation of the layer balance (P - N) / (P + N) with depth",
                         resampling_unit="depth labels permuted among the layers of each stream",
                         n_resamples=n_permutations, n_distinct_resamples=_n(bprim["n_distinct"]),
                         correction="none (secondary)",
                         interval=(f"leave-one-run-out jackknife of the voxel-weighted slope, t with "
                                   f"{len(folds) - 1} dof" if folds is not None else
                                   "none: no leave-one-run-out sign sets")))
        if unit_prim is not None:
            rows.append(dict(test="unit_trend", null_hypothesis=_TREND_H0.replace("regressor", "unit"),
                             statistic="Pearson r of the units' own net signs with fractional depth, pooled",
                             resampling_unit="unit signs permuted within streams", n_resamples=n_permutations,
                             n_distinct_resamples=_n(unit_prim["n_distinct"]),
                             correction="none (neuron side of the primary test)"))
        inference_table(out, rows)
        out.figures = polarity_figures(out)
        return out

    @staticmethod
    def _descriptive(out, sign, layer_index, info, net_names, member, measure):
        n_layers = len(info)
        pos, neg = layer_counts(sign, layer_index, n_layers, member)
        size = member.sum(axis=1).astype(float)
        scale = (1.0 / np.where(size > 0, size, np.nan)) if measure == "fraction" else np.ones(len(net_names))
        rows = []
        for i, (lab, stream, depth) in enumerate(info[["group", "stream", "depth"]].itertuples(index=False)):
            for j, net in enumerate(net_names):
                rows.append({"stream": stream, "layer": lab, "depth": depth, "network": net,
                             "n_pos": pos[i, j] * scale[j], "n_neg": neg[i, j] * scale[j]})
        out.tables["layer_curves"] = pd.DataFrame(rows)
        srows, mrows = [], []
        streams = info["stream"].to_numpy()
        for stream in dict.fromkeys(streams):
            regs = streams[layer_index] == stream
            sp, sn = (sign[regs] > 0).any(axis=0), (sign[regs] < 0).any(axis=0)
            idx = np.flatnonzero(streams == stream)
            for j, net in enumerate(net_names):
                srows.append({"stream": stream, "network": net, "n_pos": (sp & member[j]).sum() * scale[j],
                              "n_neg": (sn & member[j]).sum() * scale[j],
                              "n_both": (sp & sn & member[j]).sum() * scale[j]})
                r, steps = mirrored_trend(pos[idx, j], neg[idx, j]) if idx.size >= 3 else (np.nan, np.nan)
                mrows.append({"stream": stream, "network": net, "n_layers": int(idx.size), "r": r,
                              "opposite_steps": steps})
        out.tables["stream_counts"] = pd.DataFrame(srows)
        out.tables["mirror"] = pd.DataFrame(mrows, columns=["stream", "network", "n_layers", "r", "opposite_steps"])

    @staticmethod
    def _balance(out, sign, folds, layer_index, info, net_names, member, n_permutations, confidence, rng):
        n_layers = len(info)
        pos, neg = layer_counts(sign, layer_index, n_layers, member)
        jp = jn = None
        if folds is not None:
            jp, jn = layer_counts(folds, layer_index, n_layers, member)
        else:
            out.notes.append("No leave-one-run-out sign sets (glm_sign_sets_loro or fold_sign_sets=): the slope "
                             "has no interval.")
        depth, streams = info["depth"].to_numpy(dtype=float), info["stream"].to_numpy().astype(str)
        rows = []
        scopes = [("pooled", np.ones(n_layers, bool))] + [(s, streams == s) for s in dict.fromkeys(streams)]
        for scope, sel in scopes:
            b = balance_trend(pos[sel], neg[sel], depth[sel], streams[sel],
                              None if jp is None else jp[:, sel], None if jn is None else jn[:, sel],
                              n_permutations, confidence, rng)
            for j, net in enumerate(net_names):
                rows.append({"scope": scope, "network": net, "n_layers": int(sel.sum()),
                             **{k: (float(v[j]) if k not in ("n_distinct", "n_layers_driven") else int(v[j]))
                                for k, v in b.items()}})
        table = pd.DataFrame(rows).rename(columns={"p": "p_layer_permutation"})
        out.tables["balance_trend"] = table
        prim = table[(table["scope"] == "pooled") & (table["network"] == "(all)")].iloc[0]
        out.stats.update(slope=float(prim["slope"]), slope_low=float(prim["low"]), slope_high=float(prim["high"]),
                         p_layer_permutation=float(prim["p_layer_permutation"]))

    @staticmethod
    def _neuron_side(out, res, unit_sign_sets, unit_maps, net_names, member, min_voxels, n_permutations, rng):
        if res.units is None:
            out.notes.append("Neuron-side polarity needs the units table; skipped.")
            return None
        signs = unit_sign_sets
        if signs is None and res.unit_voxel_topk is not None:
            idx, val = np.asarray(res.unit_voxel_topk["index"]), np.asarray(res.unit_voxel_topk["value"])
            signs = _topk_signs(idx, val, res.n_units)
        if signs is None:
            out.notes.append("Neuron-side polarity needs unit_sign_sets= or unit_voxel_topk; skipped.")
            _unit_pairs(out, res, unit_maps)
            return None
        signs = sparse.csr_matrix(signs) if not sparse.issparse(signs) else signs.tocsr()
        if signs.shape != (res.n_units, member.shape[1]):
            raise ValueError(f"unit_sign_sets must be (n_units={res.n_units}, n_voxels={member.shape[1]}), "
                             f"got {signs.shape}")
        units = res.units
        reg = {"layer": unit_groups(units, by="layer"),
               "depth": units["depth"].to_numpy(dtype=float), "stream": units["stream"].to_numpy().astype(str)}
        table = _families(_driver_table(signs, reg, net_names, member, min_voxels, n_permutations, rng))
        out.tables["unit_trend"] = table
        prim = table[(table["scope"] == "pooled") & (table["network"] == "(all)")].iloc[0]
        out.stats.update(unit_trend_r=float(prim["r"]), p_unit_trend=float(prim["p"]),
                         n_driving_units=int(prim["n_drivers"]))
        _unit_pairs(out, res, unit_maps)
        return prim

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


def _driver_table(sign, reg, net_names, member, min_voxels, n_permutations, rng):
    """Driver-sign test per scope (pooled, each stream) and network."""
    mf = np.asarray(member, dtype=np.float64).T
    P = np.asarray((sign > 0).astype(np.float64) @ mf)  # (n_reg, n_net)
    N = np.asarray((sign < 0).astype(np.float64) @ mf)
    streams = reg["stream"]
    rows = []
    for scope in ["pooled", *dict.fromkeys(streams.tolist())]:
        in_scope = np.ones(streams.size, bool) if scope == "pooled" else streams == scope
        for j, net in enumerate(net_names):
            w = P[:, j] + N[:, j]
            drv = in_scope & (w >= min_voxels)
            with np.errstate(invalid="ignore", divide="ignore"):
                s = (P[drv, j] - N[drv, j]) / w[drv]
            res = driver_sign_test(s, reg["depth"][drv], streams[drv], reg["layer"][drv], n_permutations, rng)
            rows.append({"scope": scope, "network": net, **res, "n_pos_drivers": int((s > 0).sum()),
                         "n_neg_drivers": int((s < 0).sum())})
    return pd.DataFrame(rows)


def _n(count):
    """A count of distinct arrangements: an int when exact, else the float (or inf) it was stored as."""
    count = float(count)
    return int(count) if count <= 10**15 else count


def _topk_signs(idx, val, n_units):
    """Each unit's signs at the voxels where it is among the top-k (sparse, n_units x n_voxels)."""
    cols = np.broadcast_to(np.arange(idx.shape[1]), idx.shape)
    keep = np.isfinite(val) & (val != 0)
    return sparse.csr_matrix((np.sign(val[keep]), (idx[keep], cols[keep])), shape=(n_units, idx.shape[1]))


def _unit_pairs(out, res, unit_maps):
    """Do units loading with opposite signs on an atom drive opposite voxels? (descriptive, flip-invariant)."""
    if res.atom_loadings is None or res.units is None:
        out.notes.append("Unit pairs need atom_loadings and the units; skipped.")
        return
    load = res.atom_loadings
    maps = unit_maps
    if maps is None and res.unit_voxel_topk is not None:
        idx, val = np.asarray(res.unit_voxel_topk["index"]), np.asarray(res.unit_voxel_topk["value"])
        cols = np.broadcast_to(np.arange(idx.shape[1]), idx.shape)
        # sparse: the top-k maps of tens of thousands of units do not fit densely
        maps = sparse.csr_matrix((val.ravel(), (idx.ravel(), cols.ravel())), shape=(res.n_units, idx.shape[1]))
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

