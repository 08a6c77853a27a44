"""HTML reports: sections of text, figures and tables in one self-contained file."""

from nilearn_vlm.report._html import Report, Section, figure_to_data_uri

__all__ = ["Report", "Section", "figure_to_data_uri"]
