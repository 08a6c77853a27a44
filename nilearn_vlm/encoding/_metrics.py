"""Per-voxel scores and the explainable-variance noise ceiling."""

import numpy as np

from nilearn_vlm._utils import check_repeats, pearson_r, signal_power
from nilearn_vlm._utils import zscore as _zscore

__all__ = ["explainable_variance", "pearson_per_voxel"]


def pearson_per_voxel(y_true, y_pred):
    """Pearson correlation between matching columns.

    :func:`nilearn_vlm.stats.pearson_r` for two arrays of the same shape.

    Parameters
    ----------
    y_true, y_pred : ndarray, shape (n_samples, n_voxels)

    Returns
    -------
    r : ndarray, shape (n_voxels,)
        Correlation per column; 0 where either column is constant.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    >>> pearson_per_voxel(a, 2 * a).tolist()
    [1.0, 0.0]
    """
    a, b = np.asarray(y_true), np.asarray(y_pred)
    if a.shape != b.shape:
        raise ValueError(f"Shapes differ: {a.shape} and {b.shape}.")
    return pearson_r(b, a)


def explainable_variance(repeats, bias_correction=True, zscore=True):
    """Explainable variance of each voxel from repeated presentations.

    With ``R`` repeats of the same stimulus sequence, the explainable
    variance is the share of the response variance that repeats: the variance
    over time of the mean response divided by the mean over repeats of the
    variance over time (Sahani & Linden, 2003; the noise ceiling of the
    Gallant lab's voxelwise tutorials). With ``bias_correction`` the upward
    bias of the mean of ``R`` noisy repeats is removed:
    ``ev - (1 - ev) / (R - 1)``, which is the signal power over the mean
    variance (:func:`nilearn_vlm.stats.signal_power`). The result can be
    negative for noise-only voxels. A model's R^2 should be read against it;
    its square root bounds the expected Pearson r.

    Parameters
    ----------
    repeats : array-like, shape (n_repeats, n_samples, n_voxels)
        The responses to each repeat (a list of 2D arrays works).
    bias_correction : bool, default=True
        Remove the bias due to the finite number of repeats.
    zscore : bool, default=True
        z-score each repeat over time first (removes run-wise scaling).

    Returns
    -------
    ev : ndarray, shape (n_voxels,)
        NaN for voxels holding NaN or constant in every repeat.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.standard_normal((2000, 1))
    >>> reps = [signal + rng.standard_normal((2000, 1)) for _ in range(4)]
    >>> float(np.round(explainable_variance(reps)[0], 1))
    0.5
    """
    data = check_repeats(repeats, allow_nan=True)
    if zscore:
        data = _zscore(data, axis=1)
    sp, noise = signal_power(data, allow_nan=True)
    mean_var = sp + noise  # mean over repeats of the variance over time
    # Var(mean response) = SP + noise / R, so the raw ratio minus its bias is SP / mean_var
    explained = sp if bias_correction else sp + noise / data.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mean_var > 0, explained / np.where(mean_var > 0, mean_var, 1), np.nan)

