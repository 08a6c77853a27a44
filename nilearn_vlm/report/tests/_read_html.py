"""Reading a report's HTML back (stdlib parser): its tables with their quantity marks, its figures."""

from html.parser import HTMLParser


class _Reader(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.figures, self.blocks = [], [], []
        self._table = self._row = self._cell = None
        self._section = None
        self._in_caption = False
        self._depth_details = 0
        self._block = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._section = attrs.get("id")
        elif tag == "div" and attrs.get("class") == "table":
            self._block = {"section": self._section, "rows": int(attrs["data-rows"]), "tables": [], "links": []}
            self.blocks.append(self._block)
        elif tag == "details":
            self._depth_details += 1
        elif tag == "table":
            self._table = {"section": self._section, "header": [], "quantities": [], "rows": [],
                           "in_details": self._depth_details > 0}
        elif tag == "tr" and self._table is not None:
            self._row, self._header_row = [], False
        elif tag in ("th", "td") and self._row is not None:
            self._cell = ""
            if tag == "th":
                self._header_row = True
                self._table["quantities"].append(attrs.get("data-quantity"))
        elif tag == "figure":
            self.figures.append({"section": self._section, "quantity": attrs.get("data-quantity"), "caption": ""})
        elif tag == "figcaption":
            self._in_caption = True
        elif tag == "a" and self._block is not None:
            self._block["links"].append(attrs.get("href"))

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._header_row:
                self._table["header"] = self._row
            else:
                self._table["rows"].append(self._row)
            self._row = None
        elif tag == "table" and self._table is not None:
            self.tables.append(self._table)
            if self._block is not None:
                self._block["tables"].append(self._table)
            self._table = None
        elif tag == "details":
            self._depth_details -= 1
        elif tag == "figcaption":
            self._in_caption = False
        elif tag == "div":
            self._block = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        elif self._in_caption:
            self.figures[-1]["caption"] += data


def read_report(html):
    """``(tables, figures, blocks)`` of a report's HTML.

    tables: dicts with ``section``, ``header``, ``quantities`` (one per
    column, None when unmarked), ``rows`` (lists of cell texts), ``in_details``.
    figures: dicts with ``section``, ``quantity``, ``caption``.
    blocks: one per table of the report: ``rows`` (its declared length),
    ``tables`` (the HTML tables showing it) and ``links``.
    """
    reader = _Reader()
    reader.feed(html)
    return reader.tables, reader.figures, reader.blocks


def column(table, name):
    """The cells of a column, as floats where they read as numbers."""
    j = table["header"].index(name)
    out = []
    for row in table["rows"]:
        try:
            out.append(float(row[j]))
        except ValueError:
            out.append(row[j])
    return out
