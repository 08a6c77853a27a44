"""Fault injection: ``nilearn-vlm run`` under kills, concurrency, damage, full disks and hostile input.

The studies are tiny (the toy adapter, a 5 x 5 x 5 volume, two runs of 24
scans). The toy adapter is installed as a plugin distribution on
``PYTHONPATH`` (a ``.dist-info`` folder with an entry point), so that worker
processes (loky, Dask) find it as they would find any plugin.

- SIGKILL at each stage of a run (in a forked child), then a rerun: the
  results equal those of an uninterrupted run, bit for bit, and nothing
  half-written is reused;
- two subjects who saw the same stimuli, in parallel on the local engine and
  on a Dask LocalCluster (with a worker killed during the extraction): the
  activation cache equals a serial run's bit for bit, the fitted arrays
  within 1e-6;
- damaged and stale results folders, hostile labels, a full disk (a tiny
  tmpfs, where the runner can mount one).
"""

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nilearn_vlm import plugins
from nilearn_vlm.results import Results
from nilearn_vlm.study import StudyConfigError, load_study, run_study

PLUGIN_MODULE = '''
import os, signal, time
from nilearn_vlm import hookimpl
from nilearn_vlm.testing import ToyAdapter


class FaultToy(ToyAdapter):
    """The toy adapter; kills its process once when $NVLM_KILL_ONCE names a file not yet there,
    sleeps $NVLM_SLEEP seconds per batch, and waits in load for a second process when $NVLM_MEET is set."""

    name = "fault-toy"

    def load(self, **params):
        out = super().load(**params)
        meet = os.environ.get("NVLM_MEET")  # a folder where two workers wait for each other
        if meet:
            os.makedirs(meet, exist_ok=True)
            open(os.path.join(meet, str(os.getpid())), "w").close()
            deadline = time.time() + 30
            while len(os.listdir(meet)) < 2 and time.time() < deadline:
                time.sleep(0.02)
        return out

    def extract(self, batch, sites, pooling="mean"):
        time.sleep(float(os.environ.get("NVLM_SLEEP", "0")))  # slow enough for two workers to meet
        marker = os.environ.get("NVLM_KILL_ONCE")
        if marker and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().extract(batch, sites, pooling)


@hookimpl
def register_adapters(register):
    register(FaultToy)
'''

WORDS = ["cat", "dog", "sky", "red", "car", "tree", "blue", "sun", "sea", "hat"]
N_RUNS, N_SCANS, N_EVENTS = 2, 24, 20


@pytest.fixture(scope="module")
def toy_plugin(tmp_path_factory):
    """The FaultToy plugin, installed on PYTHONPATH for this process and the workers it starts."""
    folder = tmp_path_factory.mktemp("plugin")
    (folder / "nvlm_fault_toy.py").write_text(PLUGIN_MODULE)
    info = folder / "nvlm_fault_toy-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nvlm-fault-toy\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[nilearn_vlm]\nfault-toy = nvlm_fault_toy\n")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(folder)] + ([old] if old else []))
    sys.path.insert(0, str(folder))
    _fresh_workers()
    plugins.reset_plugins()
    yield folder
    sys.path.remove(str(folder))
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old
    _fresh_workers()
    plugins.reset_plugins()


def _fresh_workers():
    """Stop joblib's reusable loky workers: new ones start with the current environment."""
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


def _write_study(folder, subjects=("01",), extra=""):
    """A tiny study: events with texts and images, NIfTI runs per subject, the fault-toy model."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    (folder / "img").mkdir(exist_ok=True)
    rows = []
    for run in range(1, N_RUNS + 1):
        for k in range(N_EVENTS):
            image = f"img/{run}_{k}.png"
            pixels = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
            if not (folder / image).exists():
                Image.fromarray(pixels).save(folder / image)
            rows.append({"onset": 2.0 * k, "duration": 2.0, "text": " ".join(rng.choice(WORDS, 3)),
                         "image": image, "run": run})
    pd.DataFrame(rows).to_csv(folder / "events.tsv", sep="\t", index=False)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    mask = np.zeros((5, 5, 5), np.int8)
    mask[1:4, 1:4, 1:4] = 1
    nib.save(nib.Nifti1Image(mask, affine), folder / "mask.nii.gz")
    blocks = []
    for sub in subjects:
        runs = []
        for run in range(1, N_RUNS + 1):
            path = folder / f"sub-{sub}_run-{run}_bold.nii.gz"
            data = rng.standard_normal((5, 5, 5, N_SCANS)).astype(np.float32)
            nib.save(nib.Nifti1Image(data, affine), path)
            runs.append(path.name)
        blocks.append(f'[[subjects]]\nid = "{sub}"\nbold = {json.dumps(runs)}\nmask = "mask.nii.gz"\n')
    path = folder / "study.toml"
    path.write_text(textwrap.dedent("""
        [study]
        t_r = 2.0
        output = "out"
        verbose = 0
        [stimuli]
        events = "events.tsv"
        [[models]]
        name = "fault-toy"
        params = { width = 8, ffn_width = 8, n_layers = 1 }
        sites = ["text.*.ffn", "vision.*.attn_out"]
        [pipeline]
        n_atoms = 3
        n_permutations = 10
        atlases = []
        encode_sites = false
        [analyses]
        run = []
        """) + "\n".join(blocks) + extra)
    return path


def _arrays(folder):
    with np.load(Path(folder) / "arrays.npz") as npz:
        return {k: npz[k] for k in npz.files}


def _cache_arrays(out):
    return {p.relative_to(out).as_posix(): np.load(p) for p in sorted((out / "cache").rglob("*.npy"))}


def _leftovers(out):
    return sorted(p.name for p in out.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name)


@pytest.fixture(scope="module")
def reference(toy_plugin, tmp_path_factory):
    """An uninterrupted serial run of the one-subject study: (its arrays, its cache)."""
    path = _write_study(tmp_path_factory.mktemp("reference"))
    summary = run_study(path, verbose=0)
    out = path.parent / "out"
    return _arrays(summary["results"][0]["folder"]), _cache_arrays(out)


def _kill_at(stage):
    """In a forked child: patch the step ``stage`` to SIGKILL the process there."""
    import nilearn_vlm._cache as cache_mod
    import nilearn_vlm._results_io as results_io
    import nilearn_vlm._store as store
    import nilearn_vlm.study._run as run_mod
    from nilearn_vlm.extraction import NeuronActivations

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    cache_mod.ActivationCache.checkpoint_every = 0.0
    if stage == "extraction, after the first batch":
        real, calls = NeuronActivations._run_batch, []

        def run_batch(self, *args):
            calls.append(1)
            if len(calls) == 2:
                die()
            return real(self, *args)

        NeuronActivations._run_batch = run_batch
    elif stage == "extraction, before the done marker":
        real_write = cache_mod.atomic_write_json

        def write(path, obj):
            if Path(path).name == "complete.json":
                die()
            return real_write(path, obj)

        cache_mod.atomic_write_json = write
    elif stage == "fitting":
        import nilearn_vlm.maps

        nilearn_vlm.maps.unit_voxel_maps = die
    elif stage == "saving the arrays (half written)":
        def savez(file, **arrays):
            Path(file).write_bytes(b"PK\x03\x04 half an archive")
            die()

        results_io.np.savez_compressed = savez
    elif stage == "before the results' done marker":
        store.FolderEntry.publish = die
    elif stage == "between the renames of a replaced folder":
        real_rename, calls = os.rename, []

        def rename(src, dst):
            calls.append(1)
            real_rename(src, dst)
            if len(calls) == 1:
                die()

        store.os.rename = rename
    elif stage == "writing the summary":
        run_mod.atomic_write_json = die
    else:  # pragma: no cover
        raise ValueError(stage)


def _child(path, stage, force):
    _kill_at(stage)
    run_study(path, verbose=0, force=force)
    os._exit(0)


STAGES = [
    "extraction, after the first batch",
    "extraction, before the done marker",
    "fitting",
    "saving the arrays (half written)",
    "before the results' done marker",
    "between the renames of a replaced folder",
    "writing the summary",
]


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_at_each_stage_then_a_rerun_gives_the_uninterrupted_results(stage, reference, tmp_path):
    ref_arrays, ref_cache = reference
    path = _write_study(tmp_path)
    out = tmp_path / "out"
    force = stage in ("between the renames of a replaced folder", "saving the arrays (half written)")
    if force:  # a --force rerun over finished results
        run_study(path, verbose=0)
    child = multiprocessing.get_context("fork").Process(target=_child, args=(path, stage, force))
    child.start()
    child.join(300)
    assert child.exitcode == -signal.SIGKILL, f"the run was not killed at {stage!r}"
    summary = run_study(path, verbose=0)
    folder = Path(summary["results"][0]["folder"])
    got = _arrays(folder)
    assert set(got) == set(ref_arrays)
    for name, value in ref_arrays.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
    cache = _cache_arrays(out)
    assert set(cache) == set(ref_cache)
    for name, value in ref_cache.items():
        np.testing.assert_array_equal(cache[name], value, err_msg=name)
    assert Results.load(folder).n_voxels == 27
    assert _leftovers(out) == []
    again = run_study(path, verbose=0)
    assert again["results"][0]["reused"]


def _compare_to_serial(out, serial_out):
    cache, ref_cache = _cache_arrays(out), _cache_arrays(serial_out)
    assert set(cache) == set(ref_cache) and cache
    for name, value in ref_cache.items():
        np.testing.assert_array_equal(cache[name], value, err_msg=name)  # bitwise
    for sub in ("01", "02"):
        got, ref = _arrays(out / f"sub-{sub}" / "fault-toy"), _arrays(serial_out / f"sub-{sub}" / "fault-toy")
        assert set(got) == set(ref)
        for name, value in ref.items():
            scale = max(float(np.nanmax(np.abs(value))) if value.size else 0.0, 1e-30)
            np.testing.assert_allclose(got[name], value, rtol=1e-6, atol=1e-6 * scale, err_msg=name)


@pytest.fixture(scope="module")
def two_subjects(toy_plugin, tmp_path_factory):
    """A two-subject study (same stimuli) and its serial run's output folder."""
    serial = _write_study(tmp_path_factory.mktemp("serial"), subjects=("01", "02"))
    run_study(serial, verbose=0)
    return serial.parent / "out"


def _copy_study(src_out, dst):
    shutil.copytree(src_out.parent, dst, ignore=shutil.ignore_patterns("out"))
    return dst / "study.toml"


def test_parallel_subjects_with_shared_stimuli_finish_like_a_serial_run_local(two_subjects, tmp_path, monkeypatch):
    path = _copy_study(two_subjects, tmp_path / "study")
    monkeypatch.setenv("NVLM_MEET", str(tmp_path / "meet"))  # both workers reach the shared cache entry
    monkeypatch.setenv("NVLM_SLEEP", "0.3")  # together, and the first holds it a while
    _fresh_workers()
    summary = run_study(path, verbose=0, compute={"engine": "local", "n_workers": 2})
    assert [r["reused"] for r in summary["results"]] == [False, False]
    _compare_to_serial(path.parent / "out", two_subjects)


@pytest.mark.slow
@pytest.mark.subprocess
def test_parallel_subjects_on_dask_survive_a_killed_worker(two_subjects, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    path = _copy_study(two_subjects, tmp_path / "study")
    marker = tmp_path / "killed-once"
    monkeypatch.setenv("NVLM_KILL_ONCE", str(marker))  # the first extraction kills its worker
    summary = run_study(path, verbose=0, compute={"engine": "dask", "scheduler": "local", "n_workers": 2})
    assert marker.exists()
    assert [r["reused"] for r in summary["results"]] == [False, False]
    _compare_to_serial(path.parent / "out", two_subjects)


# -- damaged, stale and hostile --------------------------------------------------
def test_a_damaged_results_folder_is_computed_again(reference, tmp_path, capsys):
    path = _write_study(tmp_path)
    first = run_study(path, verbose=0)["results"][0]
    folder = Path(first["folder"])
    data = bytearray((folder / "arrays.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "arrays.npz").write_bytes(bytes(data))
    row = run_study(path, verbose=1)["results"][0]
    assert not row["reused"]
    assert "arrays.npz does not match its checksum" in capsys.readouterr().out
    for name, value in reference[0].items():
        np.testing.assert_array_equal(_arrays(folder)[name], value)


def test_new_data_at_the_same_path_and_edited_captions_are_not_reused(toy_plugin, tmp_path, capsys):
    path = _write_study(tmp_path)
    assert not run_study(path, verbose=0)["results"][0]["reused"]
    bold = tmp_path / "sub-01_run-1_bold.nii.gz"
    img = nib.load(bold)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj) * 2 + 1, img.affine), bold)
    row = run_study(path, verbose=0)["results"][0]
    assert not row["reused"] and row["changed"] == ["files.bold[0]: content changed"]
    assert "files.bold[0]: content changed); replacing them" in capsys.readouterr().out
    events = pd.read_csv(tmp_path / "events.tsv", sep="\t")
    events.loc[3, "text"] = "a new caption"
    events.to_csv(tmp_path / "events.tsv", sep="\t", index=False)
    row = run_study(path, verbose=0)["results"][0]
    assert not row["reused"] and row["changed"] == ["events: content changed"]
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(tmp_path / "img" / "1_0.png")  # same name
    row = run_study(path, verbose=0)["results"][0]
    assert not row["reused"] and row["changed"] == ["events: content changed"]
    text = path.read_text().replace("n_atoms = 3", "n_atoms = 2")
    path.write_text(text)
    row = run_study(path, verbose=0)["results"][0]
    assert row["changed"] == ["settings.pipeline.n_atoms: 3 -> 2"]
    assert run_study(path, verbose=0)["results"][0]["reused"]


@pytest.mark.parametrize("key, value", [("id", "../../escaped"), ("id", "/tmp/abs"), ("label", "../x")])
def test_labels_and_ids_cannot_leave_the_output_folder(toy_plugin, tmp_path, key, value):
    path = _write_study(tmp_path)
    text = path.read_text()
    if key == "id":
        text = text.replace('id = "01"', f'id = "{value}"')
    else:
        text = text.replace('name = "fault-toy"', f'name = "fault-toy"\nlabel = "{value}"')
    path.write_text(text)
    with pytest.raises(StudyConfigError, match=r"(subjects\[0\]\.id|models\[0\]\.label): cannot name a folder"):
        load_study(path)
    assert not (tmp_path / "escaped").exists()


_TMPFS_SCRIPT = '''
import sys
import numpy as np, pandas as pd
from nilearn_vlm import NeuronActivations
from nilearn_vlm.testing import ToyAdapter

stimuli = pd.DataFrame({"text": [f"word {i}" for i in range(2000)]})
acts = NeuronActivations(model=ToyAdapter(width=8, n_layers=2), sites="all", memory=sys.argv[1])
try:
    acts.fit_transform(stimuli)
except OSError as exc:  # DiskFullError is an OSError
    print("DISKFULL", type(exc).__name__, exc)
    sys.exit(3)
'''


@pytest.mark.subprocess
def test_a_tiny_tmpfs_gives_a_disk_full_error(tmp_path):
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("no unshare/mount here to make a tiny tmpfs")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = tmp_path / "fill.py"
    script.write_text(_TMPFS_SCRIPT)
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            f"mount -t tmpfs -o size=64k tmpfs {mnt}"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.decode()[:200]}")
    res = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                          f"mount -t tmpfs -o size=64k tmpfs {mnt} && exec {sys.executable} {script} {mnt}"],
                         capture_output=True, text=True, check=False, timeout=300)
    assert res.returncode == 3, res.stdout + res.stderr
    assert "DISKFULL DiskFullError" in res.stdout
    assert "no space left for the activation cache entry" in res.stdout
    assert "does not fit in" in res.stdout
    assert "free some space or choose a folder on a larger disk" in res.stdout
    assert "Bus error" not in res.stderr
