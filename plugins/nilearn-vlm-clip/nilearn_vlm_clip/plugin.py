"""Hook implementations of the CLIP plugin (the module the entry point names)."""

from nilearn_vlm import hookimpl


@hookimpl
def register_adapters(register):
    """Register :class:`nilearn_vlm_clip.ClipAdapter` under the name ``"clip"``."""
    # registered by reference: listing plugins does not import torch
    register("nilearn_vlm_clip.adapter:ClipAdapter", name="clip")
