"""Paired stimuli for fusion models and the fusion plant of the default study (finding 4)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nilearn_vlm._utils import zscore

#: The fusion model of the demo: METER's architecture (11 vision blocks, 12
#: text layers, 6 co-attention layers per stream, as released) at reduced
#: width and input size, with random weights (seeded) and a tokenizer trained
#: offline on the default study's captions (no download; see
#: :func:`fusion_model_params`).
DEFAULT_FUSION_MODEL = {
    "image_size": 64, "vision_width": 128, "vision_heads": 2, "vision_mlp_width": 512,
    "text_width": 128, "text_heads": 2, "text_intermediate": 512, "hidden_size": 128, "num_heads": 2,
    "fusion_intermediate": 512, "vocab_size": 600, "max_text_len": 32, "max_position_embeddings": 40,
    "missing_text": "", "missing_image": "black", "batch_size": 32, "seed": 0,
}

#: Harvard-Oxford regions (both hemispheres) of the STS/TPJ multimodal region
#: where the fusion plant goes (the region of the compare analysis's
#: VLM-vs-unimodal test).
STS_TPJ_REGIONS = ("Superior_Temporal_Gyrus_posterior_division", "Supramarginal_Gyrus_anterior_division",
                   "Supramarginal_Gyrus_posterior_division", "Angular_Gyrus")


def fusion_model_params(captions, params=None):
    """Model parameters of the demo's METER: :data:`DEFAULT_FUSION_MODEL` and an offline tokenizer.

    The tokenizer is RoBERTa's byte-level BPE layout with merges learnt from
    ``captions`` (``{"corpus": captions, "vocab_size": 600}``, see the METER
    plugin's ``corpus_tokenizer``): RoBERTa's own tokenizer cannot be fetched
    offline, and with random weights any fixed tokenizer serves.

    Examples
    --------
    >>> p = fusion_model_params(["A cat.", "A dog."])
    >>> p["tokenizer"]["corpus"], p["image_size"]
    (['A cat.', 'A dog.'], 64)
    """
    out = dict(DEFAULT_FUSION_MODEL, **(params or {}))
    out.setdefault("tokenizer", {"corpus": sorted(set(map(str, captions))), "vocab_size": int(out["vocab_size"])})
    return out


def pair_events(events):
    """Each stimulus paired with what else is on screen: the input of a paired (fusion) model.

    In the movie layout (:func:`~nilearn_vlm.datasets.make_movie_events`)
    frame rows have no text and subtitle rows no image. A paired model sees,
    for each row, the frame on screen at the row's onset and the subtitle on
    screen at that time: a frame row gets the subtitle shown at its onset, a
    subtitle row the frame shown at its onset. Where nothing of a modality is
    on screen the cell stays empty (the model's filler, e.g. METER's
    ``missing_text=""``, fills it).

    Parameters
    ----------
    events : pandas.DataFrame
        ``onset``, ``duration``, ``run``, ``image``, ``text``.

    Returns
    -------
    pandas.DataFrame
        A copy with ``image`` and ``text`` filled from the other rows.

    Examples
    --------
    >>> ev = pd.DataFrame({"onset": [0.0, 0.0, 2.0], "duration": [3.0, 2.0, 2.0], "run": 1,
    ...                    "image": ["F", None, None], "text": [None, "s1", "s2"]})
    >>> pair_events(ev)[["image", "text"]].values.tolist()
    [['F', 's1'], ['F', 's1'], ['F', 's2']]
    """
    out = events.copy()
    for column in ("image", "text"):
        filled = list(out[column])
        for _, rows in out.groupby("run", sort=False):
            has = rows[column].map(lambda v: v is not None and not (isinstance(v, float) and np.isnan(v)))
            shown = rows[has.to_numpy()]
            on, off = shown["onset"].to_numpy(float), (shown["onset"] + shown["duration"]).to_numpy(float)
            for pos, (idx, t) in enumerate(zip(rows.index, rows["onset"].to_numpy(float))):
                if has.iloc[pos]:
                    continue
                hit = np.flatnonzero((on <= t) & (t < off))
                if hit.size:
                    filled[out.index.get_loc(idx)] = shown[column].iloc[hit[-1]]
        out[column] = pd.Series(filled, index=out.index, dtype=object)
    return out


def _principal_scores(X, k):
    """Orthonormal basis (n, k) of the first ``k`` principal components of the z-scored columns of ``X``."""
    Z = zscore(np.asarray(X, dtype=np.float64))
    Z = np.nan_to_num(Z)
    u, s, _ = np.linalg.svd(Z - Z.mean(0), full_matrices=False)
    return u[:, :k]


def fusion_drivers(X, units, n_components=16, exclude=None):
    """The interaction and one-modality drivers of the fusion plant, from a fusion model's units.

    The compare analysis tests a VLM against a unimodal baseline by
    held-out prediction from each model's first ``n_components`` principal
    components. With ``F`` the span of the components of all the fusion
    model's units and ``E`` that of its encoders' units (streams ``vision``
    and ``text``: its unimodal baseline):

    - **interaction driver**: the direction of ``F`` least correlated with
      ``E`` (smallest canonical correlation): what the co-attention layers
      compute from image and text together that no linear read-out of the
      unimodal encoders gives;
    - **one-modality driver**: the direction of the components of the
      ``vision`` encoder units most correlated with ``F`` (largest canonical
      correlation): an image-only signal both models carry.

    Parameters
    ----------
    X : ndarray (n_scans, n_units)
        The fusion model's units on the TR grid.
    units : units table
        With a ``stream`` column.
    n_components : int, default=16
    exclude : ndarray (n_scans, k), optional
        Signals the drivers must not correlate with (the study's other
        drivers): projected out of ``F``, ``E`` and the vision components
        first, so that each plant drives its own voxels only.

    Returns
    -------
    signals : ndarray (n_scans, 2)
        z-scored interaction and one-modality drivers.
    info : dict
        ``r2_interaction_baseline`` (R^2 of the interaction driver on ``E``:
        its squared canonical correlation), ``r2_onemodality_model`` and
        ``r2_onemodality_baseline``.
    """
    streams = np.asarray(units["stream"])
    enc = np.isin(streams, ("vision", "text"))
    if enc.all() or not enc.any():
        raise ValueError("fusion_drivers needs a fusion model: units of encoder streams (vision, text) and of "
                         f"fusion streams; got streams {sorted(set(streams))}")
    F = _principal_scores(X, n_components)
    E = _principal_scores(X[:, enc], n_components)
    V = _principal_scores(X[:, streams == "vision"], n_components)
    if exclude is not None:
        S = np.asarray(exclude, dtype=np.float64).reshape(X.shape[0], -1)
        S = np.linalg.qr(np.column_stack([np.ones(X.shape[0]), S]))[0]

        def off(B):  # an orthonormal basis of B's span with S projected out
            return np.linalg.svd(B - S @ (S.T @ B), full_matrices=False)[0]

        F, E, V = off(F), off(E), off(V)
    a, s, _ = np.linalg.svd(F.T @ E)
    interaction = zscore(F @ a[:, -1])
    b, s_v, _ = np.linalg.svd(V.T @ F)
    one = zscore(V @ b[:, 0])

    def r2(x, basis):
        return float(np.sum((basis.T @ (x - x.mean())) ** 2) / np.sum((x - x.mean()) ** 2))

    info = {"r2_interaction_baseline": r2(interaction, E), "r2_interaction_model": r2(interaction, F),
            "r2_onemodality_model": r2(one, F), "r2_onemodality_baseline": r2(one, E)}
    return np.column_stack([interaction, one]), info


def fusion_voxels(mask_img, network_of_voxel, seed=0):
    """Voxels of the fusion plant: the STS/TPJ region outside the study's networks, split by hemisphere.

    Returns
    -------
    interaction, one_modality : ndarray of bool (n_voxels,)
        Left-hemisphere (x < 0) and right-hemisphere voxels of the
        Harvard-Oxford STS/TPJ regions (:data:`STS_TPJ_REGIONS`) that no
        study network claims.
    """
    from nilearn.image import coord_transform

    from nilearn_vlm.plugins import get_atlas

    labels = get_atlas("harvard_oxford").load(mask_img)
    wanted = {f"{side}_{r}" for side in ("Left", "Right") for r in STS_TPJ_REGIONS}
    ids = labels.lookup.loc[labels.lookup["name"].isin(wanted), "index"].to_numpy()
    roi = np.isin(labels.labels, ids) & (np.asarray(network_of_voxel) == "")
    ijk = np.argwhere(np.asarray(mask_img.dataobj) > 0)
    x = coord_transform(ijk[:, 0], ijk[:, 1], ijk[:, 2], mask_img.affine)[0]
    if x.size != roi.size:
        raise ValueError(f"the mask has {x.size} voxels but the atlas gives {roi.size}")
    return roi & (x < 0), roi & (x > 0)
