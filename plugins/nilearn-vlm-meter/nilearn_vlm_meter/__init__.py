"""METER adapter plugin for nilearn_vlm.

METER (Dou et al., CVPR 2022) is a co-attention vision-language model: a CLIP
ViT-B/16 image encoder (11 blocks), a RoBERTa text encoder and 6 co-attention
fusion layers per stream. This package re-implements it in plain torch, loads
the official Lightning checkpoints and exposes its units to nilearn_vlm
through :class:`METERAdapter` (registered as ``"meter"``).
"""

__version__ = "0.1.0"

_LAZY = {
    "METERAdapter": "nilearn_vlm_meter.adapter",
    "METER": "nilearn_vlm_meter.model",
    "METERConfig": "nilearn_vlm_meter.model",
    "read_checkpoint": "nilearn_vlm_meter.checkpoint",
    "load_meter_state_dict": "nilearn_vlm_meter.checkpoint",
    "config_from_state_dict": "nilearn_vlm_meter.checkpoint",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nilearn_vlm_meter' has no attribute {name!r}")
