"""Surrogate maps that keep a map's size and spatial autocorrelation and move it at random.

The redundancy analysis asks whether several significant-voxel maps meet
more than maps placed independently of each other would. Its null moves
every map on its own, keeping the map's size and smoothness:

- volumes: :class:`FieldBank`, smooth Gaussian random fields on the mask,
  ranked once; a map of ``m`` voxels becomes the ``m`` highest voxels of a
  field whose smoothness gives top-``m`` sets the map's join count;
- surfaces (fsaverage meshes): :class:`SpinBank`, random rotations of the
  sphere (the spin test, Alexander-Bloch et al. 2018), each map with its
  own rotation.

Both are built once per mask or mesh and reused for every map of every
subject; with ``memory=`` (a folder, like the activation cache) they are
written to ``<memory>/nilearn_vlm_surrogates/`` under a key of everything
that defines them, and read back on the next call.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from scipy import ndimage, sparse

from nilearn_vlm._cache import content_key

_SUBDIR = "nilearn_vlm_surrogates"
_FORMAT = 1
#: Default smoothness levels (FWHM in mm) of a :class:`FieldBank`.
DEFAULT_FWHMS = (0.0, 4.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0)


def cooccurrence(sets, membership):
    """Co-occurrence of significant maps within each network.

    ``R_j = sum_v c_v (c_v - 1) / sum_v c_v`` over the voxels ``v`` of network
    ``j``, with ``c_v`` the number of maps significant at ``v``: the mean
    number of *other* maps sharing a significant voxel of a map (0 when no
    two maps meet, ``n_maps - 1`` when all coincide). Unlike a mean pairwise
    Dice it is not diluted by the many disjoint pairs.

    Parameters
    ----------
    sets : array-like (..., n_maps, n_voxels)
        Non-zero where significant.
    membership : array-like of bool (n_networks, n_voxels)

    Returns
    -------
    ndarray (..., n_networks)

    Examples
    --------
    >>> cooccurrence([[1, 1, 0], [1, 0, 0]], np.ones((1, 3), bool)).tolist()
    [0.6666666666666666]
    """
    c = (np.asarray(sets) != 0).sum(-2).astype(np.float64)
    return cooccurrence_from_counts(c, membership)


def cooccurrence_from_counts(counts, membership):
    """:func:`cooccurrence` from per-voxel map counts ``c_v`` (..., n_voxels)."""
    c = np.asarray(counts, dtype=np.float64)
    mf = np.asarray(membership, dtype=np.float64).T
    num, den = (c * (c - 1)) @ mf, c @ mf
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def _cache_path(memory, kind, parts):
    if memory is None:
        return None
    folder = Path(memory) / _SUBDIR
    return folder / f"{kind}_{content_key({'kind': kind, 'format': _FORMAT, **parts})[:32]}.npz"


def _atomic_savez(path, **arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _digest(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _grid_adjacency(ijk, shape):
    n = len(ijk)
    index = -np.ones(shape, dtype=np.int64)
    index[tuple(ijk.T)] = np.arange(n)
    rows, cols = [], []
    for axis in range(3):
        for step in (-1, 1):
            nb = ijk.copy()
            nb[:, axis] += step
            ok = (nb[:, axis] >= 0) & (nb[:, axis] < shape[axis])
            j = np.full(n, -1)
            j[ok] = index[tuple(nb[ok].T)]
            keep = j >= 0
            rows.append(np.flatnonzero(keep))
            cols.append(j[keep])
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sparse.csr_matrix((np.ones(r.size, np.float32), (r, c)), shape=(n, n))



def map_sets(sets, n_voxels, what="voxels", of="the mask"):
    """Boolean maps ``(n_maps, n_voxels)`` from ``sets``, checked against the surrogates' space.

    >>> map_sets([[0, 2, 0]], 3)
    array([[False,  True, False]])
    """
    sets = np.atleast_2d(np.asarray(sets) != 0)
    if sets.shape[1] != n_voxels:
        raise ValueError(f"maps have {sets.shape[1]} {what} but {of} {n_voxels}")
    return sets

class FieldBank:
    """Surrogate maps on a volume mask from smooth Gaussian random fields, built once per mask.

    A binary map of ``m`` voxels is replaced by the ``m`` highest voxels of a
    random field (white noise on the grid smoothed by a Gaussian of the
    chosen FWHM, restricted to the mask). The smoothness level is the one
    whose top-``m`` sets have the map's join count (the fraction of its
    voxels' 6-neighbours inside the map): each surrogate keeps the map's size
    and spatial autocorrelation, and lands at a random place independent of
    every other map. Fields are ranked once, so a surrogate costs ``O(m)``.

    Build it with :meth:`from_mask` (cached on disk with ``memory=``).

    Attributes
    ----------
    ranks_ : ndarray (n_levels, n_fields, n_voxels)
        Mask voxel indices of each field, highest value first.
    fwhms : tuple of float
        Smoothness level of each row (mm).
    join_table_ : ndarray (n_levels, n_sizes)
        Mean join count of top-``m`` sets at the sizes ``sizes_``.

    Examples
    --------
    >>> mask = np.zeros((10, 10, 10), bool); mask[1:9, 1:9, 1:9] = True
    >>> bank = FieldBank.from_mask(mask, voxel_size=4.0, n_fields=20, fwhms=(0, 8), random_state=0)
    >>> sets = np.zeros((2, int(mask.sum())), bool); sets[0, :50] = True; sets[1, 100:140] = True
    >>> counts = np.vstack(list(bank.counts(sets, 10, random_state=0)))
    >>> counts.shape, counts.sum(axis=1).tolist() == [90.0] * 10
    ((10, 512), True)
    """

    def __init__(self, ranks, fwhms, ijk, shape, join_table, sizes):
        self.ranks_ = ranks
        self.fwhms = tuple(float(f) for f in fwhms)
        self.ijk = np.asarray(ijk)
        self.shape = tuple(int(s) for s in shape)
        self.join_table_ = np.asarray(join_table, dtype=float)
        self.sizes_ = np.asarray(sizes)
        self.adjacency_ = _grid_adjacency(self.ijk, self.shape)
        self.degree_ = np.asarray(self.adjacency_.sum(1)).ravel()

    @classmethod
    def from_mask(cls, mask, voxel_size, n_fields=128, fwhms=DEFAULT_FWHMS, random_state=0, memory=None):
        """Build (or read from ``memory``) the bank of a 3-D boolean mask.

        Parameters
        ----------
        mask : ndarray of bool (x, y, z)
            The voxels, in the order of ``np.argwhere(mask)`` (a NIfTI
            masker's order).
        voxel_size : float
            mm per voxel (isotropic grid assumed; the mean is used otherwise).
        n_fields : int, default=128
            Fields per smoothness level: each draw gives every map its own
            field, so at most ``n_fields`` non-empty maps per test (the
            pipeline's 64 atoms fit). The build costs one Gaussian filter of
            the grid per field and level (about a minute at 4 mm).
        fwhms : sequence of float
            Smoothness levels in mm (0 is white noise: a plain permutation).
        random_state : int, default=0
        memory : str, Path or None
            Cache folder; the bank is stored under
            ``<memory>/nilearn_vlm_surrogates/`` (written atomically) and
            reused by every later call with the same mask and parameters.

        Returns
        -------
        FieldBank
        """
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 3 or not mask.any():
            raise ValueError(f"mask must be a non-empty 3-D boolean array, got shape {mask.shape}")
        ijk = np.argwhere(mask)
        parts = {"mask": _digest(np.packbits(mask)), "shape": list(mask.shape), "voxel_size": float(voxel_size),
                 "n_fields": int(n_fields), "fwhms": [float(f) for f in fwhms], "seed": int(random_state)}
        path = _cache_path(memory, "fieldbank", parts)
        if path is not None and path.exists():
            with np.load(path) as z:
                return cls(z["ranks"], z["fwhms"], ijk, mask.shape, z["join_table"], z["sizes"])
        rng = np.random.default_rng(random_state)
        n = len(ijk)
        ranks = np.empty((len(fwhms), int(n_fields), n), dtype=np.int16 if n < 2**15 else np.int32)
        for li, fwhm in enumerate(fwhms):
            sigma = float(fwhm) / (2 * np.sqrt(2 * np.log(2))) / float(voxel_size)
            for f in range(int(n_fields)):
                noise = rng.standard_normal(mask.shape).astype(np.float32)
                field = ndimage.gaussian_filter(noise, sigma, mode="wrap") if sigma > 0 else noise
                ranks[li, f] = np.argsort(-field[mask], kind="stable")
        sizes = np.unique(np.geomspace(1, max(n // 2, 2), 40).astype(int))
        bank = cls(ranks, fwhms, ijk, mask.shape, np.zeros((len(fwhms), sizes.size)), sizes)
        probe = min(40, int(n_fields))
        for li in range(len(fwhms)):
            for si, m in enumerate(sizes):
                x = np.zeros((probe, n), np.float32)
                x[np.arange(probe)[:, None], ranks[li, :probe, :m]] = 1
                bank.join_table_[li, si] = np.mean(bank.join_count(x))
        if path is not None:
            _atomic_savez(path, ranks=ranks, fwhms=np.asarray(fwhms, float), join_table=bank.join_table_,
                          sizes=sizes)
        return bank

    @classmethod
    def from_space(cls, space, memory=None, **kwargs):
        """The bank of a NIfTI :class:`~nilearn_vlm.spaces.ImageSpace` (its masker's mask).

        Parameters
        ----------
        space : nilearn_vlm.spaces.ImageSpace
            Of kind ``"nifti"``.
        memory : str, Path or None
        **kwargs
            Passed to :meth:`from_mask`.
        """
        if getattr(space, "kind", None) != "nifti":
            raise ValueError(
                f"a FieldBank needs a volume (NIfTI) space, got {getattr(space, 'kind', type(space).__name__)!r}; "
                "use SpinBank for fsaverage surfaces"
            )
        img = space.masker.mask_img_
        mask = np.asarray(img.dataobj) > 0
        voxel_size = float(np.mean(np.abs(np.diag(img.affine)[:3])))
        return cls.from_mask(mask, voxel_size, memory=memory, **kwargs)

    @property
    def n_voxels(self):
        """Number of mask voxels."""
        return int(self.ranks_.shape[2])

    def join_count(self, sets):
        """Fraction of each map's voxels' 6-neighbours (inside the mask) that are in the map."""
        x = np.atleast_2d(np.asarray(sets, np.float32))
        inner = np.asarray(self.adjacency_ @ x.T).T
        with np.errstate(invalid="ignore", divide="ignore"):
            return (inner * x).sum(1) / np.maximum((self.degree_ * x).sum(1), 1)

    def level_of(self, sets):
        """Smoothness level (index into ``fwhms``) matching each map's join count at its size."""
        sets = np.atleast_2d(np.asarray(sets) != 0)
        sizes = sets.sum(1)
        joins = self.join_count(sets)
        levels = np.zeros(len(sets), int)
        logs = np.log(self.sizes_)
        for k, (m, j) in enumerate(zip(sizes, joins)):
            if m == 0:
                continue
            col = np.array([np.interp(np.log(m), logs, row) for row in self.join_table_])
            levels[k] = int(np.argmin(np.abs(col - j)))
        return levels

    def counts(self, sets, n_draws, random_state=None, chunk=64):
        """Per-voxel map counts ``c_v`` of independently moved maps, ``chunk`` draws at a time.

        Each draw gives every map its own field (no field twice in a draw).

        Yields
        ------
        ndarray of float32 (n_chunk, n_voxels)
        """
        rng = np.random.default_rng(random_state)
        sets = map_sets(sets, self.n_voxels, of="the bank's mask")
        sizes = sets.sum(1)
        keep = np.flatnonzero(sizes > 0)
        levels = self.level_of(sets[keep])
        n_fields, n = self.ranks_.shape[1], self.n_voxels
        if keep.size > n_fields:
            raise ValueError(f"{keep.size} non-empty maps but {n_fields} fields per level; build the bank "
                             f"with n_fields >= {keep.size}")
        for start in range(0, n_draws, chunk):
            c = min(chunk, n_draws - start)
            fields = np.argsort(rng.random((c, n_fields)), axis=1)[:, :keep.size]
            flat = [np.zeros(0, np.int64)]
            for mi, (m, lev) in enumerate(zip(sizes[keep], levels)):
                idx = self.ranks_[lev, fields[:, mi], :m].astype(np.int64)
                flat.append((idx + (np.arange(c) * n)[:, None]).ravel())
            yield np.bincount(np.concatenate(flat), minlength=c * n).reshape(c, n).astype(np.float32)


def spin_permutations(sphere_left, sphere_right, n_rotations, random_state=None):
    """Vertex permutations of random rotations of two hemisphere spheres (the spin test).

    The same random rotation is applied to both hemispheres, the right one
    reflected across the midline (Alexander-Bloch et al. 2018); each vertex
    takes the index of its nearest vertex on the rotated sphere.

    Parameters
    ----------
    sphere_left, sphere_right : ndarray (n_left, 3), (n_right, 3)
        Vertex coordinates of the spheres (centred at 0).
    n_rotations : int
    random_state : int, Generator or None

    Returns
    -------
    ndarray of int32 (n_rotations, n_left + n_right)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> pts = rng.standard_normal((50, 3)); pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    >>> perms = spin_permutations(pts, pts, 3, random_state=0)
    >>> perms.shape, int(perms[:, :50].max()) < 50 <= int(perms[:, 50:].min())
    ((3, 100), True)
    """
    from scipy.spatial import cKDTree
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(random_state)
    left, right = np.asarray(sphere_left, float), np.asarray(sphere_right, float)
    rots = Rotation.random(int(n_rotations), random_state=int(rng.integers(2**31))).as_matrix()
    tl, tr = cKDTree(left), cKDTree(right)
    reflect = np.diag([-1.0, 1.0, 1.0])
    out = np.empty((len(rots), len(left) + len(right)), dtype=np.int32)
    for i, R in enumerate(rots):
        out[i, :len(left)] = tl.query(left @ R.T)[1]
        out[i, len(left):] = tr.query(right @ (reflect @ R @ reflect).T)[1] + len(left)
    return out


class SpinBank:
    """Spin-test surrogates on a two-hemisphere surface: rotations drawn once, reused for every map.

    Parameters
    ----------
    permutations : ndarray of int (n_rotations, n_vertices)
        From :func:`spin_permutations`.

    Examples
    --------
    >>> perms = np.array([[1, 0, 2, 3], [0, 1, 3, 2]])
    >>> counts = np.vstack(list(SpinBank(perms).counts([[1, 0, 0, 0], [1, 0, 0, 0]], 4, random_state=0)))
    >>> counts.sum(axis=1).tolist()
    [2.0, 2.0, 2.0, 2.0]
    """

    def __init__(self, permutations):
        self.permutations_ = np.asarray(permutations)

    @classmethod
    def fsaverage(cls, mesh="fsaverage5", n_rotations=1000, random_state=0, memory=None):
        """Spins of nilearn's fsaverage sphere (both hemispheres, left first), cached with ``memory=``."""
        from nilearn.datasets import load_fsaverage

        path = _cache_path(memory, "spins", {"mesh": mesh, "n": int(n_rotations), "seed": int(random_state)})
        if path is not None and path.exists():
            with np.load(path) as z:
                return cls(z["permutations"])
        sphere = load_fsaverage(mesh)["sphere"]
        perms = spin_permutations(sphere.parts["left"].coordinates, sphere.parts["right"].coordinates,
                                  n_rotations, random_state)
        if path is not None:
            _atomic_savez(path, permutations=perms)
        return cls(perms)

    @classmethod
    def from_space(cls, space, memory=None, n_rotations=1000, random_state=0):
        """The spins of a surface :class:`~nilearn_vlm.spaces.ImageSpace` on an fsaverage mesh.

        The mesh is recognised by its number of vertices (fsaverage3 to
        fsaverage7, both hemispheres).
        """
        n = int(space.n_voxels)
        meshes = {2 * (10 * 4**k + 2): f"fsaverage{k}" for k in range(3, 8)}
        meshes[2 * 163842] = "fsaverage"
        if getattr(space, "kind", None) != "surface" or n not in meshes:
            raise ValueError(
                f"spin surrogates need an fsaverage surface space (both hemispheres); got "
                f"{getattr(space, 'kind', '?')!r} with {n} vertices. Pass surrogates= (a FieldBank, a SpinBank "
                "or an array of vertex permutations) for other spaces"
            )
        return cls.fsaverage(meshes[n], n_rotations, random_state, memory)

    @property
    def n_voxels(self):
        """Number of vertices."""
        return int(self.permutations_.shape[1])

    def counts(self, sets, n_draws, random_state=None, chunk=64):
        """Per-vertex map counts of independently rotated maps (each map its own rotation per draw).

        Yields
        ------
        ndarray of float32 (n_chunk, n_vertices)
        """
        rng = np.random.default_rng(random_state)
        sets = map_sets(sets, self.n_voxels, "vertices", "the spins")
        sets = sets[sets.any(1)].astype(np.float32)
        for start in range(0, n_draws, chunk):
            c = min(chunk, n_draws - start)
            pick = rng.integers(len(self.permutations_), size=(c, len(sets)))
            counts = np.zeros((c, sets.shape[1]), np.float32)
            for k in range(len(sets)):
                counts += sets[k][self.permutations_[pick[:, k]]]
            yield counts
