"""The model adapter contract (no torch import here).

See :class:`BaseAdapter` for what a model plugin implements, :class:`Site` for
unit populations (defined in :mod:`nilearn_vlm.units`, re-exported here),
:func:`select_sites` for selectors, :func:`pool` for the pooling rules every
adapter shares and :func:`capture` for an optional helper that captures pooled
units of torch modules with forward hooks.
"""

from nilearn_vlm.adapters._base import (
    MODALITIES,
    BaseAdapter,
    Batch,
    count_module_hooks,
    params_digest,
)
from nilearn_vlm.adapters._capture import Capture, CapturePoint, capture
from nilearn_vlm.adapters._pooling import POOLING_RULES, check_pooling, pool
from nilearn_vlm.units import (
    DEFAULT_SELECTOR,
    UNIT_KINDS,
    Site,
    parse_unit_name,
    select_sites,
)

__all__ = [
    "BaseAdapter",
    "Batch",
    "Capture",
    "CapturePoint",
    "DEFAULT_SELECTOR",
    "MODALITIES",
    "POOLING_RULES",
    "Site",
    "UNIT_KINDS",
    "capture",
    "check_pooling",
    "count_module_hooks",
    "params_digest",
    "parse_unit_name",
    "pool",
    "select_sites",
]
