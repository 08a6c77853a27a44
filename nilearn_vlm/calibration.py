"""Calibration on your own resting-state data: random designs through the pipeline's inference.

A resting-state run holds no response to a random stimulus design, so every
voxel a GLM map or a unit x voxel map calls significant is a false positive.
:func:`calibrate` fits random designs against such a run with the
pipeline's own estimators, built from the same
:class:`~nilearn_vlm.settings.PipelineSettings` (``inference``,
``glm_mode``, ``glm_alpha``, ``high_pass``), and reports

- the voxelwise false-positive rate at p < 0.05 and p < 0.001 (nominal: 0.05
  and 0.001);
- the familywise rate: the share of maps with any significant voxel after
  the pipeline's FDR correction (one GLM map per regressor, one whole
  unit x voxel matrix per unit set); under a complete null, Benjamini-Hochberg
  at q rejects anything with probability at most q,

each with its 95% Clopper-Pearson interval (:func:`nilearn_vlm.stats.clopper_pearson`).

The designs (:func:`random_event_design`, :func:`random_unit_series`) are
those of the calibration benchmark (``benchmarks/calibration.py``): event
trains with random amplitudes through the Glover HRF, and HRF-smooth unit
time courses of a shared low-rank stimulus stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone

from nilearn_vlm.glm import VoxelGLM
from nilearn_vlm.maps import unit_voxel_maps
from nilearn_vlm.pipeline import load_bold
from nilearn_vlm.settings import PipelineSettings
from nilearn_vlm.stats import NullRates
from nilearn_vlm.timeseries import regressor_matrices

__all__ = ["CalibrationResult", "calibrate", "random_event_design", "random_unit_series"]

#: Regressors per random GLM design (each one GLM map).
N_REGRESSORS = 4
#: Units per random unit set (each one unit x voxel matrix).
N_UNITS = 64


def _run_slices(n_scans, runs):
    if runs is None:
        return [slice(0, n_scans)]
    runs = np.asarray(runs)
    change = np.flatnonzero(runs[1:] != runs[:-1]) + 1
    bounds = np.r_[0, change, n_scans]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def _events(n_run, t_r, onsets, durations):
    return regressor_matrices(onsets, durations, np.arange(n_run) * t_r, "glover")[0].toarray()


def random_event_design(n_scans, t_r, rng, runs=None, n_regressors=N_REGRESSORS):
    """Random event-related regressors: Poisson event trains through the Glover HRF.

    Per run and regressor: onsets of a Poisson process (inter-onset intervals
    of 1 s plus an exponential of mean 3 s), durations uniform in [0.5, 3] s,
    amplitudes N(0, 1) for even columns (signed, like unit and atom time
    courses) and uniform in [0.5, 1.5] for odd ones (classic task events).

    Parameters
    ----------
    n_scans : int
    t_r : float
    rng : numpy.random.Generator
    runs : array-like of shape (n_scans,), optional
        Contiguous run labels; each run gets its own events.
    n_regressors : int, default=4

    Returns
    -------
    ndarray of shape (n_scans, n_regressors)

    Examples
    --------
    >>> import numpy as np
    >>> X = random_event_design(100, 2.0, np.random.default_rng(0))
    >>> X.shape
    (100, 4)
    """
    out = np.zeros((n_scans, n_regressors))
    for sl in _run_slices(n_scans, runs):
        n_run = sl.stop - sl.start
        T = n_run * t_r
        for j in range(n_regressors):
            gaps = 1.0 + rng.exponential(3.0, size=int(T) + 10)
            on = np.cumsum(gaps) - gaps[0] * rng.random()
            on = on[(on >= 0) & (on < T - 1)]
            dur = rng.uniform(0.5, 3.0, size=on.size)
            amp = rng.standard_normal(on.size) if j % 2 == 0 else rng.uniform(0.5, 1.5, on.size)
            out[sl, j] = _events(n_run, t_r, on, dur) @ amp
    return out


def random_unit_series(n_scans, t_r, rng, runs=None, n_units=N_UNITS, n_factors=8, event_every=3.0):
    """HRF-smooth unit time courses of one random stimulus stream.

    Events every ``event_every`` seconds (a movie's frames); each event's unit
    activations are shared low-rank factors times random loadings plus
    independent noise (units of a network are correlated), convolved with the
    Glover HRF, as real units are after :class:`~nilearn_vlm.TRAligner`.

    Returns
    -------
    ndarray of shape (n_scans, n_units)

    Examples
    --------
    >>> import numpy as np
    >>> random_unit_series(100, 2.0, np.random.default_rng(0), n_units=5).shape
    (100, 5)
    """
    out = np.zeros((n_scans, n_units))
    W = rng.standard_normal((n_factors, n_units)) / np.sqrt(n_factors)
    for sl in _run_slices(n_scans, runs):
        n_run = sl.stop - sl.start
        on = np.arange(0.0, n_run * t_r - 1, event_every)
        F = rng.standard_normal((on.size, n_factors))
        amp = F @ W + rng.standard_normal((on.size, n_units))
        out[sl] = _events(n_run, t_r, on, np.full(on.size, event_every)) @ amp
    return out


@dataclass
class CalibrationResult:
    """False-positive rates of the pipeline's inference on rest data.

    Attributes
    ----------
    rates : dict
        ``{"GLM maps": summary, "unit x voxel maps": summary}`` with the
        summaries of :meth:`nilearn_vlm.stats.NullRates.summary`.
    n_scans, n_voxels : int
    t_r : float
    settings : dict
        The pipeline settings used.
    """

    rates: dict
    n_scans: int
    n_voxels: int
    t_r: float
    settings: dict = field(default_factory=dict)

    def table(self):
        """One row per kind of map: counts, rates and 95% Clopper-Pearson bounds.

        Returns
        -------
        pandas.DataFrame
        """
        rows = []
        for name, s in self.rates.items():
            row = {"maps": name, "n_maps": s["n_families"], "n_tests": s["n_tests"]}
            for key in ("fpr_0.05", "fpr_0.001", "familywise"):
                row[key] = s[key]
                row[key + "_low"], row[key + "_high"] = s[key + "_ci"]
            rows.append(row)
        return pd.DataFrame(rows)

    def format(self):
        """The rates as the text ``nilearn-vlm calibrate`` prints."""
        p = self.settings
        lines = [f"{self.n_voxels} voxels x {self.n_scans} scans (t_r {self.t_r:g} s); inference "
                 f"{p.get('inference')!r}, glm_mode {p.get('glm_mode')!r}, FDR q = {p.get('glm_alpha')}",
                 f"{'':20s}{'maps':>6s}  {'FPR p<0.05 [95% CI]':28s}{'FPR p<0.001 [95% CI]':31s}"
                 "maps with any FDR discovery [95% CI]"]
        for name, s in self.rates.items():
            a, b, f = (s[k] for k in ("fpr_0.05", "fpr_0.001", "familywise"))
            (a0, a1), (b0, b1), (f0, f1) = (s[k + "_ci"] for k in ("fpr_0.05", "fpr_0.001", "familywise"))
            lines.append(f"{name:20s}{s['n_families']:6d}  {a:.4f} [{a0:.4f}, {a1:.4f}]      "
                         f"{b:.5f} [{b0:.5f}, {b1:.5f}]      {f:.3f} [{f0:.3f}, {f1:.3f}]")
        lines.append(f"nominal: 0.05, 0.001; maps with a discovery at most q = {p.get('glm_alpha')} "
                     "(every rejection here is false).")
        return "\n".join(lines)


def _progress(total, verbose, desc):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not verbose)


def _valid(Y):
    return np.all(np.isfinite(Y), axis=0) & (np.ptp(Y, axis=0) > 0)


def calibrate(bold, t_r, mask=None, settings=None, n_maps=200, n_unit_sets=0, seed=0, verbose=1):
    """False-positive rates of the pipeline's inference on resting-state data.

    Parameters
    ----------
    bold : image, list of images or array (n_scans, n_voxels)
        Resting-state (or any stimulus-free) BOLD, read as the pipeline reads
        it (:func:`nilearn_vlm.pipeline.load_bold`).
    t_r : float
    mask : Niimg-like, optional
    settings : nilearn_vlm.settings.PipelineSettings, optional
        The pipeline's settings (its inference, GLM mode, FDR level and
        high-pass); default settings when None.
    n_maps : int, default=200
        Random-design GLM maps (``ceil(n_maps / 4)`` designs of 4 regressors).
    n_unit_sets : int, default=0
        Random 64-unit sets through the pipeline's unit x voxel maps (each one
        family; the voxelwise rates come from the same test, one GLM per unit).
    seed : int, default=0
    verbose : int, default=1
        Progress bars.

    Returns
    -------
    CalibrationResult

    Examples
    --------
    >>> import numpy as np
    >>> rest = np.random.default_rng(0).standard_normal((80, 200))
    >>> res = calibrate(rest, t_r=2.0, n_maps=8, verbose=0)
    >>> res.rates["GLM maps"]["n_families"]
    8
    """
    settings = PipelineSettings() if settings is None else settings
    settings.validate(t_r=t_r, check_plugins=False)
    if n_maps < 1 and n_unit_sets < 1:
        raise ValueError(f"n_maps={n_maps} and n_unit_sets={n_unit_sets}: ask for at least one map.")
    Y, runs, _ = load_bold(bold, mask)
    valid = _valid(Y)
    Y = Y[:, valid]
    n_scans, n_voxels = Y.shape
    glm = settings.estimators(t_r)["glm"]
    rng = np.random.default_rng(seed)
    rates = {}
    if n_maps > 0:
        tally = NullRates(q=glm.alpha)
        n_designs = math.ceil(n_maps / N_REGRESSORS)
        with _progress(n_designs * N_REGRESSORS, verbose, "random GLM designs") as bar:
            for _ in range(n_designs):
                X = random_event_design(n_scans, t_r, rng, runs)
                g = clone(glm).fit(X, Y, groups=runs)
                for j in range(min(N_REGRESSORS, n_maps - tally.n_families)):
                    _add(tally, g.p_[:, j], g.signed_[:, j].any())
                bar.update(N_REGRESSORS)
        rates["GLM maps"] = tally.summary()
    if n_unit_sets > 0:
        options = settings.unit_map_options(t_r)
        # the same test as one GLM per unit: its p-values give the voxelwise rates
        if options["inference"] == "calibrated":
            per_unit = VoxelGLM(t_r=t_r, high_pass=options["high_pass"], mode="univariate",
                                height_control=None)
        else:
            per_unit = VoxelGLM(drift_model=None, noise_model="ols", mode="univariate", height_control=None)
        tally = NullRates(q=0.05)
        with _progress(n_unit_sets, verbose, "random unit sets") as bar:
            for _ in range(n_unit_sets):
                U = random_unit_series(n_scans, t_r, rng, runs)
                maps = unit_voxel_maps(U, Y, runs=runs, **{**options, "top_k": 1})
                p = clone(per_unit).fit(U, Y, groups=runs if options["inference"] == "calibrated" else None).p_
                _add(tally, p, bool((maps.n_positive + maps.n_negative).sum()))
                bar.update(1)
        rates["unit x voxel maps"] = tally.summary()
    return CalibrationResult(rates, n_scans, n_voxels, float(t_r), settings.to_dict())


def _add(tally, p, any_discovery):
    p = np.ravel(p)
    tally.add_family(n_tests=p.size, counts={a: int((p < a).sum()) for a in tally.levels},
                     any_discovery=bool(any_discovery))
