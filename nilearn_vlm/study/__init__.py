"""Studies: TOML study files, BIDS discovery, and running them (``nilearn-vlm run``).

The keys of a study file come from one schema, :mod:`nilearn_vlm.settings`;
:func:`load_study` validates every key before any work starts and
:func:`run_study` runs every subject x model, after :func:`check_data` has
checked every run image's header (:func:`dry_run` stops there).
"""

from nilearn_vlm.study._bids import find_bold_runs, parse_entities
from nilearn_vlm.study._config import StudyConfig, StudyConfigError, load_study
from nilearn_vlm.study._check import T_R_OVERRIDE, check_data
from nilearn_vlm.study._run import changes, dry_run, fingerprint, fingerprint_parts, load_stimuli, run_study

__all__ = [
    "T_R_OVERRIDE",
    "StudyConfig",
    "StudyConfigError",
    "changes",
    "check_data",
    "dry_run",
    "find_bold_runs",
    "fingerprint",
    "fingerprint_parts",
    "load_stimuli",
    "load_study",
    "parse_entities",
    "run_study",
]
