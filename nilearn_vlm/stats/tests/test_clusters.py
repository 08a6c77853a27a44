import numpy as np
import pytest
from scipy import ndimage

from nilearn_vlm.stats import (
    cluster_test,
    find_clusters,
    grid_adjacency,
    mesh_adjacency,
    permutation_null,
)


def _sheet_mesh(nx, ny):
    """A flat triangulated nx-by-ny grid of vertices (two triangles per square)."""
    xs, ys = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    coords = np.c_[xs.ravel(), ys.ravel(), np.zeros(nx * ny)].astype(float)
    v = np.arange(nx * ny).reshape(nx, ny)
    a, b, c, d = v[:-1, :-1].ravel(), v[1:, :-1].ravel(), v[:-1, 1:].ravel(), v[1:, 1:].ravel()
    faces = np.r_[np.c_[a, b, c], np.c_[b, d, c]]
    return coords, faces


def test_find_clusters_on_grid_matches_ndimage_label():
    rng = np.random.default_rng(0)
    mask = np.zeros((9, 8, 7), dtype=bool)
    mask[1:8, 1:7, 1:6] = True
    vol = ndimage.gaussian_filter(rng.standard_normal(mask.shape), 1.0)
    thr = np.quantile(vol[mask], 0.7)
    clusters, masses = find_clusters(vol[mask], thr, grid_adjacency(mask), tail=1)
    lab, n = ndimage.label((vol > thr) & mask)  # 6-connectivity in 3-D
    ref = sorted(tuple(np.flatnonzero(lab[mask] == k)) for k in range(1, n + 1))
    assert sorted(tuple(c) for c in clusters) == ref
    ref_mass = sorted(vol[lab == k].sum() for k in range(1, n + 1))
    np.testing.assert_allclose(sorted(masses), ref_mass)


def test_mesh_adjacency_neighbours_and_masks():
    coords, faces = _sheet_mesh(4, 3)
    adj = mesh_adjacency((coords, faces))
    dense = adj.toarray() > 0
    for i, j in [(0, 1), (0, 3), (1, 3)]:  # grid neighbours and one diagonal
        assert dense[i, j] and dense[j, i]
    assert not dense[0, 4]
    keep = np.ones(12, dtype=bool)
    keep[5] = False
    assert mesh_adjacency((coords, faces), mask=keep).shape == (11, 11)
    fs = mesh_adjacency("fsaverage5")  # ships with nilearn; hemispheres unconnected
    assert fs.shape == (20484, 20484)
    assert fs[:10242, 10242:].nnz == 0
    with pytest.raises(ValueError, match="mask has 3 entries"):
        mesh_adjacency((coords, faces), mask=np.ones(3, dtype=bool))
    with pytest.raises(TypeError, match="fsaverage name"):
        mesh_adjacency(42)


def test_mesh_adjacency_from_surface_masker():
    from nilearn.datasets import load_fsaverage
    from nilearn.maskers import SurfaceMasker
    from nilearn.surface import SurfaceImage

    mesh = load_fsaverage("fsaverage5")["pial"]
    rng = np.random.default_rng(0)
    mask = {h: (rng.uniform(size=10242) > 0.5) for h in ("left", "right")}
    masker = SurfaceMasker(SurfaceImage(mesh, mask), standardize=None).fit()
    adj = mesh_adjacency(masker)
    assert adj.shape[0] == sum(m.sum() for m in mask.values())


def test_grid_adjacency_from_image_and_masker():
    import nibabel as nib
    from nilearn.maskers import NiftiMasker

    mask = np.zeros((5, 5, 5), dtype=np.int8)
    mask[1:4, 1:4, 1:4] = 1
    img = nib.Nifti1Image(mask, np.eye(4))
    a = grid_adjacency(img)
    b = grid_adjacency(NiftiMasker(img, standardize=None).fit())
    assert a.shape == (27, 27) and (a != b).nnz == 0
    assert a[13].nnz == 7  # centre voxel: itself and 6 face neighbours
    with pytest.raises(ValueError, match="not fitted"):
        grid_adjacency(NiftiMasker(img))
    with pytest.raises(ValueError, match="must be 3-D"):
        grid_adjacency(np.ones((3, 3)))


def test_group_cluster_test_finds_blob_on_grid():
    rng = np.random.default_rng(1)
    shape = (8, 8, 6)
    mask = np.ones(shape, dtype=bool)
    maps = rng.standard_normal((10, *shape))
    maps[:, 2:5, 2:5, 1:4] += 1.2  # blob of 27 voxels, d = 1.2
    maps = maps.reshape(10, -1)
    res = cluster_test(maps, grid_adjacency(mask), n_permutations=500, random_state=0)
    sig = res.significant(0.05).reshape(shape)
    blob = np.zeros(shape, dtype=bool)
    blob[2:5, 2:5, 1:4] = True
    assert sig[blob].mean() > 0.5
    assert sig[~ndimage.binary_dilation(blob, iterations=2)].sum() == 0


def test_group_cluster_test_finds_blob_on_mesh():
    rng = np.random.default_rng(2)
    coords, faces = _sheet_mesh(15, 15)
    blob = np.linalg.norm(coords[:, :2] - [7, 7], axis=1) <= 2.5
    maps = rng.standard_normal((12, coords.shape[0]))
    maps[:, blob] += 1.2
    res = cluster_test(maps, mesh_adjacency((coords, faces)), n_permutations=500, random_state=0)
    sig = res.significant(0.05)
    assert sig[blob].mean() > 0.5
    # every significant cluster holds the blob (clusters may reach a few noise vertices)
    for c, p in zip(res.clusters, res.pvalues):
        if p <= 0.05:
            assert blob[c].mean() > 0.5
    assert sig[np.linalg.norm(coords[:, :2] - [7, 7], axis=1) > 5].sum() == 0


def test_single_map_cluster_test_from_permutation_nulls():
    """One subject: encoding map with its circular-shift nulls, blob on a mesh."""
    rng = np.random.default_rng(3)
    coords, faces = _sheet_mesh(12, 12)
    n, v = 300, coords.shape[0]
    blob = np.linalg.norm(coords[:, :2] - [4, 4], axis=1) <= 2.0
    x = rng.standard_normal(n)
    y = rng.standard_normal((n, v))
    y[:, blob] += 0.2 * x[:, None]
    res = permutation_null(x, y, method="shift", n_permutations=300, return_null=True, random_state=0)
    adj = mesh_adjacency((coords, faces))
    cl = cluster_test(res, adj)
    sig = cl.significant(0.05)
    assert sig[blob].mean() > 0.6 and sig[~blob].mean() < 0.05
    with pytest.raises(ValueError, match="return_null=True"):
        cluster_test(permutation_null(x, y, n_permutations=10), adj)


def test_cluster_test_bad_input():
    adj = grid_adjacency(np.ones((4, 1, 1), dtype=bool))
    with pytest.raises(ValueError, match="same mask"):
        cluster_test(np.ones((3, 5)), adj)
    with pytest.raises(TypeError, match="scipy sparse"):
        cluster_test(np.ones((3, 4)), np.eye(4))
    with pytest.raises(ValueError, match="n_subjects >= 2"):
        cluster_test(np.ones((1, 4)), adj)
