"""CLIP adapter plugin for nilearn_vlm.

:class:`ClipAdapter` (registered as ``"clip"``) extracts single units of both
CLIP towers with the open_clip or the transformers implementation.
"""

from nilearn_vlm_clip._version import __version__
from nilearn_vlm_clip.adapter import ClipAdapter

__all__ = ["ClipAdapter", "__version__"]
