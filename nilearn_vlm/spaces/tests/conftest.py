"""Small targets of every kind: NIfTI runs, surfaces, CIFTI, arrays."""

import nibabel as nib
import numpy as np
import pytest
from nilearn.surface import InMemoryMesh, PolyMesh, SurfaceImage


def _surface_img(n_scans, n_vert=6, seed=0):
    """A two-hemisphere SurfaceImage of ``n_scans`` random samples (same mesh for any seed)."""
    coords = np.random.default_rng(42).random((n_vert, 3))
    rng = np.random.default_rng(seed)
    faces = np.array([[i, i + 1, i + 2] for i in range(n_vert - 2)])
    mesh = PolyMesh(left=InMemoryMesh(coords, faces),
                    right=InMemoryMesh(coords + 1, faces))
    data = {h: rng.standard_normal((n_vert, n_scans)) for h in ("left", "right")}
    return SurfaceImage(mesh=mesh, data=data)


def _cifti(n_scans, path=None, seed=0, step=1.5):
    """A CIFTI dtseries (12 voxels + 3 vertices); saved to ``path`` when given."""
    rng = np.random.default_rng(seed)
    vol = np.zeros((3, 3, 3), bool)
    vol[1:, 1:, :2] = True
    bm = nib.cifti2.BrainModelAxis.from_mask(vol, name="thalamus_left",
                                             affine=np.eye(4))
    bm = bm + nib.cifti2.BrainModelAxis.from_mask(
        np.array([1, 0, 1, 1], bool), name="cortex_left")
    ser = nib.cifti2.SeriesAxis(0.0, step, n_scans)
    data = rng.standard_normal((n_scans, len(bm))).astype(np.float32)
    img = nib.cifti2.Cifti2Image(data, nib.cifti2.Cifti2Header.from_axes((ser, bm)))
    if path is not None:
        img.to_filename(str(path))
        return path, data
    return img, data


@pytest.fixture
def make_surface():
    """The :func:`_surface_img` builder."""
    return _surface_img


@pytest.fixture
def make_cifti():
    """The :func:`_cifti` builder."""
    return _cifti
