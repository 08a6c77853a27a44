"""Checks of the :class:`~nilearn_vlm.results.Results` fields that the analyses' resampling reads.

Leave-one-run-out sign sets (``glm_sign_sets_fwe``, ``glm_sign_sets_loro``)
and the block sums of held-out predictions (``block_runs``,
``bold_block_sums``, ``stream_block_sums``, ``stream_layer_r``,
``stream_layer_sse``), computed by
:func:`nilearn_vlm.pipeline.analysis_inputs`.
"""

from __future__ import annotations

import numpy as np


def _analysis_input_arrays(res):
    """The per-voxel arrays the analyses' resampling reads (see :func:`_validate_analysis_inputs`)."""
    out = {n: getattr(res, n) for n in ("glm_sign_sets_fwe", "glm_sign_sets_loro", "bold_block_sums")
           if getattr(res, n) is not None}
    out.update({f"stream_block_sums[{k}]": v for k, v in res.stream_block_sums.items()})
    out.update({f"stream_layer_r[{k}]": v for k, v in res.stream_layer_r.items()})
    out.update({f"stream_layer_sse[{k}]": v for k, v in res.stream_layer_sse.items()})
    return out


def _validate_analysis_inputs(res, rows):
    """Shapes of the leave-one-run-out sets and of the block sums."""
    n_reg = next(iter(rows.values())) if rows else None
    for name, ndim in (("glm_sign_sets_fwe", 2), ("glm_sign_sets_loro", 3)):
        value = getattr(res, name)
        if value is None:
            continue
        if value.ndim != ndim or (n_reg is not None and value.shape[-2] != n_reg):
            raise ValueError(f"{name} must be {'(n_runs, ' if ndim == 3 else '('}n_regressors={n_reg}, n_voxels), "
                             f"got shape {value.shape}")
        if not np.isin(value, (-1, 0, 1)).all():
            raise ValueError(f"{name} must hold only -1, 0 and 1")
    sums = {"bold_block_sums": res.bold_block_sums, **{f"stream_block_sums[{k}]": v
                                                         for k, v in res.stream_block_sums.items()}}
    sums = {k: v for k, v in sums.items() if v is not None}
    if sums and res.block_runs is None:
        raise ValueError("block sums need block_runs (the run of each time block)")
    for name, value in sums.items():
        if value.ndim != 3 or value.shape[0] != 3 or value.shape[1] != len(res.block_runs):
            raise ValueError(f"{name} must be (3, n_blocks={len(res.block_runs)}, n_voxels), got {value.shape}")
    for field_name in ("stream_layer_r", "stream_layer_sse"):
        for name, value in getattr(res, field_name).items():
            if value.ndim != 2:
                raise ValueError(f"{field_name}[{name!r}] must be 2-D (n_layers, n_voxels), got {value.shape}")
