"""Semi-synthetic multi-run data: real rest noise, raw-scanner offsets and drifts, planted responses."""

from __future__ import annotations

import numpy as np


def semisynthetic_runs(noise, t_r, seed, n_runs=4, n_features=4, share=0.05, snr=0.25):
    """Real resting-state noise cut into runs, with per-run offsets and drifts and planted responses.

    The noise is cut into ``n_runs`` runs of equal length; each run gets its
    own baseline offset and linear drift (each 1-5% of the voxel's mean
    signal, random sign), as raw BOLD comes from a scanner. ``n_features``
    random regressors, convolved with nilearn's Glover HRF run by run (20
    scans of burn-in), drive a random ``share`` of the voxels linearly, at a
    variance SNR of ``snr`` against each voxel's run-centred noise; the other
    voxels get nothing.

    Parameters
    ----------
    noise : ndarray of shape (n_scans, n_voxels)
        Real rest noise, for example from :func:`nilearn_vlm.testing.rest_noise`.
    t_r : float
        Repetition time in seconds.
    seed : int
        Seed of the features, offsets, drifts and planted voxels.
    n_runs : int, default=4
        Number of runs (the last ``n_scans % n_runs`` scans are dropped).
    n_features : int, default=4
        Number of regressors.
    share : float, default=0.05
        Share of the voxels that respond (at least one).
    snr : float, default=0.25
        Variance SNR of the planted responses.

    Returns
    -------
    X : ndarray of shape (n_runs * n, n_features)
        The HRF-convolved regressors.
    Y : ndarray of shape (n_runs * n, n_voxels)
        Noise with offsets, drifts and the planted responses.
    runs : ndarray of shape (n_runs * n,)
        Run index of each scan, 0 to ``n_runs - 1``.
    responsive : ndarray of int
        Sorted indices of the planted voxels.

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.testing import semisynthetic_runs
    >>> noise = np.random.default_rng(0).standard_normal((88, 200)) + 100.0
    >>> X, Y, runs, responsive = semisynthetic_runs(noise, t_r=2.5, seed=0)
    >>> X.shape, Y.shape, np.bincount(runs).tolist(), responsive.size
    ((88, 4), (88, 200), [22, 22, 22, 22], 10)
    """
    from nilearn.glm.first_level import glover_hrf
    from scipy.signal import lfilter

    noise = np.asarray(noise)
    if not np.issubdtype(noise.dtype, np.floating):
        noise = noise.astype(np.float64)
    rng = np.random.default_rng(seed)
    n = noise.shape[0] // n_runs
    if n < 2:
        raise ValueError(f"{noise.shape[0]} scans cannot make {n_runs} runs of at least 2 scans; "
                         "pass fewer runs or more scans")
    Y0 = noise[: n * n_runs]
    runs = np.repeat(np.arange(n_runs), n)
    h = glover_hrf(t_r, oversampling=1, time_length=32.0)
    X = np.vstack([lfilter(h, [1.0], rng.standard_normal((n + 20, n_features)), axis=0)[20:]
                   for _ in range(n_runs)])
    mean, Y = Y0.mean(0), Y0.copy()
    ramp = np.linspace(-0.5, 0.5, n)[:, None]
    for k in range(n_runs):
        offset = rng.uniform(0.01, 0.05) * rng.choice([-1.0, 1.0])
        drift = rng.uniform(0.01, 0.05) * rng.choice([-1.0, 1.0])
        Y[runs == k] += mean * (offset + drift * ramp)
    responsive = np.sort(rng.choice(Y.shape[1], max(1, int(share * Y.shape[1])), replace=False))
    centred = np.vstack([Y0[runs == k][:, responsive] - Y0[runs == k][:, responsive].mean(0)
                         for k in range(n_runs)])
    signal = X @ rng.standard_normal((n_features, responsive.size))
    Y[:, responsive] += signal / signal.std(0) * centred.std(0) * np.sqrt(snr)
    return X, Y, runs, responsive


def within_run_r_by_hand(prediction, Y, frame_times, high_pass):
    """Pearson r of one run after removing a constant, a linear trend and nilearn's cosine drifts.

    An independent reference for the encoder's within-run score: the drift
    regressors come from nilearn's
    :func:`~nilearn.glm.first_level.make_first_level_design_matrix`, the
    residuals from least squares, the correlation from
    :func:`scipy.stats.pearsonr`.

    Parameters
    ----------
    prediction, Y : ndarray of shape (n_scans, n_voxels)
        Predicted and measured signals of one run.
    frame_times : ndarray of shape (n_scans,)
        Scan times in seconds.
    high_pass : float
        Cut-off of the cosine drifts in Hz.

    Returns
    -------
    ndarray of shape (n_voxels,)

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.testing import within_run_r_by_hand
    >>> rng = np.random.default_rng(0)
    >>> y = rng.standard_normal((40, 3))
    >>> r = within_run_r_by_hand(y + 0.1 * rng.standard_normal((40, 3)), y, np.arange(40) * 2.0, 0.01)
    >>> bool((r > 0.9).all())
    True
    """
    from nilearn.glm.first_level import make_first_level_design_matrix
    from scipy.stats import pearsonr

    drifts = make_first_level_design_matrix(np.asarray(frame_times, dtype=float), drift_model="cosine",
                                            high_pass=high_pass).to_numpy()  # cosines + constant
    D = np.column_stack([drifts, frame_times])
    resid = [A - D @ np.linalg.lstsq(D, A, rcond=None)[0]
             for A in (np.asarray(prediction, dtype=np.float64), np.asarray(Y, dtype=np.float64))]
    return pearsonr(resid[0], resid[1], axis=0).statistic
