"""The METER parts against independent references on the same weights."""

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from nilearn_vlm_meter._fusion import BertCrossLayer
from nilearn_vlm_meter._vision import VisualTransformer, resize_positional_embedding
from nilearn_vlm_meter.model import METER, METERConfig, build_meter

TINY = METERConfig(
    image_size=32, patch_size=8, vision_width=32, vision_layers=2, vision_heads=4, vision_mlp_width=64,
    text_width=24, text_layers=2, text_heads=2, text_intermediate=48, vocab_size=60,
    max_position_embeddings=20, hidden_size=16, num_top_layer=2, num_heads=4, fusion_intermediate=40,
)


def _randomise(module, seed):
    """Non-trivial values everywhere (LayerNorm gains and biases included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def test_vision_tower_matches_open_clip():
    open_clip_transformer = pytest.importorskip("open_clip.transformer")
    from open_clip.model import QuickGELU

    mine = VisualTransformer(image_size=32, patch_size=8, width=32, layers=11, heads=4, mlp_width=64)
    _randomise(mine, 0)
    ref = open_clip_transformer.VisionTransformer(
        image_size=32, patch_size=8, width=32, layers=11, heads=4, mlp_ratio=2.0,
        output_dim=16, act_layer=QuickGELU,
    )
    result = ref.load_state_dict(mine.state_dict(), strict=False)
    assert list(result.missing_keys) == ["proj"] and not result.unexpected_keys
    mine.eval(), ref.eval()
    x = torch.randn(3, 3, 32, 32)
    captured = {}
    hooks = [
        ref.transformer.resblocks[4].mlp.gelu.register_forward_hook(lambda m, a, o: captured.update(ffn=o)),
        ref.transformer.resblocks[4].attn.register_forward_hook(lambda m, a, o: captured.update(attn=o[0])),
        mine.transformer.resblocks[4].mlp.gelu.register_forward_hook(lambda m, a, o: captured.update(my_ffn=o)),
        mine.transformer.resblocks[4].attn.out_proj.register_forward_hook(
            lambda m, a, o: captured.update(my_attn=o)
        ),
    ]
    with torch.no_grad():
        # open_clip path with ln_post on every token and no projection
        expected = ref.ln_post(ref.transformer(ref._embeds(x)))
        got = mine(x)
    for h in hooks:
        h.remove()
    assert got.shape == (3, 17, 32)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    # the site tensors: QuickGELU output and attention output before the residual
    torch.testing.assert_close(captured["my_ffn"], captured["ffn"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(captured["my_attn"], captured["attn"], rtol=1e-4, atol=1e-5)
    # and the activation matters: exact GELU would give another tower
    ref_gelu = open_clip_transformer.VisionTransformer(
        image_size=32, patch_size=8, width=32, layers=11, heads=4, mlp_ratio=2.0, output_dim=16,
        act_layer=nn.GELU,
    )
    ref_gelu.load_state_dict(mine.state_dict(), strict=False)
    with torch.no_grad():
        other = ref_gelu.ln_post(ref_gelu.transformer(ref_gelu._embeds(x)))
    assert (other - expected).abs().max() > 1e-3


def _layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * g + b


def _mha(q_in, kv_in, w, prefix, mask, heads):
    def lin(name, x):
        return x @ w[f"{prefix}.{name}.weight"].T + w[f"{prefix}.{name}.bias"]

    q, k, v = lin("query", q_in), lin("key", kv_in), lin("value", kv_in)
    n, lq, d = q.shape
    dh = d // heads
    q = q.reshape(n, lq, heads, dh).permute(0, 2, 1, 3)
    k = k.reshape(n, -1, heads, dh).permute(0, 2, 1, 3)
    v = v.reshape(n, -1, heads, dh).permute(0, 2, 1, 3)
    scores = q @ k.transpose(-1, -2) / math.sqrt(dh) + (1.0 - mask[:, None, None, :]) * -10000.0
    ctx = torch.softmax(scores, dim=-1) @ v
    return ctx.permute(0, 2, 1, 3).reshape(n, lq, d)


def _cross_layer_formula(w, h, e, h_mask, e_mask, heads, eps=1e-12):
    """METER's BertCrossLayer written out (post-LN, erf GELU, masks -10000)."""

    def dense(name, x):
        return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    def ln(name, x):
        return _layer_norm(x, w[f"{name}.weight"], w[f"{name}.bias"], eps)

    a = ln("attention.output.LayerNorm", h + dense("attention.output.dense", _mha(h, h, w, "attention.self", h_mask, heads)))
    c = ln(
        "crossattention.output.LayerNorm",
        a + dense("crossattention.output.dense", _mha(a, e, w, "crossattention.self", e_mask, heads)),
    )
    inter = dense("intermediate.dense", c)
    gelu = 0.5 * inter * (1.0 + torch.erf(inter / math.sqrt(2.0)))
    return ln("output.LayerNorm", c + dense("output.dense", gelu)), gelu


def test_co_attention_layer_matches_formula():
    layer = BertCrossLayer(16, 4, 40).double().eval()
    _randomise(layer, 1)
    g = torch.Generator().manual_seed(2)
    h = torch.randn(3, 5, 16, generator=g, dtype=torch.float64)
    e = torch.randn(3, 7, 16, generator=g, dtype=torch.float64)
    h_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], dtype=torch.float64)
    e_mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1] * 3 + [0] * 4], dtype=torch.float64)
    w = {k: v for k, v in layer.state_dict().items()}
    expected, gelu = _cross_layer_formula(w, h, e, h_mask, e_mask, heads=4)
    seen = {}
    hook = layer.intermediate.register_forward_hook(lambda m, a, o: seen.update(ffn=o))
    ext = lambda m: (1.0 - m[:, None, None, :]) * -10000.0  # noqa: E731
    with torch.no_grad():
        got = layer(h, e, ext(h_mask), ext(e_mask))
    hook.remove()
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(seen["ffn"], gelu, rtol=1e-10, atol=1e-10)


def test_fusion_streams_read_previous_layer_outputs():
    model = build_meter(TINY, seed=3)
    _randomise(model, 4)
    g = torch.Generator().manual_seed(5)
    t = torch.randn(2, 6, TINY.text_width, generator=g)
    v = torch.randn(2, TINY.n_image_tokens, TINY.vision_width, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    with torch.no_grad():
        got_x, got_y = model.fuse(t, v, mask)
        tt = model.token_type_embeddings.weight
        x = t @ model.cross_modal_text_transform.weight.T + model.cross_modal_text_transform.bias + tt[0]
        y = v @ model.cross_modal_image_transform.weight.T + model.cross_modal_image_transform.bias + tt[1]
        ext_t = (1.0 - mask[:, None, None, :].float()) * -10000.0
        ext_v = torch.zeros(2, 1, 1, y.shape[1])
        for i in range(TINY.num_top_layer):
            x, y = (
                model.cross_modal_text_layers[i](x, y, ext_t, ext_v),
                model.cross_modal_image_layers[i](y, x, ext_v, ext_t),
            )
    torch.testing.assert_close(got_x, x, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_y, y, rtol=1e-5, atol=1e-5)


def test_layernorm_eps():
    model = build_meter(TINY, device="meta")
    fusion = [
        m for name, m in model.named_modules()
        if name.startswith(("cross_modal_text_layers", "cross_modal_image_layers")) and isinstance(m, nn.LayerNorm)
    ]
    assert len(fusion) == 2 * TINY.num_top_layer * 3
    assert all(m.eps == 1e-12 for m in fusion)
    vision = [m for m in model.vit_model.modules() if isinstance(m, nn.LayerNorm)]
    assert vision and all(m.eps == 1e-5 for m in vision)
    text = [m for m in model.text_transformer.modules() if isinstance(m, nn.LayerNorm)]
    assert text and all(m.eps == 1e-5 for m in text)


@pytest.mark.parametrize("grid_after", [14, 24])
def test_position_embedding_resize_matches_open_clip(grid_after):
    open_clip_model = pytest.importorskip("open_clip.model")
    pos = torch.randn(18 * 18 + 1, 8)
    state = {"visual.positional_embedding": pos.clone()}
    fake = SimpleNamespace(visual=SimpleNamespace(grid_size=(grid_after, grid_after)))
    open_clip_model.resize_pos_embed(state, fake, interpolation="bicubic", antialias=False)
    got = resize_positional_embedding(pos, grid_after)
    assert got.shape == (grid_after**2 + 1, 8)
    torch.testing.assert_close(got, state["visual.positional_embedding"])
    torch.testing.assert_close(got[0], pos[0])


def test_model_keys_are_the_official_names(official_keys):
    """Every key of the model is an official key once layer indices are abstracted."""
    official = {re.sub(r"\.\d+\.", ".N.", k) for k, _ in official_keys}
    mine = {re.sub(r"\.\d+\.", ".N.", k) for k in build_meter(TINY, device="meta").state_dict()}
    assert mine <= official
    leftovers = official - mine
    assert leftovers == {
        "vit_model.positional_embedding", "vit_model.ln_final.weight", "vit_model.ln_final.bias",
        "mlm_score.bias", "mlm_score.decoder.weight", "mlm_score.transform.dense.weight",
        "mlm_score.transform.dense.bias", "mlm_score.transform.LayerNorm.weight",
        "mlm_score.transform.LayerNorm.bias",
    }


def test_forward_deterministic_and_seeded():
    ids = torch.tensor([[0, 5, 9, 11, 2, 1, 1], [0, 7, 2, 1, 1, 1, 1]])
    mask = (ids != 1).long()
    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    a, b, c = build_meter(TINY, seed=7), build_meter(TINY, seed=7), build_meter(TINY, seed=8)
    with torch.no_grad():
        out_a, out_a2, out_b, out_c = a(pixels, ids, mask), a(pixels, ids, mask), b(pixels, ids, mask), c(pixels, ids, mask)
    for key in ("text_feats", "image_feats", "cls_feats", "itm_logits"):
        assert torch.equal(out_a[key], out_a2[key])
        assert torch.equal(out_a[key], out_b[key])
    assert not torch.allclose(out_a["cls_feats"], out_c["cls_feats"])
    assert out_a["image_feats"].shape == (2, TINY.n_image_tokens, TINY.hidden_size)
    assert np.isfinite(out_a["itm_logits"].numpy()).all()


def test_text_outputs_do_not_depend_on_padding():
    model = build_meter(TINY, seed=0)
    _randomise(model.cross_modal_text_layers, 9)
    ids = torch.tensor([[0, 5, 9, 11, 2]])
    padded = torch.cat([ids, torch.ones(1, 6, dtype=torch.long)], dim=1)
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        short = model(pixels, ids, torch.ones_like(ids))
        long = model(pixels, padded, (padded != 1).long())
    torch.testing.assert_close(long["text_feats"][:, :5], short["text_feats"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(long["image_feats"], short["image_feats"], rtol=1e-4, atol=1e-5)



def _bert_layer_formula(w, h, mask, heads, eps):
    """A post-LN BERT/RoBERTa encoder layer written out; returns (out, attn_out, ffn)."""

    def dense(name, x):
        return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    attn_out = dense("attention.output.dense", _mha(h, h, w, "attention.self", mask, heads))
    a = _layer_norm(h + attn_out, w["attention.output.LayerNorm.weight"], w["attention.output.LayerNorm.bias"], eps)
    inter = dense("intermediate.dense", a)
    ffn = 0.5 * inter * (1.0 + torch.erf(inter / math.sqrt(2.0)))
    out = _layer_norm(a + dense("output.dense", ffn), w["output.LayerNorm.weight"], w["output.LayerNorm.bias"], eps)
    return out, attn_out, ffn


def test_text_encoder_matches_meter_formula():
    """RoBERTa as METER runs it: padding-aware positions from 2, type 0, masks -10000."""
    model = build_meter(TINY, seed=1).double()
    _randomise(model.text_transformer, 6)
    text = model.text_transformer
    ids = torch.tensor([[0, 5, 9, 11, 2, 1, 1], [0, 7, 2, 1, 1, 1, 1]])
    mask = (ids != 1).double()
    sd = text.state_dict()
    positions = (torch.cumsum(mask, dim=1) * mask).long() + 1  # pads keep padding_idx 1
    x = (
        sd["embeddings.word_embeddings.weight"][ids]
        + sd["embeddings.position_embeddings.weight"][positions]
        + sd["embeddings.token_type_embeddings.weight"][0]
    )
    x = _layer_norm(x, sd["embeddings.LayerNorm.weight"], sd["embeddings.LayerNorm.bias"], 1e-5)
    expected_sites = []
    for i in range(TINY.text_layers):
        w = {k[len(f"encoder.layer.{i}."):]: v for k, v in sd.items() if k.startswith(f"encoder.layer.{i}.")}
        x, attn_out, ffn = _bert_layer_formula(w, x, mask, TINY.text_heads, 1e-5)
        expected_sites.append((attn_out, ffn))
    seen = {}
    hooks = []
    for i, layer in enumerate(text.encoder.layer):
        hooks.append(layer.attention.output.dense.register_forward_hook(lambda m, a, o, i=i: seen.update({(i, "attn"): o})))
        hooks.append(layer.intermediate.register_forward_hook(lambda m, a, o, i=i: seen.update({(i, "ffn"): o})))
    with torch.no_grad():
        got = model.encode_text(ids, mask.long())
    for h in hooks:
        h.remove()
    valid = mask.bool()
    torch.testing.assert_close(got[valid], x[valid], rtol=1e-9, atol=1e-9)
    for i, (attn_out, ffn) in enumerate(expected_sites):
        torch.testing.assert_close(seen[(i, "attn")][valid], attn_out[valid], rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(seen[(i, "ffn")][valid], ffn[valid], rtol=1e-9, atol=1e-9)
