"""The machinery of the settings schema: keys declared once, read by everything else.

A section of the study file is a dataclass whose fields are made by
:func:`setting`; each field's metadata says what the key means (``doc``),
which TOML types it takes, which estimator parameters it sets (``to``), how
else it is checked, whether it configures the analysis or only its execution,
and which old names it replaces. :func:`parse_section` reads a TOML table into
the dataclass, :func:`check_section` validates an instance made in Python,
:func:`section_keys` lists the keys and :func:`numpydoc_parameters` writes the
class's docstring, all from those declarations.
"""

from __future__ import annotations

import dataclasses
import difflib
import textwrap
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.utils._param_validation import (
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)

from nilearn_vlm.decomposition import SparseAtoms
from nilearn_vlm.encoding import VoxelEncoder
from nilearn_vlm.extraction import NeuronActivations
from nilearn_vlm.glm import VoxelGLM
from nilearn_vlm.timeseries import TRAligner

#: The estimators settings configure, by their role in the pipeline: role ->
#: (class, what it is). A key's ``to`` names ``"role.parameter"``.
ESTIMATORS = {
    "extractor": (NeuronActivations, "the units of each model"),
    "aligner": (TRAligner, "units to the TR grid"),
    "atoms": (SparseAtoms, "the atoms"),
    "glm": (VoxelGLM, "the GLM of the atoms"),
    "encoder": (VoxelEncoder, "the encoder of the atoms and its circular-shift null"),
    "site_encoder": (VoxelEncoder, "the per-site encoders of the layer curves"),
}

#: What a key configures: ``"analysis"`` keys change the numbers of the results,
#: ``"execution"`` keys (names, output folder, verbosity, compute) never do.
ROLES = ("analysis", "execution")

#: TOML type names of :func:`setting`'s ``types``.
TYPE_NAMES = {
    "str": "string", "int": "integer", "float": "number", "bool": "boolean",
    "list": "array", "table": "table", "path": "path", "paths": "array of paths",
}


class SettingsError(ValueError):
    """A setting is invalid; the message names the key, the value and the fix.

    Attributes
    ----------
    key : str
        The key, as ``section.key`` (``"pipeline.hrf_model"``).
    """

    def __init__(self, key, message):
        super().__init__(f"{key}: {message}")
        self.key = key


def _target(text):
    """``"role.param"`` of a ``to=`` declaration as ``(role, param)``, checked once."""
    role, sep, param = text.partition(".")
    if not sep or role not in ESTIMATORS or not param:
        raise ValueError(f"to= targets are 'role.parameter' with a role of {sorted(ESTIMATORS)}, got {text!r}")
    return role, param


def setting(default=dataclasses.MISSING, doc="", *, types, to=(), check=None, items=None,
            role="analysis", renamed=(), migrate=None, path=None, default_text=None, example=None):
    """A key of a settings section (a :func:`dataclasses.field` with its declaration).

    Parameters
    ----------
    default : object, optional
        Default value; omit it for a required key. Lists are copied per instance.
    doc : str
        What the key means, one or two sentences (the reference text).
    types : tuple of str
        Accepted TOML types among :data:`TYPE_NAMES` (``"float"`` accepts
        integers; booleans are never numbers).
    to : tuple of str
        Estimator parameters the key sets, as ``"role.parameter"`` with the
        roles of :data:`nilearn_vlm.settings.ESTIMATORS`
        (``"aligner.hrf_model"``); the estimators validate the value.
    check : list or callable, optional
        scikit-learn parameter constraints (a list, as in
        ``_parameter_constraints``), or ``check(value)`` returning an error
        message or None: what the estimators do not check (or, for keys that
        set no estimator parameter, everything). Runs before the estimators'
        validation.
    items : {"str", "float"}, optional
        Type of the items of a list.
    role : {"analysis", "execution"}, default="analysis"
    renamed : tuple of str
        Former names of the key: a study file using one gets an error naming
        this key.
    migrate : callable, optional
        ``migrate(old_value)`` gives the value to write under the new name,
        when it differs (shown in the error).
    path : {"file", "dir", "new"}, optional
        The value is a path, relative to the study file's folder; ``"file"``
        and ``"dir"`` must exist, ``"new"`` may not.
    default_text : str, optional
        The default as the reference shows it, when the value alone says too
        little (``None`` meaning "each estimator's default").
    example : object, optional
        A valid value, shown in errors (default: the default value).

    Returns
    -------
    dataclasses.Field
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    unknown = set(types) - set(TYPE_NAMES)
    if unknown:
        raise ValueError(f"unknown types {sorted(unknown)}; use {sorted(TYPE_NAMES)}")
    meta = {"doc": doc, "types": tuple(types), "to": tuple(_target(t) for t in to), "check": check, "items": items,
            "role": role, "renamed": tuple(renamed), "migrate": migrate, "path": path,
            "default_text": default_text, "example": example}
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _fields(cls):
    return [f for f in dataclasses.fields(cls) if "types" in f.metadata]


def section_keys(cls):
    """The keys of a section as ``{name: dataclasses.Field}``, in declaration order."""
    return {f.name: f for f in _fields(cls)}


def renamed_keys(cls):
    """``{old name: new name}`` of a section's renamed keys."""
    return {old: f.name for f in _fields(cls) for old in f.metadata["renamed"]}


def default_of(f):
    """The default value of a field (``dataclasses.MISSING`` for a required key)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _close(key, options):
    match = difflib.get_close_matches(str(key), sorted(options), n=1)
    return f" Did you mean {match[0]!r}?" if match else ""


def _type_ok(value, kind):
    if kind == "bool":
        return isinstance(value, (bool, np.bool_))
    if isinstance(value, (bool, np.bool_)):
        return False
    if kind == "int":
        return isinstance(value, Integral)
    if kind == "float":
        return isinstance(value, Real)
    if kind in ("str", "path"):
        return isinstance(value, (str, Path))
    if kind in ("list", "paths"):
        return isinstance(value, (list, tuple, np.ndarray))
    if kind == "table":
        return isinstance(value, dict)
    return False  # pragma: no cover - setting() checks the names


def _items_ok(value, items):
    if items is None:
        return True
    return all(_type_ok(v, items) for v in value)


def _describe_types(meta, articles=False):
    names = [TYPE_NAMES[t] for t in meta["types"]]
    if meta["items"] and ("list" in meta["types"]):
        names = [f"array of {TYPE_NAMES[meta['items']]}s" if n == "array" else n for n in names]
    return " or ".join(_a(n) if articles else n for n in names)


def estimator_targets(obj):
    """``(key, value, role, parameter)`` of every estimator parameter a section instance sets."""
    for name, f in section_keys(type(obj)).items():
        value = getattr(obj, name)
        for role, param in f.metadata["to"]:
            yield name, value, role, param


def _options_hint(cls, param, value):
    """'Did you mean ...?' from a parameter's string options."""
    if not isinstance(value, str):
        return ""
    options = []
    for constraint in cls._parameter_constraints.get(param, []):
        if isinstance(constraint, StrOptions):
            options.extend(constraint.options)
    match = difflib.get_close_matches(value, sorted(options), n=1)
    return f" Did you mean {match[0]!r}?" if match else ""


def _check_targets(where, f, value):
    """Build each estimator the key sets with that parameter alone and run its validation."""
    for role, param in f.metadata["to"]:
        cls = ESTIMATORS[role][0]
        try:
            cls(**{param: value})._validate_params()
        except InvalidParameterError as exc:
            raise SettingsError(
                where,
                f"{value!r} is invalid: {exc}{_options_hint(cls, param, value)} Fix: give a value "
                f"{cls.__name__}({param}=...) accepts (see nilearn_vlm.{cls.__name__}).",
            ) from None


def check_value(where, f, value):
    """Check one key; raises :class:`SettingsError` naming the key, the value and the fix.

    In order: its TOML type, its own constraints (``check``), then each
    estimator parameter it sets (``to``): the estimator is built with that
    parameter alone and its scikit-learn parameter validation
    (``_validate_params``) runs, so an error belongs to one key. None (a key
    not set, where None is the default) leaves the estimators' defaults.
    """
    meta = f.metadata
    if value is None and default_of(f) is None:
        return
    kinds = meta["types"]
    if not any(_type_ok(value, k) for k in kinds) or (
        _type_ok(value, "list") and "list" in kinds and not _items_ok(value, meta["items"])
    ):
        raise SettingsError(where, f"must be {_describe_types(meta, articles=True)}; got {value!r}. {_example(f)}".strip())
    check = meta["check"]
    if callable(check):
        problem = check(value)
        if problem:
            raise SettingsError(where, f"{problem}; got {value!r}.")
    elif check is not None:
        try:
            validate_parameter_constraints({f.name: check}, {f.name: value}, caller_name=where)
        except InvalidParameterError as exc:
            text = str(exc).replace(f"The '{f.name}' parameter of {where} must", "must")
            raise SettingsError(where, f"{text} {_example(f)}".strip()) from None
    _check_targets(where, f, value)


def _a(text):
    return ("an " if text[0] in "aeiou" else "a ") + text


def _example(f):
    if f.metadata["example"] is not None:
        return f"Fix: e.g. {f.name} = {toml_value(f.metadata['example'])}."
    default = default_of(f)
    if default is dataclasses.MISSING or default is None:
        return ""
    return f"Fix: e.g. {f.name} = {toml_value(default)} (the default)."


def toml_value(value):
    """A value as TOML writes it (strings quoted, lists in brackets, tables inline)."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (str, Path)):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Real) and not isinstance(value, Integral):
        return repr(float(value))
    return str(value)


def parse_section(cls, table, where, base=None):
    """Read one TOML table into the section dataclass ``cls``.

    Parameters
    ----------
    cls : type
        A section dataclass (its fields made by :func:`setting`).
    table : dict
        The TOML table.
    where : str
        The section as errors name it (``"pipeline"``, ``"models[0]"``).
    base : pathlib.Path, optional
        Folder relative paths are read from.

    Returns
    -------
    An instance of ``cls``.

    Raises
    ------
    SettingsError
        Naming the key (``where.key``), the value and the fix: unknown and
        renamed keys, wrong types, values out of range, missing paths,
        missing required keys.
    """
    if not isinstance(table, dict):
        raise SettingsError(where, f"expected a table, got {type(table).__name__} {table!r}")
    keys = section_keys(cls)
    renamed = renamed_keys(cls)
    for key in table:
        if key in renamed:
            new = renamed[key]
            migrate = keys[new].metadata["migrate"]
            value = migrate(table[key]) if migrate else table[key]
            raise SettingsError(
                f"{where}.{key}",
                f"renamed to {new!r} (one name along the whole path); write "
                f"{new} = {toml_value(value)} instead.",
            )
        if key not in keys:
            raise SettingsError(
                f"{where}.{key}", f"unknown key; allowed: {', '.join(keys)}.{_close(key, keys)}"
            )
    values = {}
    for name, f in keys.items():
        if name not in table:
            default = default_of(f)
            if default is dataclasses.MISSING:
                raise SettingsError(f"{where}.{name}", f"missing: {f.metadata['doc']} {_example(f)}".strip())
            if f.metadata["path"] is not None and default is not None:
                values[name] = _resolve_paths(f"{where}.{name}", default, f.metadata["path"], base)
            continue
        value = table[name]
        check_value(f"{where}.{name}", f, value)
        kind = f.metadata["path"]
        if kind is not None:
            value = _resolve_paths(f"{where}.{name}", value, kind, base)
        values[name] = value
    obj = cls(**values)
    if hasattr(obj, "_check_section"):
        obj._check_section(where)
    return obj


def _resolve_paths(where, value, kind, base):
    if isinstance(value, (list, tuple)):
        if not value:
            raise SettingsError(where, "empty list: give at least one path")
        return [str(_resolve_one(f"{where}[{i}]", v, kind, base)) for i, v in enumerate(value)]
    return _resolve_one(where, value, kind, base)


def _resolve_one(where, value, kind, base):
    if not isinstance(value, (str, Path)) or not str(value):
        raise SettingsError(where, f"expected a path string, got {value!r}")
    path = Path(value)
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    if kind != "new" and not path.exists():
        raise SettingsError(
            where, f"file or folder {str(path)!r} does not exist; fix the path (relative paths are "
            "read from the study file's folder)"
        )
    if kind == "dir" and not path.is_dir():
        raise SettingsError(where, f"{str(path)!r} is not a folder")
    return path


def section(name, array=False):
    """Class decorator of a settings section: its TOML name and its generated docstring.

    Parameters
    ----------
    name : str
        The TOML table (``"pipeline"``) or array of tables (``"models"``).
    array : bool, default=False
        Whether the study file holds a list of these tables (``[[models]]``).
    """

    def decorate(cls):
        cls.__section__ = name
        cls.__array__ = array
        summary, _, rest = (cls.__doc__ or "").strip().partition("\n\n")
        rest = textwrap.dedent(rest).strip()
        head, mark, examples = rest.partition("Examples\n--------")
        parts = [summary, head.strip(), numpydoc_parameters(cls), (mark + examples).strip()]
        cls.__doc__ = "\n\n".join(p for p in parts if p)
        return cls

    return decorate


def check_section(obj, where):
    """Check every key of a section instance made in Python (types and own constraints).

    Raises
    ------
    SettingsError
    """
    for name, f in section_keys(type(obj)).items():
        check_value(f"{where}.{name}", f, getattr(obj, name))
    if hasattr(obj, "_check_section"):
        obj._check_section(where)


def target_text(targets, markup="``{}``"):
    """The estimator parameters a key sets, in words: ``VoxelGLM.alpha`` (the GLM of the atoms)."""
    parts = []
    for role, param in targets:
        cls, what = ESTIMATORS[role]
        parts.append(f"{markup.format(f'{cls.__name__}.{param}')} ({what})")
    return ", ".join(parts)


def default_text(f):
    """The default of a key as the reference shows it."""
    if f.metadata["default_text"]:
        return f.metadata["default_text"]
    default = default_of(f)
    if default is dataclasses.MISSING:
        return "required"
    if default is None:
        return "not set"
    return f"`{toml_value(default)}`"


def numpydoc_parameters(cls):
    """The numpydoc ``Parameters`` section of a section dataclass, from its keys."""
    lines = ["Parameters", "----------"]
    for name, f in section_keys(cls).items():
        meta = f.metadata
        default = default_text(f).replace("`", "")
        lines.append(f"{name} : {_describe_types(meta)}, default={default}")
        doc = meta["doc"]
        if meta["to"]:
            doc += " Sets " + target_text(meta["to"]) + "."
        if meta["role"] == "execution":
            doc += " Execution only: the results do not depend on it."
        lines.extend("    " + line for line in _wrap(doc))
    return "\n".join(lines)


def _wrap(text, width=76):
    return textwrap.wrap(text, width) or [""]
