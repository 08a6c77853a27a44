"""Reading official-format checkpoints and mapping their keys onto the sites."""

import os
import sys
import types

import numpy as np
import pytest
import torch

from nilearn_vlm.adapters import Batch
from nilearn_vlm.testing import make_images
from nilearn_vlm_meter.adapter import METERAdapter
from nilearn_vlm_meter.checkpoint import load_meter_state_dict, read_checkpoint
from nilearn_vlm_meter.model import build_meter

HEADS = dict(vision_heads=4, text_heads=2, num_heads=4)
SIZE_KEYS = (
    "patch_size", "vision_width", "vision_layers", "vision_mlp_width", "text_width", "text_layers",
    "text_intermediate", "vocab_size", "max_position_embeddings", "hidden_size", "num_top_layer",
    "fusion_intermediate",
)


def _official_like_state_dict(adapter):
    """The small model's weights plus the extra entries the official files hold."""
    sd = {k: v.detach().clone() for k, v in adapter.model_.state_dict().items()}
    g = torch.Generator().manual_seed(11)
    h = adapter.config_.hidden_size
    sd["vit_model.positional_embedding"] = torch.randn(77, 12, generator=g)
    sd["vit_model.ln_final.weight"] = torch.ones(12)
    sd["vit_model.ln_final.bias"] = torch.zeros(12)
    sd["text_transformer.embeddings.position_ids"] = torch.arange(adapter.config_.max_position_embeddings)[None]
    sd["mlm_score.bias"] = torch.zeros(adapter.config_.vocab_size)
    sd["mlm_score.transform.dense.weight"] = torch.randn(h, h, generator=g)
    return sd


def _ckpt_params(small_params, path):
    """Adapter parameters for a checkpoint: sizes come from the file."""
    p = {k: v for k, v in small_params.items() if k not in SIZE_KEYS}
    return dict(p, checkpoint=str(path), **HEADS)


def _save_lightning(sd, path, extra=None):
    obj = {"epoch": 9, "global_step": 1000, "pytorch-lightning_version": "1.3.2", "state_dict": sd}
    obj.update(extra or {})
    torch.save(obj, path)
    return str(path)


@pytest.fixture
def base(small_params):
    """A small random METER whose fusion weights let every dependency show.

    METER's init, normal(0, 0.02), makes attention almost uniform (a change
    of queries moves nothing); much larger weights saturate it. Matrices get
    std 1/sqrt(fan_in), LayerNorm gains 1 + noise, biases small noise.
    """
    adapter = METERAdapter(**small_params).ensure_loaded()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in adapter.model_.named_parameters():
            if name.startswith(("vit_model", "text_transformer")):
                continue
            noise = torch.randn(p.shape, generator=g)
            if p.ndim == 2:
                p.copy_(noise * p.shape[1] ** -0.5)
            elif "LayerNorm.weight" in name:
                p.copy_(1 + 0.1 * noise)
            else:
                p.copy_(0.1 * noise)
    return adapter


def test_lightning_checkpoint_round_trip(base, small_params, tmp_path):
    sd = _official_like_state_dict(base)
    path = _save_lightning(sd, tmp_path / "meter.ckpt", {"hyper_parameters": {"config": {"max_text_len": 50}}})
    adapter = METERAdapter(**_ckpt_params(small_params, path)).ensure_loaded()
    assert adapter.config_ == base.config_
    report = adapter.load_report_
    assert report["stubbed_classes"] == []
    assert sorted(report["ignored"]) == sorted(
        ["vit_model.positional_embedding", "vit_model.ln_final.weight", "vit_model.ln_final.bias",
         "text_transformer.embeddings.position_ids"]
    )
    assert report["ignored_heads"] == ["mlm_score"] and report["missing_heads"] == []
    batch = Batch(images=make_images(3), texts=["a cat", "coffee", "the red bus"])
    sites = base.resolve_sites("all")
    want, got = base.extract(batch, sites, "mean"), adapter.extract(batch, sites, "mean")
    for s in sites:
        np.testing.assert_allclose(got[s.name], want[s.name], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(adapter.itm_logits(batch), base.itm_logits(batch), rtol=1e-5, atol=1e-6)
    assert adapter.fingerprint()["weights"] != base.fingerprint()["weights"]


def test_unimportable_classes_are_stubbed_never_imported(base, tmp_path):
    # a checkpoint written where sacred/Lightning classes existed
    fake = types.ModuleType("fake_sacred_containers")

    class ReadOnlyDict(dict):
        pass

    class ModelCheckpoint:
        def __init__(self):
            self.best_model_score = torch.tensor(0.5)

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    for cls in (ReadOnlyDict, ModelCheckpoint):
        cls.__module__ = fake.__name__
        cls.__qualname__ = cls.__name__
        setattr(fake, cls.__name__, cls)
    sys.modules[fake.__name__] = fake
    try:
        sd = _official_like_state_dict(base)
        path = _save_lightning(
            sd,
            tmp_path / "lightning.ckpt",
            {
                "hyper_parameters": {"config": ReadOnlyDict(max_text_len=50, tokenizer="roberta-base")},
                "callbacks": {ModelCheckpoint: {"best": ModelCheckpoint()}},
                "extra": Exploit(),
            },
        )
    finally:
        del sys.modules[fake.__name__]
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)
    got, info = read_checkpoint(path)
    assert not (tmp_path / "pwned").exists()
    assert fake.__name__ not in sys.modules
    assert f"{fake.__name__}.ReadOnlyDict" in info["stubbed_classes"]
    assert f"{fake.__name__}.ModelCheckpoint" in info["stubbed_classes"]
    assert any(c.endswith(".system") for c in info["stubbed_classes"])
    assert set(got) == set(sd)
    for k in sd:
        assert torch.equal(got[k], sd[k].float() if sd[k].is_floating_point() else sd[k])


def test_bare_state_dict_and_half_precision(base, tmp_path):
    sd = {k: (v.half() if v.is_floating_point() else v) for k, v in _official_like_state_dict(base).items()}
    torch.save(sd, tmp_path / "bare.pt")
    got, info = read_checkpoint(tmp_path / "bare.pt")
    assert all(v.dtype == torch.float32 for v in got.values() if v.is_floating_point())
    assert "state_dict" not in info["entries"]


def test_missing_and_unexpected_keys_are_listed(base):
    model = build_meter(base.config_, seed=0)
    sd = _official_like_state_dict(base)
    missing = dict(sd)
    del missing["cross_modal_image_layers.1.crossattention.self.key.weight"]
    del missing["vit_model.visual.ln_post.bias"]
    with pytest.raises(ValueError, match=r"missing keys: cross_modal_image_layers\.1\.crossattention\.self\.key\.weight, vit_model\.visual\.ln_post\.bias"):
        load_meter_state_dict(model, missing)
    extra = dict(sd, **{"text_transformer.encoder.layer.7.output.dense.weight": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match=r"unexpected keys: text_transformer\.encoder\.layer\.7\.output\.dense\.weight"):
        load_meter_state_dict(model, extra)
    wrong = dict(sd, **{"cross_modal_text_transform.weight": torch.zeros(5, 5)})
    with pytest.raises(ValueError, match=r"shape mismatches: cross_modal_text_transform\.weight \(5, 5\)"):
        load_meter_state_dict(model, wrong)
    swin = {"vit_model.patch_embed.proj.weight": torch.zeros(128, 3, 4, 4)}
    from nilearn_vlm_meter.checkpoint import config_from_state_dict

    with pytest.raises(ValueError, match="Swin"):
        config_from_state_dict(swin)


def test_absent_head_is_reported(base, small_params, tmp_path):
    sd = {k: v for k, v in _official_like_state_dict(base).items() if not k.startswith("itm_score.")}
    path = _save_lightning(sd, tmp_path / "noitm.ckpt")
    with pytest.warns(UserWarning, match="itm_score"):
        adapter = METERAdapter(**_ckpt_params(small_params, path)).ensure_loaded()
    assert adapter.load_report_["missing_heads"] == ["itm_score.fc.weight", "itm_score.fc.bias"]
    assert np.isfinite(adapter.itm_logits(Batch(images=make_images(1), texts=["a"]))).all()
    # the sites do not depend on heads
    batch = Batch(images=make_images(2), texts=["a cat", "coffee"])
    a = adapter.extract(batch, ["cross_image.2.ffn"], "mean")["cross_image.2.ffn"]
    np.testing.assert_allclose(a, base.extract(batch, ["cross_image.2.ffn"], "mean")["cross_image.2.ffn"], rtol=1e-5, atol=1e-6)


def test_size_parameters_that_contradict_the_checkpoint(base, small_params, tmp_path):
    path = _save_lightning(_official_like_state_dict(base), tmp_path / "m.ckpt")
    params = dict(_ckpt_params(small_params, path), vision_layers=5)
    with pytest.raises(ValueError, match="disagree with the checkpoint"):
        METERAdapter(**params).ensure_loaded()


def test_resolution_change_resizes_position_embedding(base, small_params, tmp_path):
    path = _save_lightning(_official_like_state_dict(base), tmp_path / "m.ckpt")
    params = dict(_ckpt_params(small_params, path), image_size=48)
    adapter = METERAdapter(**params).ensure_loaded()
    assert adapter.load_report_["resized"] == (17, 37)
    assert adapter.config_.n_image_tokens == 37
    pos = adapter.model_.vit_model.visual.positional_embedding.detach()
    torch.testing.assert_close(pos[0], base.model_.vit_model.visual.positional_embedding.detach()[0])
    out = adapter.extract(Batch(images=make_images(2), texts=["a", "b"]), ["vision.0.ffn"], "none")
    assert out["vision.0.ffn"].shape[1] == 37
    # without image_size, the checkpoint's own resolution
    params.pop("image_size")
    native = METERAdapter(**params).ensure_loaded()
    assert native.model_params["image_size"] == 32 and native.load_report_["resized"] is None


# -- key mapping: perturb one official tensor, exactly the expected sites move -----
def _sites(stream, layers, kinds):
    return {f"{stream}.{i}.{k}" for i in layers for k in kinds}


def _fusion_downstream(stream, layer, kinds, last):
    """Sites moved by a change in fusion layer ``layer`` of ``stream``.

    Both streams of layer i read the outputs of layer i - 1: the other
    stream's layer + 1 sees the change only through its cross-attention.
    """
    other = "cross_image" if stream == "cross_text" else "cross_text"
    ck = ("self_attn_out", "cross_attn_out", "ffn")
    out = {f"{stream}.{layer}.{k}" for k in kinds} | _sites(stream, range(layer + 1, last + 1), ck)
    if layer + 1 <= last:
        out |= {f"{other}.{layer + 1}.cross_attn_out", f"{other}.{layer + 1}.ffn"}
    return out | _sites(other, range(layer + 2, last + 1), ck)


def _expected(cfg):
    V, T, N = range(cfg.vision_layers), range(cfg.text_layers), range(cfg.num_top_layer)
    va, tk, ck = ("attn_out", "ffn"), ("attn_out", "ffn"), ("self_attn_out", "cross_attn_out", "ffn")
    cross = _sites("cross_text", N, ck) | _sites("cross_image", N, ck)
    last_v, last_f = cfg.vision_layers - 1, cfg.num_top_layer - 1
    # the first fusion layer's self-attention sees only its own stream
    img_cross = cross - {"cross_text.0.self_attn_out"}
    txt_cross = cross - {"cross_image.0.self_attn_out"}
    return {
        "vit_model.visual.conv1.weight": _sites("vision", V, va) | img_cross,
        "vit_model.visual.positional_embedding": _sites("vision", V, va) | img_cross,
        "vit_model.visual.transformer.resblocks.1.attn.in_proj_weight": _sites("vision", range(1, last_v + 1), va) | img_cross,
        "vit_model.visual.transformer.resblocks.1.attn.out_proj.bias": _sites("vision", range(1, last_v + 1), va) | img_cross,
        "vit_model.visual.transformer.resblocks.1.mlp.c_fc.bias": {"vision.1.ffn"} | _sites("vision", range(2, last_v + 1), va) | img_cross,
        f"vit_model.visual.transformer.resblocks.{last_v}.mlp.c_proj.weight": img_cross,
        "vit_model.visual.ln_post.weight": img_cross,
        "text_transformer.embeddings.word_embeddings.weight": _sites("text", T, tk) | txt_cross,
        "text_transformer.encoder.layer.0.attention.output.LayerNorm.weight": {"text.0.ffn"} | _sites("text", range(1, cfg.text_layers), tk) | txt_cross,
        "text_transformer.encoder.layer.1.intermediate.dense.weight": {"text.1.ffn"} | txt_cross,
        "text_transformer.pooler.dense.weight": set(),
        "cross_modal_text_transform.weight": txt_cross,
        "cross_modal_image_transform.weight": img_cross,
        "token_type_embeddings.weight": cross,
        "cross_modal_text_layers.0.crossattention.self.value.weight": _fusion_downstream(
            "cross_text", 0, ("cross_attn_out", "ffn"), last_f
        ),
        "cross_modal_image_layers.1.attention.output.dense.bias": _fusion_downstream("cross_image", 1, ck, last_f),
        "cross_modal_image_layers.1.attention.output.LayerNorm.bias": _fusion_downstream(
            "cross_image", 1, ("cross_attn_out", "ffn"), last_f
        ),
        f"cross_modal_text_layers.{last_f}.output.LayerNorm.bias": set(),
        "cross_modal_image_pooler.dense.weight": set(),
        "itm_score.fc.weight": set(),
    }


def test_key_mapping_by_perturbation(base, small_params, tmp_path):
    batch = Batch(images=make_images(3, seed=2), texts=["a cat sits", "coffee", "the red bus drives"])
    sites = [s.name for s in base.resolve_sites("all")]
    ref = base.extract(batch, sites, "mean")
    ref_itm = base.itm_logits(batch)
    sd = _official_like_state_dict(base)
    g = torch.Generator().manual_seed(5)
    for key, expected in _expected(base.config_).items():
        changed = dict(sd)
        changed[key] = sd[key] + 0.5 * torch.randn(sd[key].shape, generator=g)
        path = _save_lightning(changed, tmp_path / "p.ckpt")
        params = dict(_ckpt_params(small_params, path), tokenizer=base.tokenizer_)
        adapter = METERAdapter(**params)
        out = adapter.extract(batch, sites, "mean")
        moved = {s for s in sites if not np.allclose(out[s], ref[s], rtol=1e-5, atol=1e-6)}
        assert moved == expected, f"{key}: unexpected {sorted(moved - expected)}, unmoved {sorted(expected - moved)}"
        itm_moved = not np.allclose(adapter.itm_logits(batch), ref_itm, rtol=1e-5, atol=1e-6)
        feeds_itm_only = ("cross_modal_image_pooler", "itm_score", f"cross_modal_text_layers.{base.config_.num_top_layer - 1}")
        assert itm_moved == (bool(expected) or key.startswith(feeds_itm_only)), key
