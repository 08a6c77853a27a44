import subprocess
import sys

import pytest

from nilearn_vlm import stats


def test_public_names_resolve_and_have_docstrings():
    for name in stats.__all__:
        obj = getattr(stats, name)
        if isinstance(obj, type):  # result classes: documented attributes
            assert obj.__doc__ and "Attributes" in obj.__doc__, name
        elif callable(obj):  # functions: numpydoc with a runnable example
            assert obj.__doc__ and "Examples" in obj.__doc__, name


@pytest.mark.subprocess
def test_stats_does_not_import_torch():
    code = "import sys, nilearn_vlm.stats; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
