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
    tokenizer : str, os.PathLike or tokenizer object
        ``"roberta-base"`` (needs the Hub or its cache), a directory written
        by ``save_pretrained``, or a loaded tokenizer.

    Returns
    -------
    transformers tokenizer
    """
    if not isinstance(tokenizer, (str, os.PathLike)):
        if not callable(tokenizer):
            raise TypeError(f"tokenizer must be a Hugging Face id, a directory or a tokenizer, got {tokenizer!r}")
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
