"""Resumable on-disk activation cache of :class:`nilearn_vlm.NeuronActivations`.

Layout of one entry, ``<memory>/nilearn_vlm_activations/<key>/``:

- ``meta.json``: what the key was made of (readable provenance: the adapter's
  fingerprint, the package versions, the sites, the stimuli digest);
- ``<site>.npy``: one float32 array (n_stimuli, width) per site, its space
  reserved (``posix_fallocate``) before it is memory-mapped, written batch
  by batch;
- ``progress.json``: the batches already written, replaced atomically after
  their rows are flushed to the arrays; this checkpoint runs after a batch
  once ``ActivationCache.checkpoint_every`` seconds (1 s) have passed since
  the last one, and at the end;
- ``complete.json``: the done marker, written last, with the SHA-256 of every
  array; a complete entry is never written again and is read without a lock,
  its checksums verified;
- ``lock``: the writer's lock (:class:`nilearn_vlm._store.Lock`).

A process killed at any point (SIGKILL included) leaves either the old or the
new progress record; batches not recorded are recomputed on the next run with
the same batch plan, so a resumed extraction is bit-identical to an
uninterrupted one. One writer per entry at a time: a second process (two
subjects who saw the same stimuli) waits for the first and then reads its
complete entry. A damaged complete entry (a checksum that does not match, a
truncated array) is computed again, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path

from nilearn_vlm._store import (
    Lock,
    atomic_write_json,
    check_not_link,
    checksum,
    create_array,
    make_dirs,
    open_array,
    read_json,
)

_SUBDIR = "nilearn_vlm_activations"
_FORMAT = 2

__all__ = ["ActivationCache", "CacheDamagedWarning", "content_key"]


class CacheDamagedWarning(UserWarning):
    """A complete cache entry failed its checks and is computed again."""


def content_key(parts):
    """SHA-256 of a JSON-serialisable description (sorted keys)."""
    text = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    log : callable, optional
        Receives progress messages (waiting for another writer).
    lock_timeout : float, optional
        Seconds to wait for another writer (default
        :func:`nilearn_vlm._store.lock_timeout`).
    """

    #: Seconds between checkpoints (flush + progress record).
    checkpoint_every = 1.0

    def __init__(self, memory, key, sites, n_stimuli, n_batches, meta, log=None, lock_timeout=None):
        self.root = Path(memory) / _SUBDIR / key[:40]
        self.key = key
        self.sites = [(str(n), int(w)) for n, w in sites]
        self.n_stimuli = int(n_stimuli)
        self.n_batches = int(n_batches)
        self.meta = meta
        self.log = log
        self.lock_timeout = lock_timeout
        self._arrays = None
        self._lock = None
        self.done = set()
        self._pending = set()
        self._last_checkpoint = time.monotonic()
        self.reused = False

    @property
    def progress_path(self):
        return self.root / "progress.json"

    @property
    def complete_path(self):
        return self.root / "complete.json"

    def _site_path(self, name):
        return self.root / f"{name}.npy"

    def _read_progress(self):
        record = read_json(self.progress_path)
        if not isinstance(record, dict) or record.get("key") != self.key or record.get("format") != _FORMAT:
            return None
        return record

    def _open_arrays(self, mode):
        arrays = {}
        for name, width in self.sites:
            arr = open_array(self._site_path(name), (self.n_stimuli, width), "float32", mode)
            if arr is None:
                return None
            arrays[name] = arr
        return arrays

    def _open_complete(self):
        """The arrays of a complete entry whose checksums match, else None (``self.damage`` says why)."""
        self.damage = None
        doc = read_json(self.complete_path)
        if doc is None:
            if os.path.lexists(self.complete_path):
                self.damage = "complete.json cannot be read"
            return None
        if not isinstance(doc, dict) or doc.get("key") != self.key or doc.get("format") != _FORMAT:
            self.damage = "complete.json does not describe this entry"
            return None
        arrays = self._open_arrays("r")
        if arrays is None:
            self.damage = "an array is missing, truncated or of the wrong shape"
            return None
        sums = doc.get("checksums", {})
        for name, _ in self.sites:
            try:
                got = checksum(self._site_path(name))
            except (OSError, ValueError) as exc:
                got = f"unreadable ({exc})"
            if sums.get(name) != got:
                self.damage = f"{name}.npy does not match its checksum"
                return None
        return arrays

    def open(self):
        """Reuse the complete entry, or create or resume it as its one writer.

        A complete entry is read without a lock. Otherwise the entry's lock
        is taken, waiting for another writer (which then usually completes
        it); the lock is held until :meth:`close`.

        Returns
        -------
        set of int
            Batches already written (all of them for a complete entry).
        """
        make_dirs(self.root)
        check_not_link(self.root)
        arrays = self._open_complete()
        if arrays is None:
            self._lock = Lock(self.root / "lock", f"the activation cache entry {str(self.root)!r}",
                              timeout=self.lock_timeout, on_wait=self.log)
            self._lock.acquire()
            try:
                arrays = self._open_complete()  # completed by the writer we waited for
                if arrays is None:
                    self._open_as_writer()
                    return set(self.done)
            except BaseException:
                self._release()
                raise
            self._release()
        self._arrays = arrays
        self.done = set(range(self.n_batches))
        self.reused = True
        return set(self.done)

    def _open_as_writer(self):
        if os.path.lexists(self.complete_path):
            warnings.warn(
                f"the activation cache entry {str(self.root)!r} is damaged ({self.damage}); "
                "computing it again", CacheDamagedWarning, stacklevel=4,
            )
            os.unlink(self.complete_path)
            record = None  # its batches cannot be trusted: start again
        else:
            record = self._read_progress()
        arrays = None
        if record is not None and record.get("n_batches") == self.n_batches:
            arrays = self._open_arrays("r+")
        if arrays is None:
            # a fresh entry: an empty progress record first (a kill after it leaves nothing
            # recorded), then the arrays (each reserved, then renamed into place)
            self.done = set()
            self._write_progress()
            atomic_write_json(self.root / "meta.json", self.meta)
            arrays = {
                name: create_array(self._site_path(name), (self.n_stimuli, width), "float32",
                                   f"the activation cache entry {str(self.root)!r}")
                for name, width in self.sites
            }
        else:
            self.done = {int(b) for b in record.get("done", [])}
        self._arrays = arrays

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
        if self.reused:
            raise RuntimeError("a complete cache entry is read-only")
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
        """Checkpoint what is pending; once every batch is done, write the done marker (checksums last)."""
        if self.reused:
            return
        self.checkpoint()
        if self.complete:
            for arr in self._arrays.values():
                arr.flush()
            sums = {name: checksum(self._site_path(name)) for name, _ in self.sites}
            atomic_write_json(self.complete_path, {"format": _FORMAT, "key": self.key, "checksums": sums,
                                                   "n_stimuli": self.n_stimuli, "sites": self.sites})

    def read(self, out, site_slices):
        """Copy every site's array into its columns of ``out``."""
        for name, _ in self.sites:
            out[:, site_slices[name]] = self._arrays[name]
        return out

    def _release(self):
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def close(self):
        """Checkpoint finished batches, drop the memory maps, release the lock."""
        try:
            if self._arrays is not None and not self.reused:
                self.checkpoint()
        finally:
            self._arrays = None
            self._release()
