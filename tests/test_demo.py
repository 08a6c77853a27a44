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
    assert summary["passed"] is True
    assert "planted truth recovered" in stdout
    # the drivers are key-neuron-shaped: every driver's atom is interpreted, with its units among its key neurons
    assert summary["glm"]["n_atoms_interpreted"] >= 4
    for row in summary["recovery_by_driver"]:
        assert row["key_recall"] > 0 and row["key_precision"] > 0, row


def test_demo_runs_every_step_and_says_what_it_found(demo_out):
    out, stdout = demo_out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recovery"]["sign_accuracy"] >= 0.95  # the maps it shows have the planted signs
    verdict = "planted truth recovered" if summary["passed"] else "planted truth NOT recovered"
    assert verdict in stdout
    assert summary["atoms"]["converged"] and summary["atoms"]["tol_reached"] <= summary["atoms"]["tol"]
    assert "[nilearn-vlm] sparse dictionary learning" in stdout  # progress output
    for table in ("recovery", "layer_curves", "network_counts", "truth"):
        assert (out / "tables" / f"{table}.tsv").is_file()
    # the encoder's statistic is named, and it is the out-of-fold r of the results
    from nilearn_vlm.results import Results

    res = Results.load(out / "results")
    assert summary["encoder"]["statistic"] == "out-of-fold Pearson r" and "mean_cv_r" not in summary["encoder"]
    assert summary["encoder"]["mean_r"] == pytest.approx(float(np.nanmean(res.encoder_r)))
    assert summary["encoder"]["n_voxels_p05_fwe"] == int((res.encoder_p_fwe < 0.05).sum())
    # every step is timed, the longest ones too, and printed
    steps = list(summary["timings_s"])
    assert steps[0].startswith("simulating the default study") and "analyses" in steps and "report" in steps
    assert "unit x voxel maps (all units)" in steps
    for name in ("simulating the default study", "analyses", "report"):
        assert f"[nilearn-vlm] {name}" in stdout
    assert "RuntimeWarning" not in stdout and "UserWarning" not in stdout
    assert "No pretrained weights loaded" not in stdout


def test_demo_shows_the_four_findings_plants_recovered_and_null_controls_not(demo_out):
    """summary.json: each finding's plant recovered at p < 0.05, its null control not; compare ran with METER."""
    out, _ = demo_out
    summary = json.loads((out / "summary.json").read_text())
    findings = summary["findings"]
    assert set(findings) == {"networks", "redundancy", "polarity", "fusion"}
    for name in ("redundancy", "polarity", "fusion"):
        plant, control = findings[name]["plant"], findings[name]["control"]
        assert plant["recovered"] is True and plant["p"] < 0.05, (name, plant)
        assert control["recovered"] is False and control["p"] >= 0.05, (name, control)
        assert np.isfinite(plant["value"]) and np.isfinite(control["value"]) and plant["statistic"]
        assert findings[name]["recovered"] is True
    assert findings["fusion"]["plant"]["value"] > 0 and findings["fusion"]["plant"]["n_better_voxels_bh"] > 0
    assert findings["fusion"]["plant"]["low"] > 0  # the interval of the R^2 difference excludes 0
    nets = findings["networks"]
    truth = {(d["network"], d["sign"]) for d in summary["recovery_by_driver"]}
    assert len(nets["plants"]) == len(truth) == 4
    for plant in nets["plants"]:
        assert plant["recovered"] is True and plant["p"] < 0.05, plant
        assert plant["sign_accuracy"] >= 0.95 and 0.5 < plant["voxel_precision"] <= 1.0, plant
        assert 0 < plant["voxel_recall"] <= 1.0, plant
    assert nets["control"]["recovered"] is False and nets["control"]["p"] >= 0.05 and nets["control"]["n_voxels"] > 0
    assert nets["recovered"] is True
    # METER and its unimodal baseline ran; compare is not skipped
    assert [m["name"] for m in summary["models"]] == ["clip", "meter", "meter-encoders"]
    assert "compare" in summary["analyses"]["run"] and "compare" not in summary["analyses"]["skipped"]
    assert summary["fusion_plant"]["n_interaction_voxels"] > 50 and summary["fusion_plant"]["n_one_modality_voxels"] > 50
    steps = list(summary["timings_s"])
    assert any(s.startswith("meter: ") for s in steps) and "the four findings: plants and null controls" in steps
    from nilearn_vlm.results import Results

    assert Results.load(out / "results_meter").model == "meter"


def test_the_report_shows_the_planted_signs_and_the_results_numbers(demo_out):
    """Numbers read back from report.html: the planted signs, the encoder's r per network, complete tables."""
    from nilearn_vlm.datasets import STUDY_NETWORKS
    from nilearn_vlm.networks import voxel_networks
    from nilearn_vlm.report import label
    from nilearn_vlm.report.tests._read_html import column, read_report
    from nilearn_vlm.results import Results

    out, _ = demo_out
    html = (out / "report.html").read_text()
    tables, figures, blocks = read_report(html)
    res = Results.load(out / "results")
    truth = json.loads((out / "summary.json").read_text())["recovery_by_driver"]
    shown = [t for t in tables if not t["in_details"]]
    # signs: each driver's atom, in its planted network, shows the planted sign
    block = next(b for b in blocks if label("n_positive") in b["tables"][0]["header"])
    full = block["tables"][-1]  # the whole table (in <details> when it is long)
    assert len(full["rows"]) == block["rows"]
    rows = [dict(zip(full["header"], r)) for r in full["rows"]]
    n_shown = 0
    for driver in truth:
        row = next(r for r in rows if r["map"] == f"atom{driver['atom']}" and r["network"] == driver["network"])
        pos, neg = float(row[label("n_positive")]), float(row[label("n_negative")])
        agree = pos if driver["sign"] > 0 else neg
        interpreted = bool(res.atom_interpreted[driver["atom"]])
        if not interpreted:  # an atom the pipeline does not interpret has an empty map
            assert pos + neg == 0, (driver, row)
            continue
        n_shown += 1
        assert agree >= 0.95 * (pos + neg) and agree > 0, (driver, row)
    assert n_shown >= 1
    # the encoder's out-of-fold r per network, recomputed from the results
    per_net = next(t for t in shown if label("encoder_r", "mean") in t["header"])
    nets = voxel_networks(res.network_labels.values(), networks=STUDY_NETWORKS)
    for net, r in zip(column(per_net, "network"), column(per_net, label("encoder_r", "mean"))):
        member = nets == net if net != "(outside)" else ~np.isin(nets, STUDY_NETWORKS)
        assert r == pytest.approx(float(np.nanmean(res.encoder_r[member])), abs=6e-4, rel=5e-3), net
    # the planted layers are marked, precision is reported beside recall, nothing is cut
    assert "dashed lines mark the planted layers" in html
    assert label("key_precision") in html and label("key_recall") in html
    for block in blocks:
        visible = sum(len(t["rows"]) for t in block["tables"] if not t["in_details"])
        in_full = [len(t["rows"]) for t in block["tables"] if t["in_details"]]
        assert visible == block["rows"] or in_full == [block["rows"]] or block["links"], block["rows"]
        for link in block["links"]:
            assert (out / link).is_file()
    # the report's own figures name their quantity (the analyses' figures carry their plugins' captions)
    unlabelled = ("analysis--polarity", "analysis--redundancy", "analysis--compare", "recovery-of-the-planted-truth")
    assert all(f["quantity"] for f in figures if f["section"] not in unlabelled)


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
