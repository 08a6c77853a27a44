"""nilearn_vlm: neuron-level encoding of fMRI with vision-language models.

Unit activations of vision-language models (CLIP, METER, any model a plugin
adds) become fMRI-rate time series that encode voxels, the scikit-learn way,
with nilearn images in and out. Model adapters and analyses are pluggy plugins
of the entry-point group ``nilearn_vlm``.

Heavy submodules are imported on first use; ``import nilearn_vlm`` never
imports torch.
"""

from importlib import import_module

from nilearn_vlm._version import __version__
from nilearn_vlm.hookspecs import hookimpl
from nilearn_vlm.plugins import (
    DuplicatePluginError,
    UnknownPluginError,
    get_adapter,
    get_analysis,
    get_atlas,
    list_plugins,
)

# public name -> module that defines it (imported lazily)
_LAZY = {
    "NeuronActivations": "nilearn_vlm.extraction",
    "TRAligner": "nilearn_vlm.timeseries",
    "SparseAtoms": "nilearn_vlm.decomposition",
    "VoxelEncoder": "nilearn_vlm.encoding",
    "VoxelGLM": "nilearn_vlm.glm",
    "Results": "nilearn_vlm.results",
}

__all__ = [
    "DuplicatePluginError",
    "UnknownPluginError",
    "__version__",
    "get_adapter",
    "get_analysis",
    "get_atlas",
    "hookimpl",
    "list_plugins",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nilearn_vlm' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
