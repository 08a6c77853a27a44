"""Shared fixtures: an offline RoBERTa-style tokenizer and small METER models."""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

DATA = Path(__file__).parent / "data"

_CORPUS = [
    "A cat sits on the mat.",
    "Two astronauts float beside the space station at night",
    "coffee",
    "A red bus drives through the rainy city street while people wait.",
    "a dog runs across the green field with a ball",
    "the quick brown fox jumps over the lazy dog",
    "people walk past a tall building in the evening light",
]

#: size parameters of a small random METER used across the tests
SMALL = dict(
    image_size=32,
    patch_size=8,
    vision_width=32,
    vision_layers=3,
    vision_heads=4,
    vision_mlp_width=64,
    text_width=24,
    text_layers=2,
    text_heads=2,
    text_intermediate=48,
    vocab_size=320,
    max_position_embeddings=40,
    hidden_size=32,
    num_top_layer=3,
    num_heads=4,
    fusion_intermediate=80,
    max_text_len=16,
    batch_size=3,
)


def _official_keys():
    out = []
    for line in (DATA / "meter_clip16_288_roberta_keys.txt").read_text().splitlines():
        if not line.strip():
            continue
        key, shape = line.split("\t")
        out.append((key, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    return out


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory):
    """A byte-level BPE tokenizer trained here, saved as a RoBERTa tokenizer."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    folder = tmp_path_factory.mktemp("roberta_tok")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        _CORPUS * 10,
        vocab_size=300,
        min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    bpe.save_model(str(folder))
    merges = [
        tuple(line.split())
        for line in (folder / "merges.txt").read_text().splitlines()[1:]
        if line.strip()
    ]
    tok = RobertaTokenizerFast(vocab=bpe.get_vocab(), merges=merges)
    out = folder / "tokenizer"
    tok.save_pretrained(str(out))
    return str(out)


@pytest.fixture
def small_params(tokenizer_dir):
    """Model parameters of a small random METER with the offline tokenizer."""
    return dict(SMALL, tokenizer=tokenizer_dir, seed=0)


@pytest.fixture(scope="session")
def official_keys():
    """(key, shape) pairs of meter_clip16_288_roberta_pretrain.ckpt (670 keys)."""
    return _official_keys()
