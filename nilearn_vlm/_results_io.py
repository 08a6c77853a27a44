"""Reading and writing :class:`nilearn_vlm.results.Results` folders (no pickle).

The folder layout is documented in :mod:`nilearn_vlm.results`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from nilearn_vlm.networks._base import AtlasLabels
from nilearn_vlm.spaces import ImageSpace
from nilearn_vlm.units import UNIT_COLUMNS, units_table

#: Version of the folder layout written by ``Results.save`` (1: up to
#: nilearn_vlm 0.1; 2: encoder null, per-fold layer scores, runs and timings
#: as fields; 3: ``units.tsv`` holds the units table, see
#: :mod:`nilearn_vlm.units`; 4: ``encoder_r`` is the mean of within-run r
#: and the cross-validated R^2 is ``encoder_cv_r2``, no ``encoder_scores``).
FORMAT_VERSION = 4
_NA = "n/a"
# array fields saved in arrays.npz under their own name
_ARRAYS = (
    "atom_loadings",
    "atom_timecourses",
    "glm_beta",
    "glm_t",
    "glm_sign_sets",
    "glm_univariate_t",
    "glm_univariate_sign_sets",
    "atom_interpreted",
    "encoder_cv_r2",
    "encoder_alpha",
    "encoder_r",
    "encoder_p",
    "encoder_p_fwe",
    "runs",
    "glm_sign_sets_fwe",
    "glm_sign_sets_loro",
    "block_runs",
    "bold_block_sums",
)
# dict fields of arrays saved as <field>__<i> with their keys in results.json (analysis inputs)
_ARRAY_DICTS = ("stream_block_sums", "stream_layer_r", "stream_layer_sse")
# per-voxel array fields (the last axis is the voxels)
_VOXEL_ARRAYS = ("glm_beta", "glm_t", "glm_sign_sets", "glm_univariate_t", "glm_univariate_sign_sets",
                 "encoder_cv_r2", "encoder_alpha", "encoder_r",
                 "encoder_p", "encoder_p_fwe")
# fields also written as images of the input's kind, for viewers
_IMAGES = ("glm_t", "glm_sign_sets", "glm_beta", "encoder_r")


def save_results(res, folder):
    """Write ``res`` (a validated Results) to ``folder``; returns the folder as a Path."""
    folder = Path(folder)
    for sub in ("tables", "networks", "images"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    arrays = {n: getattr(res, n) for n in _ARRAYS if getattr(res, n) is not None}
    for k in ("index", "value"):
        if res.unit_voxel_topk is not None:
            arrays[f"unit_voxel_topk__{k}"] = np.asarray(res.unit_voxel_topk[k])
    layer_names = list(res.layer_scores)
    for i, k in enumerate(layer_names):
        arrays[f"layer_scores__{i}"] = res.layer_scores[k]
    fold_names = list(res.layer_fold_scores)
    for i, k in enumerate(fold_names):
        arrays[f"layer_fold_scores__{i}"] = res.layer_fold_scores[k]
    for name in _ARRAY_DICTS:
        for i, value in enumerate(getattr(res, name).values()):
            arrays[f"{name}__{i}"] = value
    atlases = {}
    for i, (k, lab) in enumerate(res.network_labels.items()):
        arrays[f"network_labels__{i}"] = lab.labels
        lab.lookup.to_csv(folder / "networks" / f"{i}.tsv", sep="\t", index=False, na_rep=_NA)
        atlases[k] = {"file": f"{i}.tsv", "atlas": lab.atlas, "space": lab.space, "description": lab.description}
    np.savez_compressed(folder / "arrays.npz", **arrays)
    if res.units is not None:
        res.units.to_csv(folder / "units.tsv", sep="\t", index=False)
    tables = {}
    for i, (k, table) in enumerate(res.tables.items()):
        plain = isinstance(table.index, pd.RangeIndex) and table.index.name is None
        out = table if plain else table.reset_index()
        out.to_csv(folder / "tables" / f"{i}.tsv", sep="\t", index=False, na_rep=_NA)
        tables[k] = {"file": f"{i}.tsv", "index": None if plain else [str(c) for c in table.index.names]}
    images = {}
    if res.space is not None:
        res.space.save(folder / "space")
        for name in _IMAGES:
            if getattr(res, name) is not None:
                images[name] = res.space.save_img(
                    getattr(res, name), folder / "images", name,
                    names=res.regressor_names if name.startswith("glm") else None,
                )
        if layer_names:
            images["layer_scores"] = res.space.save_img(
                np.vstack([res.layer_scores[k] for k in layer_names]), folder / "images",
                "layer_scores", names=layer_names,
            )
    doc = {
        "format_version": FORMAT_VERSION,
        "model": res.model,
        "subject": res.subject,
        "atom_names": res.atom_names,
        "regressor_names": res.regressor_names,
        "layer_names": layer_names,
        "layer_fold_names": fold_names,
        "run_labels": res.run_labels,
        **{f"{name}_names": list(getattr(res, name)) for name in _ARRAY_DICTS},
        "timings": res.timings,
        "network_labels": atlases,
        "tables": tables,
        "images": images,
        "has_units": res.unit_names is not None,
        "has_space": res.space is not None,
        "settings": res.settings,
        "provenance": res.provenance,
        "meta": res.meta,
    }
    (folder / "results.json").write_text(json.dumps(doc, indent=1, default=_json_default))
    return folder


def load_fields(folder):
    """The keyword arguments of ``Results`` read from a folder written by ``save_results``."""
    folder = Path(folder)
    if not (folder / "results.json").exists():
        raise FileNotFoundError(f"{folder} holds no results.json: not a folder written by Results.save")
    doc = json.loads((folder / "results.json").read_text())
    if doc.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{folder} was written by a newer nilearn_vlm (format {doc['format_version']}); upgrade"
        )
    with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    kw = {n: arrays.get(n) for n in _ARRAYS}
    if "unit_voxel_topk__index" in arrays:
        kw["unit_voxel_topk"] = {k: arrays[f"unit_voxel_topk__{k}"] for k in ("index", "value")}
    kw["layer_scores"] = {k: arrays[f"layer_scores__{i}"] for i, k in enumerate(doc["layer_names"])}
    kw["layer_fold_scores"] = {
        k: arrays[f"layer_fold_scores__{i}"] for i, k in enumerate(doc.get("layer_fold_names", []))
    }
    for name in _ARRAY_DICTS:  # absent from folders written before these fields: empty
        kw[name] = {k: arrays[f"{name}__{i}"] for i, k in enumerate(doc.get(f"{name}_names", []))}
    labels = {}
    for i, (k, info) in enumerate(doc["network_labels"].items()):
        lookup = _read_tsv(folder / "networks" / info["file"])
        lookup["canonical"] = lookup["canonical"].astype(str)
        labels[k] = AtlasLabels(
            info["atlas"], info["space"], arrays[f"network_labels__{i}"], lookup, info["description"]
        )
    tables = {}
    for k, info in doc["tables"].items():
        table = _read_tsv(folder / "tables" / info["file"])
        tables[k] = table.set_index(info["index"]) if info["index"] else table
    if doc["has_units"]:
        kw["units"] = _read_units(folder / "units.tsv")
    space = ImageSpace.load(folder / "space") if doc["has_space"] else None
    meta = doc["meta"]
    timings = doc.get("timings", {})
    if doc.get("format_version", 0) < 2:
        _upgrade_format_1(kw, tables)
        timings = meta.pop("timings", {})
    if doc.get("format_version", 0) < 4:
        kw["encoder_cv_r2"] = arrays.get("encoder_scores")  # it held the cross-validated R^2
        if kw.get("encoder_r") is not None:
            meta.setdefault("encoder_r", "r pooled over runs (written before format 4)")
    return dict(
        model=doc["model"], subject=doc["subject"], space=space, atom_names=doc["atom_names"],
        regressor_names=doc["regressor_names"], network_labels=labels, tables=tables,
        settings=doc["settings"], provenance=doc["provenance"], meta=meta,
        run_labels=doc.get("run_labels"), timings=timings, **kw,
    )


def _upgrade_format_1(kw, tables):
    """Fill the fields that format 1 kept in ``tables["encoder_null"]`` (the table is dropped)."""
    null = tables.get("encoder_null")
    if null is not None and {"voxel", "r", "p", "p_fwe"} <= set(null.columns):
        order = np.argsort(null["voxel"].to_numpy(), kind="stable")
        for field_, column in (("encoder_r", "r"), ("encoder_p", "p"), ("encoder_p_fwe", "p_fwe")):
            kw[field_] = null[column].to_numpy()[order]
        del tables["encoder_null"]


def _read_units(path):
    """The units table of ``units.tsv``; formats 1 and 2 held ``unit_name, site``, and the table is built
    from the names (:func:`nilearn_vlm.units.units_table`)."""
    header = pd.read_csv(path, sep="\t", nrows=0).columns.tolist()
    if header == ["unit_name", "site"]:
        legacy = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        return units_table(legacy["unit_name"].tolist())
    dtypes = {c: str for c in ("name", "stream", "kind", "site")}
    dtypes.update(layer="int64", index="int64", depth="float64")
    table = pd.read_csv(path, sep="\t", dtype=dtypes, keep_default_na=False, float_precision="round_trip")
    return table[list(UNIT_COLUMNS)]


def _read_tsv(path):
    return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[_NA])


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"settings/provenance/meta must be JSON-able; {type(obj).__name__} is not")
