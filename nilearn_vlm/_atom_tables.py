"""The tables of a fitted :class:`~nilearn_vlm.decomposition.SparseAtoms` (estimators floor).

Key neurons with their units' stream, layer and kind, one row per atom with
its key-neuron test and its dictionary's convergence, and key neurons counted
by stream, layer and kind; the estimator's methods of the same names call
these.
"""

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted


def key_neuron_table(atoms):
    """See :meth:`nilearn_vlm.decomposition.SparseAtoms.key_neuron_table`."""
    check_is_fitted(atoms)
    atom_idx, unit_idx = np.nonzero(atoms.key_neurons_)
    table = pd.DataFrame(
        {
            "atom": atoms.atom_names_[atom_idx],
            "group": atoms.atom_groups_[atom_idx],
            "unit": unit_idx,
            "loading": atoms.loadings_[atom_idx, unit_idx],
            "frequency": atoms.key_frequency_[atom_idx, unit_idx],
            "atom_stability": atoms.atom_stability_[atom_idx],
            "error_bound": atoms.key_error_bound_[atom_idx],
            "sign": atoms.key_neurons_[atom_idx, unit_idx],
        }
    )
    if atoms.unit_names_ is not None:
        table.insert(3, "name", atoms.unit_names_[unit_idx])
    if atoms.units_ is not None:
        rows = atoms.units_.iloc[unit_idx]
        for j, col in enumerate(("stream", "layer", "kind", "index")):
            table.insert(4 + j, col, rows[col].to_numpy())
    return table


def atom_table(atoms):
    """See :meth:`nilearn_vlm.decomposition.SparseAtoms.atom_table`."""
    check_is_fitted(atoms)
    keys = atoms.key_neurons_
    order = {g: i for i, g in enumerate(dict.fromkeys(atoms.atom_groups_.tolist()))}
    d = np.array([order[g] for g in atoms.atom_groups_.tolist()], dtype=int)
    return pd.DataFrame(
        {
            "atom": atoms.atom_names_,
            "group": atoms.atom_groups_,
            "n_key": (keys != 0).sum(1),
            "n_positive": (keys > 0).sum(1),
            "n_negative": (keys < 0).sum(1),
            "atom_stability": atoms.atom_stability_,
            "q": atoms.key_q_,
            "error_bound": atoms.key_error_bound_,
            "n_iter": atoms.n_iter_[d],
            "converged": atoms.converged_[d],
            "tol_reached": atoms.tol_reached_[d],
            "objective": atoms.objective_[d],
        }
    )


def attribution_table(atoms, by=("stream", "layer", "kind")):
    """See :meth:`nilearn_vlm.decomposition.SparseAtoms.attribution_table`."""
    by = (by,) if isinstance(by, str) else tuple(by)
    table = key_neuron_table(atoms)
    missing = [b for b in by if b not in table.columns]
    if missing:
        raise ValueError(
            f"cannot group by {missing}: unit names are unknown; fit with a "
            "DataFrame or feature_names= ('stream.layer.kind.index')."
        )
    table = table.assign(
        n_positive=(table["sign"] > 0).astype(int),
        n_negative=(table["sign"] < 0).astype(int),
    )
    out = (
        table.groupby(["atom", *by], sort=False)[["n_positive", "n_negative"]]
        .sum()
        .reset_index()
    )
    out["n_key"] = out["n_positive"] + out["n_negative"]
    return out
