"""End to end: SparseAtoms + VoxelGLM -> Results -> every analysis plugin, through run_analyses."""

import numpy as np
import pytest

from nilearn_vlm import SparseAtoms, VoxelGLM
from nilearn_vlm.analyses import FigureSpec, run_analyses
from nilearn_vlm.plugins import ALLOW_ENV, reset_plugins
from nilearn_vlm.report import Report, analysis_sections
from nilearn_vlm.results import Results

pytest.importorskip("nilearn_vlm_redundancy")
pytest.importorskip("nilearn_vlm_polarity")
pytest.importorskip("nilearn_vlm_compare")


@pytest.fixture(autouse=True)
def _analysis_plugins(monkeypatch):
    monkeypatch.setenv(ALLOW_ENV, "redundancy,polarity,compare")
    reset_plugins()
    yield
    reset_plugins()


def _fit(model, seed, fused):
    rng = np.random.default_rng(seed)
    n, runs = 240, np.repeat([0, 1, 2], 80)
    names = [f"{s}.{l}.attn_out.{i}" for s in ("vision", "text") for l in range(3) for i in range(4)]
    latent = rng.standard_normal((n, 2))
    X = np.hstack([latent[:, [0]] + 0.5 * rng.standard_normal((n, 12)),
                   latent[:, [1]] + 0.5 * rng.standard_normal((n, 12))])
    Y = rng.standard_normal((n, 150))
    Y[:, :50] += latent[:, [0]]
    Y[:, 50:100] -= latent[:, [0 if fused else 1]]
    atoms = SparseAtoms(n_atoms=4, random_state=0, feature_names=names).fit(X)
    glm = VoxelGLM(drift_model=None, mode="univariate").fit(atoms.transform(X), Y)
    res = Results.from_estimators(model, "sub-01", atoms=atoms, glm=glm, unit_names=names,
                                  encoder_scores=rng.random(150) * 0.1)
    return res, X, Y, runs


def test_every_analysis_runs_on_pipeline_results(tmp_path):
    clip, X, Y, runs = _fit("clip", 0, fused=False)
    meter, _, _, _ = _fit("meter", 1, fused=True)
    done, skipped = run_analyses(
        [clip, meter], bold=Y, runs=runs,
        params={"redundancy": {"n_draws": 20, "features": X},
                "polarity": {"n_permutations": 99, "min_voxels": 1},
                "compare": {}},
    )
    assert skipped == {}, skipped
    assert set(done) == {"redundancy[clip]", "redundancy[meter]", "polarity[clip]", "polarity[meter]", "compare"}
    # the planted sign: units drive voxels 50-99 negatively
    assert (clip.glm_sign_sets[:, 50:100] < 0).any() and (clip.glm_sign_sets[:, :50] > 0).any()
    assert done["polarity[clip]"].to_frame("layer_curves")["n_neg"].sum() > 0
    # each analysis states its tests; without a space or block sums the resampling tests are skipped, saying why
    assert "driver_trend" in done["polarity[clip]"].to_frame("inference")["test"].tolist()
    assert "needs a NIfTI or fsaverage space" in " ".join(done["redundancy[clip]"].notes)
    assert "stream_block_sums" in " ".join(done["compare"].notes)
    # analyses return figures as data, and the report renders every one of them
    specs = [spec for res in done.values() for spec in res.figures]
    assert specs and all(isinstance(spec, FigureSpec) for spec in specs)
    report = Report("pipeline")
    for section in analysis_sections(done, skipped):
        report.add(section)
    assert len(report.sections) == 5
    assert sum(len(s.figures) for s in report.sections) == len(specs)
    report.save(tmp_path / "report.html")
