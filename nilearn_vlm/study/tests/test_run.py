"""``nilearn-vlm run`` on a small BIDS-like folder and on a small CIFTI file."""

import json
import subprocess
import sys
import textwrap

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from nilearn_vlm import hookimpl
from nilearn_vlm.plugins import register_plugin, unregister_plugin
from nilearn_vlm.cli.run import write_report
from nilearn_vlm.study import load_study, run_study
from nilearn_vlm.testing import ToyAdapter


class _ToyPlugin:
    @hookimpl
    def register_adapters(self, register):
        register(ToyAdapter)


@pytest.fixture
def toy():
    register_plugin(_ToyPlugin(), "toy-run-test")
    yield
    unregister_plugin("toy-run-test")


WORDS = ["cat", "dog", "sky", "red", "car", "tree", "blue", "sun"]


def _events(folder, n_runs, n_events):
    rng = np.random.default_rng(0)
    rows = [
        {"onset": 2.0 * k, "duration": 2.0, "text": " ".join(rng.choice(WORDS, 3)), "run": run}
        for run in range(1, n_runs + 1) for k in range(n_events)
    ]
    pd.DataFrame(rows).to_csv(folder / "events.tsv", sep="\t", index=False)


def _study_file(folder, fmri_block):
    path = folder / "study.toml"
    path.write_text(textwrap.dedent(f"""
        [study]
        name = "tiny"
        t_r = 2.0
        output = "out"
        [stimuli]
        events = "events.tsv"
        {fmri_block}
        [[models]]
        name = "toy"
        params = {{ width = 8, ffn_width = 8 }}
        sites = "text.*.ffn"
        [pipeline]
        n_atoms = 3
        n_permutations = 20
        atlases = []
        [analyses]
        run = []
        """))
    return path


def test_run_on_a_bids_like_folder_then_reuse(tmp_path, toy):
    n_runs, n_scans = 2, 24
    _events(tmp_path, n_runs, 20)
    rng = np.random.default_rng(1)
    mask = np.zeros((5, 5, 5), np.int8)
    mask[1:4, 1:4, 1:4] = 1
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    for sub in ("01", "02"):
        func = tmp_path / "derivatives" / f"sub-{sub}" / "func"
        func.mkdir(parents=True)
        for run in range(1, n_runs + 1):
            data = rng.standard_normal((5, 5, 5, n_scans)).astype(np.float32)
            nib.save(nib.Nifti1Image(data, affine),
                     func / f"sub-{sub}_task-movie_run-{run}_space-MNI_desc-preproc_bold.nii.gz")
    nib.save(nib.Nifti1Image(mask, affine), tmp_path / "mask.nii.gz")
    path = _study_file(tmp_path, '[fmri]\nbids = "derivatives"\nspace = "MNI"\nmask = "mask.nii.gz"')
    summary = run_study(path, verbose=0, on_result=write_report)
    assert [(r["subject"], r["reused"]) for r in summary["results"]] == [("01", False), ("02", False)]
    folder = tmp_path / "out" / "sub-01" / "toy"
    assert (folder / "report.html").is_file()
    from nilearn_vlm.results import Results

    res = Results.load(folder)
    assert res.glm_t.shape == (3, 27)
    assert res.to_img("encoder_scores").shape[:3] == (5, 5, 5)
    again = run_study(path, verbose=0)
    assert all(r["reused"] for r in again["results"])
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["study"] == "tiny"


def test_run_on_a_small_cifti_file(tmp_path, toy):
    n_scans, n_vert = 30, 40
    _events(tmp_path, 1, 25)
    axis = nib.cifti2.BrainModelAxis.from_mask(np.ones(n_vert, bool), name="CortexLeft")
    series = nib.cifti2.SeriesAxis(start=0, step=2.0, size=n_scans)
    data = np.random.default_rng(2).standard_normal((n_scans, n_vert)).astype(np.float32)
    img = nib.Cifti2Image(data, nib.cifti2.Cifti2Header.from_axes((series, axis)))
    nib.save(img, tmp_path / "sub-01_task-movie_bold.dtseries.nii")
    path = _study_file(tmp_path, '[[subjects]]\nid = "01"\nbold = ["sub-01_task-movie_bold.dtseries.nii"]')
    summary = run_study(path, verbose=0)
    folder = summary["results"][0]["folder"]
    from nilearn_vlm.results import Results

    res = Results.load(folder)
    assert res.n_voxels == n_vert
    out = res.to_img("encoder_scores")
    assert isinstance(out, nib.Cifti2Image)


def test_cli_reports_config_errors_with_exit_code_2(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text("[study]\nt_r = 2.0\n[stimuli]\nevents = 'nope.tsv'\n")
    res = subprocess.run([sys.executable, "-m", "nilearn_vlm.cli", "run", str(path)],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 2
    assert "stimuli.events: file or folder" in res.stdout


def test_study_with_bids_needs_files(tmp_path):
    (tmp_path / "events.tsv").write_text("onset\tduration\ttext\n0\t1\ta\n")
    (tmp_path / "empty").mkdir()
    path = _study_file(tmp_path, '[fmri]\nbids = "empty"')
    from nilearn_vlm.study import StudyConfigError

    with pytest.raises(StudyConfigError, match=r"fmri.bids: no sub-\*/func/\*_bold"):
        load_study(path, check_plugins=False)
