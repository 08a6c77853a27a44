"""Event-level units -> fMRI time series on the TR grid (HRF or FIR), per run."""

from __future__ import annotations

import numbers
import os
import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from nilearn_vlm._utils import nilearn_input_tags, zscore
from nilearn_vlm.stimuli._events import check_events

#: HRF models (nilearn's names) and FIR.
HRF_MODELS = (
    "glover",
    "glover + derivative",
    "glover + derivative + dispersion",
    "spm",
    "spm + derivative",
    "spm + derivative + dispersion",
    "fir",
)


def _kernels(hrf_model, t_r, oversampling, fir_delays):
    """HRF samples at the oversampled rate, as nilearn builds them."""
    from nilearn.glm.first_level import (
        glover_dispersion_derivative,
        glover_hrf,
        glover_time_derivative,
        spm_dispersion_derivative,
        spm_hrf,
        spm_time_derivative,
    )

    if hrf_model == "fir":
        return [
            np.hstack((np.zeros(d * oversampling), np.ones(oversampling) / oversampling))
            for d in fir_delays
        ]
    family = hrf_model.split(" ")[0]
    base, deriv, disp = {
        "glover": (glover_hrf, glover_time_derivative, glover_dispersion_derivative),
        "spm": (spm_hrf, spm_time_derivative, spm_dispersion_derivative),
    }[family]
    funcs = [base]
    if "derivative" in hrf_model:
        funcs.append(deriv)
    if "dispersion" in hrf_model:
        funcs.append(disp)
    return [np.asarray(f(t_r, oversampling), dtype=float) for f in funcs]


def regressor_matrices(onsets, durations, frame_times, hrf_model="glover", oversampling=50,
                       fir_delays=None, min_onset=-24.0, max_events_per_block=2048):
    """Per-event regressors of one run: one (n_scans, n_events) matrix per basis.

    Column ``e`` of basis ``b`` is what :func:`nilearn.glm.first_level.compute_regressor`
    gives for event ``e`` alone with amplitude 1 (before the orthogonalisation
    of derivatives, which :class:`TRAligner` applies per unit). Since that
    regressor is linear in the amplitudes, ``R @ amplitudes`` equals
    ``compute_regressor`` for all events at once. The math is nilearn's: an
    oversampled boxcar per event (same sampling grid and index rounding),
    convolved with the HRF (written as differences of the HRF's cumulative
    sum, so no long convolution is run), then linearly interpolated at the
    frame times.

    Parameters
    ----------
    onsets, durations : array of shape (n_events,)
        Seconds from the start of the run.
    frame_times : array of shape (n_scans,)
        Acquisition times of the scans (seconds).
    hrf_model : str, default="glover"
        One of :data:`HRF_MODELS`.
    oversampling : int, default=50
        Samples per TR of the high-resolution grid.
    fir_delays : list of int, optional
        Delays in scans, for ``hrf_model="fir"``.
    min_onset : float, default=-24.0
        Start of the high-resolution grid relative to the first frame.
    max_events_per_block : int, default=2048
        Events processed at once (bounds temporary memory).

    Returns
    -------
    list of scipy.sparse.csr_matrix
        One (n_scans, n_events) matrix per basis function.
    """
    frame_times = np.asarray(frame_times, dtype=float)
    onsets = np.asarray(onsets, dtype=float)
    durations = np.asarray(durations, dtype=float)
    n = frame_times.size
    if n < 2:
        raise ValueError("a run needs at least 2 scans")
    t_r = float(np.min(np.diff(frame_times)))
    lo_t, hi_t = frame_times.min(), frame_times.max()
    n_hr = (n - 1) / (hi_t - lo_t) * (hi_t * (1 + 1.0 / (n - 1)) - lo_t - min_onset) * oversampling + 1
    grid = np.linspace(lo_t + min_onset, hi_t * (1 + 1.0 / (n - 1)), int(np.rint(n_hr)))
    tmax = grid.size
    t_on = np.minimum(np.searchsorted(grid, onsets), tmax - 1)
    t_off = np.minimum(np.searchsorted(grid, onsets + durations), tmax - 1)
    t_off[(t_off < tmax - 1) & (t_off == t_on)] += 1

    shift = 0
    x = grid
    if hrf_model == "fir" and oversampling > 1:
        shift = oversampling - 1
        x = grid[: 1 - oversampling]
    idx = np.clip(np.searchsorted(x, frame_times), 1, x.size - 1)
    lo = idx - 1
    w = (frame_times - x[lo]) / (x[idx] - x[lo])

    mats = []
    for kernel in _kernels(hrf_model, t_r, oversampling, fir_delays):
        cum = np.concatenate([[0.0], np.cumsum(kernel)])  # cum[k + 1] = sum(kernel[:k + 1])

        def step(k, cum=cum, size=kernel.size):
            # response at lag k to a unit step starting at lag 0
            return cum[np.clip(k + 1, 0, size)]

        blocks = []
        for start in range(0, onsets.size, max_events_per_block):
            on = t_on[start : start + max_events_per_block][None, :]
            off = t_off[start : start + max_events_per_block][None, :]
            k0 = (lo + shift)[:, None]
            v0 = step(k0 - on) - step(k0 - off)
            v1 = step(k0 + 1 - on) - step(k0 + 1 - off)
            block = v0 * (1.0 - w)[:, None] + v1 * w[:, None]
            blocks.append(sparse.csr_matrix(block))
        mats.append(sparse.hstack(blocks, format="csr") if blocks else sparse.csr_matrix((n, 0)))
    return mats


def _n_scans_of(img):
    """Number of scans of a run image (4D NIfTI, CIFTI dtseries, 2D array, path)."""
    if isinstance(img, (numbers.Integral, np.integer)) and not isinstance(img, bool):
        return int(img)
    if isinstance(img, (str, os.PathLike)):
        import nibabel as nib

        img = nib.load(img)
    shape = getattr(img, "shape", None)
    if shape is None and hasattr(img, "data"):  # nilearn SurfaceImage
        shape = getattr(img.data, "shape", None)
    if shape is None:
        raise TypeError(
            f"cannot tell the number of scans of {type(img).__name__}; give an int, a 4D "
            "image, a CIFTI dtseries, a SurfaceImage or a (n_scans, n_voxels) array"
        )
    kind = type(img).__name__
    if kind == "Cifti2Image" or len(shape) == 2 and kind != "SurfaceImage":
        return int(shape[0])
    return int(shape[-1])


class TRAligner(TransformerMixin, BaseEstimator):
    """Map event-level units onto the scanner's TR grid, run by run.

    Each column of the input (one unit, one value per event) becomes a
    regressor per run: the events' boxcars (onset, duration) scaled by the
    unit's values, sampled on an oversampled grid, convolved with a
    haemodynamic response (nilearn's ``glover`` or ``spm`` models, optionally
    with time and dispersion derivatives) or shifted by FIR delays, and read
    at the frame times; events that straddle TRs count by their overlap.
    The output equals :func:`nilearn.glm.first_level.compute_regressor` per
    unit and run, computed for all units at once: one sparse
    (n_scans x n_events) matrix per run and basis, then one matrix product.

    Parameters
    ----------
    events : pandas.DataFrame
        The events whose units are transformed, in the row order of ``X``:
        columns ``onset``, ``duration`` (seconds from the start of the run)
        and optionally ``run`` (a single run by default).
    n_scans : int, list or dict, optional
        Scans per run: an int (one run), a list in the order of the sorted
        run labels, or ``{run: n}``. Entries may also be run images (4D
        NIfTI or path, CIFTI dtseries, SurfaceImage, (n_scans, n_voxels)
        array), whose number of scans is read. Taken from ``imgs`` when None.
    t_r : float
        Repetition time (seconds).
    hrf_model : str, default="glover"
        One of ``"glover"``, ``"spm"``, ``"glover + derivative"``,
        ``"spm + derivative"``, ``"glover + derivative + dispersion"``,
        ``"spm + derivative + dispersion"`` or ``"fir"``.
    fir_delays : sequence of int, default=(1, 2, 3, 4)
        Delays in scans for ``hrf_model="fir"``: the delayer of the
        voxelwise-encoding literature, each delay giving a copy of every unit
        shifted by that many scans (each scan averages the events over its TR).
    oversampling : int, default=50
        High-resolution samples per TR.
    min_onset : float, default=-24.0
        Start of the high-resolution grid relative to the first scan (s).
    slice_time_ref : float, default=0.0
        Frame times are ``t_r * (arange(n_scans) + slice_time_ref)``.
    standardize : bool, default=True
        Z-score every output column within each run (a constant column
        becomes 0).
    imgs : list or dict, optional
        The runs' fMRI images (or arrays); their numbers of scans must match
        ``n_scans`` (or give it).
    chunk_size : int, default=4096
        Units processed at once (bounds temporary memory).
    n_jobs : int or None, default=None
        Threads over chunks of units (None: 1; -1: all cores). Each thread
        holds one chunk's temporaries.

    Attributes
    ----------
    runs_ : list
        Run labels in output order.
    n_scans_ : dict
        ``{run: n_scans}``.
    run_slices_ : dict
        ``{run: slice}`` of each run's rows in the output.
    run_labels_ : ndarray of shape (n_scans_total,)
        Run label of each output row (groups for leave-one-run-out CV).
    frame_times_ : dict
        ``{run: frame times}``.
    regressors_ : dict
        ``{run: list of sparse (n_scans, n_events_run) matrices}``, one per
        basis.
    n_basis_ : int
        Output columns per input column.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> events = pd.DataFrame({"onset": [0.0, 4.0, 8.0], "duration": [2.0, 2.0, 2.0]})
    >>> aligner = TRAligner(events=events, n_scans=20, t_r=2.0)
    >>> aligner.fit_transform(np.eye(3)).shape
    (20, 3)
    """

    _parameter_constraints = {
        "events": [pd.DataFrame, None],
        "n_scans": "no_validation",
        "t_r": [Interval(Real, 0, None, closed="neither"), None],
        "hrf_model": [StrOptions(set(HRF_MODELS))],
        "fir_delays": ["array-like"],
        "oversampling": [Interval(Integral, 1, None, closed="left")],
        "min_onset": [Real],
        "slice_time_ref": [Real],
        "standardize": ["boolean"],
        "imgs": "no_validation",
        "chunk_size": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
    }

    def __init__(self, events=None, n_scans=None, t_r=None, hrf_model="glover",
                 fir_delays=(1, 2, 3, 4), oversampling=50, min_onset=-24.0,
                 slice_time_ref=0.0, standardize=True, imgs=None, chunk_size=4096,
                 n_jobs=None):
        self.events = events
        self.n_scans = n_scans
        self.t_r = t_r
        self.hrf_model = hrf_model
        self.fir_delays = fir_delays
        self.oversampling = oversampling
        self.min_onset = min_onset
        self.slice_time_ref = slice_time_ref
        self.standardize = standardize
        self.imgs = imgs
        self.chunk_size = chunk_size
        self.n_jobs = n_jobs

    # -- validation ------------------------------------------------------
    def _check_params(self):
        """What the parameter constraints cannot say."""
        if self.events is None:
            raise ValueError(
                "TRAligner needs the events (onset, duration, run) of the rows it aligns: "
                "TRAligner(events=..., n_scans=..., t_r=...)"
            )
        if self.t_r is None:
            raise ValueError("t_r must be a positive number of seconds (the repetition time), got None")
        if self.hrf_model == "fir":
            delays = list(self.fir_delays or [])
            if not delays or any(
                not isinstance(d, (numbers.Integral, np.integer)) or d < 0 for d in delays
            ):
                raise ValueError(
                    f"fir_delays must be non-negative ints (delays in scans), got {self.fir_delays!r}"
                )
        if self.n_jobs == 0:
            raise ValueError("n_jobs must be None or a non-zero int, got 0")

    def _resolve_runs(self, events):
        labels = [v.item() if isinstance(v, np.generic) else v for v in pd.unique(events["run"])]
        try:
            ordered = sorted(labels)
        except TypeError:
            ordered = labels

        def as_dict(spec, what):
            if spec is None:
                return None
            if isinstance(spec, dict):
                return dict(spec)
            if isinstance(spec, (list, tuple)):
                if len(spec) != len(ordered):
                    raise ValueError(
                        f"{what} has {len(spec)} entries but the events have {len(ordered)} runs "
                        f"{ordered}; give one per run (in sorted run order) or a dict {{run: ...}}"
                    )
                return dict(zip(ordered, spec))
            if len(ordered) != 1:
                raise ValueError(
                    f"{what} is a single value but the events have {len(ordered)} runs {ordered}; "
                    "give a list or a dict {run: ...}"
                )
            return {ordered[0]: spec}

        counts = as_dict(self.n_scans, "n_scans")
        imgs = as_dict(self.imgs, "imgs")
        if counts is None and imgs is None:
            raise ValueError("give n_scans (scans per run) or imgs (the runs' fMRI images)")
        if counts is None:
            counts = imgs
        counts = {run: _n_scans_of(v) for run, v in counts.items()}
        if imgs is not None:
            for run, img in imgs.items():
                n_img = _n_scans_of(img)
                if run not in counts or counts[run] != n_img:
                    raise ValueError(
                        f"run {run!r}: the image has {n_img} scans but n_scans says "
                        f"{counts.get(run)}; the time series would not line up with the fMRI"
                    )
        unknown = [r for r in labels if r not in counts]
        if unknown:
            raise ValueError(
                f"events of runs {unknown} have no n_scans entry (known runs: {list(counts)}); "
                "check the run labels"
            )
        for run, n in counts.items():
            if n < 2:
                raise ValueError(f"run {run!r} has {n} scans; a run needs at least 2")
        return counts

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Build the per-run regressor matrices.

        Parameters
        ----------
        X : array-like of shape (n_events, n_units)
            Event-level units, rows in the order of ``events``.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        self._check_params()
        X = validate_data(self, X, reset=True, dtype=[np.float64, np.float32])
        events = self.events.reset_index(drop=True)
        if "image" not in events.columns and "text" not in events.columns:
            events = events.assign(text=None)
        events = check_events(events, allow_overlap=True)
        if X.shape[0] != len(events):
            raise ValueError(
                f"X has {X.shape[0]} rows but there are {len(events)} events; give one row of "
                "units per event, in the order of the events table"
            )
        counts = self._resolve_runs(events)
        self.runs_ = list(counts)
        self.n_scans_ = counts
        self.frame_times_, self.regressors_, self._rows = {}, {}, {}
        start = 0
        self.run_slices_ = {}
        delays = [int(d) for d in self.fir_delays] if self.hrf_model == "fir" else None
        for run in self.runs_:
            n = counts[run]
            ft = self.t_r * (np.arange(n) + self.slice_time_ref)
            sub = events[events["run"] == run]
            rows = sub.index.to_numpy()
            end = sub["onset"].to_numpy() if len(sub) else np.zeros(0)
            late = end > ft[-1] + self.t_r
            if late.any():
                warnings.warn(
                    f"run {run!r}: {int(late.sum())} events start after the last scan "
                    f"({ft[-1] + self.t_r:g} s); they do not reach the time series",
                    UserWarning,
                    stacklevel=2,
                )
            self.frame_times_[run] = ft
            self._rows[run] = rows
            self.regressors_[run] = regressor_matrices(
                sub["onset"].to_numpy(), sub["duration"].to_numpy(), ft, self.hrf_model,
                int(self.oversampling), delays, float(self.min_onset),
            )
            self.run_slices_[run] = slice(start, start + n)
            start += n
        self.n_basis_ = len(self.regressors_[self.runs_[0]])
        self.run_labels_ = np.concatenate(
            [np.full(counts[r], r, dtype=object) for r in self.runs_]
        )
        return self

    def _suffixes(self):
        if self.hrf_model == "fir":
            return [f"_delay_{int(d)}" for d in self.fir_delays]
        return ["", "_derivative", "_dispersion"][: self.n_basis_]

    def get_feature_names_out(self, input_features=None):
        """Names ``<unit><suffix>``, basis-major (all units for each basis in turn)."""
        check_is_fitted(self, "regressors_")
        if input_features is None:
            input_features = getattr(self, "feature_names_in_", None)
        if input_features is None:
            input_features = [f"x{i}" for i in range(self.n_features_in_)]
        return np.asarray(
            [f"{name}{suffix}" for suffix in self._suffixes() for name in input_features], dtype=object
        )

    def transform(self, X):
        """Align event-level units to the TR grid.

        Parameters
        ----------
        X : array-like of shape (n_events, n_units)
            Units per event, in the order of ``events``.

        Returns
        -------
        ndarray of shape (sum of n_scans, n_units * n_basis)
            Runs stacked in :attr:`runs_` order; columns basis-major. Same
            float dtype as ``X`` (float32 stays float32).
        """
        check_is_fitted(self, "regressors_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        n_events = sum(len(r) for r in self._rows.values())
        if X.shape[0] != n_events:
            raise ValueError(f"X has {X.shape[0]} rows but there are {n_events} events")
        n_units = X.shape[1]
        total = sum(self.n_scans_.values())
        out = np.empty((total, n_units * self.n_basis_), dtype=X.dtype)
        orthogonalize = self.hrf_model != "fir" and self.n_basis_ > 1
        # float32 units are aligned in float32 (half the memory traffic),
        # float64 units in float64
        tasks = []
        for run in self.runs_:
            mats = [m.astype(X.dtype) for m in self.regressors_[run]]
            for c0 in range(0, n_units, self.chunk_size):
                tasks.append((run, mats, c0, min(c0 + self.chunk_size, n_units)))

        def work(task):
            run, mats, c0, c1 = task
            sl = self.run_slices_[run]
            amp = X[self._rows[run], c0:c1]
            cols = [np.asarray(m @ amp) for m in mats]
            if orthogonalize:
                cols = _orthogonalize(cols)
            for b, col in enumerate(cols):
                if self.standardize:
                    col = zscore(col)
                out[sl, b * n_units + c0 : b * n_units + c1] = col  # disjoint blocks

        n_jobs = 1 if self.n_jobs is None else int(self.n_jobs)
        if n_jobs < 0:
            n_jobs = max(1, (os.cpu_count() or 1) + 1 + n_jobs)
        if n_jobs == 1 or len(tasks) == 1:
            for task in tasks:
                work(task)
        else:  # sparse products and NumPy release the GIL
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=n_jobs) as pool:
                list(pool.map(work, tasks))
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return nilearn_input_tags(tags)  # X: event-level units (arrays)


def _orthogonalize(cols):
    """Per unit, each basis column minus its projection on the previous ones.

    Same result as nilearn's ``orthogonalize`` applied to every unit's
    (n_scans, n_basis) design (a zero column projects to nothing, as with
    ``pinv``).
    """
    done = []
    for col in cols:
        col = col.copy()
        for prev in done:
            norm = np.einsum("ij,ij->j", prev, prev)
            dot = np.einsum("ij,ij->j", col, prev)
            coef = np.divide(dot, norm, out=np.zeros_like(dot), where=norm > 0)
            col -= prev * coef
        done.append(col)
    return done
