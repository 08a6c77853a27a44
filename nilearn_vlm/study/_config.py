"""Study configuration files (TOML) for ``nilearn-vlm run``.

A study file names the stimuli, the fMRI data of one or more subjects, the
models, the pipeline's settings and the analyses. Its keys, their types,
defaults and meaning come from one schema, :mod:`nilearn_vlm.settings` (the
documentation page "The study file" lists them all). Every key is validated
before any work starts, the pipeline's keys by building the estimators they
configure; errors name the key, the value and the fix.

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
    hrf_model = "glover"
    n_atoms = 64
    atlases = ["seitzman2018"]  # [] for none; default: seitzman2018 + language_mni

    [analyses]
    run = "all"                 # or a list of names

    [compute]                   # optional: subjects x models as tasks of a Dask cluster
    scheduler = "tcp://host:8786"   # or a scheduler file, or "local"
    n_workers = 8
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from nilearn_vlm.settings import (
    SECTIONS,
    AnalysesSettings,
    ComputeSettings,
    FmriSettings,
    ModelSpec,
    PipelineSettings,
    SettingsError,
    StimuliSettings,
    StudySettings,
    SubjectSpec,
    check_plugin_names,
    parse_section,
)
from nilearn_vlm.study._bids import find_bold_runs

#: Raised by :func:`load_study`: the message names the key, the value and the fix
#: (the schema's :class:`~nilearn_vlm.settings.SettingsError`).
StudyConfigError = SettingsError


@dataclass
class StudyConfig:
    """A validated study file: one object per section of the schema.

    Attributes
    ----------
    path : pathlib.Path
        The study file.
    study : StudySettings
        ``name`` (the file's stem when not given), ``output`` (resolved),
        ``t_r``, ``verbose``.
    stimuli : StimuliSettings
        Paths resolved.
    subjects : list of SubjectSpec
        From ``[[subjects]]`` or found under ``[fmri] bids``.
    models : list of ModelSpec
    pipeline : PipelineSettings
    analyses : AnalysesSettings
    compute : ComputeSettings
    subjects_from : {"subjects", "fmri"}
        The section the subjects came from (``[[subjects]]`` tables or
        ``[fmri] bids``), for messages.
    """

    path: Path
    study: StudySettings
    stimuli: StimuliSettings
    subjects: list
    models: list
    pipeline: PipelineSettings
    analyses: AnalysesSettings
    compute: ComputeSettings
    subjects_from: str = "subjects"

    @property
    def name(self):
        """The study's name."""
        return self.study.name

    @property
    def output(self):
        """The results folder (a :class:`pathlib.Path`)."""
        return Path(self.study.output)

    @property
    def t_r(self):
        """The repetition time (seconds)."""
        return float(self.study.t_r)


def _close(key, options):
    match = difflib.get_close_matches(key, sorted(options), n=1)
    return f" Did you mean {match[0]!r}?" if match else ""


def _tables(raw, name):
    """An array of tables (``[[models]]``), a single table accepted."""
    value = raw.get(name)
    return [value] if isinstance(value, dict) else list(value or [])


def load_study(path, check_plugins=True):
    """Read and validate a study file.

    Every key is checked before any work starts: its type and range, the
    paths, the plugin names (adapters, atlases, analyses), and the keys that
    configure estimators by building them (``TRAligner``, ``SparseAtoms``,
    ``VoxelGLM``, ``VoxelEncoder``, ``NeuronActivations``) and running their
    parameter validation. A model's ``sites`` and ``params`` are checked
    against the model itself when it loads (the first step of its run).

    Parameters
    ----------
    path : str or Path
        The TOML file (keys: the documentation page "The study file", or
        :func:`nilearn_vlm.settings.study_file_reference`).
    check_plugins : bool, default=True
        Check that model, atlas and analysis names are installed plugins.

    Returns
    -------
    StudyConfig

    Raises
    ------
    StudyConfigError
        Naming the key (``pipeline.hrf_model``), the value and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise StudyConfigError(str(path), "study file not found")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise StudyConfigError(str(path), f"not valid TOML: {exc}") from None
    base = path.parent.resolve()
    for key in raw:
        if key not in SECTIONS:
            raise StudyConfigError(key, f"unknown section; allowed: {', '.join(SECTIONS)}.{_close(key, SECTIONS)}")

    study = parse_section(StudySettings, raw.get("study", {}), "study", base)
    study.name = study.name or path.stem
    if "stimuli" not in raw:
        raise StudyConfigError("stimuli", "missing section: give events = 'events.tsv' or video = ... "
                               "with subtitles = ...")
    stimuli = parse_section(StimuliSettings, raw["stimuli"], "stimuli", base)
    subjects = _load_subjects(raw, base)

    models_raw = _tables(raw, "models")
    if not models_raw:
        raise StudyConfigError("models", "missing: add at least one [[models]] table with name = '<adapter>'")
    models = []
    for i, table in enumerate(models_raw):
        spec = parse_section(ModelSpec, table, f"models[{i}]", base)
        spec.validate(f"models[{i}]", check_plugins=check_plugins)
        models.append(spec)
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise StudyConfigError("models", f"two models share the label {labels}; give each a distinct "
                               "label = '...'")

    pipeline = parse_section(PipelineSettings, raw.get("pipeline", {}), "pipeline", base)
    pipeline.validate(t_r=study.t_r, check_plugins=check_plugins)
    analyses = parse_section(AnalysesSettings, raw.get("analyses", {}), "analyses", base)
    if check_plugins and analyses.run != "all":
        check_plugin_names("analysis", analyses.run, "analyses.run")
    compute = parse_section(ComputeSettings, raw.get("compute", {}), "compute", base)
    return StudyConfig(path=path, study=study, stimuli=stimuli, subjects=subjects, models=models,
                       pipeline=pipeline, analyses=analyses, compute=compute,
                       subjects_from="subjects" if "subjects" in raw else "fmri")


def _load_subjects(raw, base):
    if ("fmri" in raw) == ("subjects" in raw):
        raise StudyConfigError("fmri", "give either an [fmri] section with bids = '<folder>' or [[subjects]] "
                               "tables with bold = [...]")
    if "subjects" in raw:
        subjects = [parse_section(SubjectSpec, table, f"subjects[{i}]", base)
                    for i, table in enumerate(_tables(raw, "subjects"))]
        if not subjects:
            raise StudyConfigError("subjects", "empty: add [[subjects]] tables with id = '...' and bold = [...]")
        ids = [s.id for s in subjects]
        if len(set(ids)) != len(ids):
            raise StudyConfigError("subjects", f"two subjects share an id {ids}; give each a distinct id")
        return subjects
    fmri = parse_section(FmriSettings, raw["fmri"], "fmri", base)
    found = find_bold_runs(fmri.bids, space=fmri.space, task=fmri.task)
    if not found:
        raise StudyConfigError("fmri.bids", f"no sub-*/func/*_bold.nii[.gz] or *.dtseries.nii under "
                               f"{str(fmri.bids)!r}" + (f" with space-{fmri.space}" if fmri.space else "")
                               + (f" and task-{fmri.task}" if fmri.task else ""))
    mask = None if fmri.mask is None else str(fmri.mask)
    return [SubjectSpec(id=sub, bold=[str(p) for p in runs], mask=mask) for sub, runs in found.items()]
