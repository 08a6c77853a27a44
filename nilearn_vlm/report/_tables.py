"""Tables of the pipeline report: networks, per-network scores, layer curves."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from nilearn_vlm.report._quantities import label


def report_networks(results, level="canonical"):
    """The networks of the atlases a result was tabulated with, in the atlases' order.

    Parameters
    ----------
    results : Results
    level : {"canonical", "name"}

    Returns
    -------
    list of str
        Empty when the results carry no network labels.
    """
    names = []
    for labels in results.network_labels.values():
        for name in labels.membership(level)[0]:
            if name not in names:
                names.append(name)
    return names


def network_score_table(scores, network_of_voxel, networks, p_fwe=None, quantity="encoder_r", alpha=0.05):
    """Mean of a per-voxel score in each network, and outside them; columns labelled by the quantity.

    Parameters
    ----------
    scores : ndarray (n_voxels,)
    network_of_voxel : ndarray of str (n_voxels,)
        One network per voxel (:func:`nilearn_vlm.networks.voxel_networks`).
    networks : sequence of str
    p_fwe : ndarray (n_voxels,), optional
        Family-wise corrected p-values of the scores: adds the count of
        voxels with ``p_fwe < alpha``.
    quantity : str, default="encoder_r"
        Key of the score's quantity (:data:`~nilearn_vlm.report.QUANTITIES`).
    alpha : float, default=0.05

    Returns
    -------
    pandas.DataFrame
        ``network``, ``label("n_voxels")``, ``label(quantity, "mean")`` and
        (with ``p_fwe``) ``label("n_encoded")``; the last row is
        ``"(outside)"``.

    Examples
    --------
    >>> import numpy as np
    >>> nets = np.array(["vision", "vision", ""])
    >>> network_score_table(np.array([0.2, 0.4, 0.0]), nets, ["vision"]).round(3).to_dict(orient="records")[0]
    {'network': 'vision', 'network size [voxels]': 2, 'mean out-of-fold Pearson r': 0.3}
    """
    rows = []
    outside = ~np.isin(network_of_voxel, list(networks))
    for net, member in [(n, network_of_voxel == n) for n in networks] + [("(outside)", outside)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an empty or all-NaN network gives NaN
            mean = float(np.nanmean(scores[member])) if member.any() else float("nan")
        row = {"network": net, label("n_voxels"): int(member.sum()), label(quantity, "mean"): mean}
        if p_fwe is not None:
            row[label("n_encoded")] = int((np.asarray(p_fwe)[member] < alpha).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def layer_curve_table(layer_fold_scores, network_of_voxel, networks, units, random_state=0):
    """Per-layer mean out-of-fold r per network, with bootstrap intervals over folds (runs).

    Parameters
    ----------
    layer_fold_scores : dict
        ``{site: (n_folds, n_voxels)}`` per-fold correlations
        (``Results.layer_fold_scores``).
    network_of_voxel : ndarray of str
    networks : sequence of str
    units : pandas.DataFrame
        The units table holding the sites (``Results.units``, see
        :mod:`nilearn_vlm.units`).
    random_state : int

    Returns
    -------
    pandas.DataFrame
        Columns ``site``, ``stream``, ``layer``, ``depth`` (the site's
        fractional depth along the model, :mod:`nilearn_vlm.units`), ``kind``,
        ``network``, ``estimate``, ``low``, ``high``.
    """
    from nilearn_vlm.stats import bootstrap_ci
    from nilearn_vlm.units import group_table

    sites = group_table(units, "site").set_index("group")
    rows = []
    for site, scores in layer_fold_scores.items():
        stream, layer, depth, kind = sites.loc[site, ["stream", "layer", "depth", "kind"]]
        for net in networks:
            member = network_of_voxel == net
            per_run = np.nanmean(scores[:, member], axis=1)
            ci = bootstrap_ci(per_run, n_bootstrap=2000, random_state=random_state)
            rows.append({
                "site": site, "stream": stream, "layer": int(layer), "depth": float(depth), "kind": kind,
                "network": net,
                "estimate": float(ci.estimate), "low": float(ci.low), "high": float(ci.high),
            })
    return pd.DataFrame(rows)


