"""Unit naming (``stream.layer.kind.index``), sites and site selectors."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

#: Unit kinds, in the order adapters list them within a layer.
UNIT_KINDS = (
    "attn_out",
    "self_attn_out",
    "cross_attn_out",
    "head",
    "ffn",
    "resid",
)

#: Patterns the selector ``"default"`` stands for: the paper builds its neurons
#: from the output of multi-head attention, including both attention blocks of
#: co-attention fusion layers.
DEFAULT_SELECTOR = ("*.attn_out", "*.self_attn_out", "*.cross_attn_out")

_SEP = "."


# ---------------------------------------------------------------- names
def layer_name(stream, layer):
    """Name of a layer (block): ``stream.layer``.

    Examples
    --------
    >>> layer_name("text", 4)
    'text.4'
    """
    return f"{stream}{_SEP}{int(layer)}"


def site_name(stream, layer, kind):
    """Name of a site: ``stream.layer.kind``.

    Examples
    --------
    >>> site_name("vision", 3, "ffn")
    'vision.3.ffn'
    """
    return f"{layer_name(stream, layer)}{_SEP}{kind}"


def unit_name(stream, layer, kind, index):
    """Name of a unit: ``stream.layer.kind.index``.

    Examples
    --------
    >>> unit_name("cross_text", 2, "cross_attn_out", 17)
    'cross_text.2.cross_attn_out.17'
    """
    return f"{site_name(stream, layer, kind)}{_SEP}{int(index)}"


def parse_unit_name(name):
    """Split a unit name ``stream.layer.kind.index`` into its parts.

    Returns
    -------
    tuple
        ``(stream, layer, kind, index)`` with ``layer`` and ``index`` as int.

    Raises
    ------
    ValueError
        The name is not of that form.

    Examples
    --------
    >>> parse_unit_name("cross_text.2.cross_attn_out.17")
    ('cross_text', 2, 'cross_attn_out', 17)
    """
    parts = str(name).split(_SEP)
    if len(parts) != 4 or not all(parts) or not (_is_int(parts[1]) and _is_int(parts[3])):
        raise ValueError(
            f"unit name {name!r} is not of the form 'stream.layer.kind.index' "
            "(for example 'vision.3.ffn.12'; layer and index are non-negative integers)"
        )
    stream, layer, kind, index = parts
    return stream, int(layer), kind, int(index)


def is_unit_name(name):
    """Whether ``name`` is a unit name ``stream.layer.kind.index``.

    Examples
    --------
    >>> is_unit_name("vision.3.ffn.12"), is_unit_name("atom3"), is_unit_name("v.x.ffn.1")
    (True, False, False)
    """
    try:
        parse_unit_name(name)
    except ValueError:
        return False
    return True


def _is_int(text):
    return text.isdigit()


# ---------------------------------------------------------------- sites
@dataclass(frozen=True, order=True)
class Site:
    """One population of units of a model.

    Parameters
    ----------
    stream : str
        Processing stream: ``"vision"``, ``"text"``, ``"cross_text"``,
        ``"cross_image"``, ...
    layer : int
        Layer index within the stream, from 0.
    kind : str
        Unit kind, one of :data:`UNIT_KINDS` (``ffn``: MLP units after the
        activation; ``attn_out``: attention block output after the output
        projection, before the residual add; ``head``: per-head attention
        output before the output projection, units ordered head-major;
        ``resid``: residual stream after the block; ``self_attn_out`` and
        ``cross_attn_out``: the two attention blocks of a fusion layer).
    width : int
        Number of units.
    modalities : tuple of str
        Input modalities the site needs (``("image",)``, ``("text",)`` or
        both for fusion layers).
    tokens : str
        Which tokens the site covers, in words (documentation only).

    Examples
    --------
    >>> s = Site("vision", 3, "ffn", 3072, ("image",))
    >>> s.name
    'vision.3.ffn'
    >>> s.unit_names()[:2]
    ['vision.3.ffn.0', 'vision.3.ffn.1']
    """

    stream: str
    layer: int
    kind: str
    width: int
    modalities: tuple = ("image",)
    tokens: str = field(default="", compare=False)

    @property
    def name(self):
        """``stream.layer.kind``."""
        return site_name(self.stream, self.layer, self.kind)

    def unit_names(self):
        """Names of the units, ``stream.layer.kind.index``."""
        return [unit_name(self.stream, self.layer, self.kind, i) for i in range(self.width)]


def select_sites(sites, selector="default"):
    """Pick sites by name patterns.

    Parameters
    ----------
    sites : list of Site
        Every site of a model, as ``adapter.sites()`` lists them.
    selector : str, list of str or None
        ``"default"`` (attention outputs, see :data:`DEFAULT_SELECTOR`),
        ``"all"``, a shell-style pattern on site names (``"vision.*.ffn"``,
        ``"*.attn*"``, ``"text.11.resid"``) or a list of those. Each pattern
        must match at least one site. ``"*.attn*"`` covers every attention
        output, the fusion kinds ``self_attn_out`` and ``cross_attn_out``
        included.

    Returns
    -------
    list of Site
        Matching sites in the model's order, without duplicates.

    Raises
    ------
    ValueError
        A pattern matches no site; the message lists the available ones.

    Examples
    --------
    >>> sites = [Site("vision", 0, "ffn", 4), Site("text", 0, "attn_out", 2, ("text",))]
    >>> [s.name for s in select_sites(sites, "*.attn_out")]
    ['text.0.attn_out']
    """
    if selector is None or selector == "default":
        patterns = list(DEFAULT_SELECTOR)
        strict = False
    elif selector == "all":
        return list(sites)
    elif isinstance(selector, str):
        patterns, strict = [selector], True
    else:
        patterns, strict = list(selector), True
    if not patterns:
        raise ValueError("empty site selector: give at least one pattern, 'default' or 'all'")
    chosen = set()
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"site selector entries must be str, got {type(pattern).__name__}")
        hits = [s.name for s in sites if _matches(s, pattern)]
        if strict and not hits:
            raise ValueError(
                f"site pattern {pattern!r} matches no site of this model; available sites: "
                f"{_summarise(sites)}"
            )
        chosen.update(hits)
    if not chosen:
        raise ValueError(
            f"the default selector {DEFAULT_SELECTOR} matches no site of this model; "
            f"pass sites= explicitly, e.g. 'all'. Available: {_summarise(sites)}"
        )
    return [s for s in sites if s.name in chosen]


def _matches(site, pattern):
    """Shell-style match of a site's name; a wildcard kind pattern starting with
    ``attn`` (``"*.attn*"``) also covers the fusion kinds ``self_attn_out``
    and ``cross_attn_out``."""
    if fnmatch.fnmatchcase(site.name, pattern):
        return True
    _, _, kind_pattern = pattern.rpartition(_SEP)
    if "*" in kind_pattern and kind_pattern.startswith("attn"):
        for prefix in ("self_", "cross_"):
            if site.kind.startswith(prefix) and fnmatch.fnmatchcase(
                site_name(site.stream, site.layer, site.kind[len(prefix):]), pattern
            ):
                return True
    return False


def _summarise(sites, limit=12):
    """Compact list of site patterns (``stream.*.kind``) for error messages."""
    kinds = sorted({f"{s.stream}{_SEP}*{_SEP}{s.kind}" for s in sites})
    text = ", ".join(kinds[:limit])
    if len(kinds) > limit:
        text += f", ... ({len(kinds)} patterns)"
    return text
