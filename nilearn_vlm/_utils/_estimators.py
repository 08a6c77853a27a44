"""Conventions shared by the estimators: output dtypes and input tags."""

from __future__ import annotations

import dataclasses

import numpy as np

try:  # nilearn >= 0.11.1 with scikit-learn >= 1.6: sklearn's InputTags plus image kinds
    from nilearn._utils.tags import InputTags as _NilearnInputTags
except ImportError:  # pragma: no cover - older nilearn: scikit-learn's tags only
    _NilearnInputTags = None


def output_dtype(X):
    """The floating dtype of an estimator's outputs for the input ``X``.

    The input's own dtype when it is floating (float32 in, float32 out;
    float64 in, float64 out), else float64, as scikit-learn does; the
    estimators fit in their working precision and cast to it (predictions
    of float64 input are computed in float64).

    Examples
    --------
    >>> output_dtype(np.ones(2, np.float32)), output_dtype([1, 2])
    (dtype('float32'), dtype('float64'))
    """
    dtype = getattr(X, "dtype", None)
    if dtype is None:
        dtype = np.asarray(X).dtype
    dtype = np.dtype(dtype)
    return dtype if dtype.kind == "f" and dtype.itemsize >= 4 else np.dtype(np.float64)


def nilearn_input_tags(tags, *, niimg_like=False, surf_img=False):
    """Give ``tags`` nilearn's input tags (sklearn's ``InputTags`` plus image kinds).

    nilearn's tags say whether ``X`` may be a Niimg-like or a ``SurfaceImage``
    (read by nilearn's ``accept_niimg_input`` / ``accept_surf_img_input``).
    The sklearn fields already set are kept. Without nilearn's tags (older
    nilearn) ``tags`` is returned unchanged.
    """
    if _NilearnInputTags is None:  # pragma: no cover
        return tags
    fields = {f.name: getattr(tags.input_tags, f.name) for f in dataclasses.fields(tags.input_tags)}
    tags.input_tags = _NilearnInputTags(**fields, niimg_like=niimg_like, surf_img=surf_img)
    return tags
