"""Fixtures of the CLIP plugin tests: tiny random-weight models, offline tokenizers,
and an independent NumPy-free reference forward written from module weights."""

import json
import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

#: Tiny open_clip CLIP: 2 layers per tower, width 32, 4 heads, 32 px images.
TINY_OPEN_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "head_width": 8, "layers": 2},
    "text_cfg": {"width": 32, "heads": 4, "layers": 2, "context_length": 24},
}

#: Tiny transformers CLIPConfig arguments, same sizes.
TINY_HF = {
    "text_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 49408,
        "max_position_embeddings": 24,
        "bos_token_id": 49406,
        "eos_token_id": 49407,
        "pad_token_id": 49407,
    },
    "vision_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": 32,
        "patch_size": 8,
    },
    "projection_dim": 16,
}


def write_hf_tokenizer_files(folder):
    """Write open_clip's BPE vocabulary as a transformers CLIPTokenizer folder.

    open_clip ships the OpenAI CLIP BPE; its special tokens are spelled
    ``<start_of_text>``/``<end_of_text>`` where transformers uses
    ``<|startoftext|>``/``<|endoftext|>`` (same ids, 49406/49407).
    """
    from open_clip.tokenizer import SimpleTokenizer

    st = SimpleTokenizer()
    rename = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {rename.get(k, k): v for k, v in st.encoder.items()}
    merges = sorted(st.bpe_ranks, key=st.bpe_ranks.get)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    return str(folder)


@pytest.fixture(scope="session")
def hf_tokenizer_dir(tmp_path_factory):
    """Folder with vocab.json and merges.txt for transformers' CLIPTokenizer."""
    return write_hf_tokenizer_files(tmp_path_factory.mktemp("clip_tokenizer"))


# -- independent reference forward ------------------------------------------
def _ln(x, weight, bias, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * weight + bias


def reference_block(x, w, n_heads, key_mask=None, causal=False):
    """One pre-LN transformer block from raw weights, in float64.

    Parameters
    ----------
    x : (n, t, d) tensor
    w : dict with ln1_w, ln1_b, wq, bq, wk, bk, wv, bv, wo, bo, ln2_w, ln2_b,
        w1, b1, w2, b2 (linear weights as (out, in)), act (callable), eps.
    key_mask : (n, t) bool, True = key may be attended to.

    Returns
    -------
    dict of (n, t, width) tensors: head, attn_out, ffn, resid.
    """
    n, t, d = x.shape
    dh = d // n_heads
    h = _ln(x, w["ln1_w"], w["ln1_b"], w["eps"])
    q, k, v = (
        (h @ w[f"w{c}"].T + w[f"b{c}"]).reshape(n, t, n_heads, dh).permute(0, 2, 1, 3) for c in "qkv"
    )
    logits = q @ k.transpose(-1, -2) / math.sqrt(dh)
    allowed = torch.ones(n, 1, t, t, dtype=torch.bool)
    if causal:
        allowed = allowed & torch.ones(t, t, dtype=torch.bool).tril()
    if key_mask is not None:
        allowed = allowed & key_mask[:, None, None, :]
    logits = logits.masked_fill(~allowed, float("-inf"))
    att = torch.softmax(logits, dim=-1)
    heads = (att @ v).permute(0, 2, 1, 3).reshape(n, t, d)
    attn_out = heads @ w["wo"].T + w["bo"]
    x = x + attn_out
    ffn = w["act"](_ln(x, w["ln2_w"], w["ln2_b"], w["eps"]) @ w["w1"].T + w["b1"])
    x = x + ffn @ w["w2"].T + w["b2"]
    return {"head": heads, "attn_out": attn_out, "ffn": ffn, "resid": x}


def masked_mean(x, mask):
    """Mean over tokens; ``mask`` (n, t) bool or None (all tokens)."""
    if mask is None:
        return x.mean(1)
    m = mask[..., None].to(x.dtype)
    return (x * m).sum(1) / m.sum(1)


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


@pytest.fixture(scope="session")
def tiny_open_clip_cfg():
    """A fresh copy of :data:`TINY_OPEN_CLIP` (open_clip ``model_cfg``)."""
    import copy

    return copy.deepcopy(TINY_OPEN_CLIP)


@pytest.fixture(scope="session")
def tiny_hf_cfg():
    """A fresh copy of :data:`TINY_HF` (transformers ``CLIPConfig`` arguments)."""
    import copy

    return copy.deepcopy(TINY_HF)


@pytest.fixture(scope="session")
def ref():
    """The reference helpers (test files cannot import each other or conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        block=reference_block,
        layer_norm=_ln,
        masked_mean=masked_mean,
        gelu_erf=gelu_erf,
        quick_gelu=quick_gelu,
    )
