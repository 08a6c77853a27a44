"""transformers (Hugging Face) backend of the CLIP adapter."""

from __future__ import annotations

import os

import torch

from nilearn_vlm.adapters import CapturePoint
from nilearn_vlm_clip._hooks import first
from nilearn_vlm_clip._open_clip import _to_rgb

#: A working CLIP BPE tokenizer has at least the 256 byte symbols.
_MIN_VOCAB = 256


def load_state_dict_file(path):
    """State dict from a ``.safetensors`` file or a ``torch.save`` file."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(str(path))
    sd = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    return sd


def load_clip_tokenizer(source):
    """``CLIPTokenizer.from_pretrained(source)``, refusing an empty tokenizer.

    Offline, or pointed at a folder without ``vocab.json``/``merges.txt``/
    ``tokenizer.json``, transformers can return a CLIPTokenizer holding only
    its special tokens, which maps every word to the unknown token; this
    raises instead.
    """
    from transformers import CLIPTokenizer

    try:
        tok = CLIPTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"could not load a CLIP tokenizer from {source!r} ({exc}); pass tokenizer=<folder with "
            "tokenizer.json, or vocab.json and merges.txt> or an HF id available offline"
        ) from exc
    n = len(tok)
    if n < _MIN_VOCAB:
        raise ValueError(
            f"the CLIP tokenizer loaded from {source!r} is empty ({n} tokens): transformers "
            "silently builds an empty CLIPTokenizer when the vocabulary files are missing (e.g. "
            "offline without a cached copy). Pass tokenizer=<folder with tokenizer.json, or "
            "vocab.json and merges.txt> or an HF id available offline."
        )
    return tok


class TransformersBackend:
    """CLIP through ``transformers.CLIPModel``.

    Parameters
    ----------
    hf_id : str or None
        HF model id or local folder (``config.json`` + weights). None builds
        ``CLIPModel(CLIPConfig(**model_cfg))`` with random weights.
    pretrained : str or None
        A state-dict file (``torch.save`` or ``.safetensors``) loaded into the
        model built from ``hf_id``'s config or ``model_cfg``.
    model_cfg : dict or None
        Keyword arguments of ``transformers.CLIPConfig`` (``text_config``,
        ``vision_config``, ``projection_dim``), for random weights.
    tokenizer : str or None
        Tokenizer source (HF id or folder); defaults to ``hf_id``.
    seed : int
    device : str
    """

    name = "transformers"

    def __init__(self, hf_id, pretrained, model_cfg, tokenizer, seed, device):
        from transformers import CLIPConfig, CLIPModel

        if pretrained is not None and not os.path.isfile(str(pretrained)):
            raise ValueError(
                f"with backend='transformers', pretrained must be None or a state-dict file; "
                f"{pretrained!r} is not a file (give HF ids or folders as hf_id=)"
            )
        if hf_id is not None and model_cfg:
            raise ValueError("model_cfg builds a random-weight model; drop it or drop hf_id")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if hf_id is None or pretrained is not None:
                config = CLIPConfig(**(model_cfg or {})) if hf_id is None else CLIPConfig.from_pretrained(hf_id)
                model = CLIPModel(config)
            else:
                model = CLIPModel.from_pretrained(hf_id)
        if pretrained is not None:
            model.load_state_dict(load_state_dict_file(pretrained), strict=True)
        self.model = model.to(device).eval()
        self.hf_id = hf_id
        source = tokenizer if tokenizer is not None else hf_id
        if source is None:
            raise ValueError(
                "backend='transformers' with random weights needs tokenizer=<HF id or folder with "
                "tokenizer.json, or vocab.json and merges.txt>"
            )
        self.tokenizer = load_clip_tokenizer(source)
        vocab = self.model.config.text_config.vocab_size
        top = max(self.tokenizer.get_vocab().values())
        if top >= vocab:
            raise ValueError(
                f"the tokenizer from {source!r} has ids up to {top} but the text model's vocab_size "
                f"is {vocab}; use the model's own tokenizer (or a config with vocab_size > {top})"
            )
        self.image_processor = self._image_processor(hf_id)
        self.towers = {"vision": self.model.vision_model.encoder, "text": self.model.text_model.encoder}

    def _image_processor(self, hf_id):
        from transformers import CLIPImageProcessor

        if hf_id is not None:
            try:
                return CLIPImageProcessor.from_pretrained(hf_id)
            except (OSError, ValueError):
                pass
        size = self.model.config.vision_config.image_size
        # the OpenAI CLIP recipe: resize the short side (bicubic), centre crop, normalise
        return CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})

    # -- structure -------------------------------------------------------
    def layers(self, stream):
        return list(self.towers[stream].layers)

    def widths(self, stream):
        layer = self.towers[stream].layers[0]
        d = layer.self_attn.embed_dim
        return {"attn_out": d, "head": d, "ffn": layer.mlp.fc1.out_features, "resid": d}

    def n_heads(self, stream):
        return self.towers[stream].layers[0].self_attn.num_heads

    def token_description(self, stream):
        if stream == "vision":
            return f"CLS + {self.model.vision_model.embeddings.num_patches} patch tokens"
        return "SOT..EOT (attention_mask); padding excluded"

    def capture_point(self, stream, layer, kind):
        block = self.towers[stream].layers[layer]
        if kind == "attn_out":
            return CapturePoint(block.self_attn, False, lambda m, a, k, o: first(o))
        if kind == "head":
            # out_proj is a plain nn.Linear called as a module: its input is the heads
            return CapturePoint(block.self_attn.out_proj, True, lambda m, a, k, o: a[0] if a else k["input"])
        if kind == "ffn":
            return CapturePoint(block.mlp.fc2, True, lambda m, a, k, o: a[0] if a else k["input"])
        if kind == "resid":
            return CapturePoint(block, False, lambda m, a, k, o: first(o))
        raise ValueError(f"unknown unit kind {kind!r}")

    # -- inputs ----------------------------------------------------------
    def prepare(self, stream, batch, device):
        if stream == "vision":
            pixels = self.image_processor(images=[_to_rgb(i) for i in batch.images], return_tensors="pt")
            return pixels["pixel_values"].to(device), None
        enc = self.tokenizer(
            list(map(str, batch.texts)),
            padding=True,
            truncation=True,
            max_length=self.model.config.text_config.max_position_embeddings,
            return_tensors="pt",
        )
        mask = enc["attention_mask"].to(device)
        return (enc["input_ids"].to(device), mask), mask.bool()

    def forward(self, stream, inputs, mask):
        if stream == "vision":
            return self.model.vision_model(pixel_values=inputs)
        ids, attention_mask = inputs
        return self.model.text_model(input_ids=ids, attention_mask=attention_mask)

    # -- final embeddings --------------------------------------------------
    def project(self, stream, pooled):
        if stream == "vision":
            return self.model.visual_projection(self.model.vision_model.post_layernorm(pooled))
        return self.model.text_projection(self.model.text_model.final_layer_norm(pooled))

    def preprocessing(self):
        proc = self.image_processor
        return {
            "backend": "transformers",
            "image": {
                "size": dict(proc.size) if proc.size is not None else None,
                "crop_size": dict(proc.crop_size) if getattr(proc, "crop_size", None) is not None else None,
                "mean": list(proc.image_mean),
                "std": list(proc.image_std),
                "resample": str(proc.resample),
            },
            "tokenizer": {
                "class": type(self.tokenizer).__name__,
                "vocab_size": len(self.tokenizer),
                "max_length": int(self.model.config.text_config.max_position_embeddings),
            },
        }
