"""Settings -> estimators: building them validates every key before any work starts."""

from __future__ import annotations

from sklearn.utils._param_validation import InvalidParameterError

from nilearn_vlm.plugins import UnknownPluginError, get_adapter, get_analysis, get_atlas
from nilearn_vlm.settings._schema import ESTIMATORS, SettingsError, estimator_targets

_LOOKUPS = {"adapter": get_adapter, "analysis": get_analysis, "atlas": get_atlas}


def estimator_params(obj, roles=None):
    """``{role: {parameter: value}}`` that a section's keys set (keys set to None skipped)."""
    out = {}
    for _, value, role, param in estimator_targets(obj):
        if value is not None and (roles is None or role in roles):
            out.setdefault(role, {})[param] = value
    return out


def build_estimators(pipeline, t_r=None, t_r_targets=()):
    """The pipeline's estimators, unfitted, with every parameter its settings set.

    Parameters
    ----------
    pipeline : PipelineSettings
    t_r : float, optional
        Given to the ``t_r_targets`` (``"role.t_r"``).
    t_r_targets : tuple of str

    Returns
    -------
    dict
        ``{role: estimator}`` for every role of the pipeline (all of
        :data:`~nilearn_vlm.settings.ESTIMATORS` but ``"extractor"``), each
        validated (``_validate_params``).
    """
    params = estimator_params(pipeline)
    if t_r is not None:
        for role, param in t_r_targets:
            params.setdefault(role, {})[param] = t_r
    out = {}
    for role, (cls, _) in ESTIMATORS.items():
        if role == "extractor":
            continue
        est = cls(**params.get(role, {}))
        try:
            est._validate_params()
        except InvalidParameterError as exc:
            raise SettingsError("pipeline", f"the settings make an invalid {cls.__name__}: {exc}") from None
        out[role] = est
    return out


def check_plugin_names(kind, names, where):
    """Check that plugins are installed; raises :class:`SettingsError` listing those that are.

    Parameters
    ----------
    kind : {"adapter", "analysis", "atlas"}
    names : str or list of str
    where : str
        The key (``"pipeline.atlases"``).
    """
    for name in [names] if isinstance(names, str) else list(names):
        try:
            _LOOKUPS[kind](name)
        except UnknownPluginError as exc:
            raise SettingsError(where, f"{exc}. Fix: give an installed {kind} (nilearn-vlm plugins).") from None
