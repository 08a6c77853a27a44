"""Real images with their documented descriptions, from installed packages."""

from __future__ import annotations

import numpy as np

#: scikit-image data images that ship inside the package (no download).
SKIMAGE_IMAGES = (
    "astronaut", "brick", "camera", "chelsea", "checkerboard", "clock", "coffee", "coins",
    "colorwheel", "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry",
    "logo", "microaneurysms", "moon", "page", "retina", "rocket", "text", "cell",
)

#: Descriptions of the images of scikit-learn and matplotlib (their documentation's words).
OTHER_CAPTIONS = {
    "china": "Photograph of a Chinese temple, scikit-learn's china sample image.",
    "flower": "Close-up photograph of a flower, scikit-learn's flower sample image.",
    "grace_hopper": "Portrait of Rear Admiral Grace Hopper in uniform.",
}


def _to_rgb(image):
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.shape[-1] == 4:
        image = image[..., :3]
    if image.dtype != np.uint8:
        image = np.asarray(image, dtype=float)
        span = image.max() - image.min()
        image = (255 * (image - image.min()) / (span if span else 1)).astype(np.uint8)
    return image


def load_captioned_images():
    """Real images shipped by installed packages, with their descriptions.

    The descriptions of scikit-image's images are the first lines of their
    documentation (``skimage.data.<name>.__doc__``); scikit-learn's two
    sample images and matplotlib's Grace Hopper portrait are described in
    :data:`OTHER_CAPTIONS`. Nothing is downloaded.

    Returns
    -------
    list of dict
        One dict per image with keys ``name``, ``image`` (uint8 RGB array)
        and ``text``.

    Examples
    --------
    >>> images = load_captioned_images()
    >>> [im["text"] for im in images if im["name"] == "chelsea"]
    ['Chelsea the cat.']
    """
    import skimage.data

    out = []
    for name in SKIMAGE_IMAGES:
        func = getattr(skimage.data, name)
        caption = func.__doc__.strip().splitlines()[0].strip()
        out.append({"name": name, "image": _to_rgb(func()), "text": caption})
    from sklearn.datasets import load_sample_images

    sample = load_sample_images()
    for filename, image in zip(sample.filenames, sample.images):
        name = filename.rsplit("/", 1)[-1].split(".")[0]
        out.append({"name": name, "image": _to_rgb(image), "text": OTHER_CAPTIONS[name]})
    import matplotlib.cbook
    import matplotlib.image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = matplotlib.image.imread(f, format="jpg")
    out.append({"name": "grace_hopper", "image": _to_rgb(hopper), "text": OTHER_CAPTIONS["grace_hopper"]})
    return out
