"""HTML reports: sections of text, figures and tables in one self-contained file.

:func:`build_report` makes the report of one fitted subject from its
:class:`~nilearn_vlm.results.Results` (or a saved results folder) alone, plus
optional analysis results; ``nilearn-vlm report FOLDER`` does the same from
the command line. Analyses return data (:class:`~nilearn_vlm.analyses.FigureSpec`
for their figures); :func:`analysis_section` renders them.
"""

from nilearn_vlm.report._html import Report, Section, figure_to_data_uri
from nilearn_vlm.report._analyses import analysis_section, analysis_sections
from nilearn_vlm.report._pipeline_report import (
    RECOVERY_THRESHOLDS,
    PlantedTruth,
    build_report,
    layer_curve_table,
    network_score_table,
    report_networks,
)

__all__ = [
    "RECOVERY_THRESHOLDS",
    "PlantedTruth",
    "Report",
    "Section",
    "analysis_section",
    "analysis_sections",
    "build_report",
    "figure_to_data_uri",
    "layer_curve_table",
    "network_score_table",
    "report_networks",
]
