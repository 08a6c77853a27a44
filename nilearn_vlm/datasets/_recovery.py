"""Scoring how well a fitted pipeline recovers a planted truth."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nilearn_vlm.units import as_units_table


def evaluate_recovery(truth, atom_loadings, units, sign_sets, network_of_voxel, networks, key_neurons=None,
                      atom_names=None):
    """Compare a fitted pipeline with the planted truth of a simulated subject.

    For each planted driver (a row of ``truth``):

    1. **Atom.** The driver's atom is the atom on which the driver's units
       load most (sum of loadings over those units). Its key neurons
       (``key_neurons``; without them, its top 5% of units by absolute
       loading) are scored against the driver's units: ``key_recall`` is the
       fraction of the driver's units that are key neurons, ``key_precision``
       the fraction of key neurons that are the driver's units.
    2. **Orientation.** The sign of the units' mean loading on the atom tells
       whether the atom follows (+1) or mirrors (-1) the units. The report
       shows each driver's atom times this orientation (its sign
       convention: a map's sign is the sign of the driver's units' effect).
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
    key_neurons : pandas.DataFrame, optional
        The key-neuron table (``Results.tables["key_neurons"]``: columns
        ``atom`` (names) and ``unit`` (column indices)).
    atom_names : sequence of str, optional
        Names of the atoms (rows of ``atom_loadings``) as ``key_neurons``
        gives them; default ``atom0``, ``atom1``, ...

    Returns
    -------
    table : pandas.DataFrame
        One row per driver.
    summary : dict
        ``network_f1``, ``sign_accuracy``, ``mean_key_recall``,
        ``mean_key_precision`` and ``n_drivers``.
    """
    from sklearn.metrics import f1_score

    from nilearn_vlm.networks import best_network, network_dice

    index = {u: i for i, u in enumerate(as_units_table(units)["name"])}
    L = np.asarray(atom_loadings, dtype=float)
    S = np.asarray(sign_sets)
    if key_neurons is None:
        key = np.abs(L) >= np.quantile(np.abs(L), 0.95, axis=1, keepdims=True)
    else:
        names = [f"atom{i}" for i in range(L.shape[0])] if atom_names is None else [str(a) for a in atom_names]
        row_of = {a: i for i, a in enumerate(names)}
        key = np.zeros(L.shape, bool)
        atoms_ = key_neurons["atom"].astype(str).map(row_of)
        ok = atoms_.notna().to_numpy()
        key[atoms_[ok].astype(int).to_numpy(), key_neurons["unit"].to_numpy()[ok].astype(int)] = True
    networks = list(networks)
    membership = np.vstack([network_of_voxel == net for net in networks])
    rows = []
    n_correct = n_signed = 0
    for row in truth.itertuples():
        cols = np.array([index[u] for u in row.units.split(";")])
        score = L[:, cols].sum(axis=1)
        atom = int(np.argmax(np.abs(score)))
        orient = 1 if score[atom] >= 0 else -1
        hits = int(key[atom, cols].sum())
        key_recall = hits / cols.size
        key_precision = hits / key[atom].sum() if key[atom].any() else float("nan")
        sig = S[atom] * orient
        dice = network_dice(sig[None, :], membership, networks, signs=["any"])
        predicted = best_network(dice).iloc[0] or "none"
        planted_dice = float(np.nan_to_num(dice.loc[dice["network"] == row.network, "dice"].iloc[0]))
        inside = sig[network_of_voxel == row.network]
        inside = inside[inside != 0]
        correct = int((inside == row.sign).sum())
        n_correct += correct
        n_signed += inside.size
        rows.append({
            "site": row.site, "network": row.network, "sign": row.sign, "atom": atom,
            "orientation": orient, "key_precision": key_precision, "key_recall": key_recall, "predicted_network": predicted,
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
        "mean_key_precision": float(table["key_precision"].mean()),
        "n_drivers": int(len(table)),
    }
    return table, summary
