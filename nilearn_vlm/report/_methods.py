"""The methods text of a report, written from the settings and provenance a result records.

As fMRIPrep's boilerplate: a paragraph a user can paste into a paper, and the
complete list of settings and versions under it.
"""

from __future__ import annotations

import json

import pandas as pd


def _flat(value, prefix=""):
    """``{dotted key: value}`` of nested dicts; long lists are summarised by their length."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, (list, tuple)) and len(value) > 20:
        return {prefix: f"[{len(value)} values: {value[0]!r}, {value[1]!r}, ..., {value[-1]!r}]"}
    return {prefix: value}


def settings_table(results):
    """Every setting and version a result records, one row each.

    Parameters
    ----------
    results : Results

    Returns
    -------
    pandas.DataFrame
        Columns ``key`` (dotted: ``settings.pipeline.n_atoms``,
        ``provenance.packages.numpy``) and ``value`` (as text).

    Examples
    --------
    >>> from nilearn_vlm.results import Results
    >>> table = settings_table(Results("toy", settings={"t_r": 2.0}, provenance={"python": "3.11"}))
    >>> table.to_dict(orient="records")
    [{'key': 'settings.t_r', 'value': '2.0'}, {'key': 'provenance.python', 'value': '3.11'}]
    """
    # as saved (JSON): tuples are lists, so a loaded result gives the same table
    doc = json.loads(json.dumps({"settings": results.settings or {}, "provenance": results.provenance or {}},
                                default=str))
    flat = {**_flat(doc["settings"], "settings"), **_flat(doc["provenance"], "provenance")}
    return pd.DataFrame({"key": list(flat), "value": [str(v) for v in flat.values()]})


def _fmt(v):
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v) or "none"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items()) or "none"
    return "none" if v is None else str(v)


def _alphas(values):
    values = list(values or [])
    if not values:
        return "the encoder's default grid"
    return f"{len(values)} values from {min(values):g} to {max(values):g}"


def methods_text(results):
    """A methods paragraph describing how a result was computed, from what it records.

    Only what the result records is stated; steps whose settings are missing
    (a result built by hand) are left out.

    Parameters
    ----------
    results : Results

    Returns
    -------
    str
        Paragraphs separated by blank lines.

    Examples
    --------
    >>> from nilearn_vlm.results import Results
    >>> res = Results("clip", settings={"t_r": 2.0, "model": "clip", "model_params": {"seed": 0},
    ...                                 "sites": "default", "pooling": "mean"},
    ...               provenance={"packages": {"nilearn_vlm": "0.1.0", "numpy": "2.0"}, "python": "3.11"})
    >>> print(methods_text(res).split("\\n\\n")[0])
    Results were computed with nilearn-vlm 0.1.0 (Python 3.11; numpy 2.0).
    """
    s = results.settings or {}
    prov = results.provenance or {}
    pkgs = dict(prov.get("packages", {}))
    own = pkgs.pop("nilearn_vlm", "(version not recorded)")
    others = "; ".join(f"{k} {v}" for k, v in pkgs.items())
    paras = [f"Results were computed with nilearn-vlm {own} (Python {prov.get('python', '?')}"
             + (f"; {others}" if others else "") + ")."]
    p = s.get("pipeline", {})
    if "model" in s:
        weights = prov.get("weight_digests", {}).get(s["model"])
        paras.append(
            f"Unit activations were extracted from the model {s['model']} ({_fmt(s.get('model_params', {}))}"
            + (f"; weights digest {weights}" if weights else "")
            + f") at the sites {_fmt(s.get('sites'))}, with {_fmt(s.get('pooling'))} pooling over tokens "
            f"({results.n_units or '?'} units). Each unit's activations were convolved with the "
            f"{p.get('hrf_model', 'glover')} hemodynamic response and sampled on the TR grid "
            f"(TR {_fmt(s.get('t_r'))} s), then standardised."
        )
    if p:
        paras.append(
            f"A sparse dictionary of {p.get('n_atoms')} atoms was learnt from the units' time courses "
            f"(l1 penalty {_fmt(p.get('atom_alpha'))}, varimax start, FISTA codes, stopped when the relative "
            f"change of the objective fell below {_fmt(p.get('atom_tol'))} or after {p.get('atom_max_iter')} "
            f"iterations, seed {p.get('seed')}); each atom's key neurons are the units that dictionaries learnt "
            "on complementary halves of the scans select consistently (complementary-pairs stability selection, "
            "Shah & Samworth 2013; the bound on the expected number of false key neurons is in the key-neuron "
            "table). An atom was interpreted when a univariate GLM of it had a significant voxel and it had a "
            f"stable key neuron; a {p.get('glm_mode')} GLM of the interpreted atoms "
            "with AR(1) prewhitening estimated each atom's voxel map "
            + (f"(high-pass {_fmt(p.get('high_pass'))} Hz); " if p.get("high_pass") else "(cosine drifts, 0.01 Hz); ")
            + f"positive and negative voxel sets are the voxels significant at FDR q < {_fmt(p.get('glm_alpha'))} "
            "(Benjamini-Hochberg over voxels, per atom)."
        )
        paras.append(
            f"A ridge encoder on the atoms, with one penalty per voxel chosen among {_alphas(p.get('alphas'))}, "
            "was evaluated by leave-one-run-out cross-validation (four contiguous blocks for a single run); "
            "its out-of-fold Pearson r was tested against a circular-shift null of "
            f"{p.get('n_permutations')} shifts within runs, family-wise corrected by the maximum statistic. "
            + ("One encoder per site (penalties among "
               f"{_alphas(p.get('site_alphas'))}) gave the layer curves, on "
               + ("every voxel" if p.get("site_voxels") == "all" else
                  "the voxels of the atlases' networks and those the atom encoder predicts (p < 0.05)")
               + ". " if p.get("encode_sites") else "")
            + f"Unit x voxel maps kept the {p.get('top_k')} units of strongest association per voxel. "
            + (f"Networks came from the atlases {_fmt(p.get('atlases'))}." if p.get("atlases") else
               "No atlas was used.")
        )
    seeds = prov.get("seeds")
    if seeds:
        paras.append(f"Seeds: {_fmt(seeds)}. Every setting and version is listed below.")
    return "\n\n".join(paras)
