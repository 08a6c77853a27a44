"""What the pipeline report shows: numbers read back from its HTML against the results they come from.

Every column and figure that shows a declared quantity is marked with its key
and labelled with its label; the numbers are recomputed here from the
``Results`` with NumPy; the atoms' signs follow the convention; no table is cut.
"""

import numpy as np
import pandas as pd
import pytest

from nilearn_vlm.networks import AtlasLabels
from nilearn_vlm.networks._base import make_lookup
from nilearn_vlm.report import (
    MAX_INLINE_ROWS,
    QUANTITIES,
    SIGN_CONVENTION,
    PlantedTruth,
    Report,
    Section,
    atom_orientation,
    build_report,
    label,
)
from nilearn_vlm.report.tests._read_html import column, read_report
from nilearn_vlm.results import Results

N_VOX = 60


def _results(seed=0):
    """A small result: 3 atoms, networks vision (0-19) and language (20-39), key neurons of mixed signs."""
    rng = np.random.default_rng(seed)
    t = rng.standard_normal((3, N_VOX)) * 3
    t[0, :20] = -6 - rng.random(20)  # atom0: vision, negative in the dictionary's signs
    t[1, 20:40] = 5 + rng.random(20)  # atom1: language, positive
    signs = (np.abs(t) > 4).astype(np.int8) * np.sign(t).astype(np.int8)
    r = np.clip(rng.normal(0.05, 0.1, N_VOX), -1, 1)
    r[:20] += 0.4
    p_fwe = np.where(r > 0.3, 0.01, 0.6)
    units = [f"vision.{layer}.attn_out.{i}" for layer in range(3) for i in range(10)]
    # atom0's key neurons load mostly negatively (orientation -1), atom1's positively; atom2 has none
    kn = pd.DataFrame({"atom": ["atom0"] * 5 + ["atom1"] * 3, "unit": [0, 1, 2, 3, 4, 10, 11, 12],
                       "loading": [-0.9, -0.8, -0.7, 0.5, -0.4, 0.6, 0.7, -0.2], "z": 0.0,
                       "sign": [-1, -1, -1, 1, -1, 1, 1, -1]})
    labels = np.repeat([1, 2, 0], [20, 20, N_VOX - 40])
    return Results(
        "toy", subject="01", unit_names=units, atom_names=["atom0", "atom1", "atom2"],
        atom_loadings=rng.standard_normal((3, len(units))), glm_t=t, glm_sign_sets=signs, encoder_r=r,
        encoder_p=p_fwe / 2, encoder_p_fwe=p_fwe, tables={"key_neurons": kn},
        network_labels={"toy": AtlasLabels("toy", "MNI152", labels, make_lookup([1, 2], ["Visual", "Language"]))},
        settings={"pipeline": {"glm_alpha": 0.05, "glm_mode": "univariate", "n_permutations": 100}, "t_r": 2.0},
        timings={"loading BOLD": 0.5, "GLM": 1.25},
    )


@pytest.fixture(scope="module")
def report_html():
    res = _results()
    return res, build_report(res).to_html()


def _tables_of(tables, section):
    return [t for t in tables if t["section"] == section and not t["in_details"]]


def test_every_marked_column_and_figure_carries_its_quantitys_label(report_html):
    _, html = report_html
    tables, figures, _ = read_report(html)
    marked = 0
    for table in tables:
        for head, key in zip(table["header"], table["quantities"]):
            if key is None:
                assert head not in {q.label(s) for q in QUANTITIES.values() for s in (None, "mean")}, \
                    f"column {head!r} shows a declared quantity without its mark"
                continue
            marked += 1
            assert head in (label(key), label(key, "mean")), f"column {head!r} is marked {key!r}"
    assert marked >= 8
    for fig in figures:
        assert fig["quantity"] in QUANTITIES, fig
        assert QUANTITIES[fig["quantity"]].name in fig["caption"], fig
    # r, not R^2: the old label is gone, and the encoder section never shows the CV R^2 it used to
    assert "mean r" not in html and "cv_scores" not in html


def test_numbers_read_back_from_the_html_match_the_results(report_html):
    res, html = report_html
    tables, _, _ = read_report(html)
    (per_net,) = _tables_of(tables, "encoding-scores")
    nets = column(per_net, "network")
    assert nets == ["vision", "language", "(outside)"]
    members = {"vision": np.arange(N_VOX) < 20, "language": (np.arange(N_VOX) >= 20) & (np.arange(N_VOX) < 40),
               "(outside)": np.arange(N_VOX) >= 40}
    mean_r = column(per_net, label("encoder_r", "mean"))
    n_sig = column(per_net, label("n_encoded"))
    size = column(per_net, label("n_voxels"))
    for net, r, n, k in zip(nets, mean_r, n_sig, size):
        m = members[net]
        assert r == pytest.approx(res.encoder_r[m].mean(), abs=5e-4, rel=5e-3)  # 3 significant digits
        assert n == int((res.encoder_p_fwe[m] < 0.05).sum()) and k == m.sum()
    # the per-network counts of positive and negative voxels, in the report's signs
    counts = next(t for t in _tables_of(tables, "signed-atom-maps--positive-and-negative-bns")
                  if label("n_positive") in t["header"])
    orient = {"atom0": -1, "atom1": 1, "atom2": 1}
    for row in counts["rows"]:
        d = dict(zip(counts["header"], row))
        m = members[d["network"]]
        k = int(d["map"][-1])
        shown = res.glm_sign_sets[k] * orient[d["map"]]
        assert float(d[label("n_positive")]) == (shown[m] > 0).sum()
        assert float(d[label("n_negative")]) == (shown[m] < 0).sum()
    # timings in seconds
    (timings,) = _tables_of(tables, "timings")
    assert column(timings, label("seconds")) == [0.5, 1.25]


def test_atoms_are_signed_by_their_key_neurons_or_by_the_planted_drivers():
    res = _results()
    table = atom_orientation(res)
    assert table["orientation"].tolist() == [-1, 1, 1]
    assert table["reference"].tolist() == ["its 5 key neurons", "its 3 key neurons", "none (the dictionary's sign)"]
    # a planted driver whose units load positively on atom1 keeps it; one whose units mirror atom2 flips it
    recovery = pd.DataFrame({"site": ["vision.1.attn_out", "vision.2.attn_out"], "network": ["language", "vision"],
                             "sign": [1, -1], "atom": [1, 2], "orientation": [1, -1]})
    truth = PlantedTruth("toy", recovery, {"network_f1": 1.0, "sign_accuracy": 1.0, "mean_key_recall": 1.0})
    table = atom_orientation(res, truth)
    assert table["orientation"].tolist() == [-1, 1, -1]
    assert table["reference"].iloc[2] == "the units of the planted driver vision.2.attn_out"


def test_a_planted_positive_effect_shows_positive():
    """Vision planted positive, drawn negative by the dictionary: the report shows it positive, once explained."""
    res = _results()
    recovery = pd.DataFrame({"site": ["vision.0.attn_out"], "network": ["vision"], "sign": [1], "atom": [0],
                             "orientation": [-1], "dice": [1.0], "sign_accuracy": [1.0]})
    truth = PlantedTruth("toy", recovery, {"network_f1": 1.0, "sign_accuracy": 1.0, "mean_key_recall": 1.0})
    html = build_report(res, truth=truth).to_html()
    tables, _, _ = read_report(html)
    counts = next(t for t in tables if label("n_positive") in t["header"] and not t["in_details"])
    rows = [dict(zip(counts["header"], r)) for r in counts["rows"]]
    vision = next(r for r in rows if r["map"] == "atom0" and r["network"] == "vision")
    assert float(vision[label("n_positive")]) == 20 and float(vision[label("n_negative")]) == 0
    # the convention is explained once, in the first section
    assert html.count("Sign convention.") == 1 and SIGN_CONVENTION.split(".")[1][:40] in html


def test_no_table_is_cut_silently(tmp_path):
    long = pd.DataFrame({"unit": np.arange(150), "value": np.linspace(0, 1, 150)})
    huge = pd.DataFrame({"unit": np.arange(MAX_INLINE_ROWS + 5)})
    report = Report("t")
    report.add(Section("Tables").add_table(long, "long").add_table(huge, "huge").add_table(long.head(3), "short"))
    path = report.save(tmp_path / "report.html")
    _, _, blocks = read_report(path.read_text())
    short, long_, huge_ = sorted(blocks, key=lambda b: b["rows"])
    assert short["rows"] == 3 and len(short["tables"][0]["rows"]) == 3 and not short["links"]
    # 150 rows: 20 shown, all 150 in a collapsed <details>
    assert [len(t["rows"]) for t in long_["tables"]] == [20, 150] and long_["tables"][1]["in_details"]
    # past MAX_INLINE_ROWS: the first rows shown, the whole table written beside the report and linked
    (link,) = huge_["links"]
    assert len(pd.read_csv(tmp_path / link, sep="\t")) == MAX_INLINE_ROWS + 5
    assert f"({MAX_INLINE_ROWS + 5} rows; the first 20 shown)" in path.read_text()


def test_methods_list_every_setting_and_version(report_html):
    res, html = report_html
    tables, _, _ = read_report(html)
    (table,) = _tables_of(tables, "methods")
    keys = column(table, "key")
    assert {"settings.pipeline.glm_alpha", "settings.t_r", "provenance.python"} <= set(keys)
    assert {f"provenance.packages.{p}" for p in res.provenance["packages"]} <= set(keys)
    assert "FDR q &lt; 0.05" in html
