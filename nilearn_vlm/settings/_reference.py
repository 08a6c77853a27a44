"""The reference of the study-file keys, in Markdown, generated from the schema."""

from __future__ import annotations

import re
import textwrap

from nilearn_vlm.settings._schema import (
    _describe_types,
    default_text,
    renamed_keys,
    section_keys,
    target_text,
)
from nilearn_vlm.settings._sections import SECTIONS


def _cell(text):
    return " ".join(str(text).split()).replace("|", "\\|")


def _heading(cls):
    name = cls.__section__
    return f"[[{name}]]" if cls.__array__ else f"[{name}]"


def _markdown(text):
    """reST inline markup of a docstring as MyST Markdown (literals, cross-reference roles)."""
    text = re.sub(r":(\w+):`([^`]+)`", r"{py:\1}`\2`", text)
    return text.replace("``", "`")


def _intro(cls):
    """The section docstring before its generated Parameters, as Markdown."""
    doc = (cls.__doc__ or "").split("\nParameters\n")[0].strip()
    summary, _, rest = doc.partition("\n\n")
    summary = summary.split(":", 1)[-1].strip() if summary.startswith("``") else summary
    parts = (summary[0].upper() + summary[1:], textwrap.dedent(rest).strip())
    return _markdown("\n\n".join(p for p in parts if p))


def study_file_reference():
    """The study file's keys as Markdown: one table per section, then the renamed keys.

    Generated from the schema (:data:`SECTIONS`): the key, its TOML type, its
    default, what it means, which estimator parameters it sets, and whether
    it configures the analysis or only its execution. The documentation page
    "The study file" shows it.

    Returns
    -------
    str

    Examples
    --------
    >>> from nilearn_vlm.settings import study_file_reference
    >>> text = study_file_reference()
    >>> "| `hrf_model` |" in text and "`pipeline.fdr` | `pipeline.glm_alpha`" in text
    True
    """
    out = []
    renamed = []
    for name, cls in SECTIONS.items():
        out.append(f"### `{_heading(cls)}`\n")
        out.append(_intro(cls) + "\n")
        out.append("| Key | Type | Default | Meaning |")
        out.append("|---|---|---|---|")
        for key, f in section_keys(cls).items():
            meta = f.metadata
            text = meta["doc"]
            if meta["to"]:
                text += " Sets " + target_text(meta["to"], markup="`{}`") + "."
            if meta["role"] == "execution":
                text += " *Execution only: the results do not depend on it.*"
            if meta["path"]:
                text += " Relative paths are read from the study file's folder."
            out.append(f"| `{key}` | {_cell(_describe_types(meta))} | {_cell(default_text(f))} | {_cell(text)} |")
        out.append("")
        renamed.extend((f"{name}.{old}", f"{name}.{new}") for old, new in renamed_keys(cls).items())
    if renamed:
        out.append("### Renamed keys\n")
        out.append("A study file using an old name fails before any work starts, with an error naming "
                   "the new key.\n")
        out.append("| Old key | New key |")
        out.append("|---|---|")
        out.extend(f"| `{old}` | `{new}` |" for old, new in renamed)
        out.append("")
    return "\n".join(out)
