"""Resumable on-disk activation cache of :class:`nilearn_vlm.NeuronActivations`.

Layout of one entry, ``<memory>/nilearn_vlm_activations/<key>/``:

- ``meta.json``: what the key was made of (readable provenance);
- ``<site>.npy``: one float32 array (n_stimuli, width) per site, memory-mapped
  (``numpy.lib.format.open_memmap``) and written batch by batch;
- ``progress.json``: the batches already written, replaced atomically
  (write to a temporary file, fsync, ``os.replace``, fsync of the folder)
  after their rows are flushed to the arrays; this checkpoint runs after a
  batch once ``ActivationCache.checkpoint_every`` seconds (1 s) have passed
  since the last one, and at the end.

A process killed at any point (SIGKILL included) leaves either the old or the
new progress record; batches not recorded are recomputed on the next run with
the same batch plan, so a resumed extraction is bit-identical to an
uninterrupted one. One writer per entry at a time: an exclusive ``flock`` on
``lock`` (released by the kernel when the process dies) makes a second
writer fail with a clear error.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

_SUBDIR = "nilearn_vlm_activations"
_FORMAT = 1


def content_key(parts):
    """SHA-256 of a JSON-serialisable description (sorted keys)."""
    text = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover (platforms without directory fds)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_json(path, obj):
    """Write JSON so that readers see the old or the new content, never a mix."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class ActivationCache:
    """One cache entry: per-site memory-mapped arrays plus a progress record.

    Parameters
    ----------
    memory : str or path
        Cache folder given by the user (``NeuronActivations(memory=...)``).
    key : str
        Content key of the extraction (see :func:`content_key`).
    sites : list of (str, int)
        Site names and widths, in output order.
    n_stimuli : int
    n_batches : int
        Batches of the extraction plan.
    meta : dict
        JSON-serialisable description stored beside the arrays.
    """

    def __init__(self, memory, key, sites, n_stimuli, n_batches, meta):
        self.root = Path(memory) / _SUBDIR / key[:40]
        self.key = key
        self.sites = [(str(n), int(w)) for n, w in sites]
        self.n_stimuli = int(n_stimuli)
        self.n_batches = int(n_batches)
        self.meta = meta
        self._arrays = None
        self.done = set()
        self._pending = set()
        self._last_checkpoint = time.monotonic()

    #: Seconds between checkpoints (flush + progress record).
    checkpoint_every = 1.0

    @property
    def progress_path(self):
        return self.root / "progress.json"

    def _site_path(self, name):
        return self.root / f"{name}.npy"

    def _read_progress(self):
        try:
            with open(self.progress_path, encoding="utf-8") as fh:
                record = json.load(fh)
        except (OSError, ValueError):
            return None
        if record.get("key") != self.key or record.get("format") != _FORMAT:
            return None
        return record

    def _arrays_ok(self):
        for name, width in self.sites:
            try:
                arr = np.load(self._site_path(name), mmap_mode="r")
            except (OSError, ValueError):
                return False
            if arr.shape != (self.n_stimuli, width) or arr.dtype != np.float32:
                return False
        return True

    def open(self):
        """Create the entry, or reopen it and read which batches are done.

        Returns
        -------
        set of int
            Batches already written.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock()
        record = self._read_progress()
        if record is None or record.get("n_batches") != self.n_batches or not self._arrays_ok():
            # fresh entry: arrays first, then an empty progress record
            for name, width in self.sites:
                arr = np.lib.format.open_memmap(
                    self._site_path(name), mode="w+", dtype=np.float32, shape=(self.n_stimuli, width)
                )
                arr.flush()
                del arr
            atomic_write_json(self.root / "meta.json", self.meta)
            self.done = set()
            self._write_progress()
        else:
            self.done = {int(b) for b in record.get("done", [])}
        self._arrays = {
            name: np.load(self._site_path(name), mmap_mode="r+") for name, _ in self.sites
        }
        return set(self.done)

    def _lock(self):
        """Hold an exclusive lock on the entry (released on close or process death)."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover (Windows: no lock)
            self._lock_fh = None
            return
        self._lock_fh = open(self.root / "lock", "a+")
        try:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_fh.close()
            self._lock_fh = None
            raise RuntimeError(
                f"another process is extracting into the cache entry {str(self.root)!r}; wait "
                "for it to finish (it will be reused) or give another memory= folder"
            ) from None

    @property
    def complete(self):
        return len(self.done) == self.n_batches

    def _write_progress(self):
        atomic_write_json(
            self.progress_path,
            {
                "format": _FORMAT,
                "key": self.key,
                "n_batches": self.n_batches,
                "done": sorted(self.done),
                "complete": len(self.done) == self.n_batches,
            },
        )

    def write_batch(self, batch_id, rows, values):
        """Write one batch's rows of every site it has; checkpoint when due.

        The rows go to the memory-mapped arrays at once. The batch is
        recorded as done at the next checkpoint: the arrays are flushed to
        disk (msync), then the progress record is replaced atomically. A
        checkpoint runs when :attr:`checkpoint_every` seconds have passed
        since the last one (every batch for models slower than that) and in
        :meth:`finish`; a kill loses at most the batches since the last
        checkpoint, which are recomputed identically.

        Parameters
        ----------
        batch_id : int
        rows : array of int
            Stimulus positions of the batch.
        values : dict
            ``{site: (len(rows), width) array}``; sites absent from it keep
            zeros (a modality the batch's stimuli lack).
        """
        for name, arr in values.items():
            self._arrays[name][rows] = arr
        self._pending.add(int(batch_id))
        if time.monotonic() - self._last_checkpoint >= self.checkpoint_every:
            self.checkpoint()

    def checkpoint(self):
        """Flush the arrays, then record the pending batches as done."""
        if not self._pending:
            return
        for arr in self._arrays.values():
            arr.flush()
        self.done |= self._pending
        self._pending = set()
        self._write_progress()
        self._last_checkpoint = time.monotonic()

    def finish(self):
        """Checkpoint whatever is pending (call after the last batch)."""
        self.checkpoint()

    def read(self, out, site_slices):
        """Copy every site's array into its columns of ``out``."""
        for name, _ in self.sites:
            out[:, site_slices[name]] = self._arrays[name]
        return out

    def close(self):
        """Checkpoint finished batches, drop the memory maps, release the lock."""
        if self._arrays is not None:
            self.checkpoint()
        self._arrays = None
        fh = getattr(self, "_lock_fh", None)
        if fh is not None:
            fh.close()
            self._lock_fh = None
