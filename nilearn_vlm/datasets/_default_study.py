"""The embedded default study: a simulated subject made from real, offline material."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from nilearn_vlm.datasets._fusion import fusion_drivers, fusion_model_params, fusion_voxels, pair_events
from nilearn_vlm.datasets._images import load_captioned_images
from nilearn_vlm.datasets._simulate import (
    DEFAULT_DRIVERS,
    choose_driver_units,
    choose_key_neuron_drivers,
    plant_bold,
    truth_table,
)

#: Model of the default study: CLIP's ViT-B/32 architecture (12 vision and 12
#: text layers) at reduced width (128) and input size (64 px, 16 px patches),
#: built with random weights (no pretrained weights can be downloaded here;
#: see the docstring).
DEFAULT_MODEL = {"arch": "ViT-B-32", "pretrained": None, "seed": 0,
                 "model_cfg": {"vision_cfg": {"image_size": 64, "width": 128, "patch_size": 16},
                               "text_cfg": {"width": 128, "heads": 2}}}

#: Networks the default study plants effects in, from the atlas plugins.
STUDY_NETWORKS = ("vision", "language", "attention", "default mode")


def _augment(image, rng, size=224):
    """A random crop (70-100% of each side) and flip, resized: one movie frame."""
    from PIL import Image

    h, w = image.shape[:2]
    fh, fw = rng.uniform(0.7, 1.0, 2)
    ch, cw = max(8, int(h * fh)), max(8, int(w * fw))
    y0, x0 = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    crop = image[y0 : y0 + ch, x0 : x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((size, size), Image.BICUBIC))


def make_movie_events(n_runs=4, passes_per_run=2, event_duration=3.0, subtitle_duration=2.0,
                      rest=10.0, seed=0):
    """Real captioned images arranged as a movie with subtitles, in runs.

    Frames: each run shows every image :func:`load_captioned_images` gives
    ``passes_per_run`` times in a new random order, each time as a different
    random crop, for ``event_duration`` seconds. Subtitles: the images'
    documented descriptions, in their own random order, each shown for
    ``subtitle_duration`` seconds, so that the text stream is not locked to
    the frames (as subtitles are not locked to shots). Frame rows have no text
    and subtitle rows no image: a CLIP-like model computes vision units for
    frames and text units for subtitles. Each run ends with ``rest`` seconds
    without stimulus.

    Returns
    -------
    events : pandas.DataFrame
        Columns ``onset``, ``duration``, ``image`` (uint8 RGB arrays or None),
        ``text`` (str or None), ``run``, ``name`` (the image the row shows or
        describes), ``kind`` (``"frame"`` or ``"subtitle"``).
    run_durations : dict
        ``{run: seconds}``.
    """
    rng = np.random.default_rng(seed)
    text_rng = np.random.default_rng(seed + 1000)
    images = load_captioned_images()
    rows, durations = [], {}
    for run in range(1, n_runs + 1):
        t = 0.0
        for _ in range(passes_per_run):
            for k in rng.permutation(len(images)):
                im = images[k]
                rows.append({
                    "onset": t, "duration": float(event_duration), "image": _augment(im["image"], rng),
                    "text": None, "run": run, "name": im["name"], "kind": "frame",
                })
                t += event_duration
        durations[run] = t + rest
        s = 0.0
        while s + subtitle_duration <= t:
            for k in text_rng.permutation(len(images)):
                if s + subtitle_duration > t:
                    break
                rows.append({
                    "onset": s, "duration": float(subtitle_duration), "image": None,
                    "text": images[k]["text"], "run": run, "name": images[k]["name"], "kind": "subtitle",
                })
                s += subtitle_duration
    events = pd.DataFrame(rows).sort_values(["run", "onset", "kind"], kind="stable").reset_index(drop=True)
    return events, durations


def run_image(data, affine, t_r):
    """A 4D NIfTI run whose header records its repetition time (``pixdim[4]`` in seconds).

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.spaces import header_t_r
    >>> header_t_r(run_image(np.zeros((2, 2, 2, 5), np.float32), np.eye(4), 2.0))
    (2.0, 'pixdim[4] = 2 sec')
    """
    import nibabel as nib

    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_zooms(img.header.get_zooms()[:3] + (float(t_r),))
    return img


def network_of_voxels(mask_img, networks=STUDY_NETWORKS):
    """Canonical network of each voxel of ``mask_img`` from the atlas plugins.

    Vision, attention and default mode come from ``seitzman2018``, language
    from ``language_mni`` (which wins where both label a voxel).

    Returns
    -------
    numpy.ndarray of str, shape (n_voxels,)
        ``""`` outside the networks.
    """
    from nilearn_vlm.plugins import get_atlas
    from nilearn_vlm.networks import voxel_networks

    labels = [get_atlas(name).load(mask_img) for name in ("seitzman2018", "language_mni")]
    return voxel_networks(labels, networks=networks)


def make_default_study(
    n_runs=4,
    t_r=2.0,
    snr=0.25,
    ar_phi=0.4,
    drivers=DEFAULT_DRIVERS,
    n_driver_units=4,
    driver_choice="key neurons",
    model="clip",
    model_params=None,
    sites="default",
    pooling="mean",
    resolution=4,
    memory=None,
    seed=0,
    verbose=0,
    fusion_model=None,
    fusion_params=None,
):
    """Simulate one subject watching a movie of real captioned images.

    Stimuli are real images with their real descriptions (scikit-image's data
    images, scikit-learn's and matplotlib's sample images; see
    :func:`make_movie_events`), in ``n_runs`` runs on a TR grid. The brain is
    nilearn's bundled MNI152 mask at ``resolution`` mm; networks come from the
    atlas plugins (:func:`network_of_voxels`). Units come from ``model`` run
    through :class:`nilearn_vlm.NeuronActivations`: by default **CLIP's
    ViT-B/32 architecture at reduced width (128) and input size (64 px) with
    random weights** (seeded, :data:`DEFAULT_MODEL`), since no pretrained
    weights can be fetched offline; the simulation only needs a deterministic
    network with CLIP's depth and sites.

    The planted truth: for each :class:`~nilearn_vlm.datasets.Driver`, a few
    units (at most ``n_driver_units``) drive every voxel of its network with
    its sign: their mean time course on the TR grid (after the canonical
    Glover HRF), z-scored. With ``driver_choice="key neurons"`` (default)
    they are key-neuron-shaped: the stable key neurons of one atom of the
    units, in the driver's site or the nearest layer of its stream that has
    any (:func:`~nilearn_vlm.datasets.choose_key_neuron_drivers`, on the
    units alone); ``truth`` records the units and the site actually used.
    With ``"site component"`` they are the units of the driver's site that
    load most on its first principal component
    (:func:`~nilearn_vlm.datasets.choose_driver_units`): in a random-weight
    model those units share their time course with most of the site, so no
    unit of them is a stable key neuron. Every voxel also gets unit-variance
    AR(1) noise (coefficient ``ar_phi``). ``snr`` is the variance of the
    planted signal over that of the noise in a driven voxel (0.25: a driven
    voxel's BOLD correlates about 0.45 with its driver).

    Parameters
    ----------
    n_runs : int, default=4
    t_r : float, default=2.0
    snr : float, default=0.25
    ar_phi : float, default=0.4
    drivers : sequence of Driver, default=DEFAULT_DRIVERS
    n_driver_units : int, default=4
    driver_choice : {"key neurons", "site component"}, default="key neurons"
        How the driving units are chosen (see above).
    model : str, default="clip"
        Adapter plugin.
    model_params : dict, optional
        Defaults to :data:`DEFAULT_MODEL`.
    sites, pooling :
        Passed to :class:`nilearn_vlm.NeuronActivations`.
    resolution : int, default=4
        Resolution of the MNI152 mask (mm).
    fusion_model : str, optional
        A paired (fusion) adapter plugin, e.g. ``"meter"`` (the demo's):
        adds the fusion plant. The model sees the paired stimuli
        (:func:`~nilearn_vlm.datasets.pair_events`: each frame with the
        subtitle on screen at that time); the left STS/TPJ voxels outside
        the study networks follow its **interaction driver** (what its
        co-attention layers add to its unimodal encoders), the right ones its
        **one-modality driver** (an image signal its encoders carry), each
        at variance SNR ``snr`` (:func:`~nilearn_vlm.datasets.fusion_drivers`,
        :func:`~nilearn_vlm.datasets.fusion_voxels`).
    fusion_params : dict, optional
        Its model parameters; default
        :func:`~nilearn_vlm.datasets.fusion_model_params` of the captions
        (METER at reduced width, random weights, an offline tokenizer).
    memory : str, optional
        Activation cache folder.
    seed : int, default=0
    verbose : int, default=0

    Returns
    -------
    sklearn.utils.Bunch
        ``events`` (DataFrame), ``bold`` (list of 4D NIfTI, one per run, their
        headers recording ``t_r``),
        ``mask`` (NIfTI), ``t_r``, ``n_scans`` (per run), ``networks`` (per-voxel
        canonical network), ``truth`` (DataFrame, one row per driver),
        ``driver_signals`` (n_scans, n_drivers), ``unit_names``, ``units``
        (event-level activations), ``model``, ``model_params``, ``sites``,
        ``pooling``, ``settings`` and ``description``; with
        ``fusion_model``: ``fusion`` (a Bunch: ``model``, ``params``,
        ``events`` (paired), ``interaction`` and ``one_modality`` (voxel
        masks), ``signals``, ``info``).
    """
    import nibabel as nib
    from nilearn.datasets import load_mni152_brain_mask
    from nilearn.masking import unmask

    from nilearn_vlm.extraction import NeuronActivations
    from nilearn_vlm.timeseries import TRAligner

    if driver_choice not in ("key neurons", "site component"):
        raise ValueError(f"driver_choice={driver_choice!r}; use 'key neurons' or 'site component'")
    model_params = dict(DEFAULT_MODEL if model_params is None else model_params)
    events, durations = make_movie_events(n_runs=n_runs, seed=seed)
    n_scans = {run: int(np.ceil(d / t_r)) for run, d in durations.items()}
    extractor = NeuronActivations(
        model=model, model_params=model_params, sites=sites, pooling=pooling, memory=memory,
        verbose=verbose,
    )
    units = extractor.fit_transform(events[["image", "text"]])
    unit_names = np.asarray(extractor.get_feature_names_out(), dtype=str)
    aligner = TRAligner(events=events[["onset", "duration", "run"]], n_scans=n_scans, t_r=t_r)
    X = aligner.fit_transform(units)
    runs = aligner.run_labels_

    mask = load_mni152_brain_mask(resolution=resolution)
    mask = nib.Nifti1Image(np.asarray(mask.dataobj).astype(np.int8), mask.affine)
    networks = network_of_voxels(mask)
    if driver_choice == "key neurons":
        driver_units, signals = choose_key_neuron_drivers(X, extractor.units_, drivers, n_units=n_driver_units,
                                                          groups=runs, random_state=seed)
    else:
        driver_units, signals = choose_driver_units(X, extractor.units_, drivers, n_units=n_driver_units)
    rng = np.random.default_rng(seed + 1)
    Y = plant_bold(signals, drivers, networks, snr, ar_phi, rng, runs=runs)
    fusion = None
    if fusion_model is not None:
        fusion = _plant_fusion(Y, events, fusion_model, fusion_params, n_scans, t_r, mask, networks, snr,
                               sites, pooling, memory, verbose, exclude=signals)
    bold = []
    for run in aligner.runs_:
        img = unmask(Y[aligner.run_slices_[run]].astype(np.float32), mask)
        bold.append(run_image(np.asarray(img.dataobj), img.affine, t_r))
    truth = truth_table(drivers, driver_units, extractor.units_, networks)
    settings = {
        "n_runs": n_runs, "t_r": t_r, "snr": snr, "ar_phi": ar_phi, "n_driver_units": n_driver_units,
        "driver_choice": driver_choice,
        "resolution": resolution, "seed": seed, "hrf_model": "glover", "model": model,
        "model_params": model_params, "sites": sites, "pooling": pooling,
        "fusion_model": fusion_model,
    }
    return Bunch(
        events=events, bold=bold, mask=mask, t_r=t_r, n_scans=n_scans, networks=networks,
        truth=truth, driver_signals=signals, unit_names=unit_names, units=units, fusion=fusion,
        model=model, model_params=model_params, sites=sites, pooling=pooling, settings=settings,
        description=(
            f"A simulated subject watching {n_runs} runs of a movie made of real images with their real "
            "descriptions as subtitles (scikit-image's data images, scikit-learn's and matplotlib's sample "
            f"images), TR {t_r} s, in nilearn's MNI152 brain mask at {resolution} mm. Units come from "
            f"{model} ({model_params}); the default CLIP (ViT-B/32 depth at width 128, 64 px) has random "
            "weights (seeded), since no pretrained weights can be fetched offline. Planted truth: a few units "
            + ("(the stable key neurons of one atom of the units, in or near the chosen site) "
               if driver_choice == "key neurons" else "(of the chosen site, on its first component) ")
            + "drive chosen networks (seitzman2018 and language_mni atlases) with chosen signs through the "
            "Glover HRF, "
            f"with AR(1) noise (phi {ar_phi}) at SNR {snr} (signal over noise variance in a driven voxel)."
            + ("" if fusion is None else (
                f" Fusion plant: {fusion_model} (random weights, reduced width, tokenizer trained offline on the "
                "captions) sees each frame paired with the subtitle on screen at that time; left STS/TPJ voxels "
                "outside the networks follow its image x text interaction driver, right ones its one-modality "
                f"(image) driver, at SNR {snr}."))
        ),
    )


def _plant_fusion(Y, events, model, params, n_scans, t_r, mask, networks, snr, sites, pooling, memory, verbose,
                  exclude=None):
    """Add the fusion plant to ``Y`` in place (see :func:`make_default_study`); its description as a Bunch."""
    from nilearn_vlm.extraction import NeuronActivations
    from nilearn_vlm.timeseries import TRAligner

    paired = pair_events(events)
    captions = [t for t in events["text"] if isinstance(t, str)]
    params = fusion_model_params(captions, params) if model == "meter" else dict(params or {})
    extractor = NeuronActivations(model=model, model_params=params, sites=sites, pooling=pooling, memory=memory,
                                  verbose=verbose)
    units = extractor.fit_transform(paired[["image", "text"]])
    aligner = TRAligner(events=paired[["onset", "duration", "run"]], n_scans=n_scans, t_r=t_r)
    X = aligner.fit_transform(units)
    signals, info = fusion_drivers(X, extractor.units_, exclude=exclude)  # uncorrelated with the network drivers
    interaction, one = fusion_voxels(mask, networks)
    amp = np.sqrt(snr)
    Y[:, interaction] += amp * signals[:, [0]]
    Y[:, one] += amp * signals[:, [1]]
    info = {**info, "n_interaction_voxels": int(interaction.sum()), "n_one_modality_voxels": int(one.sum())}
    return Bunch(model=model, params=params, events=paired, interaction=interaction, one_modality=one,
                 signals=signals, info=info)
