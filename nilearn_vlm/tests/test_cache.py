"""The resumable activation cache: SIGKILL resume, hits and misses."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from nilearn_vlm import NeuronActivations
from nilearn_vlm.testing import ToyAdapter

# A slowed-down toy adapter in its own module, imported by the test and by the
# subprocess alike (the class path enters the cache key).
SLOW_MODULE = '''
import os, time
from nilearn_vlm.testing import ToyAdapter

class SlowToy(ToyAdapter):
    name = "slow-toy"

    def extract(self, batch, sites, pooling="mean"):
        time.sleep(float(os.environ.get("SLOWTOY_SLEEP", "0")))
        return super().extract(batch, sites, pooling)
'''

SCRIPT = '''
import sys
import numpy as np, pandas as pd
sys.path.insert(0, {folder!r})
from slowtoy import SlowToy
from nilearn_vlm import NeuronActivations

def stimuli():
    rng = np.random.default_rng(0)
    n = 24
    imgs = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(n)]
    texts = [f"word{{i}} and more words" if i % 3 else None for i in range(n)]
    return pd.DataFrame({{"image": imgs, "text": texts}})

if __name__ == "__main__":
    memory = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "-" else None
    acts = NeuronActivations(model=SlowToy(width=8, n_layers=2), sites="all", batch_size=2,
                             memory=memory)
    X = acts.fit_transform(stimuli())
    np.save(sys.argv[2], X)
'''


@pytest.fixture
def slow_env(tmp_path):
    (tmp_path / "slowtoy.py").write_text(SLOW_MODULE)
    script = tmp_path / "extract.py"
    script.write_text(SCRIPT.format(folder=str(tmp_path)))
    return tmp_path, script


def _progress(memory):
    root = memory / "nilearn_vlm_activations"
    for entry in root.glob("*/progress.json") if root.exists() else []:
        try:
            return json.loads(entry.read_text())
        except ValueError:
            return None
    return None


@pytest.mark.subprocess
def test_sigkill_mid_extraction_resumes_bit_identical(slow_env):
    folder, script = slow_env
    memory = folder / "cache"
    env = {**os.environ, "SLOWTOY_SLEEP": "0.3", "OMP_NUM_THREADS": "1"}
    # uninterrupted reference, without a cache
    subprocess.run([sys.executable, str(script), "-", str(folder / "ref.npy")],
                   env={**env, "SLOWTOY_SLEEP": "0"}, check=True, timeout=120)
    proc = subprocess.Popen([sys.executable, str(script), str(memory), str(folder / "killed.npy")],
                            env=env)
    deadline = time.time() + 60
    killed_at = None
    while time.time() < deadline:
        record = _progress(memory)
        if record and len(record["done"]) >= 3:
            os.kill(proc.pid, signal.SIGKILL)
            killed_at = len(record["done"])
            break
        time.sleep(0.02)
    proc.wait(timeout=30)
    assert killed_at is not None, "the extraction never reached 3 batches"
    assert proc.returncode == -signal.SIGKILL
    assert not (folder / "killed.npy").exists()
    record = _progress(memory)
    assert not record["complete"] and 3 <= len(record["done"]) < record["n_batches"]
    n_before = len(record["done"])

    # resume in this process, counting the batches computed
    sys.path.insert(0, str(folder))
    try:
        import slowtoy
    finally:
        sys.path.remove(str(folder))
    calls = []

    class Counting(slowtoy.SlowToy):
        def extract(self, batch, sites, pooling="mean"):
            calls.append(len(batch))
            return super().extract(batch, sites, pooling)

    Counting.__module__, Counting.__qualname__ = "slowtoy", "SlowToy"  # same cache key
    spec = {}
    exec(SCRIPT.format(folder=str(folder)).split('if __name__')[0], spec)
    acts = NeuronActivations(model=Counting(width=8, n_layers=2), sites="all", batch_size=2,
                             memory=str(memory))
    resumed = acts.fit_transform(spec["stimuli"]())
    reference = np.load(folder / "ref.npy")
    assert resumed.dtype == np.float32
    np.testing.assert_array_equal(resumed, reference)  # bit-identical
    assert len(calls) == record["n_batches"] - n_before  # only the missing batches ran
    assert _progress(memory)["complete"]


def _toy_stimuli(size=16):
    rng = np.random.default_rng(1)
    return pd.DataFrame({
        "image": [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(5)],
        "text": ["a", "b c", "d e f", None, "g"],
    })


class CountingToy(ToyAdapter):
    calls = 0

    def extract(self, batch, sites, pooling="mean"):
        CountingToy.calls += 1
        return super().extract(batch, sites, pooling)


class OtherPreprocessing(CountingToy):
    def preprocessing(self):
        return {**super().preprocessing(), "image": "resize 64x64 bicubic"}


def _run(tmp_path, stimuli, adapter, pooling="mean"):
    CountingToy.calls = 0
    acts = NeuronActivations(model=adapter, sites="all", pooling=pooling, memory=str(tmp_path))
    X = acts.fit_transform(stimuli)
    return X, CountingToy.calls, acts.cache_path_


def test_cache_hit_and_misses(tmp_path):
    stimuli = _toy_stimuli()
    X0, calls0, path0 = _run(tmp_path, stimuli, CountingToy(width=8, n_layers=1))
    assert calls0 > 0
    X1, calls1, path1 = _run(tmp_path, stimuli, CountingToy(width=8, n_layers=1))
    assert calls1 == 0 and path1 == path0  # hit: nothing recomputed
    np.testing.assert_array_equal(X0, X1)
    arr = np.load(path0 / "text.0.ffn.npy", mmap_mode="r")
    assert isinstance(arr, np.memmap) and arr.shape == (5, 32)

    # changed preprocessing -> miss
    _, calls, path = _run(tmp_path, stimuli, OtherPreprocessing(width=8, n_layers=1))
    assert calls > 0 and path != path0
    # changed weights (seed) -> miss, different numbers
    X, calls, path = _run(tmp_path, stimuli, CountingToy(width=8, n_layers=1, seed=3))
    assert calls > 0 and path != path0 and not np.allclose(X, X0)
    # changed pooling -> miss
    X, calls, path = _run(tmp_path, stimuli, CountingToy(width=8, n_layers=1), pooling="max")
    assert calls > 0 and path != path0 and not np.allclose(X, X0)
    # changed image size (content) -> miss
    _, calls, path = _run(tmp_path, _toy_stimuli(size=20), CountingToy(width=8, n_layers=1))
    assert calls > 0 and path != path0
    # changed text -> miss
    changed = stimuli.copy()
    changed.loc[0, "text"] = "a different text"
    _, calls, path = _run(tmp_path, changed, CountingToy(width=8, n_layers=1))
    assert calls > 0 and path != path0


def test_cache_without_memory_equals_cache(tmp_path):
    stimuli = _toy_stimuli()
    plain = NeuronActivations(model=ToyAdapter(width=8, n_layers=1), sites="all").fit_transform(stimuli)
    cached, _, _ = _run(tmp_path, stimuli, CountingToy(width=8, n_layers=1))
    np.testing.assert_array_equal(plain, cached)


def test_corrupt_progress_record_restarts(tmp_path):
    stimuli = _toy_stimuli()
    X0, _, path = _run(tmp_path, stimuli, CountingToy(width=8, n_layers=1))
    (path / "complete.json").unlink()  # as a writer killed before its done marker
    (path / "progress.json").write_text("{not json")
    X1, calls, _ = _run(tmp_path, stimuli, CountingToy(width=8, n_layers=1))
    assert calls > 0
    np.testing.assert_array_equal(X0, X1)


def test_second_writer_waits_and_the_timeout_names_the_holder(tmp_path):
    from nilearn_vlm._cache import ActivationCache
    from nilearn_vlm._store import LockTimeoutError

    first = ActivationCache(tmp_path, "k" * 64, [("a.0.ffn", 3)], 4, 1, {})
    assert first.open() == set()
    second = ActivationCache(tmp_path, "k" * 64, [("a.0.ffn", 3)], 4, 1, {}, lock_timeout=0.3)
    with pytest.raises(LockTimeoutError, match=rf"held by process {os.getpid()} on .*the activation cache "
                       r"entry.*NILEARN_VLM_LOCK_TIMEOUT"):
        second.open()
    first.write_batch(0, np.arange(4), {"a.0.ffn": np.ones((4, 3), np.float32)})
    first.finish()
    first.close()
    # once the writer is done, the entry is complete and read without the lock
    assert second.open() == {0} and second.reused
    out = np.zeros((4, 3), np.float32)
    np.testing.assert_array_equal(second.read(out, {"a.0.ffn": slice(0, 3)}), 1.0)
    second.close()


class FlakyToy(ToyAdapter):
    fail_at = None  # class attribute: not part of the cache key
    calls = 0

    def extract(self, batch, sites, pooling="mean"):
        FlakyToy.calls += 1
        if FlakyToy.calls == FlakyToy.fail_at:
            raise RuntimeError("simulated crash")
        return super().extract(batch, sites, pooling)


def test_error_mid_extraction_keeps_finished_batches(tmp_path):
    stimuli = _toy_stimuli()
    FlakyToy.calls, FlakyToy.fail_at = 0, 3
    acts = NeuronActivations(model=FlakyToy(width=8, n_layers=1), sites="all", batch_size=1,
                             memory=str(tmp_path))
    with pytest.raises(RuntimeError, match="simulated crash"):
        acts.fit_transform(stimuli)
    assert len(_progress(tmp_path)["done"]) == 2
    FlakyToy.calls, FlakyToy.fail_at = 0, None
    X = acts.fit_transform(stimuli)
    assert FlakyToy.calls == 5 - 2
    ref = NeuronActivations(model=ToyAdapter(width=8, n_layers=1), sites="all", batch_size=1).fit_transform(stimuli)
    np.testing.assert_array_equal(X, ref)


class SlowCountingToy(ToyAdapter):
    calls = 0

    def extract(self, batch, sites, pooling="mean"):
        SlowCountingToy.calls += 1
        time.sleep(0.05)
        return super().extract(batch, sites, pooling)


def test_concurrent_extractions_of_one_entry_wait_and_agree(tmp_path):
    """Two subjects who saw the same stimuli: one computes, the other waits, then reads (no error)."""
    import threading

    stimuli = _toy_stimuli()
    reference = NeuronActivations(model=ToyAdapter(width=8, n_layers=1), sites="all",
                                  batch_size=1).fit_transform(stimuli)
    SlowCountingToy.calls = 0
    results, errors = [None, None], []

    def work(i):
        try:
            acts = NeuronActivations(model=SlowCountingToy(width=8, n_layers=1), sites="all", batch_size=1,
                                     memory=str(tmp_path))
            results[i] = acts.fit_transform(stimuli)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for X in results:
        np.testing.assert_array_equal(X, reference)  # bitwise
    assert SlowCountingToy.calls == len(stimuli)  # one extraction, the other read it


def test_a_complete_entry_is_read_without_the_lock(tmp_path, monkeypatch):
    from nilearn_vlm._store import Lock

    stimuli = _toy_stimuli()
    X0, _, path = _run(tmp_path, stimuli, CountingToy(width=8, n_layers=1))
    monkeypatch.setenv("NILEARN_VLM_LOCK_TIMEOUT", "0")
    with Lock(path / "lock", "a test holding the lock"):
        X1, calls, _ = _run(tmp_path, stimuli, CountingToy(width=8, n_layers=1))
    assert calls == 0
    np.testing.assert_array_equal(X0, X1)


def _flip_byte(path, offset=-3):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "complete.json garbage", "array removed"])
def test_a_damaged_complete_entry_is_computed_again(tmp_path, damage):
    from nilearn_vlm._cache import CacheDamagedWarning

    stimuli = _toy_stimuli()
    X0, _, path = _run(tmp_path, stimuli, CountingToy(width=8, n_layers=1))
    target = path / "text.0.ffn.npy"
    if damage == "flipped byte":
        _flip_byte(target)
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[:-7])
    elif damage == "complete.json garbage":
        (path / "complete.json").write_text("{ nope")
    else:
        target.unlink()
    with pytest.warns(CacheDamagedWarning, match=r"is damaged \(.*\); computing it again"):
        X1, calls, _ = _run(tmp_path, stimuli, CountingToy(width=8, n_layers=1))
    assert calls > 0
    np.testing.assert_array_equal(X0, X1)
    X2, calls, _ = _run(tmp_path, stimuli, CountingToy(width=8, n_layers=1))  # repaired: a plain hit
    assert calls == 0
    np.testing.assert_array_equal(X0, X2)


def test_symlinks_planted_in_the_cache_are_never_followed(tmp_path):
    from nilearn_vlm._store import UnsafePathError

    stimuli = _toy_stimuli()
    memory = tmp_path / "cache"
    X0, _, path = _run(memory, stimuli, CountingToy(width=8, n_layers=1))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    import shutil

    shutil.rmtree(path)
    path.mkdir()
    for name in ("text.0.ffn.npy", "progress.json", "meta.json", "complete.json"):
        (path / name).symlink_to(victim)
    from nilearn_vlm._cache import CacheDamagedWarning

    with pytest.warns(CacheDamagedWarning, match="complete.json cannot be read"):
        X1, calls, _ = _run(memory, stimuli, CountingToy(width=8, n_layers=1))
    assert calls > 0
    np.testing.assert_array_equal(X0, X1)
    assert victim.read_text() == "precious"
    assert not any(p.is_symlink() for p in path.iterdir())
    # the entry folder itself a link: refused, with the fix
    shutil.rmtree(path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="symbolic link; the store never follows links: remove it"):
        _run(memory, stimuli, CountingToy(width=8, n_layers=1))
    assert list(elsewhere.iterdir()) == []


def test_a_full_disk_is_a_clear_error_and_leaves_nothing_reused(tmp_path, monkeypatch):
    import errno

    from nilearn_vlm import _store

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    stimuli = _toy_stimuli()
    monkeypatch.setattr(_store, "_fallocate", full)
    with pytest.raises(_store.DiskFullError, match=r"no space left for the activation cache entry .*: a file of "
                       r"[0-9.]+ (B|KiB) does not fit in .* free\); free some space or choose a folder"):
        _run(tmp_path, stimuli, CountingToy(width=8, n_layers=1))
    monkeypatch.undo()
    X, calls, path = _run(tmp_path, stimuli, CountingToy(width=8, n_layers=1))
    assert calls > 0
    np.testing.assert_array_equal(X, _run(tmp_path / "other", stimuli, CountingToy(width=8, n_layers=1))[0])
    assert not list(path.glob(".*tmp-*"))  # no temporary file left


class NaNToy(ToyAdapter):
    def extract(self, batch, sites, pooling="mean"):
        out = super().extract(batch, sites, pooling)
        out["text.0.ffn"][0, 1] = np.nan
        return out


class ForgetfulToy(ToyAdapter):
    def extract(self, batch, sites, pooling="mean"):
        out = super().extract(batch, sites, pooling)
        out.pop("text.0.attn_out", None)
        return out


def test_adapter_outputs_are_checked_before_caching(tmp_path):
    stimuli = _toy_stimuli()
    acts = NeuronActivations(model=NaNToy(width=8, n_layers=1), sites="all", memory=str(tmp_path))
    with pytest.raises(RuntimeError, match=r"adapter 'toy' returned 1 non-finite value\(s\) .* for site "
                       r"'text.0.ffn', at stimulus position\(s\) \[0\]; nothing was cached"):
        acts.fit_transform(stimuli)
    assert not list(tmp_path.glob("nilearn_vlm_activations/*/complete.json"))
    acts = NeuronActivations(model=ForgetfulToy(width=8, n_layers=1), sites="all", memory=str(tmp_path))
    with pytest.raises(RuntimeError, match=r"adapter 'toy' returned no values for the requested site\(s\) "
                       r"\['text.0.attn_out'\]"):
        acts.fit_transform(stimuli)
