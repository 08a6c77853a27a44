"""The analysis plugins build and install from their folders and register through the entry point."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = {"redundancy": "nilearn-vlm-redundancy", "polarity": "nilearn-vlm-polarity", "compare": "nilearn-vlm-compare"}

pytestmark = pytest.mark.subprocess


def test_analysis_plugins_install_from_their_folders(tmp_path):
    target = tmp_path / "site"
    for dist in PLUGINS.values():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
             "--target", str(target), str(ROOT / "plugins" / dist)],
            check=True,
        )
    code = (
        "import json, importlib.metadata as md; from nilearn_vlm import list_plugins, get_analysis;"
        "t = list_plugins(); t = t[t.kind == 'analysis'];"
        "print(json.dumps({'rows': t.to_dict(orient='records'),"
        " 'files': {d: str(md.distribution(d).locate_file('')) for d in %r},"
        " 'names': {n: get_analysis(n).name for n in %r}}))" % (list(PLUGINS.values()), list(PLUGINS))
    )
    env = dict(os.environ, PYTHONPATH=str(target), NILEARN_VLM_LOAD_PLUGINS=",".join(PLUGINS))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    payload = json.loads(res.stdout)
    rows = {r["name"]: r for r in payload["rows"]}
    for name, dist in PLUGINS.items():
        assert rows[name]["distribution"] == dist and rows[name]["version"] == "0.1.0"
        assert payload["names"][name] == name
        assert Path(payload["files"][dist]).resolve() == target.resolve()  # the copy built from the folder
