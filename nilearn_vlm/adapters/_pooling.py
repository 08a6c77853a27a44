"""Token pooling: one function every adapter calls inside its hooks."""

from __future__ import annotations

import numpy as np

#: Pooling rules. ``none`` keeps tokens (3-D output).
POOLING_RULES = ("cls", "eot", "mean", "max", "none")


def _is_torch(x):
    return type(x).__module__.split(".", 1)[0] == "torch"


def check_pooling(pooling, streams=None):
    """Validate a pooling argument and resolve it per stream.

    Parameters
    ----------
    pooling : str or dict
        One rule of :data:`POOLING_RULES` for all streams, or a dict
        ``{stream: rule}``; a ``"*"`` key gives the rule of unlisted streams.
    streams : iterable of str, optional
        Streams to resolve.

    Returns
    -------
    dict
        ``{stream: rule}`` for ``streams`` (empty when ``streams`` is None).

    Examples
    --------
    >>> check_pooling({"vision": "cls", "*": "mean"}, ["vision", "text"])
    {'vision': 'cls', 'text': 'mean'}
    """
    if isinstance(pooling, str):
        mapping = {"*": pooling}
    elif isinstance(pooling, dict):
        mapping = dict(pooling)
    else:
        raise TypeError(
            f"pooling must be one of {POOLING_RULES} or a dict {{stream: rule}}, "
            f"got {type(pooling).__name__}"
        )
    for stream, rule in mapping.items():
        if rule not in POOLING_RULES:
            raise ValueError(
                f"unknown pooling rule {rule!r} for stream {stream!r}; choose one of {POOLING_RULES}"
            )
    rules = set(mapping.values())
    if "none" in rules and len(rules) > 1:
        raise ValueError(
            "pooling 'none' keeps tokens (3-D output) and cannot be mixed with pooled "
            "(2-D) streams; extract it in a separate call"
        )
    out = {}
    for stream in streams or ():
        if stream in mapping:
            out[stream] = mapping[stream]
        elif "*" in mapping:
            out[stream] = mapping["*"]
        else:
            raise ValueError(
                f"pooling gives no rule for stream {stream!r}; add it or a '*' default "
                f"to {mapping}"
            )
    return out


def pool(x, valid_mask, rule):
    """Pool token activations into one vector per stimulus.

    Works on NumPy arrays and on torch tensors (without importing torch for
    NumPy input), so adapters call it inside their forward hooks and memory
    only ever holds pooled units.

    Parameters
    ----------
    x : array or tensor of shape (n, tokens, width)
        Token activations.
    valid_mask : array or tensor of shape (n, tokens), bool, or None
        True for real tokens, False for padding. None means every token is
        valid (vision streams).
    rule : {"cls", "eot", "mean", "max", "none"}
        ``cls``: token 0. ``eot``: the last valid token (the end-of-text token
        of CLIP and RoBERTa-style tokenizers). ``mean``: mean over valid tokens
        only; padding never counts, and for vision every token counts,
        CLS included. ``max``: signed maximum over valid tokens. ``none``:
        ``x`` unchanged, with padded positions set to zero.

    Returns
    -------
    array or tensor
        (n, width) for pooled rules, (n, tokens, width) for ``none``.

    Examples
    --------
    >>> x = np.arange(12, dtype=float).reshape(1, 3, 4)
    >>> mask = np.array([[True, True, False]])
    >>> pool(x, mask, "mean")
    array([[2., 3., 4., 5.]])
    >>> pool(x, mask, "eot")
    array([[4., 5., 6., 7.]])
    """
    if rule not in POOLING_RULES:
        raise ValueError(f"unknown pooling rule {rule!r}; choose one of {POOLING_RULES}")
    if x.ndim != 3:
        raise ValueError(f"pool expects (n, tokens, width) activations, got shape {tuple(x.shape)}")
    torch_in = _is_torch(x)
    if valid_mask is None:
        if rule in ("cls", "eot", "max", "none"):
            if rule == "cls":
                return x[:, 0]
            if rule == "eot":
                return x[:, -1]
            if rule == "max":
                return x.max(dim=1).values if torch_in else x.max(axis=1)
            return x
        return x.mean(dim=1) if torch_in else x.mean(axis=1)
    if tuple(valid_mask.shape) != tuple(x.shape[:2]):
        raise ValueError(
            f"valid_mask shape {tuple(valid_mask.shape)} does not match activations "
            f"{tuple(x.shape[:2])} (n, tokens)"
        )
    if torch_in:
        import torch

        mask = valid_mask.to(device=x.device, dtype=torch.bool)
        counts = mask.sum(dim=1)
        if bool((counts == 0).any()):
            raise ValueError("a stimulus has no valid token; check the tokenizer's attention mask")
        if rule == "cls":
            return x[:, 0]
        if rule == "eot":
            # index of the last valid token, whatever the padding side
            idx = torch.arange(mask.shape[1], device=x.device).expand_as(mask)
            last = torch.where(mask, idx, torch.full_like(idx, -1)).max(dim=1).values
            return x[torch.arange(x.shape[0], device=x.device), last]
        m = mask.unsqueeze(-1)
        if rule == "mean":
            return (x * m).sum(dim=1) / counts.unsqueeze(-1).to(x.dtype)
        if rule == "max":
            return x.masked_fill(~m, float("-inf")).max(dim=1).values
        return x * m
    mask = np.asarray(valid_mask, dtype=bool)
    counts = mask.sum(axis=1)
    if (counts == 0).any():
        raise ValueError("a stimulus has no valid token; check the tokenizer's attention mask")
    if rule == "cls":
        return x[:, 0]
    if rule == "eot":
        idx = np.where(mask, np.arange(mask.shape[1])[None, :], -1).max(axis=1)
        return x[np.arange(x.shape[0]), idx]
    m = mask[..., None]
    if rule == "mean":
        return (x * m).sum(axis=1) / counts[:, None].astype(x.dtype)
    if rule == "max":
        return np.where(m, x, -np.inf).max(axis=1).astype(x.dtype)
    return x * m
