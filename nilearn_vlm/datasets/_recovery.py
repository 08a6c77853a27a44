"""Scoring how well a fitted pipeline recovers a planted truth."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nilearn_vlm.units import as_units_table


def evaluate_recovery(truth, atom_loadings, units, sign_sets, network_of_voxel, networks, key_neurons=None):
    """Compare a fitted pipeline with the planted truth of a simulated subject.

    For each planted driver (a row of ``truth``):

    1. **Atom.** The driver's atom is the atom on which the driver's units
       load most (sum of loadings over those units); ``key_recall`` is the
       fraction of the driver's units that are among that atom's largest
       loadings (its top 5% of units by absolute loading). With
       ``key_neurons``, ``key_neuron_recall`` is the fraction of the
       driver's units that are key neurons of the atom, and
       ``key_neuron_precision`` the fraction of the atom's key neurons that
       are the driver's units.
    2. **Orientation.** The sign of the units' mean loading on the atom tells
       whether the atom follows (+1) or mirrors (-1) the units.
    3. **Network.** Among ``networks``, the one of highest Dice overlap with
       the atom's significant voxels (either sign) is the predicted network.
    4. **Sign.** Among the atom's significant voxels inside the planted
       network, the fraction whose sign, times the orientation, equals the
       planted sign.

    The network F1 is scikit-learn's macro F1 of predicted against planted
    networks over the drivers; the sign accuracy pools the voxels of step 4
    over drivers.

    Parameters
    ----------
    truth : pandas.DataFrame
        From :func:`nilearn_vlm.datasets.make_default_study` (columns
        ``network``, ``sign``, ``units`` as ``;``-joined unit names).
    atom_loadings : ndarray (n_atoms, n_units)
    units : units table or sequence of str
        The units of the loadings' columns (:mod:`nilearn_vlm.units`), or
        their names.
    sign_sets : ndarray of int (n_atoms, n_voxels)
        +1 / -1 / 0 significant voxel sets of each atom.
    network_of_voxel : ndarray of str (n_voxels,)
    networks : sequence of str
        Candidate networks.
    key_neurons : ndarray of int (n_atoms, n_units) or None, default=None
        Non-zero for the key neurons of each atom
        (:attr:`nilearn_vlm.SparseAtoms.key_neurons_`).

    Returns
    -------
    table : pandas.DataFrame
        One row per driver.
    summary : dict
        ``network_f1``, ``sign_accuracy``, ``mean_key_recall`` and
        ``n_drivers``; with ``key_neurons``, ``mean_key_neuron_recall`` and
        ``mean_key_neuron_precision`` (NaN for atoms without key neurons are
        left out of the mean; 0 when no driver's atom has any).
    """
    from sklearn.metrics import f1_score

    from nilearn_vlm.networks import best_network, network_dice

    index = {u: i for i, u in enumerate(as_units_table(units)["name"])}
    L = np.asarray(atom_loadings, dtype=float)
    S = np.asarray(sign_sets)
    top = np.quantile(np.abs(L), 0.95, axis=1, keepdims=True)
    networks = list(networks)
    membership = np.vstack([network_of_voxel == net for net in networks])
    rows = []
    n_correct = n_signed = 0
    for row in truth.itertuples():
        cols = np.array([index[u] for u in row.units.split(";")])
        score = L[:, cols].sum(axis=1)
        atom = int(np.argmax(np.abs(score)))
        orient = 1 if score[atom] >= 0 else -1
        key_recall = float(np.mean(np.abs(L[atom, cols]) >= top[atom, 0]))
        sig = S[atom] * orient
        dice = network_dice(sig[None, :], membership, networks, signs=["any"])
        predicted = best_network(dice).iloc[0] or "none"
        planted_dice = float(np.nan_to_num(dice.loc[dice["network"] == row.network, "dice"].iloc[0]))
        inside = sig[network_of_voxel == row.network]
        inside = inside[inside != 0]
        correct = int((inside == row.sign).sum())
        n_correct += correct
        n_signed += inside.size
        extra = {}
        if key_neurons is not None:
            key = np.asarray(key_neurons)[atom] != 0
            extra = {"key_neuron_recall": float(key[cols].mean()),
                     "key_neuron_precision": float(key[cols].sum() / key.sum()) if key.any() else float("nan")}
        rows.append({
            "site": row.site, "network": row.network, "sign": row.sign, "atom": atom,
            "orientation": orient, "key_recall": key_recall, **extra, "predicted_network": predicted,
            "dice": planted_dice, "n_significant_in_network": int(inside.size),
            "n_network_voxels": int((network_of_voxel == row.network).sum()),
            "sign_accuracy": correct / inside.size if inside.size else float("nan"),
        })
    table = pd.DataFrame(rows)
    summary = {
        "network_f1": float(f1_score(table["network"], table["predicted_network"], average="macro",
                                     labels=sorted(set(table["network"])), zero_division=0)),
        "sign_accuracy": n_correct / n_signed if n_signed else 0.0,
        "mean_key_recall": float(table["key_recall"].mean()),
        "n_drivers": int(len(table)),
    }
    if key_neurons is not None:
        summary["mean_key_neuron_recall"] = float(table["key_neuron_recall"].mean())
        precision = table["key_neuron_precision"].dropna()
        summary["mean_key_neuron_precision"] = float(precision.mean()) if len(precision) else 0.0
    return table, summary
