"""Functional redundancy (finding 2 of arXiv 2510.16870) as an analysis plugin."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from nilearn_vlm.analyses import (
    AnalysisResult,
    BaseAnalysis,
    describe_groups,
    FigureSpec,
    greedy_unit_selection,
    network_membership,
    overlap_matrix,
    overlap_null,
    regressor_groups,
    variance_partition,
)
from nilearn_vlm.stats import fdr
from nilearn_vlm.units import unit_groups

RELATIONS = ("within-layer", "across-layer", "across-stream")


def _pvalue(null, observed, greater=True):
    """Permutation p-value with the +1 correction, along axis 0 of ``null``."""
    null = np.asarray(null)
    if not np.issubdtype(null.dtype, np.floating):
        null = null.astype(float)
    # compare at the null's precision so that exact ties count as ties
    observed = np.asarray(observed, dtype=float).astype(null.dtype)
    hits = (null >= observed) if greater else (null <= observed)
    hits = np.where(np.isnan(null), False, hits)
    n = np.isfinite(null).sum(axis=0)
    return (1 + hits.sum(axis=0)) / (1 + n)


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
    summ = out.tables.get("overlap_summary")
    if summ is not None and len(summ):
        tidy = pd.concat([
            pd.DataFrame({"relation": summ["relation"], "what": "observed", "overlap": summ["overlap"]}),
            pd.DataFrame({"relation": summ["relation"], "what": "null mean", "overlap": summ["null_mean"]}),
        ], ignore_index=True)
        specs.append(FigureSpec(
            "bar", tidy, x="relation", y="overlap", hue="what", title="Map overlap against the spatial null",
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


class RedundancyAnalysis(BaseAnalysis):
    """Functional redundancy: several units or atoms driving the same voxels.

    Parts (the last two need time series, see ``bold``):

    1. **Voxel counts.** Per voxel, how many GLM regressors (atoms or units)
       are significant (``glm_sign_sets != 0``); per network the fraction of
       predicted voxels with at least ``min_count`` of them, the mean count
       over predicted voxels and the distribution of counts. The same numbers
       for maps made independent by spatial block permutation give nulls and
       p-values (large maps reach a count of 2 by chance: the mean count
       against its null is the sharper test).
    2. **Map overlap.** Dice (or Jaccard) of every pair of significant-voxel
       maps, classed as within a layer, across layers of a stream, or across
       streams, each pair and each class against a spatial block-permutation
       null (:func:`nilearn_vlm.analyses.overlap_null`); FDR over pairs.
    2b. **Unit side.** With atoms: the fraction of units loading on two or
       more atoms, the distribution of atoms per unit, and per network the
       units and layers behind the atoms predicting it; for every map, the
       coverage of predicted voxels left when it is dropped (1: every voxel it
       predicts is predicted by another map too).
    3. **Variance partitioning** (with ``bold``): shared and unique
       out-of-fold R^2 of groups of features (streams by default) per
       network, from nested ridge fits
       (:func:`nilearn_vlm.analyses.variance_partition`).
    4. **Smallest unit set** (with ``bold``): greedy forward selection of the
       fewest features keeping ``fraction`` of the predictable variance
       (:func:`nilearn_vlm.analyses.greedy_unit_selection`).

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.results import Results
    >>> sets = np.zeros((4, 200), np.int8)
    >>> sets[:, :40] = 1  # four units, same voxels: redundant
    >>> names = [f"vision.{l}.attn_out.0" for l in range(4)]
    >>> res = Results("toy", glm_sign_sets=sets, regressor_names=names)
    >>> out = RedundancyAnalysis().run(res, n_permutations=50)
    >>> out.stats["mean_count"], out.stats["p_mean_count"] < 0.05
    (4.0, True)
    """

    name = "redundancy"
    description = "voxels predicted by several units/atoms, map overlap, shared vs unique variance"
    requires = ("glm_sign_sets",)
    n_results = (1, 1)

    def run(self, results, *, min_count=2, sign="any", overlap="dice", n_permutations=200,
            block_length=None, groups=None, atlas=None, level="canonical", bold=None, features=None,
            feature_names=None, runs=None, cv=None, partition_by="stream", feature_groups=None,
            fraction=0.9, max_candidates=64, max_maps=256, alpha=0.05, random_state=0):
        """Run the analysis.

        Parameters
        ----------
        results : Results
        min_count : int, default=2
            Significant maps a voxel needs to count as redundant.
        sign : {"any", "pos", "neg"}, default="any"
            Voxel sets of the signed maps that are compared.
        overlap : {"dice", "jaccard"}, default="dice"
        n_permutations : int, default=200
            Spatial block permutations for the nulls.
        block_length : int or None
            Block length of the spatial permutation (default sqrt(n_voxels)).
        groups : array-like of str or None
            Layer (``stream.layer``) per regressor; default from the unit
            names or the atoms' dominant layer (:func:`regressor_groups`).
        atlas, level
            Networks (:func:`nilearn_vlm.analyses.network_membership`).
        bold : array-like (n_scans, n_voxels) or None
            BOLD on the results' voxels; enables parts 3 and 4.
        features : array-like (n_scans, n_features) or None
            Unit (or atom) time courses on the TR grid; default the atoms'
            ``atom_timecourses``.
        feature_names : list of str or None
            Names of the feature columns (default the unit names when the
            widths match, else the atom names).
        runs : array-like (n_scans,) or None
            Run per scan (leave-one-run-out folds).
        cv : optional
            Folds (:func:`nilearn_vlm.encoding.make_folds`).
        partition_by : {"stream", "layer"}, default="stream"
            How features are grouped for variance partitioning.
        feature_groups : dict of str to list of int, optional
            Explicit feature groups (column indices); overrides ``partition_by``.
        fraction : float, default=0.9
            Fraction of the predictable variance the greedy set must keep.
        max_candidates : int, default=64
            Greedy selection is skipped (with a note) for more features.
        max_maps : int, default=256
            Pairwise overlaps (and their null, ``n_permutations * n_maps^2``
            values) use at most this many maps, a random subset beyond it.
        alpha : float, default=0.05
            FDR level over pairs.
        random_state : int or None

        Returns
        -------
        AnalysisResult
            Tables ``voxel_counts``, ``count_distribution``, ``overlap_pairs``,
            ``overlap_summary``, ``ablation``, ``unit_sharing``,
            ``network_units``, ``variance_partition``, ``greedy`` (those whose
            inputs exist) and figures (:func:`redundancy_figures`).
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
        params = dict(min_count=min_count, sign=sign, overlap=overlap, n_permutations=n_permutations,
                      block_length=block_length, atlas=atlas, level=level, partition_by=partition_by,
                      fraction=fraction, alpha=alpha, random_state=random_state)
        out = AnalysisResult(self.name, params=params, models=[f"{res.model}/{res.subject}".rstrip("/")])
        out.text = (
            "Functional redundancy: voxels predicted by several units or atoms, overlap of their "
            f"significant-voxel maps ({overlap}) against a spatial block-permutation null, and, with "
            "BOLD time series, shared versus unique explained variance and the smallest unit set."
        )

        # 1. voxel counts + null
        summary, dist = voxel_count_table(sets, member, net_names, min_count)
        member_f = member.astype(np.float64)

        def count_stats(permuted):
            count = permuted.sum(axis=0, dtype=np.int64)
            n_pred = member_f @ (count >= 1).astype(np.float64)
            n_red = member_f @ (count >= min_count).astype(np.float64)
            total = member_f @ count.astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.stack([n_red / n_pred, total / n_pred], axis=1)

        null_full = None
        if len(names) > max_maps:
            # counts use every map; pairwise overlaps a random subset
            _, nulls = overlap_null(sets, n_permutations, overlap, block_length, rng, statistic=count_stats)
            keep = np.sort(rng.choice(len(names), max_maps, replace=False))
            out.notes.append(f"{len(names)} maps exceed max_maps={max_maps}: pairwise overlaps use a random "
                             f"subset of {max_maps} maps.")
        else:
            keep = np.arange(len(names))
            null_full, nulls = overlap_null(sets, n_permutations, overlap, block_length, rng,
                                            statistic=count_stats)
        null_frac, null_count = nulls[:, :, 0], nulls[:, :, 1]
        summary["null_frac_redundant"] = _nanmean(null_frac, axis=0)
        summary["p_frac_redundant"] = _pvalue(null_frac, summary["frac_redundant"].to_numpy()[None, :])
        summary["null_mean_count"] = _nanmean(null_count, axis=0)
        summary["p_mean_count"] = _pvalue(null_count, summary["mean_count"].to_numpy()[None, :])
        out.tables["voxel_counts"] = summary
        out.tables["count_distribution"] = dist
        whole = summary.iloc[0]
        out.stats.update({k: float(whole[k]) for k in (
            "frac_redundant", "null_frac_redundant", "p_frac_redundant",
            "mean_count", "null_mean_count", "p_mean_count")})

        # 2. pairwise overlap + null
        if null_full is None:
            null, _ = overlap_null(sets[keep], n_permutations, overlap, block_length, rng)
        else:
            null = null_full
        names, layers, streams, sets = [names[i] for i in keep], layers[keep], streams[keep], sets[keep]
        obs = overlap_matrix(sets, kind=overlap)
        iu, ju = np.triu_indices(len(names), k=1)
        if len(iu):
            p_pair = _pvalue(null[:, iu, ju], obs[iu, ju][None, :])
            rel = np.asarray([_relation(layers[i], layers[j], streams[i], streams[j]) for i, j in zip(iu, ju)])
            finite = np.isfinite(obs[iu, ju])
            rejected, q = fdr(np.where(finite, p_pair, np.nan), alpha=alpha)
            out.tables["overlap_pairs"] = pd.DataFrame({
                "map_a": np.asarray(names)[iu], "map_b": np.asarray(names)[ju],
                "layer_a": layers[iu], "layer_b": layers[ju], "relation": rel,
                "overlap": obs[iu, ju], "null_mean": _nanmean(null[:, iu, ju], axis=0),
                "p": p_pair, "q": q, "significant": rejected,
            })
            rows = []
            for r in RELATIONS:
                sel = (rel == r) & finite
                if not sel.any():
                    continue
                o = float(np.mean(obs[iu[sel], ju[sel]]))
                nm = _nanmean(null[:, iu[sel], ju[sel]], axis=1)
                rows.append({"relation": r, "n_pairs": int(sel.sum()), "overlap": o,
                             "null_mean": float(_nanmean(nm)), "p": float(_pvalue(nm, o))})
                key = r.replace("-", "_")
                out.stats[f"overlap_{key}"] = o
                out.stats[f"p_overlap_{key}"] = rows[-1]["p"]
            out.tables["overlap_summary"] = pd.DataFrame(rows)
            if finite.any():
                m_all = _nanmean(null[:, iu[finite], ju[finite]], axis=1)
                o_all = float(np.mean(obs[iu[finite], ju[finite]]))
                out.stats.update(mean_overlap=o_all, null_mean_overlap=float(_nanmean(m_all)),
                                 p_overlap=float(_pvalue(m_all, o_all)))
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
