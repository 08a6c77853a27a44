"""``nilearn-vlm run`` on a movie with subtitles, ``--dry-run``, and the TR check against image headers."""

import json
import textwrap

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nilearn_vlm import hookimpl
from nilearn_vlm.cli import main
from nilearn_vlm.plugins import register_plugin, unregister_plugin
from nilearn_vlm.spaces import header_t_r
from nilearn_vlm.testing import ToyAdapter

T_R, N_SCANS = 2.0, 30
WORDS = ["a cat on a mat", "a red car", "the blue sky", "a dog runs", "two trees", "the sun sets"]


class _ToyPlugin:
    @hookimpl
    def register_adapters(self, register):
        register(ToyAdapter)


@pytest.fixture(autouse=True)
def toy():
    register_plugin(_ToyPlugin(), "toy-movie-test")
    yield
    unregister_plugin("toy-movie-test")


def _movie_events(folder, rng, n_runs=2):
    """Frames every 3 s (an image, no text) and subtitles every 2 s (a text, no image): they overlap."""
    (folder / "frames").mkdir()
    rows = []
    for run in range(1, n_runs + 1):
        for k in range(18):
            name = f"frames/run{run}_{k}.png"
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / name)
            rows.append({"onset": 3.0 * k, "duration": 3.0, "image": name, "text": "n/a", "run": run})
        for k in range(27):
            rows.append({"onset": 2.0 * k, "duration": 2.0, "image": "n/a", "text": WORDS[k % len(WORDS)],
                         "run": run})
    events = pd.DataFrame(rows).sort_values(["run", "onset"])
    events.to_csv(folder / "events.tsv", sep="\t", index=False)
    return events


def _runs(folder, rng, header_t_r=T_R, unit="sec", n_runs=2):
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    paths = []
    for run in range(1, n_runs + 1):
        img = nib.Nifti1Image(rng.standard_normal((4, 4, 4, N_SCANS)).astype(np.float32), affine)
        if header_t_r is not None:
            img.header.set_xyzt_units("mm", unit)
            img.header.set_zooms((3.0, 3.0, 3.0, float(header_t_r)))
        path = folder / f"sub-01_run-{run}_bold.nii.gz"
        nib.save(img, path)
        paths.append(path.name)
    return paths


def _study(folder, bold, extra=""):
    path = folder / "study.toml"
    path.write_text(textwrap.dedent(f"""
        [study]
        name = "movie"
        t_r = {T_R}
        output = "out"
        {extra}
        [stimuli]
        events = "events.tsv"
        [[subjects]]
        id = "01"
        bold = {json.dumps(bold)}
        [[models]]
        name = "toy"
        params = {{ width = 8, ffn_width = 8 }}
        sites = ["vision.1.ffn", "text.1.ffn"]
        [pipeline]
        n_atoms = 3
        n_permutations = 20
        atlases = []
        [analyses]
        run = []
        """))
    return path


def test_run_finishes_on_a_movie_with_subtitles(tmp_path, capsys):
    rng = np.random.default_rng(0)
    events = _movie_events(tmp_path, rng)
    overlapping = ((events["onset"] % 3.0 != 0) & (events["image"] == "n/a")).any()
    assert overlapping  # subtitles start while a frame is shown
    path = _study(tmp_path, _runs(tmp_path, rng))
    assert main(["run", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "01 / toy: computed" in out and "[nilearn-vlm]" not in out  # --quiet prints the summary only
    folder = tmp_path / "out" / "sub-01" / "toy"
    assert (folder / "report.html").is_file()
    from nilearn_vlm.results import Results

    res = Results.load(folder)
    assert set(res.units["stream"]) == {"vision", "text"}
    assert res.atom_timecourses.shape[0] == 2 * N_SCANS


def test_dry_run_checks_everything_and_writes_nothing(tmp_path, capsys):
    rng = np.random.default_rng(1)
    _movie_events(tmp_path, rng)
    bold = _runs(tmp_path, rng)
    path = _study(tmp_path, bold)

    def boom(self, *args, **kwargs):
        raise AssertionError("dry run extracted units")

    ToyAdapter_extract = ToyAdapter.extract
    ToyAdapter.extract = boom
    try:
        assert main(["run", str(path), "--dry-run"]) == 0
    finally:
        ToyAdapter.extract = ToyAdapter_extract
    out = capsys.readouterr().out
    assert "sub-01 run 1: " in out and "(30 scans, header TR 2 s)" in out
    assert "90 events in 2 run(s) (36 with an image, 54 with a text)" in out
    assert "nothing was extracted or written" in out
    assert not (tmp_path / "out").exists()
    # a missing frame, a run too many, an unknown adapter: found before any extraction, named
    (tmp_path / "frames" / "run2_3.png").unlink()
    assert main(["run", str(path), "--dry-run"]) == 2
    assert "error: stimuli.events: 1 image file(s) do not exist" in capsys.readouterr().out
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "frames" / "run2_3.png")
    path = _study(tmp_path, bold + bold[:1])
    assert main(["run", str(path), "--dry-run"]) == 2
    assert "error: subjects[0].bold: subject 01 has 3 run image(s) but the events have 2 run(s)" \
        in capsys.readouterr().out


def test_a_tr_that_disagrees_with_the_header_is_an_error_naming_both_and_the_override(tmp_path, capsys):
    rng = np.random.default_rng(2)
    _movie_events(tmp_path, rng)
    bold = _runs(tmp_path, rng, header_t_r=1.5)
    path = _study(tmp_path, bold)
    assert main(["run", str(path), "--dry-run"]) == 2
    msg = capsys.readouterr().out
    assert "error: study.t_r: study.t_r = 2 s, but " in msg and "records a TR of 1.5 s (pixdim[4] = 1.5 sec)" in msg
    assert "give its TR (t_r = 1.5), or, if the header is wrong, set [study] ignore_header_t_r = true" in msg
    # the real run stops before extraction too
    assert main(["run", str(path)]) == 2 and not (tmp_path / "out").exists()
    capsys.readouterr()
    # the override key accepts it
    path = _study(tmp_path, bold, extra="ignore_header_t_r = true")
    assert main(["run", str(path), "--dry-run"]) == 0


def test_a_header_in_milliseconds_is_read_in_seconds(tmp_path, capsys):
    rng = np.random.default_rng(3)
    _movie_events(tmp_path, rng)
    bold = _runs(tmp_path, rng, header_t_r=2000.0, unit="msec")
    assert header_t_r(tmp_path / bold[0]) == (2.0, "pixdim[4] = 2000 msec")
    assert main(["run", str(_study(tmp_path, bold)), "--dry-run"]) == 0
    assert "header TR 2 s" in capsys.readouterr().out


def test_a_header_without_tr_warns_once(tmp_path, capsys):
    rng = np.random.default_rng(4)
    _movie_events(tmp_path, rng)
    bold = _runs(tmp_path, rng, header_t_r=None)
    with pytest.warns(UserWarning, match=r"\(and 1 more\): no repetition time in the header .* using study.t_r = 2 s "
                      "unchecked") as record:
        assert main(["run", str(_study(tmp_path, bold)), "--dry-run"]) == 0
    assert len([w for w in record if "no repetition time" in str(w.message)]) == 1
    assert "header TR none in header" in capsys.readouterr().out


def test_header_t_r_of_cifti_gifti_and_arrays():
    axis = nib.cifti2.BrainModelAxis.from_mask(np.ones(5, bool), name="CortexLeft")
    series = nib.cifti2.SeriesAxis(start=0, step=0.72, size=4)
    cifti = nib.Cifti2Image(np.zeros((4, 5), np.float32), nib.cifti2.Cifti2Header.from_axes((series, axis)))
    assert header_t_r(cifti) == (0.72, "CIFTI series axis step 0.72 s")
    gifti = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(np.zeros(5, np.float32))])
    assert header_t_r(gifti)[0] is None
    assert header_t_r(np.zeros((4, 5)))[0] is None
    img = nib.Nifti1Image(np.zeros((2, 2, 2, 3), np.float32), np.eye(4))
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_zooms((1, 1, 1, 0))
    assert header_t_r(img)[0] is None  # 0: none recorded
    img.header.set_xyzt_units("mm", "unknown")
    img.header.set_zooms((1, 1, 1, 2.5))
    assert header_t_r(img) == (2.5, "pixdim[4] = 2.5 with no time unit, read as seconds")


def test_the_simulated_runs_carry_their_true_tr():
    from nilearn_vlm.datasets._default_study import run_image

    img = run_image(np.zeros((2, 2, 2, 4), np.float32), np.diag([4.0, 4.0, 4.0, 1.0]), 2.0)
    assert header_t_r(img) == (2.0, "pixdim[4] = 2 sec") and img.header.get_zooms()[:3] == (4.0, 4.0, 4.0)
