"""Volume surrogates that move each cluster of a map rigidly: size, shape and autocorrelation kept exactly.

:class:`~nilearn_vlm.analyses.FieldBank` matches a map's size and join count
with the top voxels of a smooth random field. Measured on independently
placed compact maps (1-2 clusters each), those surrogates break every map into
about 19 pieces (largest piece 32% of the map, against 81%): the overlaps of
spread-out surrogates with a network vary less than those of compact maps, and
the co-occurrence test rejected 0.062 [0.043, 0.087] of 500 nulls (Holm over
9 networks). :class:`ClusterMoves` keeps each cluster whole instead.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from nilearn_vlm.analyses._surrogates import map_sets

#: The 48 orientations of the voxel grid (axis permutations x sign flips).
_PERMS = np.array([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])
_FLIPS = np.array([[a, b, c] for a in (1, -1) for b in (1, -1) for c in (1, -1)])


class ClusterMoves:
    """Surrogates on a volume mask: every cluster of every map moved rigidly to a random place inside the mask.

    A map's clusters (6-connected components) are each given a random
    orientation of the grid (one of 48 rotations and reflections) and a
    random position (a mask voxel for the cluster's anchor), redrawn until
    every voxel of the cluster lands in the mask and on no voxel already
    taken by the map's other clusters. Each surrogate keeps the map's size
    and the shape of each cluster (so its spatial autocorrelation) exactly,
    and lands independently of every other map. A cluster that finds no
    place in ``n_tries`` candidates stays where it is (conservative: the
    null then keeps its observed overlaps); ``n_unmoved_`` counts them.

    Parameters
    ----------
    mask : ndarray of bool (x, y, z)
        The voxels, in the order of ``np.argwhere(mask)`` (a NIfTI
        masker's order).
    n_tries : int, default=64
        Candidate placements per cluster and draw.

    Examples
    --------
    >>> mask = np.zeros((12, 12, 12), bool); mask[1:11, 1:11, 1:11] = True
    >>> moves = ClusterMoves(mask)
    >>> sets = np.zeros((2, int(mask.sum())), bool); sets[0, :30] = True; sets[1, 500:520] = True
    >>> counts = np.vstack(list(moves.counts(sets, 5, random_state=0)))
    >>> counts.shape, counts.sum(axis=1).tolist() == [50.0] * 5
    ((5, 1000), True)
    """

    def __init__(self, mask, n_tries=64):
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 3 or not mask.any():
            raise ValueError(f"mask must be a non-empty 3-D boolean array, got shape {mask.shape}")
        self.mask = mask
        self.ijk = np.argwhere(mask)
        self.index_ = -np.ones(mask.shape, dtype=np.int64)
        self.index_[tuple(self.ijk.T)] = np.arange(len(self.ijk))
        self.n_tries = int(n_tries)
        self.n_unmoved_ = 0

    @classmethod
    def from_space(cls, space, **kwargs):
        """The surrogates of a NIfTI :class:`~nilearn_vlm.spaces.ImageSpace` (its masker's mask)."""
        if getattr(space, "kind", None) != "nifti":
            raise ValueError(
                f"ClusterMoves needs a volume (NIfTI) space, got {getattr(space, 'kind', type(space).__name__)!r}; "
                "use SpinBank for fsaverage surfaces"
            )
        return cls(np.asarray(space.masker.mask_img_.dataobj) > 0, **kwargs)

    @property
    def n_voxels(self):
        """Number of mask voxels."""
        return int(len(self.ijk))

    def clusters(self, set_):
        """The 6-connected clusters of one map, largest first (the hardest to place).

        Returns
        -------
        list of (oriented, voxels)
            ``oriented``: (48, n_k, 3) integer grid offsets from the
            cluster's rounded centroid in each orientation (the first is
            the observed one); ``voxels``: its mask indices.
        """
        vol = np.zeros(self.mask.shape, bool)
        vol[tuple(self.ijk[np.asarray(set_) != 0].T)] = True
        labels, n = ndimage.label(vol)
        out = []
        for k in range(1, n + 1):
            pts = np.argwhere(labels == k)
            offsets = pts - np.rint(pts.mean(0)).astype(np.int64)
            oriented = np.stack([offsets[:, p] * f for p in _PERMS for f in _FLIPS])  # (48, n_k, 3)
            out.append((oriented, self.index_[tuple(pts.T)]))
        return sorted(out, key=lambda c: len(c[1]), reverse=True)

    def _place(self, flat_offsets, observed, taken, lookup, anchors, rng):
        """Mask indices (n_draws, n_k) of one cluster placed in every draw, avoiding each draw's ``taken``.

        Candidates are uniform over (orientation, anchor voxel); the first
        valid one of a draw is uniform over the valid placements. 8
        candidates per draw first, then ``n_tries`` for the draws still
        without a place; a draw with none keeps the observed voxels.
        ``lookup``: mask index per voxel of a grid padded with -1 wider than
        any cluster (no bounds checks); ``anchors``: flat padded index of
        every mask voxel. Candidates are screened on a few voxels (the
        cluster's extremes) before the full check.
        """
        n_draws, size = taken.shape[0], flat_offsets.shape[1]
        probe = np.unique(np.r_[flat_offsets[0].argmin(), flat_offsets[0].argmax(),
                                np.linspace(0, size - 1, min(size, 14)).astype(int)])
        out = np.tile(observed, (n_draws, 1))
        todo = np.arange(n_draws)
        for n_try in (8, self.n_tries):
            if not todo.size:
                break
            o = rng.integers(48, size=(todo.size, n_try))
            base = anchors[rng.integers(self.n_voxels, size=(todo.size, n_try))]
            pv = lookup[flat_offsets[o][..., probe] + base[..., None]]
            screened = (pv >= 0).all(-1) & ~taken[todo[:, None, None], np.maximum(pv, 0)].any(-1)
            dd, tt = np.nonzero(screened)  # row-major: each draw's candidates in their drawn order
            vox = lookup[flat_offsets[o[dd, tt]] + base[dd, tt][:, None]]
            ok = (vox >= 0).all(1) & ~taken[todo[dd][:, None], np.maximum(vox, 0)].any(1)
            placed, first = np.unique(dd[ok], return_index=True)
            out[todo[placed]] = vox[ok][first]
            todo = np.delete(todo, placed)
        self.n_unmoved_ += int(todo.size)
        return out

    def counts(self, sets, n_draws, random_state=None, chunk=64):
        """Per-voxel map counts ``c_v`` of independently moved maps, ``chunk`` draws at a time.

        Yields
        ------
        ndarray of float32 (n_chunk, n_voxels)
        """
        rng = np.random.default_rng(random_state)
        sets = map_sets(sets, self.n_voxels)
        maps = [self.clusters(s) for s in sets if s.any()]
        pad = 1 + max(int(np.abs(o).max()) for cl in maps for o, _ in cl) if maps else 1
        grid = np.pad(self.index_, pad, constant_values=-1)
        strides = np.array([grid.shape[1] * grid.shape[2], grid.shape[2], 1])
        lookup, anchors = grid.ravel(), (self.ijk + pad) @ strides
        flat = [[(oriented @ strides, observed) for oriented, observed in cl] for cl in maps]
        self.n_unmoved_ = 0
        for start in range(0, n_draws, chunk):
            c = min(chunk, n_draws - start)
            out = np.zeros((c, self.n_voxels), np.float32)
            for clusters in flat:
                taken = np.zeros((c, self.n_voxels), bool)
                for offsets, observed in clusters:
                    taken[np.arange(c)[:, None], self._place(offsets, observed, taken, lookup, anchors, rng)] = True
                out += taken
            yield out
