"""The core's own atlas plugin, registered through the ``nilearn_vlm`` entry point.

The core distribution declares it in its ``setup.cfg``::

    [options.entry_points]
    nilearn_vlm =
        atlases = nilearn_vlm.networks._plugin

so the built-in atlases reach :func:`nilearn_vlm.get_atlas` exactly as a third
party's would (and can be blocked with ``NILEARN_VLM_BLOCK_PLUGINS=atlases``).
"""

from nilearn_vlm.hookspecs import hookimpl


def builtin_atlases():
    """Fresh instances of every built-in atlas."""
    from nilearn_vlm.networks._hcp import builtin_hcp_atlases
    from nilearn_vlm.networks._mni import (
        HarvardOxfordAtlas,
        LanguageMNIAtlas,
        Seitzman2018Atlas,
    )

    return [Seitzman2018Atlas(), HarvardOxfordAtlas(), LanguageMNIAtlas(), *builtin_hcp_atlases()]


@hookimpl
def register_atlases(register):
    """Register the built-in MNI152 and HCP-grayordinate atlases."""
    for atlas in builtin_atlases():
        register(atlas)
