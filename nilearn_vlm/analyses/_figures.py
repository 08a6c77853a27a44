"""Figures as plain data: what to draw from which tidy table, rendered by the report."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

#: The kinds of figure a :class:`FigureSpec` can describe.
FIGURE_KINDS = ("bar", "line", "heatmap")


@dataclass
class FigureSpec:
    """A figure described as data: a tidy table and which columns go where.

    Analyses return these (``AnalysisResult.figures``) instead of drawing;
    the report renders them with matplotlib (:meth:`render`), and
    :meth:`to_dict` / :meth:`from_dict` turn them into JSON and back.

    Parameters
    ----------
    kind : {"bar", "line", "heatmap"}
        ``"bar"``: one bar per ``x`` category (grouped, or stacked with
        ``stacked=True``, by ``hue``); ``"line"``: one line per ``hue`` value
        over a numeric ``x``; ``"heatmap"``: cells at (``x``, ``y``)
        coloured by ``value``.
    data : pandas.DataFrame
        The tidy (long) table drawn: one row per bar, point or cell.
    x, y : str
        Columns on the horizontal and vertical axes (for a heatmap, the
        categories of the columns and of the rows).
    hue : str or None
        Column whose values give one bar group or line each (in order of
        first appearance).
    value : str or None
        Heatmap only: the column that colours the cells.
    low, high : str or None
        Columns with the lower and upper bounds of an interval around ``y``
        (both or neither): error bars on bars, a band around lines.
    facet : str or None
        Column whose values give one panel each, side by side.
    stacked : bool, default=False
        Bars only: stack the ``hue`` groups instead of placing them side by side.
    title : str
    xlabel, ylabel : str
        Axis labels, with the quantity's unit where it has one (e.g.
        ``"Pearson r"``, ``"voxels"``, ``"fraction of predicted voxels"``).
    caption : str
        Caption in the report (default: the title).
    reference : float or None
        A horizontal reference line at this height (e.g. 0, or a threshold).
    note : str
        Short text written in the top-left corner of each panel.
    colors : dict
        Colour of each ``hue`` value (matplotlib colour names), optional.
    ylim : tuple of two floats or None
        Limits of the vertical axis.
    size : tuple of two floats, default=(6.0, 3.5)
        Width and height of one panel, in inches.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"network": ["vision", "language"], "r": [0.3, 0.1],
    ...                       "low": [0.2, 0.0], "high": [0.4, 0.2]})
    >>> spec = FigureSpec("bar", table, x="network", y="r", low="low", high="high",
    ...                   title="Mean r per network", ylabel="Pearson r", reference=0.0)
    >>> fig = spec.render()
    >>> len(fig.axes), fig.axes[0].get_ylabel()
    (1, 'Pearson r')
    >>> FigureSpec.from_dict(spec.to_dict()) == spec
    True
    """

    kind: str
    data: pd.DataFrame
    x: str
    y: str
    hue: str | None = None
    value: str | None = None
    low: str | None = None
    high: str | None = None
    facet: str | None = None
    stacked: bool = False
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    caption: str = ""
    reference: float | None = None
    note: str = ""
    colors: dict = field(default_factory=dict)
    ylim: tuple | None = None
    size: tuple = (6.0, 3.5)

    def __post_init__(self):
        if self.kind not in FIGURE_KINDS:
            raise ValueError(f"FigureSpec kind must be one of {FIGURE_KINDS}, got {self.kind!r}")
        if not isinstance(self.data, pd.DataFrame):
            raise TypeError(f"FigureSpec data must be a pandas DataFrame (a tidy table), got {type(self.data).__name__}")
        if (self.low is None) != (self.high is None):
            raise ValueError("FigureSpec needs both low= and high= (an interval) or neither")
        if self.kind == "heatmap" and self.value is None:
            raise ValueError("a heatmap FigureSpec needs value= (the column that colours the cells)")
        roles = {r: getattr(self, r) for r in ("x", "y", "hue", "value", "low", "high", "facet")}
        missing = {r: c for r, c in roles.items() if c is not None and c not in self.data.columns}
        if missing:
            raise ValueError(
                f"FigureSpec {self.title!r}: columns {missing} are not in its data; columns: {list(self.data.columns)}"
            )
        self.size = tuple(float(v) for v in self.size)
        if self.ylim is not None:
            self.ylim = tuple(float(v) for v in self.ylim)

    def __eq__(self, other):
        if not isinstance(other, FigureSpec):
            return NotImplemented
        same = all(getattr(self, f.name) == getattr(other, f.name) for f in fields(self) if f.name != "data")
        return same and self.data.reset_index(drop=True).equals(other.data.reset_index(drop=True))

    # ------------------------------------------------------------ JSON
    def to_dict(self):
        """JSON-able dict: every field, the data as ``{"columns": [...], "rows": [[...], ...]}``.

        Returns
        -------
        dict
        """
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "data"}
        out["size"], out["ylim"] = list(self.size), None if self.ylim is None else list(self.ylim)
        rows = self.data.astype(object).where(self.data.notna(), None).to_numpy().tolist()
        out["data"] = {"columns": [str(c) for c in self.data.columns],
                       "rows": [[v.item() if isinstance(v, np.generic) else v for v in row] for row in rows]}
        return out

    @classmethod
    def from_dict(cls, doc):
        """The spec written by :meth:`to_dict`.

        Returns
        -------
        FigureSpec
        """
        doc = dict(doc)
        data = doc.pop("data")
        frame = pd.DataFrame(data["rows"], columns=data["columns"]).infer_objects()
        return cls(data=frame, **doc)

    # ------------------------------------------------------------ drawing
    def render(self):
        """Draw the figure with matplotlib (outside pyplot's state, so nothing leaks).

        Returns
        -------
        matplotlib.figure.Figure
            Labelled with the caption (``fig.get_label()``).
        """
        from matplotlib.figure import Figure

        panels = [None] if self.facet is None else list(pd.unique(self.data[self.facet]))
        fig = Figure(figsize=(self.size[0] * len(panels), self.size[1]))
        fig.set_label(self.caption or self.title)
        axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)[0])
        for ax, panel in zip(axes, panels):
            data = self.data if panel is None else self.data[self.data[self.facet] == panel]
            {"bar": self._bars, "line": self._lines, "heatmap": self._heatmap}[self.kind](fig, ax, data)
            ax.set_xlabel(self.xlabel)
            ax.set_ylabel(self.ylabel)
            if panel is not None:
                ax.set_title(str(panel), fontsize=9)
            if self.reference is not None:
                ax.axhline(self.reference, color="k", lw=0.6, ls="--" if self.reference else "-")
            if self.ylim is not None:
                ax.set_ylim(*self.ylim)
            if self.note:
                ax.text(0.02, 0.95, self.note, transform=ax.transAxes, va="top", fontsize=8)
        if self.hue is not None and self.kind != "heatmap":
            axes[-1].legend(fontsize=7, frameon=False)
        if self.title:
            if len(panels) > 1:
                fig.suptitle(self.title, fontsize=10)
            else:
                axes[0].set_title(self.title, fontsize=10)
        fig.tight_layout()
        return fig

    def _groups(self, data):
        if self.hue is None:
            return [(None, data)]
        return [(g, data[data[self.hue] == g]) for g in pd.unique(self.data[self.hue])]

    def _bars(self, fig, ax, data):
        cats = list(pd.unique(self.data[self.x]))
        groups = self._groups(data)
        width = 0.8 if self.stacked else 0.8 / len(groups)
        bottom = np.zeros(len(cats))
        for k, (g, sub) in enumerate(groups):
            sub = sub.drop_duplicates(self.x).set_index(self.x).reindex(cats)
            heights = sub[self.y].to_numpy(dtype=float)
            pos = np.arange(len(cats)) + (0 if self.stacked else (k - (len(groups) - 1) / 2) * width)
            kw = {"label": None if g is None else str(g), "color": self.colors.get(g, "#4c72b0" if g is None else None)}
            ax.bar(pos, np.nan_to_num(heights), width=width, bottom=bottom if self.stacked else None, **kw)
            if self.low is not None:
                err = np.abs(np.nan_to_num([heights - sub[self.low].to_numpy(dtype=float),
                                            sub[self.high].to_numpy(dtype=float) - heights]))
                ax.errorbar(pos, heights + (bottom if self.stacked else 0), yerr=err, fmt="none", c="k", lw=0.8)
            if self.stacked:
                bottom = bottom + np.nan_to_num(heights)
        labels = [str(c) for c in cats]
        long = len(cats) > 3 and max(len(s) for s in labels) > 4
        ax.set_xticks(np.arange(len(cats)), labels, rotation=30 if long else 0, ha="right" if long else "center",
                      fontsize=8)

    def _lines(self, fig, ax, data):
        for g, sub in self._groups(data):
            sub = sub.sort_values(self.x, kind="stable")
            color = self.colors.get(g)
            line, = ax.plot(sub[self.x], sub[self.y], marker="o", ms=3, color=color,
                            label=None if g is None else str(g))
            if self.low is not None:
                ax.fill_between(sub[self.x].to_numpy(dtype=float), sub[self.low].to_numpy(dtype=float),
                                sub[self.high].to_numpy(dtype=float), alpha=0.2, color=line.get_color())

    def _heatmap(self, fig, ax, data):
        grid = data.pivot_table(index=self.y, columns=self.x, values=self.value, aggfunc="mean", sort=False)
        finite = grid.to_numpy(dtype=float)
        bound = np.nanmax(np.abs(finite)) if np.isfinite(finite).any() else 1.0
        signed = np.nanmin(finite) < 0 if np.isfinite(finite).any() else False
        im = ax.imshow(finite, aspect="auto", cmap="RdBu_r" if signed else "viridis",
                       vmin=-bound if signed else None, vmax=bound if signed else None)
        ax.set_xticks(np.arange(grid.shape[1]), [str(c) for c in grid.columns], rotation=30, ha="right", fontsize=8)
        ax.set_yticks(np.arange(grid.shape[0]), [str(i) for i in grid.index], fontsize=8)
        fig.colorbar(im, ax=ax, label=self.value)
