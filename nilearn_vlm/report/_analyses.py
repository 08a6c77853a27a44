"""Report sections of analysis results (:class:`~nilearn_vlm.analyses.AnalysisResult`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nilearn_vlm.report._html import Section


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def analysis_section(result, max_rows=40):
    """The report section of one analysis result: its text, key numbers, figures and tables.

    Parameters
    ----------
    result : nilearn_vlm.analyses.AnalysisResult
    max_rows : int, default=40
        Rows shown per table.

    Returns
    -------
    Section

    Examples
    --------
    >>> import pandas as pd
    >>> from nilearn_vlm.analyses import AnalysisResult, FigureSpec
    >>> table = pd.DataFrame({"network": ["vision", "language"], "r": [0.3, 0.1]})
    >>> res = AnalysisResult("demo", tables={"main": table}, stats={"r": 0.3}, text="Mean r per network.",
    ...                      figures=[FigureSpec("bar", table, x="network", y="r", title="r by network")])
    >>> section = analysis_section(res)
    >>> section.title, len(section.figures), section.figures[0][1]
    ('Analysis: demo', 1, 'r by network')
    >>> "Key statistics: r = 0.3." in section.text
    True
    """
    stats = ", ".join(f"{k} = {_fmt(v)}" for k, v in result.stats.items() if np.isscalar(v))
    text = result.text
    if result.models:
        text += f"\n\nModels: {', '.join(result.models)}."
    if stats:
        text += f"\n\nKey statistics: {stats}."
    if result.notes:
        text += "\n\nNotes: " + " ".join(result.notes)
    section = Section(f"Analysis: {result.name}", text=text.strip())
    for spec in result.checked_figures():
        section.add_figure(spec)
    for key, frame in result.tables.items():
        section.add_table(frame, caption=key, max_rows=max_rows)
    return section


def analysis_sections(done, skipped=None, max_rows=40):
    """Sections of analysis results, plus one listing the analyses skipped and why.

    An analysis whose result cannot be rendered gets a section saying so (the
    rest of the report is kept).

    Parameters
    ----------
    done : dict of str to AnalysisResult
        As returned by :func:`nilearn_vlm.analyses.run_analyses`.
    skipped : dict of str to str, optional
        Reasons, as returned by :func:`~nilearn_vlm.analyses.run_analyses`.
    max_rows : int, default=40

    Returns
    -------
    list of Section

    Examples
    --------
    >>> from nilearn_vlm.analyses import AnalysisResult
    >>> done = {"demo": AnalysisResult("demo", stats={"r": -0.9})}
    >>> [s.title for s in analysis_sections(done, {"compare": "needs at least 2 results (models), got 1"})]
    ['Analysis: demo', 'Skipped analyses']
    """
    sections = []
    for name, result in done.items():
        try:
            sections.append(analysis_section(result, max_rows=max_rows))
        except Exception as exc:  # noqa: BLE001 - a faulty analysis must not lose the report
            sections.append(Section(f"Analysis: {name}", text=f"This analysis could not render: {exc}"))
    if skipped:
        frame = pd.DataFrame({"analysis": list(skipped), "reason": [str(v) for v in skipped.values()]})
        sections.append(Section("Skipped analyses", text="Analyses the results did not allow.").add_table(frame))
    return sections
