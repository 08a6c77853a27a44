"""Stimuli: validated events tables from DataFrames, BIDS files, videos with subtitles, HCP movies.

An events table has one row per stimulus: ``onset`` and ``duration`` in
seconds from the start of its ``run``, an ``image`` (file path, array or PIL
image) and/or a ``text``; either may be None for a stimulus without that
modality. :func:`load_image` is the one place images become RGB PIL images.
"""

from nilearn_vlm.stimuli._events import EVENT_COLUMNS, check_events, load_events
from nilearn_vlm.stimuli._hcp import (
    HCP_MOVIE_CLIPS,
    HCP_MOVIE_N_SCANS,
    HCP_MOVIE_RUNS,
    hcp_movie_events,
    load_hcp_wordnet,
)
from nilearn_vlm.stimuli._images import hash_image, hash_stimulus, is_missing, load_image
from nilearn_vlm.stimuli._video import events_from_video, read_subtitles

__all__ = [
    "EVENT_COLUMNS",
    "HCP_MOVIE_CLIPS",
    "HCP_MOVIE_N_SCANS",
    "HCP_MOVIE_RUNS",
    "check_events",
    "events_from_video",
    "hash_image",
    "hash_stimulus",
    "hcp_movie_events",
    "is_missing",
    "load_events",
    "load_hcp_wordnet",
    "load_image",
    "read_subtitles",
]
