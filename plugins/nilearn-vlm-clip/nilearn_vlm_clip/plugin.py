"""Hook implementations of the CLIP plugin (the module the entry point names)."""

from nilearn_vlm import hookimpl


@hookimpl
def register_adapters(register):
    """Register :class:`nilearn_vlm_clip.ClipAdapter` under the name ``"clip"``."""
    # imported inside the hook so that listing plugins does not import torch
    from nilearn_vlm_clip.adapter import ClipAdapter

    register(ClipAdapter)
