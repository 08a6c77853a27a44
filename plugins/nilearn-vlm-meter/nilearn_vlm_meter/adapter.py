"""The nilearn_vlm adapter for METER."""

from __future__ import annotations

import hashlib
import os

import numpy as np

from nilearn_vlm.adapters import BaseAdapter, CapturePoint, Site, capture, count_module_hooks, params_digest
from nilearn_vlm_meter.preprocess import (
    CLIP_MEAN,
    CLIP_STD,
    _as_pil,
    clip_transform,
    load_tokenizer,
    tokenize,
    tokenizer_digest,
    tokenizer_name,
)

#: Size parameters (random weights); with a checkpoint they are read from it.
SIZE_PARAMS = {
    "patch_size": 16,
    "vision_width": 768,
    "vision_layers": 11,
    "vision_heads": 12,
    "vision_mlp_width": 3072,
    "text_width": 768,
    "text_layers": 12,
    "text_heads": 12,
    "text_intermediate": 3072,
    "vocab_size": 50265,
    "max_position_embeddings": 514,
    "hidden_size": 768,
    "num_top_layer": 6,
    "num_heads": 12,
    "fusion_intermediate": 3072,
    "num_token_types": 2,
}
_HEAD_PARAMS = ("vision_heads", "text_heads", "num_heads")

#: Resolution of random models when ``image_size`` is None.
RANDOM_IMAGE_SIZE = 288

DEFAULTS = {
    "checkpoint": None,
    "image_size": None,
    "tokenizer": "roberta-base",
    "max_text_len": 50,
    "missing_text": None,
    "missing_image": None,
    "seed": 0,
    "device": "cpu",
    "batch_size": 16,
}

def _file_digest(path, chunk=1 << 22):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _is_missing(x):
    return x is None or (isinstance(x, float) and np.isnan(x))


def meter_sites(config):
    """The unit sites of a METER model of configuration ``config``.

    Parameters
    ----------
    config : METERConfig

    Returns
    -------
    list of Site
        ``vision.L.{attn_out,ffn}``, ``text.L.{attn_out,ffn}``, then
        ``cross_text.L.{self_attn_out,cross_attn_out,ffn}`` and
        ``cross_image.L.{...}``.

    Examples
    --------
    >>> from nilearn_vlm_meter.model import METERConfig
    >>> sites = meter_sites(METERConfig())
    >>> len(sites), sum(s.width for s in sites if s.kind == "ffn")
    (82, 107520)
    """
    cfg = config
    img_tokens = f"CLS + {cfg.n_image_tokens - 1} patches"
    txt_tokens = "<s> words </s>, padding masked"
    out = []
    for layer in range(cfg.vision_layers):
        out.append(Site("vision", layer, "attn_out", cfg.vision_width, ("image",), img_tokens))
        out.append(Site("vision", layer, "ffn", cfg.vision_mlp_width, ("image",), img_tokens))
    for layer in range(cfg.text_layers):
        out.append(Site("text", layer, "attn_out", cfg.text_width, ("text",), txt_tokens))
        out.append(Site("text", layer, "ffn", cfg.text_intermediate, ("text",), txt_tokens))
    for stream, tokens in (("cross_text", txt_tokens), ("cross_image", img_tokens)):
        for layer in range(cfg.num_top_layer):
            for kind, width in (
                ("self_attn_out", cfg.hidden_size),
                ("cross_attn_out", cfg.hidden_size),
                ("ffn", cfg.fusion_intermediate),
            ):
                out.append(Site(stream, layer, kind, width, ("image", "text"), tokens))
    return out


class METERAdapter(BaseAdapter):
    """METER (CLIP-ViT-B/16 + RoBERTa + co-attention) as a nilearn_vlm adapter.

    A faithful plain-torch re-implementation that loads the official
    checkpoints (``meter_clip16_288_roberta_pretrain.ckpt`` and the fine-tuned
    CLIP-16 ones). METER is paired: its fusion layers need an image and a
    text for every stimulus. For image-only or text-only stimuli pass the
    filler explicitly (``missing_text=""`` gives ``<s></s>``,
    ``missing_image="black"``); without one, asking for a site that needs the
    absent modality raises ValueError. Unimodal sites (``vision.*``,
    ``text.*``) only need their own modality.

    Sites (L counts from 0):

    - ``vision.L.attn_out`` (768) and ``vision.L.ffn`` (3072, QuickGELU
      output), L < 11; tokens: CLS + patches (325 at 288 px).
    - ``text.L.attn_out`` (768) and ``text.L.ffn`` (3072, GELU output),
      L < 12; tokens: ``<s>`` words ``</s>``, padding masked.
    - ``cross_text.L.{self_attn_out, cross_attn_out, ffn}`` and
      ``cross_image.L.{...}`` (768, 768, 3072), L < 6: the fusion layers of
      the text and image streams.

    ``attn_out``/``self_attn_out``/``cross_attn_out`` are the output of the
    attention's output projection, before the residual add and LayerNorm.
    Pooling ``cls`` takes token 0 (image CLS or ``<s>``), ``eot`` the last
    valid token (``</s>`` for text, the last patch for image streams),
    ``mean``/``max`` all valid tokens (CLS included for images).

    Parameters
    ----------
    checkpoint : str or None, default=None
        Path of an official METER CLIP ``.ckpt`` (or a file holding its bare
        state dict); None builds random weights from the size parameters.
    image_size : int or None, default=None
        Input resolution (224, 288 or 384 for the released models). None:
        the checkpoint's own resolution, or 288 for random weights. The
        position embedding is resized bicubically when it differs from the
        checkpoint's.
    tokenizer : str, dict or tokenizer, default="roberta-base"
        Hugging Face id or local directory of RoBERTa's tokenizer, or
        ``{"corpus": [texts], "vocab_size": n}``: a byte-level BPE tokenizer
        trained offline on those texts (random weights only; see
        :func:`~nilearn_vlm_meter.preprocess.corpus_tokenizer`).
    max_text_len : int, default=50
        Text length incl. ``<s>`` and ``</s>`` (50 for pretraining, VQA,
        NLVR2, SNLI; 40 for retrieval checkpoints); longer texts are cut.
    missing_text : str or None, default=None
        Text for stimuli without one (``""`` gives ``<s></s>``).
    missing_image : {"black"}, array, PIL image or None, default=None
        Image for stimuli without one; an array is (H, W, 3) uint8.
    seed : int, default=0
        Seed of random weights (``checkpoint=None``).
    device : str, default="cpu"
    batch_size : int, default=16
        Stimuli per forward pass.
    patch_size, vision_width, vision_layers, vision_heads, vision_mlp_width, \
text_width, text_layers, text_heads, text_intermediate, vocab_size, \
max_position_embeddings, hidden_size, num_top_layer, num_heads, \
fusion_intermediate, num_token_types : int
        Architecture of random models (defaults: the released model). With a
        checkpoint these are read from its shapes; giving one that disagrees
        is an error (the head counts are not visible in shapes and are used).

    Attributes
    ----------
    model_ : nilearn_vlm_meter.model.METER
        The torch model (after :meth:`load`).
    config_ : nilearn_vlm_meter.model.METERConfig
    tokenizer_ : transformers tokenizer
    load_report_ : dict
        What loading the checkpoint ignored, resized or lacked.

    Examples
    --------
    Official weights at a user's site (not run here)::

        adapter = METERAdapter(checkpoint="meter_clip16_288_roberta_pretrain.ckpt",
                               tokenizer="roberta-base", missing_text="")
    """

    name = "meter"
    version = "1"
    modalities = ("image", "text")
    paired = True
    accepts_device = True

    # -- loading ---------------------------------------------------------
    def load(self, **model_params):
        """Build or load the model and the tokenizer; return self."""
        import torch

        from nilearn_vlm_meter.checkpoint import (
            config_from_state_dict,
            load_meter_state_dict,
            read_checkpoint,
        )
        from nilearn_vlm_meter.model import METERConfig, build_meter

        self.model_params.update(model_params)
        p = self.model_params
        unknown = set(p) - set(DEFAULTS) - set(SIZE_PARAMS)
        if unknown:
            raise TypeError(
                f"unknown METERAdapter parameters {sorted(unknown)}; "
                f"use {sorted(DEFAULTS)} or the size parameters {sorted(SIZE_PARAMS)}"
            )
        given_sizes = {k: p[k] for k in SIZE_PARAMS if k in p}
        for key, value in DEFAULTS.items():
            p.setdefault(key, value)
        self._check_params()
        self.load_report_ = {}
        if p["checkpoint"] is None:
            sizes = {**SIZE_PARAMS, **given_sizes}
            if p["image_size"] is None:
                p["image_size"] = RANDOM_IMAGE_SIZE
            cfg = METERConfig(image_size=int(p["image_size"]), **{k: int(v) for k, v in sizes.items()})
            self._validate_config(cfg)
            model = build_meter(cfg, seed=int(p["seed"]))
            self._ckpt_digest = None
        else:
            sd, info = read_checkpoint(p["checkpoint"])
            heads = {k: given_sizes[k] for k in _HEAD_PARAMS if k in given_sizes}
            cfg = config_from_state_dict(sd, image_size=p["image_size"], **heads)
            p["image_size"] = cfg.image_size
            clash = {
                k: (v, getattr(cfg, k)) for k, v in given_sizes.items()
                if k not in _HEAD_PARAMS and int(v) != getattr(cfg, k)
            }
            if clash:
                raise ValueError(
                    "size parameters disagree with the checkpoint (given, checkpoint): "
                    f"{clash}; drop them, a checkpoint defines the architecture"
                )
            self._validate_config(cfg)
            model = build_meter(cfg, device="meta")
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(p["seed"]))  # absent heads get seeded random weights
                report = load_meter_state_dict(model, sd)
            del sd
            report.update(info)
            self.load_report_ = report
            self._ckpt_digest = None  # computed on first use (hashing 1.4 GB takes seconds)
        self.config_ = cfg
        self.tokenizer_ = load_tokenizer(p["tokenizer"])
        n_tok = len(self.tokenizer_)
        if n_tok > cfg.vocab_size:
            raise ValueError(
                f"the tokenizer has {n_tok} tokens but the model's vocabulary has {cfg.vocab_size}; "
                "use RoBERTa's tokenizer with the official weights, or set vocab_size >= "
                f"{n_tok} for random weights"
            )
        if int(p["max_text_len"]) + 2 > cfg.max_position_embeddings:
            raise ValueError(
                f"max_text_len={p['max_text_len']} needs max_position_embeddings >= "
                f"{int(p['max_text_len']) + 2} (RoBERTa positions start at 2); "
                f"the model has {cfg.max_position_embeddings}"
            )
        self._device = torch.device(p["device"])
        self.model_ = model.to(self._device).eval()
        self._loaded = True
        return self

    def _check_params(self):
        p = self.model_params
        ckpt = p["checkpoint"]
        if ckpt is not None and not isinstance(ckpt, (str, os.PathLike)):
            raise TypeError(f"checkpoint must be a path or None, got {type(ckpt).__name__}")
        for key in ("image_size", "max_text_len", "batch_size"):
            if key == "image_size" and p[key] is None:
                continue
            if not isinstance(p[key], (int, np.integer)) or p[key] <= 0:
                raise ValueError(f"{key} must be a positive int, got {p[key]!r}")
        if p["missing_text"] is not None and not isinstance(p["missing_text"], str):
            raise TypeError(
                f"missing_text must be a str (e.g. '' for <s></s>) or None, got {type(p['missing_text']).__name__}"
            )
        filler = p["missing_image"]
        if isinstance(filler, str):
            if filler != "black":
                raise ValueError(
                    f"missing_image={filler!r} is not understood; use 'black', an (H, W, 3) uint8 "
                    "array or a PIL image"
                )
        elif filler is not None:
            _as_pil(filler)  # raises a clear error for bad arrays

    def _validate_config(self, cfg):
        if cfg.image_size % cfg.patch_size:
            raise ValueError(
                f"image_size {cfg.image_size} must be a multiple of patch_size {cfg.patch_size} "
                "(the released models use 224, 288 or 384 with patch 16)"
            )
        for width, heads, what in (
            (cfg.vision_width, cfg.vision_heads, "vision_width/vision_heads"),
            (cfg.text_width, cfg.text_heads, "text_width/text_heads"),
            (cfg.hidden_size, cfg.num_heads, "hidden_size/num_heads"),
        ):
            if heads <= 0 or width % heads:
                raise ValueError(f"{what} = {width}/{heads}: the width must be a multiple of the heads")

    # -- description -----------------------------------------------------
    def sites(self):
        """Every site, in model order: vision, text, cross_text, cross_image."""
        self.ensure_loaded()
        return meter_sites(self.config_)

    def forward_links(self):
        """The fusion layers come after the encoders.

        The first layer of both fusion streams reads the last vision and the
        last text layer; fusion layer ``k`` of each stream reads layer
        ``k - 1`` of the other (co-attention).
        """
        self.ensure_loaded()
        cfg = self.config_
        ends = [("vision", cfg.vision_layers - 1), ("text", cfg.text_layers - 1)]
        links = [(end, (stream, 0)) for stream in ("cross_text", "cross_image") for end in ends]
        for k in range(1, cfg.num_top_layer):
            links += [(("cross_image", k - 1), ("cross_text", k)), (("cross_text", k - 1), ("cross_image", k))]
        return links

    def weights_digest(self):
        """Digest of the checkpoint file, or of the seed and architecture."""
        self.ensure_loaded()
        if self.model_params["checkpoint"] is not None:
            if self._ckpt_digest is None:
                self._ckpt_digest = _file_digest(self.model_params["checkpoint"])
            return self._ckpt_digest
        return params_digest({"seed": self.model_params["seed"], "config": self.config_.to_dict()})

    def preprocessing(self):
        """Image transform, tokenizer and fillers (they enter the cache key)."""
        self.ensure_loaded()
        p = self.model_params
        filler = p["missing_image"]
        if filler is not None and not isinstance(filler, str):
            filler = "sha256:" + hashlib.sha256(np.asarray(_as_pil(filler).convert("RGB")).tobytes()).hexdigest()[:16]
        return {
            "image": f"shorter side to {p['image_size']} bicubic, centre crop, RGB, CLIP mean/std",
            "mean": list(CLIP_MEAN),
            "std": list(CLIP_STD),
            "tokenizer": tokenizer_name(p["tokenizer"]),
            "tokenizer_vocab": tokenizer_digest(self.tokenizer_),
            "max_text_len": int(p["max_text_len"]),
            "missing_text": p["missing_text"],
            "missing_image": filler,
        }

    def active_hooks(self):
        """Hooks attached to the model (0 outside :meth:`extract`)."""
        return count_module_hooks(self.model_) if getattr(self, "model_", None) is not None else 0

    # -- inputs ----------------------------------------------------------
    def _filled(self, batch, modality, why):
        values = batch.images if modality == "image" else batch.texts
        key = "missing_image" if modality == "image" else "missing_text"
        filler = self.model_params[key]
        example = "missing_image='black' (or an (H, W, 3) uint8 array)" if modality == "image" else "missing_text=''"
        if values is None:
            values = [None] * len(batch)
        absent = [i for i, v in enumerate(values) if _is_missing(v)]
        if absent and filler is None:
            where = "this batch has no " + modality if len(absent) == len(values) else (
                f"stimuli {absent[:10]} have no {modality}"
            )
            raise ValueError(
                f"METER is a paired model: {why} need {'an' if modality == 'image' else 'a'} {modality} "
                f"for every stimulus, but {where}. "
                f"Pass {example} to the adapter to fill the missing {modality}s, or request only "
                f"{'text' if modality == 'image' else 'vision'} sites"
            )
        if not absent:
            return list(values)
        if modality == "image":
            size = self.config_.image_size
            if isinstance(filler, str):
                from PIL import Image

                filler = Image.new("RGB", (size, size))
        absent = set(absent)
        return [filler if i in absent else v for i, v in enumerate(values)]

    def _inputs(self, batch, need_image, need_text, why_image="", why_text=""):
        import torch

        pixels = ids = mask = None
        if need_image:
            images = self._filled(batch, "image", why_image)
            size = self.config_.image_size
            pixels = torch.from_numpy(np.stack([clip_transform(im, size) for im in images]))
        if need_text:
            texts = [str(t) if not _is_missing(t) else t for t in self._filled(batch, "text", why_text)]
            ids, mask = tokenize(self.tokenizer_, texts, int(self.model_params["max_text_len"]))
            ids, mask = torch.from_numpy(ids), torch.from_numpy(mask)
        return pixels, ids, mask

    def token_masks(self, batch):
        """``{stream: (n, tokens) bool or None}``: text masks from the tokenizer."""
        self.ensure_loaded()
        out = {"vision": None, "cross_image": None}
        if batch.texts is not None or self.model_params["missing_text"] is not None:
            _, _, mask = self._inputs(batch, False, True, why_text="text streams")
            m = mask.numpy().astype(bool)
            out["text"] = m
            out["cross_text"] = m
        return out

    # -- extraction ------------------------------------------------------
    def _site_module(self, site):
        m, layer, kind = self.model_, site.layer, site.kind
        if site.stream == "vision":
            block = m.vit_model.visual.transformer.resblocks[layer]
            return block.attn.out_proj if kind == "attn_out" else block.mlp.gelu
        if site.stream == "text":
            block = m.text_transformer.encoder.layer[layer]
            return block.attention.output.dense if kind == "attn_out" else block.intermediate
        layers = m.cross_modal_text_layers if site.stream == "cross_text" else m.cross_modal_image_layers
        block = layers[layer]
        return {
            "self_attn_out": block.attention.output.dense,
            "cross_attn_out": block.crossattention.output.dense,
            "ffn": block.intermediate,
        }[kind]

    def extract(self, batch, sites, pooling="mean"):
        """Pooled unit activations of the requested sites.

        Parameters
        ----------
        batch : nilearn_vlm.adapters.Batch
        sites : list of Site or str
        pooling : str or dict
            See :func:`nilearn_vlm.adapters.pool`.

        Returns
        -------
        dict
            ``{site_name: float32 array (n, width)}`` or (n, tokens, width)
            for ``pooling="none"``.
        """
        import torch

        self.ensure_loaded()
        chosen, rules = self._check_request(batch, sites, pooling)
        streams = {s.stream for s in chosen}
        need_image = bool(streams & {"vision", "cross_text", "cross_image"})
        need_text = bool(streams & {"text", "cross_text", "cross_image"})
        fuse = bool(streams & {"cross_text", "cross_image"})
        why_img = "sites " + ", ".join(sorted({f"{s.stream}.*" for s in chosen if "image" in s.modalities}))
        why_txt = "sites " + ", ".join(sorted({f"{s.stream}.*" for s in chosen if "text" in s.modalities}))
        pixels, ids, mask = self._inputs(batch, need_image, need_text, why_img, why_txt)
        current = {}

        def text_mask():
            return current["mask"].bool()

        points = {s.name: CapturePoint(self._site_module(s)) for s in chosen}
        textual = {s.name: text_mask for s in chosen if s.stream in ("text", "cross_text")}
        model, dev = self.model_, self._device
        with capture(points, {s.name: rules[s.stream] for s in chosen}, textual) as captured:
            step = int(self.model_params["batch_size"])
            with torch.no_grad():
                for start in range(0, len(batch), step):
                    sl = slice(start, start + step)
                    img = txt = None
                    if need_text:
                        current["mask"] = mask[sl].to(dev)
                        txt = model.encode_text(ids[sl].to(dev), current["mask"])
                    if need_image:
                        img = model.encode_image(pixels[sl].to(dev))
                    if fuse:
                        model.fuse(txt, img, current["mask"])
        return captured.arrays()

    def itm_logits(self, batch):
        """Image-text matching logits (n, 2) of METER's ITM head (index 1: match)."""
        import torch

        self.ensure_loaded()
        pixels, ids, mask = self._inputs(batch, True, True, "ITM scores", "ITM scores")
        with torch.no_grad():
            out = self.model_(pixels.to(self._device), ids.to(self._device), mask.to(self._device))
        return out["itm_logits"].float().cpu().numpy()
