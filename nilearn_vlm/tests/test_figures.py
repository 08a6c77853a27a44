"""Figure specifications: analyses return figures as data; the report draws them."""

import doctest
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from nilearn_vlm.analyses import AnalysisResult, FigureSpec


def _bars():
    return pd.DataFrame({
        "network": ["vision", "language", "vision", "language"],
        "model": ["clip", "clip", "meter", "meter"],
        "r": [0.3, 0.1, 0.2, -0.05],
        "low": [0.25, 0.0, 0.1, -0.1],
        "high": [0.35, 0.2, 0.3, 0.0],
    })


def test_bad_specs_say_what_is_wrong():
    data = _bars()
    with pytest.raises(ValueError, match="kind must be one of .'bar', 'line', 'heatmap'., got 'pie'"):
        FigureSpec("pie", data, x="network", y="r")
    with pytest.raises(ValueError, match=r"columns \{'hue': 'modle'\} are not in its data"):
        FigureSpec("bar", data, x="network", y="r", hue="modle")
    with pytest.raises(ValueError, match="needs both low= and high="):
        FigureSpec("bar", data, x="network", y="r", low="low")
    with pytest.raises(ValueError, match="heatmap FigureSpec needs value="):
        FigureSpec("heatmap", data, x="network", y="model")
    with pytest.raises(TypeError, match="data must be a pandas DataFrame"):
        FigureSpec("bar", data.to_dict(), x="network", y="r")


def test_bars_draw_the_table():
    data = _bars()
    fig = FigureSpec("bar", data, x="network", y="r", hue="model", low="low", high="high",
                     ylabel="Pearson r", reference=0.0, ylim=(-0.2, 0.5), note="n = 4").render()
    ax = fig.axes[0]
    bars = [p for p in ax.patches]
    assert len(bars) == 4  # 2 networks x 2 models
    # grouped by model, in the table's order: clip's bars first
    np.testing.assert_allclose([b.get_height() for b in bars], [0.3, 0.1, 0.2, -0.05])
    centers = [b.get_x() + b.get_width() / 2 for b in bars]
    np.testing.assert_allclose(centers, [-0.2, 0.8, 0.2, 1.2])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["vision", "language"]
    # error bars span low..high
    segments = np.concatenate([c.get_segments() for c in ax.collections])
    spans = sorted((float(s[:, 1].min()), float(s[:, 1].max())) for s in segments)
    assert spans == sorted(zip(data["low"], data["high"]))
    assert ax.get_ylabel() == "Pearson r" and ax.get_ylim() == (-0.2, 0.5)
    assert [t.get_text() for t in ax.texts] == ["n = 4"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["clip", "meter"]
    assert any(np.allclose(line.get_ydata(), 0.0) for line in ax.lines)  # the reference line


def test_stacked_bars_add_up():
    data = pd.DataFrame({"network": ["v", "v", "l", "l"], "part": ["a", "b", "a", "b"], "share": [0.2, 0.5, 0.4, 0.1]})
    ax = FigureSpec("bar", data, x="network", y="share", hue="part", stacked=True).render().axes[0]
    tops = [(p.get_x(), p.get_y() + p.get_height()) for p in ax.patches]
    np.testing.assert_allclose(sorted(t for _, t in tops), sorted([0.2, 0.7, 0.4, 0.5]))


def test_lines_with_bands_and_facets():
    data = pd.DataFrame({
        "stream": ["vision"] * 3 + ["text"] * 3,
        "layer": [2, 0, 1, 0, 1, 2],
        "r": [0.3, 0.1, 0.2, 0.05, 0.0, 0.1],
    })
    data["low"], data["high"] = data["r"] - 0.05, data["r"] + 0.05
    spec = FigureSpec("line", data, x="layer", y="r", low="low", high="high", facet="stream", title="curves")
    fig = spec.render()
    assert [ax.get_title() for ax in fig.axes] == ["vision", "text"]
    assert fig.get_suptitle() == "curves" and fig.get_label() == "curves"
    (line,) = fig.axes[0].lines
    np.testing.assert_allclose(line.get_xdata(), [0, 1, 2])  # drawn in x order
    np.testing.assert_allclose(line.get_ydata(), [0.1, 0.2, 0.3])
    (band,) = [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)]
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(0.05) and ys.max() == pytest.approx(0.35)


def test_heatmap_cells_are_the_values():
    rng = np.random.default_rng(0)
    rows, cols = ["a", "b", "c"], ["x", "y"]
    values = rng.normal(size=(3, 2))
    data = pd.DataFrame([{"row": r, "col": c, "v": values[i, j]} for i, r in enumerate(rows)
                         for j, c in enumerate(cols)])
    ax = FigureSpec("heatmap", data.sample(frac=1, random_state=0), x="col", y="row", value="v").render().axes[0]
    img = ax.images[0].get_array()
    order_r = [t.get_text() for t in ax.get_yticklabels()]
    order_c = [t.get_text() for t in ax.get_xticklabels()]
    expected = np.array([[values[rows.index(r), cols.index(c)] for c in order_c] for r in order_r])
    np.testing.assert_allclose(img, expected)
    # signed values get a symmetric colour scale
    lo, hi = ax.images[0].get_clim()
    assert lo == pytest.approx(-hi) and hi == pytest.approx(np.abs(values).max())


def test_json_round_trip():
    data = _bars()
    data.loc[1, "low"] = np.nan
    data["n"] = np.arange(4)
    spec = FigureSpec("bar", data, x="network", y="r", hue="model", low="low", high="high", title="t",
                      colors={"clip": "tab:red"}, ylim=(0, 1), size=(4, 3))
    doc = json.loads(json.dumps(spec.to_dict(), allow_nan=False))
    back = FigureSpec.from_dict(doc)
    assert back == spec
    assert back.data["n"].dtype.kind == "i" and np.isnan(back.data.loc[1, "low"])
    assert back != FigureSpec.from_dict({**doc, "title": "other"})


def test_analysis_results_carry_specs_not_figures(tmp_path):
    table = pd.DataFrame({"x": [0, 1, 2], "y": [1.0, 0.5, 0.25]})
    spec = FigureSpec("line", table, x="x", y="y", title="decay", caption="y halves with x")
    res = AnalysisResult("decay", tables={"main": table}, figures=[spec])
    (fig,) = res.plot()
    assert fig.get_label() == "y halves with x"
    assert res.summary()["figures"] == ["decay"]
    res.save(tmp_path)
    (doc,) = json.loads((tmp_path / "figures.json").read_text())
    assert FigureSpec.from_dict(doc) == spec
    res.figures.append(fig)
    with pytest.raises(TypeError, match=r"figures\[1\] is a Figure; analyses return nilearn_vlm.analyses.FigureSpec"):
        res.plot()


def test_the_analysis_contract_does_not_import_the_report():
    code = ("import sys, nilearn_vlm.analyses, nilearn_vlm.results; "
            "print(sorted(m for m in sys.modules if m.startswith('nilearn_vlm.report')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_docstring_examples_run():
    from nilearn_vlm.analyses import _base, _figures
    from nilearn_vlm.networks import _images
    from nilearn_vlm.report import _analyses, _pipeline_report
    from nilearn_vlm import results

    for mod in (_figures, _base, _analyses, _pipeline_report, results, _images):
        result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, mod.__name__
        assert result.attempted > 0, mod.__name__
