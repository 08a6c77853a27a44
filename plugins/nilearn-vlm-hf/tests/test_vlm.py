"""SigLIP (dual encoder) and BridgeTower (co-attention) with random weights."""

import numpy as np
import pytest

from nilearn_vlm import get_adapter
from nilearn_vlm.adapters import Batch
from nilearn_vlm.testing import check_adapter, make_images
from nilearn_vlm_hf import BridgeTowerAdapter, SiglipAdapter

TEXTS = ["a cat sits on the mat.", "coffee", "two red bus in the rainy city street at night"]


@pytest.fixture
def siglip(siglip_config, bert_tokenizer):
    return SiglipAdapter(config=siglip_config, tokenizer=bert_tokenizer)


@pytest.fixture
def bridgetower(bridgetower_config, roberta_tokenizer):
    return BridgeTowerAdapter(config=bridgetower_config, tokenizer=roberta_tokenizer)


def test_registered():
    assert get_adapter("siglip") is SiglipAdapter
    assert get_adapter("bridgetower") is BridgeTowerAdapter


def test_check_adapter_siglip(siglip):
    check_adapter(siglip)


def test_siglip_sites_and_towers(siglip):
    names = [s.name for s in siglip.sites()]
    assert names[:4] == ["vision.0.attn_out", "vision.0.head", "vision.0.ffn", "vision.0.resid"]
    assert "text.1.resid" in names and len(names) == 16
    # two independent towers: text units do not depend on the images given beside them
    alone = siglip.extract(Batch(texts=TEXTS), ["text.1.ffn"])
    paired = siglip.extract(Batch(images=make_images(3), texts=TEXTS), ["text.1.ffn", "vision.1.ffn"])
    np.testing.assert_array_equal(alone["text.1.ffn"], paired["text.1.ffn"])
    # no CLS: every token is a patch
    tokens = siglip.extract(Batch(images=make_images(2)), ["vision.0.resid"], "none")["vision.0.resid"]
    assert tokens.shape == (2, (32 // 8) ** 2, 16)


def test_check_adapter_bridgetower_without_fillers(bridgetower):
    check_adapter(bridgetower)


def test_check_adapter_bridgetower_with_fillers(bridgetower_config, roberta_tokenizer):
    check_adapter(BridgeTowerAdapter(config=bridgetower_config, tokenizer=roberta_tokenizer,
                                     missing_image="gray", missing_text=""))


def test_bridgetower_sites_are_named_as_meter(bridgetower, bridgetower_config):
    names = [s.name for s in bridgetower.sites()]
    n_fusion = bridgetower_config["num_hidden_layers"]
    for stream in ("cross_text", "cross_image"):
        for layer in range(n_fusion):
            for kind in ("self_attn_out", "cross_attn_out", "ffn", "resid"):
                assert f"{stream}.{layer}.{kind}" in names
    assert f"cross_text.{n_fusion}.ffn" not in names
    assert "vision.0.attn_out" in names and "vision.0.head" not in names  # MHA: no per-head hook
    assert "text.2.head" in names
    default = [s.name for s in bridgetower.resolve_sites("default")]
    assert "cross_image.1.cross_attn_out" in default and "cross_text.0.self_attn_out" in default
    assert "cross_text.0.ffn" not in default
    sites = {s.name: s for s in bridgetower.sites()}
    assert sites["cross_text.0.ffn"].modalities == ("image", "text")
    assert sites["vision.2.ffn"].width == 4 * 64


def test_bridgetower_fusion_sees_both_modalities(bridgetower):
    sites = ["text.2.ffn", "vision.2.ffn", "cross_text.0.cross_attn_out", "cross_image.1.resid"]
    images = make_images(3)
    a = bridgetower.extract(Batch(images=images, texts=TEXTS), sites)
    b = bridgetower.extract(Batch(images=images[::-1], texts=TEXTS), sites)  # other images, same texts
    np.testing.assert_allclose(a["text.2.ffn"], b["text.2.ffn"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(a["vision.2.ffn"], b["vision.2.ffn"])
    assert not np.allclose(a["cross_text.0.cross_attn_out"], b["cross_text.0.cross_attn_out"])
    assert not np.allclose(a["cross_image.1.resid"], b["cross_image.1.resid"])


def _ln(x, W, name, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * W[f"{name}.weight"] + W[f"{name}.bias"]


def _mha(xq, xkv, W, prefix, n_heads, key_mask=None):
    """Per-head attention from BERT-style weights; returns the output projection of the context."""
    def lin(name, h):
        return h @ W[f"{prefix}.{name}.weight"].T + W[f"{prefix}.{name}.bias"]

    n, tq, d = xq.shape
    dh = d // n_heads

    def split(h):
        return h.reshape(n, h.shape[1], n_heads, dh).transpose(0, 2, 1, 3)

    q, k, v = split(lin("self.query", xq)), split(lin("self.key", xkv)), split(lin("self.value", xkv))
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh)
    if key_mask is not None:
        s = np.where(key_mask[:, None, None, :], s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    ctx = ((p / p.sum(-1, keepdims=True)) @ v).transpose(0, 2, 1, 3).reshape(n, tq, d)
    return lin("output.dense", ctx)


def test_bridgetower_image_fusion_layer_equals_recomputation(bridgetower, bridgetower_config):
    # recompute cross_image.0 from its weights and its inputs (captured here with a test hook): bidirectional
    # self-attention over image tokens (transformers builds it with a causal flag that eager attention, the
    # only BridgeTower kernel, ignores), cross-attention to the valid text tokens, then the FFN
    from scipy.special import erf

    batch = Batch(images=make_images(3), texts=TEXTS)
    layer = bridgetower.model.cross_modal_image_layers[0]
    seen = {}
    handle = layer.register_forward_pre_hook(
        lambda mod, args: seen.update(x=args[0].double().numpy(), y=args[1].double().numpy()))
    try:
        out = bridgetower.extract(batch, [f"cross_image.0.{k}" for k in ("self_attn_out", "cross_attn_out", "ffn",
                                                                        "resid")], "none")
    finally:
        handle.remove()
    W = {k: v.detach().double().numpy() for k, v in layer.state_dict().items()}
    eps = layer.attention.output.LayerNorm.eps
    heads = bridgetower_config["num_attention_heads"]
    text_mask = bridgetower.token_masks(batch)["text"]
    assert not text_mask.all()  # padded texts: the cross-attention mask matters
    x, y = seen["x"], seen["y"]
    self_out = _mha(x, x, W, "attention", heads)
    h = _ln(x + self_out, W, "attention.output.LayerNorm", eps)
    cross_out = _mha(h, y, W, "crossattention", heads, key_mask=text_mask)
    h2 = _ln(h + cross_out, W, "crossattention.output.LayerNorm", eps)
    pre = h2 @ W["intermediate.dense.weight"].T + W["intermediate.dense.bias"]
    ffn = 0.5 * pre * (1 + erf(pre / np.sqrt(2)))
    resid = _ln(h2 + ffn @ W["output.dense.weight"].T + W["output.dense.bias"], W, "output.LayerNorm", eps)
    for kind, ref in (("self_attn_out", self_out), ("cross_attn_out", cross_out), ("ffn", ffn), ("resid", resid)):
        np.testing.assert_allclose(out[f"cross_image.0.{kind}"], ref, rtol=1e-4, atol=1e-4, err_msg=kind)


def test_bridgetower_paired_errors(bridgetower):
    with pytest.raises(ValueError, match="missing_image="):
        bridgetower.extract(Batch(texts=TEXTS), ["cross_text.0.ffn"])
    with pytest.raises(ValueError, match="missing_text="):
        bridgetower.extract(Batch(images=make_images(3)), ["cross_image.0.ffn", "vision.0.ffn"])
    with pytest.raises(ValueError, match="missing_image="):
        bridgetower.extract(Batch(texts=TEXTS), ["vision.0.ffn"])
    assert bridgetower.active_hooks() == 0
    with pytest.raises(ValueError, match="missing_image='purple' is not supported"):
        BridgeTowerAdapter(config={}, missing_image="purple").ensure_loaded()


def test_bridgetower_unimodal_sites_need_only_their_modality(bridgetower):
    # a tower run alone gives the units the full paired forward gives
    images = make_images(3)
    full = bridgetower.extract(Batch(images=images, texts=TEXTS),
                               ["text.2.resid", "vision.2.resid", "cross_text.1.ffn"])
    text = bridgetower.extract(Batch(texts=TEXTS), ["text.2.resid"])
    vision = bridgetower.extract(Batch(images=images), ["vision.2.resid"])
    np.testing.assert_allclose(text["text.2.resid"], full["text.2.resid"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(vision["vision.2.resid"], full["vision.2.resid"], rtol=1e-5, atol=1e-5)
    assert set(bridgetower.token_masks(Batch(texts=TEXTS))) == {"text"}


def test_bridgetower_fillers(bridgetower_config, roberta_tokenizer):
    from PIL import Image

    adapter = BridgeTowerAdapter(config=bridgetower_config, tokenizer=roberta_tokenizer,
                                 missing_image="gray", missing_text="")
    gray = Image.fromarray(np.full((32, 32, 3), 128, dtype=np.uint8))
    filled = adapter.extract(Batch(texts=TEXTS[:2]), ["cross_text.1.ffn"])
    explicit = adapter.extract(Batch(images=[gray, gray], texts=TEXTS[:2]), ["cross_text.1.ffn"])
    np.testing.assert_array_equal(filled["cross_text.1.ffn"], explicit["cross_text.1.ffn"])
    # None entries inside a batch are filled too
    mixed = adapter.extract(Batch(images=[gray, None], texts=[None, TEXTS[1]]), ["cross_text.1.ffn"])
    blank = adapter.extract(Batch(images=[gray], texts=[""]), ["cross_text.1.ffn"])
    np.testing.assert_allclose(mixed["cross_text.1.ffn"][0], blank["cross_text.1.ffn"][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mixed["cross_text.1.ffn"][1], explicit["cross_text.1.ffn"][1], rtol=1e-5, atol=1e-6)


def test_bridgetower_depths_follow_its_bridges(bridgetower, bridgetower_config):
    import torch

    T = bridgetower_config["text_config"]["num_hidden_layers"]
    F = bridgetower_config["num_hidden_layers"]
    s = T - F + 1  # encoder layers run before the first fusion layer
    depth = bridgetower.layer_depths()
    for stream in ("text", "vision"):
        for l in range(T):
            assert depth[(stream, l)] == pytest.approx((l + 1) / (s + F))
    for stream in ("cross_text", "cross_image"):
        for k in range(F):
            assert depth[(stream, k)] == pytest.approx((s + k + 1) / (s + F))
    # the top encoder layers run beside the fusion layers: text layer s - 1 + k feeds fusion layer k only
    batch = Batch(images=make_images(3), texts=TEXTS)
    sites = [f"cross_text.{k}.resid" for k in range(F)]
    base = bridgetower.extract(batch, sites)

    def moved(layer):
        def shift(module, args, output):
            x = output[0] if isinstance(output, tuple) else output
            x = x + torch.linspace(-1, 1, x.shape[-1])
            return (x,) + tuple(output[1:]) if isinstance(output, tuple) else x

        handle = bridgetower._model.text_model.encoder.layer[layer].register_forward_hook(shift)
        try:
            return bridgetower.extract(batch, sites)
        finally:
            handle.remove()

    for k in range(F):
        out = moved(s - 1 + k)
        for j in range(F):
            changed = not np.allclose(out[sites[j]], base[sites[j]])
            assert changed == (j >= k), (k, j)
