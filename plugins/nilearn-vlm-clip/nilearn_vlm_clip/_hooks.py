"""Readers shared by the backends.

Each backend says, per site, which module to hook and how to read the
(n, tokens, width) activation from the hook's arguments, as a
:class:`nilearn_vlm.adapters.CapturePoint`; these are the readers they share.
Everything runs inside the model's own forward call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def first(output):
    """The tensor of a module output that may be a tuple (HF, MHA)."""
    if isinstance(output, (tuple, list)):
        return output[0]
    return output


def to_batch_first(x, batch_first):
    """(tokens, n, width) -> (n, tokens, width) when the model is sequence-first."""
    return x if batch_first else x.transpose(0, 1)


def _arg(args, kwargs, index, name, default=None):
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def mha_heads(mha, args, kwargs):
    """Per-head outputs of ``nn.MultiheadAttention`` before its output projection.

    ``nn.MultiheadAttention`` runs a fused kernel at inference, so a hook on
    its ``out_proj`` never fires; this recomputes the concatenated head
    outputs from the module's own inputs (query, key, value, masks, as seen
    by a forward pre-hook) and weights. Applying ``out_proj`` to the result
    gives the module output (checked in the plugin's tests).

    Returns
    -------
    torch.Tensor
        (n, tokens, embed_dim), head-major: units ``h * head_dim + j``.
    """
    if not mha._qkv_same_embed_dim:
        raise NotImplementedError(
            "head capture needs an nn.MultiheadAttention with a packed in_proj_weight "
            "(kdim == vdim == embed_dim)"
        )
    query = _arg(args, kwargs, 0, "query")
    key = _arg(args, kwargs, 1, "key")
    value = _arg(args, kwargs, 2, "value")
    key_padding_mask = _arg(args, kwargs, 3, "key_padding_mask")
    attn_mask = _arg(args, kwargs, 5, "attn_mask")
    is_causal = bool(_arg(args, kwargs, 7, "is_causal", False))
    if mha.batch_first:
        query, key, value = (t.transpose(0, 1) for t in (query, key, value))
    # now sequence-first (tokens, n, width), as in torch's reference path
    t_q, n, d = query.shape
    t_k = key.shape[0]
    h = mha.num_heads
    dh = d // h
    w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    b_q, b_k, b_v = mha.in_proj_bias.chunk(3) if mha.in_proj_bias is not None else (None, None, None)
    q = F.linear(query, w_q, b_q).reshape(t_q, n, h, dh).permute(1, 2, 0, 3)
    k = F.linear(key, w_k, b_k).reshape(t_k, n, h, dh).permute(1, 2, 0, 3)
    v = F.linear(value, w_v, b_v).reshape(t_k, n, h, dh).permute(1, 2, 0, 3)
    if mha.bias_k is not None or mha.add_zero_attn:
        raise NotImplementedError("head capture does not support add_bias_kv / add_zero_attn")
    mask = None
    if attn_mask is not None:
        mask = _additive(attn_mask, q.dtype)
        if mask.dim() == 3:  # (n * heads, t_q, t_k)
            mask = mask.reshape(n, h, t_q, t_k)
    if key_padding_mask is not None:
        pad = _additive(key_padding_mask, q.dtype).reshape(n, 1, 1, t_k)
        mask = pad if mask is None else mask + pad
    if is_causal and mask is None:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out.permute(0, 2, 1, 3).reshape(n, t_q, d)


def _additive(mask, dtype):
    """torch MHA masks: bool True = masked out; float = added to the logits."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(mask, float("-inf"))
    return mask.to(dtype)
