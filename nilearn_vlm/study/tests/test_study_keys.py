"""Every study-file key, through the public run function on a tiny study with the toy adapter.

A key that configures the analysis changes a number in the saved results; a key
that configures the execution (names, output, verbosity, ``[compute]``) leaves
every saved number as it is; an unknown or invalid key fails before extraction.
The tables below list every key of the schema (a test checks that none is
missing), so a new key needs its own test here.
"""

import copy
import itertools
from pathlib import Path

import joblib
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nilearn_vlm import hookimpl
from nilearn_vlm.analyses import AnalysisResult, BaseAnalysis
from nilearn_vlm.plugins import register_plugin, unregister_plugin
from nilearn_vlm.settings import SECTIONS, section_keys
from nilearn_vlm.settings._schema import toml_value
from nilearn_vlm.study import StudyConfigError, run_study
from nilearn_vlm.testing import ToyAdapter

pytestmark = pytest.mark.slow

T_R, N_SCANS, N_EVENTS = 2.0, 24, 12
WORDS = ["cat", "dog", "sky", "red", "car", "tree", "blue", "sun", "house", "river"]


class _OtherToy(ToyAdapter):
    """A second adapter plugin: the toy model with other random weights."""

    name = "toy-other"
    _DEFAULTS = {**ToyAdapter._DEFAULTS, "seed": 7}


class _CountSignificant(BaseAnalysis):
    name = "settings-test-count"
    requires = ("glm_sign_sets",)

    def run(self, results, **params):
        n = (results.glm_sign_sets != 0).sum(axis=1)
        return AnalysisResult(self.name, tables={"main": pd.DataFrame({"n_significant": n})})


class _Plugin:
    @hookimpl
    def register_adapters(self, register):
        register(ToyAdapter)
        register(_OtherToy)

    @hookimpl
    def register_analyses(self, register):
        register(_CountSignificant)


@pytest.fixture(scope="module", autouse=True)
def _toy_plugin():
    register_plugin(_Plugin(), "toy-study-keys-test")
    yield
    unregister_plugin("toy-study-keys-test")


# ----------------------------------------------------------------- the data
def _write_events(path, rng, image_names):
    rows = [{"onset": 2.0 * k, "duration": 2.0, "text": " ".join(rng.choice(WORDS, 3)),
             "image": image_names[k % len(image_names)], "run": run}
            for run in (1, 2) for k in range(N_EVENTS)]
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)


def _write_images(folder, rng, names):
    folder.mkdir()
    for name in names:
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / name)


def _write_runs(func, sub, task, space, rng, driver=None):
    """Two runs of 5x5x5 noise; with drivers, 12 voxels of the mask follow each (so two atoms are interpreted)."""
    func.mkdir(parents=True, exist_ok=True)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    inner = np.zeros((5, 5, 5), bool)
    inner[1:4, 1:4, 1:4] = True
    for run in (1, 2):
        data = rng.standard_normal((5, 5, 5, N_SCANS)).astype(np.float32)
        for k, unit in enumerate(driver or ()):
            ix = np.argwhere(inner)[12 * k : 12 * k + 12]
            data[ix[:, 0], ix[:, 1], ix[:, 2]] += 1.5 * unit[run - 1][None, :]
        nib.save(nib.Nifti1Image(data, affine), func / f"sub-{sub}_task-{task}_run-{run}_space-{space}_bold.nii.gz")


def _driver(events_path, image_root):
    """Two units of the toy model (one text, one vision) on the TR grid, per run: the planted signals."""
    from nilearn_vlm import NeuronActivations, TRAligner
    from nilearn_vlm.stimuli import load_events

    events = load_events(events_path, stim_dir=image_root)
    out = []
    for site in ("text.1.ffn", "vision.1.ffn"):
        units = NeuronActivations(model=ToyAdapter(width=8, ffn_width=8), sites=site).fit_transform(events)
        X = TRAligner(events=events, n_scans=[N_SCANS, N_SCANS], t_r=T_R).fit_transform(units[:, :1])[:, 0]
        out.append((X[:N_SCANS], X[N_SCANS:]))
    return out


def _write_video(path, rng, seconds, fps=4, size=16):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    writer = imageio_ffmpeg.write_frames(str(path), (size, size), fps=fps, quality=10, macro_block_size=1)
    writer.send(None)
    colors = rng.integers(0, 256, (seconds, 3), dtype=np.uint8)
    for k in range(seconds * fps):
        frame = np.zeros((size, size, 3), np.uint8)
        frame[:] = colors[k // fps]
        writer.send(frame.tobytes())
    writer.close()


def _write_srt(path, words):
    cues = [f"{i + 1}\n00:00:{2 * i:02d},000 --> 00:00:{2 * i + 1:02d},500\n{w}\n" for i, w in enumerate(words)]
    path.write_text("\n".join(cues))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("study_keys_data")
    rng = np.random.default_rng(0)
    names = [f"img{k}.png" for k in range(4)]
    _write_images(root / "images", rng, names)
    _write_images(root / "images_b", rng, names)
    _write_events(root / "events.tsv", rng, names)
    _write_events(root / "events_b.tsv", rng, names)
    driver = _driver(root / "events.tsv", root / "images")
    _write_runs(root / "derivatives" / "sub-01" / "func", "01", "movie", "MNI", rng, driver)
    _write_runs(root / "derivatives" / "sub-01" / "func", "01", "movie", "T1w", rng, driver)
    _write_runs(root / "derivatives" / "sub-01" / "func", "01", "rest", "MNI", rng, driver)
    _write_runs(root / "derivatives_b" / "sub-01" / "func", "01", "movie", "MNI", rng, driver)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    for name, stop in (("mask.nii.gz", 4), ("mask_b.nii.gz", 3)):
        mask = np.zeros((5, 5, 5), np.int8)
        mask[1:stop, 1:4, 1:4] = 1
        nib.save(nib.Nifti1Image(mask, affine), root / name)
    if all(_importable(m) for m in ("imageio_ffmpeg", "pysrt")):
        _write_video(root / "movie.mp4", rng, 20)
        _write_video(root / "movie_b.mp4", rng, 20)
        _write_srt(root / "movie.srt", rng.choice(WORDS, 10))
        _write_srt(root / "movie_b.srt", rng.choice(WORDS, 10))
        video_bold = root / "video_bold"
        video_bold.mkdir()
        nib.save(nib.Nifti1Image(rng.standard_normal((5, 5, 5, 22)).astype(np.float32), affine),
                 video_bold / "run-1_bold.nii.gz")
    return root


def _importable(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _bold(data, space="MNI", task="movie", folder="derivatives"):
    func = data / folder / "sub-01" / "func"
    return [str(func / f"sub-01_task-{task}_run-{run}_space-{space}_bold.nii.gz") for run in (1, 2)]


def _base(data):
    """The tiny study: two runs, a planted signal, the toy adapter, every section."""
    return {
        "study": {"name": "tiny", "t_r": T_R, "verbose": 0},
        "stimuli": {"events": str(data / "events.tsv"), "image_root": str(data / "images")},
        "fmri": {"bids": str(data / "derivatives"), "space": "MNI", "task": "movie",
                 "mask": str(data / "mask.nii.gz")},
        "models": [{"name": "toy", "params": {"width": 8, "ffn_width": 8},
                    "sites": ["text.1.ffn", "vision.1.ffn"], "pooling": "mean"}],
        "pipeline": {"n_atoms": 3, "n_permutations": 20, "top_k": 3, "atlases": []},
        "analyses": {"run": []},
    }


def _subjects_base(data):
    study = _base(data)
    del study["fmri"]
    study["subjects"] = [{"id": "01", "bold": _bold(data), "mask": str(data / "mask.nii.gz")}]
    return study


def _video_base(data):
    study = _base(data)
    del study["fmri"]
    study["study"]["t_r"] = 1.0
    study["stimuli"] = {"video": str(data / "movie.mp4"), "subtitles": str(data / "movie.srt"), "rate": 1.0}
    study["subjects"] = [{"id": "01", "bold": [str(data / "video_bold" / "run-1_bold.nii.gz")],
                          "mask": str(data / "mask.nii.gz")}]
    return study


# ------------------------------------------------------------ running them
_DROP = object()
_counter = itertools.count()


def _toml(study):
    lines = []
    for section, table in study.items():
        tables = table if isinstance(table, list) else [table]
        for t in tables:
            lines.append(f"[[{section}]]" if isinstance(table, list) else f"[{section}]")
            lines.extend(f"{k} = {toml_value(v)}" for k, v in t.items())
            lines.append("")
    return "\n".join(lines)


def _edited(study, edits):
    study = copy.deepcopy(study)
    for key, value in edits.items():
        section, name = key.split(".")
        table = study.setdefault(section, {})
        table = table[0] if isinstance(table, list) else table
        if value is _DROP:
            table.pop(name, None)
        else:
            table[name] = value
    return study


def _write_study(tmp, study):
    folder = tmp / f"study{next(_counter)}"
    folder.mkdir()
    path = folder / "study.toml"
    path.write_text(_toml(study))
    return path


def _numbers(folder):
    """Every number a result folder saved: its arrays and every numeric column of its tables."""
    folder = Path(folder)
    out = {}
    with np.load(folder / "arrays.npz") as arrays:
        out.update({f"arrays/{k}": arrays[k] for k in arrays.files})
    for tsv in sorted(folder.rglob("*.tsv")):
        frame = pd.read_csv(tsv, sep="\t")
        for col in frame.select_dtypes("number"):
            out[f"{tsv.relative_to(folder)}:{col}"] = frame[col].to_numpy()
    return out


def _run(tmp, study):
    summary = run_study(_write_study(tmp, study))
    (row,) = summary["results"]
    return _numbers(row["folder"])


def _differences(a, b):
    out = sorted(set(a) ^ set(b))
    for key in set(a) & set(b):
        x, y = np.asarray(a[key], float), np.asarray(b[key], float)
        if x.shape != y.shape or not np.allclose(x, y, rtol=1e-5, atol=1e-6, equal_nan=True):
            out.append(key)
    return out


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """Fitted baselines (by name), computed once for the module."""
    tmp = tmp_path_factory.mktemp("study_keys_runs")
    cache = {}

    def get(name):
        if name not in cache:
            base = {"base": _base, "subjects": _subjects_base, "video": _video_base}[name]
            if name == "video" and not (data / "movie.mp4").exists():
                pytest.skip("imageio-ffmpeg and pysrt are needed for video stimuli")
            cache[name] = (base(data), _run(tmp, base(data)))
        return cache[name]

    return tmp, get


# ------------------------------------------------------ what each key does
#: key -> (baseline, edits): the edits change only that key (or remove its
#: section's alternative); the numbers must change.
ANALYSIS_KEYS = {
    "study.t_r": ("base", {"study.t_r": 1.5}),
    "stimuli.events": ("base", {"stimuli.events": "events_b.tsv"}),
    "stimuli.image_root": ("base", {"stimuli.image_root": "images_b"}),
    "stimuli.video": ("video", {"stimuli.video": "movie_b.mp4"}),
    "stimuli.subtitles": ("video", {"stimuli.subtitles": "movie_b.srt"}),
    "stimuli.rate": ("video", {"stimuli.rate": 0.5}),
    "fmri.bids": ("base", {"fmri.bids": "derivatives_b"}),
    "fmri.space": ("base", {"fmri.space": "T1w"}),
    "fmri.task": ("base", {"fmri.task": "rest"}),
    "fmri.mask": ("base", {"fmri.mask": "mask_b.nii.gz"}),
    "subjects.bold": ("subjects", {"subjects.bold": "T1w"}),
    "subjects.mask": ("subjects", {"subjects.mask": "mask_b.nii.gz"}),
    "models.name": ("base", {"models.name": "toy-other", "models.params": {"width": 8, "ffn_width": 8}}),
    "models.params": ("base", {"models.params": {"width": 8, "ffn_width": 8, "seed": 1}}),
    "models.sites": ("base", {"models.sites": "text.1.ffn"}),
    "models.pooling": ("base", {"models.pooling": "max"}),
    "pipeline.hrf_model": ("base", {"pipeline.hrf_model": "spm"}),
    "pipeline.n_atoms": ("base", {"pipeline.n_atoms": 2}),
    "pipeline.atom_alpha": ("base", {"pipeline.atom_alpha": 0.3}),
    "pipeline.atom_max_iter": ("base", {"pipeline.atom_max_iter": 1}),
    "pipeline.atom_tol": ("base", {"pipeline.atom_tol": 0.5}),
    "pipeline.glm_alpha": ("base", {"pipeline.glm_alpha": 0.5}),
    "pipeline.glm_mode": ("base", {"pipeline.glm_mode": "univariate"}),
    "pipeline.inference": ("base", {"pipeline.inference": "ar1"}),
    "pipeline.high_pass": ("base", {"pipeline.high_pass": 0.05}),
    "pipeline.alphas": ("base", {"pipeline.alphas": [1e4]}),
    "pipeline.encode_sites": ("base", {"pipeline.encode_sites": False}),
    "pipeline.site_alphas": ("base", {"pipeline.site_alphas": [1e5]}),
    "pipeline.site_voxels": ("base", {"pipeline.site_voxels": "all"}),
    "pipeline.analysis_inputs": ("base", {"pipeline.analysis_inputs": False}),
    "pipeline.top_k": ("base", {"pipeline.top_k": 2}),
    "pipeline.n_permutations": ("base", {"pipeline.n_permutations": 30}),
    "pipeline.atlases": ("base", {"pipeline.atlases": ["seitzman2018"]}),
    "pipeline.seed": ("base", {"pipeline.seed": 1}),
    "analyses.run": ("base", {"analyses.run": ["settings-test-count"]}),
}

#: key -> (baseline, edits, context): the numbers must not change.
EXECUTION_KEYS = {
    "study.name": ("base", {"study.name": "renamed"}, None),
    "study.output": ("base", {"study.output": "elsewhere/out"}, None),
    "study.verbose": ("base", {"study.verbose": 1}, None),
    "study.ignore_header_t_r": ("base", {"study.ignore_header_t_r": True}, None),
    "subjects.id": ("subjects", {"subjects.id": "42"}, None),
    "models.label": ("base", {"models.label": "toy-b"}, None),
    "compute.engine": ("base", {"compute.engine": "dask"}, "client"),
    "compute.scheduler": ("base", {"compute.scheduler": "<address>"}, "cluster"),
    "compute.n_workers": ("base", {"compute.n_workers": 2}, "threads"),
    "compute.threads_per_worker": ("base", {"compute.scheduler": "local", "compute.n_workers": 1,
                                            "compute.threads_per_worker": 2}, "local-cluster"),
    "compute.memory_limit": ("base", {"compute.scheduler": "local", "compute.n_workers": 1,
                                      "compute.memory_limit": "2GB"}, "local-cluster"),
}

def _resolve_edits(data, edits):
    """Relative names of the edits as paths of the data folder."""
    out = {}
    for key, value in edits.items():
        if key == "subjects.bold":
            value = _bold(data, space=value)
        elif key in ("stimuli.events", "stimuli.image_root", "stimuli.video", "stimuli.subtitles",
                     "fmri.bids", "fmri.mask", "subjects.mask"):
            value = str(data / value)
        out[key] = value
    return out


def _all_keys():
    return {f"{name}.{key}" for name, cls in SECTIONS.items() for key in section_keys(cls)}


def test_every_key_is_tested():
    roles = {f"{name}.{key}": f.metadata["role"] for name, cls in SECTIONS.items()
             for key, f in section_keys(cls).items()}
    assert {k for k, r in roles.items() if r == "analysis"} == set(ANALYSIS_KEYS)
    assert {k for k, r in roles.items() if r == "execution"} == set(EXECUTION_KEYS)
    assert _all_keys() == {key for key, _, _ in INVALID}


@pytest.mark.parametrize("key", sorted(ANALYSIS_KEYS))
def test_an_analysis_key_changes_the_saved_numbers(key, data, runs):
    tmp, get = runs
    base_name, edits = ANALYSIS_KEYS[key]
    study, numbers = get(base_name)
    changed = _run(tmp, _edited(study, _resolve_edits(data, edits)))
    assert _differences(numbers, changed), f"changing {key} changed no saved number"


@pytest.fixture
def compute_context(monkeypatch):
    """In-process Dask clusters (threads), so that workers see the toy plugin registered here."""
    distributed = pytest.importorskip("distributed")
    opened, made = [], []

    def context(kind):
        if kind == "client":
            client = distributed.Client(processes=False, n_workers=1, threads_per_worker=1,
                                        dashboard_address=None)
            opened.append(client)
            return client.scheduler.address
        if kind == "cluster":
            cluster = distributed.LocalCluster(processes=False, n_workers=1, dashboard_address=None)
            opened.append(cluster)
            return cluster.scheduler_address
        if kind == "local-cluster":
            real = distributed.LocalCluster

            def threads_only(**kw):
                made.append(kw)  # the library asks for processes; threads here
                cluster = real(**{**kw, "processes": False})
                opened.append(cluster)
                return cluster

            monkeypatch.setattr(distributed, "LocalCluster", threads_only)
        return None

    context.made = made
    yield context
    for obj in reversed(opened):
        obj.close()


@pytest.mark.parametrize("key", sorted(EXECUTION_KEYS))
def test_an_execution_key_leaves_the_saved_numbers(key, data, runs, compute_context):
    tmp, get = runs
    base_name, edits, context = EXECUTION_KEYS[key]
    study, numbers = get(base_name)
    address = compute_context(context) if context else None
    edits = {k: address if v == "<address>" else v for k, v in edits.items()}
    if context == "threads":
        with joblib.parallel_config(backend="threading"):
            same = _run(tmp, _edited(study, _resolve_edits(data, edits)))
    else:
        same = _run(tmp, _edited(study, _resolve_edits(data, edits)))
    assert _differences(numbers, same) == []
    if context == "local-cluster":  # the key reached the Dask cluster the library started
        name = key.split(".")[1]
        assert [kw[name] for kw in compute_context.made] == [edits[key]]


def test_name_output_and_label_say_where_the_results_go(data, tmp_path):
    study = _edited(_base(data), {"study.name": "renamed", "study.output": "elsewhere/out",
                                  "models.label": "toy-b"})
    path = _write_study(tmp_path, study)
    summary = run_study(path)
    assert summary["results"][0]["folder"] == str(path.parent / "elsewhere" / "out" / "sub-01" / "toy-b")
    assert summary["study"] == "renamed"


# ------------------------------------------------------ invalid keys fail early
#: (key, edits, message): each makes the study invalid at that key.
INVALID = [
    ("study.t_r", {"study.t_r": 0}, r"study.t_r: must be a float in the range \(0.0, inf\)"),
    ("study.name", {"study.name": 3}, r"study.name: must be a string; got 3"),
    ("study.output", {"study.output": ["a"]}, r"study.output: must be a path"),
    ("study.verbose", {"study.verbose": -1}, r"study.verbose: must be an int in the range \[0, inf\)"),
    ("study.ignore_header_t_r", {"study.ignore_header_t_r": "yes"}, r"study.ignore_header_t_r: must be a boolean"),
    ("stimuli.events", {"stimuli.events": "nope.tsv"}, r"stimuli.events: file or folder .*nope.tsv' does not exist"),
    ("stimuli.image_root", {"stimuli.image_root": "events.tsv"}, r"stimuli.image_root: .* is not a folder"),
    ("stimuli.video", {"stimuli.video": "events.tsv"}, r"stimuli: give exactly one of 'events'"),
    ("stimuli.subtitles", {"stimuli.subtitles": "events.tsv"}, r"stimuli.subtitles: only used with 'video'"),
    ("stimuli.rate", {"stimuli.rate": 0}, r"stimuli.rate: must be a float in the range \(0.0, inf\)"),
    ("fmri.bids", {"fmri.bids": "images"}, r"fmri.bids: no sub-\*/func/\*_bold"),
    ("fmri.space", {"fmri.space": 2}, r"fmri.space: must be a string"),
    ("fmri.task", {"fmri.task": "tsak"}, r"fmri.bids: no sub-.* with space-MNI and task-tsak"),
    ("fmri.mask", {"fmri.mask": "nope.nii.gz"}, r"fmri.mask: file or folder .* does not exist"),
    ("subjects.id", {"subjects.id": 1.5}, r"subjects\[0\].id: must be a string or an integer"),
    ("subjects.bold", {"subjects.bold": []}, r"subjects\[0\].bold: empty list"),
    ("subjects.mask", {"subjects.mask": "nope.nii.gz"}, r"subjects\[0\].mask: file or folder"),
    ("models.name", {"models.name": "toyy"}, r"models\[0\].name: no adapter 'toyy'; installed: .*toy"),
    ("models.params", {"models.params": 3}, r"models\[0\].params: must be a table; got 3"),
    ("models.sites", {"models.sites": 3}, r"models\[0\].sites: must be a string or an array of strings"),
    ("models.pooling", {"models.pooling": "meen"}, r"models\[0\].pooling: .*meen"),
    ("models.label", {"models.label": True}, r"models\[0\].label: must be a string"),
    ("pipeline.hrf_model", {"pipeline.hrf_model": "glovr"},
     r"pipeline.hrf_model: 'glovr' is invalid: The 'hrf_model' parameter of TRAligner .* Did you mean 'glover'\?"),
    ("pipeline.n_atoms", {"pipeline.n_atoms": 0}, r"pipeline.n_atoms: 0 is invalid: .*SparseAtoms"),
    ("pipeline.atom_alpha", {"pipeline.atom_alpha": -0.1}, r"pipeline.atom_alpha: -0.1 is invalid: .*SparseAtoms"),
    ("pipeline.atom_max_iter", {"pipeline.atom_max_iter": 2.5}, r"pipeline.atom_max_iter: must be an integer"),
    ("pipeline.atom_tol", {"pipeline.atom_tol": -1.0}, r"pipeline.atom_tol: -1.0 is invalid: .*SparseAtoms"),
    ("pipeline.glm_alpha", {"pipeline.glm_alpha": 1.5}, r"pipeline.glm_alpha: 1.5 is invalid: .*VoxelGLM"),
    ("pipeline.glm_mode", {"pipeline.glm_mode": "jiont"}, r"pipeline.glm_mode: .* Did you mean 'joint'\?"),
    ("pipeline.inference", {"pipeline.inference": "ols"}, r"pipeline.inference: must be a str among .*calibrated"),
    ("pipeline.high_pass", {"pipeline.high_pass": 0}, r"pipeline.high_pass: 0 is invalid: .*VoxelGLM"),
    ("pipeline.alphas", {"pipeline.alphas": [1.0, -1.0]}, r"pipeline.alphas: must be a non-empty list of positive"),
    ("pipeline.encode_sites", {"pipeline.encode_sites": "yes"}, r"pipeline.encode_sites: must be a boolean"),
    ("pipeline.analysis_inputs", {"pipeline.analysis_inputs": 1}, r"pipeline.analysis_inputs: must be a boolean"),
    ("pipeline.site_alphas", {"pipeline.site_alphas": "1, 10"}, r"pipeline.site_alphas: must be an array of numbers"),
    ("pipeline.site_voxels", {"pipeline.site_voxels": "some"}, r"pipeline.site_voxels: must be a str among"),
    ("pipeline.top_k", {"pipeline.top_k": 0}, r"pipeline.top_k: must be an int in the range \[1, inf\)"),
    ("pipeline.n_permutations", {"pipeline.n_permutations": 0}, r"pipeline.n_permutations: must be an int"),
    ("pipeline.atlases", {"pipeline.atlases": ["seitzman"]}, r"pipeline.atlases: no atlas 'seitzman'"),
    ("pipeline.seed", {"pipeline.seed": -1}, r"pipeline.seed: -1 is invalid: .*random_state"),
    ("analyses.run", {"analyses.run": ["settings-test-cuont"]}, r"analyses.run: no analysis 'settings-test-cuont'"),
    ("compute.engine", {"compute.engine": "spark"}, r"compute.engine: must be one of"),
    ("compute.scheduler", {"compute.engine": "local", "compute.scheduler": "tcp://h:8786"},
     r"compute.scheduler: only used with engine = 'dask'"),
    ("compute.n_workers", {"compute.n_workers": 0}, r"compute.n_workers: must be a positive integer"),
    ("compute.threads_per_worker", {"compute.threads_per_worker": "2"}, r"compute.threads_per_worker: must be an integer"),
    ("compute.memory_limit", {"compute.memory_limit": 2.5}, r"compute.memory_limit: must be a string or an integer"),
]

#: Unknown, renamed and misplaced keys, and invalid combinations.
INVALID_OTHER = [
    ({"pipeline.n_atom": 3}, r"pipeline.n_atom: unknown key; allowed: .* Did you mean 'n_atoms'\?"),
    ({"pipeline.hrf": "spm"}, r"pipeline.hrf: renamed to 'hrf_model' .*write hrf_model = \"spm\" instead"),
    ({"pipeline.fdr": 0.01}, r"pipeline.fdr: renamed to 'glm_alpha' .*write glm_alpha = 0.01 instead"),
    ({"pipeline.atlas": "none"}, r"pipeline.atlas: renamed to 'atlases' .*write atlases = \[\] instead"),
    ({"pipeline.atlas": "yeo7"}, r"pipeline.atlas: renamed to 'atlases' .*write atlases = \[\"yeo7\"\] instead"),
    ({"study.tr": 2.0}, r"study.tr: unknown key.*Did you mean 't_r'\?"),
    ({"pipeline.hrf_model": "spm + derivative"},
     r"pipeline.hrf_model: gives several regressors per unit.*use one of glover, spm"),
    ({"analyses.run": "everything"}, r"analyses.run: must be \"all\" or a list of analysis names"),
    ({"models.sites": ["text.1.ffn", 3]}, r"models\[0\].sites: must be a string or an array of strings"),
]


def _invalid_study(data, edits):
    study = _subjects_base(data) if any(k.startswith("subjects.") for k in edits) else _base(data)
    resolved = {}
    for key, value in edits.items():
        if isinstance(value, str) and key.split(".")[0] in ("stimuli", "fmri", "subjects") \
                and key.split(".")[1] in ("events", "image_root", "video", "subtitles", "bids", "mask"):
            value = str(data / value)
        resolved[key] = value
    return _edited(study, resolved)


@pytest.fixture
def no_extraction(monkeypatch):
    """Extraction raises if it is ever reached."""

    def boom(self, *args, **kwargs):
        raise AssertionError("extraction started before the study file was validated")

    monkeypatch.setattr(ToyAdapter, "extract", boom)


@pytest.mark.parametrize("key, edits, match", INVALID, ids=[k for k, _, _ in INVALID])
def test_an_invalid_key_fails_before_extraction(key, edits, match, data, tmp_path, no_extraction):
    path = _write_study(tmp_path, _invalid_study(data, edits))
    with pytest.raises(StudyConfigError, match=match):
        run_study(path, verbose=0)
    assert not (path.parent / "nilearn_vlm_results").exists()


@pytest.mark.parametrize("edits, match", INVALID_OTHER)
def test_unknown_and_renamed_keys_fail_before_extraction(edits, match, data, tmp_path, no_extraction):
    path = _write_study(tmp_path, _invalid_study(data, edits))
    with pytest.raises(StudyConfigError, match=match):
        run_study(path, verbose=0)


def test_the_no_extraction_guard_works(data, tmp_path, no_extraction):
    with pytest.raises(AssertionError, match="extraction started"):
        run_study(_write_study(tmp_path, _base(data)), verbose=0)


