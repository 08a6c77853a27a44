"""open_clip backend of the CLIP adapter."""

from __future__ import annotations

import copy
import difflib
import logging
import os

import numpy as np
import torch

from nilearn_vlm.adapters import CapturePoint
from nilearn_vlm_clip._hooks import first, mha_heads, to_batch_first


class _RandomWeightsNote(logging.Filter):
    """Drops open_clip's "No pretrained weights loaded" warning when random weights were asked for."""

    def filter(self, record):
        return "No pretrained weights loaded" not in record.getMessage()


def _deep_merge(base, override):
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _to_rgb(img):
    from PIL import Image

    if isinstance(img, np.ndarray):
        img = Image.fromarray(np.asarray(img, dtype=np.uint8))
    return img.convert("RGB")


class OpenClipBackend:
    """CLIP through open_clip: ``CLIP`` or ``CustomTextCLIP`` with ViT towers.

    Parameters
    ----------
    arch : str
        open_clip model name (``open_clip.list_models()``), or an
        ``hf-hub:``/``local-dir:`` identifier that open_clip resolves itself.
    pretrained : str or None
        open_clip tag, checkpoint file, or None for random weights.
    model_cfg : dict or None
        Deep-merged into the built-in config of ``arch`` (top-level keys
        ``embed_dim``, ``vision_cfg``, ``text_cfg``, ``quick_gelu``, ...).
    seed : int
        Seed of the random initialisation.
    device : str
    """

    name = "open_clip"

    def __init__(self, arch, pretrained, model_cfg, seed, device):
        import open_clip
        from open_clip.transformer import ResidualAttentionBlock, VisionTransformer

        self.arch = arch
        schema = arch.startswith(("hf-hub:", "local-dir:"))
        overrides = {}
        if not schema:
            name = arch.replace("/", "-")
            base = open_clip.get_model_config(name)
            if base is None:
                close = difflib.get_close_matches(name, open_clip.list_models(), n=3)
                hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
                raise ValueError(
                    f"unknown open_clip arch {arch!r}.{hint} See open_clip.list_models() "
                    "(for example 'ViT-B-32', 'ViT-B-16', 'ViT-B-32-quickgelu')."
                )
            if model_cfg:
                merged = _deep_merge(base, model_cfg)
                overrides = {key: merged[key] for key in model_cfg}
            if pretrained is not None and not os.path.isfile(str(pretrained)):
                tags = open_clip.list_pretrained_tags_by_model(name)
                if pretrained not in tags:
                    raise ValueError(
                        f"pretrained={pretrained!r} is neither an existing checkpoint file nor an "
                        f"open_clip tag of {arch!r} (tags: {tags}); pass a tag, a file path, or "
                        "None for random weights"
                    )
        elif model_cfg:
            raise ValueError("model_cfg applies to built-in arch names, not to hf-hub:/local-dir: models")
        random_weights = _RandomWeightsNote() if pretrained is None else None
        if random_weights is not None:  # asked for: open_clip's warning says nothing new
            logging.getLogger().addFilter(random_weights)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            try:
                model, _, preprocess = open_clip.create_model_and_transforms(
                    arch, pretrained=pretrained, device=device, pretrained_text=False, **overrides
                )
            except RuntimeError as exc:
                if pretrained is not None and "download" in str(exc).lower():
                    raise RuntimeError(
                        f"could not fetch open_clip weights {pretrained!r} for {arch!r} ({exc}). "
                        "Without network access, download the checkpoint elsewhere and pass "
                        "pretrained=<path to the .pt/.bin/.safetensors file>."
                    ) from exc
                raise
            finally:
                if random_weights is not None:
                    logging.getLogger().removeFilter(random_weights)
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(arch, context_length=self._text().context_length)

        visual = self.model.visual
        if not isinstance(visual, VisionTransformer):
            raise ValueError(
                f"arch {arch!r} has a {type(visual).__name__} image tower; the clip adapter needs an "
                "open_clip ViT tower (e.g. 'ViT-B-32', 'ViT-B-16', 'ViT-L-14')"
            )
        text = self._text()
        if not hasattr(text, "transformer") or getattr(text, "cls_emb", None) is not None:
            raise ValueError(
                f"arch {arch!r} has a text tower the clip adapter does not support "
                f"({type(text).__name__}); use a CLIP arch with open_clip's own text transformer"
            )
        self.towers = {"vision": visual.transformer, "text": text.transformer}
        for stream, tower in self.towers.items():
            bad = [type(b).__name__ for b in tower.resblocks if not isinstance(b, ResidualAttentionBlock)]
            if bad:
                raise ValueError(
                    f"arch {arch!r} uses {bad[0]} blocks in its {stream} tower (qk-norm, scaled "
                    "cosine attention, ...); the clip adapter supports open_clip's "
                    "ResidualAttentionBlock (standard CLIP)"
                )

    def _text(self):
        return self.model.text if hasattr(self.model, "text") else self.model

    # -- structure -------------------------------------------------------
    def layers(self, stream):
        return list(self.towers[stream].resblocks)

    def widths(self, stream):
        block = self.towers[stream].resblocks[0]
        d = block.attn.embed_dim
        return {"attn_out": d, "head": d, "ffn": block.mlp.c_fc.out_features, "resid": d}

    def n_heads(self, stream):
        return self.towers[stream].resblocks[0].attn.num_heads

    def token_description(self, stream):
        if stream == "vision":
            grid = self.model.visual.grid_size
            return f"CLS + {grid[0] * grid[1]} patch tokens"
        return f"SOT..EOT of {self._text().context_length} positions; padding excluded"

    def capture_point(self, stream, layer, kind):
        block = self.towers[stream].resblocks[layer]
        bf = getattr(self.towers[stream], "batch_first", True)
        if kind == "attn_out":
            # ls_1 (LayerScale or Identity) returns what is added to the residual
            return CapturePoint(block.ls_1, False, lambda m, a, k, o: to_batch_first(first(o), bf))
        if kind == "head":
            # fused MHA never calls out_proj as a module: recompute from its inputs
            return CapturePoint(block.attn, True, lambda m, a, k, o: mha_heads(m, a, k))
        if kind == "ffn":
            return CapturePoint(block.mlp.c_proj, True, lambda m, a, k, o: to_batch_first(a[0], bf))
        if kind == "resid":
            return CapturePoint(block, False, lambda m, a, k, o: to_batch_first(first(o), bf))
        raise ValueError(f"unknown unit kind {kind!r}")

    # -- inputs ----------------------------------------------------------
    def prepare(self, stream, batch, device):
        if stream == "vision":
            pixels = torch.stack([self.preprocess(_to_rgb(img)) for img in batch.images])
            return pixels.to(device), None
        ids = self.tokenizer(list(map(str, batch.texts))).to(device)
        return ids, self._text_mask(ids)

    def _text_mask(self, ids):
        """Valid tokens: from SOT through the first EOT (positional: id 0 is also '!')."""
        eot = getattr(self.tokenizer, "eot_token_id", None)
        if eot is not None and bool((ids == eot).any(dim=1).all()):
            last = (ids == eot).int().argmax(dim=1)
        else:
            last = ids.argmax(dim=1)
        pos = torch.arange(ids.shape[1], device=ids.device)
        return pos[None, :] <= last[:, None]

    def forward(self, stream, inputs, mask):
        if stream == "vision":
            return self.model.encode_image(inputs)
        return self.model.encode_text(inputs)

    # -- final embeddings --------------------------------------------------
    def project(self, stream, pooled):
        """CLIP embedding from the last residual stream at CLS (vision) or EOT (text)."""
        if stream == "vision":
            visual = self.model.visual
            if visual.attn_pool is not None or visual.pool_type != "tok":
                raise NotImplementedError(
                    f"embed() supports CLS-pooled vision towers; {self.arch!r} pools with "
                    f"{visual.pool_type!r}/attentional pooling"
                )
            x = visual.ln_post(pooled)
            return x @ visual.proj if visual.proj is not None else x
        text = self._text()
        x = text.ln_final(pooled)
        proj = text.text_projection
        if proj is None:
            return x
        return proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj

    def preprocessing(self):
        cfg = dict(getattr(self.model.visual, "preprocess_cfg", {}) or {})
        return {
            "backend": "open_clip",
            "image": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
            "tokenizer": {
                "class": type(self.tokenizer).__name__,
                "context_length": int(self._text().context_length),
                "vocab_size": int(getattr(self.tokenizer, "vocab_size", 0) or 0),
            },
        }
