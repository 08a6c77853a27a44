"""Text and vision encoders with random weights: the adapter contract and clear errors."""

import numpy as np
import pytest

from nilearn_vlm import get_adapter
from nilearn_vlm.adapters import Batch
from nilearn_vlm.testing import check_adapter, make_images
from nilearn_vlm_hf import HFTextAdapter, HFVisionAdapter


def test_check_adapter_bert(bert_config, bert_tokenizer):
    check_adapter(HFTextAdapter(config=bert_config, tokenizer=bert_tokenizer))


def test_check_adapter_roberta(roberta_config, roberta_tokenizer):
    check_adapter(HFTextAdapter(config=roberta_config, tokenizer=roberta_tokenizer))


def test_check_adapter_vit(vit_config):
    check_adapter(HFVisionAdapter(config=vit_config))


def test_check_adapter_dinov2():
    cfg = dict(model_type="dinov2", hidden_size=16, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2,
               image_size=32, patch_size=8)
    check_adapter(HFVisionAdapter(config=cfg))


def test_registered_through_the_entry_point():
    assert get_adapter("hf-text") is HFTextAdapter
    assert get_adapter("hf-vision") is HFVisionAdapter


def test_sites_names_and_widths(bert_config, bert_tokenizer):
    adapter = HFTextAdapter(config=bert_config, tokenizer=bert_tokenizer)
    sites = {s.name: s for s in adapter.sites()}
    assert list(sites)[:4] == ["text.0.attn_out", "text.0.head", "text.0.ffn", "text.0.resid"]
    assert len(sites) == 4 * bert_config["num_hidden_layers"]
    assert sites["text.1.ffn"].width == bert_config["intermediate_size"]
    assert sites["text.1.head"].width == sites["text.1.attn_out"].width == bert_config["hidden_size"]
    assert all(s.modalities == ("text",) for s in sites.values())
    assert [s.name for s in adapter.resolve_sites("default")] == ["text.0.attn_out", "text.1.attn_out"]


def test_padding_never_changes_units(bert_config, bert_tokenizer):
    # a short text alone and beside a long one (so padded) gives the same pooled units
    adapter = HFTextAdapter(config=bert_config, tokenizer=bert_tokenizer)
    sites = adapter.resolve_sites("all")
    alone = adapter.extract(Batch(texts=["a cat"]), sites, "mean")
    padded = adapter.extract(Batch(texts=["a cat", "two astronauts float beside the space station at night"]),
                             sites, "mean")
    masks = adapter.token_masks(Batch(texts=["a cat", "two astronauts float beside the space station at night"]))
    assert masks["text"][0].sum() == 4 and not masks["text"][0].all()  # [CLS] a cat [SEP] + padding
    for s in sites:
        np.testing.assert_allclose(alone[s.name][0], padded[s.name][0], rtol=1e-4, atol=1e-5)


def test_seed_gives_the_weights(bert_config, bert_tokenizer):
    a = HFTextAdapter(config=bert_config, tokenizer=bert_tokenizer, seed=1)
    b = HFTextAdapter(config=bert_config, tokenizer=bert_tokenizer, seed=1)
    c = HFTextAdapter(config=bert_config, tokenizer=bert_tokenizer, seed=2)
    assert a.weights_digest() == b.weights_digest() != c.weights_digest()
    batch = Batch(texts=["a red bus"])
    ua, uc = (x.extract(batch, ["text.1.ffn"])["text.1.ffn"] for x in (a, c))
    assert not np.allclose(ua, uc)
    assert a.fingerprint() != c.fingerprint()


def test_random_weights_need_a_tokenizer(bert_config):
    with pytest.raises(ValueError, match="pass tokenizer="):
        HFTextAdapter(config=bert_config).ensure_loaded()


def test_empty_tokenizer_is_refused(bert_config, tmp_path):
    # transformers builds a specials-only tokenizer from a folder without vocabulary files
    from transformers import BertTokenizer

    BertTokenizer().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="empty or broken"):
        HFTextAdapter(config=bert_config, tokenizer=str(tmp_path)).ensure_loaded()


def test_tokenizer_larger_than_the_embedding(bert_config, roberta_tokenizer):
    cfg = dict(bert_config, vocab_size=100)
    with pytest.raises(ValueError, match="does not belong to this model"):
        HFTextAdapter(config=cfg, tokenizer=roberta_tokenizer).ensure_loaded()


def test_parameter_errors(bert_config, tmp_path):
    with pytest.raises(ValueError, match="needs pretrained="):
        HFTextAdapter().ensure_loaded()
    with pytest.raises(ValueError, match="not both"):
        HFTextAdapter(pretrained="bert-base-uncased", config=bert_config).ensure_loaded()
    with pytest.raises(TypeError, match="unknown HFTextAdapter parameters"):
        HFTextAdapter(config=bert_config, hidden=3).ensure_loaded()
    with pytest.raises(ValueError, match="model_type"):
        HFTextAdapter(config={"hidden_size": 16}).ensure_loaded()
    with pytest.raises(ValueError, match="dtype"):
        HFTextAdapter(config=bert_config, dtype="float8").ensure_loaded()
    with pytest.raises(FileNotFoundError, match="no such folder"):
        HFTextAdapter(pretrained=str(tmp_path / "missing")).ensure_loaded()
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="checkpoint folder"):
        HFTextAdapter(pretrained=str(tmp_path / "model.bin")).ensure_loaded()


def test_eot_does_not_apply_to_images(vit_config):
    adapter = HFVisionAdapter(config=vit_config)
    with pytest.raises(ValueError, match="'eot' pooling"):
        adapter.extract(Batch(images=make_images(2)), ["vision.0.ffn"], "eot")
    assert adapter.active_hooks() == 0
    out = adapter.extract(Batch(images=make_images(2)), ["vision.0.ffn"], "none")
    assert out["vision.0.ffn"].shape == (2, 1 + (32 // 8) ** 2, vit_config["intermediate_size"])


def test_vision_adapter_refuses_text_only_batch(vit_config):
    adapter = HFVisionAdapter(config=vit_config)
    with pytest.raises(ValueError, match="needs image"):
        adapter.extract(Batch(texts=["a cat"]), ["vision.0.ffn"])


def test_hooks_removed_when_the_forward_fails(bert_config, bert_tokenizer, monkeypatch):
    adapter = HFTextAdapter(config=bert_config, tokenizer=bert_tokenizer).ensure_loaded()
    seen = {}

    def broken_run(inputs, streams):
        seen["hooks"] = adapter.active_hooks()
        raise RuntimeError("model failed mid-forward")

    monkeypatch.setattr(adapter, "_run", broken_run)
    with pytest.raises(RuntimeError, match="mid-forward"):
        adapter.extract(Batch(texts=["a cat"]), adapter.resolve_sites("all"))
    assert seen["hooks"] == 4 * bert_config["num_hidden_layers"]  # one hook per site while running
    assert adapter.active_hooks() == 0


def test_bfloat16_weights_give_float32_units_close_to_float32(bert_config, bert_tokenizer):
    batch = Batch(texts=["a cat sits on the mat.", "coffee"])
    full = HFTextAdapter(config=bert_config, tokenizer=bert_tokenizer).extract(batch, ["text.1.resid"])
    half = HFTextAdapter(config=bert_config, tokenizer=bert_tokenizer, dtype="bfloat16").extract(
        batch, ["text.1.resid"])
    assert half["text.1.resid"].dtype == np.float32
    corr = np.corrcoef(full["text.1.resid"].ravel(), half["text.1.resid"].ravel())[0, 1]
    assert corr > 0.99


def test_forward_stops_after_the_last_requested_site(bert_config, bert_tokenizer):
    adapter = HFTextAdapter(config=bert_config, tokenizer=bert_tokenizer).ensure_loaded()
    calls = []
    handle = adapter.model.encoder.layer[1].register_forward_pre_hook(lambda mod, args: calls.append(1))
    try:
        early = adapter.extract(Batch(texts=["a cat"]), ["text.0.ffn", "text.0.resid"])
        assert calls == []  # layer 1 never ran
        both = adapter.extract(Batch(texts=["a cat"]), ["text.0.ffn", "text.1.ffn"])
        assert calls == [1]
    finally:
        handle.remove()
    np.testing.assert_array_equal(early["text.0.ffn"], both["text.0.ffn"])


def test_left_padding_tokenizer_is_padded_right(bert_config, bert_tokenizer):
    from transformers import AutoTokenizer

    left = AutoTokenizer.from_pretrained(bert_tokenizer, padding_side="left")
    batch = Batch(texts=["a cat", "two astronauts float beside the space station"])
    a = HFTextAdapter(config=bert_config, tokenizer=left)
    b = HFTextAdapter(config=bert_config, tokenizer=bert_tokenizer)
    assert a.token_masks(batch)["text"][0, 0]  # token 0 is [CLS], not padding
    for rule in ("cls", "eot", "mean"):
        np.testing.assert_allclose(a.extract(batch, ["text.1.ffn"], rule)["text.1.ffn"],
                                   b.extract(batch, ["text.1.ffn"], rule)["text.1.ffn"], rtol=1e-5, atol=1e-6)
