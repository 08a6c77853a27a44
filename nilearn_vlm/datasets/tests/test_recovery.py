"""Scoring a fitted pipeline against a planted truth, on a case counted by hand."""

import numpy as np
import pandas as pd

from nilearn_vlm.datasets._recovery import evaluate_recovery


def test_recovery_on_a_hand_counted_case():
    units = [f"vision.0.ffn.{i}" for i in range(4)] + [f"text.0.ffn.{i}" for i in range(4)]
    truth = pd.DataFrame({
        "site": ["vision.0.ffn", "text.0.ffn"],
        "network": ["vision", "language"],
        "sign": [1, -1],
        "units": [";".join(units[:2]), ";".join(units[4:6])],
    })
    # atom 0 carries the vision units (positively), atom 1 the text units (negatively)
    loadings = np.zeros((2, 8))
    loadings[0, :2] = 1.0
    loadings[1, 4:6] = -1.0
    nets = np.array(["vision"] * 4 + ["language"] * 4 + [""] * 2)
    signs = np.zeros((2, 10), int)
    signs[0, [0, 1, 2, 8]] = 1        # 3 of 4 vision voxels, 1 outside
    signs[0, 3] = -1                  # one vision voxel with the wrong sign
    signs[1, [4, 5, 6, 7]] = 1        # follows the atom, which mirrors the units: planted -1
    table, summary = evaluate_recovery(truth, loadings, units, signs, nets, ["vision", "language"])
    assert table["atom"].tolist() == [0, 1]
    assert table["orientation"].tolist() == [1, -1]
    assert table["predicted_network"].tolist() == ["vision", "language"]
    # Dice: atom 0 has 5 significant voxels, 4 in the 4-voxel vision network
    np.testing.assert_allclose(table["dice"], [2 * 4 / (5 + 4), 2 * 4 / (4 + 4)])
    np.testing.assert_allclose(table["sign_accuracy"], [3 / 4, 4 / 4])
    assert summary["network_f1"] == 1.0
    assert summary["sign_accuracy"] == 7 / 8
    # nothing significant: no network predicted
    table, summary = evaluate_recovery(truth, loadings, units, np.zeros_like(signs), nets,
                                       ["vision", "language"])
    assert set(table["predicted_network"]) == {"none"} and summary["network_f1"] == 0.0
