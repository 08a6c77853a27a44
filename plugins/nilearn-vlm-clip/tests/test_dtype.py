"""ClipAdapter(dtype=...): reduced-precision forward passes, float32 units out."""

import numpy as np
import pytest

from nilearn_vlm.adapters import Batch
from nilearn_vlm.testing import make_images
from nilearn_vlm_clip import ClipAdapter

TEXTS = ["A cat sits on the mat!", "coffee", "a red bus, in the rain."]


@pytest.mark.parametrize("backend", ["open_clip", "transformers"])
def test_bfloat16_units_match_float32(backend, tiny_open_clip_cfg, tiny_hf_cfg, hf_tokenizer_dir):
    kw = (dict(model_cfg=tiny_open_clip_cfg) if backend == "open_clip"
          else dict(model_cfg=tiny_hf_cfg, tokenizer=hf_tokenizer_dir))
    ref = ClipAdapter(backend=backend, seed=5, **kw)
    low = ClipAdapter(backend=backend, seed=5, dtype="bfloat16", **kw)
    batch = Batch(images=make_images(3, size=40, seed=0), texts=list(TEXTS))
    sites = ["vision.0.ffn", "vision.1.resid", "text.1.resid", "text.0.head"]
    a, b = ref.extract(batch, sites), low.extract(batch, sites)
    for site in sites:
        assert b[site].dtype == np.float32 and b[site].shape == a[site].shape
        scale = np.abs(a[site]).max()
        err = np.abs(b[site] - a[site]).max() / scale
        assert 0 < err < 0.05, (site, err)  # bfloat16 rounding: changed, but only by it
    ea, eb = ref.embed(batch), low.embed(batch)
    for modality in ("image", "text"):
        assert eb[modality].dtype == np.float32
        np.testing.assert_allclose(eb[modality], ea[modality], atol=0.05 * np.abs(ea[modality]).max())
    assert low.weights_digest() != ref.weights_digest()  # cached units never mix precisions


def test_unknown_dtype_is_named(tiny_open_clip_cfg):
    with pytest.raises(ValueError, match=r"dtype='float8' is not supported; choose one of \('float32'"):
        ClipAdapter(model_cfg=tiny_open_clip_cfg, dtype="float8").load()
