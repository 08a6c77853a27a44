"""The HTML report of one fitted subject, built from its results alone.

Used by ``nilearn-vlm demo``, ``nilearn-vlm run`` and ``nilearn-vlm report``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nilearn_vlm.networks import voxel_networks
from nilearn_vlm.report import _figures as figs
from nilearn_vlm.report._analyses import analysis_sections
from nilearn_vlm.report._html import Report, Section
from nilearn_vlm.results import Results

#: Recovery a simulated subject must reach to count as recovered.
RECOVERY_THRESHOLDS = {"network_f1": 0.9, "sign_accuracy": 0.95}


@dataclass
class PlantedTruth:
    """What a simulated subject planted and how well the results recover it.

    Given to :func:`build_report` by the demo (the planted truth is known
    only for simulated data); the report shows it in its first section.

    Parameters
    ----------
    description : str
        How the subject was simulated, in words.
    recovery : pandas.DataFrame
        One row per planted driver, with at least ``site``, ``network``,
        ``sign``, ``atom``, ``dice`` and ``sign_accuracy`` (see
        :func:`nilearn_vlm.datasets._recovery.evaluate_recovery`).
    summary : dict
        ``network_f1``, ``sign_accuracy`` and ``mean_key_recall``.
    thresholds : dict
        Minimum ``network_f1`` and ``sign_accuracy`` to count as recovered
        (default :data:`RECOVERY_THRESHOLDS`).
    """

    description: str
    recovery: pd.DataFrame
    summary: dict
    thresholds: dict = field(default_factory=lambda: dict(RECOVERY_THRESHOLDS))

    @property
    def passed(self):
        """Whether every thresholded measure reaches its threshold."""
        return all(self.summary[k] >= v for k, v in self.thresholds.items())


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


def network_score_table(scores, network_of_voxel, networks):
    """Mean of a per-voxel score in each network, and outside them.

    Parameters
    ----------
    scores : ndarray (n_voxels,)
    network_of_voxel : ndarray of str (n_voxels,)
        One network per voxel (:func:`nilearn_vlm.networks.voxel_networks`).
    networks : sequence of str

    Returns
    -------
    pandas.DataFrame
        ``network``, ``mean r``, ``n_voxels``; the last row is ``"(outside)"``.
    """
    rows = []
    outside = ~np.isin(network_of_voxel, list(networks))
    for net, member in [(n, network_of_voxel == n) for n in networks] + [("(outside)", outside)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an empty or all-NaN network gives NaN
            mean = float(np.nanmean(scores[member]))
        rows.append({"network": net, "mean r": mean, "n_voxels": int(member.sum())})
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
        Columns ``site``, ``stream``, ``layer``, ``kind``, ``network``,
        ``estimate``, ``low``, ``high``.
    """
    from nilearn_vlm.stats import bootstrap_ci
    from nilearn_vlm.units import group_table

    sites = group_table(units, "site").set_index("group")
    rows = []
    for site, scores in layer_fold_scores.items():
        stream, layer, kind = sites.loc[site, ["stream", "layer", "kind"]]
        for net in networks:
            member = network_of_voxel == net
            per_run = np.nanmean(scores[:, member], axis=1)
            ci = bootstrap_ci(per_run, n_bootstrap=2000, random_state=random_state)
            rows.append({
                "site": site, "stream": stream, "layer": int(layer), "kind": kind, "network": net,
                "estimate": float(ci.estimate), "low": float(ci.low), "high": float(ci.high),
            })
    return pd.DataFrame(rows)


def build_report(results, *, analyses=None, skipped=None, networks=None, truth=None):
    """Build the report of one subject from its results.

    Everything shown comes from ``results`` (a
    :class:`~nilearn_vlm.results.Results` or a folder written by
    :meth:`~nilearn_vlm.results.Results.save`) and the optional arguments,
    so ``nilearn-vlm report FOLDER`` rebuilds the report of a saved run.

    Parameters
    ----------
    results : Results or str or pathlib.Path
        The results, or their folder.
    analyses : dict of str to AnalysisResult, optional
        Results of :func:`nilearn_vlm.analyses.run_analyses`; each gives a
        section (:func:`~nilearn_vlm.report.analysis_section`).
    skipped : dict of str to str, optional
        Analyses not run, and why.
    networks : sequence of str, optional
        Networks of the per-network tables and layer curves (canonical
        names); default every network of the atlases the results were
        tabulated with (``results.network_labels``; see
        :func:`report_networks`).
    truth : PlantedTruth, optional
        The planted truth of a simulated subject and its recovery (the demo).

    Returns
    -------
    Report

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.results import Results
    >>> report = build_report(Results("toy", encoder_scores=np.zeros(3), timings={"fit": 1.0}))
    >>> [s.title for s in report.sections]
    ['Encoding scores', 'Timings', 'Provenance']
    """
    if not isinstance(results, Results):
        results = Results.load(results)
    known = report_networks(results)
    networks = known if networks is None else [str(n) for n in networks]
    unknown = [n for n in networks if n not in known]
    if unknown:
        raise ValueError(f"networks {unknown} are not in the results' atlases; networks there: {known}")
    network_of_voxel = voxel_networks(results.network_labels.values()) if networks else None
    space = results.space
    show_brains = space is not None and space.kind == "nifti"

    def to_img(values):
        return space.inverse_transform(np.asarray(values, dtype=np.float32))

    subtitle = f"model {results.model}, subject {results.subject or '-'}, {results.n_units} units"
    report = Report("nilearn-vlm: neuron-level encoding report", subtitle=subtitle)
    if truth is not None:
        report.add(_recovery_section(truth))

    if results.encoder_r is not None:
        unscored = (results.meta.get("unscored_voxels") or {}).get("encoder_r", int(np.isnan(results.encoder_r).sum()))
        sec = Section("Encoding scores", text=(
            "Mean over held-out runs of the within-run Pearson r of a ridge encoder on the atoms (nested "
            "leave-one-run-out: the per-voxel penalty is chosen inside the training runs; each run's constant, "
            "drifts and confounds are removed from predictions and BOLD alike), with a cross-fitted circular-shift "
            "null (each run's BOLD shifted and the folds refitted per shift, which keeps the BOLD autocorrelation "
            "and the dependence of each run's prediction on the other runs; family-wise corrected p)."
            + (f" {unscored} voxel(s) cannot be scored (flat BOLD) and are left out." if unscored else "")))
        if show_brains:
            sec.add_figure(figs.glass_brain(to_img(np.nan_to_num(results.encoder_r)), "out-of-fold r"),
                           "Encoder score per voxel.")
        if networks:
            table = network_score_table(results.encoder_r, network_of_voxel, networks)
            sec.add_figure(figs.network_bars(table, "mean r", "Mean out-of-fold r per network", "r"),
                           "Per-network mean of the encoder's out-of-fold r.")
            sec.add_table(table)
        report.add(sec)

    if results.glm_sign_sets is not None and results.glm_t is not None:
        sec = Section("Signed atom maps (positive and negative BNs)", text=(
            "GLM t-maps of the atoms (AR(1) prewhitening, FDR); red voxels follow the atom (positive BNs), "
            "blue voxels mirror it (negative BNs)."))
        shown = (list(truth.recovery["atom"].unique()) if truth is not None
                 else list(range(min(4, results.glm_t.shape[0]))))
        for atom in shown[:4]:
            t_map = np.where(results.glm_sign_sets[atom] != 0, results.glm_t[atom], 0).astype(np.float32)
            if show_brains:
                sec.add_figure(figs.glass_brain(to_img(t_map), results.regressor_names[atom]),
                               f"Significant t-values of {results.regressor_names[atom]}.")
        if "network_counts" in results.tables:
            sec.add_table(results.tables["network_counts"], "Significant voxels by sign per network and atom.")
        report.add(sec)

    if results.layer_fold_scores and networks and results.units is not None:
        curves = layer_curve_table(results.layer_fold_scores, network_of_voxel, networks, results.units)
        sec = Section("Layer curves", text=(
            "Mean out-of-fold r per layer and network, one encoder per site, with 95% bootstrap intervals "
            "over runs (runs resampled whole, so autocorrelation within runs is kept)."))
        sec.add_figure(figs.layer_curves(curves, "Per-layer encoding"), "Layer curves per stream.")
        report.add(sec)

    if "key_neurons" in results.tables:
        kn = results.tables["key_neurons"]
        sec = Section("Key neurons", text="Units with |z-scored loading| >= 1.96 on each atom, by stream, layer and kind.")
        sec.add_table(kn.head(30), f"First rows of {len(kn)} key-neuron entries.")
        report.add(sec)

    for section in analysis_sections(dict(sorted((analyses or {}).items())), skipped):
        report.add(section)

    if results.timings:
        report.add(Section("Timings").add_table(
            pd.DataFrame({"step": list(results.timings), "seconds": list(results.timings.values())})))
    prov = results.provenance or {}
    report.add(Section("Provenance", text="\n\n".join(f"{k}: {v}" for k, v in prov.items())))
    return report


def _recovery_section(truth):
    s = truth.summary
    th = truth.thresholds
    sec = Section(
        "Recovery of the planted truth",
        text=(
            f"{truth.description}\n\n"
            f"Network F1 = {s['network_f1']:.2f} (threshold {th['network_f1']:.2f}), signs correct = "
            f"{100 * s['sign_accuracy']:.1f}% (threshold {100 * th['sign_accuracy']:.0f}%), mean key-neuron "
            f"recall of the driving units = {s['mean_key_recall']:.2f}."
        ),
        html=f"<p class='{'ok' if truth.passed else 'bad'}'>{'RECOVERED' if truth.passed else 'NOT RECOVERED'}</p>",
    )
    sec.add_figure(figs.recovery_bars(truth.recovery), "Per planted driver: Dice of its atom's significant "
                   "voxels with the planted network, and the fraction of voxels with the planted sign.")
    sec.add_table(truth.recovery, "One row per planted driver (site -> network, sign).")
    return sec

