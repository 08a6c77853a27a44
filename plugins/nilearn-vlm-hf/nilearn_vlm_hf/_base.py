"""Shared machinery of the Hugging Face adapters: loading, inputs, hooks."""

from __future__ import annotations

import hashlib
import inspect
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from nilearn_vlm.adapters import BaseAdapter, Batch, CapturePoint, Site, capture, count_module_hooks

#: Sub-module paths (relative to one transformer layer) of the attention
#: output projection, tried in order. Its input is the per-head context
#: (head-major), its output the attention block output before the residual add.
ATTN_PROJ_PATHS = (
    "attention.output.dense",  # BERT, RoBERTa, MiniLM, ELECTRA, DeBERTa, ViT, DeiT, BEiT, DINOv2
    "self_attn.out_proj",  # CLIP, SigLIP, BART-style encoders
    "attention.out_lin",  # DistilBERT
    "attention.attn.o",  # MPNet
    "attention.o_proj",
    "self_attn.o_proj",
    "attn.proj",  # timm-style blocks
)
#: Sub-module paths of the second FFN linear: its input is the FFN units
#: after the activation.
FFN_PROJ_PATHS = (
    "output.dense",  # BERT family, ViT family
    "mlp.fc2",  # CLIP, SigLIP, DINOv2
    "mlp.weights_out",  # DINOv2 with SwiGLU
    "ffn.lin2",  # DistilBERT
    "mlp.c_proj",
    "mlp.down_proj",
)

_COMMON_DEFAULTS = {
    "pretrained": None,
    "config": None,
    "seed": 0,
    "tokenizer": None,
    "image_processor": None,
    "local_files_only": None,
    "revision": None,
    "device": "cpu",
    "dtype": "float32",
    "attn_implementation": None,
    "max_length": None,
}
_DTYPES = ("float32", "float16", "bfloat16")


@dataclass
class Tap:
    """Where one unit kind of one layer is read.

    ``pre=True`` reads the module's first positional input (forward
    pre-hook), otherwise its output (element 0 of a tuple output).
    """

    module: object
    pre: bool
    width: int


@dataclass
class Stream:
    """One processing stream: its layers and how its tokens are laid out."""

    name: str
    modalities: tuple
    layers: list = field(default_factory=list)  # list of {kind: Tap}
    seq_first: bool = False
    mask_of: str | None = None  # "text": padded text tokens; None: every token valid
    tokens: str = ""


def submodule(root, path):
    """``root.get_submodule(path)`` or None."""
    try:
        return root.get_submodule(path)
    except AttributeError:
        return None


def linear_at(layer, paths):
    """First sub-module among ``paths`` that is a Linear-like module."""
    for path in paths:
        mod = submodule(layer, path)
        if mod is not None and hasattr(mod, "in_features") and hasattr(mod, "out_features"):
            return mod
    return None


def standard_taps(layer):
    """Taps of a standard transformer layer, or None when its layout is unknown.

    ``attn_out``: output of the attention output projection; ``head``: its
    input (per-head context, head-major); ``ffn``: input of the second FFN
    linear (after the activation); ``resid``: output of the layer.
    """
    attn = linear_at(layer, ATTN_PROJ_PATHS)
    ffn = linear_at(layer, FFN_PROJ_PATHS)
    if attn is None or ffn is None:
        return None
    return {
        "attn_out": Tap(attn, False, int(attn.out_features)),
        "head": Tap(attn, True, int(attn.in_features)),
        "ffn": Tap(ffn, True, int(ffn.in_features)),
        "resid": Tap(layer, False, int(ffn.out_features)),
    }


def find_layer_list(model):
    """The longest ModuleList of the model whose every item has :func:`standard_taps`."""
    import torch.nn as nn

    best = None
    for name, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod):
            taps = [standard_taps(layer) for layer in mod]
            if all(t is not None for t in taps) and (best is None or len(taps) > len(best[1])):
                best = (name, taps)
    if best is None:
        raise ValueError(
            f"cannot find the transformer layers of {type(model).__name__}: no ModuleList whose "
            f"layers have an attention output projection ({', '.join(ATTN_PROJ_PATHS)}) and a "
            f"second FFN linear ({', '.join(FFN_PROJ_PATHS)}); this architecture is not "
            "supported by the generic adapter"
        )
    return best[1]


def is_local_path(pretrained):
    """True for an existing directory; raise for a path-looking string that does not exist."""
    text = os.fspath(pretrained)
    if os.path.isdir(text):
        return True
    if os.path.isfile(text):
        raise ValueError(
            f"pretrained={text!r} is a file; point it at the checkpoint folder that holds "
            "config.json and the weights (model.safetensors or pytorch_model.bin)"
        )
    if os.path.isabs(text) or text.startswith((".", "~")) or text.count("/") > 1:
        raise FileNotFoundError(
            f"pretrained={text!r} looks like a local path but no such folder exists; give an "
            "existing checkpoint folder or a Hugging Face model id such as 'bert-base-uncased'"
        )
    return False


def _tensor_bytes(t):
    import torch

    t = t.detach().cpu().contiguous().reshape(-1)
    return t.view(torch.uint8).numpy().tobytes()


class HFAdapterBase(BaseAdapter):
    """Common base of the Hugging Face adapters (not registered itself).

    Subclasses define ``_build_model(params)`` (random weights or pretrained),
    ``_streams(model)`` and ``_run(inputs, streams)``.
    """

    version = "1"
    _EXTRA_DEFAULTS: dict = {}
    _default_attn = "sdpa"

    # -- loading ---------------------------------------------------------
    def _params(self):
        defaults = {**_COMMON_DEFAULTS, **self._EXTRA_DEFAULTS}
        unknown = set(self.model_params) - set(defaults)
        if unknown:
            raise TypeError(
                f"unknown {type(self).__name__} parameters {sorted(unknown)}; "
                f"valid ones are {sorted(defaults)}"
            )
        for key, value in defaults.items():
            self.model_params.setdefault(key, value)
        return self.model_params

    def load(self, **model_params):
        """Build or load the model, tokenizer and image processor; return self."""
        import torch

        self.model_params.update(model_params)
        p = self._params()
        if p["dtype"] not in _DTYPES:
            raise ValueError(f"dtype={p['dtype']!r} is not supported; choose one of {_DTYPES}")
        if p["pretrained"] is None and p["config"] is None:
            raise ValueError(
                f"{type(self).__name__} needs pretrained= (a Hugging Face id or a local checkpoint "
                "folder) or config= (a dict or transformers config, for random weights)"
            )
        if p["pretrained"] is not None and p["config"] is not None:
            raise ValueError(
                "give either pretrained= (weights to load) or config= (random weights), not both"
            )
        model = self._build_model(p)
        model.eval()
        model.to(device=torch.device(p["device"]), dtype=getattr(torch, p["dtype"]))
        self._model = model
        self._stream_specs = {s.name: s for s in self._streams(model)}
        self._tokenizer = self._load_tokenizer(p) if "text" in self.modalities else None
        self._image_processor = self._load_image_processor(p) if "image" in self.modalities else None
        self._hook_baseline = count_module_hooks(model)
        self._digest = None
        self._loaded = True
        return self

    def _attn(self, p):
        return p["attn_implementation"] or self._default_attn

    def _from_source(self, model_cls, make_config, p):
        """Model with random weights from ``config`` or loaded from ``pretrained``.

        ``make_config(dict)`` turns a config dict into a transformers config.
        """
        import torch

        if p["pretrained"] is None:
            cfg = p["config"]
            if isinstance(cfg, dict):
                cfg = make_config(dict(cfg))
            elif not hasattr(cfg, "to_dict"):
                raise TypeError(
                    f"config= must be a dict or a transformers config, got {type(cfg).__name__}"
                )
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(p["seed"]))
                build = getattr(model_cls, "from_config", None) or model_cls._from_config
                return build(cfg, attn_implementation=self._attn(p))
        local = is_local_path(p["pretrained"])
        only = p["local_files_only"] if p["local_files_only"] is not None else local
        # never run the Python code of a model folder or Hub repository (auto_map)
        kwargs = {"local_files_only": bool(only), "attn_implementation": self._attn(p), "trust_remote_code": False}
        if p["revision"] is not None:
            kwargs["revision"] = p["revision"]
        return model_cls.from_pretrained(os.fspath(p["pretrained"]), **kwargs)

    def _source_kwargs(self, source):
        p = self.model_params
        local = os.path.isdir(os.fspath(source))
        only = p["local_files_only"] if p["local_files_only"] is not None else local
        kwargs = {"local_files_only": bool(only), "trust_remote_code": False}
        if p["revision"] is not None and not local:
            kwargs["revision"] = p["revision"]
        return kwargs

    def _load_tokenizer(self, p):
        from transformers import AutoTokenizer

        source = p["tokenizer"] if p["tokenizer"] is not None else p["pretrained"]
        if source is None:
            raise ValueError(
                "random weights from config= come without a tokenizer; pass tokenizer= a local "
                "tokenizer folder (tokenizer.json or vocabulary files), a Hugging Face id, or a "
                "transformers tokenizer object"
            )
        if isinstance(source, (str, os.PathLike)):
            try:
                tok = AutoTokenizer.from_pretrained(os.fspath(source), **self._source_kwargs(source))
            except Exception as exc:  # transformers raises OSError, ValueError, ...
                raise ValueError(
                    f"could not load a tokenizer from {os.fspath(source)!r} ({type(exc).__name__}: "
                    f"{exc}); offline, the folder must hold the tokenizer files (tokenizer.json, or "
                    "vocab.txt / vocab.json + merges.txt); or pass tokenizer= explicitly"
                ) from exc
        else:
            tok = source
        check_tokenizer(tok, source, self._vocab_size())
        return tok

    def _vocab_size(self):
        emb = self._text_model().get_input_embeddings()
        return int(emb.num_embeddings)

    def _text_model(self):
        return self._model

    def _load_image_processor(self, p):
        source = p["image_processor"]
        if source is not None and not isinstance(source, (str, os.PathLike)):
            return source
        from transformers import AutoImageProcessor

        source = source if source is not None else p["pretrained"]
        if source is not None:
            try:
                return AutoImageProcessor.from_pretrained(os.fspath(source), **self._source_kwargs(source))
            except Exception as exc:
                if p["image_processor"] is not None:
                    raise ValueError(
                        f"could not load an image processor from {os.fspath(source)!r}: {exc}"
                    ) from exc
                warnings.warn(
                    f"no image processor config found with {os.fspath(source)!r} ({type(exc).__name__}); "
                    "using the family default built from the model config (check image size "
                    "and normalisation, or pass image_processor=)",
                    UserWarning,
                    stacklevel=3,
                )
        return self._default_image_processor()

    @property
    def model(self):
        """The loaded ``torch.nn.Module`` (eval mode)."""
        self.ensure_loaded()
        return self._model

    @property
    def tokenizer(self):
        """The tokenizer in use (None for image-only models)."""
        self.ensure_loaded()
        return self._tokenizer

    @property
    def image_processor(self):
        """The image processor in use (None for text-only models)."""
        self.ensure_loaded()
        return self._image_processor

    # -- sites -----------------------------------------------------------
    def sites(self):
        """Every :class:`~nilearn_vlm.adapters.Site`, in model order."""
        self.ensure_loaded()
        out = []
        for spec in self._stream_specs.values():
            for layer, taps in enumerate(spec.layers):
                for kind, tap in taps.items():
                    out.append(Site(spec.name, layer, kind, tap.width, spec.modalities, spec.tokens))
        return out

    def active_hooks(self):
        """Hooks this adapter has attached (0 outside :meth:`extract`)."""
        if not getattr(self, "_loaded", False) or not hasattr(self, "_model"):
            return 0
        return count_module_hooks(self._model) - self._hook_baseline

    def weights_digest(self):
        """SHA-256 (first 16 hex digits) of every parameter and buffer of the model."""
        self.ensure_loaded()
        if self._digest is None:
            h = hashlib.sha256()
            for name, t in sorted(self._model.state_dict().items()):
                h.update(name.encode())
                h.update(str(tuple(t.shape)).encode())
                h.update(_tensor_bytes(t))
            self._digest = h.hexdigest()[:16]
        return self._digest

    def preprocessing(self):
        """Tokenizer and image-processor settings (enter the cache key)."""
        self.ensure_loaded()
        out = {}
        if self._tokenizer is not None:
            tok = self._tokenizer
            out["tokenizer"] = {
                "class": type(tok).__name__,
                "name_or_path": str(getattr(tok, "name_or_path", "")),
                "vocab": len(tok),
                "max_length": self._max_length(),
            }
        if self._image_processor is not None:
            proc = self._image_processor
            desc = proc.to_dict() if hasattr(proc, "to_dict") else repr(proc)
            out["image_processor"] = {"class": type(proc).__name__, "settings": desc}
        return out

    # -- inputs ----------------------------------------------------------
    def _max_length(self):
        p = self.model_params
        if p["max_length"] is not None:
            return int(p["max_length"])
        emb = submodule(self._text_model(), "embeddings")
        limit = None
        cfg = getattr(self._text_model(), "config", None)
        if cfg is not None and getattr(cfg, "max_position_embeddings", None):
            limit = int(cfg.max_position_embeddings)
            pad = getattr(emb, "padding_idx", None)
            if pad is not None and hasattr(emb, "position_embeddings"):
                limit -= int(pad) + 1  # RoBERTa-style positions start after padding_idx
        tok_max = getattr(self._tokenizer, "model_max_length", None)
        if tok_max is not None and tok_max < 1_000_000:
            limit = tok_max if limit is None else min(limit, int(tok_max))
        return limit or 512

    def _encode_texts(self, texts):
        import torch

        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text {i} is {type(t).__name__}, expected str")
        # right padding: token 0 is the first real token (CLS/<s>) whatever the tokenizer's default
        enc = self._tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self._max_length(),
            padding_side="right",
            return_tensors="pt",
        )
        device = torch.device(self.model_params["device"])
        enc = {k: v.to(device) for k, v in enc.items()}
        if "attention_mask" not in enc:
            enc["attention_mask"] = torch.ones_like(enc["input_ids"])
        return enc

    def _encode_images(self, images):
        import torch

        rgb = []
        for i, img in enumerate(images):
            if not hasattr(img, "convert"):
                raise TypeError(f"image {i} is {type(img).__name__}, expected a PIL image")
            rgb.append(img.convert("RGB"))
        pixels = self._image_processor(images=rgb, return_tensors="pt")["pixel_values"]
        p = self.model_params
        return pixels.to(device=torch.device(p["device"]), dtype=getattr(torch, p["dtype"]))

    def _prepare(self, batch):
        """Model inputs and per-stream valid-token masks (torch bool or None)."""
        inputs, masks = {}, {}
        if batch.texts is not None and self._tokenizer is not None:
            enc = self._encode_texts(batch.texts)
            inputs["text"] = enc
            text_mask = enc["attention_mask"].bool()
        else:
            text_mask = None
        if batch.images is not None and self._image_processor is not None:
            inputs["pixel_values"] = self._encode_images(batch.images)
        for spec in self._stream_specs.values():
            if all(m in batch.modalities for m in spec.modalities):
                masks[spec.name] = text_mask if spec.mask_of == "text" else None
        return inputs, masks

    def _complete(self, batch, streams=None):
        """Hook for paired adapters to fill missing modalities.

        ``streams`` are the streams an extraction needs (None: token masks only).
        """
        return batch

    def token_masks(self, batch):
        """Valid-token masks per stream as numpy bool arrays (None: all valid)."""
        self.ensure_loaded()
        if not isinstance(batch, Batch):
            raise TypeError(f"token_masks expects a nilearn_vlm.adapters.Batch, got {type(batch).__name__}")
        _, masks = self._prepare(self._complete(batch))
        return {k: None if v is None else v.cpu().numpy() for k, v in masks.items()}

    @staticmethod
    def _call(module, kwargs):
        """Call ``module`` with the keyword arguments its forward accepts."""
        accepted = inspect.signature(module.forward).parameters
        return module(**{k: v for k, v in kwargs.items() if k in accepted})

    # -- extraction ------------------------------------------------------
    def extract(self, batch, sites, pooling="mean"):
        """Extract pooled unit activations (see :meth:`BaseAdapter.extract`)."""
        import torch

        self.ensure_loaded()
        chosen, rules = self._check_request(batch, sites, pooling)
        for stream, rule in rules.items():
            if rule == "eot" and self._stream_specs[stream].modalities == ("image",):
                raise ValueError(
                    f"'eot' pooling takes the end-of-text token and does not apply to the image "
                    f"stream {stream!r}; use 'cls', 'mean' or 'max' there (a dict pooling "
                    "{'vision': 'cls', 'text': 'eot'} sets one rule per stream)"
                )
        batch = self._complete(batch, {s.stream for s in chosen})
        inputs, masks = self._prepare(batch)
        points, masks_of = {}, {}
        for site in chosen:
            spec = self._stream_specs[site.stream]
            tap = spec.layers[site.layer][site.kind]
            points[site.name] = CapturePoint(tap.module, pre=tap.pre, seq_first=spec.seq_first)
            masks_of[site.name] = masks[site.stream]
        pooling_of = {s.name: rules[s.stream] for s in chosen}
        # every requested site read: the rest of the forward pass is skipped
        with capture(points, pooling_of, masks_of, stop_early=True) as captured, torch.inference_mode():
            self._run(inputs, {s.stream for s in chosen})
        return captured.arrays()


def check_tokenizer(tok, source, vocab_size):
    """Raise a clear error for an empty or mismatched tokenizer.

    transformers builds a tokenizer with only its special tokens when the
    vocabulary files are missing (offline, from a folder holding only a
    model); every word then maps to the unknown token.
    """
    where = os.fspath(source) if isinstance(source, (str, os.PathLike)) else type(source).__name__
    if not callable(tok):
        raise TypeError(f"tokenizer= must be a transformers tokenizer or a folder, got {where}")
    n = len(tok)
    ids = tok("the a of and is", add_special_tokens=False)["input_ids"]
    unk = getattr(tok, "unk_token_id", None)
    if n == 0 or not ids or (unk is not None and all(i == unk for i in ids)):
        raise ValueError(
            f"the tokenizer from {where} is empty or broken: it has {n} tokens and maps plain "
            "words to the unknown token; its vocabulary files are probably missing (offline, "
            "transformers then builds a tokenizer with special tokens only). Pass tokenizer= a "
            "folder holding tokenizer.json or vocab.txt / vocab.json + merges.txt"
        )
    if n > vocab_size:
        raise ValueError(
            f"the tokenizer from {where} has {n} tokens but the model's embedding has only "
            f"{vocab_size} rows; the tokenizer does not belong to this model"
        )
