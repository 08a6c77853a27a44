"""A simulated subject with planted sources, key units and signed voxel networks.

:func:`simulate_subject` is the simulator of the tests and benchmarks of
:class:`~nilearn_vlm.SparseAtoms` and the atom pipeline (units on the TR grid
and BOLD as arrays, with the planted truth). NumPy, SciPy and nilearn's
Glover HRF only.

Generative model
----------------
* Design: ``n_runs`` runs of ``n_scans_per_run`` scans at ``t_r`` seconds.
* Sources: ``n_sources`` latent stimulus features, white noise convolved with
  the Glover HRF within each run, unit variance.
* Units: ``streams`` x ``n_layers`` layers x ``units_per_layer`` units, named
  ``stream.layer.kind.index``. Every unit carries HRF-smooth noise (unit
  variance). Source ``s`` drives ``key_units`` (a range) units of one site
  ``stream.layer`` (sites drawn without replacement):
  ``unit = sign * sqrt(unit_snr) * source + noise``, sign +1 with
  probability ``p_positive``. Optionally ``n_layer_factors`` shared
  HRF-smooth factors per layer load on all of its units.
* Voxels: source ``s`` drives network ``2s`` positively and ``2s + 1``
  negatively (``voxels_per_network`` voxels each) at voxel-variance SNR
  ``snr``; ``n_null_voxels`` voxels are never driven. Noise is unit-variance
  AR(1) (``phi``) restarted at each run, plus a per-run baseline.

Units are drawn before voxels, so one seed gives the same units at every
``snr`` and ``phi``. ``pure_noise=True`` drops every planted effect: the null
of the key-neuron and GLM tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from nilearn.glm.first_level import glover_hrf
from scipy.signal import lfilter

from nilearn_vlm.units import unit_name, units_table

__all__ = ["SimulatedSubject", "ar1_noise", "hrf_smooth_noise", "simulate_subject"]


@dataclass
class SimulatedSubject:
    """Output of :func:`simulate_subject`.

    Attributes
    ----------
    X : ndarray (n_scans, n_units) float32
        Unit time series (TR grid, HRF included).
    Y : ndarray (n_scans, n_voxels) float32
        BOLD.
    runs : ndarray (n_scans,) int
        Run label of each scan (1-based).
    units : pandas.DataFrame
        The units table: ``name, stream, layer, depth, kind, index, site,
        source, sign`` (``source`` -1 and ``sign`` 0 for undriven units).
    sources : ndarray (n_scans, n_sources)
        The planted, z-scored source time courses.
    key_units : list of ndarray
        Column indices of the units driven by each source.
    unit_sign : ndarray (n_units,)
        +1/-1 on driven units, 0 elsewhere.
    network : ndarray (n_voxels,) int
        Network of each voxel: ``2s`` (driven + by source s), ``2s+1``
        (driven -), -1 never driven.
    voxel_sign : ndarray (n_voxels, n_sources) int8
        The planted sign of each source in each voxel (0: not driven).
    params : dict
        The arguments.
    """

    X: np.ndarray
    Y: np.ndarray
    runs: np.ndarray
    units: pd.DataFrame
    sources: np.ndarray
    key_units: list
    unit_sign: np.ndarray
    network: np.ndarray
    voxel_sign: np.ndarray
    params: dict

    @property
    def never_driven(self):
        """Boolean mask of voxels no source drives."""
        return self.network < 0


def _hrf(t_r):
    return glover_hrf(t_r, oversampling=1, time_length=32.0)


def hrf_smooth_noise(n_cols, runs, rng, t_r=1.0, dtype=np.float64):
    """White noise convolved with the Glover HRF within each run, unit variance per column.

    A burn-in of one HRF length is discarded at each run start, so the
    series is stationary.

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.testing import hrf_smooth_noise
    >>> runs = np.repeat([1, 2], 200)
    >>> e = hrf_smooth_noise(3, runs, np.random.default_rng(0))
    >>> e.shape, bool(np.allclose(e.std(0), 1))
    ((400, 3), True)
    """
    h = _hrf(t_r)
    runs = np.asarray(runs)
    out = np.empty((runs.size, n_cols), dtype=dtype)
    for r in np.unique(runs):
        idx = np.flatnonzero(runs == r)
        m = idx.size
        nfft = 1 << int(np.ceil(np.log2(m + 2 * h.size)))
        H = np.fft.rfft(h, nfft)[:, None]
        for c in range(0, n_cols, 4096):  # FFT convolution, 4,096 columns at a time
            w = rng.standard_normal((m + h.size, min(4096, n_cols - c)))
            conv = np.fft.irfft(np.fft.rfft(w, nfft, axis=0) * H, nfft, axis=0)
            out[idx, c:c + w.shape[1]] = conv[h.size:h.size + m]
    out -= out.mean(0)
    out /= out.std(0)
    return out


def ar1_noise(n_cols, runs, phi, rng, dtype=np.float64):
    """Unit-variance stationary AR(1) noise restarted at each run.

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.testing import ar1_noise
    >>> runs = np.ones(5000, int)
    >>> e = ar1_noise(2, runs, 0.6, np.random.default_rng(0))
    >>> bool(abs(np.corrcoef(e[1:, 0], e[:-1, 0])[0, 1] - 0.6) < 0.05)
    True
    """
    runs = np.asarray(runs)
    out = np.empty((runs.size, n_cols), dtype=dtype)
    for r in np.unique(runs):
        idx = np.flatnonzero(runs == r)
        w = rng.standard_normal((idx.size, n_cols)) * np.sqrt(1 - phi ** 2)
        w[0] = rng.standard_normal(n_cols)  # stationary start
        out[idx] = lfilter([1.0], [1.0, -phi], w, axis=0)
    return out


def simulate_subject(
    seed=0,
    *,
    streams=("vision", "text"),
    n_layers=12,
    units_per_layer=64,
    kind="attn_out",
    n_sources=8,
    key_units=(6, 12),
    unit_snr=2.0,
    p_positive=0.8,
    n_layer_factors=0,
    layer_factor_weight=0.5,
    n_runs=4,
    n_scans_per_run=300,
    t_r=1.0,
    snr=0.25,
    phi=0.6,
    voxels_per_network=40,
    n_null_voxels=1000,
    baseline=100.0,
    pure_noise=False,
):
    """A simulated subject with planted sources, key units and signed networks.

    Parameters
    ----------
    seed : int
    streams : tuple of str
        Model streams; ``len(streams) * n_layers * units_per_layer`` units
        (default 2 x 12 x 64 = 1,536).
    n_layers, units_per_layer : int
    kind : str
        Unit kind of the names.
    n_sources : int
        Planted sources (at most ``len(streams) * n_layers`` sites).
    key_units : (int, int)
        Inclusive range of the number of units each source drives.
    unit_snr : float
        Variance of a source in a driven unit over the variance of the unit's
        noise (2: a driven unit correlates r = 0.82 with its source).
    p_positive : float
        Probability that a driven unit follows its source (else mirrors it).
    n_layer_factors : int
        Shared HRF-smooth factors per layer (0: independent unit noise).
    layer_factor_weight : float
        Standard deviation of the factor loadings.
    n_runs, n_scans_per_run : int
    t_r : float
    snr : float
        Voxel variance signal-to-noise ratio in driven voxels.
    phi : float
        AR(1) coefficient of the voxel noise.
    voxels_per_network : int
    n_null_voxels : int
    baseline : float
        Mean of every voxel; each run adds a different offset of up to 2%.
    pure_noise : bool
        No planted effect at all (units and voxels are noise only).

    Returns
    -------
    SimulatedSubject

    Examples
    --------
    >>> from nilearn_vlm.testing import simulate_subject
    >>> sub = simulate_subject(0, units_per_layer=8, n_layers=3, n_sources=2, key_units=(2, 4),
    ...                        n_scans_per_run=100, n_null_voxels=10, voxels_per_network=5)
    >>> sub.X.shape, sub.Y.shape, len(sub.key_units)
    ((400, 48), (400, 30), 2)
    """
    params = {k: v for k, v in locals().items()}
    rng = np.random.default_rng(seed)
    n_scans = n_runs * n_scans_per_run
    runs = np.repeat(np.arange(1, n_runs + 1), n_scans_per_run)
    n_sites = len(streams) * n_layers
    if n_sources > n_sites:
        raise ValueError(f"n_sources={n_sources} exceeds the {n_sites} sites (stream x layer).")
    lo, hi = key_units
    if not 1 <= lo <= hi <= units_per_layer:
        raise ValueError(f"key_units={key_units} must satisfy 1 <= low <= high <= units_per_layer.")

    # units table
    names = [unit_name(stream, layer, kind, i) for stream in streams for layer in range(n_layers)
             for i in range(units_per_layer)]
    units = units_table(names)
    n_units = len(units)

    S = hrf_smooth_noise(n_sources, runs, rng, t_r)
    X = hrf_smooth_noise(n_units, runs, rng, t_r)
    if n_layer_factors:
        for s0 in range(0, n_units, units_per_layer):
            F = hrf_smooth_noise(n_layer_factors, runs, rng, t_r)
            W = rng.normal(0, layer_factor_weight, (n_layer_factors, units_per_layer))
            X[:, s0:s0 + units_per_layer] += F @ W
    source = np.full(n_units, -1)
    unit_sign = np.zeros(n_units, dtype=np.int8)
    key = []
    sites = rng.choice(n_sites, n_sources, replace=False)
    for s, site in enumerate(sites):
        if pure_noise:
            key.append(np.array([], dtype=int))
            continue
        n_key = int(rng.integers(lo, hi + 1))
        cols = site * units_per_layer + np.sort(rng.choice(units_per_layer, n_key, replace=False))
        sg = np.where(rng.random(n_key) < p_positive, 1, -1)
        X[:, cols] += np.sqrt(unit_snr) * sg * S[:, [s]]
        source[cols] = s
        unit_sign[cols] = sg
        key.append(cols)
    units["source"] = source
    units["sign"] = unit_sign

    n_vox = 2 * n_sources * voxels_per_network + n_null_voxels
    network = np.full(n_vox, -1)
    network[: 2 * n_sources * voxels_per_network] = np.repeat(np.arange(2 * n_sources), voxels_per_network)
    Y = ar1_noise(n_vox, runs, phi, rng)
    voxel_sign = np.zeros((n_vox, n_sources), dtype=np.int8)
    if not pure_noise:
        for s in range(n_sources):
            for net, sg in ((2 * s, 1), (2 * s + 1, -1)):
                v = network == net
                Y[:, v] += sg * np.sqrt(snr) * S[:, [s]]
                voxel_sign[v, s] = sg
    offsets = baseline * (1 + 0.02 * rng.random(n_runs))
    Y += offsets[runs - 1][:, None]
    if pure_noise:
        network[:] = -1
    return SimulatedSubject(X.astype(np.float32), Y.astype(np.float32), runs, units, S, key, unit_sign, network,
                            voxel_sign, params)
