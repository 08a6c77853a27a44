"""The HTML report of one fitted subject, built from its results alone.

Used by ``nilearn-vlm demo``, ``nilearn-vlm run`` and ``nilearn-vlm report``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nilearn_vlm.networks import network_table, voxel_networks
from nilearn_vlm.report import _sections as sections
from nilearn_vlm.report._analyses import analysis_sections
from nilearn_vlm.report._html import Report, Section
from nilearn_vlm.report._quantities import label
from nilearn_vlm.report._sections import atom_orientation
from nilearn_vlm.report._tables import layer_curve_table, report_networks
from nilearn_vlm.results import Results
from nilearn_vlm.units import group_table

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
        ``network_f1``, ``sign_accuracy``, ``mean_key_recall`` and
        (optional) ``mean_key_precision``.
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



def _quantities_shown(report):
    """Keys of the quantities the report's figures and tables show, in order of appearance."""
    keys = []
    for sec in report.sections:
        found = [f.quantity for f in sec.figures] + [q for t in sec.tables for q in t.quantities.values()]
        keys += [k for k in found if k is not None and k not in keys]
    return keys


def _shown_atoms(results, truth, n=4):
    """The atoms drawn: those of the planted drivers, else those with the most significant voxels."""
    if truth is not None and "atom" in truth.recovery:
        atoms = list(results.atom_names or results.regressor_names)
        names = [atoms[int(a)] for a in pd.unique(truth.recovery["atom"])]
        return [results.regressor_names.index(a) for a in names if a in results.regressor_names]
    n_sig = (results.glm_sign_sets != 0).sum(axis=1)
    order = np.argsort(-n_sig, kind="stable")
    return [int(k) for k in order[:n] if n_sig[k] > 0]


def _planted_layers(truth, units):
    """``stream, depth, network, sign`` of each planted driver's site (for the layer curves)."""
    if truth is None or units is None or "site" not in truth.recovery:
        return None
    sites = group_table(units, "site").set_index("group")
    rows = [{"stream": sites.loc[r.site, "stream"], "depth": float(sites.loc[r.site, "depth"]),
             "network": r.network, "sign": int(r.sign)}
            for r in truth.recovery.itertuples() if r.site in sites.index]
    return pd.DataFrame(rows, columns=["stream", "depth", "network", "sign"])


def build_report(results, *, analyses=None, skipped=None, networks=None, truth=None):
    """Build the report of one subject from its results.

    Everything shown comes from ``results`` (a
    :class:`~nilearn_vlm.results.Results` or a folder written by
    :meth:`~nilearn_vlm.results.Results.save`) and the optional arguments,
    so ``nilearn-vlm report FOLDER`` rebuilds the report of a saved run.
    Every figure and table column is labelled by the quantity it shows
    (:data:`~nilearn_vlm.report.QUANTITIES`); maps are thresholded, with the
    threshold and the correction stated; atoms are signed by one convention
    (:data:`~nilearn_vlm.report.SIGN_CONVENTION`); tables are complete.

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
    >>> report = build_report(Results("toy", encoder_r=np.zeros(3), timings={"fit": 1.0}))
    >>> [s.title for s in report.sections]
    ['How to read this report', 'Encoding scores', 'Methods', 'Timings', 'Provenance']
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
    brains = None
    if space is not None and space.kind == "nifti":
        def to_img(values):
            return space.inverse_transform(np.asarray(values, dtype=np.float32))

        brains = (to_img, space.space == "MNI152")

    subtitle = f"model {results.model}, subject {results.subject or '-'}, {results.n_units} units"
    report = Report("nilearn-vlm: neuron-level encoding report", subtitle=subtitle)
    has_glm = results.glm_sign_sets is not None and results.glm_t is not None
    if truth is not None:
        report.add(sections.recovery_section(truth))
    if results.encoder_r is not None or results.encoder_scores is not None:
        report.add(sections.encoding_section(results, networks, network_of_voxel, brains))
    orientation = atom_orientation(results, truth) if has_glm else None
    if has_glm:
        tables = None
        if results.network_labels:
            oriented = results.glm_sign_sets * orientation["orientation"].to_numpy()[:, None]
            tables = network_table(oriented, list(results.network_labels.values()), target=space,
                                   level="canonical", map_names=results.regressor_names)
        report.add(sections.atom_maps_section(results, orientation, _shown_atoms(results, truth), brains, tables))
    if results.layer_fold_scores and networks and results.units is not None:
        curves = layer_curve_table(results.layer_fold_scores, network_of_voxel, networks, results.units)
        report.add(sections.layer_section(curves, _planted_layers(truth, results.units)))
    if "key_neurons" in results.tables:
        if orientation is None:
            orientation = pd.DataFrame({"map": [], "orientation": [], "reference": []})
        report.add(sections.key_neuron_section(results.tables["key_neurons"], orientation))

    for section in analysis_sections(dict(sorted((analyses or {}).items())), skipped):
        report.add(section)
    report.add(sections.methods_section(results))
    if results.timings:
        timings = pd.DataFrame({"step": list(results.timings), label("seconds"): list(results.timings.values())})
        report.add(Section("Timings", text=f"{sum(results.timings.values()):.1f} s in all.").add_table(
            timings, quantities={label("seconds"): "seconds"}, max_rows=len(timings)))
    prov = results.provenance or {}
    report.add(Section("Provenance", text="\n\n".join(f"{k}: {v}" for k, v in prov.items())))
    if results.encoder_r is not None and results.encoder_p_fwe is not None:
        encoder = "The encoder map shows voxels with p_FWE < 0.05."
    else:
        encoder = ""
    report.sections.insert(0, sections.reading_section(
        ["encoder_p_fwe"] * bool(encoder) + _quantities_shown(report),
        sections.glm_threshold_text(results) if has_glm else "", encoder))
    return report
