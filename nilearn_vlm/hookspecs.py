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
        :func:`nilearn_vlm.get_adapter`. To keep listing plugins cheap, a
        plugin may register a ``"package.module:ClassName"`` string with a
        ``name``; the class is imported on the first look-up.

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
        ``register(atlas, name=None)``; users reach the atlas with
        :func:`nilearn_vlm.get_atlas`. ``atlas`` is an object (an instance,
        not a class) with

        ``name`` : str
            the registered name (used when ``name`` is None);
        ``space`` : str
            its space family: ``"MNI152"`` (volumes), ``"fsLR_91k"`` (HCP
            grayordinates, 91,282) or ``"fsaverage5"``;
        ``networks`` : list of str
            names of its networks (or regions), background excluded;
        ``load(target=None)``
            an :class:`nilearn_vlm.networks.AtlasLabels` on the data's grid:
            ``labels`` (int per voxel, 0 = background) and ``lookup`` (a
            DataFrame with ``index``, ``name`` and ``canonical``: see
            :func:`nilearn_vlm.networks.canonical_network`). ``target`` is
            None (the atlas's default grid), a space name, a mask image, a
            nilearn masker, a CIFTI image, a grayordinate count or an
            :class:`nilearn_vlm.spaces.ImageSpace`. Labels are resampled
            only within the atlas's space family; another family raises
            :class:`nilearn_vlm.spaces.SpaceMismatchError`.

        Subclassing :class:`nilearn_vlm.networks.BaseAtlas` (implement
        ``_names()`` and ``_load(target)``) gives target resolution and the
        space check. The core registers its own atlases (Seitzman 2018,
        Harvard-Oxford, Yeo 7/17, Cole-Anticevic, HCP-MMP1, language) the same
        way, through its ``atlases`` entry point.

    Examples
    --------
    >>> from nilearn_vlm import hookimpl
    >>> @hookimpl
    ... def register_atlases(register):
    ...     from my_package.atlas import MyAtlas  # doctest: +SKIP
    ...     register(MyAtlas(resolution=2))  # doctest: +SKIP
    """
