"""Real resting-state noise shipped inside registry packages (test and benchmark extras)."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

#: name -> (distribution, what it holds)
REST_DATASETS = {
    "neuropycon": ("neuropycon-data", "resting state, 11,953 grey-matter voxels x 88 scans, TR 2.5 s"),
    "brainfc": ("brainfc", "resting state, 100 Schaefer parcels x 145 frames, TR 2 s (raw ROI means: "
                "long autocorrelation)"),
}


def _package_dir(module, distribution):
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise ImportError(f"rest data need the {distribution!r} package: pip install {distribution} "
                          "(or nilearn-vlm[test]).")
    return Path(spec.submodule_search_locations[0])


@lru_cache(maxsize=None)
def _neuropycon():
    import nibabel as nib

    d = _package_dir("neuropycon_data", "neuropycon-data") / "data" / "data_nii"
    bold = np.asarray(nib.load(d / "sub-test_task-rs_bold.nii").dataobj, dtype=np.float64)
    gm = np.asarray(nib.load(d / "sub-test_mask-anatGM.nii").dataobj) > 0
    # grey matter inside the run's field of view (no zero sample), not constant
    mask = gm & (bold.min(-1) > 0) & (bold.std(-1) > 0)
    return bold[mask].T, 2.5


@lru_cache(maxsize=None)
def _brainfc():
    import pandas as pd

    d = _package_dir("brainfc", "brainfc") / "data" / "rest01"
    ts = pd.read_csv(d / "timeseries.tsv", sep="\t").to_numpy(dtype=np.float64)
    return ts[5:], 2.0  # the first 5 frames dropped, as BrainFC does


def rest_noise(name="neuropycon"):
    """Real resting-state BOLD from a registry package, as (n_scans, n_voxels) and its TR.

    Parameters
    ----------
    name : {"neuropycon", "brainfc"}
        ``"neuropycon"``: the ``neuropycon-data`` package's resting-state
        run (64 x 32 x 32 x 88, TR 2.5 s), grey-matter voxels inside the
        field of view (11,953); ``"brainfc"``: the ``brainfc`` package's 100
        Schaefer parcel time series (150 frames, the first 5 dropped; TR 2 s;
        no confound removed, the long-autocorrelation case).

    Returns
    -------
    Y : ndarray of float64 (n_scans, n_voxels)
        A copy (callers may change it).
    t_r : float

    Raises
    ------
    ImportError
        When the package is not installed (it is in the ``test`` extra).

    Examples
    --------
    >>> from nilearn_vlm.testing import rest_noise
    >>> try:
    ...     Y, t_r = rest_noise("brainfc")
    ... except ImportError:
    ...     Y, t_r = None, 2.0
    >>> t_r
    2.0
    """
    loaders = {"neuropycon": _neuropycon, "brainfc": _brainfc}
    if name not in loaders:
        raise ValueError(f"no rest data {name!r}; available: {sorted(loaders)}.")
    Y, t_r = loaders[name]()
    return Y.copy(), t_r
