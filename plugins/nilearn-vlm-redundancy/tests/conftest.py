"""Simulated subjects with planted redundancy (arrays only, small and fast)."""

import numpy as np
import pytest

from nilearn_vlm.networks import AtlasLabels, make_lookup
from nilearn_vlm.plugins import ALLOW_ENV, reset_plugins
from nilearn_vlm.results import Results

N_LAYERS, PER_LAYER, N_VOX, N_SCANS = 3, 2, 240, 240


@pytest.fixture(autouse=True, scope="module")
def _only_this_plugin():
    # model plugins may import torch when loaded; these tests need this plugin only
    mp = pytest.MonkeyPatch()
    mp.setenv(ALLOW_ENV, "redundancy,polarity,compare")
    reset_plugins()
    yield
    mp.undo()
    reset_plugins()


def _zscore(x):
    return (x - x.mean(0)) / x.std(0)


def make_subject(redundant, seed=0):
    """12 units (2 streams x 3 layers x 2 units), 240 voxels in 3 networks.

    Redundant: every unit is a noisy copy of one latent signal driving voxels
    0-79. Non-redundant: each unit carries its own signal driving its own
    block of 20 voxels.
    """
    rng = np.random.default_rng(seed)
    units = [f"{s}.{l}.attn_out.{i}" for s in ("vision", "text") for l in range(N_LAYERS) for i in range(PER_LAYER)]
    n_units = len(units)
    runs = np.repeat(np.arange(3), N_SCANS // 3)
    drive = np.zeros((N_SCANS, N_VOX))
    if redundant:
        s = rng.standard_normal((N_SCANS, 1))
        X = s + 0.2 * rng.standard_normal((N_SCANS, n_units))
        drive[:, :80] = s
    else:
        X = rng.standard_normal((N_SCANS, n_units))
        for u in range(n_units):
            drive[:, 20 * u: 20 * (u + 1)] = X[:, [u]]
    Y = drive + 0.8 * rng.standard_normal((N_SCANS, N_VOX))
    r = _zscore(X).T @ _zscore(Y) / N_SCANS
    signs = (np.sign(r) * (np.abs(r) > 0.3)).astype(np.int8)
    labels = np.repeat([1, 2, 3], N_VOX // 3)
    atlas = AtlasLabels("toy", "array", labels, make_lookup([1, 2, 3], ["Visual", "Language", "Default"]))
    res = Results("toy", "sub-01", unit_names=units, glm_sign_sets=signs, glm_t=r * 10,
                  regressor_names=units, network_labels={"toy": atlas})
    return res, X, Y, runs


@pytest.fixture(scope="session")
def redundant():
    return make_subject(True)


@pytest.fixture(scope="session")
def separate():
    return make_subject(False)
