"""The METER model (CLIP-ViT vision tower + RoBERTa + co-attention fusion).

Module names follow the official code (``meter/modules/meter_module.py``), so
an official ``state_dict`` maps onto :class:`METER` key for key (see
:mod:`nilearn_vlm_meter.checkpoint`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from nilearn_vlm_meter._fusion import (
    FUSION_LN_EPS,
    BertCrossLayer,
    ITMHead,
    Pooler,
    extended_mask,
)
from nilearn_vlm_meter._vision import CLIPVisionHolder, VisualTransformer


@dataclass
class METERConfig:
    """Architecture of a METER model (defaults: the released CLIP-16/RoBERTa models).

    Parameters
    ----------
    image_size : int, default=288
        Input resolution (released checkpoints: 224 or 288 pretraining, 288,
        384 or 576 fine-tuning); a multiple of ``patch_size``.
    patch_size : int, default=16
    vision_width, vision_layers, vision_heads, vision_mlp_width : int
        CLIP ViT: 768, 11, 12, 3072.
    text_width, text_layers, text_heads, text_intermediate : int
        RoBERTa-base: 768, 12, 12, 3072.
    vocab_size : int, default=50265
    max_position_embeddings : int, default=514
        RoBERTa position table (positions start at 2).
    hidden_size, num_top_layer, num_heads, fusion_intermediate : int
        Fusion layers: 768, 6, 12, 3072.
    num_token_types : int, default=2
        Rows of ``token_type_embeddings`` (3 for NLVR2 checkpoints).
    """

    image_size: int = 288
    patch_size: int = 16
    vision_width: int = 768
    vision_layers: int = 11
    vision_heads: int = 12
    vision_mlp_width: int = 3072
    text_width: int = 768
    text_layers: int = 12
    text_heads: int = 12
    text_intermediate: int = 3072
    vocab_size: int = 50265
    max_position_embeddings: int = 514
    hidden_size: int = 768
    num_top_layer: int = 6
    num_heads: int = 12
    fusion_intermediate: int = 3072
    num_token_types: int = 2

    def to_dict(self):
        """The configuration as a plain dict."""
        return asdict(self)

    @property
    def n_image_tokens(self):
        """Tokens of the image streams: CLS + (image_size / patch_size)^2."""
        return (self.image_size // self.patch_size) ** 2 + 1


def _roberta(config):
    from transformers import RobertaConfig, RobertaModel

    rc = RobertaConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.text_width,
        num_hidden_layers=config.text_layers,
        num_attention_heads=config.text_heads,
        intermediate_size=config.text_intermediate,
        max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        hidden_act="gelu",
    )
    return RobertaModel(rc, add_pooling_layer=True)


class METER(nn.Module):
    """METER (Dou et al., CVPR 2022) in plain torch, with official module names.

    Parameters
    ----------
    config : METERConfig, optional
        Architecture; the released CLIP-16/RoBERTa model by default.

    Attributes
    ----------
    vit_model.visual : VisualTransformer
        CLIP ViT with ``vision_layers`` blocks, ``ln_post`` on all tokens.
    text_transformer : transformers.RobertaModel
    cross_modal_text_transform, cross_modal_image_transform : nn.Linear
    token_type_embeddings : nn.Embedding
    cross_modal_text_layers, cross_modal_image_layers : nn.ModuleList of BertCrossLayer
    cross_modal_text_pooler, cross_modal_image_pooler : Pooler
    itm_score : ITMHead

    Examples
    --------
    >>> import torch
    >>> cfg = METERConfig(image_size=32, patch_size=16, vision_width=16, vision_layers=1,
    ...                   vision_heads=2, vision_mlp_width=32, text_width=16, text_layers=1,
    ...                   text_heads=2, text_intermediate=32, vocab_size=50,
    ...                   max_position_embeddings=20, hidden_size=16, num_top_layer=1,
    ...                   num_heads=2, fusion_intermediate=32)
    >>> model = METER(cfg).eval()
    >>> ids = torch.tensor([[0, 5, 6, 2, 1]]); mask = (ids != 1).long()
    >>> out = model(torch.zeros(1, 3, 32, 32), ids, mask)
    >>> tuple(out["image_feats"].shape), tuple(out["cls_feats"].shape)
    ((1, 5, 16), (1, 32))
    """

    def __init__(self, config=None):
        super().__init__()
        config = METERConfig() if config is None else config
        self.config = config
        self.vit_model = CLIPVisionHolder(
            VisualTransformer(
                config.image_size,
                config.patch_size,
                config.vision_width,
                config.vision_layers,
                config.vision_heads,
                config.vision_mlp_width,
            )
        )
        self.text_transformer = _roberta(config)
        h = config.hidden_size
        self.cross_modal_text_transform = nn.Linear(config.text_width, h)
        self.cross_modal_image_transform = nn.Linear(config.vision_width, h)
        self.token_type_embeddings = nn.Embedding(config.num_token_types, h)
        self.cross_modal_image_layers = nn.ModuleList(
            [
                BertCrossLayer(h, config.num_heads, config.fusion_intermediate, FUSION_LN_EPS)
                for _ in range(config.num_top_layer)
            ]
        )
        self.cross_modal_text_layers = nn.ModuleList(
            [
                BertCrossLayer(h, config.num_heads, config.fusion_intermediate, FUSION_LN_EPS)
                for _ in range(config.num_top_layer)
            ]
        )
        self.cross_modal_image_pooler = Pooler(h)
        self.cross_modal_text_pooler = Pooler(h)
        self.itm_score = ITMHead(h)
        self._init_fusion()

    def _init_fusion(self):
        # METER's objectives.init_weights: normal(0, 0.02), zero bias, LN 1/0
        for name, module in self.named_modules():
            if name.startswith(("vit_model", "text_transformer")):
                continue
            if isinstance(module, (nn.Linear, nn.Embedding)):
                module.weight.data.normal_(mean=0.0, std=0.02)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    module.bias.data.zero_()
            elif isinstance(module, nn.LayerNorm):
                module.weight.data.fill_(1.0)
                module.bias.data.zero_()

    # -- streams ---------------------------------------------------------
    def encode_image(self, pixels):
        """CLIP tokens after ``ln_post``: (B, n_image_tokens, vision_width)."""
        return self.vit_model(pixels)

    def encode_text(self, input_ids, attention_mask):
        """RoBERTa last hidden states: (B, Lt, text_width)."""
        out = self.text_transformer(input_ids=input_ids, attention_mask=attention_mask)
        return out.last_hidden_state

    def fuse(self, text_embeds, image_embeds, text_mask, image_token_type=1):
        """Co-attention fusion of encoder outputs.

        Both streams of layer ``i`` read the outputs of layer ``i - 1``.

        Returns
        -------
        text_feats, image_feats : torch.Tensor
        """
        x = self.cross_modal_text_transform(text_embeds)
        y = self.cross_modal_image_transform(image_embeds)
        x = x + self.token_type_embeddings(torch.zeros_like(text_mask, dtype=torch.long))
        image_types = torch.full(y.shape[:2], image_token_type, dtype=torch.long, device=y.device)
        y = y + self.token_type_embeddings(image_types)
        ext_t = extended_mask(text_mask, x.dtype)
        ext_v = extended_mask(torch.ones(y.shape[:2], device=y.device), y.dtype)
        for text_layer, image_layer in zip(self.cross_modal_text_layers, self.cross_modal_image_layers):
            x1 = text_layer(x, y, ext_t, ext_v)
            y1 = image_layer(y, x, ext_v, ext_t)
            x, y = x1, y1
        return x, y

    def forward(self, pixels, input_ids, attention_mask):
        """METER's ``infer``: features, pooled CLS features and ITM logits.

        Returns
        -------
        dict
            ``text_feats`` (B, Lt, h), ``image_feats`` (B, Li, h),
            ``cls_feats`` (B, 2h), ``itm_logits`` (B, 2).
        """
        text = self.encode_text(input_ids, attention_mask)
        image = self.encode_image(pixels)
        x, y = self.fuse(text, image, attention_mask)
        cls_feats = torch.cat([self.cross_modal_text_pooler(x), self.cross_modal_image_pooler(y)], dim=-1)
        return {
            "text_feats": x,
            "image_feats": y,
            "cls_feats": cls_feats,
            "itm_logits": self.itm_score(cls_feats),
        }


def build_meter(config, seed=0, device=None):
    """Build a METER model with random weights, reproducibly, in eval mode.

    The global torch random state is left untouched. ``device="meta"``
    builds it without memory or initialisation (to load a checkpoint into
    with :func:`~nilearn_vlm_meter.checkpoint.load_meter_state_dict`).
    """
    if device is not None and torch.device(device).type == "meta":
        with torch.device("meta"):
            return METER(config).eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = METER(config)
    return model.eval() if device is None else model.to(device).eval()
