"""Plugins and adapters
====================

Every model (CLIP, METER, Hugging Face encoders), analysis and atlas is a
plugin of the entry-point group ``nilearn_vlm``. This example lists what is
installed, builds the CLIP adapter with tiny random weights (no download),
looks at its sites (unit populations) and runs the adapter conformance check
that every adapter plugin's tests call.

Runs offline in seconds (most of it importing torch).
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the model hub

from nilearn_vlm import get_adapter, list_plugins
from nilearn_vlm.adapters import Batch
from nilearn_vlm.testing import ToyAdapter, check_adapter, make_images

# %% What the installed plugins provide
plugins = list_plugins()
print(plugins[["name", "kind", "distribution"]].to_string(index=False))

# %% The CLIP adapter with tiny random weights
# ``model_cfg`` is merged into open_clip's ViT-B-32 config; ``pretrained=None``
# draws random weights with ``seed`` (see the nilearn-vlm-clip README).
TINY_CLIP = {
    "arch": "ViT-B-32",
    "pretrained": None,
    "seed": 0,
    "model_cfg": {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "head_width": 8, "layers": 2},
        "text_cfg": {"width": 32, "heads": 4, "layers": 2, "context_length": 24},
    },
}
ClipAdapter = get_adapter("clip")
adapter = ClipAdapter(**TINY_CLIP)
sites = adapter.sites()
print(f"{len(sites)} sites, e.g.", ", ".join(s.name for s in sites[:4]))

# %% Extract pooled units of two sites
batch = Batch(images=make_images(2, size=40, seed=0), texts=["a cat on a mat", "a red bus"])
out = adapter.extract(batch, adapter.resolve_sites(["vision.1.ffn", "text.0.attn_out"]), pooling="mean")
for site, units in out.items():
    print(f"{site}: {units.shape[0]} stimuli x {units.shape[1]} units")

# %% The conformance check of the adapter contract
# It raises an AssertionError naming the broken rule; silence means it passed.
check_adapter(adapter)
check_adapter(ToyAdapter(width=8, n_layers=1))  # the NumPy toy model used in tests
print("check_adapter: clip and toy adapters conform")
