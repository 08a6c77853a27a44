"""A self-contained HTML report: sections of text, figures and tables."""

from __future__ import annotations

import base64
import datetime
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from nilearn_vlm.analyses import FigureSpec
from nilearn_vlm.report._quantities import QUANTITIES

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #1d1d1f;
       background: #fafafa; }
header { background: #23395d; color: white; padding: 18px 32px; }
header h1 { margin: 0; font-size: 24px; }
header p { margin: 4px 0 0; opacity: 0.85; }
nav { background: #eef1f6; padding: 8px 32px; font-size: 14px; }
nav a { margin-right: 16px; color: #23395d; text-decoration: none; }
main { padding: 8px 32px 48px; max-width: 1200px; }
section { background: white; border: 1px solid #e3e3e3; border-radius: 6px; padding: 12px 20px;
          margin: 16px 0; }
section h2 { margin-top: 4px; font-size: 19px; color: #23395d; }
figure { display: inline-block; margin: 8px 12px 8px 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 13px; color: #555; max-width: 560px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
details { margin: 4px 0 10px; } summary { cursor: pointer; color: #23395d; font-size: 13px; }
th[title] { text-decoration: underline dotted; cursor: help; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f5f9; }
.ok { color: #1a7f37; font-weight: 600; } .bad { color: #c62828; font-weight: 600; }
.note { font-size: 13px; color: #555; }
"""


def figure_to_data_uri(fig, dpi=90):
    """Render a matplotlib figure (or a nilearn display) to a PNG data URI and close it."""
    import matplotlib.pyplot as plt

    target = getattr(fig, "frame_axes", None)
    figure = target.figure if target is not None else fig
    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    if hasattr(fig, "close"):
        fig.close()
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class Figure(NamedTuple):
    """A rendered figure of a :class:`Section`."""

    uri: str
    caption: str
    quantity: str | None = None


class Table(NamedTuple):
    """A table of a :class:`Section`, kept whole (the HTML shows all of it, or links it)."""

    frame: pd.DataFrame
    caption: str
    quantities: dict
    max_rows: int


#: Tables up to this many rows are written into the HTML (the rows past
#: ``max_rows`` in a collapsed ``<details>`` element); longer ones are linked
#: as TSV files written beside the report by :meth:`Report.save`.
MAX_INLINE_ROWS = 1000


def _cell(value):
    if isinstance(value, (float, np.floating)):
        return "n/a" if not np.isfinite(value) else f"{value:.3g}"
    return html.escape(str(value))


def _table_html(frame, quantities):
    head = []
    for col in frame.columns:
        key = quantities.get(col)
        attrs = ""
        if key is not None:
            attrs = f' data-quantity="{key}" title="{html.escape(QUANTITIES[key].description)}"'
        head.append(f"<th{attrs}>{html.escape(str(col))}</th>")
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    rows = ["<tr>" + "".join(f"<td class='num'>{_cell(v)}</td>" if num else f"<td>{_cell(v)}</td>"
                             for v, num in zip(row, numeric)) + "</tr>"
            for row in frame.itertuples(index=False)]
    return f"<table><thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


@dataclass
class Section:
    """One report section.

    Parameters
    ----------
    title : str
    text : str
        Paragraphs (plain text; blank lines separate paragraphs).
    figures : list of Figure
        Figures rendered as PNG data URIs, with their captions and the key of
        the quantity they show (:data:`~nilearn_vlm.report.QUANTITIES`).
    tables : list of Table
        Whole tables: none is cut (see :meth:`add_table`).
    html : str
        Extra raw HTML appended at the end (trusted input only).
    """

    title: str
    text: str = ""
    figures: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    html: str = ""

    def add_figure(self, fig, caption=None, quantity=None):
        """Add a figure, rendered now, with a caption.

        Parameters
        ----------
        fig : FigureSpec, matplotlib figure, nilearn display or data URI
            A :class:`~nilearn_vlm.analyses.FigureSpec` is drawn with
            :meth:`~nilearn_vlm.analyses.FigureSpec.render`.
        caption : str or None
            Default: the specification's caption or title (empty for other figures).
        quantity : str or None
            Key of the quantity the figure shows (in
            :data:`~nilearn_vlm.report.QUANTITIES`).
        """
        if quantity is not None and quantity not in QUANTITIES:
            raise KeyError(f"unknown quantity {quantity!r}; declared: {sorted(QUANTITIES)}")
        if isinstance(fig, FigureSpec):
            caption = fig.caption or fig.title if caption is None else caption
            fig = fig.render()
        uri = fig if isinstance(fig, str) else figure_to_data_uri(fig)
        self.figures.append(Figure(uri, caption or "", quantity))
        return self

    def add_table(self, frame, caption="", max_rows=20, quantities=None):
        """Add a whole table; the HTML shows its first ``max_rows`` rows and says how many there are.

        The rest is in a collapsed ``<details>`` element, or, past
        :data:`MAX_INLINE_ROWS` rows, in a TSV file that :meth:`Report.save`
        writes beside the report and the HTML links.

        Parameters
        ----------
        frame : pandas.DataFrame
        caption : str
        max_rows : int, default=20
            Rows shown before the rest is collapsed.
        quantities : dict, optional
            ``{column: quantity key}``: the columns that show a declared
            quantity (their header must be its label, :func:`~nilearn_vlm.report.label`).
        """
        quantities = dict(quantities or {})
        for col, key in quantities.items():
            if col not in frame.columns:
                raise KeyError(f"column {col!r} is not in the table; columns: {list(frame.columns)}")
            if key not in QUANTITIES:
                raise KeyError(f"unknown quantity {key!r}; declared: {sorted(QUANTITIES)}")
        self.tables.append(Table(frame.reset_index(drop=True), caption, quantities, int(max_rows)))
        return self

    def anchor(self):
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")

    def table_files(self, folder="report_tables"):
        """``{index: relative path}`` of the tables too long for the HTML (written by :meth:`Report.save`)."""
        return {i: f"{folder}/{self.anchor()}-{i}.tsv" for i, t in enumerate(self.tables)
                if len(t.frame) > MAX_INLINE_ROWS}

    def to_html(self, files="report_tables"):
        """The section as HTML; ``files`` is the folder of linked TSV tables, relative to the report."""
        parts = [f'<section id="{self.anchor()}"><h2>{html.escape(self.title)}</h2>']
        for para in [p for p in self.text.split("\n\n") if p.strip()]:
            parts.append(f"<p>{html.escape(para.strip())}</p>")
        for fig in self.figures:
            quantity = "" if fig.quantity is None else f' data-quantity="{fig.quantity}"'
            parts.append(
                f'<figure{quantity}><img src="{fig.uri}" alt="{html.escape(fig.caption)}"/>'
                f"<figcaption>{html.escape(fig.caption)}</figcaption></figure>"
            )
        linked = self.table_files(files)
        for i, table in enumerate(self.tables):
            frame, n = table.frame, len(table.frame)
            shown = frame if n <= table.max_rows else frame.head(table.max_rows)
            count = f"{n} row{'s' if n != 1 else ''}"
            if n > table.max_rows:
                count += f"; the first {table.max_rows} shown"
            caption = f"{table.caption} ({count})" if table.caption else f"({count})"
            parts.append(f'<div class="table" data-rows="{n}"><p class="note">{html.escape(caption)}</p>')
            parts.append(_table_html(shown, table.quantities))
            if i in linked:
                parts.append(f'<p class="note">The complete table ({n} rows): '
                             f'<a href="{html.escape(linked[i])}">{html.escape(linked[i])}</a></p>')
            elif n > table.max_rows:
                parts.append(f"<details><summary>All {n} rows</summary>"
                             f"{_table_html(frame, table.quantities)}</details>")
            parts.append("</div>")
        parts.append(self.html)
        parts.append("</section>")
        return "\n".join(parts)


class Report:
    """An HTML report made of :class:`Section` objects.

    Examples
    --------
    >>> import pandas as pd
    >>> report = Report("Demo", subtitle="simulated subject")
    >>> _ = report.add(Section("Scores", text="Mean r over voxels.").add_table(pd.DataFrame({"r": [0.1]})))
    >>> "<h2>Scores</h2>" in report.to_html()
    True
    """

    def __init__(self, title, subtitle=""):
        self.title = title
        self.subtitle = subtitle
        self.sections = []

    def add(self, section):
        """Append a section; returns it."""
        self.sections.append(section)
        return section

    def to_html(self, files="report_tables"):
        """The report as HTML; ``files`` is the folder of its linked TSV tables, relative to it."""
        from nilearn_vlm._version import __version__

        nav = " ".join(f'<a href="#{s.anchor()}">{html.escape(s.title)}</a>' for s in self.sections)
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        body = "\n".join(s.to_html(files) for s in self.sections)
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{html.escape(self.title)}</h1><p>{html.escape(self.subtitle)} "
            f"&middot; nilearn-vlm {__version__} &middot; {stamp}</p></header>"
            f"<nav>{nav}</nav><main>{body}</main></body></html>"
        )

    def save(self, path):
        """Write the report to ``path`` (an HTML file with its figures embedded).

        Tables longer than :data:`MAX_INLINE_ROWS` rows are written whole,
        as TSV files in the folder ``<name>_tables`` beside it, and linked.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        files = f"{path.stem}_tables"
        for section in self.sections:
            for i, rel in section.table_files(files).items():
                target = path.parent / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                section.tables[i].frame.to_csv(target, sep="\t", index=False, na_rep="n/a")
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_html(files), encoding="utf-8")
        tmp.replace(path)
        return path
