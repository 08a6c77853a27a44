"""The store's primitives: locks, atomic writes, reserved arrays, links, manifests, file digests."""

import errno
import os
import threading
import time

import numpy as np
import pytest

from nilearn_vlm import _store
from nilearn_vlm._provenance import FileDigests
from nilearn_vlm._store import (
    DiskFullError,
    FolderEntry,
    Lock,
    LockTimeoutError,
    UnsafePathError,
    atomic_write_json,
    check_component,
    create_array,
    open_array,
    read_json,
)


def test_a_lock_waits_for_its_holder_then_is_taken(tmp_path):
    first = Lock(tmp_path / "lock", "the thing").acquire()
    messages, got = [], []

    def wait():
        with Lock(tmp_path / "lock", "the thing", timeout=30, on_wait=messages.append):
            got.append(time.monotonic())

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.3)
    released = time.monotonic()
    first.release()
    t.join(30)
    assert got and got[0] >= released
    assert len(messages) == 1
    assert messages[0].startswith(f"waiting for the thing, held by process {os.getpid()} on "
                                  f"{os.uname().nodename} (since ")


def test_the_lock_timeout_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NILEARN_VLM_LOCK_TIMEOUT", "0.2")
    with Lock(tmp_path / "lock", "the entry"):
        with pytest.raises(LockTimeoutError, match=r"waited 0 s for the entry: it is held by process"):
            Lock(tmp_path / "lock", "the entry").acquire()
    monkeypatch.setenv("NILEARN_VLM_LOCK_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="NILEARN_VLM_LOCK_TIMEOUT='soon': give a number of seconds"):
        Lock(tmp_path / "lock", "x")


def test_atomic_writes_replace_a_planted_link_and_leave_its_target(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "record.json").symlink_to(victim)
    assert read_json(tmp_path / "record.json") is None  # never read through a link
    atomic_write_json(tmp_path / "record.json", {"a": 1})
    assert victim.read_text() == "precious"
    assert not (tmp_path / "record.json").is_symlink() and read_json(tmp_path / "record.json") == {"a": 1}
    assert [p.name for p in tmp_path.iterdir() if "tmp" in p.name] == []


def test_arrays_are_reserved_then_mapped_and_checked_on_open(tmp_path, monkeypatch):
    arr = create_array(tmp_path / "a.npy", (5, 3), "float32", "a test array")
    arr[2] = 7
    arr.flush()
    del arr
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy")[2], 7)  # a plain .npy file
    assert open_array(tmp_path / "a.npy", (5, 4), "float32") is None  # other shape
    data = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "a.npy").write_bytes(data[:-4])
    assert open_array(tmp_path / "a.npy", (5, 3), "float32") is None  # truncated

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_store, "_fallocate", full)
    with pytest.raises(DiskFullError, match=r"no space left for a test array: a file of 288 B does not fit in"):
        create_array(tmp_path / "b.npy", (10, 4), "float32", "a test array")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]  # no temporary file left


@pytest.mark.parametrize("value", ["../x", "a/b", "/abs", "..", ".", "", " ", ".hidden", "a\\b", "C:evil"])
def test_labels_that_would_leave_their_folder_are_refused(value):
    with pytest.raises(UnsafePathError, match="cannot name a folder: it must be one plain name"):
        check_component(value, "subjects[0].id")


def test_a_folder_is_published_whole_and_verified(tmp_path):
    entry = FolderEntry(tmp_path / "sub-01" / "clip", "the results")
    assert entry.read() == (None, "no results yet")
    staged = entry.stage()
    (staged / "arrays.bin").write_bytes(b"\x00" * 10)
    (staged / "tables").mkdir()
    (staged / "tables" / "t.tsv").write_text("a\tb\n")
    entry.publish(staged, {"key": "k1"})
    done, why = entry.read()
    assert why is None and done["key"] == "k1" and set(done["files"]) == {"arrays.bin", "tables/t.tsv"}
    (entry.folder / "tables" / "t.tsv").write_text("a\tc\n")
    assert entry.read() == (None, "tables/t.tsv does not match its checksum (changed or corrupted after it "
                                  "was written)")
    # a second publish replaces the folder; no staging or old folder is left
    staged = entry.stage()
    (staged / "x").write_text("new")
    entry.publish(staged, {"key": "k2"})
    assert entry.read()[0]["key"] == "k2" and not (entry.folder / "arrays.bin").exists()
    assert sorted(p.name for p in entry.folder.parent.iterdir()) == ["clip"]


def test_file_digests_read_a_file_again_only_when_its_stat_changes(tmp_path, monkeypatch):
    path = tmp_path / "bold.nii"
    path.write_bytes(b"old data")
    old = time.time() - 60
    os.utime(path, (old, old))
    digests = FileDigests(tmp_path / "memo.json")
    first = digests(path)
    digests.save()
    reads = []
    real_open = open

    def counting_open(file, *args, **kwargs):
        if str(file) == str(path):
            reads.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    again = FileDigests(tmp_path / "memo.json")
    assert again(path) == first and reads == []  # stat unchanged: not read
    path.write_bytes(b"new data")  # same size, new content
    assert again(path) != first and len(reads) == 1
