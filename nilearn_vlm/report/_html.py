"""A self-contained HTML report: sections of text, figures and tables."""

from __future__ import annotations

import base64
import datetime
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

from nilearn_vlm.analyses import FigureSpec

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
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
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


@dataclass
class Section:
    """One report section.

    Parameters
    ----------
    title : str
    text : str
        Paragraphs (plain text; blank lines separate paragraphs).
    figures : list of (data URI, caption)
        Figures rendered as PNG data URIs.
    tables : list of (pandas.DataFrame, caption)
    html : str
        Extra raw HTML appended at the end (trusted input only).
    """

    title: str
    text: str = ""
    figures: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    html: str = ""

    def add_figure(self, fig, caption=None):
        """Add a figure, rendered now, with a caption.

        Parameters
        ----------
        fig : FigureSpec, matplotlib figure, nilearn display or data URI
            A :class:`~nilearn_vlm.analyses.FigureSpec` is drawn with
            :meth:`~nilearn_vlm.analyses.FigureSpec.render`.
        caption : str or None
            Default: the specification's caption or title (empty for other figures).
        """
        if isinstance(fig, FigureSpec):
            caption = fig.caption or fig.title if caption is None else caption
            fig = fig.render()
        uri = fig if isinstance(fig, str) else figure_to_data_uri(fig)
        self.figures.append((uri, caption or ""))
        return self

    def add_table(self, frame, caption="", max_rows=40):
        """Add a pandas table (the first ``max_rows`` rows)."""
        self.tables.append((frame.head(max_rows), caption))
        return self

    def anchor(self):
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")

    def to_html(self):
        parts = [f'<section id="{self.anchor()}"><h2>{html.escape(self.title)}</h2>']
        for para in [p for p in self.text.split("\n\n") if p.strip()]:
            parts.append(f"<p>{html.escape(para.strip())}</p>")
        for uri, caption in self.figures:
            parts.append(
                f'<figure><img src="{uri}" alt="{html.escape(caption)}"/>'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        for frame, caption in self.tables:
            if caption:
                parts.append(f'<p class="note">{html.escape(caption)}</p>')
            parts.append(frame.to_html(index=False, float_format=lambda v: f"{v:.3g}", border=0))
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

    def to_html(self):
        from nilearn_vlm._version import __version__

        nav = " ".join(f'<a href="#{s.anchor()}">{html.escape(s.title)}</a>' for s in self.sections)
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        body = "\n".join(s.to_html() for s in self.sections)
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{html.escape(self.title)}</h1><p>{html.escape(self.subtitle)} "
            f"&middot; nilearn-vlm {__version__} &middot; {stamp}</p></header>"
            f"<nav>{nav}</nav><main>{body}</main></body></html>"
        )

    def save(self, path):
        """Write the report to ``path`` (a self-contained HTML file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_html(), encoding="utf-8")
        tmp.replace(path)
        return path
