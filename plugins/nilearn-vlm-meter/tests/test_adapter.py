"""The METER adapter: contract, sites, paired inputs, preprocessing, registration."""

import numpy as np
import pytest
import torch
from PIL import Image

from nilearn_vlm.adapters import Batch
from nilearn_vlm.testing import check_adapter, default_batch, make_images
from nilearn_vlm_meter.adapter import METERAdapter, meter_sites
from nilearn_vlm_meter.model import METERConfig
from nilearn_vlm_meter.preprocess import CLIP_MEAN, CLIP_STD, clip_transform


def test_check_adapter_without_fillers(small_params):
    check_adapter(METERAdapter(**small_params))


def test_check_adapter_with_fillers(small_params):
    check_adapter(METERAdapter(**small_params, missing_text="", missing_image="black"))


def test_entry_point_registration():
    from nilearn_vlm import get_adapter, list_plugins

    assert get_adapter("meter") is METERAdapter
    table = list_plugins()
    row = table[(table.name == "meter") & (table.kind == "adapter")]
    assert list(row.distribution) == ["nilearn-vlm-meter"]


def test_units_of_every_site_for_a_paired_stimulus_set(small_params):
    adapter = METERAdapter(**small_params)
    batch = default_batch(n=5, seed=3)
    sites = adapter.resolve_sites("all")  # loads the model
    cfg = adapter.config_
    expected_names = (
        [f"vision.{i}.{k}" for i in range(cfg.vision_layers) for k in ("attn_out", "ffn")]
        + [f"text.{i}.{k}" for i in range(cfg.text_layers) for k in ("attn_out", "ffn")]
        + [
            f"{s}.{i}.{k}"
            for s in ("cross_text", "cross_image")
            for i in range(cfg.num_top_layer)
            for k in ("self_attn_out", "cross_attn_out", "ffn")
        ]
    )
    assert [s.name for s in sites] == expected_names
    pooled = adapter.extract(batch, sites, "mean")
    tokens = adapter.extract(batch, sites, "none")
    n_text = small_params["max_text_len"]
    for site in sites:
        width = {"ffn": {"vision": cfg.vision_mlp_width, "text": cfg.text_intermediate}.get(
            site.stream, cfg.fusion_intermediate)}.get(site.kind)
        if width is None:
            width = {"vision": cfg.vision_width, "text": cfg.text_width}.get(site.stream, cfg.hidden_size)
        assert site.width == width
        assert pooled[site.name].shape == (5, width)
        assert pooled[site.name].dtype == np.float32 and np.isfinite(pooled[site.name]).all()
        assert pooled[site.name].std() > 0
        n_tok = n_text if site.stream in ("text", "cross_text") else cfg.n_image_tokens
        assert tokens[site.name].shape == (5, n_tok, width)
    assert sum(s.width for s in sites) == sum(len(s.unit_names()) for s in sites)
    assert adapter.active_hooks() == 0


def test_full_size_site_inventory():
    sites = meter_sites(METERConfig())
    total = {}
    for s in sites:
        total[(s.stream, s.kind)] = total.get((s.stream, s.kind), 0) + s.width
    # the unit counts of the released CLIP-16 models
    assert total[("vision", "ffn")] == 33792 and total[("vision", "attn_out")] == 8448
    assert total[("text", "ffn")] == 36864 and total[("text", "attn_out")] == 9216
    for stream in ("cross_text", "cross_image"):
        assert total[(stream, "ffn")] == 18432
        assert total[(stream, "self_attn_out")] + total[(stream, "cross_attn_out")] == 9216
    assert len(sites) == 11 * 2 + 12 * 2 + 2 * 6 * 3


def test_default_sites_are_attention_outputs(small_params):
    adapter = METERAdapter(**small_params)
    kinds = {s.kind for s in adapter.resolve_sites("default")}
    assert kinds == {"attn_out", "self_attn_out", "cross_attn_out"}


def test_missing_modality_needs_a_filler(small_params):
    adapter = METERAdapter(**small_params)
    texts = ["a cat", "a dog"]
    with pytest.raises(ValueError, match="missing_image='black'"):
        adapter.extract(Batch(texts=texts), ["cross_text.0.ffn"], "mean")
    with pytest.raises(ValueError, match="missing_image"):
        adapter.extract(Batch(texts=texts), ["vision.0.ffn"], "mean")
    with pytest.raises(ValueError, match="missing_text=''"):
        adapter.extract(Batch(images=make_images(2)), ["cross_image.1.ffn"], "mean")
    with pytest.raises(ValueError, match=r"stimuli \[1\] have no text"):
        adapter.extract(Batch(images=make_images(2), texts=["a", None]), ["text.0.ffn"], "mean")
    with pytest.raises(ValueError, match=r"stimuli \[0\] have no text"):  # pandas' missing value
        adapter.extract(Batch(images=make_images(2), texts=[float("nan"), "a"]), ["text.0.ffn"], "mean")
    assert adapter.active_hooks() == 0
    # unimodal sites need only their own modality
    out = adapter.extract(Batch(texts=texts), ["text.1.ffn"], "mean")
    assert out["text.1.ffn"].shape == (2, small_params["text_intermediate"])
    out = adapter.extract(Batch(images=make_images(2)), ["vision.1.attn_out"], "cls")
    assert out["vision.1.attn_out"].shape == (2, small_params["vision_width"])


def test_fillers_equal_explicit_inputs(small_params):
    size = small_params["image_size"]
    filled = METERAdapter(**small_params, missing_text="", missing_image="black")
    plain = METERAdapter(**small_params)
    images, texts = make_images(3, seed=1), ["a cat", "coffee", "two dogs"]
    black = [Image.new("RGB", (size, size))] * 3
    sites = ["cross_text.1.ffn", "cross_image.2.self_attn_out", "vision.0.ffn", "text.1.attn_out"]
    got = filled.extract(Batch(texts=texts), sites, "mean")
    want = plain.extract(Batch(images=black, texts=texts), sites, "mean")
    got_img = filled.extract(Batch(images=images), sites, "mean")
    want_img = plain.extract(Batch(images=images, texts=["", "", ""]), sites, "mean")
    mixed = filled.extract(Batch(images=[images[0], None, images[2]], texts=[None, "coffee", "two dogs"]), sites, "mean")
    want_mixed = plain.extract(Batch(images=[images[0], black[0], images[2]], texts=["", "coffee", "two dogs"]), sites, "mean")
    for name in sites:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got_img[name], want_img[name], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(mixed[name], want_mixed[name], rtol=1e-5, atol=1e-6)
    # an array filler is an image like any other
    gray = np.full((40, 50, 3), 128, dtype=np.uint8)
    arr = METERAdapter(**small_params, missing_image=gray).extract(Batch(texts=texts), sites, "mean")
    ref = plain.extract(Batch(images=[Image.fromarray(gray)] * 3, texts=texts), sites, "mean")
    for name in sites:
        np.testing.assert_allclose(arr[name], ref[name], rtol=1e-5, atol=1e-6)


def test_cross_streams_depend_on_the_other_modality(small_params):
    adapter = METERAdapter(**small_params)
    images = make_images(2, seed=4)
    a = adapter.extract(Batch(images=images, texts=["a cat", "a dog"]), "cross_text.0.cross_attn_out text.0.ffn".split(), "mean")
    b = adapter.extract(Batch(images=images, texts=["a cat", "the bus"]), "cross_text.0.cross_attn_out text.0.ffn".split(), "mean")
    c = adapter.extract(Batch(images=images[::-1], texts=["a cat", "a dog"]), "cross_text.0.cross_attn_out text.0.ffn".split(), "mean")
    np.testing.assert_array_equal(a["text.0.ffn"][0], b["text.0.ffn"][0])
    assert not np.allclose(a["text.0.ffn"][1], b["text.0.ffn"][1])
    np.testing.assert_allclose(a["text.0.ffn"], c["text.0.ffn"], rtol=1e-6)  # text ignores images
    assert not np.allclose(a["cross_text.0.cross_attn_out"], c["cross_text.0.cross_attn_out"])


def test_pooling_does_not_depend_on_padding_length(small_params):
    short = METERAdapter(**small_params)
    long = METERAdapter(**{**small_params, "max_text_len": 30})
    # texts short enough not to be cut at 16 tokens
    batch = Batch(images=make_images(3), texts=["A cat sits on the mat.", "coffee", "a dog runs"])
    assert short.token_masks(batch)["text"].sum(axis=1).max() < small_params["max_text_len"]
    sites = short.resolve_sites("all")
    for rule in ("mean", "cls", "eot", "max"):
        a, b = short.extract(batch, sites, rule), long.extract(batch, sites, rule)
        for s in sites:
            np.testing.assert_allclose(a[s.name], b[s.name], rtol=1e-4, atol=1e-5, err_msg=f"{s.name} {rule}")


def test_deterministic_across_instances(small_params):
    batch = default_batch(n=3)
    a = METERAdapter(**small_params).extract(batch, ["cross_image.2.ffn", "vision.2.ffn"], "mean")
    b = METERAdapter(**small_params).extract(batch, ["cross_image.2.ffn", "vision.2.ffn"], "mean")
    c = METERAdapter(**{**small_params, "seed": 1}).extract(batch, ["cross_image.2.ffn"], "mean")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.allclose(a["cross_image.2.ffn"], c["cross_image.2.ffn"])


def test_clip_transform_matches_torchvision():
    transforms = pytest.importorskip("torchvision.transforms")
    size = 24
    ref = transforms.Compose(
        [
            transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(size),
            transforms.ToTensor(),
            transforms.Normalize(CLIP_MEAN, CLIP_STD),
        ]
    )
    rng = np.random.default_rng(0)
    for shape in ((40, 57, 3), (61, 33, 3), (24, 24, 3), (13, 90, 3), (100, 101, 3)):
        img = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8))
        np.testing.assert_allclose(clip_transform(img, size), ref(img).numpy(), rtol=1e-5, atol=1e-5)


def test_tokens_are_meters(small_params):
    adapter = METERAdapter(**small_params).ensure_loaded()
    tok = adapter.tokenizer_
    masks = adapter.token_masks(Batch(images=make_images(2), texts=["a cat sits", ""]))
    assert masks["vision"] is None and masks["cross_image"] is None
    assert masks["text"].shape == (2, small_params["max_text_len"])
    np.testing.assert_array_equal(masks["text"], masks["cross_text"])
    assert masks["text"][1].sum() == 2  # <s></s>
    enc = tok(["a cat sits"])["input_ids"][0]
    assert enc[0] == tok.bos_token_id == 0 and enc[-1] == tok.eos_token_id == 2
    assert masks["text"][0].sum() == len(enc)


def test_bad_parameters(small_params, tmp_path):
    with pytest.raises(TypeError, match="unknown METERAdapter parameters"):
        METERAdapter(**small_params, colour=3).ensure_loaded()
    with pytest.raises(ValueError, match="missing_image='gray'"):
        METERAdapter(**small_params, missing_image="gray").ensure_loaded()
    with pytest.raises(ValueError, match="multiple of patch_size"):
        METERAdapter(**{**small_params, "image_size": 30}).ensure_loaded()
    with pytest.raises(ValueError, match="vocabulary has 100"):
        METERAdapter(**{**small_params, "vocab_size": 100}).ensure_loaded()
    with pytest.raises(ValueError, match="could not load the RoBERTa tokenizer"):
        METERAdapter(**{**small_params, "tokenizer": str(tmp_path / "nowhere")}).ensure_loaded()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        METERAdapter(**small_params, checkpoint=str(tmp_path / "none.ckpt")).ensure_loaded()


def test_fingerprint_tracks_inputs(small_params):
    base = METERAdapter(**small_params).fingerprint()
    other = METERAdapter(**{**small_params, "seed": 1}).fingerprint()
    gray = METERAdapter(**small_params, missing_image=np.full((8, 8, 3), 90, np.uint8)).fingerprint()
    white = METERAdapter(**small_params, missing_image=np.full((8, 8, 3), 255, np.uint8)).fingerprint()
    assert base["weights"] != other["weights"]
    assert gray["preprocessing"]["missing_image"] != white["preprocessing"]["missing_image"]
    assert base["preprocessing"]["tokenizer_vocab"] == other["preprocessing"]["tokenizer_vocab"]


def test_neuron_activations_with_mixed_stimuli(small_params):
    """The core driver with METER: paired, image-only and text-only rows, fillers."""
    import pandas as pd

    from nilearn_vlm import NeuronActivations

    images = make_images(3, seed=7)
    X = pd.DataFrame({"image": [images[0], images[1], None, images[2]], "text": ["a cat", None, "coffee", "two dogs"]})
    params = dict(small_params, missing_text="", missing_image="black")
    acts = NeuronActivations(model="meter", model_params=params, sites="cross_*.1.*", batch_size=2)
    units = acts.fit_transform(X)
    assert units.shape == (4, acts.n_features_out_) and units.dtype == np.float32
    size = small_params["image_size"]
    adapter = METERAdapter(**small_params)
    direct = adapter.extract(
        Batch(images=[images[0], images[1], Image.new("RGB", (size, size)), images[2]],
              texts=["a cat", "", "coffee", "two dogs"]),
        [s.name for s in acts.sites_], "mean",
    )
    for s in acts.sites_:
        np.testing.assert_allclose(units[:, acts.site_slices_[s.name]], direct[s.name], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="missing_image"):
        NeuronActivations(model="meter", model_params=small_params, sites="cross_*.1.*").fit(X)


def _perturbed(adapter, module, batch, sites):
    """Units of ``sites`` with ``module``'s output moved (a forward hook returning a new output)."""

    def shift(mod, args, output):
        x = output[0] if isinstance(output, tuple) else output
        x = x + torch.linspace(-1, 1, x.shape[-1])  # not a constant: LayerNorm would remove it
        return (x,) + tuple(output[1:]) if isinstance(output, tuple) else x

    handle = module.register_forward_hook(shift)
    try:
        return adapter.extract(batch, sites, "mean")
    finally:
        handle.remove()


def test_fusion_layers_come_after_both_encoders(small_params):
    adapter = METERAdapter(**small_params)
    cfg = adapter.ensure_loaded().config_
    V, T, F = cfg.vision_layers, cfg.text_layers, cfg.num_top_layer
    depth = adapter.layer_depths()
    E = max(V, T)
    for l in range(V):
        assert depth[("vision", l)] == pytest.approx((l + 1) / (V + F))
    for l in range(T):
        assert depth[("text", l)] == pytest.approx((l + 1) / (T + F))
    for k in range(F):
        assert depth[("cross_text", k)] == depth[("cross_image", k)] == pytest.approx((E + k + 1) / (E + F))
    # the links are the model's: the first fusion layer reads the last layer of each encoder
    batch = default_batch(n=3, seed=1)
    sites = ["cross_text.0.cross_attn_out", "cross_image.0.cross_attn_out"]  # read both encoders
    base = adapter.extract(batch, sites, "mean")
    m = adapter.model_
    for last in (m.vit_model.visual.transformer.resblocks[V - 1], m.text_transformer.encoder.layer[T - 1]):
        moved = _perturbed(adapter, last, batch, sites)
        for site in sites:
            assert not np.allclose(moved[site], base[site])
    table = adapter.units_table(["text.1.ffn", "cross_image.0.ffn"])
    np.testing.assert_allclose(table["depth"].unique(), [2 / (T + F), (E + 1) / (E + F)])


def test_a_tokenizer_trained_offline_on_a_corpus(small_params):
    """tokenizer={"corpus": ..., "vocab_size": ...}: RoBERTa's layout, merges from the texts, deterministic."""
    from nilearn_vlm_meter.preprocess import corpus_tokenizer

    corpus = ["A cat sits on the mat.", "the quick brown fox jumps over the lazy dog", "a dog and a cat"]
    spec = {"corpus": corpus, "vocab_size": 300}
    adapter = METERAdapter(**{**small_params, "tokenizer": spec}).ensure_loaded()
    tok = adapter.tokenizer_
    tokens = tok.convert_ids_to_tokens(tok("the cat")["input_ids"])
    assert tokens[0] == "<s>" and tokens[-1] == "</s>" and "Ġcat" in tokens  # learnt merges, not bytes
    assert tok.pad_token == "<pad>" and 262 < len(tok) <= 300
    again = corpus_tokenizer(corpus, vocab_size=300)
    assert again.get_vocab() == tok.get_vocab()
    other = METERAdapter(**{**small_params, "tokenizer": {"corpus": corpus[:1], "vocab_size": 300}})
    fp, fp_other = adapter.fingerprint()["preprocessing"], other.fingerprint()["preprocessing"]
    assert fp["tokenizer"] == "byte-level BPE trained on 3 texts (vocab_size 300)"
    assert fp["tokenizer_vocab"] != fp_other["tokenizer_vocab"]
    units = adapter.extract(Batch(images=None, texts=["the cat", "a dog"]), ["text.0.attn_out"], "mean")
    assert np.isfinite(units["text.0.attn_out"]).all()
    with pytest.raises(ValueError, match="at least one non-empty text"):
        corpus_tokenizer(["", None])
    with pytest.raises(ValueError, match="vocab_size must be an int >= 262"):
        corpus_tokenizer(corpus, vocab_size=100)
