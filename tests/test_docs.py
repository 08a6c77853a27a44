"""The documentation: the Sphinx build (warnings are errors) and the gallery examples.

The Sphinx build and every ``docs/examples/*.py`` run as subprocesses started
together (most of their time is importing torch, nilearn and Sphinx), each in
its own temporary folder so nothing is written into the checkout.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = sorted(p.name for p in (DOCS / "examples").glob("*.py"))
TIMEOUT = 400  # seconds per job, generous: the machine may be shared


def _env():
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        MPLBACKEND="Agg",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def _commands(tmp):
    jobs = {"sphinx": [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                       str(DOCS), str(tmp / "html")]}
    for name in EXAMPLES:
        jobs[name] = [sys.executable, str(DOCS / "examples" / name)]
    return jobs


@pytest.fixture(scope="module")
def jobs(request, tmp_path_factory):
    """Start the selected jobs at once; each test waits for its own."""
    tmp = tmp_path_factory.mktemp("docs")
    wanted = set()
    for item in request.session.items:
        if item.module is not None and item.module.__name__ == request.module.__name__:
            callspec = getattr(item, "callspec", None)
            wanted.add(callspec.params["example"] if callspec else "sphinx")
    started = {}
    for name, cmd in _commands(tmp).items():
        if name not in wanted:
            continue
        cwd = tmp / f"run_{name}"
        cwd.mkdir()
        out = open(cwd / "output.txt", "w+")
        proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=out, stderr=subprocess.STDOUT)
        started[name] = (proc, out)
    yield tmp, started
    for proc, out in started.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close()


def _finish(jobs, name):
    tmp, started = jobs
    proc, out = started[name]
    try:
        proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"{name} did not finish in {TIMEOUT} s")
    out.seek(0)
    text = out.read()
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{text[-6000:]}"
    return tmp, text


def test_sphinx_build_without_warnings(jobs):
    tmp, text = _finish(jobs, "sphinx")
    html = tmp / "html"
    assert "WARNING" not in text and "ERROR" not in text, text
    for page in ["index", "quickstart", "user_guide", "gallery", "plugin_authors", "api/top",
                 "api/stats", "plugins/nilearn-vlm-clip"]:
        assert (html / f"{page}.html").is_file(), f"{page}.html was not built"
    top = (html / "api" / "top.html").read_text()
    for name in ["NeuronActivations", "TRAligner", "SparseAtoms", "VoxelEncoder", "VoxelGLM",
                 "get_adapter", "list_plugins", "UnknownPluginError"]:
        assert f'id="nilearn_vlm.{name}"' in top, f"{name} is missing from the API reference"
    # the gallery shows every example's code
    gallery = (html / "gallery.html").read_text()
    assert "make_default_study" in gallery and "check_adapter" in gallery
    # the study-file page renders the reference generated from the schema (a table per section, every
    # key) and the complete example study.toml
    from nilearn_vlm.settings import SECTIONS, section_keys

    page = (html / "study_file.html").read_text()
    assert "<!-- study-file-reference -->" not in page and page.count("<table") >= len(SECTIONS)
    for section, cls in SECTIONS.items():
        for key in section_keys(cls):
            assert f'<span class="pre">{key}</span>' in page, f"{section}.{key} is missing from study_file.html"
    assert "clip-b32-ffn" in page and "ignore_header_t_r" in page


def test_every_example_is_in_the_gallery_and_every_public_name_in_the_api():
    gallery = (DOCS / "gallery.md").read_text()
    missing = [n for n in EXAMPLES if f"examples/{n}" not in gallery]
    assert not missing, f"add {missing} to docs/gallery.md with a literalinclude"
    import nilearn_vlm

    top = (DOCS / "api" / "top.rst").read_text()
    undocumented = [n for n in nilearn_vlm.__all__
                    if n not in ("__version__", "Results") and not re.search(rf"\b{n}\b", top)]
    assert not undocumented, f"add {undocumented} to docs/api/top.rst"
    index = (DOCS / "api" / "index.rst").read_text()
    for page in sorted((DOCS / "api").glob("*.rst")):
        if page.stem != "index":
            assert f"   {page.stem}\n" in index, f"{page.name} is not in docs/api/index.rst"


def _number(pattern, text):
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in the output:\n{text}"
    return match


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_runs_offline(jobs, example):
    _, text = _finish(jobs, example)
    if example == "quickstart.py":
        r2 = float(_number(r"median cross-validated R² over 100 voxels: (-?[\d.]+)", text).group(1))
        assert r2 > 0.05  # 5 of the units drive the voxels: above chance
    elif example == "plugins_and_adapters.py":
        assert re.search(r"^\s*clip\s+adapter\s+nilearn-vlm-clip", text, re.M), text
        assert "check_adapter: clip and toy adapters conform" in text
        assert "vision.1.ffn: 2 stimuli x 128 units" in text
    elif example == "stimuli_to_timeseries.py":
        assert "text units of frames all zero: True" in text
        assert "time series: (86, 128)" in text
    elif example == "voxel_encoder.py":
        assert "best-predicted network is driven: True" in text
        assert "prediction image: (50, 59, 48, 80)" in text
    elif example == "atoms_glm_networks.py":
        found = re.findall(r"planted '([^']+)' \(([+-]1)\): atom \d+, found '([^']+)', "
                           r"sign agreement (\d+)%", text)
        assert len(found) == 3, text
        for planted, _, network, agreement in found:
            assert network == planted and int(agreement) >= 90, text
    else:
        assert text.strip(), f"{example} printed nothing"


def test_plugin_author_guide_analysis_example_runs():
    """The analysis of docs/plugin_authors.md runs and returns figures as data that the report renders."""
    import numpy as np

    from nilearn_vlm.analyses import FigureSpec
    from nilearn_vlm.report import analysis_section
    from nilearn_vlm.results import Results

    guide = (DOCS / "plugin_authors.md").read_text().split("## 5. Writing an analysis")[1]
    namespace = {}
    exec(re.search(r"```python\n(.*?)```", guide, re.S).group(1), namespace)  # noqa: S102 - our own docs
    out = namespace["MeanScore"]().run(Results("toy", encoder_scores=np.array([0.1, 0.3, np.nan])))
    assert out.stats["mean_r"] == 0.2
    (spec,) = out.figures
    assert isinstance(spec, FigureSpec) and spec.data["mean_r"].tolist() == [0.2]
    assert len(analysis_section(out).figures) == 1


def test_readme_keeps_its_three_commands_and_dask_docs_install_from_a_checkout():
    import configparser

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    blocks = re.findall(r"<!-- (\w+)-command -->\n```\n(.*?)\n```", readme, re.S)
    assert blocks == [("setup", "pip install -r requirements-dev.txt"), ("test", "python -m pytest"),
                      ("demo", "nilearn-vlm demo --out out/")]
    assert readme.count("```") == 6 and readme.count("pip install") == 1
    dask = (root / "docs" / "dask.md").read_text()
    assert 'pip install -e ".[dask]"' in dask and 'pip install "nilearn-vlm[dask]"' not in dask
    cfg = configparser.ConfigParser()
    cfg.read(root / "setup.cfg")
    assert "dask" in cfg["options.extras_require"]
