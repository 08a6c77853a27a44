"""The fusion plant's pieces: paired stimuli and the interaction / one-modality drivers."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from nilearn_vlm.datasets import fusion_drivers, fusion_model_params, make_movie_events, pair_events


def _shown(v):
    return v is not None and not (isinstance(v, float) and np.isnan(v))


def test_each_stimulus_is_paired_with_what_is_on_screen_at_its_onset():
    events, _ = make_movie_events(n_runs=2, passes_per_run=1)
    paired = pair_events(events)
    assert len(paired) == len(events) and paired.index.equals(events.index)
    for i, row in events.iterrows():
        same_run = events[events["run"] == row["run"]]
        for col in ("image", "text"):
            if _shown(row[col]):  # its own content is kept
                assert paired.at[i, col] is row[col]
                continue
            shown = [j for j, other in same_run.iterrows() if _shown(other[col])
                     and other["onset"] <= row["onset"] < other["onset"] + other["duration"]]
            if shown:
                assert paired.at[i, col] is same_run.at[shown[-1], col]
            else:
                assert not _shown(paired.at[i, col])
    # in the movie layout a frame is always on screen while a subtitle is
    assert paired.loc[events["kind"] == "subtitle", "image"].map(_shown).all()


def test_nothing_on_screen_stays_empty_for_the_filler():
    ev = pd.DataFrame({"onset": [0.0, 5.0, 5.0], "duration": [2.0, 2.0, 1.0], "run": [1, 1, 2],
                       "image": ["A", "B", None], "text": ["t", None, "u"]})
    paired = pair_events(ev)
    assert paired["text"].map(_shown).tolist() == [True, False, True]  # nothing shown at 5 s in run 1
    assert paired["image"].map(_shown).tolist() == [True, True, False]  # run 2 has no frame
    assert paired.at[0, "text"] == "t" and paired.at[1, "image"] == "B"


def _toy_fusion_units(rng, n=320):
    img, txt = rng.standard_normal((n, 3)), rng.standard_normal((n, 3))
    inter = img[:, [0]] * txt[:, [0]]
    cols, streams = [], []
    for stream, src in (("vision", img), ("text", txt)):
        cols.append(src @ rng.standard_normal((3, 20)) + 0.1 * rng.standard_normal((n, 20)))
        streams += [stream] * 20
    fused = np.hstack([img, txt]) @ rng.standard_normal((6, 20)) + 3 * inter @ rng.standard_normal((1, 20))
    cols.append(fused + 0.1 * rng.standard_normal((n, 20)))
    streams += ["cross_image"] * 20
    return np.hstack(cols), pd.DataFrame({"stream": streams}), img, inter[:, 0]


def test_the_interaction_driver_is_what_the_encoders_do_not_carry():
    rng = np.random.default_rng(0)
    X, units, img, inter = _toy_fusion_units(rng)
    signals, info = fusion_drivers(X, units, n_components=8)
    assert signals.shape == (X.shape[0], 2)
    assert np.allclose(signals.mean(0), 0) and np.allclose(signals.std(0), 1)
    enc = units["stream"].isin(["vision", "text"]).to_numpy()
    # independent reference: least squares on the encoders' units
    r2_enc = LinearRegression().fit(X[:, enc], signals[:, 0]).score(X[:, enc], signals[:, 0])
    assert r2_enc < 0.2 and info["r2_interaction_baseline"] < 0.2
    assert abs(np.corrcoef(signals[:, 0], inter)[0, 1]) > 0.8  # it is the planted image x text product
    # the one-modality driver is an image signal both models carry
    r2_img = LinearRegression().fit(img, signals[:, 1]).score(img, signals[:, 1])
    assert r2_img > 0.9 and info["r2_onemodality_baseline"] > 0.9 and info["r2_onemodality_model"] > 0.9


def test_the_drivers_can_avoid_the_other_plants_signals():
    """exclude=: both drivers uncorrelated with given signals (the network drivers), still what they should be."""
    rng = np.random.default_rng(1)
    X, units, img, inter = _toy_fusion_units(rng)
    plain, _ = fusion_drivers(X, units, n_components=8)
    other = plain[:, [1]] + 0.3 * img[:, [1]]  # a signal the one-modality driver would follow
    signals, info = fusion_drivers(X, units, n_components=8, exclude=other)
    for k in range(2):
        assert abs(np.corrcoef(signals[:, k], other[:, 0])[0, 1]) < 1e-6
    assert abs(np.corrcoef(plain[:, 1], other[:, 0])[0, 1]) > 0.9  # it did correlate before
    assert abs(np.corrcoef(signals[:, 0], inter)[0, 1]) > 0.8
    r2_img = LinearRegression().fit(img, signals[:, 1]).score(img, signals[:, 1])
    assert r2_img > 0.9 and info["r2_onemodality_baseline"] > 0.9


def test_fusion_drivers_need_a_fusion_model():
    X = np.random.default_rng(0).standard_normal((50, 4))
    with pytest.raises(ValueError, match="needs a fusion model"):
        fusion_drivers(X, pd.DataFrame({"stream": ["vision", "vision", "text", "text"]}))


def test_the_demo_meter_has_an_offline_tokenizer_of_the_captions():
    p = fusion_model_params(["b", "a", "b"])
    assert p["tokenizer"] == {"corpus": ["a", "b"], "vocab_size": 600}
    assert p["missing_text"] == "" and p["missing_image"] == "black"
    assert fusion_model_params(["a"], {"image_size": 32, "tokenizer": "/tok"})["tokenizer"] == "/tok"
