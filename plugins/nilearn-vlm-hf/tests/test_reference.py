"""Captured units equal a NumPy recomputation from the module weights (written here)."""

import numpy as np
from scipy.special import erf

from nilearn_vlm.adapters import Batch
from nilearn_vlm.testing import make_images
from nilearn_vlm_hf import HFTextAdapter, HFVisionAdapter

TEXTS = ["a cat sits on the mat.", "coffee", "two red bus in the rainy city street at night"]


def _weights(model):
    return {k: v.detach().double().numpy() for k, v in model.state_dict().items()}


def _layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _gelu(x):
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def _attention(x, W, names, n_heads, mask=None):
    """Multi-head self-attention from weights ``names = (q, k, v, out)`` (state-dict prefixes).

    Returns the per-head context (head-major, before the output projection)
    and the output projection of it.
    """
    def lin(name, h):
        return h @ W[f"{name}.weight"].T + W[f"{name}.bias"]

    n, t, d = x.shape
    dh = d // n_heads
    q, k, v = (lin(name, x).reshape(n, t, n_heads, dh).transpose(0, 2, 1, 3) for name in names[:3])
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh)
    if mask is not None:
        scores = np.where(mask[:, None, None, :], scores, -np.inf)
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    probs = scores / scores.sum(-1, keepdims=True)
    ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n, t, d)
    return ctx, lin(names[3], ctx)


def _masked_mean(x, mask):
    if mask is None:
        return x.mean(1)
    m = mask[..., None].astype(float)
    return (x * m).sum(1) / m.sum(1)


def test_bert_units_equal_recomputation(bert_config, bert_tokenizer):
    adapter = HFTextAdapter(config=bert_config, tokenizer=bert_tokenizer, seed=3)
    W = _weights(adapter.model)
    enc = adapter.tokenizer(TEXTS, padding=True, return_tensors="np")
    ids, mask = enc["input_ids"], enc["attention_mask"].astype(bool)
    eps = adapter.model.config.layer_norm_eps
    t = ids.shape[1]
    x = (W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:t]
         + W["embeddings.token_type_embeddings.weight"][0])
    x = _layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], eps)
    expected = {}
    for layer in range(bert_config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}"
        names = [f"{p}.attention.self.{m}" for m in ("query", "key", "value")] + [f"{p}.attention.output.dense"]
        ctx, attn = _attention(x, W, names, bert_config["num_attention_heads"], mask)
        h = _layer_norm(x + attn, W[f"{p}.attention.output.LayerNorm.weight"],
                        W[f"{p}.attention.output.LayerNorm.bias"], eps)
        ffn = _gelu(h @ W[f"{p}.intermediate.dense.weight"].T + W[f"{p}.intermediate.dense.bias"])
        x = _layer_norm(h + ffn @ W[f"{p}.output.dense.weight"].T + W[f"{p}.output.dense.bias"],
                        W[f"{p}.output.LayerNorm.weight"], W[f"{p}.output.LayerNorm.bias"], eps)
        expected.update({f"text.{layer}.head": ctx, f"text.{layer}.attn_out": attn,
                         f"text.{layer}.ffn": ffn, f"text.{layer}.resid": x})
    sites = adapter.resolve_sites("all")
    batch = Batch(texts=TEXTS)
    mean = adapter.extract(batch, sites, "mean")
    tokens = adapter.extract(batch, sites, "none")
    cls = adapter.extract(batch, sites, "cls")
    for name, ref in expected.items():
        np.testing.assert_allclose(mean[name], _masked_mean(ref, mask), rtol=1e-4, atol=1e-4, err_msg=name)
        np.testing.assert_allclose(tokens[name], ref * mask[..., None], rtol=1e-4, atol=1e-4, err_msg=name)
        np.testing.assert_allclose(cls[name], ref[:, 0], rtol=1e-4, atol=1e-4, err_msg=name)


def test_vit_units_equal_recomputation(vit_config):
    adapter = HFVisionAdapter(config=vit_config, seed=5)
    W = _weights(adapter.model)
    size, patch = vit_config["image_size"], vit_config["patch_size"]
    images = make_images(3, size=size)[:1] + [im.crop((0, 0, size, size)) for im in make_images(3, size=size)[1:]]
    # pixels by hand: images already at the model size, rescale to [0, 1], normalise with mean = std = 0.5
    pix = np.stack([(np.asarray(im, dtype=float) / 255.0 - 0.5) / 0.5 for im in images])  # (n, H, W, 3)
    g = size // patch
    patches = pix.reshape(len(images), g, patch, g, patch, 3).transpose(0, 1, 3, 5, 2, 4).reshape(len(images), g * g, -1)
    conv = W["embeddings.patch_embeddings.projection.weight"].reshape(vit_config["hidden_size"], -1)
    emb = patches @ conv.T + W["embeddings.patch_embeddings.projection.bias"]
    cls = np.broadcast_to(W["embeddings.cls_token"], (len(images), 1, emb.shape[-1]))
    x = np.concatenate([cls, emb], axis=1) + W["embeddings.position_embeddings"]
    eps = adapter.model.config.layer_norm_eps
    expected = {}
    for layer in range(vit_config["num_hidden_layers"]):
        p = f"layers.{layer}"  # transformers 5 ViT: q/k/v/o_proj and mlp.fc1/fc2
        h0 = _layer_norm(x, W[f"{p}.layernorm_before.weight"], W[f"{p}.layernorm_before.bias"], eps)
        names = [f"{p}.attention.{m}_proj" for m in "qkvo"]
        ctx, attn = _attention(h0, W, names, vit_config["num_attention_heads"])
        h = x + attn
        h1 = _layer_norm(h, W[f"{p}.layernorm_after.weight"], W[f"{p}.layernorm_after.bias"], eps)
        ffn = _gelu(h1 @ W[f"{p}.mlp.fc1.weight"].T + W[f"{p}.mlp.fc1.bias"])
        x = h + ffn @ W[f"{p}.mlp.fc2.weight"].T + W[f"{p}.mlp.fc2.bias"]
        expected.update({f"vision.{layer}.head": ctx, f"vision.{layer}.attn_out": attn,
                         f"vision.{layer}.ffn": ffn, f"vision.{layer}.resid": x})
    out = adapter.extract(Batch(images=images), adapter.resolve_sites("all"), "none")
    for name, ref in expected.items():
        np.testing.assert_allclose(out[name], ref, rtol=1e-4, atol=1e-4, err_msg=name)
