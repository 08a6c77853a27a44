"""The plugin host: entry points, broken plugins, blocking, duplicates, look-ups."""

import sys
import types
import warnings
from importlib import metadata

import pytest

import nilearn_vlm
from nilearn_vlm import hookimpl, plugins
from nilearn_vlm.plugins import (
    DuplicatePluginError,
    PluginLoadWarning,
    UnknownPluginError,
    get_adapter,
    get_analysis,
    get_atlas,
    list_plugins,
    register_plugin,
    unregister_plugin,
)
from nilearn_vlm.testing import ToyAdapter


class _FakeDist:
    def __init__(self, name, version="1.2.3"):
        self.metadata = {"Name": name}
        self.version = version


def _entry_point(name, module_name, dist_name):
    ep = metadata.EntryPoint(name=name, value=module_name, group="nilearn_vlm")
    return ep._for(_FakeDist(dist_name)) if hasattr(ep, "_for") else ep


def _module(name, **attrs):
    mod = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(mod, key, value)
    return mod


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Replace the installed entry points with a list the test fills."""
    eps = []
    real = metadata.entry_points

    def entry_points(**kwargs):
        if kwargs.get("group") == "nilearn_vlm":
            return list(eps)
        return real(**kwargs)

    monkeypatch.setattr(plugins.metadata, "entry_points", entry_points)
    monkeypatch.delenv(plugins.BLOCK_ENV, raising=False)
    monkeypatch.delenv(plugins.ALLOW_ENV, raising=False)
    plugins.reset_plugins()
    yield eps
    plugins.reset_plugins()
    for key in [k for k in sys.modules if k.startswith("_nvlm_fake_")]:
        del sys.modules[key]


def _adapter_plugin(module_name, adapter_name):
    class Adapter(ToyAdapter):
        name = adapter_name

    @hookimpl
    def register_adapters(register):
        register(Adapter)

    sys.modules[module_name] = _module(module_name, register_adapters=register_adapters)
    return Adapter


def test_entry_point_plugins_are_loaded_with_their_distribution(fake_entry_points):
    cls = _adapter_plugin("_nvlm_fake_a", "alpha")
    fake_entry_points.append(_entry_point("alpha-plugin", "_nvlm_fake_a", "nilearn-vlm-alpha"))
    assert get_adapter("alpha") is cls
    table = list_plugins()
    row = table[table["name"] == "alpha"].iloc[0]
    assert row["kind"] == "adapter"
    assert row["distribution"] == "nilearn-vlm-alpha"
    assert row["version"] == "1.2.3"
    assert row["plugin"] == "alpha-plugin"


def test_plugins_load_lazily_once(fake_entry_points, monkeypatch):
    _adapter_plugin("_nvlm_fake_a", "alpha")
    fake_entry_points.append(_entry_point("alpha-plugin", "_nvlm_fake_a", "d"))
    calls = []
    real = plugins._Host._load_entry_points

    def counting(self):
        calls.append(1)
        return real(self)

    monkeypatch.setattr(plugins._Host, "_load_entry_points", counting)
    get_adapter("alpha")
    get_adapter("alpha")
    list_plugins()
    assert calls == [1]


def test_plugin_raising_on_import_is_skipped_with_a_warning(fake_entry_points):
    _adapter_plugin("_nvlm_fake_ok", "good")
    fake_entry_points.append(_entry_point("broken", "_nvlm_fake_missing_module", "nilearn-vlm-broken"))
    fake_entry_points.append(_entry_point("ok", "_nvlm_fake_ok", "nilearn-vlm-ok"))
    with pytest.warns(PluginLoadWarning, match=r"'broken' \(distribution 'nilearn-vlm-broken'\) failed to import"):
        assert get_adapter("good").name == "good"
    assert [p for p, _, _ in plugins.failed_plugins()] == ["broken"]


def test_plugin_raising_while_registering_is_rolled_back(fake_entry_points):
    @hookimpl
    def register_adapters(register):
        register(ToyAdapter, name="half-registered")
        raise RuntimeError("boom")

    sys.modules["_nvlm_fake_bad"] = _module("_nvlm_fake_bad", register_adapters=register_adapters)
    fake_entry_points.append(_entry_point("bad", "_nvlm_fake_bad", "nilearn-vlm-bad"))
    with pytest.warns(PluginLoadWarning, match="failed to register: RuntimeError: boom"):
        table = list_plugins()
    assert "half-registered" not in set(table["name"])
    with pytest.raises(UnknownPluginError):
        get_adapter("half-registered")
    assert plugins.get_plugin_manager().get_plugin("bad") is None


def test_block_and_allow_lists(fake_entry_points, monkeypatch):
    _adapter_plugin("_nvlm_fake_a", "alpha")
    _adapter_plugin("_nvlm_fake_b", "beta")
    fake_entry_points.append(_entry_point("alpha-plugin", "_nvlm_fake_a", "dist-alpha"))
    fake_entry_points.append(_entry_point("beta-plugin", "_nvlm_fake_b", "dist-beta"))

    monkeypatch.setenv(plugins.BLOCK_ENV, "alpha-plugin")
    plugins.reset_plugins()
    assert set(list_plugins()["name"]) == {"beta"}

    monkeypatch.setenv(plugins.BLOCK_ENV, "dist-beta")  # distribution names work too
    plugins.reset_plugins()
    assert set(list_plugins()["name"]) == {"alpha"}

    monkeypatch.delenv(plugins.BLOCK_ENV)
    monkeypatch.setenv(plugins.ALLOW_ENV, "beta-plugin")
    plugins.reset_plugins()
    assert set(list_plugins()["name"]) == {"beta"}

    monkeypatch.setenv(plugins.ALLOW_ENV, "")
    plugins.reset_plugins()
    assert list_plugins().empty


def test_duplicate_names_name_both_distributions(fake_entry_points):
    _adapter_plugin("_nvlm_fake_a", "same")
    _adapter_plugin("_nvlm_fake_b", "same")
    fake_entry_points.append(_entry_point("first", "_nvlm_fake_a", "dist-one"))
    fake_entry_points.append(_entry_point("second", "_nvlm_fake_b", "dist-two"))
    with pytest.raises(DuplicatePluginError, match=r"adapter 'same'.*'dist-one'.*'dist-two'"):
        list_plugins()


def test_unknown_name_lists_installed_and_closest(fake_entry_points):
    _adapter_plugin("_nvlm_fake_a", "clip")
    _adapter_plugin("_nvlm_fake_b", "meter")
    fake_entry_points.append(_entry_point("a", "_nvlm_fake_a", "d1"))
    fake_entry_points.append(_entry_point("b", "_nvlm_fake_b", "d2"))
    with pytest.raises(UnknownPluginError, match=r"no adapter 'clipp'; installed: clip, meter\. Did you mean 'clip'\?"):
        get_adapter("clipp")
    with pytest.raises(UnknownPluginError, match="no analysis 'nope'; installed: none"):
        get_analysis("nope")
    with pytest.raises(LookupError, match="no atlas 'yeo'"):
        get_atlas("yeo")


def test_in_memory_plugins_register_every_kind(fake_entry_points):
    class Atlas:
        name = "toy-atlas"

    class Analysis:
        name = "toy-analysis"

    class Plugin:
        @hookimpl
        def register_adapters(self, register):
            register(ToyAdapter)

        @hookimpl
        def register_analyses(self, register):
            register(Analysis)

        @hookimpl
        def register_atlases(self, register):
            register(Atlas())

    register_plugin(Plugin(), "in-memory")
    try:
        assert get_adapter("toy") is ToyAdapter
        assert get_analysis("toy-analysis") is Analysis
        assert get_atlas("toy-atlas").name == "toy-atlas"
        table = list_plugins()
        assert set(table["kind"]) == {"adapter", "analysis", "atlas"}
        assert set(table["distribution"]) == {"<memory>"}
    finally:
        unregister_plugin("in-memory")
    with pytest.raises(UnknownPluginError):
        get_adapter("toy")


def test_register_requires_a_name(fake_entry_points):
    class Plugin:
        @hookimpl
        def register_adapters(self, register):
            register(object())

    with pytest.warns(PluginLoadWarning, match="give it a 'name' attribute"):
        register_plugin(Plugin(), "nameless")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list_plugins().empty


def test_public_names_are_exported():
    for name in ("hookimpl", "get_adapter", "get_analysis", "get_atlas", "list_plugins", "UnknownPluginError"):
        assert hasattr(nilearn_vlm, name)
    assert nilearn_vlm.hookimpl is plugins.hookspecs.hookimpl


def test_lazy_registration_by_reference(fake_entry_points):
    class Plugin:
        @hookimpl
        def register_adapters(self, register):
            register("nilearn_vlm.testing._toy:ToyAdapter", name="lazy-toy")
            register("nilearn_vlm.testing:NoSuchAdapter", name="broken-ref")

    register_plugin(Plugin(), "lazy")
    try:
        assert "lazy-toy" in set(list_plugins()["name"])
        assert get_adapter("lazy-toy") is ToyAdapter
        with pytest.raises(ImportError, match=r"adapter 'broken-ref' of plugin 'lazy'.*NoSuchAdapter"):
            get_adapter("broken-ref")
    finally:
        unregister_plugin("lazy")


def test_lazy_registration_needs_a_name(fake_entry_points):
    class Plugin:
        @hookimpl
        def register_adapters(self, register):
            register("nilearn_vlm.testing:ToyAdapter")

    with pytest.warns(PluginLoadWarning, match="needs a name"):
        register_plugin(Plugin(), "nameless-ref")


def test_after_a_duplicate_no_impostor_is_handed_out_and_other_plugins_load(fake_entry_points):
    """An impostor registering 'clip' before the real one: neither is used; later plugins still load."""
    _adapter_plugin("_nvlm_fake_impostor", "clip")
    real = _adapter_plugin("_nvlm_fake_real", "clip")
    other = _adapter_plugin("_nvlm_fake_other", "meter")
    fake_entry_points.append(_entry_point("a-impostor", "_nvlm_fake_impostor", "evil-dist"))
    fake_entry_points.append(_entry_point("b-real", "_nvlm_fake_real", "nilearn-vlm-clip"))
    fake_entry_points.append(_entry_point("c-other", "_nvlm_fake_other", "nilearn-vlm-meter"))
    for _ in range(2):  # the same error every time, never the impostor
        with pytest.raises(DuplicatePluginError, match=r"adapter 'clip'.*'evil-dist'.*'nilearn-vlm-clip'.*"
                           r"neither is used"):
            get_adapter("clip")
    assert get_adapter("meter") is other  # loaded after the duplicate
    assert real is not None
    with pytest.raises(DuplicatePluginError, match="adapter 'clip'"):
        list_plugins()
