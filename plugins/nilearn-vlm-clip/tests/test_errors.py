"""Clear errors of the CLIP adapter: bad parameters, tokenizers, modalities, pooling."""

import pytest

from nilearn_vlm.adapters import Batch
from nilearn_vlm.testing import make_images
from nilearn_vlm_clip import ClipAdapter


@pytest.fixture(scope="module")
def adapter(tiny_open_clip_cfg):
    return ClipAdapter(model_cfg=tiny_open_clip_cfg)


def test_unknown_arch_names_close_matches():
    with pytest.raises(ValueError, match=r"unknown open_clip arch 'ViT-B-33'.*'ViT-B-32'"):
        ClipAdapter(arch="ViT-B-33").ensure_loaded()


def test_unknown_backend_and_parameters():
    with pytest.raises(ValueError, match=r"unknown clip backend 'jax'.*open_clip.*transformers"):
        ClipAdapter(backend="jax").ensure_loaded()
    with pytest.raises(TypeError, match=r"unknown clip model_params \['archh'\]"):
        ClipAdapter(archh="ViT-B-32").ensure_loaded()
    with pytest.raises(TypeError, match="model_cfg must be a dict"):
        ClipAdapter(model_cfg="tiny").ensure_loaded()


def test_unknown_pretrained_tag_or_missing_file(tiny_open_clip_cfg, tmp_path):
    with pytest.raises(ValueError, match=r"pretrained='opnai' is neither an existing checkpoint file nor"):
        ClipAdapter(pretrained="opnai", model_cfg=tiny_open_clip_cfg).ensure_loaded()
    missing = str(tmp_path / "nope.pt")
    with pytest.raises(ValueError, match="neither an existing checkpoint file"):
        ClipAdapter(pretrained=missing, model_cfg=tiny_open_clip_cfg).ensure_loaded()


def test_non_vit_image_tower_is_refused(tiny_open_clip_cfg):
    cfg = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 8},
           "text_cfg": tiny_open_clip_cfg["text_cfg"]}
    with pytest.raises(ValueError, match="ModifiedResNet image tower; the clip adapter needs an open_clip ViT"):
        ClipAdapter(arch="RN50", model_cfg=cfg).ensure_loaded()


def test_empty_transformers_tokenizer_is_refused(tiny_hf_cfg, tmp_path):
    empty = tmp_path / "no_vocab"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"is empty \(\d+ tokens\).*vocab.json and merges.txt"):
        ClipAdapter(backend="transformers", model_cfg=tiny_hf_cfg, tokenizer=str(empty)).ensure_loaded()


def test_transformers_random_weights_need_a_tokenizer(tiny_hf_cfg):
    with pytest.raises(ValueError, match="needs tokenizer="):
        ClipAdapter(backend="transformers", model_cfg=tiny_hf_cfg).ensure_loaded()
    with pytest.raises(ValueError, match="pretrained must be None or a state-dict file"):
        ClipAdapter(backend="transformers", model_cfg=tiny_hf_cfg, pretrained="openai").ensure_loaded()
    with pytest.raises(ValueError, match="drop it or drop hf_id"):
        ClipAdapter(backend="transformers", model_cfg=tiny_hf_cfg, hf_id="some/model").ensure_loaded()


def test_tokenizer_vocabulary_larger_than_the_model(tiny_hf_cfg, hf_tokenizer_dir):
    import copy

    cfg = copy.deepcopy(tiny_hf_cfg)
    cfg["text_config"]["vocab_size"] = 1000
    with pytest.raises(ValueError, match=r"ids up to 49407 but the text model's vocab_size is 1000"):
        ClipAdapter(backend="transformers", model_cfg=cfg, tokenizer=hf_tokenizer_dir).ensure_loaded()


def test_missing_modality_is_an_error_not_a_dummy_input(adapter):
    with pytest.raises(ValueError, match=r"site 'vision.0.ffn' needs image input but this batch has only text"):
        adapter.extract(Batch(texts=["a cat"]), ["vision.0.ffn", "text.0.ffn"], "mean")
    with pytest.raises(ValueError, match=r"needs text input"):
        adapter.extract(Batch(images=make_images(1)), ["text.1.resid"], "mean")
    assert adapter.active_hooks() == 0


def test_eot_pooling_on_vision_suggests_cls_or_mean(adapter):
    batch = Batch(images=make_images(2), texts=["a", "b"])
    with pytest.raises(ValueError, match=r"vision has no EOT token: use 'cls' or 'mean'"):
        adapter.extract(batch, ["vision.0.attn_out"], "eot")
    # eot on text with cls on vision is fine
    out = adapter.extract(batch, ["vision.0.attn_out", "text.0.attn_out"], {"vision": "cls", "text": "eot"})
    assert out["vision.0.attn_out"].shape == (2, 32)


def test_unknown_site_is_named(adapter):
    with pytest.raises(ValueError, match=r"unknown site 'text.7.ffn'"):
        adapter.extract(Batch(texts=["a"]), ["text.7.ffn"], "mean")
    with pytest.raises(ValueError, match="matches no site"):
        adapter.resolve_sites("*.mlp")
