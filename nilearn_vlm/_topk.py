"""Running top-k units by |value| per voxel (the blocks of :mod:`nilearn_vlm.maps`)."""

import numpy as np


class TopK:
    """Running top-k by |value| per column for one voxel chunk."""

    def __init__(self, k, n_cols):
        self.k = k
        self.units = np.full((k, n_cols), -1, dtype=np.int64)
        self.values = np.zeros((k, n_cols), dtype=np.float32)
        self.absval = np.full((k, n_cols), -np.inf, dtype=np.float32)
        self.floor = np.full(n_cols, -np.inf, dtype=np.float32)

    def update(self, block, absblock, unit0, mask):
        k = self.k
        n_cols = block.shape[1]
        first = not np.isfinite(self.floor).all()
        if first and block.shape[0] > k:
            # first block: the k-th largest |value| of a row subset is a floor
            # that at least k entries of every column clear (ties included)
            sub = np.ascontiguousarray(absblock[: max(16 * k, 1024)].T)
            floor = np.partition(sub, sub.shape[1] - k, axis=1)[:, -k]
            np.greater_equal(absblock, floor, out=mask)
        elif first:
            mask[...] = True
        else:
            np.greater(absblock, self.floor, out=mask)
        flat = np.flatnonzero(mask)
        if flat.size == 0:
            return
        rows, cols = np.divmod(flat, n_cols)
        cand_abs = absblock.ravel()[flat]
        cand_val = block.ravel()[flat]
        cand_unit = rows + unit0
        if not first:  # merge with the current top-k
            cur_cols = np.broadcast_to(np.arange(n_cols), (k, n_cols)).ravel()
            cols = np.concatenate([cur_cols, cols])
            cand_abs = np.concatenate([self.absval.ravel(), cand_abs])
            cand_val = np.concatenate([self.values.ravel(), cand_val])
            cand_unit = np.concatenate([self.units.ravel(), cand_unit])
        # one sort: column, then |value| descending (fraction in [0, 0.5])
        top = float(cand_abs.max()) * (1 + 1e-6) or 1.0
        key = cols + 0.5 * (1.0 - cand_abs.astype(np.float64) / top)
        order = np.argsort(key, kind="stable")
        starts = np.searchsorted(cols[order], np.arange(n_cols))
        take = order[(starts[:, None] + np.arange(k)[None, :]).T]  # (k, n_cols)
        self.absval = cand_abs[take]
        self.values = cand_val[take]
        self.units = cand_unit[take]
        self.floor = self.absval[-1].copy()
