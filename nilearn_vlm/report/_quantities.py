"""The quantities a report shows: each declared once with its name, symbol and unit.

Every figure and table of :func:`~nilearn_vlm.report.build_report` takes its
labels from :data:`QUANTITIES` (:func:`label`), and marks what it shows with
the quantity's key (``data-quantity`` in the HTML), so a label cannot drift
from the number it names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quantity:
    """A quantity shown in a report.

    Parameters
    ----------
    key : str
        Short identifier (``"encoder_r"``); the HTML marks figures and table
        columns with it.
    name : str
        What it is, in words (``"out-of-fold Pearson r"``).
    symbol : str
        Its symbol (``"r"``).
    unit : str
        Its unit; ``""`` for a dimensionless number.
    description : str
        How it is computed, in one or two sentences (the glossary of the
        report).
    limits : tuple of two floats or None
        The range it can take (``(-1, 1)`` for a correlation), fixing the
        colour scale of its maps.

    Examples
    --------
    >>> q = Quantity("t", "time", "t", "s", "Seconds.")
    >>> q.label(), q.label("mean")
    ('time [s]', 'mean time [s]')
    """

    key: str
    name: str
    symbol: str
    unit: str
    description: str
    limits: tuple | None = None

    def label(self, stat=None):
        """The label of a column or axis: ``"[stat ]name[ [unit]]"``."""
        text = self.name if stat is None else f"{stat} {self.name}"
        return f"{text} [{self.unit}]" if self.unit else text


_DECLARED = [
    Quantity("encoder_r", "out-of-fold Pearson r", "r", "",
             "Pearson correlation between a voxel's BOLD and the ridge encoder's out-of-fold prediction of it "
             "(one run left out at a time, ridge penalties chosen within the training runs; "
             "Results.encoder_r).", (-1.0, 1.0)),
    Quantity("encoder_p_fwe", "p-value, family-wise corrected", "p_FWE", "",
             "p-value of the out-of-fold r against a circular-shift null (the predictions shifted in time "
             "within runs, keeping the BOLD autocorrelation), corrected over voxels by the maximum statistic "
             "(Results.encoder_p_fwe).", (0.0, 1.0)),
    Quantity("n_voxels", "network size", "n", "voxels", "Number of voxels (vertices or grayordinates) of a network."),
    Quantity("n_encoded", "significant voxels, p_FWE < 0.05", "n", "voxels",
             "Voxels whose out-of-fold r is significant at p_FWE < 0.05."),
    Quantity("glm_t", "GLM t-value", "t", "",
             "t-statistic of an atom's coefficient in the voxelwise GLM (Results.glm_t), oriented by the "
             "report's sign convention."),
    Quantity("n_positive", "positive voxels", "n+", "voxels",
             "Voxels significantly positive for an atom (they rise with the atom's key neurons)."),
    Quantity("n_negative", "negative voxels", "n-", "voxels",
             "Voxels significantly negative for an atom (they fall when its key neurons rise)."),
    Quantity("n_significant", "significant voxels", "n", "voxels",
             "Voxels significant for an atom, of either sign."),
    Quantity("frac_positive", "fraction of the network positive", "", "",
             "Positive voxels of an atom in a network over the network's voxels.", (0.0, 1.0)),
    Quantity("frac_negative", "fraction of the network negative", "", "",
             "Negative voxels of an atom in a network over the network's voxels.", (0.0, 1.0)),
    Quantity("share_positive", "share of the atom's positive voxels", "", "",
             "Positive voxels of an atom in a network over all its positive voxels.", (0.0, 1.0)),
    Quantity("share_negative", "share of the atom's negative voxels", "", "",
             "Negative voxels of an atom in a network over all its negative voxels.", (0.0, 1.0)),
    Quantity("layer_r", "out-of-fold Pearson r of a site's encoder", "r", "",
             "Mean over a network's voxels of the out-of-fold r of an encoder fitted on one site's units "
             "(Results.layer_fold_scores), per fold; the interval is a 95% bootstrap over folds (runs).",
             (-1.0, 1.0)),
    Quantity("depth", "fractional depth", "depth", "",
             "Position of a unit's block along the model's forward path, from input (0) to output (1) "
             "(the units table's depth column).", (0.0, 1.0)),
    Quantity("dice", "Dice overlap with the planted network", "Dice", "",
             "2|A∩B| / (|A| + |B|) of an atom's significant voxels A and the planted network's voxels B.",
             (0.0, 1.0)),
    Quantity("sign_accuracy", "fraction of voxels with the planted sign", "", "",
             "Among an atom's significant voxels inside the planted network, the fraction whose sign (under "
             "the report's sign convention) is the planted sign.", (0.0, 1.0)),
    Quantity("key_precision", "key-neuron precision", "", "",
             "Fraction of an atom's key neurons that are planted driving units.", (0.0, 1.0)),
    Quantity("key_recall", "key-neuron recall", "", "",
             "Fraction of a driver's planted units that are key neurons of its atom.", (0.0, 1.0)),
    Quantity("n_key", "key neurons", "n", "units", "Number of key neurons of an atom."),
    Quantity("seconds", "wall time", "", "s", "Seconds the step took."),
]

#: Every quantity a report shows, by key.
QUANTITIES = {q.key: q for q in _DECLARED}


def label(key, stat=None):
    """The label of a registered quantity (see :meth:`Quantity.label`).

    Examples
    --------
    >>> label("encoder_r", "mean")
    'mean out-of-fold Pearson r'
    >>> label("n_encoded")
    'significant voxels, p_FWE < 0.05 [voxels]'
    """
    return QUANTITIES[key].label(stat)


def quantity_of_label(text):
    """The key of the quantity a label names (the inverse of :func:`label`), or None.

    Examples
    --------
    >>> quantity_of_label("mean out-of-fold Pearson r")
    'encoder_r'
    """
    for q in QUANTITIES.values():
        for stat in (None, "mean", "median"):
            if q.label(stat) == text:
                return q.key
    return None
