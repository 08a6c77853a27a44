"""From stimuli to neuron time series
==================================

The first half of the data path on the embedded study's movie: real captioned
images shown as frames, their real descriptions as subtitles
(:func:`nilearn_vlm.datasets.make_movie_events`), through a CLIP model
(:class:`nilearn_vlm.NeuronActivations`: one row of units per stimulus), then
onto the TR grid with the HRF (:class:`nilearn_vlm.TRAligner`: one row per
scan, runs stacked).

The CLIP model here has tiny random weights so that the example runs offline
in seconds; pass ``{"arch": "ViT-B-32", "pretrained": "openai"}`` (or a
checkpoint file) for real units.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from nilearn_vlm import NeuronActivations, TRAligner
from nilearn_vlm.datasets import make_movie_events

# %% The embedded movie: frames (images, no text) and subtitles (text, no image)
events, run_durations = make_movie_events(n_runs=2, passes_per_run=1)
print(events[["onset", "duration", "run", "kind", "name"]].head(3).to_string(index=False))
print("stimuli per kind:", events["kind"].value_counts().to_dict(), "| run durations (s):", run_durations)

# %% Units: every attention-output unit of both towers, mean-pooled over tokens
TINY_CLIP = {
    "arch": "ViT-B-32", "pretrained": None, "seed": 0,
    "model_cfg": {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "head_width": 8, "layers": 2},
        "text_cfg": {"width": 32, "heads": 4, "layers": 2, "context_length": 24},
    },
}
acts = NeuronActivations(model="clip", model_params=TINY_CLIP, sites="*.attn_out", pooling="mean")
units = acts.fit_transform(events[["image", "text"]])
names = acts.get_feature_names_out()
print("units:", units.shape, "e.g.", names[0], "...", names[-1])
# A frame has no text, so its text units are zero (and a subtitle's vision units).
frames = (events["kind"] == "frame").to_numpy()
text_cols = acts.site_slices_["text.0.attn_out"]
print("text units of frames all zero:", bool(np.all(units[frames][:, text_cols] == 0)))

# %% Time series: Glover HRF on a 2 s TR grid, z-scored per run
t_r = 2.0
n_scans = {run: int(np.ceil(d / t_r)) for run, d in run_durations.items()}
aligner = TRAligner(events=events[["onset", "duration", "run"]], n_scans=n_scans, t_r=t_r)
X = aligner.fit_transform(units)
print("time series:", X.shape, "runs:", list(aligner.runs_), "| scans per run:", n_scans)
print(f"mean {X.mean():.3f}, std {X.std():.3f} (z-scored per run)")
