"""An optional helper for torch adapters: pooled units captured by forward hooks.

No torch import at module level; the hooks work on whatever tensors the
model produces, and torch is imported only to turn a NumPy mask into a
tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from nilearn_vlm.adapters._pooling import POOLING_RULES, _is_torch, pool


@dataclass(frozen=True)
class CapturePoint:
    """Where and how one site is read during a forward pass.

    Parameters
    ----------
    module : torch.nn.Module
        The module the hook goes on.
    pre : bool, default=False
        True for a forward pre-hook (reads the module's inputs), False for a
        forward hook (reads its output).
    read : callable or None, default=None
        ``read(module, args, kwargs, output)`` returning the (n, tokens,
        width) activation (``output`` is None for a pre-hook). Default: the
        first positional input for a pre-hook, the output (element 0 of a
        tuple output) otherwise.
    seq_first : bool, default=False
        The activation read is sequence-first, (tokens, n, width); it is
        transposed to batch-first before pooling.
    """

    module: Any
    pre: bool = False
    read: Callable | None = None
    seq_first: bool = False


class _AllCaptured(Exception):
    """Raised by the hook that completes the capture, to stop the forward pass early."""


def _default_read(pre, args, kwargs, output):
    if pre:
        if not args:
            raise ValueError(
                "the hooked module got no positional input; give the CapturePoint a read= function "
                "that picks the activation from (module, args, kwargs, output)"
            )
        return args[0]
    return output[0] if isinstance(output, (tuple, list)) else output


class Capture:
    """Forward hooks that pool and store the units of some sites.

    Made by :func:`capture`, used as a context manager: the hooks are
    attached on entry and removed on exit, also on errors.
    """

    def __init__(self, points, pooling="mean", masks=None, stop_early=False):
        if not isinstance(points, dict) or not points:
            raise ValueError("capture needs a non-empty dict {site_name: CapturePoint}")
        for name, point in points.items():
            if not isinstance(point, CapturePoint):
                raise TypeError(f"capture point {name!r} must be a CapturePoint, got {type(point).__name__}")
        rules = {name: pooling for name in points} if isinstance(pooling, str) else dict(pooling)
        for name in points:
            if rules.get(name) not in POOLING_RULES:
                raise ValueError(
                    f"pooling rule {rules.get(name)!r} of site {name!r} is not one of {POOLING_RULES}"
                )
        masks = dict(masks or {})
        unknown = sorted(set(masks) - set(points))
        if unknown:
            raise ValueError(f"masks given for sites {unknown} that have no capture point")
        self.points = dict(points)
        self._rules = rules
        self._masks = masks
        self._stop_early = bool(stop_early)
        self._store = {name: [] for name in points}
        self._handles = []

    def _hook(self, name, point):
        rule = self._rules[name]
        mask = self._masks.get(name)

        def store(module, args, kwargs, output):
            read = point.read or (lambda m, a, k, o: _default_read(point.pre, a, k, o))
            x = read(module, args, kwargs, output)
            if point.seq_first:
                x = x.transpose(0, 1)
            x = x.detach().float()
            valid = mask() if callable(mask) else mask
            if valid is not None and not _is_torch(valid):
                import torch

                valid = torch.as_tensor(np.asarray(valid, dtype=bool))
            pooled = pool(x, valid, rule)
            # a copy: the stored units never keep the token tensor alive
            self._store[name].append(np.array(pooled.cpu().numpy(), dtype=np.float32))
            if self._stop_early and all(self._store.values()):
                raise _AllCaptured

        if point.pre:
            return lambda module, args, kwargs: store(module, args, kwargs, None)
        return store

    def __enter__(self):
        try:
            for name, point in self.points.items():
                hook = self._hook(name, point)
                if point.pre:
                    handle = point.module.register_forward_pre_hook(hook, with_kwargs=True)
                else:
                    handle = point.module.register_forward_hook(hook, with_kwargs=True)
                self._handles.append(handle)
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        self._remove()
        return exc_type is not None and issubclass(exc_type, _AllCaptured)

    def _remove(self):
        while self._handles:
            self._handles.pop().remove()

    def arrays(self):
        """The captured units.

        Returns
        -------
        dict
            ``{site_name: float32 ndarray}``, (n, width), or (n, tokens,
            width) for pooling ``"none"``; the rows of successive forward
            calls (chunks of stimuli) are concatenated in call order.

        Raises
        ------
        RuntimeError
            A hook never fired (the forward pass skipped its module).
        """
        missing = [name for name, parts in self._store.items() if not parts]
        if missing:
            raise RuntimeError(
                f"hooks of sites {missing} did not fire: the forward pass skipped their modules "
                "(an adapter bug)"
            )
        return {
            name: parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
            for name, parts in self._store.items()
        }


def capture(points, pooling="mean", masks=None, *, stop_early=False):
    """Capture pooled units of torch modules during a forward pass.

    An optional helper for model adapters (a plugin may write its own
    hooks): each hook reads a site's activation, pools it over tokens with
    :func:`~nilearn_vlm.adapters.pool` and keeps only the pooled units (a
    float32 NumPy copy), so memory never holds the token tensors of all
    sites. Use it as a context manager around the forward call(s); the hooks
    are removed on exit, also on errors.

    Parameters
    ----------
    points : dict of str to CapturePoint
        ``{site_name: CapturePoint}``.
    pooling : str or dict, default="mean"
        One rule of :data:`~nilearn_vlm.adapters.POOLING_RULES` for every
        site, or ``{site_name: rule}``. Activations are cast to float32
        before pooling.
    masks : dict or None, default=None
        ``{site_name: mask}``, the valid-token mask (n, tokens) of a site: a
        bool tensor or array, None (every token valid), or a callable
        returning one when the hook fires (for a model run in chunks of
        stimuli, whose mask changes from chunk to chunk). Missing sites: None.
    stop_early : bool, default=False
        Stop the forward pass once every site has been read (the hook raises
        an exception that the context manager swallows); for one forward
        call whose remaining layers are not needed.

    Returns
    -------
    Capture
        A context manager; after the block, ``.arrays()`` gives
        ``{site_name: float32 ndarray}``.

    Examples
    --------
    >>> import torch
    >>> from nilearn_vlm.adapters import CapturePoint, capture
    >>> block = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 4))
    >>> points = {"text.0.ffn": CapturePoint(block[2], pre=True), "text.0.resid": CapturePoint(block)}
    >>> valid = torch.tensor([[True, True, False], [True, True, True]])
    >>> with torch.inference_mode(), capture(points, "mean", {"text.0.ffn": valid}) as cap:
    ...     _ = block(torch.ones(2, 3, 4))
    >>> {name: units.shape for name, units in cap.arrays().items()}
    {'text.0.ffn': (2, 8), 'text.0.resid': (2, 4)}
    """
    return Capture(points, pooling, masks, stop_early)
