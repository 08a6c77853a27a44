"""Images: the one place where stimuli become PIL RGB images, and content hashes."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np


def is_missing(value):
    """True for a missing cell (None, NaN, pandas NA)."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return True
    except ImportError:  # pragma: no cover
        pass
    return False


def _is_pil(value):
    return type(value).__module__.split(".", 1)[0] == "PIL"


# PIL modes of more than 8 bits per sample: ``convert("RGB")`` clips them at 255
_WIDE_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535}


def _to_rgb(img, where):
    """A PIL image as 8-bit RGB, scaling 16-bit and 32-bit samples instead of clipping them."""
    mode = img.mode
    if mode in _WIDE_MODES or mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ValueError(f"{where} (mode {mode!r}) holds non-finite values; give finite pixels")
        if mode == "F":
            top = 1.0
            if arr.min() < 0 or arr.max() > 1:
                raise ValueError(
                    f"{where} holds floating-point pixels (mode 'F') outside [0, 1] (range "
                    f"{arr.min():g} to {arr.max():g}); rescale it to [0, 1] or save it as 8-bit"
                )
        else:
            top = _WIDE_MODES.get(mode, 65535)
            if arr.min() < 0 or arr.max() > top:
                raise ValueError(
                    f"{where} holds 32-bit integer pixels (mode 'I') outside [0, 65535] (range "
                    f"{arr.min():g} to {arr.max():g}); rescale it or save it as 8- or 16-bit"
                )
        from PIL import Image

        arr8 = np.round(arr * (255.0 / top)).astype(np.uint8)
        return Image.fromarray(arr8).convert("RGB")
    if mode in ("RGBa", "La"):  # premultiplied alpha
        return img.convert(mode[0] + "A" if mode == "La" else "RGBA").convert("RGB")
    return img.convert("RGB")


def load_image(image):
    """Load one stimulus image as an RGB PIL image.

    This is the only place where the library turns image cells into the
    ``PIL.Image.Image`` objects adapters receive.

    Parameters
    ----------
    image : str, os.PathLike, numpy.ndarray or PIL.Image.Image
        A path to an image file, an array of shape (H, W), (H, W, 3) or
        (H, W, 4) (uint8 0-255, or float in [0, 1]), or a PIL image. Images
        of 16 bits per sample (16-bit grayscale PNG, mode ``"I;16"``) are
        scaled to 8 bits (``v * 255 / 65535``), as are 32-bit integer images
        with values up to 65535 (mode ``"I"``) and float images in [0, 1]
        (mode ``"F"``); other values are an error.

    Returns
    -------
    PIL.Image.Image
        The image in mode ``"RGB"``.

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    ValueError
        The file cannot be read as an image, or the array has a bad shape or
        values.

    Examples
    --------
    >>> import numpy as np
    >>> load_image(np.zeros((4, 5, 3), dtype=np.uint8)).size
    (5, 4)
    """
    from PIL import Image, UnidentifiedImageError

    if _is_pil(image):
        return _to_rgb(image, "the PIL image")
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(
                f"image file {str(path)!r} does not exist; check the 'image' column "
                "(relative paths are resolved from the current directory)"
            )
        try:
            with Image.open(path) as img:
                img.load()
                return _to_rgb(img, str(path))
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(
                f"cannot read image file {str(path)!r} ({exc}); give a PNG/JPEG/... file "
                "or an array"
            ) from exc
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
            raise ValueError(
                f"image arrays must have shape (H, W), (H, W, 3) or (H, W, 4); got {image.shape}"
            )
        if arr.size == 0:
            raise ValueError(f"image array is empty (shape {image.shape})")
        if arr.dtype != np.uint8:
            if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
                raise ValueError("image arrays must be finite numbers (uint8 0-255 or float 0-1)")
            if np.issubdtype(arr.dtype, np.floating):
                if arr.min() < 0 or arr.max() > 1:
                    raise ValueError(
                        "float image arrays must lie in [0, 1]; scale them or pass uint8 0-255"
                    )
                arr = np.round(arr * 255.0)
            elif arr.min() < 0 or arr.max() > 255:
                raise ValueError("integer image arrays must lie in [0, 255]")
            arr = arr.astype(np.uint8)
        return Image.fromarray(np.ascontiguousarray(arr)).convert("RGB")
    raise TypeError(
        f"an image must be a file path, a numpy array or a PIL image, got {type(image).__name__}"
    )


def hash_image(image, digests=None):
    """Content hash of an image cell (file bytes, array bytes or PIL pixels).

    Two cells hash alike only when their content is the same: a file's hash
    is the hash of its bytes, not of its name.

    Parameters
    ----------
    image : str, os.PathLike, numpy.ndarray or PIL.Image.Image
    digests : callable, optional
        ``digests(path)`` gives a file's content digest (e.g. a
        :class:`nilearn_vlm._provenance.FileDigests`, which reads a file again
        only when its stat changed); by default the file is read.
    """
    h = hashlib.sha256()
    if _is_pil(image):
        h.update(f"pil|{image.mode}|{image.size}|".encode())
        h.update(image.tobytes())
    elif isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(
                f"image file {str(path)!r} does not exist; check the 'image' column"
            )
        h.update(b"file|")
        if digests is not None:
            h.update(digests(path).encode())
        else:
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    elif isinstance(image, np.ndarray):
        arr = np.ascontiguousarray(image)
        h.update(f"array|{arr.dtype.str}|{arr.shape}|".encode())
        h.update(arr.tobytes())
    else:
        raise TypeError(
            f"an image must be a file path, a numpy array or a PIL image, got {type(image).__name__}"
        )
    return h.hexdigest()


def hash_stimulus(image, text, digests=None):
    """Content hash of one stimulus (image content and text); ``digests`` as in :func:`hash_image`."""
    h = hashlib.sha256()
    h.update(b"I" + (b"-" if is_missing(image) else hash_image(image, digests).encode()))
    h.update(b"T" + (b"-" if is_missing(text) else str(text).encode("utf-8")))
    return h.hexdigest()
