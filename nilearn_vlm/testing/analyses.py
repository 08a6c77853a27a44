"""Simulated subjects with known answers for the analyses (polarity, redundancy, compare).

Small NumPy generators at the default study's design (4 runs of 80 scans,
TR 2 s, voxel variance SNR 0.25, AR(1) voxel noise with phi 0.4,
HRF-smooth regressors). They calibrate the analyses' statistics on nulls and
measure their power on planted effects, in the test suite (small counts) and
in ``benchmarks/analyses.py`` (the full counts).

Maps come from a univariate GLM per regressor prewhitened with the true
AR(1) coefficient (the calibrated maps are assumed, not re-derived), with
per-run intercepts; each map is thresholded per map (BH-FDR 0.05 and
Bonferroni 0.05), with and without each run (leave-one-run-out).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import signal, stats

#: The default study's design.
DESIGN = dict(n_runs=4, n_scans=80, t_r=2.0, snr=0.25, phi=0.4)


@lru_cache(maxsize=4)
def _hrf(t_r):
    from nilearn.glm.first_level import glover_hrf

    h = glover_hrf(t_r, oversampling=1, time_length=32.0)
    return h / np.linalg.norm(h)


def run_labels(n_runs=DESIGN["n_runs"], n_scans=DESIGN["n_scans"]):
    """Run (1, 2, ...) of each scan."""
    return np.repeat(np.arange(1, n_runs + 1), n_scans)


def _convolve(x, runs, t_r):
    h = _hrf(t_r)
    out = np.empty_like(x)
    for r in np.unique(runs):
        idx = runs == r
        out[idx] = signal.lfilter(h, [1.0], x[idx], axis=0)
    return (out - out.mean(0)) / out.std(0)


def hrf_sources(n, runs, rng, t_r=DESIGN["t_r"]):
    """``n`` HRF-smooth, z-scored time courses (white noise per TR convolved within runs)."""
    return _convolve(rng.standard_normal((runs.size, n)), runs, t_r)


def ar1_noise(n_cols, runs, phi, rng):
    """Unit-variance stationary AR(1) noise (float32), restarted at each run."""
    e = rng.standard_normal((runs.size, n_cols)).astype(np.float32)
    for r in np.unique(runs):
        idx = np.flatnonzero(runs == r)
        x = e[idx]
        x[1:] *= np.sqrt(1 - phi**2)
        e[idx] = signal.lfilter([1.0], [1.0, -phi], x, axis=0)
    return e


def _whiten(A, phi, runs):
    out = np.empty(A.shape, dtype=np.float64)
    for r in np.unique(runs):
        idx = np.flatnonzero(runs == r)
        a = np.asarray(A[idx], dtype=np.float64)
        out[idx[0]] = a[0] * np.sqrt(1 - phi**2)
        out[idx[1:]] = a[1:] - phi * a[:-1]
    return out


def glm_maps(X, Y, runs, phi):
    """Univariate AR(1)-prewhitened GLM t-maps of every regressor, on all runs and leaving each run out.

    Returns
    -------
    t : ndarray (n_regressors, n_voxels)
    dof : int
    jack_t : ndarray (n_runs, n_regressors, n_voxels)
    jack_dof : int
    """
    Xw, Yw = _whiten(X, phi, runs), _whiten(Y, phi, runs)
    labels = np.unique(runs)
    sxx, sxy, syy, n = [], [], [], []
    for r in labels:
        idx = runs == r
        x, y = Xw[idx] - Xw[idx].mean(0), Yw[idx] - Yw[idx].mean(0)
        sxx.append((x * x).sum(0))
        sxy.append(x.T @ y)
        syy.append((y * y).sum(0))
        n.append(idx.sum())
    sxx, sxy, syy, n = map(np.asarray, (sxx, sxy, syy, n))

    def t_of(keep):
        dof = int(n[keep].sum() - keep.sum() - 1)
        rr = sxy[keep].sum(0) / np.sqrt(sxx[keep].sum(0)[:, None] * syy[keep].sum(0)[None, :])
        rr = np.clip(rr, -0.999999, 0.999999)
        return rr * np.sqrt(dof / (1 - rr * rr)), dof

    t, dof = t_of(np.ones(labels.size, bool))
    jack = [t_of(labels != r) for r in labels]
    return t, dof, np.stack([j[0] for j in jack]), jack[0][1]


def sign_sets(t, dof, alpha=0.05, method="fdr"):
    """+1 / -1 where significant (two-sided) per map (last axis = voxels): BH-FDR or Bonferroni."""
    t = np.asarray(t)
    m = t.shape[-1]
    if method == "bonferroni":
        return (np.sign(t) * (np.abs(t) >= stats.t.isf(alpha / 2 / m, dof))).astype(np.int8)
    if method != "fdr":
        raise ValueError(f"method must be 'fdr' or 'bonferroni', got {method!r}")
    # BH on |t|: the k largest are rejected for the largest k with |t|_(k) >= t_crit(alpha k / m)
    crit = _bh_crit(int(dof), m, alpha)
    a = -np.sort(-np.abs(t), axis=-1)
    ok = a >= crit
    kmax = np.where(ok.any(-1), m - np.argmax(ok[..., ::-1], axis=-1), 0)
    thr = np.where(kmax > 0, np.take_along_axis(a, np.maximum(kmax - 1, 0)[..., None], -1)[..., 0], np.inf)
    return (np.sign(t) * (np.abs(t) >= thr[..., None])).astype(np.int8)


@lru_cache(maxsize=32)
def _bh_crit(dof, m, alpha):
    return stats.t.isf(alpha * np.arange(1, m + 1) / (2 * m), dof)


def units_table_of(streams, units_per_layer=4, offsets=None, kind="attn_out"):
    """Units table (``name, stream, layer, depth, kind, index, site``) of streams with given layer counts.

    ``offsets``: layers before a stream on the forward path (fusion layers
    after the encoders); depth ``(offset + layer + 1) / (offset + n_layers)``.
    """
    from nilearn_vlm.units import site_name, unit_name

    offsets = offsets or {}
    rows = []
    for stream, n_layers in streams.items():
        off = offsets.get(stream, 0)
        for layer in range(n_layers):
            for i in range(units_per_layer):
                rows.append({"name": unit_name(stream, layer, kind, i), "stream": stream, "layer": layer,
                             "depth": (off + layer + 1) / (off + n_layers), "kind": kind, "index": i,
                             "site": site_name(stream, layer, kind)})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------- polarity
#: Network sizes (voxels) of the polarity subjects: the Seitzman-2018 networks on the 4 mm mask.
POLARITY_NETWORKS = {"auditory": 101, "cingulo-opercular": 188, "default mode": 487, "attention": 192,
                     "frontoparietal": 274, "salience": 70, "somatomotor": 383, "vision": 279}


def polarity_drivers(design, rng, streams):
    """Drivers ``(stream, layer, depth, sign)`` of a polarity design.

    ``random``: each layer has one driver with probability 0.5, sign +/- at
    50%. ``bias_totals``: a layer of depth d has round(3 d) drivers (0 to 3),
    each positive with probability 0.75. ``trend``: 1 or 2 drivers per layer,
    positive with probability 1 - d (planted). ``trend_totals``: the totals of
    ``bias_totals`` with the signs of ``trend``. ``default``: the default
    study's four driver layers with random signs.
    """
    rows = []
    if design == "default":
        for stream, layer in (("vision", 2), ("vision", 9), ("text", 4), ("text", 10)):
            rows.append((stream, layer, (layer + 1) / streams[stream], int(rng.choice((-1, 1)))))
        return rows
    for stream, n_layers in streams.items():
        for layer in range(n_layers):
            d = (layer + 1) / n_layers
            if design == "random":
                k, p_pos = int(rng.random() < 0.5), 0.5
            elif design == "bias_totals":
                k, p_pos = int(round(3 * d)), 0.75
            elif design == "trend":
                k, p_pos = 1 + int(rng.random() < 0.5), 1 - d
            elif design == "trend_totals":
                k, p_pos = int(round(3 * d)), 1 - d
            else:
                raise ValueError(f"unknown polarity design {design!r}")
            rows += [(stream, layer, d, 1 if rng.random() < p_pos else -1) for _ in range(k)]
    return rows


def polarity_subject(design, rng, streams=None, n_atoms=64, n_outside=2000, networks=None, coverage=(0.5, 1.0),
                     design_kw=None, scale=1.0, with_atlas=True):
    """A simulated subject for the polarity analysis, as a :class:`~nilearn_vlm.results.Results`.

    Each driver is an atom whose time course drives a random part (a
    fraction ``coverage``) of a random network with its sign; the other atoms
    are noise atoms spread over the layers (``scale`` shrinks the networks
    and the outside voxels, for fast tests). Each atom loads on 3 units of
    its layer (positive loadings), so its dominant layer is its layer.

    Returns
    -------
    results : Results
        ``glm_sign_sets`` (FDR), ``glm_sign_sets_fwe`` (Bonferroni),
        ``glm_sign_sets_loro``, ``units``, ``atom_loadings``, network labels
        (atlas ``"sim"``, left out with ``with_atlas=False``: whole brain
        only).
    truth : dict
        ``atoms`` (stream, layer, depth, sign per atom; sign 0 for noise),
        ``true_sets`` (n_atoms, n_voxels).
    """
    from nilearn_vlm.networks import AtlasLabels
    from nilearn_vlm.networks._base import make_lookup
    from nilearn_vlm.results import Results

    d = dict(DESIGN, **(design_kw or {}))
    streams = streams or {"vision": 12, "text": 12}
    networks = {k: max(12, int(round(v * scale))) for k, v in (networks or POLARITY_NETWORKS).items()}
    n_outside = int(round(n_outside * scale))
    drivers = polarity_drivers(design, rng, streams)
    if len(drivers) > n_atoms:
        raise ValueError(f"{len(drivers)} drivers but {n_atoms} atoms")
    layers = [(s, l, (l + 1) / n) for s, n in streams.items() for l in range(n)]
    noise = [layers[i] for i in rng.integers(len(layers), size=n_atoms - len(drivers))]
    atoms = pd.DataFrame(list(drivers) + [(s, l, dp, 0) for s, l, dp in noise],
                         columns=["stream", "layer", "depth", "sign"])
    names = list(networks)
    labels = np.concatenate([np.full(n, j + 1) for j, n in enumerate(networks.values())] + [np.zeros(n_outside)])
    n_vox = labels.size
    runs = run_labels(d["n_runs"], d["n_scans"])
    A = hrf_sources(n_atoms, runs, rng, d["t_r"])
    Y = ar1_noise(n_vox, runs, d["phi"], rng)
    true = np.zeros((n_atoms, n_vox), np.int8)
    amp = np.float32(np.sqrt(d["snr"]))
    for k in range(len(drivers)):
        vox = np.flatnonzero(labels == rng.integers(1, len(names) + 1))
        frac = rng.uniform(*coverage)
        start = rng.integers(0, max(1, int(len(vox) * (1 - frac)) + 1))
        vox = vox[start:start + max(1, int(round(frac * len(vox))))]
        true[k, vox] = atoms.loc[k, "sign"]
        Y[:, vox] += atoms.loc[k, "sign"] * amp * A[:, [k]].astype(np.float32)
    t, dof, jack_t, jack_dof = glm_maps(A, Y, runs, d["phi"])
    units = units_table_of(streams, 4)
    load = np.zeros((n_atoms, len(units)))
    u_stream, u_layer = units["stream"].to_numpy(), units["layer"].to_numpy()
    for k, (stream, layer) in enumerate(zip(atoms["stream"], atoms["layer"])):
        cand = np.flatnonzero((u_stream == stream) & (u_layer == layer))
        load[k, rng.choice(cand, 3, replace=False)] = rng.uniform(0.5, 1.5, 3)
    atlas = AtlasLabels("sim", "array", labels.astype(np.int32), make_lookup(np.arange(1, len(names) + 1), names))
    res = Results("sim", units=units, atom_loadings=load, glm_t=t.astype(np.float32),
                  glm_sign_sets=sign_sets(t, dof), glm_sign_sets_fwe=sign_sets(t, dof, method="bonferroni"),
                  glm_sign_sets_loro=sign_sets(jack_t, jack_dof, method="bonferroni"),
                  network_labels={"sim": atlas} if with_atlas else {}, runs=runs, provenance={"simulated": design})
    return res, {"atoms": atoms, "true_sets": true}


# ----------------------------------------------------------------------------------------- redundancy
def ball_mask(radius=8, shape=None):
    """A 3-D boolean ball of ``radius`` voxels (a small brain-like volume mask)."""
    size = 2 * radius + 3 if shape is None else shape
    grid = np.indices((size, size, size)) - (size - 1) / 2
    return (grid**2).sum(0) <= radius**2


def grown_region(mask, size, rng, n_seeds=1, within=None):
    """A compact random region of ``size`` mask voxels, grown from random seeds (Eden growth).

    A generator of independent maps that is not a thresholded Gaussian field,
    so that a field-based surrogate is not trivially right.

    Returns
    -------
    ndarray of bool (n_mask_voxels,)
    """
    from nilearn_vlm.analyses._surrogates import _grid_adjacency

    ijk = np.argwhere(mask)
    adj = _grid_adjacency(ijk, mask.shape)
    n = len(ijk)
    allowed = np.ones(n, bool) if within is None else np.asarray(within, bool)
    inside = np.zeros(n, bool)
    inside[rng.choice(np.flatnonzero(allowed), n_seeds, replace=False)] = True
    while inside.sum() < size:
        f = np.flatnonzero((adj @ inside.astype(np.float32) > 0) & ~inside & allowed)
        if f.size == 0:
            break
        inside[rng.choice(f, max(1, min(f.size // 10 + 1, size - int(inside.sum()))), replace=False)] = True
    return inside


def redundancy_maps(design, rng, mask, membership, n_maps=6, sizes=(30, 300), target=0, n_plant=3):
    """Significant-voxel maps for the redundancy analysis (map level, no time series).

    ``independent``: ``n_maps`` independently placed compact regions (null).
    ``overlap``: ``n_plant`` maps covering 70-100% of network ``target``
    each, plus independent regions (planted co-occurrence).

    Returns
    -------
    ndarray of int8 (n_maps, n_mask_voxels)
    """
    out = []
    if design == "overlap":
        vox = np.flatnonzero(membership[target])
        for _ in range(n_plant):
            m = np.zeros(membership.shape[1], bool)
            m[vox[rng.random(vox.size) < rng.uniform(0.7, 1.0)]] = True
            out.append(m)
    elif design != "independent":
        raise ValueError(f"unknown redundancy design {design!r}")
    while len(out) < n_maps:
        out.append(grown_region(mask, int(rng.integers(*sizes)), rng, n_seeds=int(rng.integers(1, 3))))
    return np.stack(out).astype(np.int8)


# ----------------------------------------------------------------------------------------- compare
def stimulus_sources(rng, runs, n_img=4, n_txt=4, n_int=4, t_r=DESIGN["t_r"]):
    """Image, text and image x text interaction sources on the TR grid (HRF-smooth, z-scored).

    An interaction source is the product of one image and one text feature
    before the HRF.
    """
    e = rng.standard_normal((runs.size, n_img))
    f = rng.standard_normal((runs.size, n_txt))
    g = np.column_stack([e[:, i % n_img] * f[:, (i * 3 + 1) % n_txt] for i in range(n_int)])
    return {k: _convolve(x, runs, t_r) for k, x in (("img", e), ("txt", f), ("int", g))}


def model_units(kind, src, rng, units_per_layer=16, noise=0.7, cross_other=0.8, cross_int=0.6):
    """Unit time courses and units table of a synthetic model drawn at random.

    ``towers`` (CLIP-like): ``vision`` (12 layers) from image sources only,
    ``text`` (12 layers) from text sources. ``fused`` (METER-like): the same
    encoders plus 6 co-attention layers per stream (``cross_image``,
    ``cross_text``, after the encoders) mixing both modalities and image x
    text interactions. ``fused_additive``: ``fused`` without interactions.
    ``unimodal``: a ViT-like ``vision`` and a RoBERTa-like ``text`` encoder
    (the same as ``towers``). Two draws of one kind are two independent
    models of one architecture.

    Returns
    -------
    units : pandas.DataFrame
    U : ndarray (n_scans, n_units)
    """
    streams, offsets = {"vision": 12, "text": 12}, {}
    if kind in ("fused", "fused_additive"):
        streams.update(cross_image=6, cross_text=6)
        offsets = {"cross_image": 12, "cross_text": 12}
    elif kind not in ("towers", "unimodal"):
        raise ValueError(f"unknown model kind {kind!r}")
    units = units_table_of(streams, units_per_layer, offsets)
    cols = []
    for stream in units["stream"]:
        w_img, w_txt = rng.standard_normal(src["img"].shape[1]), rng.standard_normal(src["txt"].shape[1])
        if stream == "vision":
            x = src["img"] @ w_img
        elif stream == "text":
            x = src["txt"] @ w_txt
        else:
            own, other = (src["img"] @ w_img, src["txt"] @ w_txt)[::1 if stream == "cross_image" else -1]
            x = own + cross_other * other
            if kind == "fused":
                x = x + cross_int * (src["int"] @ rng.standard_normal(src["int"].shape[1]))
        cols.append(x / x.std() + noise * rng.standard_normal(x.size))
    return units, np.column_stack(cols)


def compare_bold(src, rng, runs, n_vision=150, n_language=150, n_roi=150, n_driven=60, interaction=True,
                 phi=DESIGN["phi"], snr=DESIGN["snr"]):
    """BOLD of vision, language and multimodal-region voxels.

    Vision voxels follow image sources, language voxels text sources;
    ``n_driven`` of the ROI voxels follow image x text interactions
    (``interaction``) or image and text additively; the other ROI voxels are
    noise. Each driven voxel mixes its sources with random weights at
    variance SNR ``snr``, over AR(1) noise.

    Returns
    -------
    dict
        ``Y`` (n_scans, n_voxels) float32 and boolean masks ``vision``,
        ``language``, ``roi``, ``roi_driven``.
    """
    n = n_vision + n_language + n_roi
    Y = ar1_noise(n, runs, phi, rng)
    idx = np.arange(n)
    masks = {"vision": idx < n_vision, "language": (idx >= n_vision) & (idx < n_vision + n_language),
             "roi": idx >= n_vision + n_language}
    masks["roi_driven"] = masks["roi"] & (idx < n_vision + n_language + n_driven)

    def drive(mask, S):
        sig = S @ rng.standard_normal((S.shape[1], int(mask.sum())))
        Y[:, mask] += (np.sqrt(snr) * sig / sig.std(0)).astype(np.float32)

    drive(masks["vision"], src["img"])
    drive(masks["language"], src["txt"])
    drive(masks["roi_driven"], src["int"] if interaction else np.hstack([src["img"], src["txt"]]))
    return {"Y": Y, **masks}


def model_results(name, units, U, Y, runs, n_components=16, block_length=20, layer_jackknife=True, labels=None,
                  layer_sse=True):
    """A :class:`~nilearn_vlm.results.Results` of a simulated model with the comparison inputs.

    Block sums of held-out predictions per stream and for all units, the
    delete-one-layer within-run r per stream and the delete-one-layer
    squared error of all units (``stream_layer_sse["all"]``), as the
    pipeline's :func:`~nilearn_vlm.pipeline.analysis_inputs` computes them
    (without the GLM parts). ``layer_jackknife``: True (every stream), False
    (none) or the streams to jackknife (the comparison reads only its stream
    pair's: the benchmark skips the others, a third of its time).
    ``layer_sse``: compute ``stream_layer_sse["all"]`` (the VLM-vs-unimodal
    test's). ``labels`` (int per voxel: 1 vision, 2 language, 0 other) adds
    the networks (atlas ``"sim"``).
    """
    from nilearn_vlm.networks import AtlasLabels
    from nilearn_vlm.networks._base import make_lookup

    from nilearn_vlm.analyses import (
        bold_block_sums,
        heldout_predictions,
        layer_deleted_sse,
        layer_groups,
        prediction_block_sums,
        time_blocks,
        within_run_r,
    )
    from nilearn_vlm.results import Results

    blocks, block_runs = time_blocks(runs, block_length)
    bold = bold_block_sums(Y, runs, blocks)
    sums, layer_r = {}, {}
    streams, layers = units["stream"].to_numpy(), units["layer"].to_numpy()
    for stream in [*pd.unique(streams), "all"]:
        cols = np.ones(len(units), bool) if stream == "all" else streams == stream
        sums[str(stream)] = prediction_block_sums(heldout_predictions(U[:, cols], Y, runs, n_components), Y, runs,
                                                  blocks)
        jackknifed = layer_jackknife is True or (layer_jackknife is not False and stream in layer_jackknife)
        if stream != "all" and jackknifed:
            layer_r[str(stream)] = np.vstack([
                within_run_r(prediction_block_sums(heldout_predictions(U[:, cols & (layers != lay)], Y, runs,
                                                                       n_components), Y, runs, blocks),
                             bold, block_runs)
                for lay in pd.unique(layers[cols])])
    sse = {"all": layer_deleted_sse(U, Y, runs, layer_groups(units)[0], n_components)} if layer_sse else {}
    nets = {} if labels is None else {"sim": AtlasLabels("sim", "array", np.asarray(labels, np.int32),
                                                         make_lookup([1, 2], ["Visual", "Language"]))}
    return Results(name, units=units, runs=runs, block_runs=block_runs, bold_block_sums=bold, stream_block_sums=sums,
                   stream_layer_r=layer_r, stream_layer_sse=sse, network_labels=nets, provenance={"simulated": name})
