"""Simulated subjects with planted polarity (arrays only, small and fast)."""

import numpy as np
import pytest

from nilearn_vlm.networks import AtlasLabels, make_lookup
from nilearn_vlm.plugins import ALLOW_ENV, reset_plugins
from nilearn_vlm.results import Results

N_LAYERS, N_VOX = 10, 400


@pytest.fixture(autouse=True, scope="module")
def _only_this_plugin():
    mp = pytest.MonkeyPatch()
    mp.setenv(ALLOW_ENV, "redundancy,polarity,compare")
    reset_plugins()
    yield
    mp.undo()
    reset_plugins()


def make_subject(mirrored, seed=0):
    """Two regressors per layer of one stream ("vision"), 400 voxels in 2 networks.

    Mirrored: the number of positive voxels grows with depth while the number
    of negative voxels shrinks. Independent: both numbers are drawn at random
    for each layer, independently.
    """
    rng = np.random.default_rng(seed)
    if mirrored:
        n_pos = 20 + 15 * np.arange(N_LAYERS)
        n_neg = 170 - 15 * np.arange(N_LAYERS)
    else:
        n_pos = rng.integers(20, 170, N_LAYERS)
        n_neg = rng.integers(20, 170, N_LAYERS)
    names, rows = [], []
    for layer in range(N_LAYERS):
        order = rng.permutation(N_VOX)
        a = np.zeros(N_VOX, np.int8)
        b = np.zeros(N_VOX, np.int8)
        a[order[: n_pos[layer]]] = 1
        b[order[n_pos[layer]: n_pos[layer] + n_neg[layer]]] = -1
        rows += [a, b]
        names += [f"vision.{layer}.attn_out.0", f"vision.{layer}.attn_out.1"]
    labels = np.repeat([1, 2], N_VOX // 2)
    atlas = AtlasLabels("toy", "array", labels, make_lookup([1, 2], ["Visual", "Default"]))
    return Results("toy", "sub-01", glm_sign_sets=np.vstack(rows), regressor_names=names,
                   network_labels={"toy": atlas})


@pytest.fixture(scope="session")
def mirrored():
    return make_subject(True)


@pytest.fixture(scope="session")
def independent():
    return make_subject(False)


@pytest.fixture(scope="session")
def subject_factory():
    return make_subject
