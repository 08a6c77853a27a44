import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from nilearn_vlm.report import Report, Section  # noqa: E402


def test_report_embeds_figures_and_tables(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    report = Report("Title <&>", subtitle="sub")
    report.add(Section("Scores & maps", text="first\n\nsecond").add_figure(fig, "a line")
               .add_table(pd.DataFrame({"network": ["vision"], "r": [0.123456]})))
    path = report.save(tmp_path / "r" / "report.html")
    html = path.read_text()
    assert "Title &lt;&amp;&gt;" in html
    assert "<p>first</p>" in html and "<p>second</p>" in html
    assert 'src="data:image/png;base64,' in html
    assert "0.123" in html and "vision" in html
    assert 'href="#scores---maps"' in html and 'id="scores---maps"' in html
    assert not plt.get_fignums()  # figures are closed once rendered


def test_sections_render_figure_specifications():
    from nilearn_vlm.analyses import FigureSpec

    table = pd.DataFrame({"network": ["vision", "language"], "r": [0.3, 0.1]})
    spec = FigureSpec("bar", table, x="network", y="r", title="r by network")
    section = Section("Scores").add_figure(spec).add_figure(spec, "own caption")
    assert [f.caption for f in section.figures] == ["r by network", "own caption"]
    assert all(f.uri.startswith("data:image/png;base64,") for f in section.figures)
    assert not plt.get_fignums()
