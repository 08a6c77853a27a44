"""Load only the core's atlas plugin in these tests.

Model plugins may import torch when loaded; atlas tests need none of them.
The atlases still come through the core's ``atlases`` entry point.
"""

import pytest

from nilearn_vlm.plugins import ALLOW_ENV, reset_plugins


@pytest.fixture(autouse=True, scope="module")
def _only_core_atlases():
    mp = pytest.MonkeyPatch()
    mp.setenv(ALLOW_ENV, "atlases")
    reset_plugins()
    yield
    mp.undo()
    reset_plugins()
