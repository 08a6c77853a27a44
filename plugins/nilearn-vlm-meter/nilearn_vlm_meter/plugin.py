"""Hook implementations: the module the ``nilearn_vlm`` entry point names."""

from nilearn_vlm import hookimpl


@hookimpl
def register_adapters(register):
    """Register :class:`~nilearn_vlm_meter.adapter.METERAdapter` as ``"meter"``."""
    # imported inside the hook so that listing plugins does not import torch
    from nilearn_vlm_meter.adapter import METERAdapter

    register(METERAdapter)
