"""Hook implementations: the module the ``nilearn_vlm`` entry point names."""

from nilearn_vlm import hookimpl


@hookimpl
def register_adapters(register):
    """Register :class:`~nilearn_vlm_meter.adapter.METERAdapter` as ``"meter"``."""
    # registered by reference: listing plugins does not import torch
    register("nilearn_vlm_meter.adapter:METERAdapter", name="meter")
