"""Byte sizes written as numbers or strings."""

from __future__ import annotations

import numbers
import re

_SIZE = re.compile(r"\s*((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([kKmMgGtT]?)([iI]?)([bB]?)\s*")
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def parse_bytes(size, name="size"):
    """A number of bytes from an int, a float or a string.

    Strings are a number and a unit: SI prefixes are powers of 1000
    (``"1GB"`` = 10**9 bytes, ``"512MB"``, ``"2kB"``) and IEC prefixes powers
    of 1024 (``"1GiB"`` = 2**30 bytes, ``"512MiB"``); the prefix letter may be
    upper or lower case, and the ``B`` may be left out (``"2G"``).

    Parameters
    ----------
    size : int, float or str
    name : str, default="size"
        Parameter name used in error messages.

    Returns
    -------
    int
        Bytes (positive).

    Examples
    --------
    >>> parse_bytes("1GB"), parse_bytes("1GiB"), parse_bytes("1.5 MB"), parse_bytes(4e3)
    (1000000000, 1073741824, 1500000, 4000)
    """
    if isinstance(size, numbers.Real) and not isinstance(size, bool):
        value = int(size)
    else:
        m = _SIZE.fullmatch(str(size)) if isinstance(size, str) else None
        if m is None or (m.group(3) and not m.group(2)):
            raise ValueError(
                f"{name}={size!r} is not a size: give bytes (an int) or a string such as "
                "'512MB' (SI, 1 MB = 10**6 bytes) or '512MiB' (IEC, 1 MiB = 2**20 bytes)."
            )
        base = 1024 if m.group(3) else 1000
        value = int(float(m.group(1)) * base ** _POWERS[m.group(2).lower()])
    if value <= 0:
        raise ValueError(f"{name} must be a positive number of bytes; got {size!r}.")
    return value
