"""METER's co-attention fusion layer (``BertCrossLayer``), poolers and ITM head.

Plain torch with the attribute names of METER's ``bert_model.py`` (which are
those of BERT in transformers 4.6), so ``cross_modal_{text,image}_layers.*``
weights load unchanged. Post-LN BERT layers with LayerNorm eps 1e-12 (the
``BertConfig`` default that METER keeps) and exact (erf) GELU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: LayerNorm eps of METER's fusion layers (BertConfig default).
FUSION_LN_EPS = 1e-12

#: Additive mask value of transformers 4.6 (what METER used).
MASK_VALUE = -10000.0


def extended_mask(mask, dtype=torch.float32):
    """(B, L) 1/0 mask -> additive (B, 1, 1, L) mask with 0 / -10000."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * MASK_VALUE


class BertSelfAttention(nn.Module):
    """Multi-head attention; keys and values from ``context`` when given."""

    def __init__(self, hidden_size, num_heads):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} must be a multiple of num_heads {num_heads}")
        self.num_heads = num_heads
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(0.1)

    def _split(self, x):
        n, length, width = x.shape
        return x.reshape(n, length, self.num_heads, width // self.num_heads).transpose(1, 2)

    def forward(self, hidden, add_mask=None, context=None):
        context = hidden if context is None else context
        q, k, v = self._split(self.query(hidden)), self._split(self.key(context)), self._split(self.value(context))
        scores = q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5)
        if add_mask is not None:
            scores = scores + add_mask.to(scores.dtype)
        probs = self.dropout(scores.softmax(dim=-1))
        ctx = (probs @ v).transpose(1, 2)
        return ctx.reshape(ctx.shape[0], ctx.shape[1], -1)


class BertSelfOutput(nn.Module):
    """``LayerNorm(dropout(dense(h)) + residual)``."""

    def __init__(self, hidden_size, eps=FUSION_LN_EPS):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)
        self.dropout = nn.Dropout(0.1)

    def forward(self, hidden, residual):
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class BertAttention(nn.Module):
    """Attention block: ``self`` (attention) and ``output`` (projection, add, LN)."""

    def __init__(self, hidden_size, num_heads, eps=FUSION_LN_EPS):
        super().__init__()
        self.self = BertSelfAttention(hidden_size, num_heads)
        self.output = BertSelfOutput(hidden_size, eps)

    def forward(self, hidden, add_mask=None, context=None, context_mask=None):
        if context is None:
            ctx = self.self(hidden, add_mask)
        else:
            ctx = self.self(hidden, context_mask, context)
        return self.output(ctx, hidden)


class BertIntermediate(nn.Module):
    """``GELU(dense(x))`` with exact GELU: the FFN units."""

    def __init__(self, hidden_size, intermediate_size):
        super().__init__()
        self.dense = nn.Linear(hidden_size, intermediate_size)

    def forward(self, x):
        return F.gelu(self.dense(x))


class BertOutput(nn.Module):
    """``LayerNorm(dropout(dense(h)) + residual)`` after the FFN."""

    def __init__(self, intermediate_size, hidden_size, eps=FUSION_LN_EPS):
        super().__init__()
        self.dense = nn.Linear(intermediate_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)
        self.dropout = nn.Dropout(0.1)

    def forward(self, hidden, residual):
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class BertCrossLayer(nn.Module):
    """One co-attention layer of one stream (post-LN)::

        a   = LN1(h + Wo  SelfAttn(h, h, h;  own mask))
        c   = LN2(a + Wo' CrossAttn(a, e, e; other stream's mask))
        out = LN3(c + W2 GELU(W1 c))

    Parameters
    ----------
    hidden_size, num_heads, intermediate_size : int
        768, 12 and 3072 in the released models.
    eps : float, default=1e-12
        LayerNorm eps.
    """

    def __init__(self, hidden_size, num_heads, intermediate_size, eps=FUSION_LN_EPS):
        super().__init__()
        self.attention = BertAttention(hidden_size, num_heads, eps)
        self.crossattention = BertAttention(hidden_size, num_heads, eps)
        self.intermediate = BertIntermediate(hidden_size, intermediate_size)
        self.output = BertOutput(intermediate_size, hidden_size, eps)

    def forward(self, hidden, other, add_mask=None, other_add_mask=None):
        """Return the new hidden state of the query stream (a tensor)."""
        a = self.attention(hidden, add_mask)
        c = self.crossattention(a, context=other, context_mask=other_add_mask)
        return self.output(self.intermediate(c), c)


class Pooler(nn.Module):
    """``tanh(dense(x[:, 0]))``."""

    def __init__(self, hidden_size):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, x):
        return torch.tanh(self.dense(x[:, 0]))


class ITMHead(nn.Module):
    """Image-text matching head: ``fc`` from (text CLS; image CLS) to 2 logits."""

    def __init__(self, hidden_size):
        super().__init__()
        self.fc = nn.Linear(2 * hidden_size, 2)

    def forward(self, x):
        return self.fc(x)
