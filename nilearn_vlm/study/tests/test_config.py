"""Study files: validation errors name the key and the fix."""

import textwrap

import pytest

from nilearn_vlm.study import StudyConfigError, find_bold_runs, load_study, parse_entities


def _write(tmp_path, body, events=True):
    if events:
        (tmp_path / "events.tsv").write_text("onset\tduration\ttext\trun\n0\t1\ta cat\t1\n")
    (tmp_path / "run1.nii.gz").write_bytes(b"")
    path = tmp_path / "study.toml"
    path.write_text(textwrap.dedent(body))
    return path


GOOD = """
[study]
t_r = 2.0
[stimuli]
events = "events.tsv"
[[subjects]]
id = "01"
bold = ["run1.nii.gz"]
[[models]]
name = "toy"
params = { width = 8 }
"""


def test_a_valid_study(tmp_path):
    cfg = load_study(_write(tmp_path, GOOD), check_plugins=False)
    assert cfg.t_r == 2.0
    assert cfg.subjects[0].bold == [str(tmp_path / "run1.nii.gz")]
    assert cfg.models[0].params == {"width": 8}
    assert cfg.pipeline.n_atoms == 64 and cfg.name == "study" and cfg.study.verbose == 1
    assert cfg.output == tmp_path / "nilearn_vlm_results"


@pytest.mark.parametrize(
    "edit, match",
    [
        (("t_r = 2.0", "t_r = -1"), r"study.t_r: must be a float in the range \(0.0, inf\). Got -1 instead. "
                                     r"Fix: e.g. t_r = 2.0"),
        (("t_r = 2.0", "tr = 2.0"), r"study.tr: unknown key.*Did you mean 't_r'\?"),
        (('events = "events.tsv"', 'events = "missing.tsv"'), r"stimuli.events: file or folder .*missing.tsv"),
        (("[[models]]", "[[model]]"), r"model: unknown section.*Did you mean 'models'\?"),
        (('bold = ["run1.nii.gz"]', "bold = []"), r"subjects\[0\].bold: empty list"),
        (("params = { width = 8 }", "params = 3"), r"models\[0\].params: must be a table"),
    ],
)
def test_errors_name_the_key(tmp_path, edit, match):
    body = GOOD.replace(*edit)
    with pytest.raises(StudyConfigError, match=match):
        load_study(_write(tmp_path, body), check_plugins=False)


def test_unknown_model_lists_installed_adapters(tmp_path):
    body = GOOD.replace('name = "toy"', 'name = "clipp"')
    with pytest.raises(StudyConfigError, match=r"models\[0\].name: no adapter 'clipp'; installed: "):
        load_study(_write(tmp_path, body))


def test_invalid_toml(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[study\n")
    with pytest.raises(StudyConfigError, match="not valid TOML"):
        load_study(path)


def test_bids_discovery(tmp_path):
    for sub in ("01", "02"):
        func = tmp_path / f"sub-{sub}" / "func"
        func.mkdir(parents=True)
        for run in (2, 1, 10):
            (func / f"sub-{sub}_task-movie_run-{run}_space-MNI_desc-preproc_bold.nii.gz").write_bytes(b"")
        (func / f"sub-{sub}_task-movie_run-1_space-T1w_desc-preproc_bold.nii.gz").write_bytes(b"")
    found = find_bold_runs(tmp_path, space="MNI")
    assert sorted(found) == ["01", "02"]
    assert [parse_entities(p.name)["run"] for p in found["01"]] == ["1", "2", "10"]
    assert len(find_bold_runs(tmp_path)["02"]) == 4
