"""Planting known unit -> network effects in simulated BOLD."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nilearn_vlm._utils import zscore
from nilearn_vlm.units import as_units_table


@dataclass(frozen=True)
class Driver:
    """A planted effect: units of one site drive one network with one sign.

    Parameters
    ----------
    site : str
        Site name ``stream.layer.kind`` whose units drive the network.
    network : str
        Canonical network name (``"vision"``, ``"language"``,
        ``"attention"``, ``"default mode"``).
    sign : {+1, -1}
        +1: the network follows the units (positive BNs); -1: it mirrors them
        (negative BNs).
    """

    site: str
    network: str
    sign: int


#: The planted truth of the default study: early vision units drive the visual
#: network, mid-level text units the language network, late vision units
#: deactivate the default mode network, late text units deactivate the
#: attention network (sites where the default model's units have key
#: neurons, see :func:`choose_key_neuron_drivers`).
DEFAULT_DRIVERS = (
    Driver("vision.2.attn_out", "vision", +1),
    Driver("text.4.attn_out", "language", +1),
    Driver("vision.10.attn_out", "default mode", -1),
    Driver("text.8.attn_out", "attention", -1),
)


def ar1_noise(n_scans, n_voxels, phi, rng, runs=None):
    """Unit-variance AR(1) noise, restarted at each run.

    Examples
    --------
    >>> e = ar1_noise(2000, 3, 0.5, np.random.default_rng(0))
    >>> bool(abs(np.corrcoef(e[1:, 0], e[:-1, 0])[0, 1] - 0.5) < 0.06)
    True
    """
    runs = np.zeros(n_scans, int) if runs is None else np.asarray(runs)
    out = np.empty((n_scans, n_voxels))
    innov = rng.standard_normal((n_scans, n_voxels)) * np.sqrt(1 - phi**2)
    for t in range(n_scans):
        if t == 0 or runs[t] != runs[t - 1]:
            out[t] = rng.standard_normal(n_voxels)
        else:
            out[t] = phi * out[t - 1] + innov[t]
    return out


def choose_driver_units(X, units, drivers, n_units=16):
    """Pick, for each driver, units of its site that share one time course.

    For each driver in turn, the site's unit time series (columns of ``X``)
    are projected off the drivers already chosen, their first principal
    component is taken, and the ``n_units`` units loading most positively on
    it are the driving units; the driver's time course is their mean,
    z-scored. Successive drivers are thereby distinct.

    Parameters
    ----------
    X : numpy.ndarray, shape (n_scans, n_units)
        Unit time series.
    units : units table or sequence of str
        The units of the columns of ``X`` (:mod:`nilearn_vlm.units`), or
        their names.
    drivers : sequence of Driver
    n_units : int, default=16

    Returns
    -------
    units : list of numpy.ndarray
        Column indices of the driving units, per driver.
    signals : numpy.ndarray, shape (n_scans, n_drivers)
        z-scored driver time courses.
    """
    sites = as_units_table(units)["site"].to_numpy()
    if not len(drivers):  # nothing planted (a null subject)
        return [], np.zeros((np.shape(X)[0], 0))
    chosen, signals = [], []
    for driver in drivers:
        cols = np.flatnonzero(sites == driver.site)
        if cols.size < n_units:
            raise ValueError(
                f"driver site {driver.site!r} has {cols.size} units in the features; extract it "
                f"(sites=...) or choose another site"
            )
        Z = zscore(np.asarray(X[:, cols], dtype=np.float64))
        if signals:
            S = np.column_stack(signals)
            Z = Z - S @ np.linalg.lstsq(S, Z, rcond=None)[0]
        u, s, vt = np.linalg.svd(Z - Z.mean(0), full_matrices=False)
        loadings = vt[0] * np.sign(vt[0].sum() or 1)
        top = cols[np.argsort(loadings)[::-1][:n_units]]
        chosen.append(np.sort(top))
        signals.append(zscore(np.asarray(X[:, top].mean(axis=1), dtype=np.float64)))
    return chosen, np.column_stack(signals)


def choose_key_neuron_drivers(X, units, drivers, n_units=4, groups=None, n_atoms=16, alpha=0.1, tol=1e-3,
                              random_state=0):
    """Key-neuron-shaped drivers: for each driver, a few units that carry one component of the units specifically.

    A driver spread over the correlated units of a whole site has no key
    neuron (no unit of it is selected consistently across halves of the
    scans), so a pipeline that interprets atoms through their key neurons
    cannot name its units. Here each driver is planted in key neurons, as
    :func:`nilearn_vlm.testing.simulate_subject` plants its sources: the units
    (``X`` alone, before any BOLD exists) are decomposed into ``n_atoms``
    sparse atoms with the key-neuron stability test
    (:class:`~nilearn_vlm.SparseAtoms`, runs as ``groups``); for each driver in
    turn, among the atoms not yet taken that have a key neuron in the driver's
    stream, the one with key neurons in the driver's site (or, where none
    has, the nearest layer of the stream; then the most key neurons there)
    is taken. The driver's units are that atom's key neurons in that site
    loading with the majority sign (at most ``n_units``, most stable first),
    and its time course is their mean, z-scored. Which units, and in which
    site, are recorded (:func:`truth_table`).

    Parameters
    ----------
    X : numpy.ndarray, shape (n_scans, n_units)
        Unit time series on the TR grid.
    units : units table or sequence of str
        The units of the columns of ``X`` (:mod:`nilearn_vlm.units`).
    drivers : sequence of Driver
    n_units : int, default=4
    groups : array of shape (n_scans,), optional
        Run labels (the halves of the stability test are made of blocks of
        runs).
    n_atoms, alpha, tol, random_state :
        Of the decomposition (:class:`~nilearn_vlm.SparseAtoms`).

    Returns
    -------
    units : list of numpy.ndarray
        Column indices of the driving units, per driver.
    signals : numpy.ndarray, shape (n_scans, n_drivers)
        z-scored driver time courses.

    Raises
    ------
    ValueError
        When a driver's site is not among the units, or no atom left has a
        key neuron in its stream.
    """
    from nilearn_vlm.decomposition import SparseAtoms

    table = as_units_table(units).reset_index(drop=True)
    X = np.asarray(X, dtype=np.float64)
    if not len(drivers):  # nothing planted (a null subject)
        return [], np.zeros((X.shape[0], 0))
    atoms = SparseAtoms(n_atoms=n_atoms, alpha=alpha, tol=tol, feature_names=table, random_state=random_state)
    atoms.fit(X, groups=groups)
    key = atoms.key_neurons_ != 0
    site, stream, layer = (table[c].to_numpy() for c in ("site", "stream", "layer"))
    layer = np.array([int(v) if str(v).lstrip("-").isdigit() else -1 for v in layer])
    taken, chosen, signals = set(), [], []
    for driver in drivers:
        at = np.flatnonzero(site == driver.site)
        if not at.size:
            raise ValueError(f"driver site {driver.site!r} has no unit in the features; extract it (sites=...) "
                             "or choose another site")
        best = None
        for k in range(key.shape[0]):
            if k in taken:
                continue
            for s in np.unique(site[key[k] & (stream == stream[at[0]])]):
                n_key = int((key[k] & (site == s)).sum())
                rank = (abs(int(layer[site == s][0]) - int(layer[at[0]])), -n_key, k)
                if best is None or rank < best[0]:
                    best = (rank, k, s)
        if best is None:
            raise ValueError(
                f"no atom of the units has a key neuron in stream {stream[at[0]]!r} for driver {driver.site!r} "
                f"(after {len(taken)} drivers): the units carry no key-neuron-shaped component there; try more "
                "stimuli, another model or fewer drivers"
            )
        _, k, s = best
        taken.add(k)
        cols = np.flatnonzero(key[k] & (site == s))
        load = atoms.loadings_[k, cols]
        majority = np.sign(load.sum()) or 1.0
        cols = cols[np.sign(load) == majority]
        order = np.lexsort((-np.abs(atoms.loadings_[k, cols]), -atoms.key_frequency_[k, cols]))
        cols = np.sort(cols[order][:n_units])
        chosen.append(cols)
        signals.append(zscore(X[:, cols].mean(axis=1)))
    return chosen, np.column_stack(signals)


def plant_bold(signals, drivers, network_of_voxel, snr, ar_phi, rng, runs=None):
    """Simulated BOLD: driver signals in their networks plus AR(1) noise.

    Parameters
    ----------
    signals : array, shape (n_scans, n_drivers)
        z-scored driver time courses (already on the TR grid, HRF included).
    drivers : sequence of Driver
    network_of_voxel : array of str, shape (n_voxels,)
        Canonical network of each voxel ("" outside every network).
    snr : float
        Variance of the planted signal over the variance of the noise in a
        driven voxel.
    ar_phi : float
        AR(1) coefficient of the noise.

    Returns
    -------
    numpy.ndarray, shape (n_scans, n_voxels)
    """
    n_scans = signals.shape[0]
    Y = ar1_noise(n_scans, network_of_voxel.size, ar_phi, rng, runs)
    amp = np.sqrt(snr)
    for k, driver in enumerate(drivers):
        voxels = network_of_voxel == driver.network
        if not voxels.any():
            raise ValueError(f"no voxel of network {driver.network!r} in the mask")
        Y[:, voxels] += driver.sign * amp * signals[:, [k]]
    return Y


def truth_table(drivers, units, unit_table, network_of_voxel):
    """The planted truth as a table: one row per driver.

    Parameters
    ----------
    drivers : sequence of Driver
    units : list of numpy.ndarray
        Column indices of each driver's units (:func:`choose_driver_units`).
    unit_table : units table or sequence of str
        The units of the columns (:mod:`nilearn_vlm.units`), or their names.
    network_of_voxel : numpy.ndarray of str
    """
    table = as_units_table(unit_table)
    unit_names = table["name"].to_numpy()
    rows = []
    for driver, cols in zip(drivers, units):
        stream, layer, kind = table.loc[cols[0], ["stream", "layer", "kind"]]
        rows.append({
            "site": table.loc[cols[0], "site"],
            "stream": stream,
            "layer": layer,
            "kind": kind,
            "network": driver.network,
            "sign": driver.sign,
            "n_units": len(cols),
            "units": ";".join(unit_names[c] for c in cols),
            "n_voxels": int((network_of_voxel == driver.network).sum()),
        })
    return pd.DataFrame(rows)
