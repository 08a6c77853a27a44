"""The settings schema: declarations, estimators built from it, one alpha grid, the reference."""

import doctest
import inspect
import re
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest

from nilearn_vlm import settings as settings_pkg
from nilearn_vlm.settings import (
    ESTIMATORS,
    ROLES,
    SECTIONS,
    SITE_ALPHAS,
    PipelineSettings,
    SettingsError,
    parse_section,
    renamed_keys,
    section_keys,
    study_file_reference,
)
from nilearn_vlm.settings._schema import TYPE_NAMES

DOCS = Path(__file__).resolve().parents[3] / "docs"


def _keys():
    return [(name, key, f) for name, cls in SECTIONS.items() for key, f in section_keys(cls).items()]


@pytest.mark.parametrize("section, key, f", _keys(), ids=[f"{s}.{k}" for s, k, _ in _keys()])
def test_every_key_is_declared(section, key, f):
    meta = f.metadata
    assert meta["doc"].strip() and meta["role"] in ROLES
    assert set(meta["types"]) <= set(TYPE_NAMES)
    for role, param in meta["to"]:
        cls = ESTIMATORS[role][0]
        assert param in inspect.signature(cls).parameters, f"{section}.{key} -> {cls.__name__}.{param}"
        assert param in cls._parameter_constraints


def test_renamed_keys_point_to_keys_of_their_section():
    assert renamed_keys(PipelineSettings) == {"hrf": "hrf_model", "fdr": "glm_alpha", "atlas": "atlases"}
    for cls in SECTIONS.values():
        for old, new in renamed_keys(cls).items():
            assert new in section_keys(cls) and old not in section_keys(cls)


@pytest.mark.parametrize("old, value, new", [("hrf", "spm", 'hrf_model = "spm"'), ("fdr", 0.01, "glm_alpha = 0.01"),
                                             ("atlas", "none", "atlases = []"),
                                             ("atlas", ["yeo7"], 'atlases = ["yeo7"]')])
def test_an_old_key_names_the_new_one(old, value, new):
    with pytest.raises(SettingsError, match=rf"pipeline.{old}: renamed to .* write {re.escape(new)} instead"):
        parse_section(PipelineSettings, {old: value}, "pipeline")


def test_default_estimators_are_those_of_the_former_pipeline():
    """The estimators built from the defaults equal the ones fit_subject built by hand before."""
    from nilearn_vlm import SparseAtoms, TRAligner, VoxelEncoder, VoxelGLM

    est = PipelineSettings().estimators(t_r=2.0)
    expected = {
        "aligner": TRAligner(t_r=2.0, hrf_model="glover"),
        "atoms": SparseAtoms(n_atoms=64, alpha=0.1, random_state=0),
        "glm": VoxelGLM(t_r=2.0, alpha=0.05, mode="joint"),
        "encoder": VoxelEncoder(alphas=None),
        "site_encoder": VoxelEncoder(alphas=(1.0, 10.0, 100.0, 1000.0, 10000.0)),
    }
    assert set(est) == set(expected)
    for role, ref in expected.items():
        got, want = est[role].get_params(), ref.get_params()
        if role in ("encoder", "site_encoder"):
            # t_r reaches the encoders, and they filter as the GLM does (0.01 Hz): the same
            # cleaning of units and BOLD for the GLM and the encoders
            assert got.pop("t_r") == 2.0 and got.pop("high_pass") == 0.01
            want.pop("t_r"), want.pop("high_pass")
            want_alphas = np.logspace(-2, 5, 15) if want["alphas"] is None else want["alphas"]
            np.testing.assert_array_equal(np.asarray(got.pop("alphas")), np.asarray(want_alphas))
            want.pop("alphas")
        assert got == want, role
    assert est["glm"].high_pass == 0.01


def test_t_r_and_high_pass_reach_every_estimator_that_takes_them():
    est = PipelineSettings(high_pass=0.02).estimators(t_r=1.5)
    for role, e in est.items():
        params = e.get_params()
        if "t_r" in params:
            assert params["t_r"] == 1.5, role
        if "high_pass" in params:
            assert params["high_pass"] == 0.02, role
    assert {r for r, e in est.items() if "t_r" in e.get_params()} == {"aligner", "glm", "encoder",
                                                                      "site_encoder"}


def test_the_encoders_numbers_do_not_depend_on_t_r_without_high_pass():
    from nilearn_vlm import VoxelEncoder

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((60, 4)), rng.standard_normal((60, 3))
    groups = np.repeat([0, 1, 2], 20)
    a = VoxelEncoder().fit(X, Y, groups=groups)
    b = VoxelEncoder(t_r=2.0).fit(X, Y, groups=groups)
    np.testing.assert_array_equal(a.cv_scores_, b.cv_scores_)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    c = VoxelEncoder(t_r=2.0, high_pass=0.05).fit(X, Y, groups=groups)
    assert not np.allclose(a.cv_scores_, c.cv_scores_)


def test_one_alpha_grid_and_its_documented_subsets():
    from nilearn_vlm.analyses import cv_r2
    from nilearn_vlm.encoding import DEFAULT_ALPHAS, VoxelEncoder

    np.testing.assert_array_equal(DEFAULT_ALPHAS, np.logspace(-2, 5, 15))
    # the former grids, exactly: analyses' decades and the per-site encoders' 1 ... 1e4
    np.testing.assert_array_equal(DEFAULT_ALPHAS[::2], np.logspace(-2, 5, 8))
    assert SITE_ALPHAS == (1.0, 10.0, 100.0, 1000.0, 10000.0)
    assert set(SITE_ALPHAS) <= set(DEFAULT_ALPHAS.tolist())
    np.testing.assert_array_equal(PipelineSettings().alphas, DEFAULT_ALPHAS)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((80, 3)), rng.standard_normal((80, 2))
    np.testing.assert_array_equal(cv_r2(X, Y), cv_r2(X, Y, alphas=np.logspace(-2, 5, 8)))
    enc = VoxelEncoder().fit(X, Y)
    assert set(enc.alpha_) <= set(DEFAULT_ALPHAS.tolist())


@pytest.mark.parametrize("kwargs, match", [
    ({"hrf_model": "glovr"}, r"pipeline.hrf_model: 'glovr' is invalid: .*TRAligner.* Did you mean 'glover'\?"),
    ({"glm_alpha": 0.0}, r"pipeline.glm_alpha: 0.0 is invalid: The 'alpha' parameter of VoxelGLM"),
    ({"alphas": []}, r"pipeline.alphas: must be a non-empty list of positive numbers"),
    ({"atlases": ("seitzman2018", "nope")}, r"pipeline.atlases: no atlas 'nope'; installed: "),
    ({"n_atoms": True}, r"pipeline.n_atoms: must be an integer; got True"),
])
def test_settings_made_in_python_are_validated(kwargs, match):
    with pytest.raises(SettingsError, match=match) as info:
        PipelineSettings(**kwargs).validate(t_r=2.0)
    assert info.value.key == "pipeline." + next(iter(kwargs))


def test_fit_subject_validates_before_any_work(monkeypatch):
    from nilearn_vlm import pipeline

    def boom(*args, **kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr(pipeline, "load_bold", boom)
    with pytest.raises(SettingsError, match=r"pipeline.site_voxels: must be a str among"):
        pipeline.fit_subject(None, None, 2.0, settings=PipelineSettings(site_voxels="some"))
    with pytest.raises(SettingsError, match=r"model.pooling: .*'meen'"):
        pipeline.fit_subject(None, None, 2.0, model="clip", pooling="meen")
    with pytest.raises(SettingsError, match=r"model.name: no adapter 'clipp'"):
        pipeline.fit_subject(None, None, 2.0, model="clipp")


def test_to_dict_is_json_and_round_trips():
    import json

    s = PipelineSettings(n_atoms=8, atlases=("yeo7",))
    d = json.loads(json.dumps(s.to_dict()))
    assert PipelineSettings(**d).to_dict() == d
    assert d["atlases"] == ["yeo7"] and d["n_atoms"] == 8 and len(d["alphas"]) == 15
    assert list(d) == list(section_keys(PipelineSettings))


def test_the_reference_lists_every_key_and_old_name():
    text = study_file_reference()
    for name, key, f in _keys():
        assert f"| `{key}` |" in text, f"{name}.{key}"
    for cls in SECTIONS.values():
        heading = f"[[{cls.__section__}]]" if cls.__array__ else f"[{cls.__section__}]"
        assert f"### `{heading}`" in text
    assert "| `pipeline.hrf` | `pipeline.hrf_model` |" in text
    # one table row per key, each with four cells
    rows = [line for line in text.splitlines() if line.startswith("| `") and "." not in line.split("|")[1]]
    assert len(rows) == len(_keys())
    assert all(len(re.split(r"(?<!\\)\|", row)) == 6 for row in rows)


def test_the_docs_page_uses_the_reference():
    page = (DOCS / "study_file.md").read_text()
    assert "<!-- study-file-reference -->" in page
    conf = (DOCS / "conf.py").read_text()
    assert "study_file_reference" in conf


def test_the_example_study_file_loads_and_has_every_key(tmp_path, monkeypatch):
    from nilearn_vlm.study import load_study

    example = DOCS / "study" / "study.toml"
    text = example.read_text()
    for name, key, _ in _keys():
        assert re.search(rf"^#? ?{key} = ", text, re.M), f"{name}.{key} missing from {example}"
    # the files it names, empty, beside a copy
    raw = tomllib.loads(text)
    (tmp_path / "events.tsv").write_text("onset\tduration\ttext\n0\t1\ta\n")
    (tmp_path / "stimuli").mkdir()
    (tmp_path / "mask.nii.gz").write_bytes(b"")
    func = tmp_path / "derivatives" / "sub-01" / "func"
    func.mkdir(parents=True)
    for run in (1, 2):
        (func / f"sub-01_task-movie_run-{run}_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz").write_bytes(b"")
    shutil.copy(example, tmp_path / "study.toml")
    config = load_study(tmp_path / "study.toml", check_plugins=False)
    assert config.name == "movie" and config.t_r == 2.0 and config.study.verbose == 1
    assert [m.label for m in config.models] == ["clip-b32", "clip-b32-ffn"]
    assert len(config.subjects) == 1 and len(config.subjects[0].bold) == 2
    assert config.pipeline == PipelineSettings(**raw["pipeline"])
    assert config.output == tmp_path / "results"


def test_docstring_examples_run():
    from nilearn_vlm.settings import _reference, _sections

    for mod in (settings_pkg, _sections, _reference):
        result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, mod.__name__
        assert result.attempted > 0, mod.__name__
