"""Conformance check that every adapter plugin's tests call."""

from __future__ import annotations

import json

import numpy as np

from nilearn_vlm.adapters import MODALITIES, UNIT_KINDS, BaseAdapter, Batch, Site, pool

_TEXTS = [
    "A cat sits on the mat.",
    "Two astronauts float beside the space station at night",
    "coffee",
    "A red bus drives through the rainy city street while people wait.",
]


def make_images(n=4, size=64, seed=0):
    """Random RGB PIL images for adapter tests."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [
        Image.fromarray(rng.integers(0, 256, (size, size + 7 * i, 3), dtype=np.uint8))
        for i in range(n)
    ]


def default_batch(n=4, seed=0):
    """A paired batch of ``n`` random images and varied-length texts."""
    return Batch(images=make_images(n, seed=seed), texts=[_TEXTS[i % len(_TEXTS)] for i in range(n)])


def _fail(adapter, msg):
    raise AssertionError(f"check_adapter({type(adapter).__name__}): {msg}")


def check_adapter(adapter, batch=None, sites="all", rtol=1e-4, atol=1e-5):
    """Check that an adapter honours the adapter contract.

    It checks: the class attributes; that ``sites()`` lists unique, valid
    sites; the fractional depths of the blocks (from ``sites()`` and
    ``forward_links()``, see :mod:`nilearn_vlm.units`): in (0, 1],
    increasing with the layer within a stream and along every link, and, in a
    model with both single-modality streams (encoders) and streams that need
    several modalities (fusion layers), every fusion layer deeper than the
    layers that feed it, so fusion comes after the encoders; the units
    table; that the sites listed are the sites produced, with their widths,
    as float32 and finite; determinism; batch-order invariance; that every
    pooling rule equals :func:`nilearn_vlm.adapters.pool` applied to the
    adapter's unpooled tokens (``pooling="none"``) with its token masks; that
    hooks are removed after extraction, also after an error; and clear errors
    for unknown sites and missing modalities.

    Parameters
    ----------
    adapter : BaseAdapter
        An adapter instance (use small random weights in tests).
    batch : Batch, optional
        Stimuli; by default 4 random images with texts of different lengths.
    sites : str or list, default="all"
        Site selector to check.
    rtol, atol : float
        Tolerances for comparisons between extractions.

    Raises
    ------
    AssertionError
        Naming the adapter and the broken rule.

    Examples
    --------
    >>> from nilearn_vlm.testing import ToyAdapter, check_adapter
    >>> check_adapter(ToyAdapter(width=8, n_layers=1))
    """
    if not isinstance(adapter, BaseAdapter):
        _fail(adapter, "adapters must subclass nilearn_vlm.adapters.BaseAdapter")
    for attr in ("name", "version"):
        if not isinstance(getattr(adapter, attr), str) or not getattr(adapter, attr):
            _fail(adapter, f"class attribute {attr!r} must be a non-empty str")
    if not set(adapter.modalities) <= set(MODALITIES) or not adapter.modalities:
        _fail(adapter, f"modalities {adapter.modalities!r} must be a non-empty subset of {MODALITIES}")
    adapter.ensure_loaded()
    all_sites = adapter.sites()
    if not all_sites or not all(isinstance(s, Site) for s in all_sites):
        _fail(adapter, "sites() must return a non-empty list of Site")
    names = [s.name for s in all_sites]
    if len(set(names)) != len(names):
        _fail(adapter, "sites() lists duplicate names")
    for s in all_sites:
        if s.kind not in UNIT_KINDS:
            _fail(adapter, f"site {s.name} has unknown kind {s.kind!r}; use one of {UNIT_KINDS}")
        if not isinstance(s.width, int) or s.width <= 0:
            _fail(adapter, f"site {s.name} has invalid width {s.width!r}")
        if not set(s.modalities) <= set(adapter.modalities):
            _fail(adapter, f"site {s.name} needs {s.modalities}, not all in {adapter.modalities}")
    _check_depths(adapter, all_sites)
    try:
        json.dumps(adapter.fingerprint())
    except TypeError as exc:
        _fail(adapter, f"fingerprint() must be JSON-serialisable: {exc}")

    if batch is None:
        batch = default_batch()
    chosen = adapter.resolve_sites(sites)
    n = len(batch)
    streams = sorted({s.stream for s in chosen})
    vision_like = {s.stream for s in chosen if s.modalities == ("image",)}

    # 1. sites listed = sites produced, widths, dtype, finite
    out = adapter.extract(batch, chosen, "mean")
    if set(out) != {s.name for s in chosen}:
        _fail(adapter, f"extract returned {sorted(set(out) ^ {s.name for s in chosen})} unexpectedly")
    for s in chosen:
        a = out[s.name]
        if not isinstance(a, np.ndarray) or a.dtype != np.float32:
            _fail(adapter, f"site {s.name} must be a float32 numpy array, got {type(a)} {getattr(a, 'dtype', '')}")
        if a.shape != (n, s.width):
            _fail(adapter, f"site {s.name} has shape {a.shape}, expected {(n, s.width)}")
        if not np.isfinite(a).all():
            _fail(adapter, f"site {s.name} has non-finite values")
    if adapter.active_hooks():
        _fail(adapter, f"{adapter.active_hooks()} hooks remain attached after extract")

    # 2. determinism
    again = adapter.extract(batch, chosen, "mean")
    for s in chosen:
        if not np.allclose(out[s.name], again[s.name], rtol=rtol, atol=atol):
            _fail(adapter, f"site {s.name} differs between two identical calls")

    # 3. batch-order invariance
    order = np.arange(n)[::-1]
    rev = adapter.extract(batch.take(order), chosen, "mean")
    for s in chosen:
        if not np.allclose(out[s.name][order], rev[s.name], rtol=rtol, atol=atol):
            err = np.abs(out[s.name][order] - rev[s.name]).max()
            _fail(adapter, f"site {s.name} depends on batch order (max abs diff {err:.3g})")

    # 4. pooled units equal pool() over unpooled tokens
    tokens = adapter.extract(batch, chosen, "none")
    masks = adapter.token_masks(batch)
    for stream in streams:
        if stream not in masks:
            _fail(adapter, f"token_masks() lacks stream {stream!r}")
    for rule in ("cls", "eot", "mean", "max"):
        rule_sites = [s for s in chosen if not (rule == "eot" and s.stream in vision_like)]
        if not rule_sites:
            continue
        pooled = adapter.extract(batch, rule_sites, rule)
        for s in rule_sites:
            t = tokens[s.name]
            if t.ndim != 3 or t.shape[0] != n or t.shape[2] != s.width:
                _fail(adapter, f"site {s.name} with pooling 'none' has shape {t.shape}; expected (n, tokens, width)")
            expected = pool(t, masks[s.stream], rule)
            if not np.allclose(pooled[s.name], expected, rtol=rtol, atol=atol):
                err = np.abs(pooled[s.name] - expected).max()
                _fail(adapter, f"site {s.name}: pooling {rule!r} differs from pool() on its tokens by {err:.3g}")
    if adapter.active_hooks():
        _fail(adapter, "hooks remain attached after extract(pooling='none')")

    # 5. clear errors; hooks removed after an error
    try:
        adapter.extract(batch, [f"{chosen[0].stream}.999.nope"], "mean")
    except (ValueError, KeyError) as exc:
        if "nope" not in str(exc):
            _fail(adapter, f"the error for an unknown site must name it; got {exc!r}")
    else:
        _fail(adapter, "an unknown site must raise ValueError")
    if adapter.active_hooks():
        _fail(adapter, "hooks remain attached after a failed extract")
    try:
        adapter.extract(batch, chosen, "bogus")
    except (ValueError, TypeError) as exc:
        if "bogus" not in str(exc):
            _fail(adapter, f"the error for an unknown pooling must name it; got {exc!r}")
    else:
        _fail(adapter, "an unknown pooling rule must raise ValueError")
    if adapter.active_hooks():
        _fail(adapter, "hooks remain attached after a failed extract")
    if len(adapter.modalities) == 2 and batch.images is not None and batch.texts is not None:
        _check_missing_modality(adapter, batch, chosen)


def _check_depths(adapter, all_sites):
    try:
        links = list(adapter.forward_links())
        depth = adapter.layer_depths()
    except ValueError as exc:
        _fail(adapter, f"forward_links() does not describe the model's blocks: {exc}")
    for block, d in depth.items():
        if not 0 < d <= 1:
            _fail(adapter, f"block {block} has depth {d}, outside (0, 1]")
    for (stream, layer), d in depth.items():
        nxt = depth.get((stream, layer + 1))
        if nxt is not None and not nxt > d:
            _fail(adapter, f"depth does not increase from layer {layer} to {layer + 1} of stream {stream!r}")
    for src, dst in links:
        if not depth[tuple(dst)] > depth[tuple(src)]:
            _fail(adapter, f"forward link {src} -> {dst} does not go deeper")
    modalities = {}
    for s in all_sites:
        modalities.setdefault(s.stream, set()).update(s.modalities)
    encoders = {st for st, m in modalities.items() if len(m) == 1}
    fed = {tuple(dst)[0] for src, dst in links if tuple(src)[0] != tuple(dst)[0]}
    for stream, m in modalities.items():
        if len(m) > 1 and encoders and stream not in fed:
            _fail(
                adapter,
                f"stream {stream!r} needs {sorted(m)} input but no other stream feeds it, so its depths run "
                f"parallel to the encoders {sorted(encoders)}; override forward_links() to link the encoder "
                "layers that feed it (fusion layers come after their encoders)",
            )
    names = [u for s in all_sites for u in s.unit_names()]
    table = adapter.units_table()
    if table["name"].tolist() != names:
        _fail(adapter, "units_table() does not list the units of sites() in order")
    if not np.allclose(table["depth"], [depth[(s, l)] for s, l in zip(table["stream"], table["layer"])]):
        _fail(adapter, "units_table() depths differ from layer_depths()")


def _check_missing_modality(adapter, batch, chosen):
    image_sites = [s for s in chosen if "image" in s.modalities]
    if not image_sites:
        return
    text_only = Batch(images=None, texts=batch.texts)
    if adapter.paired:
        missing = adapter.model_params.get("missing_image")
        if missing is not None:
            return
    try:
        adapter.extract(text_only, image_sites, "mean")
    except ValueError as exc:
        if "image" not in str(exc):
            _fail(adapter, f"the missing-modality error must say 'image' is missing; got {exc!r}")
    else:
        _fail(adapter, "asking for image sites on a text-only batch must raise ValueError")
    if adapter.active_hooks():
        _fail(adapter, "hooks remain attached after a failed extract")
