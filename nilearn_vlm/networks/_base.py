"""Atlas contract: labels on the data's grid, and the atlas base classes.

An atlas is any object with ``name``, ``space``, ``networks`` and a
``load(target=None)`` method returning :class:`AtlasLabels`. Labels are only
resampled within a space family; asking an atlas for data of another family
raises :class:`~nilearn_vlm.spaces.SpaceMismatchError` (no silent mapping
between spaces). Space names and target resolution live in
:mod:`nilearn_vlm.spaces`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nilearn_vlm.networks._canonical import canonical_network
from nilearn_vlm.spaces import SpaceMismatchError, canonical_space, resolve_target


@dataclass
class AtlasLabels:
    """Labels of one atlas on the data's grid.

    Attributes
    ----------
    atlas : str
        Name of the atlas.
    space : str
        Space family of the labels.
    labels : ndarray of int, shape (n_voxels,)
        Label of each voxel (or grayordinate); 0 is background.
    lookup : pandas.DataFrame
        One row per label with columns ``index`` (the label value),
        ``name`` (the atlas's own name) and ``canonical`` (a coarse name shared
        across atlases, see :func:`canonical_network`; empty when none fits).
    description : str
        Definition and references.
    """

    atlas: str
    space: str
    labels: np.ndarray
    lookup: pd.DataFrame
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def n_voxels(self):
        """Number of voxels the labels cover."""
        return int(self.labels.shape[0])

    def membership(self, level="name"):
        """Boolean network membership.

        Parameters
        ----------
        level : {"name", "canonical"}
            ``"name"`` gives one row per label of the atlas; ``"canonical"``
            merges labels sharing a canonical name (labels without one drop).

        Returns
        -------
        names : list of str
        membership : ndarray of bool, shape (n_networks, n_voxels)
        """
        if level not in ("name", "canonical"):
            raise ValueError(f"level must be 'name' or 'canonical', got {level!r}")
        names, rows = [], []
        if level == "name":
            for index, name in zip(self.lookup["index"], self.lookup["name"]):
                names.append(str(name))
                rows.append(self.labels == int(index))
        else:
            for canon, group in self.lookup.groupby("canonical", sort=False):
                if not canon:
                    continue
                names.append(str(canon))
                rows.append(np.isin(self.labels, group["index"].to_numpy()))
        mat = np.vstack(rows) if rows else np.zeros((0, self.n_voxels), dtype=bool)
        return names, mat


def make_lookup(indices, names):
    """The lookup table of :class:`AtlasLabels`, with canonical network names.

    For atlas authors building :class:`AtlasLabels` themselves.

    Parameters
    ----------
    indices : sequence of int
        Label values, one per network (0, the background, is not listed).
    names : sequence of str
        The atlas's own name of each label.

    Returns
    -------
    pandas.DataFrame
        Columns ``index``, ``name`` and ``canonical`` (see
        :func:`canonical_network`; empty when no canonical name fits).

    Examples
    --------
    >>> from nilearn_vlm.networks import make_lookup
    >>> make_lookup([1, 2], ["Visual", "DefaultMode"])
       index         name     canonical
    0      1       Visual        vision
    1      2  DefaultMode  default mode
    """
    names = [str(n) for n in names]
    return pd.DataFrame(
        {
            "index": np.asarray(indices, dtype=int),
            "name": names,
            "canonical": [canonical_network(n) or "" for n in names],
        }
    )


class BaseAtlas:
    """Base class of the built-in atlases.

    Subclasses set ``name``, ``space``, ``description`` and implement
    ``_load(target)`` for a resolved :class:`~nilearn_vlm.spaces.Target` of
    their family.
    """

    name = None
    space = None
    description = ""

    @property
    def networks(self):
        """Names of the atlas's networks (or regions), background excluded."""
        return list(self._names())

    def _names(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def load(self, target=None):
        """Labels on the data's grid.

        Parameters
        ----------
        target : None, str, int, image, masker or ImageSpace
            The data's space: ``None`` (the atlas's default grid), a space name,
            a mask image (NIfTI, taken as MNI152), a fitted or mask-given
            nilearn masker, a CIFTI image or a grayordinate count (91,282 or the
            59,412 cortical ones), a surface image/mesh, or a
            :class:`nilearn_vlm.spaces.ImageSpace` or a fitted
            ``VoxelEncoder``/``VoxelGLM`` (see
            :func:`nilearn_vlm.spaces.resolve_target`).

        Returns
        -------
        AtlasLabels

        Raises
        ------
        SpaceMismatchError
            The target belongs to another space family than the atlas.
        """
        tgt = resolve_target(target, default_space=self.space)
        if tgt.space != canonical_space(self.space):
            raise SpaceMismatchError(
                f"atlas {self.name!r} is defined in {self.space} but the data are in "
                f"{tgt.space}; nilearn_vlm never maps labels between spaces silently. "
                f"Use an atlas of the {tgt.space} family (see "
                "nilearn_vlm.networks.list_atlases()) or bring the data into "
                f"{self.space} yourself"
            )
        return self._load(tgt)

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r} ({self.space})>"


class _LanguageAtlas(BaseAtlas):
    """One "Language" network made of named regions of another atlas.

    Subclasses set ``default_name`` and build the labels in ``_load`` from
    :meth:`_prefixes` (the hemisphere prefixes of the region names).
    """

    default_name = None

    def __init__(self, hemisphere="left", name=None):
        self.hemisphere = hemisphere
        self.name = self.default_name if name is None else name

    def _names(self):
        return ["Language"]

    def _prefixes(self, left, right):
        """Region-name prefixes of the chosen hemispheres."""
        if self.hemisphere not in ("left", "both"):
            raise ValueError(f"hemisphere must be 'left' or 'both', got {self.hemisphere!r}")
        return (left,) if self.hemisphere == "left" else (left, right)
