"""The HTML report of one fitted subject (used by ``nilearn-vlm demo`` and ``run``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nilearn_vlm.report import _figures as figs
from nilearn_vlm.report._html import Report, Section


def _network_score_table(scores, network_of_voxel, networks):
    rows = []
    for net in networks:
        member = network_of_voxel == net
        rows.append({"network": net, "mean r": float(np.nanmean(scores[member])), "n_voxels": int(member.sum())})
    rows.append({
        "network": "(outside)",
        "mean r": float(np.nanmean(scores[~np.isin(network_of_voxel, list(networks))])),
        "n_voxels": int((~np.isin(network_of_voxel, list(networks))).sum()),
    })
    return pd.DataFrame(rows)


def build_report(results, extras, study=None, recovery=None, rec_summary=None, curves=None,
                 analyses=None, skipped=None, networks=None):
    """Build the report of one subject.

    Parameters
    ----------
    results : nilearn_vlm.results.Results
    extras : dict
        Second output of :func:`nilearn_vlm.pipeline.fit_subject`.
    study : Bunch, optional
        The simulated study (gives the planted truth and network labels).
    recovery, rec_summary : optional
        Output of :func:`nilearn_vlm.datasets._recovery.evaluate_recovery`.
    curves : pandas.DataFrame, optional
        Layer curves (:func:`nilearn_vlm.demo.layer_curve_table`).
    analyses : dict, optional
        ``{name: AnalysisResult}``; each gives a section.
    skipped : dict, optional
        ``{name: reason}`` of analyses not run.
    networks : sequence of str, optional
        Networks shown (default: the study's).

    Returns
    -------
    Report
    """
    from nilearn_vlm.datasets import STUDY_NETWORKS

    networks = list(networks or STUDY_NETWORKS)
    space = extras["space"]

    def to_img(values):
        return space.inverse_transform(np.asarray(values, dtype=np.float32))
    subtitle = f"model {results.model}, subject {results.subject or '-'}, {results.n_units} units"
    report = Report("nilearn-vlm: neuron-level encoding report", subtitle=subtitle)

    if study is not None and recovery is not None:
        ok = rec_summary["network_f1"] >= 0.9 and rec_summary["sign_accuracy"] >= 0.95
        sec = Section(
            "Recovery of the planted truth",
            text=(
                f"{study.description}\n\n"
                f"Network F1 = {rec_summary['network_f1']:.2f} (threshold 0.90), signs correct = "
                f"{100 * rec_summary['sign_accuracy']:.1f}% (threshold 95%), mean key-neuron recall of the "
                f"driving units = {rec_summary['mean_key_recall']:.2f}."
            ),
            html=f"<p class='{'ok' if ok else 'bad'}'>{'RECOVERED' if ok else 'NOT RECOVERED'}</p>",
        )
        sec.add_figure(figs.recovery_bars(recovery), "Per planted driver: Dice of its atom's significant "
                       "voxels with the planted network, and the fraction of voxels with the planted sign.")
        sec.add_table(recovery, "One row per planted driver (site -> network, sign).")
        report.add(sec)

    network_of_voxel = study.networks if study is not None else None
    sec = Section("Encoding scores", text=(
        "Out-of-fold Pearson r of a ridge encoder on the atoms (leave-one-run-out, per-voxel alpha), "
        "with a circular-shift null (family-wise corrected p) that keeps the BOLD autocorrelation."))
    if space.kind == "nifti":
        sec.add_figure(figs.glass_brain(to_img(np.nan_to_num(results.encoder_scores)), "out-of-fold r"),
                       "Encoder score per voxel.")
    if network_of_voxel is not None:
        table = _network_score_table(results.encoder_scores, network_of_voxel, networks)
        sec.add_figure(figs.network_bars(table, "mean r", "Mean out-of-fold r per network", "r"),
                       "Per-network mean of the encoder's out-of-fold r.")
        sec.add_table(table)
    report.add(sec)

    sec = Section("Signed atom maps (positive and negative BNs)", text=(
        "GLM t-maps of the atoms (AR(1) prewhitening, FDR); red voxels follow the atom (positive BNs), "
        "blue voxels mirror it (negative BNs)."))
    shown = list(recovery["atom"].unique()) if recovery is not None else list(range(min(4, results.n_atoms)))
    for atom in shown[:4]:
        t_map = np.where(results.glm_sign_sets[atom] != 0, results.glm_t[atom], 0).astype(np.float32)
        if space.kind == "nifti":
            sec.add_figure(figs.glass_brain(to_img(t_map), results.regressor_names[atom]),
                           f"Significant t-values of {results.regressor_names[atom]}.")
    if "network_counts" in results.tables:
        sec.add_table(results.tables["network_counts"], "Significant voxels by sign per network and atom.")
    report.add(sec)

    if curves is not None and len(curves):
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

    for name, result in sorted((analyses or {}).items()):
        try:
            report.add(result.to_section())
        except Exception as exc:  # noqa: BLE001 - a faulty analysis must not lose the report
            report.add(Section(f"Analysis {name}", text=f"This analysis could not render: {exc}"))
    if skipped:
        report.add(Section("Analyses skipped", text="\n\n".join(f"{k}: {v}" for k, v in skipped.items())))

    timings = results.meta.get("timings", {})
    if timings:
        report.add(Section("Timings").add_table(
            pd.DataFrame({"step": list(timings), "seconds": list(timings.values())})))
    prov = results.provenance or {}
    report.add(Section("Provenance", text="\n\n".join(f"{k}: {v}" for k, v in prov.items())))
    return report
