"""Null calibration and power of the pipeline's inference on real resting-state noise.

Real BOLD from the ``neuropycon-data`` package (the ``test`` extra): a random
design cannot be in a resting-state run, so every rejection is false.
"""

import json

import numpy as np
import pytest

from nilearn_vlm import VoxelGLM
from nilearn_vlm._glm_solver import drift_terms
from nilearn_vlm.calibration import calibrate, random_event_design, random_unit_series
from nilearn_vlm.settings import PipelineSettings

#: Figure of the full benchmark (``python benchmarks/calibration.py``, docs: the
#: calibration section of the statistics guide) on neuropycon-data, calibrated
#: inference, univariate GLM, 1,000 random-design maps: the share of maps with any
#: FDR discovery (48 of 1,000, 95% interval [0.036, 0.063]).
BENCHMARK_FAMILYWISE = 0.048


@pytest.fixture(autouse=True)
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def rest():
    pytest.importorskip("neuropycon_data", reason="real rest noise needs neuropycon-data (pip install nilearn-vlm[test])")
    from nilearn_vlm.testing import rest_noise

    Y, t_r = rest_noise("neuropycon")
    keep = np.random.default_rng(0).choice(Y.shape[1], 4000, replace=False)
    return Y[:, np.sort(keep)], t_r


def test_calibrated_glm_holds_on_real_rest_noise(rest):
    Y, t_r = rest
    res = calibrate(Y, t_r, n_maps=60, n_unit_sets=3, verbose=0, seed=1)
    glm = res.rates["GLM maps"]
    assert glm["n_families"] == 60 and glm["n_tests"] == 60 * Y.shape[1]
    assert 0.04 <= glm["fpr_0.05"] <= 0.06
    assert 0.0005 <= glm["fpr_0.001"] <= 0.002
    # familywise: the benchmark's figure inside this run's interval, and far from the 20-27% of AR(1)
    lo, hi = glm["familywise_ci"]
    assert lo <= BENCHMARK_FAMILYWISE <= hi and glm["familywise"] <= 0.1
    units = res.rates["unit x voxel maps"]
    assert 0.04 <= units["fpr_0.05"] <= 0.06 and units["familywise"] <= 1 / 3


def test_the_inference_setting_changes_calibrate(rest):
    Y, t_r = rest
    cal = calibrate(Y, t_r, n_maps=16, verbose=0).rates["GLM maps"]
    ar1 = calibrate(Y, t_r, n_maps=16, verbose=0, settings=PipelineSettings(inference="ar1")).rates["GLM maps"]
    assert ar1["fpr_0.05_ci"][0] > cal["fpr_0.05_ci"][1]  # nilearn's AR(1): too many false positives
    assert ar1["fpr_0.001"] > 2 * cal["fpr_0.001"]


def test_planted_effects_are_found_in_real_noise(rest):
    """SNR 0.25 (voxel variance) in 20% of the voxels: high recall, FDR held, signs right."""
    Y, t_r = rest
    n = Y.shape[0]
    Q = np.linalg.qr(drift_terms(n, None, t_r).to_numpy())[0]
    rng = np.random.default_rng(2)
    recall, fdp = [], []
    for _ in range(3):
        X = random_event_design(n, t_r, rng)
        x = X[:, 0] - Q @ (Q.T @ X[:, 0])
        resid = Y - Q @ (Q.T @ Y)
        active = rng.random(Y.shape[1]) < 0.2
        b = np.sqrt(0.25 * resid.var(0) / x.var()) * rng.choice([-1.0, 1.0], Y.shape[1]) * active
        glm = VoxelGLM(t_r=t_r, mode="univariate").fit(X, Y + np.outer(x, b))
        found = glm.signed_[:, 0] != 0
        recall.append(found[active].mean())
        fdp.append((found & ~active).sum() / max(found.sum(), 1))
        assert np.all(np.sign(glm.t_[found & active, 0]) == np.sign(b[found & active]))
    assert np.mean(recall) > 0.8 and np.mean(fdp) < 0.1


def test_unit_maps_find_planted_units_in_real_noise(rest):
    from nilearn_vlm.maps import unit_voxel_maps

    Y, t_r = rest
    n = Y.shape[0]
    rng = np.random.default_rng(3)
    U = random_unit_series(n, t_r, rng)
    Yp = Y.copy()
    planted = rng.random(Y.shape[1]) < 0.1
    u = U[:, 5] - U[:, 5].mean()
    Yp[:, planted] += np.outer(u, np.sqrt(0.5 * Y[:, planted].var(0) / u.var()))
    maps = unit_voxel_maps(U, Yp, t_r=t_r)
    assert maps.n_positive[5] > 0.5 * planted.sum()
    others = np.delete(maps.n_positive + maps.n_negative, 5)
    # units correlated with unit 5 (shared factors) may share some voxels; most pairs stay quiet
    assert others.sum() < 0.2 * 63 * planted.sum()


def test_calibrate_command_prints_the_rates(rest, tmp_path, capsys):
    from nilearn_vlm.cli import main

    Y, t_r = rest
    np.save(tmp_path / "rest.npy", Y[:, :1500])
    code = main(["calibrate", str(tmp_path / "rest.npy"), "--t-r", str(t_r), "--n-maps", "8",
                 "--quiet", "--json", str(tmp_path / "rates.json")])
    out = capsys.readouterr().out
    assert code == 0 and "GLM maps" in out and "inference 'calibrated'" in out
    saved = json.loads((tmp_path / "rates.json").read_text())
    assert saved["rates"]["GLM maps"]["n_families"] == 8 and saved["n_voxels"] == 1500
    code = main(["calibrate", str(tmp_path / "rest.npy"), "--t-r", "0", "--quiet"])
    assert code == 2 and "t_r" in capsys.readouterr().err


def test_rest_noise_names_the_missing_package(monkeypatch):
    import importlib.util

    from nilearn_vlm.testing import _rest, rest_noise

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "brainfc" else real_find_spec(name, *a))
    _rest._brainfc.cache_clear()
    with pytest.raises(ImportError, match=r"pip install brainfc \(or nilearn-vlm\[test\]\)"):
        rest_noise("brainfc")
    _rest._brainfc.cache_clear()
    with pytest.raises(ValueError, match="no rest data 'hcp'; available"):
        rest_noise("hcp")


def test_calibrate_rejects_bad_requests(tmp_path, capsys):
    from nilearn_vlm.cli import build_parser, main

    # the command's default is a figure with a useful interval: at least 200 random-design maps
    assert build_parser().parse_args(["calibrate", "x.npy", "--t-r", "2"]).n_maps >= 200

    rest = np.random.default_rng(0).standard_normal((60, 50))
    with pytest.raises(ValueError, match="ask for at least one map"):
        calibrate(rest, 2.0, n_maps=0, verbose=0)
    np.save(tmp_path / "rest.npy", rest)
    assert main(["calibrate", str(tmp_path / "rest.npy"), "--t-r", "0", "--quiet"]) == 2
    assert "t_r" in capsys.readouterr().err
