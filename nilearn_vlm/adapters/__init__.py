"""The model adapter contract (no torch import here).

See :class:`BaseAdapter` for what a model plugin implements, :class:`Site` for
unit populations, :func:`select_sites` for selectors and :func:`pool` for the
pooling rules every adapter shares.
"""

from nilearn_vlm.adapters._base import (
    MODALITIES,
    BaseAdapter,
    Batch,
    count_module_hooks,
)
from nilearn_vlm.adapters._pooling import POOLING_RULES, check_pooling, pool
from nilearn_vlm.adapters._sites import (
    DEFAULT_SELECTOR,
    UNIT_KINDS,
    Site,
    parse_unit_name,
    select_sites,
)

__all__ = [
    "BaseAdapter",
    "Batch",
    "DEFAULT_SELECTOR",
    "MODALITIES",
    "POOLING_RULES",
    "Site",
    "UNIT_KINDS",
    "check_pooling",
    "count_module_hooks",
    "parse_unit_name",
    "pool",
    "select_sites",
]
