"""The store: how nilearn-vlm writes and reads its state on disk (ground floor).

The activation cache (:mod:`nilearn_vlm._cache`) and the results folders of a
study (:mod:`nilearn_vlm.study`) go through these functions, which keep a few
rules (the documentation page "The store" explains them to users):

- **Waiting, not failing.** A writer holds an exclusive ``flock`` on a lock
  file (the kernel releases it when the process dies, SIGKILL included); a
  second process waits for it, up to :func:`lock_timeout` seconds, and the
  timeout's message names the holder (process id, host, since when, what for).
- **Complete entries are immutable** and are read without a lock; their
  checksums (SHA-256, recorded in the done marker) are verified on read.
- **Atomic writes.** Files are written under a temporary name, flushed, then
  renamed; a folder is staged under a temporary name and its done marker
  (the manifest of its files and checksums) is written last, then the folder
  is renamed into place.
- **Space is reserved** (``posix_fallocate``) before a file is memory-mapped:
  a full disk is a :class:`DiskFullError` naming the folder and the sizes,
  never a SIGBUS.
- **No symlink is followed** inside the store: files are opened with
  ``O_NOFOLLOW`` and created with ``O_EXCL``; a link planted where the store
  writes is replaced by the rename, its target left alone.

Content fingerprints of input files and the versions of installed packages
live in :mod:`nilearn_vlm._provenance`, on top of these functions.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import socket
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

try:  # POSIX only; elsewhere writers do not lock (documented)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

#: Environment variable: seconds a process waits for a lock held by another.
LOCK_TIMEOUT_ENV = "NILEARN_VLM_LOCK_TIMEOUT"
_DEFAULT_LOCK_TIMEOUT = 6 * 3600.0
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_CHUNK = 1 << 20
# replaced by tests to inject ENOSPC into the space reservation
_fallocate = getattr(os, "posix_fallocate", None)


class LockTimeoutError(TimeoutError):
    """Raised when a lock of the store stays held by another process past the timeout."""


class DiskFullError(OSError):
    """Raised when the store cannot reserve the space of a file (ENOSPC, EDQUOT)."""


class UnsafePathError(ValueError):
    """Raised for a name that would leave its folder, or a symlink inside the store."""


def lock_timeout():
    """Seconds to wait for a lock: ``$NILEARN_VLM_LOCK_TIMEOUT``, default 6 hours."""
    value = os.environ.get(LOCK_TIMEOUT_ENV)
    if value in (None, ""):
        return _DEFAULT_LOCK_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{LOCK_TIMEOUT_ENV}={value!r}: give a number of seconds, e.g. 3600") from None
    if not seconds >= 0:
        raise ValueError(f"{LOCK_TIMEOUT_ENV}={value!r}: give a number of seconds >= 0")
    return seconds


# -- names ------------------------------------------------------------------
def component_problem(value):
    """Why ``value`` cannot be one folder name (None when it can).

    Examples
    --------
    >>> component_problem("sub-01") is None
    True
    >>> component_problem("../x")[:21]
    'cannot name a folder:'
    """
    text = str(value)
    bad = (
        not text.strip()
        or text in (".", "..")
        or any(sep in text for sep in ("/", "\\", "\0"))
        or os.path.isabs(text)
        or (len(text) > 1 and text[1] == ":")  # a Windows drive
        or text.startswith(".")
    )
    if bad:
        return ("cannot name a folder: it must be one plain name, without '/', '\\', a leading '.' or '..', "
                "and not absolute; use letters, digits, '-' and '_' (e.g. '01', 'clip-b32')")
    return None


def check_component(value, what):
    """Check that ``value`` is a plain folder name (no separator, no ``..``, not absolute).

    Parameters
    ----------
    value : object
        A user-given label (subject id, model label), turned into a str.
    what : str
        The key it comes from, named in the error (``"subjects[0].id"``).

    Returns
    -------
    str

    Raises
    ------
    UnsafePathError
        The message names the key, the value and the fix.

    Examples
    --------
    >>> check_component("01", "subject id")
    '01'
    >>> check_component("../x", "subject id")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nilearn_vlm._store.UnsafePathError: subject id '../x' cannot name a folder: ...
    """
    problem = component_problem(value)
    if problem:
        raise UnsafePathError(f"{what} {str(value)!r} {problem}")
    return str(value)


def check_inside(path, root, what):
    """Raise :class:`UnsafePathError` when ``path`` resolves outside ``root``."""
    real, base = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    if real != base and base not in real.parents:
        raise UnsafePathError(f"{what} {str(path)!r} resolves outside {str(root)!r}; refusing to write there")
    return Path(path)


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY | _CLOEXEC)
    except OSError:  # pragma: no cover (platforms without directory fds)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _temp_name(path):
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")


def open_nofollow(path, flags=os.O_RDONLY):
    """``os.open`` that refuses a symlink at the last component (:class:`UnsafePathError`)."""
    try:
        return os.open(path, flags | _NOFOLLOW | _CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(f"{str(path)!r} is a symbolic link; the store never follows links: "
                                  "remove it") from None
        raise


def _create(path):
    """A new file at ``path`` (``O_EXCL``: never an existing file, never through a link)."""
    return open_nofollow(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path``: readers see the old or the new content, never a mix.

    A temporary file is written, flushed to disk and renamed over ``path``;
    a symlink at ``path`` is replaced, not followed.
    """
    path = Path(path)
    tmp = _temp_name(path)
    fd = _create(tmp)
    try:
        _write_all(fd, data)
        os.fsync(fd)
        os.close(fd)
        fd = None
        os.replace(tmp, path)
    except BaseException:
        if fd is not None:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path, obj):
    """:func:`atomic_write_bytes` of ``obj`` as JSON (sorted keys)."""
    atomic_write_bytes(path, json.dumps(obj, sort_keys=True, indent=1, default=str).encode("utf-8"))


def read_json(path):
    """The JSON content of ``path``, or None when it is missing, a link or not valid JSON."""
    try:
        fd = open_nofollow(path)
    except (OSError, UnsafePathError):
        return None
    with os.fdopen(fd, "rb") as fh:
        try:
            return json.loads(fh.read().decode("utf-8"))
        except ValueError:
            return None


def checksum(path):
    """``"sha256:<hex>"`` of a file's bytes (a symlink is an :class:`UnsafePathError`)."""
    fd = open_nofollow(path)
    h = hashlib.sha256()
    with os.fdopen(fd, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


# -- space ------------------------------------------------------------------
def _size_text(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n} B"  # pragma: no cover


def reserve(fd, size, path, what):
    """Allocate ``size`` bytes of the file ``fd`` on disk (``posix_fallocate``).

    Raises
    ------
    DiskFullError
        The file system has no room (ENOSPC) or the quota is reached; the
        message names the folder, the size needed and the space free.
    """
    size = int(size)
    if _fallocate is None:  # pragma: no cover (no posix_fallocate: sparse file, no reservation)
        os.ftruncate(fd, size)
        return
    try:
        _fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            try:
                free = _size_text(shutil.disk_usage(Path(path).parent).free)
            except OSError:  # pragma: no cover
                free = "an unknown amount"
            raise DiskFullError(
                exc.errno,
                f"no space left for {what}: a file of {_size_text(size)} does not fit in "
                f"{str(Path(path).parent)!r} ({free} free); free some space or choose a folder on a larger disk",
            ) from None
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):  # pragma: no cover
            os.ftruncate(fd, size)  # file systems without allocation: sparse file
            return
        raise


def _npy_header(shape, dtype):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": tuple(int(s) for s in shape)},
    )
    return buf.getvalue()


def create_array(path, shape, dtype, what):
    """A new zero-filled ``.npy`` file at ``path``, its space reserved, memory-mapped for writing.

    The file is created under a temporary name (``O_EXCL``, no link
    followed), reserved with :func:`reserve`, then renamed to ``path``: a
    reader of the old file keeps its content, and a link planted at ``path``
    is replaced.

    Returns
    -------
    numpy.memmap
    """
    path = Path(path)
    header = _npy_header(shape, dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    tmp = _temp_name(path)
    fd = _create(tmp)
    try:
        reserve(fd, len(header) + nbytes, path, what)
        os.pwrite(fd, header, 0)
        with os.fdopen(os.dup(fd), "r+b") as fh:
            arr = np.memmap(fh, dtype=dtype, mode="r+", offset=len(header), shape=tuple(shape))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
    _fsync_dir(path.parent)
    return arr


def open_array(path, shape, dtype, mode="r"):
    """Memory-map an ``.npy`` file written by :func:`create_array` (no link followed).

    Returns None when the file is missing, a link, or does not hold an array
    of ``shape`` and ``dtype`` filling the whole file (a truncated file).
    """
    flags = os.O_RDONLY if mode == "r" else os.O_RDWR
    try:
        fd = open_nofollow(path, flags)
    except (OSError, UnsafePathError):
        return None
    with os.fdopen(fd, "rb" if mode == "r" else "r+b") as fh:
        try:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            got_shape, fortran, got_dtype = read(fh)
        except (ValueError, OSError, SyntaxError):
            return None
        offset = fh.tell()
        nbytes = int(np.prod(got_shape, dtype=np.int64)) * got_dtype.itemsize
        if (tuple(got_shape) != tuple(shape) or got_dtype != np.dtype(dtype) or fortran
                or os.fstat(fh.fileno()).st_size != offset + nbytes):
            return None
        if nbytes == 0:
            return np.zeros(shape, dtype)
        return np.memmap(fh, dtype=dtype, mode=mode, offset=offset, shape=tuple(shape))


# -- locks ------------------------------------------------------------------
class Lock:
    """An exclusive lock on a lock file, waited for; the holder is written into the file.

    Parameters
    ----------
    path : path
        The lock file (created; never deleted).
    what : str
        What the lock protects, for messages ("the cache entry ...").
    timeout : float, optional
        Seconds to wait (default :func:`lock_timeout`).
    on_wait : callable, optional
        Called once with a message naming the holder when the lock is busy.
    """

    def __init__(self, path, what, timeout=None, on_wait=None):
        self.path = Path(path)
        self.what = what
        self.timeout = lock_timeout() if timeout is None else float(timeout)
        self.on_wait = on_wait
        self._fd = None

    def _holder(self, fd):
        try:
            info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
            return (f"process {info['pid']} on {info['host']} (since {info['since']}, "
                    f"{info.get('what', 'a writer')})")
        except (OSError, ValueError, KeyError, TypeError):
            return "another process (it left no record)"

    def acquire(self):
        """Wait for the lock; raises :class:`LockTimeoutError` naming the holder after the timeout."""
        fd = open_nofollow(self.path, os.O_RDWR | os.O_CREAT)
        if fcntl is None:  # pragma: no cover
            self._fd = fd
            return self
        start, delay, told = time.monotonic(), 0.02, False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    waited = time.monotonic() - start
                    if waited >= self.timeout:
                        raise LockTimeoutError(
                            f"waited {waited:.0f} s for {self.what}: it is held by {self._holder(fd)} "
                            f"(lock {str(self.path)!r}). Wait for that process to finish (its results "
                            f"will be reused), stop it (a lock dies with its process), or wait longer "
                            f"with {LOCK_TIMEOUT_ENV}=<seconds> (now {self.timeout:g})"
                        ) from None
                    if not told and self.on_wait is not None:
                        self.on_wait(f"waiting for {self.what}, held by {self._holder(fd)}")
                        told = True
                    time.sleep(min(delay, max(self.timeout - waited, 0.0)))
                    delay = min(delay * 1.5, 0.5)
            record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "what": self.what,
                                 "since": datetime.now(timezone.utc).isoformat(timespec="seconds")})
            os.ftruncate(fd, 0)
            os.pwrite(fd, record.encode("utf-8"), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self):
        """Release the lock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if fcntl is not None:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @property
    def held(self):
        """Whether this object holds the lock."""
        return self._fd is not None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


# -- folders ----------------------------------------------------------------
def make_dirs(path):
    """``mkdir -p``; a part that turns out to be a symlink is an :class:`UnsafePathError`.

    The existing parts (a user's own folders) may be links.
    """
    path = Path(path)
    missing = []
    probe = path
    while not os.path.lexists(probe):
        missing.append(probe)
        probe = probe.parent
    for part in reversed(missing):
        try:
            os.mkdir(part)
        except FileExistsError:
            pass
        if os.path.islink(part):
            raise UnsafePathError(f"{str(part)!r} is a symbolic link; the store never follows links: remove it")
    return path


def check_not_link(path):
    """Raise :class:`UnsafePathError` when ``path`` is a symbolic link."""
    if os.path.islink(path):
        raise UnsafePathError(f"{str(path)!r} is a symbolic link; the store never follows links: remove it")
    return Path(path)


def manifest(folder):
    """``{relative path: checksum}`` of every file under ``folder`` (a link is an :class:`UnsafePathError`)."""
    folder = Path(folder)
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            if os.path.islink(full):
                raise UnsafePathError(f"{str(full)!r} is a symbolic link; the store never follows links")
        for name in filenames:
            full = Path(dirpath) / name
            out[full.relative_to(folder).as_posix()] = checksum(full)
    return dict(sorted(out.items()))


def verify_manifest(folder, files):
    """The first problem of ``folder`` against a :func:`manifest` (None when every file matches)."""
    folder = Path(folder)
    for rel, expected in files.items():
        full = folder / rel
        if not os.path.lexists(full):
            return f"{rel} is missing"
        try:
            got = checksum(full)
        except (OSError, UnsafePathError) as exc:
            return f"{rel} cannot be read ({exc})"
        if got != expected:
            return f"{rel} does not match its checksum (changed or corrupted after it was written)"
    return None


class FolderEntry:
    """A folder written whole: staged, its done marker (manifest) last, then renamed into place.

    Parameters
    ----------
    folder : path
        The final folder (its parent is created).
    what : str
        What it holds, for messages.
    marker : str, default="done.json"
        Name of the done marker inside the folder.
    """

    def __init__(self, folder, what, marker="done.json"):
        self.folder = Path(folder)
        self.what = what
        self.marker = marker

    def lock(self, timeout=None, on_wait=None):
        """The writer's :class:`Lock` of this folder (a hidden sibling file)."""
        make_dirs(self.folder.parent)
        return Lock(self.folder.with_name(f".{self.folder.name}.lock"), self.what, timeout, on_wait)

    def read(self):
        """The done marker's content when the folder is complete and every checksum matches.

        Returns
        -------
        (dict or None, str or None)
            The marker (None when the folder cannot be reused) and why not.
        """
        if os.path.islink(self.folder):
            return None, f"{str(self.folder)!r} is a symbolic link"
        if not self.folder.is_dir():
            return None, "no results yet"
        done = read_json(self.folder / self.marker)
        if not isinstance(done, dict) or not isinstance(done.get("files"), dict):
            return None, f"no valid {self.marker} (unfinished or written by an older version)"
        problem = verify_manifest(self.folder, done["files"])
        if problem is not None:
            return None, problem
        return done, None

    def clean(self):
        """Remove staging folders of killed writers, when no writer holds the lock now."""
        leftovers = [*self.folder.parent.glob(f".{self.folder.name}.tmp-*"),
                     *self.folder.parent.glob(f".{self.folder.name}.old-*")]
        if not leftovers:
            return
        try:
            with self.lock(timeout=0):
                for old in leftovers:
                    shutil.rmtree(old, ignore_errors=True)
        except LockTimeoutError:
            return  # a writer is at work: its staging folder is not a leftover

    def stage(self):
        """A new empty staging folder beside the final one (hidden; removed by :meth:`publish`)."""
        make_dirs(self.folder.parent)
        for old in self.folder.parent.glob(f".{self.folder.name}.tmp-*"):
            shutil.rmtree(old, ignore_errors=True)  # left by a killed writer (we hold the lock)
        for old in self.folder.parent.glob(f".{self.folder.name}.old-*"):
            shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(prefix=f".{self.folder.name}.tmp-", dir=self.folder.parent))

    def publish(self, staged, record):
        """Write the done marker (manifest plus ``record``) into ``staged`` last, then rename it into place.

        An earlier folder is moved aside first and removed after; a process
        killed in between leaves no folder (the next run computes it again),
        never a mix of old and new files.
        """
        staged = Path(staged)
        doc = {**record, "files": manifest(staged)}
        atomic_write_json(staged / self.marker, doc)
        aside = None
        if os.path.islink(self.folder):
            os.unlink(self.folder)  # a planted link is replaced, its target left alone
        elif self.folder.exists():
            aside = self.folder.with_name(f".{self.folder.name}.old-{os.getpid()}-{os.urandom(4).hex()}")
            os.rename(self.folder, aside)
        os.rename(staged, self.folder)
        _fsync_dir(self.folder.parent)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        return self.folder
