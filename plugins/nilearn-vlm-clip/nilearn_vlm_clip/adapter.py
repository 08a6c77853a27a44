"""The CLIP adapter: single units of both CLIP towers, open_clip or transformers."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from nilearn_vlm.adapters import BaseAdapter, CapturePoint, Site, capture, count_module_hooks
from nilearn_vlm.units import site_name

_STREAMS = (("vision", "image"), ("text", "text"))
_KINDS = ("attn_out", "head", "ffn", "resid")
_BACKENDS = ("open_clip", "transformers")
_DTYPES = ("float32", "bfloat16", "float16")


class ClipAdapter(BaseAdapter):
    """Units of a CLIP dual encoder (registered as ``"clip"``).

    Sites: ``vision.L.{attn_out,head,ffn,resid}`` for every layer ``L`` of
    the image tower (modality ``image``) and ``text.L.{...}`` for the text
    tower (modality ``text``). ``attn_out`` is what the attention block adds
    to the residual stream (after the output projection, and after LayerScale
    where the model has one); ``head`` is the concatenated per-head output
    before the output projection (units ``h * head_dim + j``); ``ffn`` the MLP
    units after the activation; ``resid`` the residual stream after the block.

    Units are pooled inside the forward hooks with
    :func:`nilearn_vlm.adapters.pool`, so memory only holds pooled units.
    Vision has no padding: ``mean`` averages all tokens, CLS included, and
    ``eot`` is refused (use ``cls`` or ``mean``). Text tokens are valid from
    the start token through the end token (EOT); padding never counts.

    Parameters
    ----------
    backend : {"open_clip", "transformers"}, default="open_clip"
        Implementation that runs the model.
    arch : str, default="ViT-B-32"
        open_clip model name (``open_clip.list_models()``: ``ViT-B-32``,
        ``ViT-B-16``, ``ViT-B-32-quickgelu``, ``ViT-L-14``, ...), or an
        open_clip ``hf-hub:``/``local-dir:`` identifier. open_clip backend.
    pretrained : str or None, default=None
        Weights. open_clip backend: an open_clip tag (``"openai"``,
        ``"laion2b_s34b_b79k"``, ...; fetched by open_clip) or a checkpoint
        file. transformers backend: a state-dict file loaded into the model
        built from ``hf_id``'s config or ``model_cfg``. None: random weights
        drawn with ``seed``.
    hf_id : str or None, default=None
        transformers backend: HF model id (``"openai/clip-vit-base-patch32"``)
        or a local folder saved with ``save_pretrained``. None with
        ``pretrained=None`` builds random weights from ``model_cfg``.
    tokenizer : str or None, default=None
        transformers backend: tokenizer id or folder (``tokenizer.json``, or
        ``vocab.json`` and ``merges.txt``); defaults to ``hf_id``. An empty
        tokenizer (what transformers returns offline without the files) is an
        error. The open_clip backend uses open_clip's tokenizer for ``arch``
        (its BPE vocabulary ships with open_clip).
    model_cfg : dict or None, default=None
        Architecture override for random weights, e.g. tiny models in tests.
        open_clip: deep-merged into the config of ``arch``, e.g.
        ``{"embed_dim": 16, "vision_cfg": {"image_size": 32, "patch_size": 8,
        "width": 32, "head_width": 8, "layers": 2}, "text_cfg": {"width": 32,
        "heads": 4, "layers": 2}}``. transformers: keyword arguments of
        ``CLIPConfig`` (``text_config``, ``vision_config``,
        ``projection_dim``); None gives CLIPConfig's defaults (ViT-B/32).
    seed : int, default=0
        Seed of the random weights (the global torch RNG is left untouched).
    device : str, default="cpu"
        Torch device.
    dtype : {"float32", "bfloat16", "float16"}, default="float32"
        Precision of the weights and the forward pass (the image pixels are
        cast to it). Pooled units are returned in float32 whatever it is;
        reduced precision changes them by its rounding (about 1e-2 relative
        for bfloat16) and changes the weights' digest, so cached units of one
        precision are never reused for another. ``float16`` is meant for
        GPUs.

    Examples
    --------
    >>> from nilearn_vlm.adapters import Batch
    >>> adapter = ClipAdapter(model_cfg={
    ...     "embed_dim": 8,
    ...     "vision_cfg": {"image_size": 32, "patch_size": 16, "width": 16, "head_width": 8, "layers": 1},
    ...     "text_cfg": {"width": 16, "heads": 2, "layers": 1, "context_length": 16}})
    >>> [s.name for s in adapter.sites()][:4]
    ['vision.0.attn_out', 'vision.0.head', 'vision.0.ffn', 'vision.0.resid']
    >>> adapter.extract(Batch(texts=["a photo of a cat"]), ["text.0.ffn"], "mean")["text.0.ffn"].shape
    (1, 64)
    """

    name = "clip"
    version = "1"
    modalities = ("image", "text")

    _DEFAULTS = {
        "backend": "open_clip",
        "arch": "ViT-B-32",
        "pretrained": None,
        "hf_id": None,
        "tokenizer": None,
        "model_cfg": None,
        "seed": 0,
        "device": "cpu",
        "dtype": "float32",
    }

    # -- loading ---------------------------------------------------------
    def load(self, **model_params):
        """Build the model, tokenizer and image preprocessing; return self."""
        self.model_params.update(model_params)
        unknown = sorted(set(self.model_params) - set(self._DEFAULTS))
        if unknown:
            raise TypeError(
                f"unknown clip model_params {unknown}; valid ones are {sorted(self._DEFAULTS)}"
            )
        for key, value in self._DEFAULTS.items():
            self.model_params.setdefault(key, value)
        p = self.model_params
        if p["backend"] not in _BACKENDS:
            raise ValueError(f"unknown clip backend {p['backend']!r}; choose one of {_BACKENDS}")
        if p["model_cfg"] is not None and not isinstance(p["model_cfg"], dict):
            raise TypeError(f"model_cfg must be a dict or None, got {type(p['model_cfg']).__name__}")
        if not isinstance(p["seed"], (int, np.integer)):
            raise TypeError(f"seed must be an int, got {p['seed']!r}")
        if p["dtype"] not in _DTYPES:
            raise ValueError(f"dtype={p['dtype']!r} is not supported; choose one of {_DTYPES}")
        if p["backend"] == "open_clip":
            from nilearn_vlm_clip._open_clip import OpenClipBackend

            self._backend = OpenClipBackend(p["arch"], p["pretrained"], p["model_cfg"], int(p["seed"]), p["device"])
        else:
            from nilearn_vlm_clip._transformers import TransformersBackend

            self._backend = TransformersBackend(
                p["hf_id"], p["pretrained"], p["model_cfg"], p["tokenizer"], int(p["seed"]), p["device"]
            )
        self._model = self._backend.model.to(dtype=getattr(torch, p["dtype"]))
        self._baseline_hooks = count_module_hooks(self._model)
        self._digest = None
        self._sites = self._list_sites()
        self._loaded = True
        return self

    @property
    def model(self):
        """The loaded torch model (``open_clip`` CLIP or ``transformers.CLIPModel``)."""
        self.ensure_loaded()
        return self._model

    def _list_sites(self):
        out = []
        for stream, modality in _STREAMS:
            widths = self._backend.widths(stream)
            tokens = self._backend.token_description(stream)
            for layer in range(len(self._backend.layers(stream))):
                for kind in _KINDS:
                    out.append(Site(stream, layer, kind, int(widths[kind]), (modality,), tokens))
        return out

    def sites(self):
        """Every site of both towers, vision first, in layer order."""
        self.ensure_loaded()
        return list(self._sites)

    def n_heads(self, stream):
        """Number of attention heads of a stream (``head`` units are head-major)."""
        self.ensure_loaded()
        return self._backend.n_heads(stream)

    # -- provenance --------------------------------------------------------
    def weights_digest(self):
        """SHA-256 (16 hex digits) of the loaded state dict: names, dtypes, shapes, values."""
        self.ensure_loaded()
        if self._digest is None:
            h = hashlib.sha256()
            for key, tensor in sorted(self._model.state_dict().items()):
                t = tensor.detach().cpu().contiguous().reshape(-1)
                h.update(f"{key}|{t.dtype}|{tuple(tensor.shape)}|".encode())
                h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
            self._digest = h.hexdigest()[:16]
        return self._digest

    def preprocessing(self):
        """Image size, normalisation and tokenizer in use."""
        self.ensure_loaded()
        return self._backend.preprocessing()

    def active_hooks(self):
        """Hooks this adapter left on the model (0 outside :meth:`extract`)."""
        if not self._loaded:
            return 0
        return count_module_hooks(self._model) - self._baseline_hooks

    def token_masks(self, batch):
        """Valid tokens per stream: vision None (all valid), text (n, tokens) bool."""
        self.ensure_loaded()
        out = {}
        if batch.images is not None:
            out["vision"] = None
        if batch.texts is not None:
            _, mask = self._backend.prepare("text", batch, "cpu")
            out["text"] = mask.cpu().numpy()
        return out

    # -- extraction --------------------------------------------------------
    def extract(self, batch, sites, pooling="mean"):
        """Pooled (or, with ``pooling="none"``, token-wise) units of the sites.

        See :meth:`nilearn_vlm.adapters.BaseAdapter.extract`. Each stream runs
        one forward pass of its tower with one hook per requested site; all
        hooks are removed afterwards, also on error.
        """
        self.ensure_loaded()
        chosen, rules = self._check_request(batch, sites, pooling)
        if rules.get("vision") == "eot":
            raise ValueError(
                "pooling 'eot' (end-of-text token) applies to text; vision has no EOT token: use "
                "'cls' or 'mean' for vision, e.g. pooling={'vision': 'cls', 'text': 'eot'}"
            )
        out = {}
        for stream, _ in _STREAMS:
            wanted = [s for s in chosen if s.stream == stream]
            if wanted:
                out.update(self._run(stream, batch, wanted, rules[stream]))
        return {s.name: out[s.name] for s in chosen}

    def _run(self, stream, batch, wanted, rule):
        with torch.inference_mode():
            inputs, mask = self._backend.prepare(stream, batch, self.model_params["device"])
            if isinstance(inputs, torch.Tensor) and inputs.is_floating_point():  # pixels, in the model's dtype
                inputs = inputs.to(getattr(torch, self.model_params["dtype"]))
        return self._capture(stream, inputs, mask, wanted, rule)

    def _capture(self, stream, inputs, mask, wanted, rule):
        """One forward pass of a tower on prepared inputs, with one hook per site."""
        span = _valid_span(mask, rule)
        valid = mask if mask is None or span is None else mask[:, :span]
        points = {}
        for site in wanted:
            point = self._backend.capture_point(stream, site.layer, site.kind)
            points[site.name] = CapturePoint(point.module, point.pre, _leading(point.read, span))
        with torch.inference_mode(), capture(points, rule, {name: valid for name in points}) as captured:
            self._backend.forward(stream, inputs, mask)
        return captured.arrays()

    def embed(self, batch):
        """Final CLIP embeddings computed from the captured last residual stream.

        The last layer's ``resid`` is captured with ``cls`` pooling (vision)
        or ``eot`` pooling (text), then passed through the model's own final
        LayerNorm and projection. Equals open_clip's ``encode_image`` /
        ``encode_text`` and transformers' ``get_image_features`` /
        ``get_text_features`` (unnormalised); the tests check it.

        Returns
        -------
        dict
            ``{"image": (n, embed_dim), "text": (n, embed_dim)}`` float32,
            for the modalities the batch has.
        """
        self.ensure_loaded()
        out = {}
        for stream, modality in _STREAMS:
            if modality not in batch.modalities:
                continue
            last = site_name(stream, len(self._backend.layers(stream)) - 1, "resid")
            rule = "cls" if stream == "vision" else "eot"
            pooled = self.extract(batch, [last], rule)[last]
            with torch.inference_mode():
                x = torch.from_numpy(pooled).to(self.model_params["device"], getattr(torch, self.model_params["dtype"]))
                out[modality] = self._backend.project(stream, x).float().cpu().numpy()
        return out

    def __repr__(self):
        shown = {k: v for k, v in self.model_params.items() if self._DEFAULTS.get(k, object()) != v}
        params = ", ".join(f"{k}={v!r}" for k, v in sorted(shown.items()))
        return f"{type(self).__name__}({params})"


def _valid_span(mask, rule):
    """Number of leading positions that hold every valid token (None: all positions).

    Text tokens are valid from position 0 through EOT, so positions past the
    longest text are padding for every stimulus; the hooks pool over the
    leading span only (same result, less memory traffic). ``none`` keeps all
    positions.
    """
    if mask is None or rule == "none":
        return None
    cols = torch.nonzero(mask.any(dim=0))
    return int(cols.max()) + 1 if len(cols) else None


def _leading(read, span):
    """``read`` restricted to the leading ``span`` token positions (all of them for None)."""
    if span is None:
        return read

    def leading(module, args, kwargs, output):
        x = read(module, args, kwargs, output)
        return x[:, :span] if span < x.shape[1] else x

    return leading
