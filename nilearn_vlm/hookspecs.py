"""Hook specifications of the ``nilearn_vlm`` plugin host.

A plugin is a module (or any object) with functions marked by
:data:`nilearn_vlm.hookimpl`, exposed through the entry-point group
``nilearn_vlm``::

    # setup.cfg of a plugin distribution
    [options.entry_points]
    nilearn_vlm =
        my_model = my_package.plugin

Each hook hands the plugin a ``register`` callable; the plugin calls it once
per object it provides. Registration is atomic per plugin: when a hook raises,
everything that plugin registered is withdrawn and a warning names it.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "nilearn_vlm"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_adapters(register):
    """Register model adapters.

    Parameters
    ----------
    register : callable
        ``register(adapter_class, name=None)``. ``adapter_class`` is a
        subclass of :class:`nilearn_vlm.adapters.BaseAdapter`; its ``name``
        class attribute is used when ``name`` is None. Users reach it with
        :func:`nilearn_vlm.get_adapter`.

    Examples
    --------
    >>> from nilearn_vlm import hookimpl
    >>> @hookimpl
    ... def register_adapters(register):
    ...     from my_package.adapter import MyAdapter  # doctest: +SKIP
    ...     register(MyAdapter)  # doctest: +SKIP
    """


@hookspec
def register_analyses(register):
    """Register analyses run on fitted results.

    Parameters
    ----------
    register : callable
        ``register(analysis_class, name=None)``. The class follows the
        analysis contract of :mod:`nilearn_vlm.analyses`; users reach it with
        :func:`nilearn_vlm.get_analysis`.
    """


@hookspec
def register_atlases(register):
    """Register functional-network atlases.

    Parameters
    ----------
    register : callable
        ``register(atlas, name=None)``. ``atlas`` is an object with a ``name``
        attribute and a ``load()`` method (see :mod:`nilearn_vlm.networks`);
        users reach it with :func:`nilearn_vlm.get_atlas`.
    """
