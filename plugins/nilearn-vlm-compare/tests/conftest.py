"""Simulated models with a planted architecture difference (arrays only, small and fast)."""

import numpy as np
import pytest

from nilearn_vlm.networks import AtlasLabels, make_lookup
from nilearn_vlm.plugins import ALLOW_ENV, reset_plugins
from nilearn_vlm.results import Results

N_VOX = 300
NETWORKS = ["Visual", "Language", "Default"]  # voxels 0-99, 100-199, 200-299


@pytest.fixture(autouse=True, scope="module")
def _only_this_plugin():
    mp = pytest.MonkeyPatch()
    mp.setenv(ALLOW_ENV, "redundancy,polarity,compare")
    reset_plugins()
    yield
    mp.undo()
    reset_plugins()


def atlas():
    labels = np.repeat([1, 2, 3], N_VOX // 3)
    return AtlasLabels("toy", "array", labels, make_lookup([1, 2, 3], NETWORKS))


def make_model(kind, model, seed=0, streams=("vision", "text"), n_layers=4, per_layer=2, scores=None,
               layer_scores=None):
    """Towers: vision units drive Visual voxels, text units Language voxels.
    Fused: units of both streams drive the same Default voxels."""
    rng = np.random.default_rng(seed)
    names, rows = [], []
    for stream in streams:
        for layer in range(n_layers):
            for i in range(per_layer):
                names.append(f"{stream}.{layer}.attn_out.{i}")
                row = np.zeros(N_VOX, np.int8)
                if kind == "towers":
                    block = np.arange(0, 100) if "vision" in stream or "image" in stream else np.arange(100, 200)
                else:
                    block = np.arange(200, 300)
                row[block[rng.random(block.size) < 0.6]] = 1
                rows.append(row)
    return Results(model, "sub-01", glm_sign_sets=np.vstack(rows), regressor_names=names,
                   network_labels={"toy": atlas()}, encoder_scores=scores, layer_scores=layer_scores or {})


@pytest.fixture(scope="session")
def towers():
    return make_model("towers", "clip")


@pytest.fixture(scope="session")
def fused():
    return make_model("fused", "meter", seed=1)


@pytest.fixture(scope="session")
def subject_factory():
    return make_model
