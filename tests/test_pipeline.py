"""The whole path on a tiny simulated subject with the NumPy toy adapter."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from nilearn_vlm.pipeline import PipelineSettings, fit_subject, load_bold
from nilearn_vlm.plugins import register_plugin, unregister_plugin
from nilearn_vlm import hookimpl
from nilearn_vlm.testing import ToyAdapter


class _ToyPlugin:
    @hookimpl
    def register_adapters(self, register):
        register(ToyAdapter)


@pytest.fixture
def toy_plugin():
    register_plugin(_ToyPlugin(), "toy-pipeline-test")
    yield
    unregister_plugin("toy-pipeline-test")


def _subject(rng, n_runs=3, n_events=30, t_r=2.0, driven=slice(0, 20)):
    from nilearn_vlm.timeseries import TRAligner

    words = ["cat", "dog", "sky", "red", "car", "tree", "blue", "sun", "house", "river"]
    rows = []
    for run in range(1, n_runs + 1):
        for k in range(n_events):
            rows.append({
                "onset": 2.0 * k, "duration": 2.0, "run": run,
                "image": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
                "text": " ".join(rng.choice(words, 3)),
            })
    events = pd.DataFrame(rows)
    n_scans = {run: n_events + 8 for run in range(1, n_runs + 1)}
    adapter = ToyAdapter()
    units = adapter.extract(
        __import__("nilearn_vlm.adapters", fromlist=["Batch"]).Batch(
            images=[__import__("PIL.Image", fromlist=["Image"]).fromarray(i) for i in events["image"]],
            texts=list(events["text"])),
        ["vision.1.ffn"], "mean")["vision.1.ffn"][:, :1]
    driver = TRAligner(events=events[["onset", "duration", "run"]], n_scans=n_scans, t_r=t_r).fit_transform(units)
    mask = np.zeros((6, 6, 6), np.int8)
    mask[1:5, 1:5, 1:5] = 1
    n_vox = int(mask.sum())
    Y = rng.standard_normal((driver.shape[0], n_vox))
    Y[:, driven] += 1.5 * driver
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    bold, start = [], 0
    for run in range(1, n_runs + 1):
        data = np.zeros((6, 6, 6, n_scans[run]), np.float32)
        data[mask.astype(bool)] = Y[start:start + n_scans[run]].T
        bold.append(nib.Nifti1Image(data, affine))
        start += n_scans[run]
    return events, bold, nib.Nifti1Image(mask, affine), t_r


def test_fit_subject_end_to_end(toy_plugin, tmp_path, capsys):
    rng = np.random.default_rng(0)
    events, bold, mask, t_r = _subject(rng)
    settings = PipelineSettings(n_atoms=4, n_permutations=50, atlases=(), top_k=3, site_voxels="all")
    results = fit_subject(events, bold, t_r, mask=mask, model="toy", sites="*.ffn",
                          settings=settings, memory=str(tmp_path / "cache"), verbose=0)
    n_vox = 64
    assert results.n_voxels == n_vox
    assert results.glm_t.shape == (4, n_vox)
    assert results.atom_loadings.shape == (4, results.n_units)
    sites = {"vision.0.ffn", "vision.1.ffn", "text.0.ffn", "text.1.ffn"}
    assert set(results.layer_scores) == sites and set(results.layer_fold_scores) == sites
    # the planted voxels are predicted, the others are not
    scores = results.encoder_scores
    assert np.nanmean(scores[:20]) > 0.3 > np.nanmean(scores[20:])
    site = results.layer_scores["vision.1.ffn"]
    assert np.mean(site[:20]) > np.mean(site[20:]) + 0.2
    # per fold (the 3 runs), too
    folds = results.layer_fold_scores["vision.1.ffn"]
    assert folds.shape == (3, n_vox)
    assert (folds[:, :20].mean(axis=1) > folds[:, 20:].mean(axis=1) + 0.2).all()
    p = results.encoder_p
    assert np.mean(p[:20] < 0.05) > 0.9 and np.mean(p[20:] < 0.05) < 0.2
    assert (results.encoder_p_fwe >= p).all()
    assert np.mean(results.encoder_r[:20]) > 0.3 > np.mean(results.encoder_r[20:])
    assert results.run_labels == [1, 2, 3]
    assert results.runs.tolist() == np.repeat([1, 2, 3], 38).tolist()
    assert results.runs.shape[0] == results.atom_timecourses.shape[0]
    assert list(results.timings)[0] == "loading BOLD" and "unit x voxel maps (all units)" in results.timings
    # the results folder round-trips with its images and everything the report needs
    results.save(tmp_path / "res")
    from nilearn_vlm.results import Results

    again = Results.load(tmp_path / "res")
    np.testing.assert_allclose(again.glm_t, results.glm_t)
    for name in ("encoder_r", "encoder_p", "encoder_p_fwe", "runs"):
        np.testing.assert_array_equal(getattr(again, name), getattr(results, name), err_msg=name)
    for k, v in results.layer_fold_scores.items():
        np.testing.assert_array_equal(again.layer_fold_scores[k], v)
    assert again.timings == results.timings and again.run_labels == results.run_labels
    # the delete-one-layer squared error of all units: one row per (stream, layer) group, every voxel, saved
    assert results.stream_layer_sse["all"].shape == (4, n_vox) and np.isfinite(results.stream_layer_sse["all"]).all()
    np.testing.assert_array_equal(again.stream_layer_sse["all"], results.stream_layer_sse["all"])
    img = again.to_img("encoder_scores")
    assert img.shape[:3] == (6, 6, 6)
    _check_report_rebuilt_from_folder(results, tmp_path, capsys)


def _sections(report):
    return [(s.title, s.text, s.html, [f.caption for f in s.figures], [(t.frame.to_csv(), t.caption) for t in s.tables])
            for s in report.sections]


def _check_report_rebuilt_from_folder(results, tmp_path, capsys):
    """A report rebuilt from the saved folder (in Python and by the CLI) equals the in-process one."""
    from nilearn_vlm.cli import main
    from nilearn_vlm.networks import AtlasLabels
    from nilearn_vlm.networks._base import make_lookup
    from nilearn_vlm.report import build_report, label

    # networks: the planted voxels (0-19) form "Visual", the next 20 "Language"
    labels = np.repeat([1, 2, 0], [20, 20, 24])
    results.network_labels["toy"] = AtlasLabels("toy", "MNI152", labels, make_lookup([1, 2], ["Visual", "Language"]))
    folder = results.save(tmp_path / "res_nets")
    here = build_report(results)
    titles = [s.title for s in here.sections]
    assert titles == ["How to read this report", "Encoding scores", "Signed atom maps (positive and negative BNs)",
                      "Layer curves", "Key neurons", "Methods", "Timings", "Provenance"]
    # the default networks are the atlas's, and their numbers are the encoder's out-of-fold r
    table = here.sections[1].tables[0].frame.set_index("network")
    assert table.index.tolist() == ["vision", "language", "(outside)"]
    assert table.loc["vision", label("encoder_r", "mean")] == pytest.approx(np.nanmean(results.encoder_r[:20]))
    assert table.loc["(outside)", label("n_voxels")] == 24
    back = build_report(folder)
    assert _sections(back) == _sections(here)
    assert [s.to_html() for s in back.sections] == [s.to_html() for s in here.sections]
    out = tmp_path / "rebuilt.html"
    assert main(["report", str(folder), "--out", str(out)]) == 0
    assert f"report: {out}" in capsys.readouterr().out
    html = out.read_text()
    for section in here.sections:
        assert section.to_html() in html
    # only networks of the results' atlases can be asked for
    assert main(["report", str(folder), "--networks", "vision,dorsal attention"]) == 2
    assert "networks ['dorsal attention'] are not in the results' atlases" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "holds no results.json: not a folder written by Results.save" in capsys.readouterr().out
    # the default output is the folder's report.html
    assert main(["report", str(folder), "--networks", "vision"]) == 0
    assert (folder / "report.html").is_file()


def test_site_encoders_fit_relevant_voxels_only(toy_plugin, tmp_path):
    rng = np.random.default_rng(0)
    events, bold, mask, t_r = _subject(rng)
    settings = PipelineSettings(n_atoms=4, n_permutations=50, atlases=(), top_k=3)
    results = fit_subject(events, bold, t_r, mask=mask, model="toy", sites="vision.1.ffn",
                          settings=settings, memory=str(tmp_path / "cache"), verbose=0)
    site = results.layer_scores["vision.1.ffn"]
    relevant = results.encoder_p < 0.05
    assert np.isfinite(site[relevant]).all() and np.isnan(site[~relevant]).all()
    assert relevant[:20].mean() > 0.9 and relevant[20:].mean() < 0.3


def test_load_bold_from_arrays():
    Y, runs, space = load_bold([np.ones((5, 3)), np.zeros((4, 3))])
    assert Y.shape == (9, 3) and runs.tolist() == [1] * 5 + [2] * 4
    assert space.kind == "array"


def test_cv_folds_are_the_runs_or_four_contiguous_blocks():
    from sklearn.model_selection import KFold

    from nilearn_vlm.pipeline import cv_folds

    runs = np.repeat([1, 2, 3], [10, 12, 9])
    np.testing.assert_array_equal(cv_folds(runs), runs)
    one = cv_folds(np.ones(42, dtype=int))
    for k, (_, test) in enumerate(KFold(4).split(np.empty((42, 1))), start=1):
        np.testing.assert_array_equal(np.flatnonzero(one == k), test)
