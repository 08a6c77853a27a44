"""The demo's networks finding on a small hand-made case (scipy's Fisher test as the reference)."""

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact
from sklearn.utils import Bunch

from nilearn_vlm.demo import networks_finding


def _case():
    networks = np.array(["vision"] * 10 + ["language"] * 10 + [""] * 30)
    sets = np.zeros((3, networks.size), np.int8)
    sets[0, :8] = -1  # atom 0: vision, mirrored (orientation -1 gives +1)
    sets[0, 25] = -1  # one voxel outside
    sets[1, 10:12] = 1  # atom 1: two language voxels only
    sets[1, 30:40] = 1  # and ten outside
    sets[2, 40:46] = 1  # atom 2: inside the control network
    recovery = pd.DataFrame({"site": ["v.2", "t.4"], "network": ["vision", "language"], "sign": [1, 1],
                             "atom": [0, 1], "orientation": [-1, 1], "predicted_network": ["vision", "none"],
                             "sign_accuracy": [1.0, 1.0]})
    results = Bunch(glm_sign_sets=sets, atom_interpreted=np.array([True, True, False]))
    control = np.zeros(networks.size, bool)
    control[40:50] = True
    return results, recovery, Bunch(networks=networks), control


def test_plants_scored_by_precision_recall_and_fisher_and_the_empty_control():
    results, recovery, study, control = _case()
    out = networks_finding(results, recovery, study, control_voxels=control)
    vision, language = out["plants"]
    assert vision["voxel_precision"] == 8 / 9 and vision["voxel_recall"] == 8 / 10
    odds, p = fisher_exact([[8, 1], [2, 39]], alternative="greater")
    assert np.isclose(vision["p"], p) and np.isclose(vision["value"], odds) and vision["recovered"]
    assert language["voxel_precision"] == 2 / 12 and language["voxel_recall"] == 2 / 10
    assert not language["recovered"]  # predicted "none"
    # the control: atom 2 covers it but is not interpreted, so the control stays empty
    assert out["control"]["n_significant_voxels"] == 0 and not out["control"]["recovered"]
    assert not out["recovered"]


def test_an_interpreted_atom_in_the_control_network_is_a_false_finding():
    results, recovery, study, control = _case()
    results.atom_interpreted = np.array([True, True, True])
    out = networks_finding(results, recovery, study, control_voxels=control)
    p = fisher_exact([[6, 0], [4, 40]], alternative="greater")[1]
    assert out["control"]["n_significant_voxels"] == 6
    assert np.isclose(out["control"]["p"], min(1.0, 3 * p)) and out["control"]["recovered"]
