"""The released architecture: every official key and shape loads strictly and runs.

One full-size model (358.5 M parameters in the file, about 1.5 GB of float32)
with random values for every key of ``meter_clip16_288_roberta_pretrain.ckpt``;
built on the meta device and loaded with ``assign``, so memory holds one
copy. About 15 s on one CPU thread.
"""

import pytest
import torch

from nilearn_vlm_meter.checkpoint import config_from_state_dict, load_meter_state_dict
from nilearn_vlm_meter.model import METERConfig, build_meter


@pytest.mark.slow
def test_official_keys_load_strictly_and_run(official_keys):
    assert len(official_keys) == 670
    g = torch.Generator().manual_seed(0)
    sd = {}
    for key, shape in official_keys:
        t = torch.empty(shape)
        if key.endswith("LayerNorm.weight") or key.endswith(("ln_1.weight", "ln_2.weight", "ln_pre.weight", "ln_post.weight")):
            t.fill_(1.0)
        else:
            t.normal_(0.0, 0.02, generator=g)
        sd[key] = t
    assert sum(t.numel() for t in sd.values()) == 358_530_139
    cfg = config_from_state_dict(sd)
    assert cfg == METERConfig()  # the defaults are the released model
    model = build_meter(cfg, device="meta")
    report = load_meter_state_dict(model, sd)
    del sd
    assert report["ignored"] == ["vit_model.positional_embedding", "vit_model.ln_final.weight", "vit_model.ln_final.bias"]
    assert report["ignored_heads"] == ["mlm_score"]
    assert report["missing_heads"] == [] and report["resized"] is None
    assert not any(t.is_meta for t in list(model.parameters()) + list(model.buffers()))
    ids = torch.tensor([[0, 713, 16, 10, 4758, 2] + [1] * 44])
    mask = (ids != 1).long()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 288, 288, generator=g), ids, mask)
    assert out["text_feats"].shape == (1, 50, 768)
    assert out["image_feats"].shape == (1, 325, 768)
    assert out["cls_feats"].shape == (1, 1536)
    assert out["itm_logits"].shape == (1, 2)
    assert torch.isfinite(out["itm_logits"]).all()
    assert model.text_transformer.embeddings.position_ids.shape == (1, 514)
