"""Events tables, images, video + subtitles, HCP movie helpers."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nilearn_vlm.stimuli import (
    HCP_MOVIE_CLIPS,
    HCP_MOVIE_N_SCANS,
    check_events,
    events_from_video,
    hcp_movie_events,
    load_events,
    load_image,
    read_subtitles,
)


def test_check_events_clean_table():
    ev = check_events(pd.DataFrame({"onset": [2.0, 0.0], "duration": [1.0, 1.0],
                                    "text": ["b", np.nan], "extra": [1, 2]}))
    assert ev.columns.tolist() == ["onset", "duration", "image", "text", "run", "extra"]
    assert ev["onset"].tolist() == [0.0, 2.0] and ev.index.tolist() == [1, 0]
    assert ev["text"].tolist() == [None, "b"] and ev["image"].tolist() == [None, None]


@pytest.mark.parametrize("column,values,match", [
    ("onset", [0.0, np.nan], r"'onset' has NaN or infinite values at rows 1"),
    ("onset", [0.0, -1.0], r"'onset' has negative values at rows 1"),
    ("duration", [1.0, -0.5], r"'duration' has negative values at rows 1"),
    ("onset", [0.0, "soon"], r"'onset' must be numeric"),
])
def test_check_events_bad_times(column, values, match):
    df = pd.DataFrame({"onset": [0.0, 2.0], "duration": [1.0, 1.0], "text": ["a", "b"]})
    df[column] = values
    with pytest.raises(ValueError, match=match):
        check_events(df)


def test_check_events_overlap_and_columns():
    df = pd.DataFrame({"onset": [0.0, 1.5, 0.5], "duration": [2.0, 1.0, 0.5], "text": "x",
                       "run": [1, 1, 2]})
    with pytest.raises(ValueError, match=r"events overlap in run 1: row 1 starts at 1.5 s before an earlier event "
                       r"with a text .* ends at 2 s .*two texts cannot be shown at once: fix the onsets"):
        check_events(df)
    assert len(check_events(df, allow_overlap=True)) == 3
    # runs are separate: the same times in two runs do not overlap
    ok = pd.DataFrame({"onset": [0.0, 0.0], "duration": [2.0, 2.0], "text": "x", "run": [1, 2]})
    assert len(check_events(ok)) == 2
    with pytest.raises(ValueError, match="needs an 'image' and/or a 'text' column"):
        check_events(pd.DataFrame({"onset": [0.0], "duration": [1.0]}))
    with pytest.raises(ValueError, match="needs an 'duration' column in seconds"):
        check_events(pd.DataFrame({"onset": [0.0], "text": ["a"]}))
    with pytest.raises(ValueError, match="events table is empty"):
        check_events(pd.DataFrame({"onset": [], "duration": [], "text": []}))
    assert len(check_events(pd.DataFrame({"text": ["a"]}), require_timing=False)) == 1


def test_a_movie_with_subtitles_overlaps_across_streams_only():
    """Frame rows (image, no text) and subtitle rows (text, no image) overlap in time: accepted."""
    img = np.zeros((4, 4, 3), np.uint8)
    frames = pd.DataFrame({"onset": [0.0, 3.0, 6.0], "duration": 3.0, "image": [img] * 3, "text": None})
    subtitles = pd.DataFrame({"onset": [0.0, 2.0, 4.0, 6.0], "duration": 2.0, "image": None,
                              "text": ["a cat", "a dog", "the sky", "a car"]})
    movie = pd.concat([frames, subtitles], ignore_index=True).assign(run=1)
    out = check_events(movie)
    assert len(out) == 7 and out["onset"].is_monotonic_increasing
    # two subtitles on screen at once are still an error, and the message names the stream
    clash = pd.concat([movie, pd.DataFrame({"onset": [1.0], "duration": [2.0], "image": [None], "text": ["x"],
                                            "run": [1]})], ignore_index=True)
    with pytest.raises(ValueError, match=r"row 7 starts at 1 s before an earlier event with a text .*"
                       r"frames and subtitles may overlap"):
        check_events(clash)
    # a row with both an image and a text counts in both streams
    both = movie.copy()
    both.loc[0, "text"] = "a caption"
    with pytest.raises(ValueError, match="two texts cannot be shown at once"):
        check_events(both)
    # the message never names an argument a study file cannot set
    with pytest.raises(ValueError) as info:
        check_events(clash)
    assert "allow_overlap" not in str(info.value)


def test_images_paths_arrays_pil_and_errors(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    np.testing.assert_array_equal(np.asarray(load_image(tmp_path / "a.png")), arr)
    np.testing.assert_array_equal(np.asarray(load_image(arr)), arr)
    assert load_image(Image.fromarray(arr[..., 0])).mode == "RGB"
    assert np.asarray(load_image(np.ones((4, 4)) * 0.5))[0, 0, 0] == 128
    with pytest.raises(FileNotFoundError, match="nope.png' does not exist"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "bad.jpg").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="cannot read image file .*bad.jpg"):
        load_image(tmp_path / "bad.jpg")
    with pytest.raises(ValueError, match=r"must have shape \(H, W\), \(H, W, 3\) or \(H, W, 4\)"):
        load_image(np.zeros((4, 4, 5)))
    with pytest.raises(ValueError, match=r"float image arrays must lie in \[0, 1\]"):
        load_image(np.full((4, 4, 3), 3.0))
    ev = pd.DataFrame({"onset": [0.0, 1.0], "duration": 1.0, "image": ["a.png", "bad.jpg"]})
    with pytest.raises(ValueError, match="row 1: cannot read image file"):
        check_events(ev, check_images=True, base_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="1 image file.* do not exist"):
        check_events(ev.assign(image=["a.png", "zz.png"]), check_images=True, base_dir=tmp_path)


def test_load_bids_events(tmp_path):
    stim = tmp_path / "stimuli"
    stim.mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(stim / "cat.png")
    path = tmp_path / "sub-01_task-movie_run-03_events.tsv"
    path.write_text("onset\tduration\ttrial_type\tstim_file\n0\t1.5\tpic\tcat.png\n2\t1\tpic\tn/a\n")
    ev = load_events(path, stim_dir=stim, check_images=True)
    assert ev["run"].tolist() == ["03", "03"]
    assert ev["image"].iloc[0] == str(stim / "cat.png") and ev["image"].iloc[1] is None
    assert ev["trial_type"].tolist() == ["pic", "pic"]
    with pytest.raises(FileNotFoundError, match="events file .* does not exist"):
        load_events(tmp_path / "missing_events.tsv")


# -- video + subtitles ------------------------------------------------------
COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]


def _write_video(path, fps=10, seconds=4, size=32):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    writer = imageio_ffmpeg.write_frames(str(path), (size, size), fps=fps, quality=10,
                                         macro_block_size=1)
    writer.send(None)
    for k in range(fps * seconds):
        frame = np.zeros((size, size, 3), np.uint8)
        frame[:] = COLORS[(k // fps) % len(COLORS)]
        writer.send(frame.tobytes())
    writer.close()


SRT = """1
00:00:00,500 --> 00:00:01,500
Hello <i>there</i>

2
00:00:02,200 --> 00:00:02,800
General
Kenobi
"""


def test_events_from_video_with_subtitles(tmp_path):
    pytest.importorskip("pysrt")
    video = tmp_path / "clip.mp4"
    _write_video(video)
    srt = tmp_path / "clip.srt"
    srt.write_text(SRT)
    cues = read_subtitles(srt)
    assert cues["start"].tolist() == [0.5, 2.2] and cues["text"][1] == "General Kenobi"
    ev = events_from_video(video, srt, rate=1.0, run="movie")
    assert ev["onset"].tolist() == [0.0, 1.0, 2.0, 3.0] and (ev["duration"] == 1.0).all()
    assert ev["frame"].tolist() == [5, 15, 25, 35]  # middle of each second at 10 fps
    assert ev["text"].tolist() == ["Hello there", "Hello there", "General Kenobi", None]  # markup removed
    for img, color in zip(ev["image"], COLORS):
        assert img.shape == (32, 32, 3)
        np.testing.assert_allclose(img.reshape(-1, 3).mean(0), color, atol=20)
    # 2 Hz, frames written to disk
    ev2 = events_from_video(video, srt, rate=2.0, sample="start", frames_dir=tmp_path / "frames",
                            size=16)
    assert len(ev2) == 8 and ev2["onset"].tolist()[:3] == [0.0, 0.5, 1.0]
    assert ev2["text"].tolist()[:4] == [None, "Hello there", "Hello there", None]
    assert load_image(ev2["image"].iloc[2]).size == (16, 16)

    # video events -> units -> TR time series
    from nilearn_vlm import NeuronActivations, TRAligner
    from nilearn_vlm.testing import ToyAdapter

    X = NeuronActivations(model=ToyAdapter(width=8, n_layers=1), sites="all").fit_transform(ev)
    Y = TRAligner(events=ev, n_scans=6, t_r=1.0).fit_transform(X)
    assert X.shape[0] == 4 and Y.shape == (6, X.shape[1])


def test_video_errors(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    with pytest.raises(FileNotFoundError, match="video file .*none.mp4' does not exist"):
        events_from_video(tmp_path / "none.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        events_from_video(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(ValueError, match="cannot decode video"):
        events_from_video(junk)
    video = tmp_path / "short.mp4"
    _write_video(video, seconds=1)
    with pytest.raises(ValueError, match="shorter than one sample bin"):
        events_from_video(video, rate=0.25)
    with pytest.raises(ValueError, match="rate must be a positive number"):
        events_from_video(video, rate=0)
    with pytest.raises(FileNotFoundError, match="subtitle file .* does not exist"):
        events_from_video(video, tmp_path / "none.srt")


# -- HCP 7T movie ----------------------------------------------------------
def _write_wordnet(path, n=30, flags=True):
    h5py = pytest.importorskip("h5py")
    synsets = ["person.n.01", "ice_cream.n.01", "run.v.01", "car.n.01"]
    labels = np.zeros((n, len(synsets)))
    labels[3, [0, 1]] = 1
    labels[4, 2] = 1
    labels[25, 3] = 1
    with h5py.File(path, "w") as f:
        f["MOVIE1_CC1"] = labels
        f["synsets"] = np.array([s.encode() for s in synsets])
        if flags:
            est = np.zeros(n)
            est[2:20] = 1
            val = np.zeros(n)
            val[22:28] = 1
            f["MOVIE1_CC1_est"] = est
            f["MOVIE1_CC1_val"] = val
    return synsets


def test_hcp_movie_events_from_wordnet(tmp_path):
    path = tmp_path / "WordNetFeatures.hdf5"
    _write_wordnet(path)
    ev = hcp_movie_events(path, 1)
    assert len(ev) == 30 and (ev["run"] == "MOVIE1").all()
    assert ev["onset"].tolist()[:3] == [0.0, 1.0, 2.0] and (ev["duration"] == 1.0).all()
    assert ev["text"][3] == "person, ice cream" and ev["text"][4] == "run" and ev["text"][0] is None
    assert ev["rest"].tolist() == [True] * 2 + [False] * 18 + [True] * 2 + [False] * 6 + [True] * 2
    assert ev["testretest"].sum() == 6 and ev["testretest"][22] and ev["clip"][25] == "testretest"
    assert hcp_movie_events(path, "MOVIE1_CC1", text="synsets")["text"][3] == "person.n.01, ice_cream.n.01"


def test_hcp_text_events_to_time_series(tmp_path):
    from nilearn_vlm import NeuronActivations, TRAligner
    from nilearn_vlm.testing import ToyAdapter

    path = tmp_path / "WordNetFeatures.hdf5"
    _write_wordnet(path)
    ev = hcp_movie_events(path, 1)
    X = NeuronActivations(model=ToyAdapter(width=8, n_layers=1)).fit_transform(ev)
    labelled = ev["text"].notna().to_numpy()
    assert X.shape == (30, 8) and (X[~labelled] == 0).all() and (np.abs(X[labelled]).sum(1) > 0).all()
    Y = TRAligner(events=ev, n_scans={"MOVIE1": 32}, t_r=1.0).fit_transform(X)
    assert Y.shape == (32, 8) and np.allclose(Y.mean(0), 0, atol=1e-5)


def test_hcp_movie_events_with_video(tmp_path):
    path = tmp_path / "WordNetFeatures.hdf5"
    _write_wordnet(path)
    video = tmp_path / "7T_MOVIE1_CC1_v2.mp4"
    _write_video(video, fps=2, seconds=28)
    ev = hcp_movie_events(path, 1, video=video)
    assert all(isinstance(img, np.ndarray) for img in ev["image"][:28])
    assert ev["image"][28] is None and ev["image"][29] is None  # the video is 2 s shorter
    np.testing.assert_allclose(ev["image"][5].reshape(-1, 3).mean(0), COLORS[1], atol=20)


def test_hcp_movie_events_clip_table_fallback(tmp_path):
    path = tmp_path / "WordNetFeatures.hdf5"
    _write_wordnet(path, flags=False)
    clips = pd.DataFrame({"run": [1, 1], "clip": ["a", "testretest"], "start": [2.0, 20.0],
                          "stop": [10.0, 25.0], "testretest": [False, True]})
    ev = hcp_movie_events(path, "MOVIE1", clips=clips)
    assert ev["rest"].tolist() == [True] * 2 + [False] * 8 + [True] * 10 + [False] * 5 + [True] * 5
    assert ev["testretest"].tolist()[20:26] == [True] * 5 + [False]
    assert ev["clip"][3] == "a"
    # the documented default table: 20 s of rest, the test-retest clip last in each run
    assert HCP_MOVIE_N_SCANS["MOVIE1"] == 921 and ev["run"][0] == "MOVIE1"
    last = HCP_MOVIE_CLIPS.groupby("run").tail(1)
    assert last["testretest"].all() and (HCP_MOVIE_CLIPS.groupby("run")["start"].min() == 20).all()


def test_hcp_errors(tmp_path):
    h5py = pytest.importorskip("h5py")
    with pytest.raises(FileNotFoundError, match="WordNetFeatures.hdf5 of the HCP 7T movie"):
        hcp_movie_events(tmp_path / "none.hdf5", 1)
    path = tmp_path / "other.hdf5"
    with h5py.File(path, "w") as f:
        f["something"] = np.zeros(3)
    with pytest.raises(ValueError, match="lacks 'MOVIE2_HO1' or 'synsets'"):
        hcp_movie_events(path, 2)
    with pytest.raises(ValueError, match="unknown HCP movie run 'MOVIE9'"):
        hcp_movie_events(path, "MOVIE9")


@pytest.mark.subprocess
def test_core_modules_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, nilearn_vlm.extraction, nilearn_vlm.timeseries, nilearn_vlm.stimuli, "
            "nilearn_vlm._cache; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_high_bit_depth_images_are_scaled_not_clipped(tmp_path, mode):
    from PIL import Image

    ramp = np.linspace(0, 1, 64 * 64).reshape(64, 64)
    if mode == "F":
        img = Image.fromarray(ramp.astype(np.float32), mode="F")
        path = tmp_path / "ramp.tiff"
    else:
        img = Image.fromarray(np.round(ramp * 65535).astype(np.uint16))
        path = tmp_path / "ramp.png"
        if mode == "I":
            img = img.convert("I")
            path = tmp_path / "ramp.tiff"
    img.save(path)
    assert Image.open(path).mode == mode
    got = np.asarray(load_image(path))[..., 0].astype(float)
    np.testing.assert_allclose(got, np.round(ramp * 255), atol=1)  # 8-bit of the same ramp
    assert (got == 255).mean() < 0.01


def test_out_of_range_float_images_are_refused(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((4, 4), 3.0, np.float32), mode="F").save(tmp_path / "f.tiff")
    with pytest.raises(ValueError, match=r"floating-point pixels \(mode 'F'\) outside \[0, 1\]"):
        load_image(tmp_path / "f.tiff")


@pytest.mark.parametrize("timing", ["00:00:01,000 --> 00:00:0x,500", "00:00:01,000 --> 00:00:02.5oo"])
def test_malformed_subtitle_timings_are_errors_not_zero(tmp_path, timing):
    srt = tmp_path / "bad.srt"
    srt.write_text(f"1\n{timing}\nhello\n\n2\n00:00:03,000 --> 00:00:04,000\nworld\n")
    with pytest.raises(ValueError, match=r"bad.srt', line 2: .* is not a SubRip timing line"):
        read_subtitles(srt)


def test_subtitle_markup_is_removed_and_cues_must_end_after_they_start(tmp_path):
    srt = tmp_path / "markup.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:02,500\n<i>Hello</i> <font color=\"red\">there</font>\n"
                   "{\\an8}up top\n\n")
    cues = read_subtitles(srt)
    assert cues["text"].tolist() == ["Hello there up top"]
    srt.write_text("1\n00:00:03,000 --> 00:00:02,000\nbackwards\n\n")
    with pytest.raises(ValueError, match=r"cue 1 \('backwards'\) ends at 2 s, not after its start at 3 s"):
        read_subtitles(srt)
