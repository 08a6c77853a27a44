"""METER's input preprocessing: CLIP image transform and RoBERTa tokenisation."""

from __future__ import annotations

import hashlib
import os

import numpy as np

#: CLIP normalisation (METER's ``clip_transform``).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _as_pil(image):
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise ValueError(
            f"an image must be a PIL image or an (H, W, 3) uint8 array, got shape {arr.shape}"
        )
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and 0 <= arr.min() and arr.max() <= 1:
            arr = np.round(arr * 255)
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def clip_transform(image, size):
    """METER's ``clip_transform(size)`` on one image, as a float32 array.

    Resize the shorter side to ``size`` (bicubic; the longer side is
    ``int(size * long / short)`` as torchvision computes it), centre-crop
    ``size`` x ``size``, convert to RGB, scale to [0, 1] and normalise with
    the CLIP mean and std.

    Parameters
    ----------
    image : PIL.Image.Image or array of shape (H, W, 3)
    size : int

    Returns
    -------
    numpy.ndarray of shape (3, size, size), float32

    Examples
    --------
    >>> from PIL import Image
    >>> clip_transform(Image.new("RGB", (40, 30)), 16).shape
    (3, 16, 16)
    """
    from PIL import Image

    img = _as_pil(image).convert("RGB")
    w, h = img.size
    if w <= h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_w, new_h = int(size * w / h), size
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.BICUBIC)
    left = int(round((new_w - size) / 2.0))
    top = int(round((new_h - size) / 2.0))
    img = img.crop((left, top, left + size, top + size))
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = (arr - np.asarray(CLIP_MEAN, dtype=np.float32)) / np.asarray(CLIP_STD, dtype=np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def load_tokenizer(tokenizer):
    """RoBERTa tokenizer from a Hugging Face id, a local directory or an object.

    Parameters
    ----------
    tokenizer : str, os.PathLike, dict or tokenizer object
        ``"roberta-base"`` (needs the Hub or its cache), a directory written
        by ``save_pretrained``, a loaded tokenizer, or a dict
        ``{"corpus": [texts], "vocab_size": n}``: a RoBERTa-style tokenizer
        trained offline on those texts (:func:`corpus_tokenizer`).

    Returns
    -------
    transformers tokenizer
    """
    if isinstance(tokenizer, dict):
        return corpus_tokenizer(**tokenizer)
    if not isinstance(tokenizer, (str, os.PathLike)):
        if not callable(tokenizer):
            raise TypeError(
                "tokenizer must be a Hugging Face id, a directory, a tokenizer or a dict "
                f"{{'corpus': [...], 'vocab_size': int}}, got {tokenizer!r}"
            )
        return tokenizer
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(os.fspath(tokenizer), trust_remote_code=False)
    except Exception as exc:  # network, missing files, ...
        raise ValueError(
            f"could not load the RoBERTa tokenizer {os.fspath(tokenizer)!r} ({type(exc).__name__}: {exc}). "
            "Pass tokenizer= a local directory: where the Hub is reachable run "
            "AutoTokenizer.from_pretrained('roberta-base').save_pretrained('<dir>') once"
        ) from exc


def corpus_tokenizer(corpus, vocab_size=1000):
    """A RoBERTa-style byte-level BPE tokenizer trained here on ``corpus`` (no download).

    For random-weight models where RoBERTa's own tokenizer cannot be
    fetched (offline): the special tokens and the ``<s> ... </s>`` layout are
    RoBERTa's, the merges are learnt from ``corpus`` (deterministic: the same
    texts give the same vocabulary). Its token ids mean nothing to the
    released weights: use it with random weights only.

    Parameters
    ----------
    corpus : sequence of str
        The texts to learn merges from (e.g. a study's subtitles).
    vocab_size : int, default=1000
        At most this many tokens (256 bytes, 5 special tokens and merges).

    Returns
    -------
    transformers.RobertaTokenizerFast

    Examples
    --------
    >>> tok = corpus_tokenizer(["A cat on a mat.", "A dog in the fog."], vocab_size=300)
    >>> tok.convert_ids_to_tokens(tok("a cat")["input_ids"])[0]
    '<s>'
    """
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    texts = [str(t) for t in corpus if t is not None and str(t).strip()]
    if not texts:
        raise ValueError("corpus_tokenizer needs at least one non-empty text in corpus")
    if not isinstance(vocab_size, (int, np.integer)) or vocab_size < 262:
        raise ValueError(f"vocab_size must be an int >= 262 (256 bytes and 5 special tokens), got {vocab_size!r}")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=int(vocab_size), min_frequency=1, show_progress=False,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        _, merges_file = bpe.save_model(folder)
        with open(merges_file, encoding="utf-8") as f:
            merges = [tuple(line.split()) for line in f.read().splitlines()[1:] if line.strip()]
    return RobertaTokenizerFast(vocab=bpe.get_vocab(), merges=merges)


def tokenizer_name(tokenizer):
    """How a ``tokenizer`` parameter is named in the cache key (a corpus dict by its size, not its texts)."""
    if isinstance(tokenizer, dict):
        n = len(tokenizer.get("corpus", ()))
        return f"byte-level BPE trained on {n} texts (vocab_size {tokenizer.get('vocab_size', 1000)})"
    return str(tokenizer)


def tokenizer_digest(tok):
    """Short digest of a tokenizer's vocabulary (enters the cache key)."""
    vocab = sorted(tok.get_vocab().items())
    h = hashlib.sha256(repr(vocab).encode())
    return h.hexdigest()[:16]


def tokenize(tok, texts, max_len):
    """METER's tokenisation: ``<s> ... </s>``, padded to ``max_len``, truncated.

    Returns
    -------
    input_ids, attention_mask : numpy.ndarray of shape (n, max_len), int64
    """
    enc = tok(
        list(texts),
        padding="max_length",
        truncation=True,
        max_length=max_len,
        return_attention_mask=True,
    )
    ids = np.asarray(enc["input_ids"], dtype=np.int64)
    mask = np.asarray(enc["attention_mask"], dtype=np.int64)
    return ids, mask
