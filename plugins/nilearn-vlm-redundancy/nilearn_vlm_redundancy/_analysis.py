"""Functional redundancy (finding 2 of arXiv 2510.16870) as an analysis plugin."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from nilearn_vlm.analyses import (
    AnalysisResult,
    BaseAnalysis,
    ClusterMoves,
    FieldBank,
    FigureSpec,
    SpinBank,
    cooccurrence,
    cooccurrence_from_counts,
    describe_groups,
    greedy_unit_selection,
    holm,
    inference_table,
    network_membership,
    overlap_matrix,
    permutation_pvalue,
    regressor_groups,
    variance_partition,
)
from nilearn_vlm.units import unit_groups

RELATIONS = ("within-layer", "across-layer", "across-stream")


def _nanmean(a, axis=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (empty maps) give NaN
        return np.nanmean(a, axis=axis)


def _relation(layer_a, layer_b, stream_a, stream_b):
    if stream_a != stream_b:
        return "across-stream"
    return "within-layer" if layer_a == layer_b else "across-layer"


def voxel_count_table(sets, membership, network_names, min_count=2):
    """Per network: how many maps are significant in each voxel.

    Parameters
    ----------
    sets : ndarray of bool, shape (n_maps, n_voxels)
    membership : ndarray of bool, shape (n_networks, n_voxels)
    network_names : list of str
    min_count : int
        A predicted voxel is redundant when at least ``min_count`` maps
        are significant in it.

    Returns
    -------
    summary : pandas.DataFrame
        ``network``, ``n_voxels``, ``n_predicted`` (count >= 1),
        ``n_redundant`` (count >= ``min_count``), ``frac_redundant``
        (of predicted voxels), ``mean_count`` (over predicted voxels),
        ``max_count``.
    distribution : pandas.DataFrame
        ``network``, ``count``, ``n_voxels``: the distribution of counts.

    Examples
    --------
    >>> sets = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], bool)
    >>> s, d = voxel_count_table(sets, np.ones((1, 4), bool), ["all"])
    >>> s[["n_predicted", "n_redundant"]].values.tolist(), float(s["frac_redundant"].iloc[0])
    ([[2, 1]], 0.5)
    """
    count = sets.sum(axis=0)
    rows, dist = [], []
    for name, member in zip(network_names, membership):
        c = count[member]
        pred = c >= 1
        n_pred = int(pred.sum())
        n_red = int((c >= min_count).sum())
        rows.append({
            "network": name, "n_voxels": int(member.sum()), "n_predicted": n_pred, "n_redundant": n_red,
            "frac_redundant": n_red / n_pred if n_pred else np.nan,
            "mean_count": float(c[pred].mean()) if n_pred else np.nan,
            "max_count": int(c.max()) if c.size else 0,
        })
        values, counts = np.unique(c, return_counts=True)
        dist += [{"network": name, "count": int(v), "n_voxels": int(k)} for v, k in zip(values, counts)]
    return pd.DataFrame(rows), pd.DataFrame(dist)


def redundancy_figures(out):
    """Figure specifications of a redundancy result.

    Count distribution per network, overlap by relation against the null,
    shared and unique variance per network, greedy selection curve (each when
    its table exists).

    Parameters
    ----------
    out : AnalysisResult

    Returns
    -------
    list of nilearn_vlm.analyses.FigureSpec
    """
    specs = []
    dist = out.tables.get("count_distribution")
    if dist is not None and len(dist):
        d = dist[dist["count"] > 0].sort_values(["count"], kind="stable")
        total = d.groupby("network", sort=False)["n_voxels"].transform("sum")
        tidy = d.assign(fraction=d["n_voxels"] / total.where(total > 0))[["count", "network", "fraction"]]
        specs.append(FigureSpec(
            "bar", tidy, x="count", y="fraction", hue="network", title="Significant maps per voxel, by network",
            xlabel="number of significant maps in the voxel", ylabel="fraction of predicted voxels",
        ))
    co = out.tables.get("cooccurrence")
    if co is not None and len(co):
        tidy = pd.concat([
            pd.DataFrame({"network": co["network"], "what": "observed", "R": co["R"]}),
            pd.DataFrame({"network": co["network"], "what": "surrogate mean", "R": co["null_mean"]}),
        ], ignore_index=True)
        specs.append(FigureSpec(
            "bar", tidy, x="network", y="R", hue="what",
            title="Co-occurrence of significant maps against independently placed surrogates",
            ylabel="other maps sharing a map's voxel (R)",
        ))
    summ = out.tables.get("overlap_summary")
    if summ is not None and len(summ):
        specs.append(FigureSpec(
            "bar", summ[["relation", "overlap"]], x="relation", y="overlap", title="Mean pairwise map overlap",
            ylabel=f"{out.params.get('overlap', 'dice')} overlap (0 to 1)", size=(5, 3.5),
        ))
    vp = out.tables.get("variance_partition")
    if vp is not None and len(vp):
        specs.append(FigureSpec(
            "bar", vp[vp["part"] != "full"][["network", "part", "share"]], x="network", y="share", hue="part",
            stacked=True, title="Shared and unique explained variance by network",
            ylabel="share of explained variance",
        ))
    greedy = out.tables.get("greedy")
    if greedy is not None and len(greedy):
        specs.append(FigureSpec(
            "line", greedy, x="step", y="kept_fraction", title="Greedy unit selection", xlabel="units selected",
            ylabel="fraction of predictable variance", reference=out.params.get("fraction", 0.9), size=(5, 3.5),
        ))
    return specs


_H0 = ("the significant-voxel maps are placed independently of each other, each keeping its size and spatial "
       "autocorrelation")


def surrogate_bank(results, surrogates=None, memory=None):
    """The surrogate generator of the results' voxels: given, ClusterMoves (volumes) or a SpinBank (fsaverage).

    Volumes default to :class:`~nilearn_vlm.analyses.ClusterMoves` (each
    cluster of a map moved rigidly): the field bank's surrogates of compact
    maps are spread over many pieces, and the test rejected 0.062
    [0.043, 0.087] of 500 independent-map nulls with them
    (``benchmarks/analyses.py redundancy``); a FieldBank can still be given.

    Parameters
    ----------
    results : Results
    surrogates : ClusterMoves, FieldBank, SpinBank, ndarray of int (n_rotations, n_voxels) or None
        An array is taken as vertex permutations (spins) of the voxels.
    memory : str, Path or None
        Cache folder of the spins (built once per mesh).

    Returns
    -------
    ClusterMoves or SpinBank (or the given surrogates)
    """
    if surrogates is None:
        space = results.space
        kind = getattr(space, "kind", None)
        if kind == "nifti":
            return ClusterMoves.from_space(space)
        if kind == "surface":
            return SpinBank.from_space(space, memory=memory)
        raise ValueError(
            f"no surrogate maps for {'results without a space' if space is None else kind + ' data'}: the "
            "co-occurrence test needs a NIfTI or fsaverage space, or surrogates= (a nilearn_vlm.analyses.ClusterMoves, "
            "FieldBank, SpinBank, or an array of vertex permutations)"
        )
    if isinstance(surrogates, np.ndarray):
        return SpinBank(surrogates)
    if not hasattr(surrogates, "counts"):
        raise TypeError(f"surrogates must be a FieldBank, a ClusterMoves, a SpinBank or an array of permutations, got "
                        f"{type(surrogates).__name__}")
    return surrogates


def cooccurrence_test(sets, membership, network_names, bank, n_draws=1000, random_state=None):
    """Per-network co-occurrence of maps against surrogates placed independently; Holm across networks.

    Null hypothesis: the maps are placed independently of each other, each
    keeping its size and spatial autocorrelation. Statistic:
    :func:`nilearn_vlm.analyses.cooccurrence` per network. Resampling: each
    map replaced by its own surrogate in every draw (``bank.counts``).
    Correction: Holm across the networks (the claims are per network); a
    network named ``"(all)"`` (the whole brain) gets its value and null mean
    only, as a description: compact maps have heavier-tailed whole-brain
    overlaps than field surrogates of the same size and join count, so no
    p-value is given for it.

    Parameters
    ----------
    sets : ndarray (n_maps, n_voxels)
    membership : ndarray of bool (n_networks, n_voxels)
    network_names : list of str
    bank : FieldBank or SpinBank
    n_draws : int, default=1000
    random_state : int, Generator or None

    Returns
    -------
    pandas.DataFrame
        ``network``, ``n_maps`` (maps with a voxel in it), ``R``,
        ``null_mean``, ``p``, ``p_holm``, ``n_draws``.
    """
    sets = np.asarray(sets) != 0
    obs = cooccurrence(sets, membership)
    null = np.vstack([cooccurrence_from_counts(c, membership) for c in bank.counts(sets, n_draws, random_state)])
    p = permutation_pvalue(null, obs, "greater")
    whole = np.array([n == "(all)" for n in network_names])
    p = np.where(whole, np.nan, p)
    return pd.DataFrame({"network": list(network_names), "n_maps": (sets.astype(float) @ membership.T > 0).sum(0),
                         "R": obs, "null_mean": null.mean(0), "p": p, "p_holm": holm(p), "n_draws": null.shape[0]})


class RedundancyAnalysis(BaseAnalysis):
    """Functional redundancy: do several units' or atoms' maps drive the same voxels more than chance?

    Hypothesis (finding 2): within a network, several regressors' significant
    maps cover the same voxels. Null: the maps are placed independently of
    each other, each keeping its size and spatial autocorrelation.

    Parts:

    1. **Co-occurrence test** (table ``cooccurrence``, the test). Per
       network, ``R = sum_v c_v (c_v - 1) / sum_v c_v`` (``c_v``: maps
       significant at voxel ``v``) against surrogates that move every map on
       its own: on volumes each cluster of a map moved rigidly to a random
       place and orientation inside the mask
       (:class:`~nilearn_vlm.analyses.ClusterMoves`: size and shape kept
       exactly; a :class:`~nilearn_vlm.analyses.FieldBank` of smooth-field
       surrogates can be given, anti-conservative for compact maps), spins of
       the sphere on fsaverage surfaces
       (:class:`~nilearn_vlm.analyses.SpinBank`, cached with ``memory=``).
       Holm across networks; the whole-brain value is descriptive.
    2. **Descriptive**: significant maps per voxel and network
       (``voxel_counts``, ``count_distribution``), pairwise Dice or Jaccard
       of the maps by relation (within a layer, across layers, across
       streams: ``overlap_pairs``, ``overlap_summary``), the unit side
       (units shared by atoms, coverage when a map is dropped).
    3. **Variance partitioning** (with ``bold``): shared and unique
       out-of-fold R^2 of groups of features (streams by default) per
       network (:func:`nilearn_vlm.analyses.variance_partition`).
    4. **Smallest unit set** (with ``bold``): greedy forward selection of the
       fewest features keeping ``fraction`` of the predictable variance.

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.analyses import FieldBank
    >>> from nilearn_vlm.results import Results
    >>> mask = np.ones((8, 8, 8), bool)
    >>> bank = FieldBank.from_mask(mask, voxel_size=4.0, n_fields=20, fwhms=(0, 8), random_state=0)
    >>> sets = np.zeros((4, 512), np.int8)
    >>> sets[:, :40] = 1  # four maps on the same voxels: redundant
    >>> res = Results("toy", glm_sign_sets=sets, regressor_names=[f"vision.{l}.attn_out.0" for l in range(4)])
    >>> out = RedundancyAnalysis().run(res, surrogates=bank, n_draws=50)
    >>> out.stats["R"], out.stats["n_distinct_resamples:network_cooccurrence"] > 50
    (3.0, True)
    """

    name = "redundancy"
    description = "maps of several units/atoms on the same voxels against independently placed surrogates"
    requires = ("glm_sign_sets",)
    n_results = (1, 1)

    def run(self, results, *, min_count=2, sign="any", overlap="dice", n_draws=1000, surrogates=None, memory=None,
            groups=None, atlas=None, level="canonical", bold=None, features=None, feature_names=None, runs=None,
            cv=None, partition_by="stream", feature_groups=None, fraction=0.9, max_candidates=64, max_maps=256,
            random_state=0):
        """Run the analysis.

        Parameters
        ----------
        results : Results
        min_count : int, default=2
            Significant maps a voxel needs to count as redundant (descriptive).
        sign : {"any", "pos", "neg"}, default="any"
            Voxel sets of the signed maps that are compared.
        overlap : {"dice", "jaccard"}, default="dice"
        n_draws : int, default=1000
            Surrogate draws of the co-occurrence test.
        surrogates : FieldBank, SpinBank, array or None
            Default: a FieldBank of the results' NIfTI mask, or the spins of
            their fsaverage mesh (:func:`surrogate_bank`).
        memory : str, Path or None
            Cache folder of the surrogate bank.
        groups : array-like of str or None
            Layer (``stream.layer``) per regressor (:func:`regressor_groups`).
        atlas, level
            Networks (:func:`nilearn_vlm.analyses.network_membership`).
        bold, features, feature_names, runs, cv, partition_by, feature_groups, fraction, max_candidates
            Variance partitioning and greedy selection (parts 3-4).
        max_maps : int, default=256
            Pairwise overlaps use at most this many maps (a random subset).
        random_state : int or None

        Returns
        -------
        AnalysisResult
            Tables ``cooccurrence``, ``inference``, ``voxel_counts``,
            ``count_distribution``, ``overlap_pairs``, ``overlap_summary``,
            ``ablation``, ``unit_sharing``, ``network_units``,
            ``variance_partition``, ``greedy`` (those whose inputs exist) and
            figures (:func:`redundancy_figures`).
        """
        res = self._one(results)
        if sign not in ("any", "pos", "neg"):
            raise ValueError(f"sign must be 'any', 'pos' or 'neg', got {sign!r}")
        rng = np.random.default_rng(random_state)
        signs = res.glm_sign_sets
        sets = {"any": signs != 0, "pos": signs > 0, "neg": signs < 0}[sign]
        names = list(res.regressor_names)
        layers = regressor_groups(res, "layer", groups)
        streams = describe_groups(res, layers).set_index("group")["stream"].loc[list(layers)].to_numpy()
        net_names, member = network_membership(res, atlas, level)
        params = dict(min_count=min_count, sign=sign, overlap=overlap, n_draws=n_draws, atlas=atlas, level=level,
                      partition_by=partition_by, fraction=fraction, random_state=random_state)
        out = AnalysisResult(self.name, params=params, models=[f"{res.model}/{res.subject}".rstrip("/")])
        out.text = ("Functional redundancy: co-occurrence of the regressors' significant-voxel maps per network "
                    "against surrogates that keep each map's size and spatial autocorrelation and move it "
                    "independently of the others; overlaps and, with BOLD time series, shared versus unique "
                    "explained variance are descriptive.")

        # 1. the test
        bank = None
        try:
            bank = surrogate_bank(res, surrogates, memory)
        except ValueError as exc:
            out.notes.append(f"Co-occurrence test skipped: {exc}")
        if bank is not None:
            table = cooccurrence_test(sets, member, net_names, bank, n_draws, rng)
            out.tables["cooccurrence"] = table
            whole = table.iloc[0]
            out.stats.update(R=float(whole["R"]), null_mean_R=float(whole["null_mean"]))
            nets = table[table["network"] != "(all)"]
            if len(nets) / (n_draws + 1) > 0.05:
                out.notes.append(f"{n_draws} surrogate draws cannot reach Holm-corrected p < 0.05 across {len(nets)} "
                                 f"networks (smallest p {len(nets) / (n_draws + 1):.3f}); use n_draws >= "
                                 f"{int(np.ceil(20 * len(nets)))}.")
            if len(nets):
                best = nets.sort_values("p_holm", kind="stable").iloc[0]
                out.stats.update(min_p_holm=float(best["p_holm"]), n_networks_redundant=int((nets["p_holm"] < 0.05).sum()))
            for row in nets.itertuples(index=False):
                out.stats[f"p_holm:{row.network}"] = float(row.p_holm)
            n_maps = int((sets.any(axis=1)).sum())
            if isinstance(bank, ClusterMoves):
                unit = ("each map's position: every cluster of the map moved rigidly (a random rotation or "
                        "reflection of the grid and a random place inside the mask), independently of the other "
                        "maps (volume surrogates)")
                per_map = 48 * bank.n_voxels
            elif isinstance(bank, FieldBank):
                unit = ("each map's position: the top voxels of its own smooth Gaussian field, the smoothness "
                        "matched to the map's size and join count (volume surrogates)")
                per_map = bank.ranks_.shape[1]
            else:
                unit = "each map rotated on the sphere by its own random rotation (spin test)"
                per_map = len(bank.permutations_)
            distinct = per_map ** n_maps if n_maps * np.log10(max(per_map, 1)) < 300 else np.inf
            inference_table(out, [dict(
                test="network_cooccurrence", null_hypothesis=_H0,
                statistic="R = sum_v c_v (c_v - 1) / sum_v c_v over the network's voxels (c_v: maps significant at v)",
                resampling_unit=unit, n_resamples=int(n_draws),
                n_distinct_resamples=int(distinct) if distinct < 2**62 else float(distinct),
                correction="Holm across networks; the whole-brain value is descriptive (no p-value)")])

        # 2. descriptive: voxel counts and overlaps
        summary, dist = voxel_count_table(sets, member, net_names, min_count)
        out.tables["voxel_counts"] = summary
        out.tables["count_distribution"] = dist
        whole = summary.iloc[0]
        out.stats.update({k: float(whole[k]) for k in ("frac_redundant", "mean_count")})
        keep = np.arange(len(names))
        if len(names) > max_maps:
            keep = np.sort(rng.choice(len(names), max_maps, replace=False))
            out.notes.append(f"{len(names)} maps exceed max_maps={max_maps}: pairwise overlaps use a random "
                             f"subset of {max_maps} maps.")
        names, layers, streams, sub = [names[i] for i in keep], layers[keep], streams[keep], sets[keep]
        obs = overlap_matrix(sub, kind=overlap)
        iu, ju = np.triu_indices(len(names), k=1)
        if len(iu):
            rel = np.asarray([_relation(layers[i], layers[j], streams[i], streams[j]) for i, j in zip(iu, ju)])
            out.tables["overlap_pairs"] = pd.DataFrame({
                "map_a": np.asarray(names)[iu], "map_b": np.asarray(names)[ju], "layer_a": layers[iu],
                "layer_b": layers[ju], "relation": rel, "overlap": obs[iu, ju]})
            rows = []
            for r in RELATIONS:
                sel = (rel == r) & np.isfinite(obs[iu, ju])
                if sel.any():
                    rows.append({"relation": r, "n_pairs": int(sel.sum()), "overlap": float(np.mean(obs[iu, ju][sel]))})
                    out.stats[f"overlap_{r.replace('-', '_')}"] = rows[-1]["overlap"]
            out.tables["overlap_summary"] = pd.DataFrame(rows, columns=["relation", "n_pairs", "overlap"])
        else:
            out.notes.append("Fewer than two maps: no pairwise overlap.")

        # AN side: units shared by several atoms; coverage when one map is dropped
        self._unit_side(out, res, signs != 0, net_names, member)

        # 3-4. variance partitioning and greedy selection
        if bold is None:
            out.notes.append("Variance partitioning and the smallest unit set need bold= (n_scans, n_voxels) "
                             "and features=; skipped.")
        else:
            self._time_series_parts(out, res, bold, features, feature_names, runs, cv, partition_by,
                                    feature_groups, fraction, max_candidates, net_names, member)
        out.figures = redundancy_figures(out)
        return out

    @staticmethod
    def _unit_side(out, res, sig, net_names, member):
        predicted = sig.any(axis=0)
        count = sig.sum(axis=0)
        # dropping map i loses the voxels only it predicts
        only = (sig & (count == 1)[None, :]).sum(axis=1)
        n_pred = int(predicted.sum())
        coverage = 1 - only / n_pred if n_pred else np.full(sig.shape[0], np.nan)
        out.tables["ablation"] = pd.DataFrame({"map": list(res.regressor_names), "n_significant": sig.sum(axis=1),
                                               "n_only_this_map": only, "coverage_without": coverage})
        out.stats["min_coverage_without_one_map"] = float(np.min(coverage)) if coverage.size else np.nan
        if res.atom_loadings is None or res.units is None:
            out.notes.append("Units shared by several atoms need atom_loadings and unit_names; skipped.")
            return
        n_atoms_of_unit = (res.atom_loadings != 0).sum(axis=0)
        used = n_atoms_of_unit > 0
        out.stats["frac_units_in_several_atoms"] = float(np.mean(n_atoms_of_unit[used] >= 2)) if used.any() \
            else np.nan
        rows = []
        if res.n_atoms == sig.shape[0]:
            # for each network: units (and the layers they come from) of the atoms predicting it
            layer = unit_groups(res.units, by="layer")
            for name, m in zip(net_names, member):
                atoms = np.flatnonzero(sig[:, m].any(axis=1))
                units = np.flatnonzero((res.atom_loadings[atoms] != 0).any(axis=0)) if atoms.size else []
                rows.append({"network": name, "n_atoms": int(atoms.size), "n_units": int(len(units)),
                             "n_layers": int(len(set(layer[units]))) if len(units) else 0})
        out.tables["unit_sharing"] = pd.DataFrame(
            {"n_atoms_per_unit": np.arange(n_atoms_of_unit.max() + 1),
             "n_units": np.bincount(n_atoms_of_unit)}) if n_atoms_of_unit.size else pd.DataFrame()
        if rows:
            out.tables["network_units"] = pd.DataFrame(rows)

    def _time_series_parts(self, out, res, bold, features, feature_names, runs, cv, partition_by,
                           feature_groups, fraction, max_candidates, net_names, member):
        Y = np.asarray(bold, dtype=float)
        if Y.ndim != 2 or Y.shape[1] != member.shape[1]:
            raise ValueError(f"bold must be (n_scans, {member.shape[1]}) on the results' voxels; got {Y.shape}")
        if features is None:
            if res.atom_timecourses is None:
                raise ValueError("give features= (n_scans, n_units): the results hold no atom_timecourses")
            X, fnames = res.atom_timecourses, list(res.atom_names)
            default_groups = regressor_groups(res, partition_by) if len(fnames) == len(res.regressor_names) \
                else None
        else:
            X = np.asarray(features, dtype=float)
            if feature_names is None:
                if res.unit_names is not None and len(res.unit_names) == X.shape[1]:
                    feature_names = res.unit_names
                elif X.shape[1] == len(res.regressor_names):
                    feature_names = res.regressor_names
                else:
                    feature_names = [f"feature{i}" for i in range(X.shape[1])]
            fnames = [str(f) for f in feature_names]
            try:
                default_groups = unit_groups(res.units if fnames == res.unit_names else fnames, by=partition_by)
            except ValueError:
                default_groups = None
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"features have {X.shape[0]} scans but bold {Y.shape[0]}")
        if feature_groups is None:
            if default_groups is None:
                raise ValueError("cannot group the features by name: pass feature_groups={name: [columns]}")
            labels = list(dict.fromkeys(default_groups.tolist()))
            feature_groups = {g: np.flatnonzero(default_groups == g) for g in labels}
        if len(feature_groups) >= 2:
            parts = variance_partition({g: X[:, np.asarray(c)] for g, c in feature_groups.items()},
                                       Y, runs, cv)
            full = parts["full"]
            keys = ["full", "shared"] + [k for k in parts if k.startswith("unique:")]
            rows = []
            for name, m in zip(net_names, member):
                pred = m & (full > 0)
                denom = full[pred].sum()
                for k in keys:
                    rows.append({"network": name, "part": k, "n_predicted": int(pred.sum()),
                                 "mean": float(parts[k][pred].mean()) if pred.any() else np.nan,
                                 "share": float(parts[k][pred].sum() / denom) if denom > 0 else np.nan})
            vp = pd.DataFrame(rows)
            out.tables["variance_partition"] = vp
            allrow = vp[vp["network"] == net_names[0]].set_index("part")["share"]
            out.stats["shared_share"] = float(allrow["shared"])
            out.stats["unique_share"] = float(allrow[[k for k in keys if k.startswith("unique:")]].sum())
        else:
            out.notes.append("Only one feature group: no variance partitioning.")
        if X.shape[1] > max_candidates:
            out.notes.append(f"{X.shape[1]} features exceed max_candidates={max_candidates}: greedy selection "
                             "skipped (give atoms or a pre-selected unit set as features).")
            return
        g = greedy_unit_selection(X, Y, fraction, runs, cv, unit_names=fnames)
        out.tables["greedy"] = pd.DataFrame({"step": np.arange(1, g["n_selected"] + 1),
                                             "unit": g["selected"], "kept_fraction": g["curve"]})
        out.stats.update(n_selected=g["n_selected"], n_candidates=g["n_units"],
                         frac_selected=g["n_selected"] / g["n_units"], greedy_reached=g["reached"])
