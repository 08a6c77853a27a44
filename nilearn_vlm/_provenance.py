"""Provenance of a run: package versions, platform, seeds, weight digests."""

from __future__ import annotations

import hashlib
import json
import platform

_PACKAGES = ("nilearn_vlm", "numpy", "scipy", "scikit-learn", "nilearn", "nibabel", "pandas", "torch")


def collect_provenance(seeds=None, weight_digests=None, packages=_PACKAGES):
    """Package versions, platform, seeds and weight digests.

    Parameters
    ----------
    seeds : dict or None
        Named random seeds used by the run.
    weight_digests : dict or None
        Model name to a digest of its weights (see :func:`file_digest`).
    packages : sequence of str
        Distributions whose version is recorded (absent ones are skipped;
        torch is only looked up, never imported).

    Returns
    -------
    dict
    """
    from importlib import metadata

    versions = {}
    for pkg in packages:
        try:
            versions[pkg] = metadata.version(pkg.replace("_", "-"))
        except metadata.PackageNotFoundError:
            continue
    return {
        "packages": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "seeds": dict(seeds or {}),
        "weight_digests": dict(weight_digests or {}),
    }


def file_digest(path, algorithm="sha256", chunk=1 << 20):
    """Hex digest of a file (model weights), read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return f"{algorithm}:{h.hexdigest()}"


def _json_params(estimator):
    """``get_params(deep=False)`` with non-JSON values replaced by their repr."""
    out = {}
    for k, v in estimator.get_params(deep=False).items():
        try:
            json.dumps(v)
            out[k] = v
        except TypeError:
            out[k] = repr(v)
    return out
