"""Studies: TOML study files, BIDS discovery, and running them (``nilearn-vlm run``)."""

from nilearn_vlm.study._bids import find_bold_runs, parse_entities
from nilearn_vlm.study._config import (
    ModelSpec,
    StudyConfig,
    StudyConfigError,
    SubjectSpec,
    load_study,
)

__all__ = [
    "ModelSpec",
    "StudyConfig",
    "StudyConfigError",
    "SubjectSpec",
    "find_bold_runs",
    "load_study",
    "parse_entities",
]
