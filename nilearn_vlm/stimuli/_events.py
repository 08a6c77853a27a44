"""The events table: validation, BIDS events.tsv reading."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from nilearn_vlm.stimuli._images import is_missing

#: Columns of an events table, in order. ``image`` and ``text`` may be
#: missing per row (None); other columns the user adds are kept.
EVENT_COLUMNS = ("onset", "duration", "image", "text", "run")


def _rows(index, limit=5):
    items = [str(i) for i in list(index)[:limit]]
    more = f" (and {len(index) - limit} more)" if len(index) > limit else ""
    return ", ".join(items) + more


def _numeric(df, column):
    values = pd.to_numeric(df[column], errors="coerce")
    bad = values.isna() & df[column].notna()
    if bad.any():
        raise ValueError(
            f"events column {column!r} must be numeric (seconds); rows {_rows(df.index[bad])} "
            f"are not: {df.loc[bad, column].head(3).tolist()}"
        )
    return values.astype(float)


def check_events(
    events,
    *,
    require_timing=True,
    allow_overlap=False,
    check_images=False,
    base_dir=None,
    tol=1e-6,
):
    """Validate an events table and return a clean copy.

    Parameters
    ----------
    events : pandas.DataFrame
        One row per stimulus with columns ``onset`` and ``duration`` (seconds
        from the start of the run), ``image`` (file path, array or PIL image;
        None where a stimulus has no image) and/or ``text`` (str; None where
        it has none), and optionally ``run`` (default: a single run ``0``).
        Extra columns are kept.
    require_timing : bool, default=True
        Require ``onset`` and ``duration``. With False, a table of stimuli
        without timing is accepted (``NeuronActivations`` needs no timing).
    allow_overlap : bool, default=False
        Accept events of one stream that overlap within a run (an image shown
        before the previous image ends, or a text before the previous text
        ends). By default this is an error. Events of different streams may
        always overlap: in a movie with subtitles, frame rows (an image, no
        text) and subtitle rows (a text, no image) run side by side.
    check_images : bool, default=False
        Check that every image path exists and is a readable image (reads
        file headers only).
    base_dir : str or path, optional
        Folder relative image paths are resolved from.
    tol : float, default=1e-6
        Tolerance (seconds) of the overlap check.

    Returns
    -------
    pandas.DataFrame
        A copy with columns ``onset``, ``duration``, ``image``, ``text``,
        ``run`` first (missing ``image``/``text`` columns are added as None),
        sorted by run then onset (the original index is kept).

    Raises
    ------
    ValueError
        NaN, negative or non-numeric onsets or durations, overlapping events,
        a table without ``image`` and ``text``, or unreadable images.
    FileNotFoundError
        With ``check_images=True``, an image path that does not exist.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = check_events(pd.DataFrame({"onset": [0.0, 2.0], "duration": [1.0, 1.0],
    ...                                 "text": ["a cat", "a dog"]}))
    >>> ev.columns.tolist()
    ['onset', 'duration', 'image', 'text', 'run']
    """
    if isinstance(events, (str, os.PathLike)):
        raise TypeError(
            "check_events takes a DataFrame; read a BIDS events.tsv with "
            "nilearn_vlm.stimuli.load_events(path)"
        )
    if not isinstance(events, pd.DataFrame):
        raise TypeError(f"events must be a pandas DataFrame, got {type(events).__name__}")
    if len(events) == 0:
        raise ValueError("the events table is empty; give at least one stimulus")
    df = events.copy()
    if "image" not in df.columns and "text" not in df.columns:
        raise ValueError(
            f"the events table needs an 'image' and/or a 'text' column; it has {list(df.columns)}"
        )
    for col in ("image", "text"):
        if col not in df.columns:
            df[col] = None
        df[col] = df[col].astype(object).where(~df[col].map(is_missing), None)
    if "run" not in df.columns:
        df["run"] = 0
    elif df["run"].map(is_missing).any():
        raise ValueError(
            f"the 'run' column has missing values at rows {_rows(df.index[df['run'].map(is_missing)])}"
        )
    if require_timing:
        for col in ("onset", "duration"):
            if col not in df.columns:
                hint = " (use 0 for impulse events)" if col == "duration" else ""
                raise ValueError(f"the events table needs an {col!r} column in seconds{hint}")
            values = _numeric(df, col)
            nan = values.isna() | ~np.isfinite(values.fillna(0))
            if nan.any():
                raise ValueError(
                    f"events column {col!r} has NaN or infinite values at rows {_rows(df.index[nan])}; "
                    "every event needs a finite time in seconds"
                )
            neg = values < 0
            if neg.any():
                raise ValueError(
                    f"events column {col!r} has negative values at rows {_rows(df.index[neg])} "
                    f"({values[neg].head(3).tolist()}); times are seconds from the start of the run"
                )
            df[col] = values
        df = df.sort_values(["run", "onset"], kind="stable")
        if not allow_overlap:
            _check_overlap(df, tol)
    if base_dir is not None:
        base = Path(base_dir)
        df["image"] = pd.Series(
            [
                str(base / v) if isinstance(v, (str, os.PathLike)) and not Path(v).is_absolute() else v
                for v in df["image"]
            ],
            index=df.index,
            dtype=object,
        )
    if check_images:
        _check_image_files(df)
    first = [c for c in EVENT_COLUMNS if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]]


def _check_overlap(df, tol):
    """Two images, or two texts, must not be on screen at once in a run (a frame and a subtitle may)."""
    for stream, article in (("image", "an"), ("text", "a")):
        shown = df[df[stream].notna()]
        for run, sub in shown.groupby("run", sort=False):
            onset = sub["onset"].to_numpy()
            end = onset + sub["duration"].to_numpy()
            # the latest end so far must not pass the next onset
            running_end = np.maximum.accumulate(end)[:-1]
            bad = np.flatnonzero(onset[1:] < running_end - tol)
            if bad.size:
                i = bad[0]
                a, b = sub.index[i], sub.index[i + 1]
                raise ValueError(
                    f"events overlap in run {run!r}: row {b} starts at {onset[i + 1]:g} s before an "
                    f"earlier event with {article} {stream} (row {a} or before) ends at {running_end[i]:g} s "
                    f"({bad.size} overlap(s) of {stream}s in this run); two {stream}s cannot be shown at "
                    "once: fix the onsets/durations (frames and subtitles may overlap: give each its own "
                    "row, the frame with its image, the subtitle with its text)"
                )


def _check_image_files(df):
    from PIL import Image, UnidentifiedImageError

    paths = [(i, v) for i, v in zip(df.index, df["image"]) if isinstance(v, (str, os.PathLike))]
    missing = [(i, p) for i, p in paths if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} image file(s) do not exist, e.g. row {missing[0][0]}: {str(missing[0][1])!r}"
        )
    for i, p in paths:
        try:
            with Image.open(p) as img:
                img.size  # noqa: B018 (header read)
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"row {i}: cannot read image file {str(p)!r} ({exc})") from exc


_RUN_ENTITY = re.compile(r"(?:^|_)run-([A-Za-z0-9]+)")


def load_events(path, *, run=None, stim_dir=None, **kwargs):
    """Read a BIDS ``events.tsv`` (or a .csv) into a validated events table.

    Parameters
    ----------
    path : str or path
        The events file. Tab-separated unless it ends in ``.csv``; ``n/a``
        reads as missing.
    run : str or int, optional
        Run label; by default the ``run`` column, else the ``run-<label>``
        entity of the file name, else ``0``.
    stim_dir : str or path, optional
        Folder BIDS ``stim_file`` paths are relative to (the dataset's
        ``stimuli/`` folder). When the table has no ``image`` column, a
        ``stim_file`` column is used as ``image``.
    **kwargs
        Passed to :func:`check_events`.

    Returns
    -------
    pandas.DataFrame
        As :func:`check_events` returns.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> p = os.path.join(d, "sub-01_task-movie_run-2_events.tsv")
    >>> _ = open(p, "w").write("onset\\tduration\\ttext\\n0\\t1\\ta cat\\n1\\t1\\tn/a\\n")
    >>> ev = load_events(p)
    >>> ev["run"].tolist(), ev["text"].tolist()
    (['2', '2'], ['a cat', None])
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"events file {str(path)!r} does not exist")
    sep = "," if path.suffix.lower() == ".csv" else "\t"
    df = pd.read_csv(path, sep=sep, na_values=["n/a"], keep_default_na=True)
    if "image" not in df.columns and "stim_file" in df.columns:
        df["image"] = df["stim_file"]
    if run is not None:
        df["run"] = run
    elif "run" not in df.columns:
        match = _RUN_ENTITY.search(path.name)
        df["run"] = match.group(1) if match else 0
    if stim_dir is None and "image" in df.columns:
        stim_dir = path.parent
    kwargs.setdefault("base_dir", stim_dir)
    return check_events(df, **kwargs)
