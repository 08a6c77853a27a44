"""METER's CLIP vision tower in plain torch.

Module and parameter names are those of METER's ``clip_model.py`` (and of
OpenAI CLIP / open_clip), so the official ``vit_model.visual.*`` weights load
unchanged. Differences from a full CLIP visual encoder, as in METER: the
transformer has ``layers`` blocks (11 for the released models, the 12th CLIP
block being dropped), ``ln_post`` is applied to every token and there is no
output projection.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 (CLIP's), eps 1e-5."""

    def forward(self, x):
        orig = x.dtype
        return super().forward(x.to(torch.float32)).to(orig)


class QuickGELU(nn.Module):
    """CLIP's activation, ``x * sigmoid(1.702 x)``."""

    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class MultiheadSelfAttention(nn.Module):
    """Self-attention with ``nn.MultiheadAttention``'s parameter names.

    ``in_proj_weight``/``in_proj_bias`` stack the query, key and value
    projections; ``out_proj`` is a Linear that is called as a module, so
    forward hooks on it fire (they never do on ``nn.MultiheadAttention``).
    Input and output are batch-first (B, L, D).
    """

    def __init__(self, width, heads):
        super().__init__()
        if width % heads:
            raise ValueError(f"vision width {width} must be a multiple of the number of heads {heads}")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x):
        n, length, width = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        dh = width // self.heads
        q, k, v = (t.reshape(n, length, self.heads, dh).transpose(1, 2) for t in (q, k, v))
        ctx = F.scaled_dot_product_attention(q, k, v)
        ctx = ctx.transpose(1, 2).reshape(n, length, width)
        return self.out_proj(ctx)


class ResidualAttentionBlock(nn.Module):
    """Pre-LN CLIP block: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``."""

    def __init__(self, width, heads, mlp_width):
        super().__init__()
        self.attn = MultiheadSelfAttention(width, heads)
        self.ln_1 = LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                [
                    ("c_fc", nn.Linear(width, mlp_width)),
                    ("gelu", QuickGELU()),
                    ("c_proj", nn.Linear(mlp_width, width)),
                ]
            )
        )
        self.ln_2 = LayerNorm(width)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """A stack of :class:`ResidualAttentionBlock` under ``resblocks``."""

    def __init__(self, width, layers, heads, mlp_width):
        super().__init__()
        self.resblocks = nn.ModuleList(
            [ResidualAttentionBlock(width, heads, mlp_width) for _ in range(layers)]
        )

    def forward(self, x):
        for block in self.resblocks:
            x = block(x)
        return x


class VisualTransformer(nn.Module):
    """CLIP ViT as METER uses it: tokens out, ``ln_post`` on all of them.

    Parameters
    ----------
    image_size, patch_size, width, layers, heads, mlp_width : int
        Architecture; METER CLIP-16: 288 (or 224/384), 16, 768, 11, 12, 3072.
    """

    def __init__(self, image_size, patch_size, width, layers, heads, mlp_width):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(
                f"image_size {image_size} must be a multiple of patch_size {patch_size}"
            )
        self.image_size = image_size
        self.patch_size = patch_size
        grid = image_size // patch_size
        scale = width**-0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, mlp_width)
        self.ln_post = LayerNorm(width)

    def forward(self, pixels):
        """(B, 3, R, R) normalised pixels -> (B, 1 + (R/p)^2, width) tokens."""
        x = self.conv1(pixels.to(self.conv1.weight.dtype))
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1)
        if x.shape[1] != self.positional_embedding.shape[0]:
            raise ValueError(
                f"images give {x.shape[1]} tokens but the position embedding has "
                f"{self.positional_embedding.shape[0]} rows; feed {self.image_size}x"
                f"{self.image_size} images"
            )
        x = x + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        x = self.transformer(x)
        return self.ln_post(x)


class CLIPVisionHolder(nn.Module):
    """Container named ``vit_model`` in METER, holding ``visual``."""

    def __init__(self, visual):
        super().__init__()
        self.visual = visual

    def forward(self, pixels):
        return self.visual(pixels)


def resize_positional_embedding(pos, grid_after):
    """Resize a CLIP position embedding to a new square grid as METER does.

    METER's ``adapt_position_encoding``: the class token row is kept, the
    patch rows are reshaped to their square grid and interpolated bicubically
    (``align_corners=False``, no antialiasing).

    Parameters
    ----------
    pos : torch.Tensor of shape (1 + g*g, width)
    grid_after : int
        New grid side (image size / patch size).

    Returns
    -------
    torch.Tensor of shape (1 + grid_after**2, width)
    """
    n_patch = pos.shape[0] - 1
    grid_before = int(round(n_patch**0.5))
    if grid_before * grid_before != n_patch:
        raise ValueError(f"position embedding with {pos.shape[0]} rows is not 1 + a square grid")
    if grid_before == grid_after:
        return pos
    width = pos.shape[1]
    patches = pos[1:].reshape(grid_before, grid_before, width).permute(2, 0, 1).unsqueeze(0)
    patches = F.interpolate(
        patches.float(), size=(grid_after, grid_after), mode="bicubic", align_corners=False
    ).to(pos.dtype)
    patches = patches.squeeze(0).permute(1, 2, 0).reshape(-1, width)
    return torch.cat([pos[:1], patches], dim=0)
