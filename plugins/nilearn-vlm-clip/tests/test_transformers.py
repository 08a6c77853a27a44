"""ClipAdapter with the transformers backend, on tiny random-weight models, offline."""

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
MAX_LEN = 24  # TINY_HF max_position_embeddings


def _features(out):
    """transformers 5 returns a model output with pooler_output; 4.x a tensor."""
    return getattr(out, "pooler_output", out)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_hf_cfg, hf_tokenizer_dir):
    """CLIPModel built by transformers (seed 4), saved as a state dict and as a folder."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    torch.manual_seed(4)
    model = CLIPModel(CLIPConfig(**tiny_hf_cfg)).eval()
    root = tmp_path_factory.mktemp("hf")
    ckpt = root / "tiny_clip_state.pt"
    torch.save(model.state_dict(), ckpt)
    folder = root / "tiny_clip_folder"
    model.save_pretrained(folder)
    tokenizer = CLIPTokenizer.from_pretrained(hf_tokenizer_dir)
    tokenizer.save_pretrained(folder)
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return {"model": model, "ckpt": str(ckpt), "folder": str(folder), "tokenizer": tokenizer, "processor": processor}


@pytest.fixture(scope="module")
def adapter(reference, tiny_hf_cfg, hf_tokenizer_dir):
    return ClipAdapter(
        backend="transformers", model_cfg=tiny_hf_cfg, pretrained=reference["ckpt"],
        tokenizer=hf_tokenizer_dir, seed=99,
    )


@pytest.fixture(scope="module")
def stimuli():
    return make_images(4, size=40, seed=2), list(TEXTS)


def _reference_embeddings(reference, images, texts):
    model = reference["model"]
    with torch.no_grad():
        pixels = reference["processor"](images=images, return_tensors="pt")["pixel_values"]
        enc = reference["tokenizer"](texts, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")
        img = _features(model.get_image_features(pixel_values=pixels)).numpy()
        txt = _features(model.get_text_features(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]))
    return img, txt.numpy()


def test_conforms_to_the_adapter_contract(adapter):
    check_adapter(adapter)


def test_embeddings_equal_get_image_and_text_features(adapter, reference, stimuli):
    images, texts = stimuli
    ref_img, ref_txt = _reference_embeddings(reference, images, texts)
    emb = adapter.embed(Batch(images=images, texts=texts))
    assert emb["image"].shape == (4, 16) and emb["text"].shape == (4, 16)
    assert np.abs(emb["image"] - ref_img).max() <= 1e-5
    assert np.abs(emb["text"] - ref_txt).max() <= 1e-5
    assert np.abs(ref_txt[0] - ref_txt[2]).max() > 1e-3


def test_local_folder_loads_the_same_model(adapter, reference, stimuli):
    from_folder = ClipAdapter(backend="transformers", hf_id=reference["folder"])
    assert from_folder.weights_digest() == adapter.weights_digest()
    batch = Batch(images=stimuli[0][:2], texts=stimuli[1][:2])
    sites = ["vision.1.ffn", "text.1.head", "text.0.resid"]
    a, b = adapter.extract(batch, sites, "mean"), from_folder.extract(batch, sites, "mean")
    for s in sites:
        np.testing.assert_array_equal(a[s], b[s])
    seeded = ClipAdapter(backend="transformers", model_cfg=adapter.model_params["model_cfg"],
                         tokenizer=adapter.model_params["tokenizer"], seed=99)
    assert seeded.weights_digest() != adapter.weights_digest()


def _layer_weights(layer, act):
    att = layer.self_attn
    d = {
        "ln1_w": layer.layer_norm1.weight, "ln1_b": layer.layer_norm1.bias,
        "wq": att.q_proj.weight, "bq": att.q_proj.bias, "wk": att.k_proj.weight, "bk": att.k_proj.bias,
        "wv": att.v_proj.weight, "bv": att.v_proj.bias, "wo": att.out_proj.weight, "bo": att.out_proj.bias,
        "ln2_w": layer.layer_norm2.weight, "ln2_b": layer.layer_norm2.bias,
        "w1": layer.mlp.fc1.weight, "b1": layer.mlp.fc1.bias, "w2": layer.mlp.fc2.weight, "b2": layer.mlp.fc2.bias,
    }
    d = {k: v.detach().double() for k, v in d.items()}
    d.update(act=act, eps=layer.layer_norm1.eps)
    return d


def test_units_equal_recomputation_from_weights(adapter, reference, stimuli, ref):
    model = reference["model"]
    images, texts = stimuli
    expected = {}
    with torch.no_grad():
        vm = model.vision_model
        pixels = reference["processor"](images=images, return_tensors="pt")["pixel_values"].double()
        emb = vm.embeddings
        x = torch.nn.functional.conv2d(pixels, emb.patch_embedding.weight.double(), stride=emb.patch_size)
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([emb.class_embedding.double().expand(x.shape[0], 1, -1), x], 1)
        x = x + emb.position_embedding.weight.double()
        x = ref.layer_norm(x, vm.pre_layrnorm.weight.double(), vm.pre_layrnorm.bias.double(), vm.pre_layrnorm.eps)
        for i, layer in enumerate(vm.encoder.layers):
            units = ref.block(x, _layer_weights(layer, ref.quick_gelu), layer.self_attn.num_heads)
            x = units["resid"]
            expected.update({f"vision.{i}.{k}": (u, None) for k, u in units.items()})
        enc = reference["tokenizer"](texts, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")
        valid = enc["attention_mask"].bool()
        tm = model.text_model
        t = enc["input_ids"].shape[1]
        x = tm.embeddings.token_embedding.weight.double()[enc["input_ids"]]
        x = x + tm.embeddings.position_embedding.weight.double()[:t]
        for i, layer in enumerate(tm.encoder.layers):
            units = ref.block(x, _layer_weights(layer, ref.quick_gelu), layer.self_attn.num_heads,
                              key_mask=valid, causal=True)
            x = units["resid"]
            expected.update({f"text.{i}.{k}": (u, valid) for k, u in units.items()})
    got = adapter.extract(Batch(images=images, texts=texts), adapter.resolve_sites("all"), "mean")
    assert set(got) == set(expected)
    for name, (tokens, mask) in expected.items():
        np.testing.assert_allclose(got[name], ref.masked_mean(tokens, mask).numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=name)
    masks = adapter.token_masks(Batch(texts=texts))
    np.testing.assert_array_equal(masks["text"], valid.numpy())
