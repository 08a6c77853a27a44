"""Null cross-products of one run, for all resamplings at once (see :mod:`._nulls`)."""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft
from scipy import sparse


def cross_shift(xr, yr, shifts):
    n = yr.shape[0]
    X = sfft.rfft(xr, axis=0)
    Y = sfft.rfft(yr, axis=0)
    cc = sfft.irfft(np.conj(X) * Y, n=n, axis=0)  # cc[s] = sum_t x[t - s] y[t]
    return cc[shifts]


def cross_phase(xr, yr, theta):
    n = yr.shape[0]
    S = sfft.rfft(xr, axis=0) * np.conj(sfft.rfft(yr, axis=0))  # (n_freq, n_vox)
    w = np.full(S.shape[0], 2.0 / n)
    w[0] = 1.0 / n
    if n % 2 == 0:
        w[-1] = 1.0 / n
    dt = yr.dtype
    a = (w * np.cos(theta)).astype(dt)
    b = (-w * np.sin(theta)).astype(dt)
    return a @ np.ascontiguousarray(S.real) + b @ np.ascontiguousarray(S.imag)


def cross_block(xr, yr, length, offsets, orders):
    """Null cross-products of circular block permutations, by FFT.

    With ``XC_b[s] = sum_j y[b L + j] x[(b L + j + s) mod n]`` (the circular
    cross-correlation of BOLD block ``b`` with the whole regressor; the tail
    past the last full block is block ``B``), a draw ``(o, order)`` gives
    ``c = sum_b XC_b[((order[b] - b) L + o) mod n] + XC_B[o]``: one FFT per
    block, then a sparse gather for all draws, whatever their offsets.
    """
    n, n_vox = yr.shape
    n_blocks = n // length
    n_full = n_blocks * length
    n_parts = n_blocks + (n_full < n)
    Xf = sfft.rfft(xr, axis=0)  # (n_freq, 1 or n_vox)
    xc = np.empty((n_parts, n, n_vox), dtype=yr.dtype)
    for b in range(n_parts):
        stop = min((b + 1) * length, n) if b < n_blocks else n
        yb = np.zeros_like(yr)
        yb[b * length:stop] = yr[b * length:stop]
        xc[b] = sfft.irfft(np.conj(sfft.rfft(yb, axis=0)) * Xf, n=n, axis=0)
    m = offsets.shape[0]
    b_idx = np.arange(n_blocks)
    lag = ((orders - b_idx) * length + offsets[:, None]) % n  # (m, n_blocks)
    cols = b_idx * n + lag
    if n_parts > n_blocks:
        cols = np.column_stack([cols, n_blocks * n + offsets])
    k = cols.shape[1]
    pick = sparse.csr_matrix(
        (np.ones(m * k, dtype=yr.dtype), cols.ravel(), np.arange(0, m * k + 1, k)),
        shape=(m, n_parts * n),
    )
    return pick @ xc.reshape(n_parts * n, n_vox)


def cross_iid(xr, yr, perms):
    if xr.shape[1] == 1:
        return xr[perms, 0] @ yr
    return np.stack([np.einsum("tv,tv->v", xr[p], yr) for p in perms])
