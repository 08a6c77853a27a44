"""The pipeline's analysis inputs: block sums on every voxel kept, the delete-one-layer r on fewer."""

import numpy as np
import pandas as pd

from nilearn_vlm.analyses import bold_block_sums, heldout_predictions, prediction_block_sums, time_blocks, within_run_r
from nilearn_vlm.pipeline import analysis_inputs


def _data(rng, n_runs=3, n_scans=40, n_vox=12):
    runs = np.repeat(np.arange(1, n_runs + 1), n_scans)
    units = pd.DataFrame({"stream": ["vision"] * 6 + ["text"] * 6, "layer": [0, 0, 1, 1, 2, 2] * 2})
    X = rng.standard_normal((runs.size, len(units)))
    Y = X[:, :3] @ rng.standard_normal((3, n_vox)) + rng.standard_normal((runs.size, n_vox))
    return X, Y, runs, units


def test_layer_r_only_on_layer_voxels_and_block_sums_everywhere():
    rng = np.random.default_rng(0)
    X, Y, runs, units = _data(rng)
    lay = np.zeros(Y.shape[1], bool)
    lay[[1, 4, 5, 9]] = True
    out = analysis_inputs(np.zeros((runs.size, 0)), X, Y, runs, None, units, None, layer_voxels=lay)
    assert np.isfinite(np.asarray(out["bold_block_sums"], float)).all()
    assert all(np.isfinite(v).all() for v in out["stream_block_sums"].values())
    blocks, block_runs = time_blocks(runs, 20)
    for stream, r in out["stream_layer_r"].items():
        assert r.shape == (3, Y.shape[1])
        assert np.isnan(r[:, ~lay]).all() and np.isfinite(r[:, lay]).all()
        # independent recomputation on the layer voxels alone, dropping layer 1 of the stream
        cols = (units["stream"] == stream).to_numpy() & (units["layer"] != 1).to_numpy()
        pred = heldout_predictions(X[:, cols], Y[:, lay], runs, 16)
        ref = within_run_r(prediction_block_sums(pred, Y[:, lay], runs, blocks), bold_block_sums(Y[:, lay], runs, blocks),
                           block_runs)
        np.testing.assert_allclose(r[1, lay], ref, rtol=1e-4, atol=1e-5)
    # without layer_voxels the layer r covers keep (the former behaviour)
    keep = ~lay
    full = analysis_inputs(np.zeros((runs.size, 0)), X, Y, runs, None, units, keep)
    r = full["stream_layer_r"]["vision"]
    assert np.isfinite(r[:, keep]).all() and np.isnan(r[:, ~keep]).all()
    # no layer voxel: no layer r, block sums still there
    none = analysis_inputs(np.zeros((runs.size, 0)), X, Y, runs, None, units, None,
                           layer_voxels=np.zeros(Y.shape[1], bool))
    assert none["stream_layer_r"] == {} and set(none["stream_block_sums"]) == {"vision", "text", "all"}


def test_layer_sse_of_all_units_against_block_sums_and_the_synthetic_generator():
    """stream_layer_sse['all']: all units refitted without each (stream, layer) group, squared error summed over
    blocks, recomputed from block sums; NaN outside keep; the synthetic generator stores the same numbers."""
    from nilearn_vlm.analyses import block_sse, layer_groups
    from nilearn_vlm.testing.analyses import model_results, units_table_of

    rng = np.random.default_rng(3)
    X, Y, runs, units = _data(rng)
    keep = np.ones(Y.shape[1], bool)
    keep[[0, 7]] = False
    out = analysis_inputs(np.zeros((runs.size, 0)), X, Y, runs, None, units, keep)
    sse = out["stream_layer_sse"]["all"]
    labels, streams = layer_groups(units)
    assert sse.shape == (6, Y.shape[1]) and streams.tolist() == ["vision"] * 3 + ["text"] * 3
    assert np.isnan(sse[:, ~keep]).all() and np.isfinite(sse[:, keep]).all()
    blocks, _ = time_blocks(runs, 20)
    bold = bold_block_sums(Y[:, keep], runs, blocks)
    for g, (stream, layer) in enumerate([("vision", 0), ("vision", 1), ("vision", 2), ("text", 0), ("text", 1),
                                         ("text", 2)]):
        cols = ~((units["stream"] == stream) & (units["layer"] == layer)).to_numpy()
        pred = heldout_predictions(X[:, cols], Y[:, keep], runs, 16)
        ref = block_sse(prediction_block_sums(pred, Y[:, keep], runs, blocks), bold).sum(0)
        np.testing.assert_allclose(sse[g, keep], ref, rtol=1e-5)
    # the synthetic generator's Results hold the same delete-one-layer squared errors (on every voxel)
    table = units_table_of({"vision": 3, "text": 3}, 2)  # the same units as a full units table
    assert table[["stream", "layer"]].equals(units)
    sim = model_results("m", table, X, Y, runs, layer_jackknife=False)
    np.testing.assert_allclose(sim.stream_layer_sse["all"][:, keep], sse[:, keep], rtol=1e-5)
    assert not analysis_inputs(np.zeros((runs.size, 0)), X, Y, runs, None, units, keep,
                               layer_sse=False)["stream_layer_sse"]
