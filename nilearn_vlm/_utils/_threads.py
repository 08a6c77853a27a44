"""BLAS thread limits that cost nothing after the first call.

:func:`threadpoolctl.threadpool_limits` inspects every loaded shared library
on each call (about 15 ms): in loops of small products (the analyses' block
sums and held-out predictions run hundreds of times per subject) that was a
third of the run time. One :class:`threadpoolctl.ThreadpoolController` is
built at the first call and reused.
"""

from __future__ import annotations

from threadpoolctl import ThreadpoolController

_CONTROLLER = None


def blas_threads(limit=1):
    """Context manager limiting BLAS to ``limit`` threads (a cached threadpoolctl controller).

    Parameters
    ----------
    limit : int, default=1

    Returns
    -------
    context manager

    Examples
    --------
    >>> import numpy as np
    >>> with blas_threads(1):
    ...     float((np.ones((3, 3)) @ np.ones(3)).sum())
    9.0
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=limit, user_api="blas")
