"""Per-voxel scores and the explainable-variance noise ceiling."""

import numpy as np

__all__ = ["explainable_variance", "pearson_per_voxel"]


def pearson_per_voxel(y_true, y_pred):
    """Pearson correlation between matching columns.

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
    a = np.asarray(y_true, dtype=np.float64)
    b = np.asarray(y_pred, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"Shapes differ: {a.shape} and {b.shape}.")
    a = a - a.mean(0)
    b = b - b.mean(0)
    num = np.einsum("ij,ij->j", a, b)
    den = np.sqrt(np.einsum("ij,ij->j", a, a) * np.einsum("ij,ij->j", b, b))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
    return np.clip(r, -1.0, 1.0)


def explainable_variance(repeats, bias_correction=True, zscore=True):
    """Explainable variance of each voxel from repeated presentations.

    With ``R`` repeats of the same stimulus sequence, the explainable
    variance is the share of the response variance that repeats: the variance
    over time of the mean response divided by the mean over repeats of the
    variance over time (Sahani & Linden, 2003; the noise ceiling of the
    Gallant lab's voxelwise tutorials). With ``bias_correction`` the upward
    bias of the mean of ``R`` noisy repeats is removed:
    ``ev - (1 - ev) / (R - 1)``. The result can be negative for noise-only
    voxels. A model's R^2 should be read against it; its square root bounds
    the expected Pearson r.

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

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.standard_normal((2000, 1))
    >>> reps = [signal + rng.standard_normal((2000, 1)) for _ in range(4)]
    >>> float(np.round(explainable_variance(reps)[0], 1))
    0.5
    """
    data = np.asarray(repeats, dtype=np.float64)
    if data.ndim != 3 or data.shape[0] < 2:
        raise ValueError(
            "repeats must be (n_repeats, n_samples, n_voxels) with at least "
            f"2 repeats; got shape {data.shape}."
        )
    if zscore:
        std = data.std(1, keepdims=True)
        data = (data - data.mean(1, keepdims=True)) / np.where(std > 0, std, 1)
    mean_var = data.var(axis=1, ddof=1).mean(axis=0)
    var_mean = data.mean(axis=0).var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ev = np.where(mean_var > 0, var_mean / mean_var, np.nan)
    if bias_correction:
        ev = ev - (1 - ev) / (data.shape[0] - 1)
    return ev
