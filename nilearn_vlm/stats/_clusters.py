"""Cluster-level inference on volumes and surfaces.

Adjacency comes from the mask grid (6-connected voxels) or from the triangles
of a mesh; clusters are connected supra-threshold voxels, scored by their mass
(sum of the statistic), and compared with the largest cluster mass of each null
map (family-wise over clusters).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components


def _mask_array(mask):
    """A 3-D boolean array from an array, a Nifti image or a Nifti masker."""
    if hasattr(mask, "mask_img_"):
        mask = mask.mask_img_
    elif hasattr(mask, "transform") and hasattr(mask, "mask_img"):
        raise ValueError("the masker is not fitted; call masker.fit() first (mask_img_ is needed)")
    if hasattr(mask, "get_fdata"):
        mask = np.asarray(mask.get_fdata())
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(
            "a volume mask must be 3-D (array, Nifti image or fitted NiftiMasker); "
            f"got shape {mask.shape}"
        )
    return mask != 0


def grid_adjacency(mask):
    """Adjacency of the voxels of a volume mask (faces shared: 6 neighbours).

    Voxels are ordered as a NiftiMasker orders them (C order of the mask),
    so the result matches ``masker.transform`` columns.

    Parameters
    ----------
    mask : ndarray of shape (nx, ny, nz), Nifti image, or fitted NiftiMasker
        Brain mask.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_voxels, n_voxels)
        Symmetric adjacency (diagonal included, as :mod:`mne.stats` accepts).

    Examples
    --------
    >>> adj = grid_adjacency(np.ones((2, 2, 1), dtype=bool))
    >>> adj.toarray().astype(int).tolist()
    [[1, 1, 1, 0], [1, 1, 0, 1], [1, 0, 1, 1], [0, 1, 1, 1]]
    """
    from sklearn.feature_extraction.image import grid_to_graph

    m = _mask_array(mask)
    return sparse.csr_matrix(grid_to_graph(*m.shape, mask=m))


def _mesh_parts(mesh):
    """List of (coordinates, faces) from the kinds of meshes nilearn and mne use."""
    if isinstance(mesh, str):
        from nilearn.datasets import load_fsaverage

        mesh = load_fsaverage(mesh)["pial"]
    if hasattr(mesh, "mesh") and hasattr(mesh, "data"):  # SurfaceImage
        mesh = mesh.mesh
    if hasattr(mesh, "parts"):  # PolyMesh
        return [(p.coordinates, p.faces) for p in mesh.parts.values()]
    if hasattr(mesh, "faces"):
        return [(mesh.coordinates, mesh.faces)]
    if isinstance(mesh, tuple | list) and len(mesh) == 2:
        return [(np.asarray(mesh[0]), np.asarray(mesh[1]))]
    raise TypeError(
        "mesh must be a fsaverage name ('fsaverage5'), a nilearn PolyMesh or SurfaceMesh, a "
        "SurfaceImage, a fitted SurfaceMasker, or a (coordinates, faces) tuple; "
        f"got {type(mesh).__name__}"
    )


def mesh_adjacency(mesh, mask=None):
    """Adjacency of mesh vertices that share a triangle (hemispheres unconnected).

    Parameters
    ----------
    mesh : str, PolyMesh, SurfaceMesh, SurfaceImage, SurfaceMasker or tuple
        A fsaverage name for :func:`nilearn.datasets.load_fsaverage`
        (``"fsaverage5"`` ships with nilearn), a nilearn mesh (parts in order,
        e.g. left then right), a surface image (its mesh), a fitted
        ``SurfaceMasker`` (its mesh and mask), or ``(coordinates, faces)``.
    mask : array-like of bool, shape (n_vertices,), optional
        Keep these vertices (in the order of the concatenated parts).

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_kept, n_kept)
        Built with :func:`mne.spatial_tris_adjacency`, diagonal included.

    Examples
    --------
    >>> faces = np.array([[0, 1, 2], [1, 2, 3]])
    >>> mesh_adjacency((np.zeros((4, 3)), faces)).toarray().astype(int).tolist()
    [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1]]
    """
    import mne

    if hasattr(mesh, "mask_img_"):
        if mask is None:
            parts = mesh.mask_img_.data.parts.values()
            mask = np.concatenate([np.asarray(p).ravel() for p in parts]) != 0
        mesh = mesh.mask_img_.mesh
    elif hasattr(mesh, "transform") and hasattr(mesh, "mask_img"):
        raise ValueError("the masker is not fitted; call masker.fit() first (mask_img_ is needed)")
    blocks = []
    for coords, faces in _mesh_parts(mesh):
        n_vert = np.asarray(coords).shape[0]
        adj = mne.spatial_tris_adjacency(np.asarray(faces), remap_vertices=False, verbose=False)
        adj = sparse.csr_matrix(adj)
        if adj.shape[0] < n_vert:  # vertices in no triangle
            adj.resize((n_vert, n_vert))
        blocks.append(adj)
    adj = sparse.block_diag(blocks, format="csr")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool).ravel()
        if mask.size != adj.shape[0]:
            raise ValueError(f"mask has {mask.size} entries but the mesh has {adj.shape[0]} vertices")
        keep = np.flatnonzero(mask)
        adj = adj[keep][:, keep]
    return sparse.csr_matrix(adj)


def find_clusters(statistic, threshold, adjacency, tail=1):
    """Connected supra-threshold clusters and their masses.

    Parameters
    ----------
    statistic : ndarray of shape (n_voxels,)
    threshold : float
        Cluster-forming threshold (positive); for ``tail=0`` both
        ``stat > threshold`` and ``stat < -threshold`` form clusters.
    adjacency : sparse matrix of shape (n_voxels, n_voxels)
    tail : {1, -1, 0}
        Positive, negative or both signs.

    Returns
    -------
    clusters : list of ndarray
        Voxel indices of each cluster.
    masses : ndarray
        Sum of ``|statistic|`` over each cluster.

    Examples
    --------
    >>> chain = grid_adjacency(np.ones((5, 1, 1), dtype=bool))
    >>> cl, mass = find_clusters(np.array([2.0, 3, 0, 4, 0]), 1.0, chain)
    >>> [c.tolist() for c in cl], mass.tolist()
    ([[0, 1], [3]], [5.0, 4.0])
    """
    statistic = np.asarray(statistic, dtype=float)
    adjacency = sparse.csr_matrix(adjacency)
    clusters, masses = [], []
    for sign in {1: (1,), -1: (-1,), 0: (1, -1)}[tail]:
        idx = np.flatnonzero(sign * statistic > threshold)
        if idx.size == 0:
            continue
        n_comp, lab = connected_components(adjacency[idx][:, idx], directed=False)
        w = np.bincount(lab, weights=np.abs(statistic[idx]), minlength=n_comp)
        order = np.argsort(lab, kind="stable")
        splits = np.split(idx[order], np.cumsum(np.bincount(lab, minlength=n_comp))[:-1])
        clusters.extend(splits)
        masses.extend(w.tolist())
    return clusters, np.asarray(masses, dtype=float)


@dataclass
class ClusterResult:
    """Clusters of a map with family-wise corrected cluster p-values.

    Attributes
    ----------
    statistic : ndarray of shape (n_voxels,)
        Map the clusters were formed on (t-values at group level).
    threshold : float
        Cluster-forming threshold.
    clusters : list of ndarray
        Voxel indices of each cluster.
    masses : ndarray of shape (n_clusters,)
        Cluster mass (sum of ``|statistic|``).
    pvalues : ndarray of shape (n_clusters,)
        Cluster-level FWE p-values.
    null_max : ndarray
        Largest cluster mass of each null map.
    """

    statistic: np.ndarray
    threshold: float
    clusters: list
    masses: np.ndarray
    pvalues: np.ndarray
    null_max: np.ndarray

    def significant(self, alpha=0.05):
        """Boolean map of voxels in clusters with ``p <= alpha``."""
        out = np.zeros(self.statistic.shape[0], dtype=bool)
        for c, p in zip(self.clusters, self.pvalues):
            if p <= alpha:
                out[c] = True
        return out


def _check_adjacency(adjacency, n_vox):
    if not sparse.issparse(adjacency):
        raise TypeError(
            "adjacency must be a scipy sparse matrix; build it with grid_adjacency(mask) or "
            "mesh_adjacency(mesh)"
        )
    if adjacency.shape != (n_vox, n_vox):
        raise ValueError(
            f"adjacency has shape {adjacency.shape} but the maps have {n_vox} voxels; build it "
            "from the same mask as the maps"
        )
    return sparse.csr_matrix(adjacency)


def cluster_test(
    maps,
    adjacency,
    *,
    null=None,
    threshold=None,
    tail=1,
    n_permutations=1024,
    masker=None,
    random_state=None,
    n_jobs=None,
):
    """Cluster-level inference with mesh or grid adjacency.

    Two uses:

    * **group level** (``maps`` of shape (n_subjects, n_voxels), no ``null``):
      sign-flip one-sample cluster test of
      :func:`mne.stats.permutation_cluster_1samp_test` on t-values;
    * **one map with its nulls** (``maps`` a :class:`PermutationResult` made
      with ``return_null=True``, or a 1-D map with ``null`` of shape
      (n_nulls, n_voxels)): clusters of the map against the largest cluster
      mass of each null map.

    Parameters
    ----------
    maps : ndarray, list of images, or PermutationResult
        Subjects' maps (images need ``masker``), or one map.
    adjacency : scipy.sparse matrix of shape (n_voxels, n_voxels)
        From :func:`grid_adjacency` or :func:`mesh_adjacency`.
    null : ndarray of shape (n_nulls, n_voxels), optional
        Null maps of a single map.
    threshold : float, optional
        Cluster-forming threshold. Group level: t-value (default: mne's, the
        t of p < 0.05 for ``tail``). One map: statistic value (default: the
        99th percentile of all null values, a voxel-level p of about 0.01).
    tail : {1, -1, 0}, default=1
        Positive, negative or two-sided clusters.
    n_permutations : int, default=1024
        Sign flips at group level (exact enumeration when it exceeds the number
        of distinct flips).
    masker : nilearn masker, optional
        Fitted masker turning a list of images into ``(n_subjects, n_voxels)``.
    random_state : int or None
        Seed of the sign flips.
    n_jobs : int, optional
        Jobs for mne.

    Returns
    -------
    ClusterResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> maps = rng.standard_normal((8, 30))
    >>> maps[:, 10:15] += 2.0
    >>> chain = grid_adjacency(np.ones((30, 1, 1), dtype=bool))
    >>> res = cluster_test(maps, chain, n_permutations=256, random_state=0)
    >>> bool(res.significant(0.05)[10:15].all())
    True
    """
    if tail not in (1, -1, 0):
        raise ValueError(f"tail must be 1, -1 or 0; got {tail!r}")
    if hasattr(maps, "null_max") and hasattr(maps, "statistic"):  # PermutationResult
        if maps.null is None:
            raise ValueError(
                "the PermutationResult holds no null maps; "
                "rerun permutation_null(..., return_null=True)"
            )
        maps, null = maps.statistic, maps.null
    if masker is not None:
        from nilearn_vlm.stats._group import _maps_to_array

        maps = _maps_to_array(maps, masker)
    maps = np.asarray(maps, dtype=float)
    if null is not None:
        if maps.ndim != 1:
            raise ValueError(
                f"with null maps, pass one map of shape (n_voxels,); got shape {maps.shape}"
            )
        null = np.asarray(null, dtype=float)
        if null.ndim != 2 or null.shape[1] != maps.shape[0]:
            raise ValueError(f"null must have shape (n_nulls, {maps.shape[0]}); got {null.shape}")
        adjacency = _check_adjacency(adjacency, maps.shape[0])
        if threshold is None:
            vals = np.abs(null) if tail == 0 else tail * null
            threshold = float(np.quantile(vals, 0.99))
        clusters, masses = find_clusters(maps, threshold, adjacency, tail)
        null_max = np.array(
            [np.max(find_clusters(z, threshold, adjacency, tail)[1], initial=0.0) for z in null]
        )
        srt = np.sort(null_max)
        pvals = (1.0 + srt.size - np.searchsorted(srt, masses, side="left")) / (1.0 + srt.size)
        return ClusterResult(maps, float(threshold), clusters, masses, pvals, null_max)

    from mne.stats import permutation_cluster_1samp_test

    from nilearn_vlm.stats._group import _mne_seed

    if maps.ndim != 2 or maps.shape[0] < 2:
        raise ValueError(
            "group-level cluster test needs maps of shape (n_subjects >= 2, n_voxels); "
            f"got {maps.shape}. "
            "For one map, pass null= (or a PermutationResult with return_null=True)."
        )
    if not np.all(np.isfinite(maps)):
        raise ValueError("maps contain NaN or infinite values; mask them out first")
    adjacency = _check_adjacency(adjacency, maps.shape[1])
    t_obs, clusters, pvals, h0 = permutation_cluster_1samp_test(
        maps, threshold=threshold, n_permutations=n_permutations, tail=tail, adjacency=adjacency,
        out_type="indices", n_jobs=n_jobs, verbose=False,
        **_mne_seed(permutation_cluster_1samp_test, random_state),
    )
    clusters = [np.asarray(c[0]) for c in clusters]
    masses = np.array([np.abs(t_obs[c].sum()) for c in clusters], dtype=float)
    if threshold is None:
        from scipy import stats

        p = 0.05 / (1 + (tail == 0))
        threshold = -stats.t.ppf(p, maps.shape[0] - 1)
    return ClusterResult(
        t_obs, float(np.abs(threshold)), clusters, masses, np.asarray(pvals), np.abs(h0)
    )
