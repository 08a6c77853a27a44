"""Low-level stimulus features: the controls users expect beside model units."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nilearn_vlm.stimuli import is_missing, load_image

LOWLEVEL_COLUMNS = ("luminance", "contrast", "motion_energy", "word_rate", "n_words")


def _gray(image, size):
    img = load_image(image).convert("L")
    if size is not None:
        img = img.resize(size)
    return np.asarray(img, dtype=np.float64) / 255.0


def lowlevel_features(events, size=(64, 64)):
    """Luminance, contrast, motion energy and word rate of each event.

    Parameters
    ----------
    events : pandas.DataFrame
        Events table (``onset``, ``duration``, optional ``run``, ``image``
        and/or ``text``; see :mod:`nilearn_vlm.stimuli`).
    size : tuple of int or None, default=(64, 64)
        Images are converted to gray levels in [0, 1] and resized to this
        size (None keeps each image's size; motion energy then needs equal
        sizes).

    Returns
    -------
    pandas.DataFrame
        One row per event, same index, columns:

        ``luminance``
            mean gray level;
        ``contrast``
            RMS contrast (standard deviation of gray levels);
        ``motion_energy``
            mean absolute gray-level difference from the previous image of
            the same run (0 for the first image or after an event without
            image): frame-difference energy, a cheap stand-in for a
            spatio-temporal motion-energy model when events are video frames;
        ``word_rate``
            words of the text per second of the event's duration;
        ``n_words``
            words of the text (whitespace-separated).

        Events without an image get 0 for the image columns; without text, 0
        words. Put them on the TR grid with :class:`nilearn_vlm.TRAligner`
        like unit activations.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> ev = pd.DataFrame({"onset": [0.0, 2.0], "duration": [2.0, 2.0],
    ...                    "image": [np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)],
    ...                    "text": ["a dog runs", None]})
    >>> lowlevel_features(ev, size=None).round(2).values.tolist()
    [[0.0, 0.0, 0.0, 1.5, 3.0], [1.0, 0.0, 1.0, 0.0, 0.0]]
    """
    if not isinstance(events, pd.DataFrame):
        raise TypeError(f"events must be a pandas DataFrame, got {type(events).__name__}")
    if "duration" not in events:
        raise ValueError("events need a 'duration' column (seconds) for the word rate")
    runs = events["run"].to_numpy() if "run" in events else np.zeros(len(events), int)
    images = events["image"] if "image" in events else pd.Series([None] * len(events), index=events.index)
    texts = events["text"] if "text" in events else pd.Series([None] * len(events), index=events.index)
    out = np.zeros((len(events), len(LOWLEVEL_COLUMNS)))
    previous = {}
    for i, (image, text, dur, run) in enumerate(zip(images, texts, events["duration"], runs)):
        if not is_missing(image):
            g = _gray(image, size)
            out[i, 0], out[i, 1] = g.mean(), g.std()
            prev = previous.get(run)
            if prev is not None:
                if prev.shape != g.shape:
                    raise ValueError("images differ in size: give size=(w, h) to compare successive images")
                out[i, 2] = np.abs(g - prev).mean()
            previous[run] = g
        else:
            previous[run] = None
        if not is_missing(text):
            n_words = len(str(text).split())
            out[i, 4] = n_words
            out[i, 3] = n_words / float(dur) if float(dur) > 0 else 0.0
    return pd.DataFrame(out, columns=list(LOWLEVEL_COLUMNS), index=events.index)
