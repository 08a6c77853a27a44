"""CLIP adapter plugin for nilearn_vlm.

:class:`ClipAdapter` (registered as ``"clip"``) extracts single units of both
CLIP towers with the open_clip or the transformers implementation.
"""

from nilearn_vlm_clip._version import __version__

__all__ = ["ClipAdapter", "__version__"]


def __getattr__(name):
    # torch is imported with the adapter, on first use
    if name == "ClipAdapter":
        from nilearn_vlm_clip.adapter import ClipAdapter

        return ClipAdapter
    raise AttributeError(f"module 'nilearn_vlm_clip' has no attribute {name!r}")
