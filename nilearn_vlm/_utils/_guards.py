"""Numerical guards: variance floors relative to each column's scale.

A column (a voxel, a feature, a prediction) is *flat* on a set of scans when
its sum of squares around the mean there is at or below

``floor = n * (rtol * scale) ** 2``,   ``rtol = FLOOR_ULPS * eps(dtype)``,

with ``n`` the number of scans, ``scale`` the column's root mean square on
those scans **before** centring (so a BOLD baseline of 10,000 counts: its
rounding error does too) and ``eps`` the machine epsilon of the precision the
values were stored or computed in (float32: 1.19e-7). Rounding leaves a
constant float32 series a sum of squares of order ``n (eps scale) ** 2``, which
a ``> 0`` test lets through (a voxel flat in one run then gets a
cross-validated R^2 of -1e12); the floor sits :data:`FLOOR_ULPS` ** 2 = 1e4
times above it. In float32 it is a standard deviation of 1.2e-5 of the scale:
a BOLD signal whose standard deviation is 0.1% of its baseline has a variance
7,000 times the floor.

Scores of flat columns are undefined: they are NaN, counted, and left out of
every mean (:func:`warn_unscored` names the count).
"""

from __future__ import annotations

import warnings

import numpy as np

#: Relative tolerance of the floor in units of the dtype's epsilon.
FLOOR_ULPS = 100.0


def floor_rtol(dtype):
    """Relative tolerance of the variance floor for values of ``dtype``.

    ``FLOOR_ULPS * eps``: 1.19e-5 for float32, 2.2e-14 for float64 (integers
    and other kinds count as float64).

    Examples
    --------
    >>> float(floor_rtol(np.float32)) > float(floor_rtol(np.float64))
    True
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
    return FLOOR_ULPS * float(np.finfo(dtype).eps)


def column_scale(A, chunk=4096):
    """Root mean square of each column (before centring), in float64, by column chunks.

    Parameters
    ----------
    A : ndarray of shape (n_samples, n_columns)

    Returns
    -------
    ndarray of shape (n_columns,)
    """
    out = np.empty(A.shape[1])
    for s0 in range(0, A.shape[1], chunk):
        block = np.asarray(A[:, s0:s0 + chunk], dtype=np.float64)
        out[s0:s0 + chunk] = np.sqrt((block**2).mean(0)) if A.shape[0] else 0.0
    return out


def variance_floor(scale, n, dtype):
    """Smallest centred sum of squares that counts as variance.

    Parameters
    ----------
    scale : array-like
        Root mean square of each column on the scans (:func:`column_scale`).
    n : int
        Number of scans.
    dtype : numpy dtype
        Precision the values were stored or computed in.

    Returns
    -------
    ndarray
        ``n * (floor_rtol(dtype) * scale) ** 2``.

    Examples
    --------
    >>> float(variance_floor(1.0, 100, np.float64)) < 1e-20
    True
    """
    return n * (floor_rtol(dtype) * np.asarray(scale, dtype=np.float64)) ** 2


def is_flat(sum_squares, scale, n, dtype):
    """Whether each column is flat: its centred sum of squares is at or below the floor.

    Parameters
    ----------
    sum_squares : array-like
        Centred (or cleaned) sum of squares per column.
    scale, n, dtype
        See :func:`variance_floor`.

    Returns
    -------
    ndarray of bool

    Examples
    --------
    >>> y = np.full(50, 0.7, dtype=np.float32)
    >>> ss = float(((y - y.mean()) ** 2).sum())  # rounding can leave ~1e-12
    >>> bool(is_flat(ss, 0.7, 50, np.float32))
    True
    """
    ss = np.asarray(sum_squares, dtype=np.float64)
    return ~(ss > variance_floor(scale, n, dtype))


def warn_unscored(n_unscored, n_total, what, why, stacklevel=3):
    """Warn that ``n_unscored`` of ``n_total`` columns have no score (NaN, left out of means).

    Parameters
    ----------
    n_unscored, n_total : int
    what : str
        What was scored (``"encoder scores"``).
    why : str
        The reason, completing "... are NaN: ...".
    stacklevel : int, default=3
    """
    if n_unscored:
        warnings.warn(
            f"{int(n_unscored)} of {int(n_total)} voxel(s) cannot be scored ({what} are NaN, left out "
            f"of every mean and counted): {why}.",
            UserWarning, stacklevel=stacklevel,
        )
