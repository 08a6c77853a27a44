"""Shared fixtures: tiny configs and tokenizer folders written by the tests (no downloads)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest  # noqa: E402

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

WORDS = (
    "a the of and is in on at to with two red cat sits mat astronauts float beside space station "
    "night coffee bus drives through rainy city street while people wait kitten dog rocket coins"
).split()


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_wordpiece_tokenizer(folder):
    """A BERT (WordPiece) tokenizer over a small English vocabulary, saved to ``folder``."""
    from transformers import BertTokenizer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {w: i for i, w in enumerate(specials + [".", ","] + WORDS)}
    BertTokenizer(vocab=vocab).save_pretrained(folder)
    return str(folder)


def write_bytelevel_tokenizer(folder):
    """A RoBERTa (byte-level BPE, no merges) tokenizer saved to ``folder``; 261 tokens."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import RobertaTokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for ch in sorted(ByteLevel.alphabet()):
        vocab.setdefault(ch, len(vocab))
    vocab["<mask>"] = len(vocab)
    RobertaTokenizer(vocab=vocab, merges=[]).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def bert_tokenizer(tmp_path_factory):
    return write_wordpiece_tokenizer(tmp_path_factory.mktemp("bert_tok"))


@pytest.fixture(scope="session")
def roberta_tokenizer(tmp_path_factory):
    return write_bytelevel_tokenizer(tmp_path_factory.mktemp("roberta_tok"))


def _text_config(model_type, **extra):
    cfg = dict(
        model_type=model_type,
        vocab_size=300,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    cfg.update(extra)
    return cfg


@pytest.fixture
def bert_config():
    return _text_config("bert", pad_token_id=0)


@pytest.fixture
def roberta_config():
    return _text_config("roberta", pad_token_id=1, bos_token_id=0, eos_token_id=2)


@pytest.fixture
def vit_config():
    return dict(
        model_type="vit",
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        image_size=32,
        patch_size=8,
    )


@pytest.fixture
def siglip_config():
    return dict(
        text_config=dict(
            vocab_size=300, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=32, pad_token_id=0, bos_token_id=2, eos_token_id=3,
        ),
        vision_config=dict(
            hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=32,
            patch_size=8,
        ),
    )


@pytest.fixture
def bridgetower_config():
    # the vision tower's nn.MultiheadAttention has hidden_size // 64 heads: 64 is the smallest width
    return dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        text_config=dict(
            vocab_size=300, hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=128, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        ),
        vision_config=dict(hidden_size=64, num_hidden_layers=3, image_size=32, patch_size=8),
    )
