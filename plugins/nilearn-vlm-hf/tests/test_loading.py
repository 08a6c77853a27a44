"""Loading from a local checkpoint folder (what save_pretrained writes), offline."""

import numpy as np
import pytest

from nilearn_vlm.adapters import Batch
from nilearn_vlm.testing import make_images
from nilearn_vlm_hf import HFTextAdapter, HFVisionAdapter, SiglipAdapter

TEXTS = ["a cat sits on the mat.", "two astronauts float beside the space station at night"]


def _same_units(a, b, batch):
    sites = a.resolve_sites("all")
    assert [s.name for s in sites] == [s.name for s in b.resolve_sites("all")]
    ua, ub = a.extract(batch, sites, "mean"), b.extract(batch, sites, "mean")
    for s in sites:
        np.testing.assert_array_equal(ua[s.name], ub[s.name], err_msg=s.name)


def test_text_folder_round_trip(bert_config, bert_tokenizer, tmp_path):
    random = HFTextAdapter(config=bert_config, tokenizer=bert_tokenizer, seed=7)
    random.model.save_pretrained(tmp_path)
    random.tokenizer.save_pretrained(tmp_path)
    loaded = HFTextAdapter(pretrained=str(tmp_path))
    assert loaded.weights_digest() == random.weights_digest()
    _same_units(random, loaded, Batch(texts=TEXTS))
    assert loaded.fingerprint()["weights"] == random.fingerprint()["weights"]


def test_vision_folder_round_trip(vit_config, tmp_path):
    random = HFVisionAdapter(config=vit_config, seed=7)
    random.model.save_pretrained(tmp_path)
    random.image_processor.save_pretrained(tmp_path)
    loaded = HFVisionAdapter(pretrained=tmp_path)  # a Path works too
    _same_units(random, loaded, Batch(images=make_images(3)))


def test_vision_folder_without_processor_warns(vit_config, tmp_path):
    random = HFVisionAdapter(config=vit_config, seed=7)
    random.model.save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="no image processor config"):
        loaded = HFVisionAdapter(pretrained=str(tmp_path)).ensure_loaded()
    _same_units(random, loaded, Batch(images=make_images(2)))


def test_folder_without_tokenizer_files_raises(bert_config, bert_tokenizer, tmp_path):
    HFTextAdapter(config=bert_config, tokenizer=bert_tokenizer).model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="empty or broken|could not load a tokenizer"):
        HFTextAdapter(pretrained=str(tmp_path)).ensure_loaded()
    # the fix the message names: a tokenizer folder
    adapter = HFTextAdapter(pretrained=str(tmp_path), tokenizer=bert_tokenizer)
    assert adapter.extract(Batch(texts=TEXTS), ["text.0.ffn"])["text.0.ffn"].shape == (2, 32)


def test_siglip_folder_round_trip(siglip_config, bert_tokenizer, tmp_path):
    random = SiglipAdapter(config=siglip_config, tokenizer=bert_tokenizer, seed=2)
    random.model.save_pretrained(tmp_path)
    random.image_processor.save_pretrained(tmp_path)
    loaded = SiglipAdapter(pretrained=str(tmp_path), tokenizer=bert_tokenizer)
    _same_units(random, loaded, Batch(images=make_images(2), texts=TEXTS))


def test_a_folder_asking_to_run_its_own_code_is_refused_without_a_prompt(tmp_path, monkeypatch):
    """A hostile model folder (config auto_map + Python file): transformers never asks, nothing runs."""
    import builtins
    import json

    marker = tmp_path / "code-ran"
    (tmp_path / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nfrom transformers import PretrainedConfig, PreTrainedModel\n"
        "class EvilConfig(PretrainedConfig):\n    model_type = 'evil'\n"
        "class EvilModel(PreTrainedModel):\n    config_class = EvilConfig\n"
    )
    (tmp_path / "config.json").write_text(json.dumps(
        {"model_type": "evil", "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}}
    ))
    asked = []
    monkeypatch.setattr(builtins, "input", lambda *a: asked.append(a) or "y")
    with pytest.raises(Exception) as info:
        HFTextAdapter(pretrained=str(tmp_path)).model
    assert asked == [], "transformers asked whether to run the folder's code"
    assert not marker.exists(), "the folder's code ran"
    assert "trust_remote_code" in str(info.value) or "custom code" in str(info.value)
