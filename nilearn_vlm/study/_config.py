"""Study configuration files (TOML) for ``nilearn-vlm run``.

A study file names the stimuli, the fMRI data of one or more subjects, the
models and the analyses. Every key is validated before any work starts;
errors name the key and the fix.

Example
-------
.. code-block:: toml

    [study]
    name = "movie"
    output = "results"          # relative to the study file
    t_r = 2.0

    [stimuli]
    events = "events.tsv"       # BIDS-like: onset, duration, image, text, run
    # or: video = "movie.mp4", subtitles = "movie.srt", rate = 1.0

    [fmri]
    bids = "derivatives/fmriprep"   # finds sub-*/func/*_bold.nii.gz or *.dtseries.nii
    space = "MNI152NLin2009cAsym"   # optional filter on the 'space-' entity
    # or per subject: [[subjects]] id = "01", bold = ["run1.nii.gz", "run2.nii.gz"]

    [[models]]
    name = "clip"
    params = { arch = "ViT-B-32", pretrained = "openai" }
    sites = "default"
    pooling = "mean"

    [pipeline]
    hrf = "glover"
    n_atoms = 64
    atlas = "seitzman2018"      # or a list, or "none"; default: seitzman2018 + language_mni

    [analyses]
    run = "all"                 # or a list of names

    [compute]                   # optional: subjects x models as tasks of a Dask cluster
    scheduler = "tcp://host:8786"   # or a scheduler file, or "local"
    n_workers = 8
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


class StudyConfigError(ValueError):
    """A study file is invalid; the message names the key and the fix."""


_SECTIONS = {
    "study": {"name", "output", "t_r"},
    "stimuli": {"events", "video", "subtitles", "rate", "image_root"},
    "fmri": {"bids", "space", "task", "mask"},
    "subjects": {"id", "bold", "mask"},
    "models": {"name", "params", "sites", "pooling", "label"},
    "pipeline": {"hrf", "n_atoms", "atom_alpha", "atlas", "alphas", "high_pass", "fdr", "n_permutations", "seed"},
    "analyses": {"run"},
    "compute": {"engine", "scheduler", "n_workers", "threads_per_worker", "memory_limit"},
}

PIPELINE_DEFAULTS = {
    "hrf": "glover",
    "n_atoms": 64,
    "atom_alpha": 0.1,
    "atlas": None,
    "alphas": None,
    "high_pass": None,
    "fdr": 0.05,
    "n_permutations": 200,
    "seed": 0,
}


@dataclass
class ModelSpec:
    """One model of a study: adapter name, parameters, sites and pooling."""

    name: str
    params: dict = field(default_factory=dict)
    sites: object = "default"
    pooling: object = "mean"
    label: str = ""

    def __post_init__(self):
        self.label = self.label or self.name


@dataclass
class SubjectSpec:
    """One subject: its run images (paths, in run order) and an optional mask."""

    id: str
    bold: list
    mask: str | None = None


@dataclass
class StudyConfig:
    """A validated study file."""

    path: Path
    name: str
    output: Path
    t_r: float
    stimuli: dict
    subjects: list
    models: list
    pipeline: dict
    analyses: object = "all"
    compute: dict = field(default_factory=dict)


def _close(key, options):
    match = difflib.get_close_matches(key, sorted(options), n=1)
    return f" Did you mean {match[0]!r}?" if match else ""


def _err(where, message):
    raise StudyConfigError(f"{where}: {message}")


def _check_keys(where, table, allowed):
    if not isinstance(table, dict):
        _err(where, f"expected a table, got {type(table).__name__}")
    for key in table:
        if key not in allowed:
            _err(f"{where}.{key}", f"unknown key; allowed: {', '.join(sorted(allowed))}.{_close(key, allowed)}")


def _resolve(base, value, where, must_exist=True):
    if not isinstance(value, str) or not value:
        _err(where, "expected a path string")
    path = Path(value)
    if not path.is_absolute():
        path = base / path
    if must_exist and not path.exists():
        _err(where, f"file or folder {str(path)!r} does not exist; fix the path (relative paths are read from the study file's folder)")
    return path


def load_study(path, check_plugins=True):
    """Read and validate a study file.

    Parameters
    ----------
    path : str or Path
        The TOML file.
    check_plugins : bool, default=True
        Check that model and analysis names are installed plugins.

    Returns
    -------
    StudyConfig

    Raises
    ------
    StudyConfigError
        Naming the key and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise StudyConfigError(f"study file {str(path)!r} not found")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise StudyConfigError(f"{path}: not valid TOML: {exc}") from None
    base = path.parent.resolve()
    for key in raw:
        if key not in _SECTIONS:
            _err(key, f"unknown section; allowed: {', '.join(sorted(_SECTIONS))}.{_close(key, _SECTIONS)}")

    study = raw.get("study", {})
    _check_keys("study", study, _SECTIONS["study"])
    if "t_r" not in study:
        _err("study.t_r", "missing: give the repetition time in seconds, e.g. t_r = 2.0")
    t_r = study["t_r"]
    if not isinstance(t_r, (int, float)) or t_r <= 0:
        _err("study.t_r", f"must be a positive number of seconds, got {t_r!r}")
    output = _resolve(base, study.get("output", "nilearn_vlm_results"), "study.output", must_exist=False)

    stimuli = raw.get("stimuli")
    if stimuli is None:
        _err("stimuli", "missing section: give events = 'events.tsv' or video = ... with subtitles = ...")
    _check_keys("stimuli", stimuli, _SECTIONS["stimuli"])
    if ("events" in stimuli) == ("video" in stimuli):
        _err("stimuli", "give exactly one of 'events' (a BIDS-like events.tsv) or 'video' (with 'subtitles')")
    stimuli = dict(stimuli)
    for key in ("events", "video", "subtitles", "image_root"):
        if key in stimuli:
            stimuli[key] = _resolve(base, stimuli[key], f"stimuli.{key}")

    subjects = _load_subjects(raw, base)

    models_raw = raw.get("models")
    if not models_raw:
        _err("models", "missing: add at least one [[models]] table with name = '<adapter>'")
    if isinstance(models_raw, dict):
        models_raw = [models_raw]
    models = []
    for i, m in enumerate(models_raw):
        where = f"models[{i}]"
        _check_keys(where, m, _SECTIONS["models"])
        if "name" not in m:
            _err(f"{where}.name", "missing: the adapter plugin name, e.g. name = 'clip'")
        if not isinstance(m.get("params", {}), dict):
            _err(f"{where}.params", "must be a table, e.g. params = { arch = 'ViT-B-32' }")
        models.append(ModelSpec(**m))
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        _err("models", f"two models share the label {labels}; give each a distinct label = '...'")

    pipeline = dict(PIPELINE_DEFAULTS)
    pipe_raw = raw.get("pipeline", {})
    _check_keys("pipeline", pipe_raw, _SECTIONS["pipeline"])
    pipeline.update(pipe_raw)
    if not isinstance(pipeline["n_atoms"], int) or pipeline["n_atoms"] < 1:
        _err("pipeline.n_atoms", f"must be a positive integer, got {pipeline['n_atoms']!r}")
    if not 0 < float(pipeline["fdr"]) < 1:
        _err("pipeline.fdr", f"must lie in (0, 1), got {pipeline['fdr']!r}")

    analyses_raw = raw.get("analyses", {})
    _check_keys("analyses", analyses_raw, _SECTIONS["analyses"])
    analyses = analyses_raw.get("run", "all")

    if check_plugins:
        from nilearn_vlm.plugins import UnknownPluginError, get_adapter, get_analysis, get_atlas

        for i, m in enumerate(models):
            try:
                get_adapter(m.name)
            except UnknownPluginError as exc:
                _err(f"models[{i}].name", str(exc))
        atlas = pipeline["atlas"]
        for name in ([] if atlas in (None, "none") else [atlas] if isinstance(atlas, str) else atlas):
            try:
                get_atlas(name)
            except UnknownPluginError as exc:
                _err("pipeline.atlas", str(exc))
        if analyses != "all":
            if isinstance(analyses, str):
                analyses = [analyses]
            for name in analyses:
                try:
                    get_analysis(name)
                except UnknownPluginError as exc:
                    _err("analyses.run", str(exc))

    from nilearn_vlm.parallel import check_compute

    try:
        compute = check_compute(raw.get("compute"))
    except ValueError as exc:
        raise StudyConfigError(str(exc)) from None
    return StudyConfig(
        path=path, name=study.get("name", path.stem), output=output, t_r=float(t_r), stimuli=stimuli,
        subjects=subjects, models=models, pipeline=pipeline, analyses=analyses, compute=compute,
    )


def _load_subjects(raw, base):
    fmri = raw.get("fmri")
    subjects_raw = raw.get("subjects")
    if (fmri is None) == (subjects_raw is None):
        _err("fmri", "give either an [fmri] section with bids = '<folder>' or [[subjects]] tables with bold = [...]")
    if subjects_raw is not None:
        if isinstance(subjects_raw, dict):
            subjects_raw = [subjects_raw]
        subjects = []
        for i, s in enumerate(subjects_raw):
            where = f"subjects[{i}]"
            _check_keys(where, s, _SECTIONS["subjects"])
            if "id" not in s or "bold" not in s:
                _err(where, "each subject needs id = '...' and bold = ['run1.nii.gz', ...]")
            bold = s["bold"] if isinstance(s["bold"], list) else [s["bold"]]
            if not bold:
                _err(f"{where}.bold", "empty list: give the run images in run order")
            paths = [str(_resolve(base, b, f"{where}.bold[{j}]")) for j, b in enumerate(bold)]
            mask = str(_resolve(base, s["mask"], f"{where}.mask")) if "mask" in s else None
            subjects.append(SubjectSpec(id=str(s["id"]), bold=paths, mask=mask))
        return subjects
    _check_keys("fmri", fmri, _SECTIONS["fmri"])
    if "bids" not in fmri:
        _err("fmri.bids", "missing: the BIDS (derivatives) folder holding sub-*/func/ images")
    root = _resolve(base, fmri["bids"], "fmri.bids")
    from nilearn_vlm.study._bids import find_bold_runs

    found = find_bold_runs(root, space=fmri.get("space"), task=fmri.get("task"))
    if not found:
        _err("fmri.bids", f"no sub-*/func/*_bold.nii[.gz] or *.dtseries.nii under {str(root)!r}"
             + (f" with space-{fmri['space']}" if fmri.get("space") else ""))
    mask = str(_resolve(base, fmri["mask"], "fmri.mask")) if "mask" in fmri else None
    return [SubjectSpec(id=sub, bold=[str(p) for p in runs], mask=mask) for sub, runs in found.items()]
