"""nilearn-vlm adapters for Hugging Face encoders.

Registered adapters (entry point ``hf`` of the group ``nilearn_vlm``):

``hf-text``
    :class:`HFTextAdapter`: BERT, RoBERTa, MiniLM and other ``AutoModel`` text encoders.
``hf-vision``
    :class:`HFVisionAdapter`: ViT, DeiT, BEiT, DINO/DINOv2 ``AutoModel`` vision encoders.
``siglip``
    :class:`SiglipAdapter`: the SigLIP dual encoder (``vision.L.*``, ``text.L.*``).
``bridgetower``
    :class:`BridgeTowerAdapter`: the BridgeTower co-attention model, METER's
    descendant, with METER's fusion site names (``cross_text.L.*``, ``cross_image.L.*``).
"""

__version__ = "0.1.0"

_LAZY = {
    "HFTextAdapter": "nilearn_vlm_hf._encoders",
    "HFVisionAdapter": "nilearn_vlm_hf._encoders",
    "SiglipAdapter": "nilearn_vlm_hf._vlm",
    "BridgeTowerAdapter": "nilearn_vlm_hf._vlm",
}


def __getattr__(name):
    # torch and transformers are imported with the adapters, on first use
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nilearn_vlm_hf' has no attribute {name!r}")


__all__ = ["BridgeTowerAdapter", "HFTextAdapter", "HFVisionAdapter", "SiglipAdapter", "__version__"]
