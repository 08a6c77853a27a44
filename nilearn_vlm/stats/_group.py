"""Group level: subjects' maps combined by sign-flip permutation tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _mne_seed(func, random_state):
    """mne >= 1.11 takes ``rng=``, older versions ``seed=``."""
    import inspect

    key = "rng" if "rng" in inspect.signature(func).parameters else "seed"
    return {key: random_state}


def _image_to_array(img, masker):
    """(n_samples, n_voxels) from one 4-D (or surface) image through a fitted masker."""
    if not hasattr(masker, "transform"):
        raise TypeError(f"masker must be a fitted nilearn masker; got {type(masker).__name__}")
    if isinstance(img, np.ndarray):
        return img
    return np.atleast_2d(np.asarray(masker.transform(img), dtype=float))


def _maps_to_array(maps, masker):
    """(n_subjects, n_voxels) from a list of images through a fitted masker."""
    if masker is None:
        return np.asarray(maps, dtype=float)
    if not hasattr(masker, "transform"):
        raise TypeError(f"masker must be a nilearn masker; got {type(masker).__name__}")
    rows = [np.atleast_2d(np.asarray(masker.transform(img), dtype=float)) for img in maps]
    return np.vstack(rows)


@dataclass
class GroupResult:
    """One-sample group map with max-t family-wise p-values.

    Attributes
    ----------
    statistic : ndarray of shape (n_voxels,)
        One-sample t-values across subjects.
    mean : ndarray of shape (n_voxels,)
        Mean map across subjects.
    pvalues_fwe : ndarray of shape (n_voxels,)
        Family-wise corrected p-values (max-``|t|`` over voxels per sign flip).
    null_max : ndarray
        Max ``|t|`` of each sign flip (the observed one included, as mne does).
    n_subjects : int
    """

    statistic: np.ndarray
    mean: np.ndarray
    pvalues_fwe: np.ndarray
    null_max: np.ndarray
    n_subjects: int

    def significant(self, alpha=0.05):
        """Boolean map of voxels with FWE p <= alpha."""
        return self.pvalues_fwe <= alpha


def group_sign_flip(maps, *, masker=None, tail=1, n_permutations=10000, random_state=None, n_jobs=None):
    """One-sample sign-flip permutation test of subjects' maps, FWE corrected.

    Under the null each subject's map is symmetric around zero (e.g. chance
    encoding r centred at 0, or a subject-level map minus its null mean), so
    flipping the sign of whole subject maps gives the null distribution of the
    group t-map; the maximum ``|t|`` over voxels per flip controls the family-wise
    error (:func:`mne.stats.permutation_t_test`; all ``2**n_subjects`` flips
    are enumerated when ``n_permutations`` exceeds them). Fisher-z transform
    correlation maps first (``np.arctanh``) for better symmetry.

    Parameters
    ----------
    maps : array-like of shape (n_subjects, n_voxels), or list of images
        One map per subject, in a common space (images need ``masker``).
    masker : nilearn masker, optional
        Fitted ``NiftiMasker`` or ``SurfaceMasker`` for image input; turn the
        output back into an image with ``masker.inverse_transform``.
    tail : {1, -1, 0}, default=1
        Test ``mean > 0``, ``mean < 0`` or two-sided.
    n_permutations : int, default=10000
        Sign flips.
    random_state : int or None
        Seed.
    n_jobs : int, optional
        Jobs for mne.

    Returns
    -------
    GroupResult

    See Also
    --------
    cluster_test : the cluster-level version (group maps and an adjacency).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> maps = rng.standard_normal((10, 50))
    >>> maps[:, :5] += 3.0
    >>> res = group_sign_flip(maps, random_state=0)
    >>> bool(res.significant(0.05)[:5].all()), bool(res.significant(0.05)[5:].any())
    (True, False)
    """
    from mne.stats import permutation_t_test

    if tail not in (1, -1, 0):
        raise ValueError(f"tail must be 1, -1 or 0; got {tail!r}")
    x = _maps_to_array(maps, masker)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(
            f"maps must have shape (n_subjects >= 2, n_voxels); got {x.shape}. "
            "Stack one map per subject."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("maps contain NaN or infinite values; mask them out first")
    t_obs, pvals, h0 = permutation_t_test(
        x, n_permutations=n_permutations, tail=tail, n_jobs=n_jobs, verbose=False,
        **_mne_seed(permutation_t_test, random_state),
    )
    return GroupResult(t_obs, x.mean(0), np.asarray(pvals), np.asarray(h0), x.shape[0])
