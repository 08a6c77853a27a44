"""Video files plus subtitles -> events table (one row per sampled frame)."""

from __future__ import annotations

import math
import numbers
import re
from pathlib import Path

import numpy as np
import pandas as pd

from nilearn_vlm.stimuli._events import check_events


# one SubRip timing line: "00:01:02,500 --> 00:01:04,000", maybe followed by position coordinates
_TIMING = re.compile(r"^\s*\d+:\d{1,2}:\d{1,2}[,.]\d{1,3}\s*-->\s*\d+:\d{1,2}:\d{1,2}[,.]\d{1,3}(\s+\S.*)?\s*$")
# markup of cue texts: HTML-like tags (<i>, <font color=...>) and ASS overrides ({\an8})
_MARKUP = re.compile(r"<[^>]*>|\{\\[^}]*\}")


def _check_timings(path, encoding):
    """Raise when a line holding ``-->`` is not a valid timing line (pysrt reads bad fields as 0 s)."""
    text = Path(path).read_bytes().decode(encoding, errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        if "-->" in line and not _TIMING.match(line):
            raise ValueError(
                f"subtitle file {str(path)!r}, line {number}: {line.strip()!r} is not a SubRip timing line "
                "(hours:minutes:seconds,milliseconds --> hours:minutes:seconds,milliseconds, e.g. "
                "'00:01:02,500 --> 00:01:04,000'); fix it"
            )


def read_subtitles(path, encoding=None):
    """Read a ``.srt`` file into a table of cues.

    Parameters
    ----------
    path : str or path
        The subtitle file (SubRip).
    encoding : str, optional
        File encoding; guessed by pysrt when None.

    Returns
    -------
    pandas.DataFrame
        Columns ``start``, ``end`` (seconds) and ``text`` (the cue's lines
        joined with spaces, markup such as ``<i>`` or ``{\\an8}`` removed),
        one row per cue, sorted by start.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is not valid SubRip: a malformed timing line (named with
        its line number) or a cue that does not end after it starts.
    """
    import pysrt

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"subtitle file {str(path)!r} does not exist")
    try:
        subs = pysrt.open(str(path), encoding=encoding, error_handling=pysrt.ERROR_RAISE)
    except Exception as exc:  # pysrt raises its own error types
        raise ValueError(f"cannot parse subtitle file {str(path)!r} as SubRip (.srt): {exc}") from exc
    _check_timings(path, subs.encoding or encoding or "utf-8")
    rows = []
    for k, item in enumerate(subs):
        start, end = item.start.ordinal / 1000.0, item.end.ordinal / 1000.0
        if not end > start:
            raise ValueError(
                f"subtitle file {str(path)!r}: cue {k + 1} ({' '.join(item.text.split())[:40]!r}) ends at "
                f"{end:g} s, not after its start at {start:g} s; fix its timing line"
            )
        rows.append((start, end, " ".join(_MARKUP.sub(" ", item.text).split())))
    table = pd.DataFrame(rows, columns=["start", "end", "text"])
    return table.sort_values("start", kind="stable").reset_index(drop=True)


def _subtitle_for(cues, t0, t1):
    """Text of the cues that overlap [t0, t1), joined with spaces, or None."""
    if cues is None or len(cues) == 0:
        return None
    hit = (cues["start"].to_numpy() < t1) & (cues["end"].to_numpy() > t0)
    texts = [t for t in cues["text"].to_numpy()[hit] if t]
    return " ".join(texts) if texts else None


def _resize(frame, size):
    if size is None:
        return frame
    from PIL import Image

    img = Image.fromarray(frame)
    w, h = img.size
    scale = size / min(w, h)
    return np.asarray(img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR))


def events_from_video(
    video,
    subtitles=None,
    *,
    rate=1.0,
    sample="middle",
    run=0,
    size=None,
    frames_dir=None,
    subtitle_encoding=None,
):
    """Sample a video into an events table, with the subtitle text of each bin.

    The video is cut into bins of ``1 / rate`` seconds; each bin becomes one
    event (``onset`` = bin start, ``duration`` = ``1 / rate``) whose image is
    the frame shown at the bin's middle (or start) and whose text is the
    subtitle cues overlapping the bin, joined with spaces (None when no cue
    overlaps: such a stimulus has no text units). Frames are decoded by
    imageio-ffmpeg (which ships its own ffmpeg binary) and streamed: only
    the sampled frames are kept.

    Parameters
    ----------
    video : str or path
        Video file readable by ffmpeg.
    subtitles : str, path or None
        A ``.srt`` file, or None for images only.
    rate : float, default=1.0
        Samples per second (1.0 for a TR of 1 s).
    sample : {"middle", "start"}, default="middle"
        Which frame of a bin is its image.
    run : str or int, default=0
        Run label of the events.
    size : int, optional
        Resize frames so that their short side is ``size`` pixels (saves
        memory; adapters resize anyway).
    frames_dir : str or path, optional
        Write the sampled frames there as PNG files and put their paths in the
        table instead of arrays (for long videos).
    subtitle_encoding : str, optional
        Encoding of the subtitle file.

    Returns
    -------
    pandas.DataFrame
        Events with columns ``onset``, ``duration``, ``image``, ``text``,
        ``run``, ``frame`` (index of the sampled video frame).

    Raises
    ------
    FileNotFoundError
        The video or subtitle file does not exist.
    ValueError
        The video cannot be decoded or has no frames, or ``rate`` is not
        positive.
    """
    import imageio_ffmpeg

    if not (isinstance(rate, numbers.Real) and not isinstance(rate, bool) and rate > 0
            and math.isfinite(rate)):
        raise ValueError(f"rate must be a positive number of samples per second, got {rate!r}")
    if sample not in ("middle", "start"):
        raise ValueError(f"sample must be 'middle' or 'start', got {sample!r}")
    video = Path(video)
    if not video.is_file():
        raise FileNotFoundError(f"video file {str(video)!r} does not exist")
    if video.stat().st_size == 0:
        raise ValueError(f"video file {str(video)!r} is empty (0 bytes)")
    cues = read_subtitles(subtitles, subtitle_encoding) if subtitles is not None else None
    if frames_dir is not None:
        frames_dir = Path(frames_dir)
        frames_dir.mkdir(parents=True, exist_ok=True)

    try:
        reader = imageio_ffmpeg.read_frames(str(video))
        meta = next(reader)
    except (RuntimeError, OSError, StopIteration) as exc:
        raise ValueError(f"cannot decode video {str(video)!r} with ffmpeg: {exc}") from exc
    fps = float(meta.get("fps") or 0)
    width, height = meta["size"]
    if fps <= 0:
        reader.close()
        raise ValueError(f"video {str(video)!r} reports no frame rate; re-encode it")
    step = 1.0 / rate
    offset = 0.5 * step if sample == "middle" else 0.0

    def target(k):
        return int(math.floor((k * step + offset) * fps + 1e-9))

    rows = []
    k, want = 0, target(0)
    n_frames = 0
    try:
        for i, raw in enumerate(reader):
            n_frames = i + 1
            if i < want:
                continue
            frame = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
            frame = _resize(frame, size)
            while want == i:
                onset = k * step
                image = frame.copy()
                if frames_dir is not None:
                    from PIL import Image

                    path = frames_dir / f"{video.stem}_run-{run}_{k:06d}.png"
                    Image.fromarray(image).save(path)
                    image = str(path)
                rows.append(
                    {
                        "onset": onset,
                        "duration": step,
                        "image": image,
                        "text": _subtitle_for(cues, onset, onset + step),
                        "run": run,
                        "frame": i,
                    }
                )
                k += 1
                want = target(k)
    except RuntimeError as exc:
        raise ValueError(f"cannot decode video {str(video)!r} with ffmpeg: {exc}") from exc
    finally:
        reader.close()
    if n_frames == 0:
        raise ValueError(f"video {str(video)!r} has no frames")
    if not rows:
        raise ValueError(
            f"video {str(video)!r} ({n_frames} frames at {fps:g} fps) is shorter than one "
            f"sample bin of {step:g} s; raise rate="
        )
    return check_events(pd.DataFrame(rows))
