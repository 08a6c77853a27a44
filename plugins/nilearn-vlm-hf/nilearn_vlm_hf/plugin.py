"""Hook implementations: the module the ``hf`` entry point names."""

from nilearn_vlm import hookimpl


@hookimpl
def register_adapters(register):
    # registered by reference: listing plugins does not import torch
    register("nilearn_vlm_hf._encoders:HFTextAdapter", name="hf-text")
    register("nilearn_vlm_hf._encoders:HFVisionAdapter", name="hf-vision")
    register("nilearn_vlm_hf._vlm:SiglipAdapter", name="siglip")
    register("nilearn_vlm_hf._vlm:BridgeTowerAdapter", name="bridgetower")
