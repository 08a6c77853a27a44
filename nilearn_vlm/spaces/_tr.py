"""The repetition time an image header records, and the check of a study's TR against it."""

from __future__ import annotations

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np

#: Seconds per unit of the NIfTI ``xyzt_units`` time codes (nibabel's names).
_TIME_UNITS = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}


class TRMismatchError(ValueError):
    """A repetition time disagrees with the one an image header records."""


def header_t_r(img):
    """The repetition time (seconds) an image's header records, and where it was read.

    - NIfTI: ``pixdim[4]`` converted to seconds by the time unit of
      ``xyzt_units`` (``sec``, ``msec``, ``usec``: some converters write
      milliseconds). With no time unit, ``pixdim[4]`` is read as seconds,
      except 0 and 1.0 (the values of images written without a TR, such as
      ``nibabel.Nifti1Image(data, affine)``), which count as no TR.
    - CIFTI-2 dtseries: the step of the series axis, in seconds.
    - Anything else (GIfTI, surface images, arrays, 3D images): no TR.

    Parameters
    ----------
    img : image, path or array

    Returns
    -------
    t_r : float or None
        Seconds, or None where the header records none.
    source : str
        How it was read, e.g. ``"pixdim[4] = 2000 msec"``, or why there is
        none.

    Examples
    --------
    >>> import nibabel as nib, numpy as np
    >>> img = nib.Nifti1Image(np.zeros((2, 2, 2, 3), np.float32), np.eye(4))
    >>> header_t_r(img)
    (None, 'pixdim[4] = 1 with no time unit (the value of a header written without a TR)')
    >>> img.header.set_xyzt_units("mm", "msec"); img.header.set_zooms((1, 1, 1, 2000))
    >>> header_t_r(img)
    (2.0, 'pixdim[4] = 2000 msec')
    """
    if isinstance(img, (str, Path)):
        img = nib.load(str(img))
    if isinstance(img, nib.cifti2.Cifti2Image):
        axis = img.header.get_axis(0)
        if isinstance(axis, nib.cifti2.SeriesAxis) and axis.unit.upper() == "SECOND" and axis.step > 0:
            return float(axis.step), f"CIFTI series axis step {axis.step:g} s"
        return None, "the CIFTI file has no time series axis in seconds"
    if not isinstance(img, nib.spatialimages.SpatialImage) or not hasattr(img.header, "get_xyzt_units"):
        return None, f"a {type(img).__name__} records no repetition time"
    if len(img.shape) < 4:
        return None, "a 3D image records no repetition time"
    value = float(img.header.get_zooms()[3])
    unit = img.header.get_xyzt_units()[1]
    if unit in _TIME_UNITS and value > 0:
        return value * _TIME_UNITS[unit], f"pixdim[4] = {value:g} {unit}"
    if unit in _TIME_UNITS or value in (0.0, 1.0):
        return None, (f"pixdim[4] = {value:g} with no time unit (the value of a header written without a TR)"
                      if unit not in _TIME_UNITS else f"pixdim[4] = {value:g} {unit}")
    return value, f"pixdim[4] = {value:g} with no time unit, read as seconds"


def check_t_r(images, t_r, key="t_r", override=None, rtol=1e-3):
    """Check a repetition time against the image headers; raise on a mismatch, warn once where none is recorded.

    Parameters
    ----------
    images : sequence of images or paths
        Runs (NIfTI, CIFTI dtseries, GIfTI, arrays).
    t_r : float
        The repetition time given (seconds).
    key : str, default="t_r"
        The name of the setting that gave ``t_r``, in messages
        (``"study.t_r"``).
    override : str, optional
        The setting that accepts a mismatch (``"[study] ignore_header_t_r = true"``),
        named in the error.
    rtol : float, default=1e-3
        Relative tolerance.

    Returns
    -------
    list of (float or None)
        The headers' TRs, one per image.

    Raises
    ------
    TRMismatchError
        Naming the image, both values and the override.

    Examples
    --------
    >>> import nibabel as nib, numpy as np
    >>> img = nib.Nifti1Image(np.zeros((2, 2, 2, 3), np.float32), np.eye(4))
    >>> img.header.set_xyzt_units("mm", "sec"); img.header.set_zooms((1, 1, 1, 1.5))
    >>> check_t_r([img], 1.5)
    [1.5]
    >>> check_t_r([img], 2.0, key="study.t_r")
    Traceback (most recent call last):
    ...
    nilearn_vlm.spaces._tr.TRMismatchError: study.t_r = 2 s, but image 1 of 1 (Nifti1Image) records a TR of 1.5 s (pixdim[4] = 1.5 sec); give its TR (t_r = 1.5)
    """
    found, missing = [], []
    for i, img in enumerate(images):
        value, source = header_t_r(img)
        found.append(value)
        name = str(img) if isinstance(img, (str, Path)) else f"image {i + 1} of {len(images)} ({type(img).__name__})"
        if value is None:
            missing.append((name, source))
        elif not np.isclose(value, float(t_r), rtol=rtol, atol=0):
            fix = f"give its TR ({key.split('.')[-1]} = {value:g})"
            if override:
                fix += f", or, if the header is wrong, set {override}"
            raise TRMismatchError(f"{key} = {float(t_r):g} s, but {name} records a TR of {value:g} s ({source}); {fix}")
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        warnings.warn(f"{missing[0][0]}{more}: no repetition time in the header ({missing[0][1]}); "
                      f"using {key} = {float(t_r):g} s unchecked", UserWarning, stacklevel=2)
    return found
