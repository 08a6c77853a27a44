"""The main job: ``nilearn-vlm demo`` on the embedded default study, and its report in a browser."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    res = subprocess.run(
        [sys.executable, "-c", "import sys; from nilearn_vlm.cli import main; sys.exit(main())",
         "demo", "--out", str(out)],
        capture_output=True, text=True, timeout=1500, check=False,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out, res.stdout


def test_demo_recovers_the_planted_truth(demo_out):
    out, stdout = demo_out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recovery"]["network_f1"] >= 0.9
    assert summary["recovery"]["sign_accuracy"] >= 0.95
    assert summary["passed"] is True
    assert "planted truth recovered" in stdout
    assert "[nilearn-vlm] sparse dictionary learning" in stdout  # progress output
    for table in ("recovery", "layer_curves", "network_counts", "truth"):
        assert (out / "tables" / f"{table}.tsv").is_file()


def test_demo_writes_a_results_folder_that_loads(demo_out):
    from nilearn_vlm.results import Results

    out, _ = demo_out
    res = Results.load(out / "results")
    assert res.model == "clip"
    assert res.glm_t.shape[0] == res.n_atoms
    assert np.isfinite(res.encoder_scores).mean() > 0.9


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_renders_in_a_headless_browser(demo_out, tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("NILEARN_VLM_REQUIRE_BROWSER"):
            pytest.fail("chromium is required (NILEARN_VLM_REQUIRE_BROWSER is set) but not installed")
        pytest.skip("no chromium on this machine (CI installs Debian's chromium)")
    out, _ = demo_out
    html = (out / "report.html").read_text()
    assert "Recovery of the planted truth" in html and "RECOVERED" in html
    assert html.count("data:image/png;base64,") >= 5
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2400",
         f"--screenshot={shot}", (out / "report.html").resolve().as_uri()],
        capture_output=True, timeout=120, check=False,
    )
    assert shot.is_file(), "chromium wrote no screenshot"
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    assert img.shape[0] >= 2000 and img.shape[1] >= 1200
    # a rendered report, not a blank page: the header band is dark blue and figures add variety
    assert img[:60].mean() < 150
    assert img.std() > 30
    shutil.copy(shot, out / "report.png")
