"""ClipAdapter with the open_clip backend, on tiny random-weight models."""

import numpy as np
import pytest
import torch

from nilearn_vlm.adapters import Batch
from nilearn_vlm.testing import check_adapter, make_images
from nilearn_vlm_clip import ClipAdapter

TEXTS = [
    "A cat sits on the mat!",
    "Two astronauts float beside the space station at night while the earth turns below them slowly",
    "coffee",
    "a red bus, in the rain.",
]
CONTEXT = 24  # TINY_OPEN_CLIP text context_length


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_open_clip_cfg):
    """A model built by open_clip itself (seed 3), its preprocessing, and its checkpoint."""
    import open_clip

    torch.manual_seed(3)
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None, **tiny_open_clip_cfg)
    model.eval()
    path = tmp_path_factory.mktemp("ckpt") / "tiny_clip.pt"
    torch.save(model.state_dict(), path)
    return model, preprocess, str(path)


@pytest.fixture(scope="module")
def adapter(reference, tiny_open_clip_cfg):
    """The adapter loading the reference's checkpoint (its own seed differs)."""
    return ClipAdapter(arch="ViT-B-32", pretrained=reference[2], model_cfg=tiny_open_clip_cfg, seed=123)


@pytest.fixture(scope="module")
def stimuli():
    return make_images(4, size=40, seed=1), list(TEXTS)


def test_registered_as_clip_plugin():
    from nilearn_vlm import get_adapter

    assert get_adapter("clip") is ClipAdapter


def test_conforms_to_the_adapter_contract(adapter):
    check_adapter(adapter)


def test_sites_cover_both_towers_every_layer(adapter):
    names = [s.name for s in adapter.sites()]
    for stream in ("vision", "text"):
        for layer in range(2):
            for kind in ("attn_out", "head", "ffn", "resid"):
                assert f"{stream}.{layer}.{kind}" in names
    assert len(names) == 16
    widths = {s.name: s.width for s in adapter.sites()}
    assert widths["vision.1.ffn"] == 128 and widths["text.0.head"] == 32
    mods = {s.stream: s.modalities for s in adapter.sites()}
    assert mods == {"vision": ("image",), "text": ("text",)}


def test_embeddings_equal_encode_image_and_encode_text(adapter, reference, stimuli):
    import open_clip

    model, preprocess, _ = reference
    images, texts = stimuli
    with torch.no_grad():
        pixels = torch.stack([preprocess(im.convert("RGB")) for im in images])
        ref_img = model.encode_image(pixels).numpy()
        ref_txt = model.encode_text(open_clip.tokenize(texts, context_length=CONTEXT)).numpy()
    emb = adapter.embed(Batch(images=images, texts=texts))
    assert emb["image"].shape == (4, 16) and emb["image"].dtype == np.float32
    assert np.abs(emb["image"] - ref_img).max() <= 1e-5
    assert np.abs(emb["text"] - ref_txt).max() <= 1e-5
    # the embeddings are not trivially equal: they vary across stimuli
    assert np.abs(ref_img[0] - ref_img[1]).max() > 1e-3


def _block_weights(block, ref, act):
    attn = block.attn
    wq, wk, wv = attn.in_proj_weight.double().chunk(3)
    bq, bk, bv = attn.in_proj_bias.double().chunk(3)
    return {
        "ln1_w": block.ln_1.weight.double(), "ln1_b": block.ln_1.bias.double(),
        "wq": wq, "wk": wk, "wv": wv, "bq": bq, "bk": bk, "bv": bv,
        "wo": attn.out_proj.weight.double(), "bo": attn.out_proj.bias.double(),
        "ln2_w": block.ln_2.weight.double(), "ln2_b": block.ln_2.bias.double(),
        "w1": block.mlp.c_fc.weight.double(), "b1": block.mlp.c_fc.bias.double(),
        "w2": block.mlp.c_proj.weight.double(), "b2": block.mlp.c_proj.bias.double(),
        "act": act, "eps": block.ln_1.eps,
    }


def _reference_units(model, preprocess, images, texts, ref):
    """Every site's token activations, recomputed from the module weights (float64)."""
    import open_clip

    out = {}
    with torch.no_grad():
        v = model.visual
        pixels = torch.stack([preprocess(im.convert("RGB")) for im in images]).double()
        x = torch.nn.functional.conv2d(pixels, v.conv1.weight.double(), stride=v.conv1.stride)
        x = x.flatten(2).transpose(1, 2)
        cls = v.class_embedding.double().expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.double()
        x = ref.layer_norm(x, v.ln_pre.weight.double(), v.ln_pre.bias.double(), v.ln_pre.eps)
        for layer, block in enumerate(v.transformer.resblocks):
            units = ref.block(x, _block_weights(block, ref, ref.gelu_erf), block.attn.num_heads)
            x = units["resid"]
            out.update({f"vision.{layer}.{k}": (u, None) for k, u in units.items()})
        ids = open_clip.tokenize(texts, context_length=CONTEXT)
        valid = torch.arange(ids.shape[1])[None, :] <= ids.argmax(dim=1)[:, None]  # SOT..EOT
        x = model.token_embedding.weight.double()[ids] + model.positional_embedding.double()
        for layer, block in enumerate(model.transformer.resblocks):
            units = ref.block(x, _block_weights(block, ref, ref.gelu_erf), block.attn.num_heads, causal=True)
            x = units["resid"]
            out.update({f"text.{layer}.{k}": (u, valid) for k, u in units.items()})
    return out


def test_units_equal_recomputation_from_weights(adapter, reference, stimuli, ref):
    model, preprocess, _ = reference
    images, texts = stimuli
    expected = _reference_units(model, preprocess, images, texts, ref)
    got = adapter.extract(Batch(images=images, texts=texts), adapter.resolve_sites("all"), "mean")
    assert set(got) == set(expected)
    for name, (tokens, valid) in expected.items():
        want = ref.masked_mean(tokens, valid).numpy()
        np.testing.assert_allclose(got[name], want, rtol=1e-4, atol=1e-5, err_msg=name)
    # short texts only: the hooks pool over the leading positions holding every valid token
    short = [texts[2], texts[3]]
    assert adapter.token_masks(Batch(texts=short))["text"].any(0).sum() < CONTEXT
    expected_short = _reference_units(model, preprocess, images[:2], short, ref)
    text_sites = [s for s in adapter.resolve_sites("text.*")]
    for rule in ("mean", "max"):
        got_short = adapter.extract(Batch(texts=short), text_sites, rule)
        for site in text_sites:
            tokens, valid = expected_short[site.name]
            if rule == "mean":
                want = ref.masked_mean(tokens, valid)
            else:
                want = tokens.masked_fill(~valid[..., None], float("-inf")).max(1).values
            np.testing.assert_allclose(got_short[site.name], want.numpy(), rtol=1e-4, atol=1e-5, err_msg=site.name)
    # token-wise too, for the attention sites: padded text positions are zeros
    tok = adapter.extract(Batch(images=images, texts=texts), ["vision.1.head", "text.1.head", "text.0.attn_out"], "none")
    for name in tok:
        tokens, valid = expected[name]
        want = tokens if valid is None else tokens * valid[..., None]
        np.testing.assert_allclose(tok[name], want.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


def test_head_units_project_to_attn_out(adapter, stimuli):
    """attn_out = out_proj(head) + bias, token by token (the heads are captured where computed)."""
    images, texts = stimuli
    sites = ["vision.0.head", "vision.0.attn_out", "text.1.head", "text.1.attn_out"]
    got = adapter.extract(Batch(images=images, texts=texts), sites, "none")
    for stream, layer, block in (("vision", 0, adapter.model.visual.transformer.resblocks[0]),
                                 ("text", 1, adapter.model.transformer.resblocks[1])):
        w = block.attn.out_proj.weight.detach().numpy()
        b = block.attn.out_proj.bias.detach().numpy()
        heads = got[f"{stream}.{layer}.head"]
        attn = got[f"{stream}.{layer}.attn_out"]
        valid = np.abs(heads).sum(-1) > 0
        np.testing.assert_allclose((heads @ w.T + b)[valid], attn[valid], rtol=1e-4, atol=1e-5)


def test_checkpoint_round_trip_gives_identical_units(tmp_path, tiny_open_clip_cfg, stimuli):
    images, texts = stimuli
    batch = Batch(images=images[:2], texts=texts[:2])
    sites = ["vision.1.ffn", "text.0.attn_out", "text.1.head"]
    a = ClipAdapter(model_cfg=tiny_open_clip_cfg, seed=5)
    path = tmp_path / "weights.pt"
    torch.save(a.model.state_dict(), path)
    b = ClipAdapter(model_cfg=tiny_open_clip_cfg, pretrained=str(path), seed=77)
    c = ClipAdapter(model_cfg=tiny_open_clip_cfg, seed=77)
    ua, ub, uc = (m.extract(batch, sites, "mean") for m in (a, b, c))
    for s in sites:
        np.testing.assert_array_equal(ua[s], ub[s])
        assert not np.allclose(ua[s], uc[s])
    assert a.weights_digest() == b.weights_digest() != c.weights_digest()
    assert a.fingerprint()["weights"] == a.weights_digest()


def test_random_weights_leave_global_rng_alone(tiny_open_clip_cfg):
    torch.manual_seed(0)
    first = torch.rand(3)
    torch.manual_seed(0)
    ClipAdapter(model_cfg=tiny_open_clip_cfg, seed=9).ensure_loaded()
    np.testing.assert_array_equal(torch.rand(3).numpy(), first.numpy())


def test_text_masks_cover_sot_through_eot(adapter):
    import open_clip

    texts = ["coffee", "a much longer caption with many words"]
    masks = adapter.token_masks(Batch(texts=texts))
    assert masks["text"].shape == (2, CONTEXT)
    ids = open_clip.tokenize(texts, context_length=CONTEXT)
    np.testing.assert_array_equal(masks["text"].sum(1), (ids.argmax(1) + 1).numpy())
    assert adapter.token_masks(Batch(images=make_images(1))) == {"vision": None}


def test_preprocessing_describes_inputs(adapter):
    prep = adapter.preprocessing()
    assert prep["image"]["size"] == [32, 32]
    assert len(prep["image"]["mean"]) == 3 and len(prep["image"]["std"]) == 3
    assert prep["tokenizer"]["context_length"] == CONTEXT


def test_hooks_removed_when_the_forward_fails(adapter, stimuli, monkeypatch):
    def boom(*args, **kwargs):
        assert adapter.active_hooks() == 3  # hooks are attached during the forward
        raise RuntimeError("forward failed")

    monkeypatch.setattr(adapter._backend, "forward", boom)
    with pytest.raises(RuntimeError, match="forward failed"):
        adapter.extract(Batch(texts=stimuli[1]), ["text.0.ffn", "text.1.head", "text.1.resid"], "mean")
    assert adapter.active_hooks() == 0
