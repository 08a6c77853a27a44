"""Finding run images in a BIDS (derivatives) folder, without pybids."""

from __future__ import annotations

import re
from pathlib import Path

_ENTITY = re.compile(r"([a-zA-Z]+)-([a-zA-Z0-9]+)")


def parse_entities(filename):
    """BIDS entities of a file name.

    Examples
    --------
    >>> parse_entities("sub-01_task-movie_run-2_space-MNI_desc-preproc_bold.nii.gz")["run"]
    '2'
    """
    stem = Path(filename).name.split(".")[0]
    return dict(_ENTITY.findall(stem))


def find_bold_runs(root, space=None, task=None):
    """Preprocessed BOLD runs per subject, sorted by run.

    Looks for ``sub-*/[ses-*/]func/*_bold.nii[.gz]`` (fMRIPrep volumes) and
    ``*.dtseries.nii`` (CIFTI grayordinates, HCP or fMRIPrep ``space-fsLR``).

    Parameters
    ----------
    root : str or Path
        BIDS or BIDS-derivatives folder.
    space, task : str, optional
        Keep files whose ``space-``/``task-`` entity equals these.

    Returns
    -------
    dict
        ``{subject: [path, ...]}`` in run order.
    """
    root = Path(root)
    runs = {}
    patterns = ("sub-*/func/*_bold.nii*", "sub-*/ses-*/func/*_bold.nii*", "sub-*/**/*.dtseries.nii")
    seen = set()
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            if path in seen:
                continue
            seen.add(path)
            ent = parse_entities(path.name)
            if space is not None and ent.get("space") != space:
                continue
            if task is not None and ent.get("task") != task:
                continue
            runs.setdefault(ent.get("sub", path.parts[len(root.parts)][4:]), []).append(
                (ent.get("ses", ""), int(ent.get("run", 0) or 0), path)
            )
    return {sub: [p for _, _, p in sorted(items)] for sub, items in sorted(runs.items())}
