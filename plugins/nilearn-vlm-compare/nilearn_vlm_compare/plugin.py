"""Hook implementations: the module the entry point names."""

from nilearn_vlm import hookimpl


@hookimpl
def register_analyses(register):
    # import inside the hook: listing plugins stays cheap
    from nilearn_vlm_compare._analysis import CompareAnalysis

    register(CompareAnalysis)
