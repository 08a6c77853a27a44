"""The sections of the pipeline report, each from a :class:`~nilearn_vlm.results.Results`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nilearn_vlm.report import _figures as figs
from nilearn_vlm.report._html import Section
from nilearn_vlm.report._methods import methods_text, settings_table
from nilearn_vlm.report._quantities import QUANTITIES, label
from nilearn_vlm.report._tables import network_score_table

#: How the report signs atoms, said once (the "How to read this report" section).
SIGN_CONVENTION = (
    "Sign convention. The sign of a dictionary atom is arbitrary (flipping an atom and its loadings "
    "changes nothing), so this report signs each atom by its reference units: a voxel is positive "
    "(red) when it rises with the atom's reference units and negative (blue) when it falls as they rise, "
    "i.e. the sign of a map is the sign of those units' effect on the voxel. The reference units of an "
    "atom are its key neurons (the sign most of them load with; ties broken by the sum of their loadings), "
    "or, in a simulated subject, the planted driver's units for the atom matched to that driver. Every "
    "map, count and table of this report uses this convention; the tables saved with the results keep "
    "the dictionary's own signs, and the 'orientation' of each atom (+1 or -1, below) converts one into "
    "the other."
)


def atom_orientation(results, truth=None):
    """The report's sign of each atom (see :data:`SIGN_CONVENTION`).

    Parameters
    ----------
    results : Results
    truth : PlantedTruth, optional
        Its recovery table (``atom``, ``orientation``, ``site``) signs the
        atoms matched to planted drivers by the drivers' units.

    Returns
    -------
    pandas.DataFrame
        One row per GLM regressor: ``map``, ``orientation`` (+1 or -1; the
        report shows ``orientation * t``) and ``reference`` (the units that
        sign it).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from nilearn_vlm.results import Results
    >>> kn = pd.DataFrame({"atom": ["atom0", "atom0", "atom1"], "loading": [-0.5, -0.2, 0.3],
    ...                    "sign": [-1, -1, 1]})
    >>> res = Results("toy", glm_t=np.ones((2, 3)), atom_names=["atom0", "atom1"], tables={"key_neurons": kn})
    >>> atom_orientation(res)["orientation"].tolist()
    [-1, 1]
    """
    names = list(results.regressor_names or [])
    orient = np.ones(len(names), dtype=int)
    reference = ["none (the dictionary's sign)"] * len(names)
    kn = results.tables.get("key_neurons")
    if kn is not None and {"atom", "sign", "loading"} <= set(kn.columns):
        for atom, rows in kn.groupby(kn["atom"].astype(str), sort=False):
            if atom not in names:
                continue
            n_pos, n_neg = int((rows["sign"] > 0).sum()), int((rows["sign"] < 0).sum())
            mass = float(rows["loading"].sum())
            k = names.index(atom)
            orient[k] = -1 if n_neg > n_pos or (n_neg == n_pos and mass < 0) else 1
            reference[k] = f"its {len(rows)} key neurons"
    if truth is not None and {"atom", "orientation", "site"} <= set(truth.recovery.columns):
        atom_names = list(results.atom_names or names)
        for row in truth.recovery.itertuples():
            name = atom_names[int(row.atom)]
            if name in names:
                k = names.index(name)
                orient[k] = int(row.orientation)
                reference[k] = f"the units of the planted driver {row.site}"
    return pd.DataFrame({"map": names, "orientation": orient, "reference": reference})


def reading_section(quantities, glm_text, encoder_text):
    """"How to read this report": the sign convention, the thresholds and the quantities, said once."""
    sec = Section("How to read this report", text="\n\n".join(
        [SIGN_CONVENTION, "Thresholds. " + " ".join(t for t in (encoder_text, glm_text) if t)
         + " Maps show only the voxels that pass; the colour bar starts at the smallest value shown."]))
    quantities = list(dict.fromkeys(quantities))
    glossary = pd.DataFrame([{"quantity": QUANTITIES[q].name, "symbol": QUANTITIES[q].symbol,
                              "unit": QUANTITIES[q].unit or "-", "definition": QUANTITIES[q].description}
                             for q in quantities], columns=["quantity", "symbol", "unit", "definition"])
    sec.add_table(glossary, "The quantities this report shows", max_rows=len(glossary))
    return sec


def _masked(values, keep):
    return np.where(keep, np.nan_to_num(values), 0).astype(np.float32)


def _add_brain(sec, to_img, values, keep, title, quantity, caption, surface):
    """A thresholded glass brain (and its fsaverage views) of ``values`` where ``keep``."""
    shown = _masked(values, keep)
    if not keep.any():
        sec.text += f"\n\n{title}: no voxel passes the threshold; nothing to draw."
        return
    threshold = float(np.abs(shown[keep]).min()) * 0.999
    vmax = figs._vmax(shown, quantity)
    sec.add_figure(figs.glass_brain(to_img(shown), title, threshold, quantity, vmax=vmax), caption,
                   quantity=quantity)
    if surface:
        sec.add_figure(figs.surface_views(to_img(np.nan_to_num(values)), title, threshold, quantity, vmax=vmax),
                       f"{caption} On fsaverage5: the whole map projected (nilearn vol_to_surf), then "
                       f"thresholded at |value| >= {threshold:.3g}.", quantity=quantity)


def encoding_section(results, networks, network_of_voxel, brains):
    """The encoder's out-of-fold r: thresholded maps, per-network bars and table."""
    r, p_fwe = results.encoder_r, results.encoder_p_fwe
    n_perm = (results.settings.get("pipeline") or {}).get("n_permutations")
    sec = Section("Encoding scores", text=(
        f"{QUANTITIES['encoder_r'].description} Tested against a cross-fitted circular-shift null"
        + (f" of {n_perm} shifts" if n_perm else "")
        + " (each run's BOLD shifted and the folds refitted per shift, which keeps the BOLD's "
        "autocorrelation and the dependence of each run's prediction on the other runs) and family-wise "
        "corrected over voxels by the maximum statistic."))
    unscored = (results.meta.get("unscored_voxels") or {}).get("encoder_r")
    if unscored:
        sec.text += f" {unscored} voxel(s) cannot be scored (flat BOLD) and are left out."
    if r is None:
        sec.text += "\n\nThese results hold no out-of-fold r (Results.encoder_r); nothing to show."
        return sec
    sig = np.zeros(r.shape, bool) if p_fwe is None else np.asarray(p_fwe) < 0.05
    sec.text += (f"\n\n{int(sig.sum())} of {r.size} voxels reach p_FWE < 0.05; "
                 f"median {label('encoder_r')} over all voxels {np.nanmedian(r):.3f}.")
    if brains is not None:
        to_img, surface = brains
        _add_brain(sec, to_img, r, sig, "Encoder", "encoder_r",
                   f"{label('encoder_r')} where p_FWE < 0.05 ({int(sig.sum())} voxels).", surface)
    if networks:
        table = network_score_table(r, network_of_voxel, networks, p_fwe=p_fwe)
        col = label("encoder_r", "mean")
        sec.add_figure(figs.network_bars(table, col, "encoder_r", f"{col} per network"),
                       f"Per-network {col} (all voxels of the network).", quantity="encoder_r")
        quantities = {col: "encoder_r", label("n_voxels"): "n_voxels"}
        if label("n_encoded") in table:
            quantities[label("n_encoded")] = "n_encoded"
        sec.add_table(table, "Per network", quantities=quantities)
    return sec


def glm_threshold_text(results):
    """How the GLM's voxel sets were thresholded, from the recorded settings."""
    p = results.settings.get("pipeline") or {}
    glm = results.settings.get("glm") or {}
    alpha = p.get("glm_alpha", glm.get("alpha"))
    mode = p.get("glm_mode", glm.get("mode"))
    if alpha is None:
        return "Atom maps show the GLM's significant voxel sets (threshold not recorded)."
    return (f"Atom maps show the t-values of voxels significant at FDR q < {alpha:g} (Benjamini-Hochberg over "
            f"voxels, one family per atom; {mode or 'univariate'} GLM, AR(1) prewhitening).")


def atom_maps_section(results, orientation, shown, brains, network_tables):
    """Oriented, thresholded t-maps of the atoms shown, and per-network counts of every atom."""
    sec = Section("Signed atom maps (positive and negative BNs)", text=(
        glm_threshold_text(results) + " Signs follow the report's convention (How to read this report)."))
    signs = orientation["orientation"].to_numpy()
    for k in shown:
        name = results.regressor_names[k]
        keep = results.glm_sign_sets[k] != 0
        t = signs[k] * results.glm_t[k]
        n_pos, n_neg = int((keep & (t > 0)).sum()), int((keep & (t < 0)).sum())
        ref = orientation["reference"].iloc[k]
        caption = f"{name}: {label('glm_t')}, signed by {ref}; {n_pos} positive, {n_neg} negative voxels."
        if brains is not None:
            _add_brain(sec, brains[0], t, keep, name, "glm_t", caption, brains[1])
        else:
            sec.text += f"\n\n{caption}"
    if network_tables is not None:
        names = {"n_pos": "n_positive", "n_neg": "n_negative", "n_network": "n_voxels", "n_sig": "n_significant",
                 "frac_pos": "frac_positive", "frac_neg": "frac_negative", "share_pos": "share_positive",
                 "share_neg": "share_negative"}
        names = {col: q for col, q in names.items() if col in network_tables}
        counts = network_tables.rename(columns={col: label(q) for col, q in names.items()})
        sec.add_table(counts, "Significant voxels by sign, per network and atom (report's signs)",
                      quantities={label(q): q for q in names.values()})
    sec.add_table(orientation, "Orientation of each atom: the report shows orientation x the dictionary's t")
    return sec


def layer_section(curves, planted=None):
    """Layer curves by fractional depth with intervals; the planted layers marked."""
    sec = Section("Layer curves", text=(
        f"{QUANTITIES['layer_r'].description} Sites are placed at their {label('depth')} so that streams "
        "and models of different depths align"
        + ("; dashed lines mark the planted layers." if planted is not None and len(planted) else ".")))
    sec.add_figure(figs.layer_curves(curves, "Encoding by depth", planted),
                   f"{label('layer_r', 'mean')} by {label('depth')}, 95% bootstrap intervals over runs.",
                   quantity="layer_r")
    table = curves.rename(columns={"estimate": label("layer_r", "mean")})
    sec.add_table(table, "Layer curves", quantities={label("layer_r", "mean"): "layer_r", "depth": "depth"})
    return sec


def key_neuron_section(kn, orientation):
    """Every key neuron, with its loading in the report's signs."""
    flip = dict(zip(orientation["map"], orientation["orientation"]))
    table = kn.copy()
    if "atom" in table and "loading" in table:
        s = table["atom"].astype(str).map(flip).fillna(1).astype(int)
        for col in ("loading", "z", "sign"):
            if col in table:
                table[col] = (table[col] * s).astype(table[col].dtype)
    per_atom = table.groupby("atom", sort=False).size().rename(label("n_key")).reset_index()
    bound = kn["error_bound"].max() if "error_bound" in kn and len(kn) else float("nan")
    sec = Section("Key neurons", text=(
        "Units that dictionaries learned on complementary halves of the scans select consistently for each "
        "atom (complementary-pairs stability selection), by stream, layer and kind; the expected number of "
        f"false key neurons per atom is at most {bound:.2f} (the error_bound column). Loadings in the "
        "report's signs (a positive loading: the unit rises with the atom as shown)."))
    sec.add_table(per_atom, "Key neurons per atom", quantities={label("n_key"): "n_key"})
    sec.add_table(table, "Every key neuron")
    return sec


def methods_section(results):
    """The methods text and every setting and version."""
    sec = Section("Methods", text=methods_text(results))
    sec.add_table(settings_table(results), "Every setting and version recorded with the results")
    return sec


def recovery_section(truth):
    """The planted truth and its recovery (simulated subjects)."""
    s, th = truth.summary, truth.thresholds
    precision = s.get("mean_key_precision")
    sec = Section("Recovery of the planted truth", text=(
        f"{truth.description}\n\n"
        f"Network F1 = {s['network_f1']:.2f} (threshold {th['network_f1']:.2f}), signs correct = "
        f"{100 * s['sign_accuracy']:.1f}% (threshold {100 * th['sign_accuracy']:.0f}%), under the report's sign "
        f"convention. Key neurons of the drivers' atoms: mean {QUANTITIES['key_recall'].name} "
        f"{s['mean_key_recall']:.2f}"
        + (f", mean {QUANTITIES['key_precision'].name} {precision:.2f}." if precision is not None else ".")),
        html=f"<p class='{'ok' if truth.passed else 'bad'}'>{'RECOVERED' if truth.passed else 'NOT RECOVERED'}</p>",
    )
    sec.add_figure(figs.recovery_bars(truth.recovery),
                   "Per planted driver: Dice of its atom's significant voxels with the planted network, the "
                   "fraction of voxels with the planted sign, and the key neurons' precision and recall.")
    quantities = {label(q): q for q in ("dice", "sign_accuracy", "key_precision", "key_recall")
                  if q in truth.recovery}
    table = truth.recovery.rename(columns={q: label(q) for q in quantities.values()})
    sec.add_table(table, "One row per planted driver (site -> network, sign)", quantities=quantities)
    return sec

