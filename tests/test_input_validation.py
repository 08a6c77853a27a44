"""Where user input enters the pipeline: run counts, image dimensionality, volume/surface kinds.

Each error names the problem and the fix, before any extraction.
"""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from nilearn_vlm.pipeline import fit_subject
from nilearn_vlm.settings import PipelineSettings
from nilearn_vlm.testing import ToyAdapter

AFFINE = np.diag([3.0, 3.0, 3.0, 1.0])
RNG = np.random.default_rng(0)


def _events(n_runs=2):
    return pd.DataFrame([{"onset": 2.0 * k, "duration": 2.0, "text": "a b c", "run": r}
                         for r in range(1, n_runs + 1) for k in range(10)])


def _run(n_scans=20):
    return nib.Nifti1Image(RNG.standard_normal((4, 4, 4, n_scans)).astype(np.float32), AFFINE)


class _NoExtraction(ToyAdapter):
    def extract(self, batch, sites, pooling="mean"):  # pragma: no cover - must not be reached
        raise AssertionError("extraction started before the inputs were checked")


def _fit(bold, events=None, **kw):
    settings = PipelineSettings(n_atoms=2, n_permutations=5, atlases=[], encode_sites=False)
    return fit_subject(_events() if events is None else events, bold, 2.0, model=_NoExtraction(width=8, n_layers=1),
                       sites="text.*.ffn", settings=settings, verbose=0, **kw)


@pytest.mark.parametrize("n_bold", [1, 3])
def test_run_counts_of_events_and_bold_must_match(n_bold):
    with pytest.raises(ValueError, match=rf"the events have 2 run\(s\) \(labels \['1', '2'\]\) but the BOLD "
                       rf"has {n_bold} run\(s\); give one BOLD image per run"):
        _fit([_run() for _ in range(n_bold)])


def test_a_3d_image_is_not_a_run():
    one_volume = nib.Nifti1Image(RNG.standard_normal((4, 4, 4)).astype(np.float32), AFFINE)
    with pytest.raises(ValueError, match=r"Nifti targets must be 4D \(x, y, z, time\); got shape \(4, 4, 4\)"):
        _fit([_run(), one_volume])


def test_a_volume_mask_with_grayordinates_is_a_clear_error():
    axis = nib.cifti2.BrainModelAxis.from_mask(np.ones(30, bool), name="CortexLeft")
    runs = []
    for _ in range(2):
        series = nib.cifti2.SeriesAxis(start=0, step=2.0, size=20)
        data = RNG.standard_normal((20, 30)).astype(np.float32)
        runs.append(nib.Cifti2Image(data, nib.cifti2.Cifti2Header.from_axes((series, axis))))
    mask = nib.Nifti1Image(np.ones((4, 4, 4), np.int8), AFFINE)
    with pytest.raises(ValueError, match="mask is only used with Nifti or surface images, but the targets are cifti"):
        _fit(runs, mask=mask)
