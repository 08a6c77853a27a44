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
    (path / "progress.json").write_text("{not json")
    X1, calls, _ = _run(tmp_path, stimuli, CountingToy(width=8, n_layers=1))
    assert calls > 0
    np.testing.assert_array_equal(X0, X1)


def test_second_writer_gets_a_clear_error(tmp_path):
    from nilearn_vlm._cache import ActivationCache

    first = ActivationCache(tmp_path, "k" * 64, [("a.0.ffn", 3)], 4, 2, {})
    first.open()
    second = ActivationCache(tmp_path, "k" * 64, [("a.0.ffn", 3)], 4, 2, {})
    with pytest.raises(RuntimeError, match="another process is extracting into the cache entry"):
        second.open()
    first.close()
    assert second.open() == set()  # free again once the first writer is gone
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
