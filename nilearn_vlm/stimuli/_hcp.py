"""HCP 7T movie stimuli: per-second WordNet labels, rest periods, the test-retest clip.

The HCP Young Adult 7T release has four movie runs (TR = 1 s). Each run shows
4-5 clips separated by 20 s of rest ("REST" on screen); the last clip of every
run is the same test-retest montage. ``7T_movie_resources/WordNetFeatures.hdf5``
(from ConnectomeDB; not redistributed here) holds, per run, a (seconds x
synsets) label matrix (keys ``MOVIE1_CC1``, ``MOVIE2_HO1``, ``MOVIE3_CC2``,
``MOVIE4_HO2``), the synset names (key ``synsets``, e.g. ``"person.n.01"``),
and per-second flags ``<key>_est`` and ``<key>_val``: seconds that are in
neither are rest, and ``_val`` marks the repeated test-retest clip (the
validation set of the semantic-category model).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nilearn_vlm.stimuli._events import check_events

#: Run number -> key in WordNetFeatures.hdf5.
HCP_MOVIE_RUNS = {1: "MOVIE1_CC1", 2: "MOVIE2_HO1", 3: "MOVIE3_CC2", 4: "MOVIE4_HO2"}

#: Scans per run of the 7T movie runs (TR = 1 s), keyed by the run labels
#: :func:`hcp_movie_events` gives (``TRAligner(n_scans=HCP_MOVIE_N_SCANS)``).
HCP_MOVIE_N_SCANS = {"MOVIE1": 921, "MOVIE2": 918, "MOVIE3": 915, "MOVIE4": 901}

# Clip durations (s) from Table 1 of Communications Biology (2026) 9:274
# (doi 10.1038/s42003-026-09554-6), which lists the clips of 2:22 or longer;
# "overcome" (MOVIE1, 1:03, the shortest clip) and the test-retest montage
# (about 84 s) are not in that table and are approximate.
_CLIPS = {
    1: [("two_men", 244), ("bridgeville", 220), ("pockets", 188), ("overcome", 63)],
    2: [("inception", 227), ("social_network", 259), ("oceans_11", 250)],
    3: [("off_the_shelf", 180), ("1212", 184), ("mrs_meyers", 204), ("northwest_passage", 142)],
    4: [("home_alone", 233), ("erin_brockovich", 230), ("empire_strikes_back", 256)],
}
_REST = 20
_RETEST = 84


def _clip_table():
    rows = []
    for run, clips in _CLIPS.items():
        t = _REST
        for name, dur in [*clips, ("testretest", _RETEST)]:
            rows.append((run, name, float(t), float(t + dur), name == "testretest"))
            t += dur + _REST
    return pd.DataFrame(rows, columns=["run", "clip", "start", "stop", "testretest"])


#: Approximate clip timing (seconds from run start) of the HCP 7T movie runs,
#: built from published clip durations assuming 20 s of rest before each
#: clip. It can be off by about 2 s (run ends: 919/920/914/903 s against
#: 921/918/915/901 scans); the ``_est``/``_val`` flags of WordNetFeatures.hdf5
#: are exact and take precedence. Pass your own table (same columns) as
#: ``clips=`` to :func:`hcp_movie_events` for exact timings of your stimulus
#: version.
HCP_MOVIE_CLIPS = _clip_table()


def _run_number(run):
    if isinstance(run, (int, np.integer)) and int(run) in HCP_MOVIE_RUNS:
        return int(run)
    text = str(run).upper()
    for number, key in HCP_MOVIE_RUNS.items():
        if text in (key, f"MOVIE{number}", str(number)):
            return number
    raise ValueError(
        f"unknown HCP movie run {run!r}; use 1-4, 'MOVIE1'..'MOVIE4' or one of "
        f"{list(HCP_MOVIE_RUNS.values())}"
    )


def _words(synsets):
    """'person.n.01' -> 'person'; 'ice_cream.n.01' -> 'ice cream'."""
    return [s.split(".", 1)[0].replace("_", " ") for s in synsets]


def _as_str(values):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def load_hcp_wordnet(path, run):
    """Read one run of HCP's ``WordNetFeatures.hdf5``.

    Parameters
    ----------
    path : str or path
        The user's ``WordNetFeatures.hdf5``.
    run : int or str
        1-4, ``"MOVIE1"`` or ``"MOVIE1_CC1"``.

    Returns
    -------
    labels : ndarray of shape (n_seconds, n_synsets)
        Label matrix (nonzero where a synset is present in that second).
    synsets : list of str
        Synset names.
    est, val : ndarray of shape (n_seconds,) or None
        The ``_est`` / ``_val`` flags, when the file has them.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"WordNet feature file {str(path)!r} does not exist; it is "
            "7T_movie_resources/WordNetFeatures.hdf5 of the HCP 7T movie stimulus files"
        )
    key = HCP_MOVIE_RUNS[_run_number(run)]
    with h5py.File(path, "r") as f:
        if key not in f or "synsets" not in f:
            raise ValueError(
                f"{str(path)!r} lacks {key!r} or 'synsets' (keys: {sorted(f.keys())}); "
                "is it HCP's WordNetFeatures.hdf5?"
            )
        labels = np.asarray(f[key][()])
        synsets = _as_str(np.asarray(f["synsets"][()]).ravel())
        est = np.asarray(f[key + "_est"][()]).ravel() if key + "_est" in f else None
        val = np.asarray(f[key + "_val"][()]).ravel() if key + "_val" in f else None
    if labels.ndim != 2 or len(synsets) not in labels.shape:
        raise ValueError(
            f"{key!r} has shape {labels.shape}, which does not match {len(synsets)} synsets"
        )
    if labels.shape[1] != len(synsets):
        labels = labels.T
    for name, flag in (("_est", est), ("_val", val)):
        if flag is not None and flag.shape[0] != labels.shape[0]:
            raise ValueError(f"{key + name!r} has {flag.shape[0]} entries for {labels.shape[0]} seconds")
    return labels, synsets, est, val


def hcp_movie_events(wordnet, run, *, text="words", video=None, clips=None, video_kwargs=None):
    """Events of one HCP 7T movie run: one row per second, WordNet labels as text.

    Parameters
    ----------
    wordnet : str or path
        The user's ``WordNetFeatures.hdf5``.
    run : int or str
        1-4, ``"MOVIE1"`` or ``"MOVIE1_CC1"``.
    text : {"words", "synsets"}, default="words"
        Text of a second: its labels as words (``"person, car, street"``,
        duplicates removed, file order) or as synset names. A second without
        labels has no text (None).
    video : str or path, optional
        The run's movie file (``7T_MOVIE1_CC1_v2.mp4``): frames sampled at
        1 Hz (middle of each second) become the images.
    clips : pandas.DataFrame, optional
        Clip timing with columns ``run``, ``clip``, ``start``, ``stop``,
        ``testretest``; default :data:`HCP_MOVIE_CLIPS` (approximate). Used
        for the ``clip`` column, and for ``rest``/``testretest`` when the
        file has no ``_est``/``_val`` flags.
    video_kwargs : dict, optional
        Passed to :func:`events_from_video` (e.g. ``size=224``,
        ``frames_dir=``).

    Returns
    -------
    pandas.DataFrame
        Events ``onset`` (s), ``duration`` (1 s), ``image`` (None without
        ``video``), ``text``, ``run`` (``"MOVIE1"``...), plus ``clip``,
        ``rest`` (bool) and ``testretest`` (bool: the repeated clip, for
        noise ceilings).
    """
    number = _run_number(run)
    if text not in ("words", "synsets"):
        raise ValueError(f"text must be 'words' or 'synsets', got {text!r}")
    labels, synsets, est, val = load_hcp_wordnet(wordnet, number)
    names = _words(synsets) if text == "words" else synsets
    n = labels.shape[0]
    texts = []
    for row in labels:
        present = [names[j] for j in np.flatnonzero(row)]
        present = list(dict.fromkeys(present))
        texts.append(", ".join(present) if present else None)
    onset = np.arange(n, dtype=float)
    table = clips if clips is not None else HCP_MOVIE_CLIPS
    missing = {"run", "clip", "start", "stop", "testretest"} - set(table.columns)
    if missing:
        raise ValueError(f"clips table lacks columns {sorted(missing)}")
    clip = np.full(n, None, dtype=object)
    retest_tab = np.zeros(n, dtype=bool)
    mid = onset + 0.5
    for row in table[table["run"].map(lambda r: _run_number(r) == number)].itertuples():
        inside = (mid >= row.start) & (mid < row.stop)
        clip[inside] = row.clip
        retest_tab |= inside & bool(row.testretest)
    if est is not None and val is not None:
        rest = (est + val) == 0
        retest = val > 0
    else:
        rest = np.array([c is None for c in clip])
        retest = retest_tab
    clip = np.where(rest, "rest", clip)
    clip[retest] = "testretest"
    images = [None] * n
    if video is not None:
        from nilearn_vlm.stimuli._video import events_from_video

        frames = events_from_video(video, None, rate=1.0, run=f"MOVIE{number}", **(video_kwargs or {}))
        by_onset = dict(zip(np.round(frames["onset"].to_numpy(), 6), frames["image"]))
        images = [by_onset.get(round(t, 6)) for t in onset]
    events = pd.DataFrame(
        {
            "onset": onset,
            "duration": 1.0,
            "image": pd.Series(images, dtype=object),
            "text": pd.Series(texts, dtype=object),
            "run": f"MOVIE{number}",
            "clip": pd.Series(clip, dtype=object),
            "rest": rest,
            "testretest": retest,
        }
    )
    return check_events(events)
