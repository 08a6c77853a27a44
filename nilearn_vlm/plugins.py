"""The plugin host: one pluggy manager, loaded lazily once.

Plugins are found through the entry-point group ``nilearn_vlm`` (the built-in
plugins are separate distributions registered the same way). Two environment
variables steer loading; both take comma-separated entry-point or distribution
names:

``NILEARN_VLM_BLOCK_PLUGINS``
    plugins never loaded.
``NILEARN_VLM_LOAD_PLUGINS``
    when set, only these plugins are loaded (an allow-list; set it to an empty
    string to load none).

A plugin that raises on import or while registering is skipped with a
:class:`PluginLoadWarning` naming it, its distribution and the error; the rest
keep working. Two plugins registering the same name for the same kind is a
:class:`DuplicatePluginError` naming both distributions; neither object is
handed out (every look-up of that name raises it again, and listing the
plugins too), and the other plugins load as usual.
"""

from __future__ import annotations

import difflib
import os
import threading
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from nilearn_vlm import hookspecs

KINDS = ("adapter", "analysis", "atlas")
_HOOK_OF_KIND = {
    "adapter": "register_adapters",
    "analysis": "register_analyses",
    "atlas": "register_atlases",
}
BLOCK_ENV = "NILEARN_VLM_BLOCK_PLUGINS"
ALLOW_ENV = "NILEARN_VLM_LOAD_PLUGINS"


class UnknownPluginError(LookupError):
    """Raised when no installed plugin provides the requested name."""


class DuplicatePluginError(RuntimeError):
    """Raised when two plugins register the same name for the same kind."""


class PluginLoadWarning(UserWarning):
    """Warns that a plugin failed to import or register and was skipped."""


@dataclass(frozen=True)
class PluginEntry:
    """One registered object.

    Attributes
    ----------
    name : str
        Name users look it up by.
    kind : {"adapter", "analysis", "atlas"}
    obj : object
        The registered class or object.
    plugin : str
        Name of the plugin (entry point) that registered it.
    distribution : str
        Distribution that ships the plugin (``"<memory>"`` when registered in
        code with :func:`register_plugin`).
    version : str
        Version of that distribution.
    """

    name: str
    kind: str
    obj: Any
    plugin: str
    distribution: str
    version: str


def _split_env(name):
    value = os.environ.get(name)
    if value is None:
        return None
    return {v.strip() for v in value.split(",") if v.strip()}


class _Host:
    """Plugin manager plus the registry filled by the hooks."""

    def __init__(self):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.registry = {kind: {} for kind in KINDS}
        self.dists = {}  # plugin name -> (distribution, version)
        self.failed = []  # (plugin, distribution, error)
        self.conflicts = {kind: {} for kind in KINDS}  # names two plugins registered: withheld
        self.duplicates = []  # messages of the duplicates met while loading entry points
        self._lock = threading.RLock()
        self._loaded = False

    # -- loading ---------------------------------------------------------
    def load(self):
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            self.duplicates = self._load_entry_points()

    def _load_entry_points(self):
        """Load every entry point; a duplicate name is withheld from both plugins (never the first one
        silently), the other plugins still load. Returns the duplicate messages."""
        blocked = _split_env(BLOCK_ENV) or set()
        allowed = _split_env(ALLOW_ENV)
        errors = []
        for ep in sorted(metadata.entry_points(group=hookspecs.PROJECT_NAME), key=lambda e: e.name):
            dist = ep.dist.metadata["Name"] if ep.dist is not None else "<unknown>"
            version = ep.dist.version if ep.dist is not None else ""
            names = {ep.name, dist}
            if names & blocked or (allowed is not None and not names & allowed):
                continue
            if self.pm.get_plugin(ep.name) is not None:
                msg = (f"two plugins use the entry-point name {ep.name!r}: "
                       f"{self.dists[ep.name][0]!r} and {dist!r}; uninstall one of them")
                for kind in KINDS:
                    for key in [k for k, e in self.registry[kind].items() if e.plugin == ep.name]:
                        self._withhold(kind, key, msg)
                errors.append(msg)
                continue
            try:
                module = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the host
                self._warn(ep.name, dist, f"failed to import: {type(exc).__name__}: {exc}")
                continue
            try:
                self.add(module, ep.name, dist, version, withhold=True)
            except DuplicatePluginError as exc:
                errors.append(str(exc))
        return errors

    def _withhold(self, kind, name, msg):
        """Hand out neither object registered under a duplicated name: look-ups raise ``msg``."""
        self.registry[kind].pop(name, None)
        self.conflicts[kind][name] = msg

    def add(self, plugin, name, distribution="<memory>", version="", withhold=False):
        """Register ``plugin`` under ``name`` and run its registration hooks.

        A name another plugin registered is a :class:`DuplicatePluginError`
        and the new plugin is rolled back; with ``withhold`` (entry points,
        where neither can be trusted over the other) the earlier object is
        withheld too.
        """
        with self._lock:
            try:
                self.pm.register(plugin, name=name)
            except ValueError as exc:
                other = self.dists.get(name, ("<unknown>",))[0]
                raise DuplicatePluginError(
                    f"plugin name {name!r} is used by {other!r} and {distribution!r}: {exc}"
                ) from None
            self.dists[name] = (distribution, version)
            added = []
            try:
                for kind in KINDS:
                    hook = getattr(self.pm.hook, _HOOK_OF_KIND[kind])
                    for impl in hook.get_hookimpls():
                        if impl.plugin_name == name:
                            impl.function(register=self._registrar(kind, name, added, withhold))
            except DuplicatePluginError:
                self._rollback(name, added)
                raise
            except Exception as exc:  # noqa: BLE001
                self._rollback(name, added)
                self._warn(name, distribution, f"failed to register: {type(exc).__name__}: {exc}")

    def _registrar(self, kind, plugin_name, added, withhold=False):
        distribution, version = self.dists[plugin_name]

        def register(obj, name=None):
            if isinstance(obj, str) and name is None:
                raise TypeError(
                    f"lazy registration of {obj!r} needs a name: register({obj!r}, name='...')"
                )
            if isinstance(obj, str) and ":" not in obj:
                raise ValueError(
                    f"lazy registration takes 'package.module:attribute', got {obj!r}"
                )
            name = name if name is not None else getattr(obj, "name", None)
            if not isinstance(name, str) or not name:
                raise TypeError(
                    f"cannot register {obj!r} as {kind}: give it a 'name' attribute "
                    "or pass register(obj, name='...')"
                )
            existing = self.registry[kind].get(name)
            if name in self.conflicts[kind]:
                msg = (f"{self.conflicts[kind][name]}; distribution {distribution!r} (plugin "
                       f"{plugin_name!r}) registers it too")
                self.conflicts[kind][name] = msg
                raise DuplicatePluginError(msg)
            if existing is not None:
                msg = (f"two plugins register the {kind} {name!r}: distribution "
                       f"{existing.distribution!r} (plugin {existing.plugin!r}) and "
                       f"{distribution!r} (plugin {plugin_name!r}); neither is used: uninstall one "
                       f"or block it with {BLOCK_ENV}")
                if withhold:
                    self._withhold(kind, name, msg)
                raise DuplicatePluginError(msg)
            self.registry[kind][name] = PluginEntry(
                name, kind, obj, plugin_name, distribution, version
            )
            added.append((kind, name))
            return obj

        return register

    def _rollback(self, name, added):
        for kind, obj_name in added:
            self.registry[kind].pop(obj_name, None)
        self.pm.unregister(name=name)
        self.dists.pop(name, None)

    def _warn(self, plugin, distribution, what):
        self.failed.append((plugin, distribution, what))
        warnings.warn(
            f"nilearn_vlm plugin {plugin!r} (distribution {distribution!r}) {what}; "
            "it is skipped and everything else keeps working",
            PluginLoadWarning,
            stacklevel=4,
        )

    def remove(self, name):
        with self._lock:
            for kind in KINDS:
                for key in [k for k, e in self.registry[kind].items() if e.plugin == name]:
                    del self.registry[kind][key]
            if self.pm.get_plugin(name) is not None:
                self.pm.unregister(name=name)
            self.dists.pop(name, None)


_HOST = None
_HOST_LOCK = threading.Lock()


def _host():
    global _HOST
    with _HOST_LOCK:
        if _HOST is None:
            _HOST = _Host()
    _HOST.load()
    return _HOST


def get_plugin_manager():
    """Return the loaded :class:`pluggy.PluginManager` of ``nilearn_vlm``."""
    return _host().pm


def reset_plugins():
    """Forget every loaded plugin; the next look-up loads entry points again.

    Mostly for tests and after installing a plugin in a running session.
    """
    global _HOST
    with _HOST_LOCK:
        _HOST = None


def register_plugin(plugin, name):
    """Register an in-memory plugin object (a module or any object with hooks).

    Parameters
    ----------
    plugin : object
        Object whose attributes are functions marked with
        :data:`nilearn_vlm.hookimpl`.
    name : str
        Plugin name; pass the same name to :func:`unregister_plugin`.

    Examples
    --------
    >>> from nilearn_vlm import hookimpl
    >>> from nilearn_vlm.plugins import register_plugin, unregister_plugin
    >>> from nilearn_vlm.testing import ToyAdapter
    >>> class MyPlugin:
    ...     @hookimpl
    ...     def register_adapters(self, register):
    ...         register(ToyAdapter, name="my-toy")
    >>> register_plugin(MyPlugin(), "my-plugin")
    >>> from nilearn_vlm import get_adapter
    >>> get_adapter("my-toy") is ToyAdapter
    True
    >>> unregister_plugin("my-plugin")
    """
    _host().add(plugin, name)


def unregister_plugin(name):
    """Remove a plugin and everything it registered."""
    _host().remove(name)


def _resolve(entry):
    """Import a lazily registered object (``"module:attribute"``)."""
    from importlib import import_module

    module, _, attr = entry.obj.partition(":")
    try:
        obj = import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise ImportError(
            f"the {entry.kind} {entry.name!r} of plugin {entry.plugin!r} (distribution "
            f"{entry.distribution!r}) could not be imported from {entry.obj!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return obj


def _lookup(kind, name):
    host = _host()
    registry = host.registry[kind]
    if name in host.conflicts[kind]:
        raise DuplicatePluginError(host.conflicts[kind][name])
    if name in registry:
        entry = registry[name]
        if isinstance(entry.obj, str):
            entry = PluginEntry(entry.name, kind, _resolve(entry), entry.plugin, entry.distribution,
                                entry.version)
            registry[name] = entry
        return entry.obj
    installed = sorted(registry)
    msg = f"no {kind} {name!r}; installed: {', '.join(installed) if installed else 'none'}"
    close = difflib.get_close_matches(str(name), installed, n=1)
    if close:
        msg += f". Did you mean {close[0]!r}?"
    elif not installed:
        msg += f". Install a plugin that provides {kind}s (see `nilearn-vlm plugins`)"
    raise UnknownPluginError(msg)


def get_adapter(name):
    """Return the adapter class registered under ``name``.

    Parameters
    ----------
    name : str
        Adapter name, such as ``"clip"`` or ``"meter"``.

    Returns
    -------
    type
        Subclass of :class:`nilearn_vlm.adapters.BaseAdapter`; instantiate it
        with the model parameters.

    Raises
    ------
    UnknownPluginError
        No installed plugin provides ``name``; the message lists what is
        installed and the closest match.
    """
    return _lookup("adapter", name)


def get_analysis(name):
    """Return the analysis class registered under ``name``.

    Raises :class:`UnknownPluginError` listing the installed ones when absent.
    """
    return _lookup("analysis", name)


def get_atlas(name):
    """Return the atlas registered under ``name``.

    Raises :class:`UnknownPluginError` listing the installed ones when absent.
    """
    return _lookup("atlas", name)


def iter_plugins(kind=None):
    """Yield :class:`PluginEntry` objects, optionally of one ``kind``."""
    host = _host()
    if host.duplicates:
        raise DuplicatePluginError("; ".join(host.duplicates))
    for k in KINDS if kind is None else (kind,):
        yield from sorted(host.registry[k].values(), key=lambda e: e.name)


def list_plugins():
    """List what the installed plugins provide.

    Returns
    -------
    pandas.DataFrame
        One row per registered object with columns ``name``, ``kind``,
        ``plugin``, ``distribution`` and ``version``.

    Examples
    --------
    >>> from nilearn_vlm import list_plugins
    >>> table = list_plugins()
    >>> list(table.columns)
    ['name', 'kind', 'plugin', 'distribution', 'version']
    """
    import pandas as pd

    rows = [
        {
            "name": e.name,
            "kind": e.kind,
            "plugin": e.plugin,
            "distribution": e.distribution,
            "version": e.version,
        }
        for e in iter_plugins()
    ]
    return pd.DataFrame(rows, columns=["name", "kind", "plugin", "distribution", "version"])


def failed_plugins():
    """Return ``(plugin, distribution, reason)`` for each plugin that was skipped."""
    return list(_host().failed)
