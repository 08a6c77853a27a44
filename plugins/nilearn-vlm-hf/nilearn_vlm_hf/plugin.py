"""Hook implementations: the module the ``hf`` entry point names."""

from nilearn_vlm import hookimpl


@hookimpl
def register_adapters(register):
    # imported inside the hook: listing plugins stays cheap (no torch import)
    from nilearn_vlm_hf._encoders import HFTextAdapter, HFVisionAdapter
    from nilearn_vlm_hf._vlm import BridgeTowerAdapter, SiglipAdapter

    register(HFTextAdapter)
    register(HFVisionAdapter)
    register(SiglipAdapter)
    register(BridgeTowerAdapter)
