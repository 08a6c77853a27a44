"""The Results fields the analyses resample: shapes checked, saved and loaded."""

import numpy as np
import pytest

from nilearn_vlm.results import Results


def _inputs(rng, n_reg=3, n_vox=7, n_runs=4, n_blocks=8):
    loro = rng.integers(-1, 2, size=(n_runs, n_reg, n_vox))
    return dict(
        glm_sign_sets=rng.integers(-1, 2, size=(n_reg, n_vox)),
        glm_sign_sets_fwe=rng.integers(-1, 2, size=(n_reg, n_vox)),
        glm_sign_sets_loro=loro,
        block_runs=np.repeat(np.arange(1, n_runs + 1), n_blocks // n_runs),
        bold_block_sums=rng.standard_normal((3, n_blocks, n_vox)).astype(np.float32),
        stream_block_sums={"vision": rng.standard_normal((3, n_blocks, n_vox)),
                           "all": np.full((3, n_blocks, n_vox), np.nan)},
        stream_layer_r={"vision": rng.standard_normal((5, n_vox))},
        stream_layer_sse={"all": rng.random((6, n_vox)) + 50.0},
    )


def test_fields_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    res = Results("toy", **_inputs(rng))
    back = Results.load(res.save(tmp_path / "r"))
    for name in ("glm_sign_sets_fwe", "glm_sign_sets_loro", "block_runs", "bold_block_sums"):
        np.testing.assert_array_equal(getattr(back, name), getattr(res, name))
    assert back.glm_sign_sets_loro.dtype == np.int8
    assert list(back.stream_block_sums) == ["vision", "all"]
    np.testing.assert_array_equal(back.stream_block_sums["vision"], res.stream_block_sums["vision"])
    assert np.isnan(back.stream_block_sums["all"]).all()
    np.testing.assert_array_equal(back.stream_layer_r["vision"], res.stream_layer_r["vision"])
    np.testing.assert_array_equal(back.stream_layer_sse["all"], res.stream_layer_sse["all"])


def test_folders_without_the_fields_still_load(tmp_path):
    res = Results("toy", glm_sign_sets=np.array([[1, 0, -1]]))
    folder = res.save(tmp_path / "r")
    back = Results.load(folder)
    assert back.stream_block_sums == {} and back.glm_sign_sets_loro is None and back.stream_layer_sse == {}


@pytest.mark.parametrize("change, message", [
    (dict(glm_sign_sets_loro=np.zeros((4, 2, 7))), "glm_sign_sets_loro must be"),
    (dict(glm_sign_sets_fwe=np.full((3, 7), 2)), "glm_sign_sets_fwe must hold only"),
    (dict(block_runs=None), "block sums need block_runs"),
    (dict(bold_block_sums=np.zeros((3, 5, 7))), "bold_block_sums must be"),
    (dict(stream_layer_r={"vision": np.zeros(7)}), "must be 2-D"),
    (dict(stream_layer_sse={"all": np.zeros(7)}), r"stream_layer_sse\['all'\] must be 2-D"),
    (dict(stream_layer_sse={"all": np.zeros((6, 5))}), "disagree on the number of voxels"),
    (dict(stream_block_sums={"text": np.zeros((3, 8, 6))}), "disagree on the number of voxels"),
])
def test_bad_shapes_are_named(change, message):
    kw = {**_inputs(np.random.default_rng(1)), **change}
    with pytest.raises(ValueError, match=message):
        Results("toy", **kw)
