"""HTML reports: sections of text, figures and tables in one self-contained file.

:func:`build_report` makes the report of one fitted subject from its
:class:`~nilearn_vlm.results.Results` (or a saved results folder) alone, plus
optional analysis results; ``nilearn-vlm report FOLDER`` does the same from
the command line. Analyses return data (:class:`~nilearn_vlm.analyses.FigureSpec`
for their figures); :func:`analysis_section` renders them.
"""

from nilearn_vlm.report._html import MAX_INLINE_ROWS, Figure, Report, Section, Table, figure_to_data_uri
from nilearn_vlm.report._quantities import QUANTITIES, Quantity, label
from nilearn_vlm.report._analyses import analyses_report, analysis_section, analysis_sections
from nilearn_vlm.report._pipeline_report import RECOVERY_THRESHOLDS, PlantedTruth, build_report
from nilearn_vlm.report._methods import methods_text, settings_table
from nilearn_vlm.report._sections import SIGN_CONVENTION, atom_orientation
from nilearn_vlm.report._tables import layer_curve_table, network_score_table, report_networks

__all__ = [
    "MAX_INLINE_ROWS",
    "QUANTITIES",
    "RECOVERY_THRESHOLDS",
    "SIGN_CONVENTION",
    "Figure",
    "Quantity",
    "Table",
    "atom_orientation",
    "label",
    "methods_text",
    "settings_table",
    "PlantedTruth",
    "Report",
    "Section",
    "analyses_report",
    "analysis_section",
    "analysis_sections",
    "build_report",
    "figure_to_data_uri",
    "layer_curve_table",
    "network_score_table",
    "report_networks",
]
