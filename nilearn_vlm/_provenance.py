"""Provenance: what computed a result and from which inputs (ground floor).

- :func:`collect_provenance`: package versions, platform, seeds and weight
  digests of a run (stored in :class:`nilearn_vlm.results.Results`);
- :class:`FileDigests`: content fingerprints of input files, remembered by a
  stat memo (size, times, inode) and recomputed when the stat changed, so
  that a study does not serve a stale result for changed inputs;
- :func:`package_versions`, :func:`distribution_of`: installed versions and
  the distribution that provides a plugin's class.

The memo is written through the store's atomic writes
(:mod:`nilearn_vlm._store`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path

from nilearn_vlm._store import _CHUNK, atomic_write_json, make_dirs, read_json

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
    found = package_versions([pkg.replace("_", "-") for pkg in packages])
    versions = {pkg: found[pkg.replace("_", "-")] for pkg in packages if pkg.replace("_", "-") in found}
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


# -- fingerprints of input files ---------------------------------------------
class FileDigests:
    """Content digests of input files, remembered by their stat.

    A file whose size, modification and change times, inode and device are
    those recorded is not read again; any change, or a file modified within
    two seconds of its hashing (a time-stamp too coarse to trust), is hashed
    again.

    Parameters
    ----------
    memo : path, optional
        JSON file of the memo (shared by processes; a lost update only costs
        a hash).
    """

    _RACY_NS = 2_000_000_000

    def __init__(self, memo=None):
        self.memo_path = None if memo is None else Path(memo)
        loaded = read_json(self.memo_path) if self.memo_path is not None else None
        self._memo = loaded if isinstance(loaded, dict) else {}
        self._dirty = False

    def __call__(self, path):
        """``"sha256:<hex>"`` of a file's content, or of a folder's files (names and contents)."""
        path = os.path.abspath(os.fspath(path))
        if os.path.isdir(path):
            h = hashlib.sha256()
            for dirpath, dirnames, filenames in sorted(os.walk(path)):
                dirnames.sort()
                for name in sorted(filenames):
                    full = os.path.join(dirpath, name)
                    h.update(os.path.relpath(full, path).encode() + b"\0" + self(full).encode())
            return "sha256:" + h.hexdigest()
        st = os.stat(path)
        sig = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
        entry = self._memo.get(path)
        if isinstance(entry, dict) and entry.get("stat") == sig and entry.get("trusted"):
            return entry["digest"]
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                h.update(chunk)
        now = time.time_ns()
        trusted = st.st_mtime_ns < now - self._RACY_NS
        self._memo[path] = {"stat": sig, "digest": "sha256:" + h.hexdigest(), "trusted": trusted}
        self._dirty = True
        return self._memo[path]["digest"]

    def save(self):
        """Write the memo (merged with what other processes wrote meanwhile)."""
        if self.memo_path is None or not self._dirty:
            return
        on_disk = read_json(self.memo_path)
        merged = {**(on_disk if isinstance(on_disk, dict) else {}), **self._memo}
        try:
            make_dirs(self.memo_path.parent)
            atomic_write_json(self.memo_path, merged)
        except OSError:  # a memo is an optimisation: never fail a run for it
            return
        self._dirty = False


def package_versions(names):
    """``{distribution: version}`` of the installed ones among ``names`` (no import)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def distribution_of(obj):
    """The distribution named like the top-level package of ``obj``'s module (class or instance), or None.

    ``nilearn_vlm_clip.adapter.CLIPAdapter`` -> ``"nilearn-vlm-clip"`` (names
    compare as normalised: ``-``, ``_`` and ``.`` alike).
    """
    module = obj.__module__ if isinstance(obj, type) else type(obj).__module__
    return _distribution_named(module.partition(".")[0])


@functools.lru_cache(maxsize=64)
def _distribution_named(top):
    try:
        return metadata.distribution(top).metadata["Name"]
    except (metadata.PackageNotFoundError, ValueError):
        return None
