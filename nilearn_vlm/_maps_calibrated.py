"""Calibrated unit x voxel maps: the calibrated GLM with one model per unit, out of core.

The statistic of a pair is the univariate calibrated GLM of
:mod:`nilearn_vlm._glm_calibrated` with the unit as the regressor: the same
global AR(2) whitening, the same Toeplitz sandwich variance and Satterthwaite
degrees of freedom, computed for blocks of units x voxels by float32 matrix
products. Every per-pair quantity factors into a unit side and a voxel side:

- the estimate ``b = a_u . e_v`` (``n_scans`` inner terms);
- its variance, ``P_u . G_v`` with ``2 (L + 1)`` inner terms, less the Wald
  share ``b^2 (xa_u + xb_u lam_v)``;
- the Satterthwaite moments ``E`` and ``V2``, low-rank products (12 and 16
  terms: the unit sides' spectra decay fast), computed as block products and
  read only for the pairs whose t could pass the uncorrected level.

The voxels' autocovariances are estimated once (in the pass that sets the
shrinkage target) and reused by the blocks.

Significance is Benjamini-Hochberg over all pairs from per-unit histograms of
the pairs' normal-equivalent ``|z|`` (Hill's t -> z): the rejected pairs are
those of exact BH except at most the ones within one bin (``z_resolution``)
of the cut. The top units of each voxel are ranked by the whitened partial
correlation ``r_w`` (unit and voxel whitened, nuisance removed).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from nilearn_vlm._glm_calibrated import (
    AR_ORDER,
    VARIANCE_FLOOR,
    contrast_weights,
    cos_product,
    shrunk_spectrum,
    spectral_kernels,
    _safe_t,
    t_pvalues,
    t_to_z,
)
from nilearn_vlm._glm_noise import (
    NoiseModel,
    ar_whiten,
    dct_keep,
    default_max_lag,
    global_ar_filter,
    lag_sums,
    median_autocorrelation,
    noise_model,
    orth_basis,
    residual_bias_matrix,
    tukey,
)
from nilearn_vlm._topk import TopK
from nilearn_vlm.parallel import chunk_groups, map_tasks

#: Ranks of the low-rank unit sides of the Satterthwaite moments.
RANK_E, RANK_V2 = 12, 16
#: Share of a block's pairs above which the moments are block products (else per pair).
DENSE_MOMENTS = 0.08


def _low_rank(F, r):
    """(U, d) unit factors -> (U, r) float32 and the (r, d) rotation of the voxel side."""
    _, vec = np.linalg.eigh(F.T @ F)
    vec = vec[:, ::-1][:, : min(r, F.shape[1])]
    return np.ascontiguousarray(F @ vec, dtype=np.float32), vec.T


class _Design:
    """The unit side, computed once: whitened units, contrasts and their variance factors."""

    def __init__(self, X, Y, nuisance, runs, max_lag, voxel_chunk, keep_white=False):
        n, self.n_units = X.shape
        self.runs = runs
        self.L = L = max_lag if max_lag is not None else default_max_lag(n, runs)
        self.phi = global_ar_filter(Y, nuisance, AR_ORDER, runs, L)
        self.Q = orth_basis(ar_whiten(nuisance, self.phi, runs))
        self.M = residual_bias_matrix(self.Q, L, runs)
        self.spec = dct_keep(self.Q, runs)
        V = Y.shape[1]
        # one pass over the voxels: bias-corrected autocovariances of the whitened
        # residuals (L + 1, V), their norms and (``keep_white``) the float32 residuals
        self.gamma = gam = np.empty((L + 1, V))
        self.ynorm = np.empty(V, dtype=np.float32)
        self.white = np.empty((n, V), dtype=np.float32) if keep_white else None
        for s in range(0, V, voxel_chunk):
            Ew = self.voxels(Y, s, s + voxel_chunk)
            gam[:, s : s + voxel_chunk] = np.linalg.solve(self.M, lag_sums(Ew, L, runs))
            self.ynorm[s : s + voxel_chunk] = np.sqrt(np.maximum(np.einsum("ij,ij->j", Ew, Ew), 1e-300))
            if keep_white:
                self.white[:, s : s + voxel_chunk] = Ew
        self.rho_bar = median_autocorrelation(gam)
        Xw = ar_whiten(np.asarray(X, dtype=np.float64), self.phi, runs)
        Xw -= self.Q @ (self.Q.T @ Xw)
        norms = np.einsum("ij,ij->j", Xw, Xw)
        norms = np.where(norms > 1e-12 * max(norms.max(initial=0.0), 1e-300), norms, np.inf)
        A = Xw / norms
        ref = NoiseModel(gam[:, :1], np.ones(1), self.rho_bar, self.M, self.spec, tukey(L))
        w = contrast_weights(A, ref, runs)
        sx = lag_sums(Xw, L, runs)
        K1, _ = spectral_kernels(self.spec, L)
        f32 = np.float32
        rscale = np.sqrt(np.where(np.isfinite(norms), norms, 0.0))
        # blocks of A_r^T e_w are b * rscale: per voxel, the units' |r_w| up to the voxel's norm
        self.Ar = (A * rscale).astype(f32)
        self.binv = np.where(rscale > 0, 1 / np.where(rscale > 0, rscale, 1.0), 0.0)
        self.P = np.ascontiguousarray(np.vstack([w["ua"], w["ub"]]).T, dtype=f32)
        self.xa = np.einsum("lj,lj->j", w["ha"], sx).astype(f32)
        self.xb = np.einsum("lj,lj->j", w["hb"], sx).astype(f32)
        self.c0 = w["c"][0].astype(f32)
        self.PE, self.Erot = _low_rank(np.vstack([K1.T @ w["ha"], K1.T @ w["hb"]]).T, RANK_E)
        V2 = np.vstack([cos_product(w["ha"], w["ha"]), 2 * cos_product(w["ha"], w["hb"]),
                        cos_product(w["hb"], w["hb"])])
        self.PV, self.V2rot = _low_rank(V2.T, RANK_V2)

    def voxels(self, Y, v0, v1):
        """Whitened, nuisance-free voxels ``v0:v1`` (float64)."""
        Ew = ar_whiten(np.asarray(Y[:, v0:v1], dtype=np.float64), self.phi, self.runs)
        return Ew - self.Q @ (self.Q.T @ Ew)


def _voxel_side(d, gamma):
    """Per-voxel factors of one voxel chunk (float32) from its autocovariances ``gamma``."""
    noise = noise_model(gamma, d.M, d.spec, d.rho_bar)
    f = shrunk_spectrum(noise)
    _, K2 = spectral_kernels(d.spec, d.L)
    f2 = K2 @ cos_product(f, f)
    lam, g = noise.lam, noise.gamma
    f32 = np.float32
    return {
        "var": np.vstack([g, g * lam]).astype(f32),
        "E": np.ascontiguousarray((d.Erot @ np.vstack([f, f * lam])).T, dtype=f32),
        "V2": np.ascontiguousarray((d.V2rot @ np.vstack([f2, f2 * lam, f2 * lam**2])).T, dtype=f32),
        "lam": lam.astype(f32), "g0": g[0].astype(f32),
    }


def _pair_tests(d, G, br, var, u0, flat, floor=VARIANCE_FLOOR):
    """t and Satterthwaite dof of the pairs ``flat`` (indices into the block ``br = b * rscale``).

    The Satterthwaite moments are low-rank products: per pair when few pairs
    are asked for, else as block products read at the pairs.
    """
    n_cols = br.shape[1]
    rows, cols = np.divmod(flat, n_cols)
    ru = rows + u0
    bs = br.ravel()[flat] * d.binv[ru]
    vs = var.ravel()[flat] - bs**2 * (d.xa[ru] + d.xb[ru] * G["lam"][cols])  # Wald form
    vs = np.maximum(vs, floor * d.c0[ru] * G["g0"][cols])
    t = _safe_t(bs, vs)
    if flat.size < DENSE_MOMENTS * br.size:
        E = np.einsum("ij,ij->i", d.PE[ru], G["E"][cols]).astype(np.float64)
        V2 = np.einsum("ij,ij->i", d.PV[ru], G["V2"][cols]).astype(np.float64)
    else:
        u1 = u0 + br.shape[0]
        E = (d.PE[u0:u1] @ G["E"].T).ravel()[flat].astype(np.float64)
        V2 = (d.PV[u0:u1] @ G["V2"].T).ravel()[flat].astype(np.float64)
    return t, np.maximum(E * E / np.maximum(V2, 1e-300), 1.0), rows


def _group_task(d, Y, white, gamma, ynorm, uc, vc, top_k, z_floor, z_res, n_bins, with_p):
    """Blocks of one group of voxels: top-k, per-unit |z| histograms, (optionally) all p-values.

    ``Y``: the group's voxels, already whitened and nuisance-free (float32) when ``white``.
    """
    U, V = d.n_units, Y.shape[1]
    hist = np.zeros((U, n_bins, 2), dtype=np.int64)
    top_u = np.empty((top_k, V), dtype=np.int32)
    top_v = np.empty((top_k, V), dtype=np.float32)
    pfull = np.empty((U, V)) if with_p else None
    # |t| >= z_floor needs b^2 (1 + z_floor^2 W) >= z_floor^2 var, where the Wald
    # share W is at most xa + max(xb, 0) per unit: a prefilter (with slack for rounding)
    # on the blocks of b * rscale
    rowscale = ((1 + z_floor**2 * np.maximum(d.xa + np.maximum(d.xb, 0), 0))
                * (1 + 1e-5) / z_floor**2 * d.binv**2).astype(np.float32)
    mask = np.empty((min(uc, U), min(vc, V)), dtype=bool)
    for v0 in range(0, V, vc):
        v1 = min(v0 + vc, V)
        Ew32 = Y[:, v0:v1] if white else d.voxels(Y, v0, v1).astype(np.float32)
        G = _voxel_side(d, gamma[:, v0:v1])
        top = TopK(top_k, v1 - v0)
        for u0 in range(0, U, uc):
            u1 = min(u0 + uc, U)
            b = d.Ar[:, u0:u1].T @ Ew32  # b * rscale
            var = d.P[u0:u1] @ G["var"]  # H0 variance of every pair
            m = mask[: u1 - u0, : v1 - v0]
            tmp = np.multiply(b, b)
            tmp *= rowscale[u0:u1, None]
            flat = np.flatnonzero(np.greater_equal(tmp, var, out=m))  # superset of |t| >= z_floor
            t, nu, rows = _pair_tests(d, G, b, var, u0, flat)
            z = np.abs(t_to_z(t, nu))
            keep = z >= z_floor
            bins = np.minimum(((z[keep] - z_floor) / z_res).astype(np.int64), n_bins - 1)
            hflat = (rows[keep] * n_bins + bins) * 2 + (t[keep] < 0)
            hist[u0:u1] += np.bincount(hflat, minlength=(u1 - u0) * n_bins * 2).reshape(u1 - u0, n_bins, 2)
            if with_p:
                tt, nn, _ = _pair_tests(d, G, b, var, u0, np.arange(b.size))
                pfull[u0:u1, v0:v1] = t_pvalues(tt, nn).reshape(b.shape)
            np.abs(b, out=tmp)
            top.update(b, tmp, u0, m)
        top_u[:, v0:v1] = top.units
        top_v[:, v0:v1] = top.values / ynorm[v0:v1]  # r_w
    return top_u, top_v, hist, pfull


def calibrated_unit_maps(X, Y, nuisance, runs=None, *, alpha=0.05, top_k=10, unit_chunk=4096,
                         voxel_chunk=4096, z_resolution=0.01, max_lag=None, return_p=False,
                         keep_bytes=0, n_jobs=None, verbose=0):
    """Unit x voxel maps with calibrated significance (see the module's docstring).

    Parameters
    ----------
    X : array-like (n_scans, n_units)
    Y : array-like (n_scans, n_voxels)
    nuisance : ndarray (n_scans, n_nuisance)
        Per-run constants, drifts, confounds.
    runs : array-like (n_scans,), optional
    alpha : float
        Benjamini-Hochberg level over all pairs.
    top_k, unit_chunk, voxel_chunk : int
    z_resolution : float
        Bin width of the |z| histograms.
    max_lag : int, optional
    return_p : bool
        Also return every pair's p-value (n_units, n_voxels): for tests.
    keep_bytes : int
        The whitened voxels (float32) are computed once and kept when they
        take at most this many bytes; otherwise each pass recomputes them
        (out of core). Results do not depend on it.
    n_jobs, verbose :
        Tasks over groups of voxel chunks; results do not depend on them.

    Returns
    -------
    dict
        ``top_units``, ``top_values`` (top_k, n_voxels) by ``|r_w|``;
        ``n_positive``, ``n_negative`` (n_units,); ``z_threshold``; ``phi``;
        ``max_lag``; ``p`` when ``return_p``.
    """
    X, Y = np.asarray(X), np.asarray(Y)
    n, U = X.shape
    V = Y.shape[1]
    keep = 4 * n * V <= keep_bytes
    d = _Design(X, Y, np.asarray(nuisance, dtype=np.float64), runs, max_lag, voxel_chunk, keep)
    white, d.white = d.white, None  # each task gets its own voxels
    z_floor = float(-special.ndtri(alpha / 2))
    z_cap = float(-special.ndtri(alpha / (2 * U * V))) + 1.0
    n_bins = int(np.ceil((z_cap - z_floor) / z_resolution)) + 1
    groups = chunk_groups(V, voxel_chunk, n_jobs)
    parts = map_tasks(_group_task,
                      ((d, (white if keep else Y)[:, g], keep, d.gamma[:, g], d.ynorm[g],
                        min(unit_chunk, U), voxel_chunk, top_k, z_floor, z_resolution, n_bins,
                        return_p) for g in groups),
                      n_jobs, verbose, "voxel groups", len(groups))
    top_u = np.empty((top_k, V), dtype=np.int32)
    top_v = np.empty((top_k, V), dtype=np.float32)
    hist = np.zeros((U, n_bins, 2), dtype=np.int64)
    pfull = np.empty((U, V)) if return_p else None
    for g, (tu, tv, h, p) in zip(groups, parts):
        top_u[:, g], top_v[:, g] = tu, tv
        hist += h
        if return_p:
            pfull[:, g] = p
    edges = z_floor + z_resolution * np.arange(n_bins)
    n_above = np.cumsum(hist.sum(axis=(0, 2))[::-1])[::-1]
    ok = (2 * special.ndtr(-edges) <= alpha * n_above / (U * V)) & (n_above > 0)
    if ok.any():
        i = int(np.argmax(ok))
        counts = hist[:, i:, :].sum(axis=1)
        thr = float(edges[i])
    else:
        counts = np.zeros((U, 2), dtype=np.int64)
        thr = np.inf
    out = {"top_units": top_u, "top_values": top_v, "n_positive": counts[:, 0],
           "n_negative": counts[:, 1], "z_threshold": thr, "phi": d.phi, "max_lag": d.L}
    if return_p:
        out["p"] = pfull
    return out
