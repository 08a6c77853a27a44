"""Real plugin distributions installed with pip and seen through the CLI."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "plugin-example" / "nilearn-vlm-colorstats"

pytestmark = pytest.mark.subprocess


def _pip_install_target(source, target):
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(source)],
        check=True,
    )


def _write_broken_plugin(folder):
    pkg = folder / "broken_nvlm_plugin"
    pkg.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    (folder / "setup.cfg").write_text(textwrap.dedent("""\
        [metadata]
        name = nilearn-vlm-broken
        version = 0.0.1

        [options]
        packages = find:

        [options.entry_points]
        nilearn_vlm =
            broken = broken_nvlm_plugin.plugin
        """))
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text("raise ImportError('this plugin is broken on purpose')\n")


def _run(args, target, **env):
    environ = dict(os.environ, PYTHONPATH=str(target), **env)
    environ.pop(env.get("_unset", "_"), None)
    return subprocess.run(
        [sys.executable, "-c", "import sys; from nilearn_vlm.cli import main; sys.exit(main())", *args],
        capture_output=True, text=True, env=environ, check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plugins")
    target = tmp / "site"
    source = tmp / "colorstats"
    shutil.copytree(EXAMPLE, source)
    _pip_install_target(source, target)
    broken = tmp / "broken"
    _write_broken_plugin(broken)
    _pip_install_target(broken, target)
    return target


def test_cli_lists_an_installed_plugin_and_survives_a_broken_one(installed):
    res = _run(["plugins", "--json"], installed)
    assert res.returncode == 0, res.stderr
    payload = json.loads(res.stdout)
    rows = {r["name"]: r for r in payload["plugins"]}
    assert rows["colorstats"]["distribution"] == "nilearn-vlm-colorstats"
    assert rows["colorstats"]["version"] == "0.1.0"
    assert rows["colorstats"]["kind"] == "adapter"
    assert payload["skipped"][0]["distribution"] == "nilearn-vlm-broken"
    assert "broken on purpose" in payload["skipped"][0]["reason"]
    assert "nilearn-vlm-broken" in res.stderr  # the PluginLoadWarning

    table = _run(["plugins"], installed)
    assert table.returncode == 0
    assert "colorstats" in table.stdout and "nilearn-vlm-colorstats" in table.stdout
    assert "skipped: plugin 'broken'" in table.stderr


def test_blocking_a_plugin_from_the_environment(installed):
    res = _run(["plugins", "--json"], installed, NILEARN_VLM_BLOCK_PLUGINS="colorstats,broken")
    assert res.returncode == 0
    payload = json.loads(res.stdout)
    assert "colorstats" not in {r["name"] for r in payload["plugins"]}
    assert payload["skipped"] == []


def test_installed_example_adapter_conforms_and_unknown_names_list_it(installed):
    code = textwrap.dedent("""
        import warnings
        warnings.simplefilter("ignore")
        from nilearn_vlm import get_adapter, UnknownPluginError
        from nilearn_vlm.testing import check_adapter
        check_adapter(get_adapter("colorstats")())
        try:
            get_adapter("nope")
        except UnknownPluginError as exc:
            print(exc)
        """)
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False,
        env=dict(os.environ, PYTHONPATH=str(installed)),
    )
    assert res.returncode == 0, res.stderr
    assert "no adapter 'nope'; installed:" in res.stdout
    assert "colorstats" in res.stdout


def test_version_flag():
    res = subprocess.run(
        [sys.executable, "-m", "nilearn_vlm.cli", "--version"], capture_output=True, text=True, check=True
    )
    from nilearn_vlm import __version__

    assert res.stdout.strip() == f"nilearn-vlm {__version__}"


def test_core_import_and_plugin_listing_do_not_import_torch():
    code = (
        "import nilearn_vlm, sys; assert 'torch' not in sys.modules, 'import imported torch'; "
        "t = nilearn_vlm.list_plugins(); assert 'torch' not in sys.modules, 'listing imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
