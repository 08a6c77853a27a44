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

from nilearn_vlm_hf._encoders import HFTextAdapter, HFVisionAdapter
from nilearn_vlm_hf._vlm import BridgeTowerAdapter, SiglipAdapter

__all__ = ["BridgeTowerAdapter", "HFTextAdapter", "HFVisionAdapter", "SiglipAdapter", "__version__"]
