"""Hook implementations: the module the entry point names."""

from nilearn_vlm import hookimpl


@hookimpl
def register_adapters(register):
    # import inside the hook: listing plugins stays cheap
    from nilearn_vlm_colorstats.adapter import ColorStatsAdapter

    register(ColorStatsAdapter)
