"""One settings schema: the study file's keys, types, defaults, validation and reference.

Each section of a study file is a dataclass (:data:`SECTIONS`); each key is
declared once, with :func:`setting`, together with its TOML type, its
default, its meaning, the estimator parameters it sets and whether it
configures the analysis (the numbers) or only its execution. From these
declarations come the study file's parsing and errors
(:func:`parse_section`), the validation of every key by building the
estimators it configures (:meth:`PipelineSettings.validate`), the pipeline's
estimators themselves (:meth:`PipelineSettings.estimators`), the docstrings of
the sections and the reference of the keys (:func:`study_file_reference`).

A key has the name of the estimator parameter it sets (``hrf_model``,
``n_atoms``, ``alphas``), prefixed by its step where two estimators share a
parameter name (``atom_alpha`` for :class:`~nilearn_vlm.SparseAtoms`,
``glm_alpha`` for :class:`~nilearn_vlm.VoxelGLM`); ``[study] t_r`` and
``[pipeline] high_pass`` reach every estimator that takes them.

Examples
--------
>>> from nilearn_vlm.settings import PipelineSettings, SettingsError
>>> try:
...     PipelineSettings(hrf_model="glovr").validate(t_r=2.0)
... except SettingsError as exc:
...     print(str(exc)[:60])
pipeline.hrf_model: 'glovr' is invalid: The 'hrf_model' para
"""

from nilearn_vlm.settings._build import check_plugin_names
from nilearn_vlm.settings._reference import study_file_reference
from nilearn_vlm.settings._schema import (
    ESTIMATORS,
    ROLES,
    SettingsError,
    check_section,
    parse_section,
    renamed_keys,
    section_keys,
    setting,
)
from nilearn_vlm.settings._sections import (
    DEFAULT_MNI_ATLASES,
    SECTIONS,
    SITE_ALPHAS,
    AnalysesSettings,
    ComputeSettings,
    FmriSettings,
    ModelSpec,
    PipelineSettings,
    StimuliSettings,
    StudySettings,
    SubjectSpec,
    as_dict,
)

__all__ = [
    "DEFAULT_MNI_ATLASES",
    "ESTIMATORS",
    "ROLES",
    "SECTIONS",
    "SITE_ALPHAS",
    "AnalysesSettings",
    "ComputeSettings",
    "FmriSettings",
    "ModelSpec",
    "PipelineSettings",
    "SettingsError",
    "StimuliSettings",
    "StudySettings",
    "SubjectSpec",
    "as_dict",
    "check_plugin_names",
    "check_section",
    "parse_section",
    "renamed_keys",
    "section_keys",
    "setting",
    "study_file_reference",
]
