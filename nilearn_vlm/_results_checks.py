"""Consistency checks of a :class:`nilearn_vlm.results.Results` (results floor).

:meth:`Results.validate` calls :func:`check_results`; each failure is a
``ValueError`` or ``TypeError`` that names the field and the expected shape.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nilearn_vlm._results_inputs import _validate_analysis_inputs
from nilearn_vlm.networks._base import AtlasLabels


def check_results(results):
    """Check that the fields of ``results`` agree in shape; raise naming the field."""
    n_vox = {k: int(np.shape(v)[-1]) for k, v in results._voxel_arrays().items()}
    if results.space is not None:
        n_vox = {"space": results.space.n_voxels, **n_vox}
    if len(set(n_vox.values())) > 1:
        raise ValueError(f"the per-voxel fields disagree on the number of voxels: {n_vox}")
    if results.unit_names is not None or results.units is not None:
        if (results.units is None or results.unit_names != results.units["name"].tolist()
                or results.unit_sites != results.units["site"].tolist()):
            raise ValueError(
                "unit_names and unit_sites must be the units table's 'name' and 'site' columns; "
                "set units (the table) and leave them derived"
            )
        if results.atom_loadings is not None and results.atom_loadings.shape[1] != len(results.unit_names):
            raise ValueError(
                f"atom_loadings has {results.atom_loadings.shape[1]} units but unit_names "
                f"{len(results.unit_names)}; loadings are (n_atoms, n_units)"
            )
    if results.atom_loadings is not None and results.atom_timecourses is not None:
        if results.atom_loadings.shape[0] != results.atom_timecourses.shape[1]:
            raise ValueError(
                f"atom_loadings has {results.atom_loadings.shape[0]} atoms but atom_timecourses "
                f"{results.atom_timecourses.shape[1]}; time courses are (n_scans, n_atoms)"
            )
    if results.atom_names is not None and results.n_atoms is not None and len(results.atom_names) != results.n_atoms:
        raise ValueError(f"{len(results.atom_names)} atom_names for {results.n_atoms} atoms")
    rows = {
        n: np.atleast_2d(getattr(results, n)).shape[0]
        for n in ("glm_beta", "glm_t", "glm_sign_sets")
        if getattr(results, n) is not None
    }
    if len(set(rows.values())) > 1:
        raise ValueError(f"the GLM maps disagree on the number of regressors: {rows}")
    if rows and results.regressor_names is not None and len(results.regressor_names) != next(iter(rows.values())):
        raise ValueError(f"{len(results.regressor_names)} regressor_names for GLM maps with rows {rows}")
    if results.glm_sign_sets is not None and not np.isin(results.glm_sign_sets, (-1, 0, 1)).all():
        raise ValueError("glm_sign_sets must hold only -1, 0 and 1")
    _check_folds_and_runs(results)
    _validate_analysis_inputs(results, rows)
    if results.unit_voxel_topk is not None:
        if set(results.unit_voxel_topk) != {"index", "value"}:
            raise ValueError("unit_voxel_topk must be {'index': (k, n_voxels), 'value': (k, n_voxels)}")
        if np.shape(results.unit_voxel_topk["index"]) != np.shape(results.unit_voxel_topk["value"]):
            raise ValueError("unit_voxel_topk 'index' and 'value' must have the same shape")
    for name, table in results.tables.items():
        if not isinstance(table, pd.DataFrame):
            raise TypeError(f"tables[{name!r}] must be a pandas DataFrame, got {type(table).__name__}")
    for name, labels in results.network_labels.items():
        if not isinstance(labels, AtlasLabels):
            raise TypeError(f"network_labels[{name!r}] must be an AtlasLabels (atlas.load(space))")


def _check_folds_and_runs(results):
    n_folds = {k: v.shape[0] if v.ndim == 2 else None for k, v in results.layer_fold_scores.items()}
    bad = [k for k, n in n_folds.items() if n is None]
    if bad:
        raise ValueError(f"layer_fold_scores[{bad[0]!r}] must be 2-D (n_folds, n_voxels)")
    if len(set(n_folds.values())) > 1:
        raise ValueError(f"layer_fold_scores disagree on the number of folds: {n_folds}")
    if results.runs is None:
        return
    if results.runs.ndim != 1 or not np.issubdtype(results.runs.dtype, np.integer):
        raise ValueError(f"runs must be a 1-D integer array (n_scans,), got {results.runs.dtype} {results.runs.shape}")
    if results.atom_timecourses is not None and results.runs.shape[0] != results.atom_timecourses.shape[0]:
        raise ValueError(
            f"runs has {results.runs.shape[0]} scans but atom_timecourses {results.atom_timecourses.shape[0]}; "
            "both have one row per scan"
        )
    if results.run_labels is not None and results.runs.size:
        if results.runs.min() < 1 or results.runs.max() > len(results.run_labels):
            raise ValueError(
                f"runs must number the runs 1..{len(results.run_labels)} (one per run label), got "
                f"{results.runs.min()}..{results.runs.max()}"
            )
