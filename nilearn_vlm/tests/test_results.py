"""Results: save/load round trips with array, NIfTI, CIFTI and surface data."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from nilearn_vlm.networks import AtlasLabels
from nilearn_vlm.networks._base import make_lookup
from nilearn_vlm.plugins import ALLOW_ENV, reset_plugins
from nilearn_vlm.results import ImageSpace, Results, collect_provenance, file_digest


@pytest.fixture(autouse=True, scope="module")
def _only_core_atlases():
    # model plugins may import torch when loaded; these tests need atlases only
    mp = pytest.MonkeyPatch()
    mp.setenv(ALLOW_ENV, "atlases")
    reset_plugins()
    yield
    mp.undo()
    reset_plugins()


def _fields(n_vox, rng, n_units=6, n_atoms=3, n_scans=20):
    units = [f"vision.{layer}.attn_out.{i}" for layer in (0, 1) for i in range(n_units // 2)]
    t = rng.normal(size=(n_atoms, n_vox))
    signs = (np.sign(t) * (np.abs(t) > 1)).astype(np.int8)
    table = pd.DataFrame(
        {"map": ["atom0", "atom1"], "network": ["vision", ""], "n_pos": [3, 0], "frac": [0.5, np.nan]}
    )
    return {
        "unit_names": units,
        "atom_loadings": rng.normal(size=(n_atoms, n_units)),
        "atom_timecourses": rng.normal(size=(n_scans, n_atoms)).astype(np.float32),
        "glm_beta": rng.normal(size=(n_atoms, n_vox)),
        "glm_t": t,
        "glm_sign_sets": signs,
        "encoder_cv_r2": rng.uniform(-0.1, 0.5, size=n_vox),
        "encoder_alpha": 10.0 ** rng.integers(-2, 4, size=n_vox),
        "unit_voxel_topk": {"index": rng.integers(0, n_units, size=(2, n_vox)), "value": rng.normal(size=(2, n_vox))},
        "layer_scores": {"vision.0.attn_out": rng.normal(size=n_vox), "vision.1.attn_out": rng.normal(size=n_vox)},
        "tables": {"counts": table, "indexed": table.set_index(["map", "network"])},
        "network_labels": {
            "toy": AtlasLabels(
                "toy", "MNI152", rng.integers(0, 3, n_vox), make_lookup([1, 2], ["Visual", "Region"]), "a toy"
            )
        },
        "settings": {"alpha": 0.05, "n_atoms": n_atoms, "sites": ["vision.*.attn_out"]},
        "provenance": collect_provenance(seeds={"atoms": 0}, weight_digests={"clip": "sha256:00"}),
        "meta": {"note": "test"},
        "encoder_r": rng.uniform(-0.2, 0.6, size=n_vox).astype(np.float32),
        "encoder_p": rng.uniform(0, 1, size=n_vox),
        "encoder_p_fwe": rng.uniform(0, 1, size=n_vox),
        "layer_fold_scores": {"vision.0.attn_out": rng.normal(size=(4, n_vox)).astype(np.float32),
                              "vision.1.attn_out": rng.normal(size=(4, n_vox)).astype(np.float32)},
        "runs": np.repeat([1, 2, 3, 4], n_scans // 4),
        "run_labels": ["01", "02", "03", "04"],
        "timings": {"loading BOLD": 0.25, "fit": 2.5},
    }


def _assert_same(a, b):
    assert a.model == b.model and a.subject == b.subject
    for name in ("atom_loadings", "atom_timecourses", "glm_beta", "glm_t", "glm_sign_sets",
                 "encoder_cv_r2", "encoder_scores", "encoder_alpha", "encoder_r", "encoder_p", "encoder_p_fwe",
                 "runs"):
        x, y = getattr(a, name), getattr(b, name)
        np.testing.assert_array_equal(x, y, err_msg=name)
        assert x.dtype == y.dtype, name
    assert a.unit_names == b.unit_names and a.unit_sites == b.unit_sites
    assert a.atom_names == b.atom_names and a.regressor_names == b.regressor_names
    for k in ("index", "value"):
        np.testing.assert_array_equal(a.unit_voxel_topk[k], b.unit_voxel_topk[k])
    assert list(a.layer_scores) == list(b.layer_scores)
    for k in a.layer_scores:
        np.testing.assert_array_equal(a.layer_scores[k], b.layer_scores[k])
    assert list(a.layer_fold_scores) == list(b.layer_fold_scores)
    for k in a.layer_fold_scores:
        np.testing.assert_array_equal(a.layer_fold_scores[k], b.layer_fold_scores[k])
        assert a.layer_fold_scores[k].dtype == b.layer_fold_scores[k].dtype
    assert a.run_labels == b.run_labels and a.timings == b.timings
    for k, t in a.tables.items():
        pd.testing.assert_frame_equal(t, b.tables[k], check_dtype=False)
    for k, lab in a.network_labels.items():
        np.testing.assert_array_equal(lab.labels, b.network_labels[k].labels)
        pd.testing.assert_frame_equal(lab.lookup, b.network_labels[k].lookup)
        assert lab.description == b.network_labels[k].description
    assert a.settings == b.settings and a.provenance == b.provenance and a.meta == b.meta


def test_round_trip_arrays(tmp_path):
    rng = np.random.default_rng(0)
    import nilearn_vlm

    assert nilearn_vlm.Results is Results
    res = Results("clip", "sub-01", space=ImageSpace.from_array(40), **_fields(40, rng))
    assert res.unit_sites[0] == "vision.0.attn_out" and res.sites == ["vision.0.attn_out", "vision.1.attn_out"]
    assert res.regressor_names == ["atom0", "atom1", "atom2"] and res.n_voxels == 40
    res.save(tmp_path / "r")
    back = Results.load(tmp_path / "r")
    _assert_same(res, back)
    assert back.space.kind == "array" and back.space.n_voxels == 40
    assert not any((tmp_path / "r" / "images").iterdir())  # arrays make no images
    # nothing pickled: npz loads with allow_pickle=False, json is plain
    with np.load(tmp_path / "r" / "arrays.npz", allow_pickle=False) as npz:
        assert npz["glm_sign_sets"].dtype == np.int8
    doc = json.loads((tmp_path / "r" / "results.json").read_text())
    assert doc["provenance"]["packages"]["numpy"] == np.__version__
    assert doc["provenance"]["seeds"] == {"atoms": 0}


def test_round_trip_nifti_and_images(tmp_path):
    from nilearn.maskers import NiftiMasker

    rng = np.random.default_rng(1)
    mask = np.zeros((5, 6, 4), np.int8)
    mask[1:4, 1:5, 1:3] = 1
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = [-10, -12, -8]
    masker = NiftiMasker(mask_img=nib.Nifti1Image(mask, affine), standardize=None).fit()
    n = int(mask.sum())
    res = Results("meter", "sub-02", space=ImageSpace.from_masker(masker), **_fields(n, rng))
    folder = res.save(tmp_path / "r")
    back = Results.load(folder)
    _assert_same(res, back)
    assert back.space.kind == "nifti" and back.space.space == "MNI152"
    np.testing.assert_array_equal(np.asarray(back.space.masker.mask_img_.dataobj) != 0, mask != 0)
    # the saved images hold the arrays (read back through the loaded masker)
    img = nib.load(folder / "images" / "glm_t.nii.gz")
    assert img.shape == (5, 6, 4, 3)
    np.testing.assert_allclose(back.space.transform(img), res.glm_t.astype(np.float32))
    np.testing.assert_array_equal(
        back.space.transform(folder / "images" / "glm_sign_sets.nii.gz"), res.glm_sign_sets
    )
    # to_img gives images of the input's kind
    t_img = back.to_img("glm_t")
    np.testing.assert_array_equal(np.asarray(t_img.dataobj)[mask != 0], res.glm_t.T.astype(np.float32))
    assert back.to_img("layer_scores").shape == (5, 6, 4, 2)
    pref, names = back.layer_preference_img()
    scores = np.vstack([res.layer_scores[k] for k in names])
    np.testing.assert_array_equal(back.space.transform(pref)[0], np.argmax(scores, axis=0) + 1)


def test_round_trip_cifti(tmp_path):
    rng = np.random.default_rng(2)
    axis = nib.cifti2.BrainModelAxis.from_mask(np.ones(30, bool), name="CortexLeft") + \
        nib.cifti2.BrainModelAxis.from_mask(np.ones(20, bool), name="CortexRight")
    res = Results("clip", "sub-03", space=ImageSpace.from_cifti(axis), **_fields(50, rng))
    folder = res.save(tmp_path / "r")
    back = Results.load(folder)
    _assert_same(res, back)
    assert back.space.brain_models == axis
    img = nib.load(folder / "images" / "glm_t.dscalar.nii")
    assert list(img.header.get_axis(0).name) == ["atom0", "atom1", "atom2"]
    np.testing.assert_allclose(img.get_fdata(), res.glm_t.astype(np.float32))


def test_round_trip_surface(tmp_path):
    from nilearn.maskers import SurfaceMasker
    from nilearn.surface import InMemoryMesh, PolyMesh, SurfaceImage

    rng = np.random.default_rng(3)
    coords = rng.normal(size=(6, 3))
    faces = np.array([[0, 1, 2], [1, 2, 3], [3, 4, 5]])
    mesh = PolyMesh(left=InMemoryMesh(coords, faces), right=InMemoryMesh(coords + 5, faces))
    mask = SurfaceImage(mesh, {"left": np.array([1, 1, 0, 1, 1, 1], bool), "right": np.ones(6, bool)})
    masker = SurfaceMasker(mask_img=mask, standardize=None).fit()
    res = Results("clip", "sub-04", space=ImageSpace.from_masker(masker), **_fields(11, rng))
    folder = res.save(tmp_path / "r")
    back = Results.load(folder)
    _assert_same(res, back)
    assert back.space.kind == "surface" and back.space.n_voxels == 11
    img = SurfaceImage(
        back.space.masker.mask_img_.mesh,
        {h: str(folder / "images" / f"glm_t_hemi-{s}.func.gii") for h, s in (("left", "L"), ("right", "R"))},
    )
    np.testing.assert_allclose(back.space.transform(img), res.glm_t.astype(np.float32))


def test_optional_fields_and_errors(tmp_path):
    res = Results("clip")
    assert res.n_voxels is None and res.n_atoms is None and res.regressor_names is None
    back = Results.load(res.save(tmp_path / "empty"))
    assert back.glm_t is None and back.unit_names is None and back.space is None
    with pytest.raises(ValueError, match="disagree on the number of voxels"):
        Results("clip", glm_t=np.zeros((2, 5)), encoder_scores=np.zeros(4))
    with pytest.raises(ValueError, match="loadings are .n_atoms, n_units."):
        Results("clip", unit_names=["a.0.ffn.0", "a.0.ffn.1"], atom_loadings=np.zeros((3, 5)))
    with pytest.raises(ValueError, match="not of the form 'stream.layer.kind.index'"):
        Results("clip", unit_names=["a.0", "a.1"])
    with pytest.raises(ValueError, match="must hold only -1, 0 and 1"):
        Results("clip", glm_sign_sets=np.array([[2, 0]]))
    with pytest.raises(ValueError, match="disagree on the number of regressors"):
        Results("clip", glm_t=np.zeros((2, 5)), glm_beta=np.zeros((3, 5)))
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        Results("clip", tables={"x": [1, 2]})
    with pytest.raises(FileNotFoundError, match="not a folder written by Results.save"):
        Results.load(tmp_path)
    with pytest.raises(ValueError, match="has no space"):
        Results("clip", glm_t=np.zeros((1, 3))).to_img("glm_t")
    with pytest.raises(TypeError, match="JSON-able"):
        Results("clip", settings={"x": object()}).save(tmp_path / "bad")
    with pytest.raises(ValueError, match="'unit_names' is not a per-voxel field"):
        Results("clip", glm_t=np.zeros((1, 3)), space=ImageSpace.from_array(3)).to_img("unit_names")
    # the fields a report needs are checked like the others
    with pytest.raises(ValueError, match="disagree on the number of voxels"):
        Results("clip", encoder_scores=np.zeros(4), encoder_p=np.zeros(5))
    with pytest.raises(ValueError, match=r"layer_fold_scores\['a'\] must be 2-D \(n_folds, n_voxels\)"):
        Results("clip", layer_fold_scores={"a": np.zeros(4)})
    with pytest.raises(ValueError, match="layer_fold_scores disagree on the number of folds"):
        Results("clip", layer_fold_scores={"a": np.zeros((3, 4)), "b": np.zeros((2, 4))})
    with pytest.raises(ValueError, match="runs has 5 scans but atom_timecourses 6"):
        Results("clip", runs=np.ones(5, int), atom_timecourses=np.zeros((6, 2)))
    with pytest.raises(ValueError, match=r"runs must number the runs 1..2 \(one per run label\), got 0..1"):
        Results("clip", runs=np.array([0, 1]), run_labels=["a", "b"])
    with pytest.raises(ValueError, match="runs must be a 1-D integer array"):
        Results("clip", runs=np.array([1.0, 2.0]))


def test_format_1_folders_still_load(tmp_path):
    """A folder written by format 1 (nilearn_vlm at eec953e): the encoder null and timings become fields."""
    from pathlib import Path

    from nilearn_vlm.report import build_report
    from nilearn_vlm.results import FORMAT_VERSION

    folder = Path(__file__).parent / "data" / "results_v1"
    assert json.loads((folder / "results.json").read_text())["format_version"] == 1
    table = pd.read_csv(folder / "tables" / "0.tsv", sep="\t")  # the format-1 encoder_null table
    res = Results.load(folder)
    np.testing.assert_allclose(res.encoder_r, table["r"], rtol=1e-7)
    np.testing.assert_array_equal(res.encoder_p, table["p"])
    np.testing.assert_array_equal(res.encoder_p_fwe, table["p_fwe"])
    assert list(res.tables) == ["key_neurons"]
    assert res.timings == {"loading BOLD": 0.5, "network tables": 0.25}
    assert res.meta == {"note": "written by format 1", "encoder_r": "r pooled over runs (written before format 4)"}
    assert res.layer_fold_scores == {} and res.runs is None and res.run_labels is None
    assert res.glm_t.shape == (2, 12) and res.unit_names[0] == "vision.0.attn_out.0"
    # written again, it is the current format and reads back the same
    again = Results.load(res.save(tmp_path / "v2"))
    assert json.loads((tmp_path / "v2" / "results.json").read_text())["format_version"] == FORMAT_VERSION == 4
    np.testing.assert_array_equal(again.encoder_p_fwe, res.encoder_p_fwe)
    # its units.tsv held unit_name, site: the units table is built from the names and now saved whole
    assert pd.read_csv(folder / "units.tsv", sep="\t").columns.tolist() == ["unit_name", "site"]
    pd.testing.assert_frame_equal(again.units, res.units, check_exact=True)
    assert res.units.columns.tolist() == ["name", "stream", "layer", "depth", "kind", "index", "site"]
    assert again.timings == res.timings and list(again.tables) == ["key_neurons"]
    # and its report can be built from the folder
    report = build_report(folder)
    encoding = next(s for s in report.sections if s.title == "Encoding scores")
    assert encoding.tables[0].frame["network"].tolist() == ["vision", "language", "(outside)"]
    assert [s.title for s in report.sections][-2:] == ["Timings", "Provenance"]


def test_format_3_folders_load_with_the_names_that_say_what_they_are(tmp_path):
    """Before format 4, encoder_scores held the cross-validated R^2 and encoder_r the r pooled over runs."""
    rng = np.random.default_rng(1)
    cv_r2, pooled = rng.uniform(-0.1, 0.5, 30), rng.uniform(-0.2, 0.6, 30)
    folder = Results("clip", encoder_r=pooled, space=ImageSpace.from_array(30)).save(tmp_path / "v3")
    with np.load(folder / "arrays.npz") as npz:
        arrays = dict(npz)
    arrays["encoder_scores"] = cv_r2  # the format-3 layout
    np.savez_compressed(folder / "arrays.npz", **arrays)
    doc = json.loads((folder / "results.json").read_text())
    doc["format_version"] = 3
    (folder / "results.json").write_text(json.dumps(doc))
    res = Results.load(folder)
    np.testing.assert_array_equal(res.encoder_cv_r2, cv_r2)
    np.testing.assert_array_equal(res.encoder_r, pooled)
    assert res.encoder_scores is res.encoder_r and "pooled" in res.meta["encoder_r"]
    with pytest.raises(ValueError, match="alias of encoder_r"):
        Results("clip", encoder_r=pooled, encoder_scores=cv_r2)


def test_newer_format_is_refused(tmp_path):
    folder = Results("clip").save(tmp_path / "r")
    doc = json.loads((folder / "results.json").read_text())
    doc["format_version"] = 99
    (folder / "results.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="written by a newer nilearn_vlm .format 99.; upgrade"):
        Results.load(folder)


def test_add_network_tables_on_grayordinates(tmp_path):
    from nilearn_vlm import get_atlas

    yeo = get_atlas("yeo7").load(91282)
    vis = yeo.labels == yeo.lookup.loc[yeo.lookup["name"] == "Visual", "index"].item()
    signs = np.zeros((2, 91282), np.int8)
    signs[0, vis] = 1
    signs[1, vis] = -1
    res = Results("clip", glm_sign_sets=signs, space=ImageSpace.from_array(91282, space="hcp_grayordinates"))
    res.add_network_tables(["yeo7", "language_hcp"])
    counts = res.tables["network_counts"].set_index(["atlas", "map", "network"])
    assert counts.loc[("yeo7", "regressor0", "vision"), "n_pos"] == vis.sum()
    assert counts.loc[("yeo7", "regressor1", "vision"), "n_neg"] == vis.sum()
    dice = res.tables["network_dice"].set_index(["atlas", "map", "sign", "network"])["dice"]
    assert dice[("yeo7", "regressor0", "pos", "vision")] == pytest.approx(1.0)
    back = Results.load(res.save(tmp_path / "r"))
    assert set(back.network_labels) == {"yeo7", "language_hcp"}
    np.testing.assert_array_equal(back.network_labels["yeo7"].labels, yeo.labels)
    pd.testing.assert_frame_equal(back.tables["network_dice"], res.tables["network_dice"])
    with pytest.raises(Exception, match="defined in MNI152 but the data are in fsLR_91k"):
        res.add_network_tables("seitzman2018")


def test_file_digest(tmp_path):
    import hashlib

    p = tmp_path / "w.bin"
    p.write_bytes(b"weights" * 1000)
    assert file_digest(p) == "sha256:" + hashlib.sha256(b"weights" * 1000).hexdigest()


def test_from_estimators_with_the_real_estimators(tmp_path):
    from nilearn_vlm import SparseAtoms, VoxelGLM

    rng = np.random.default_rng(4)
    units = rng.normal(size=(80, 12))
    atoms = SparseAtoms(n_atoms=3).fit(units)
    X = atoms.transform(units)
    y = X @ rng.normal(size=(3, 15)) * 3 + rng.normal(size=(80, 15))
    glm = VoxelGLM(t_r=1.0).fit(X, y)
    names = [f"text.{i // 6}.ffn.{i % 6}" for i in range(12)]
    res = Results.from_estimators("toy", "sub-05", atoms=atoms, glm=glm, unit_names=names, seeds={"atoms": 0})
    np.testing.assert_array_equal(res.glm_t, glm.t_.T)
    np.testing.assert_array_equal(res.glm_sign_sets, glm.signed_.T)
    np.testing.assert_array_equal(res.atom_loadings, atoms.loadings_)
    assert res.atom_timecourses.shape == (80, 3) and res.n_voxels == 15
    glm_names = getattr(glm, "regressor_names_", getattr(glm, "feature_names_in_", None))
    assert list(glm_names) == ["x0", "x1", "x2"]
    assert res.regressor_names == list(atoms.atom_names_) == ["atom0", "atom1", "atom2"]
    assert res.unit_sites[:2] == ["text.0.ffn", "text.0.ffn"]
    assert res.settings["glm"]["t_r"] == 1.0 and res.provenance["seeds"] == {"atoms": 0}
    assert "key_neurons" in res.tables
    back = Results.load(res.save(tmp_path / "r"))
    np.testing.assert_array_equal(back.glm_t, res.glm_t)
    assert back.settings == res.settings
    pd.testing.assert_frame_equal(back.tables["key_neurons"], res.tables["key_neurons"], check_dtype=False)


def test_units_table_round_trip_and_folders_of_the_first_format(tmp_path):
    from nilearn_vlm.units import Site, UNIT_COLUMNS, units_table

    # a METER-like model: depths with fusion after the encoders, thirds that TSV must keep exactly
    model = ([Site("vision", l, "attn_out", 2) for l in range(2)] + [Site("text", l, "ffn", 3, ("text",))
                                                                     for l in range(3)]
             + [Site("cross_text", l, "cross_attn_out", 2, ("image", "text")) for l in range(2)])
    links = [(("vision", 1), ("cross_text", 0)), (("text", 2), ("cross_text", 0))]
    table = units_table(model[1:], links=links, model_sites=model)
    res = Results("meter", units=table, atom_loadings=np.ones((2, len(table))))
    assert res.unit_names == table["name"].tolist() and res.unit_sites == table["site"].tolist()
    assert res.sites == [s.name for s in model[1:]]
    np.testing.assert_allclose(res.units["depth"].iloc[[0, 2, -1]], [2 / 4, 1 / 5, 1.0])
    folder = res.save(tmp_path / "new")
    written = pd.read_csv(folder / "units.tsv", sep="\t")
    assert written.columns.tolist() == list(UNIT_COLUMNS) and len(written) == len(table)
    back = Results.load(folder)
    pd.testing.assert_frame_equal(back.units, res.units, check_exact=True)
    assert back.unit_names == res.unit_names and back.unit_sites == res.unit_sites
    # a folder written before the units table: unit_name and site; the table is built from the names
    pd.DataFrame({"unit_name": res.unit_names, "site": res.unit_sites}).to_csv(
        folder / "units.tsv", sep="\t", index=False)
    old = Results.load(folder)
    assert old.unit_names == res.unit_names and old.unit_sites == res.unit_sites
    pd.testing.assert_frame_equal(old.units, units_table(res.unit_names))
    # names and sites are derived from the table and must agree with it
    with pytest.raises(ValueError, match="unit_names disagree with units"):
        Results("meter", units=table, unit_names=table["name"].tolist()[::-1])
    with pytest.raises(ValueError, match="unit_sites disagree"):
        Results("meter", unit_names=table["name"].tolist(), unit_sites=["x"] * len(table))
    res.unit_names = res.unit_names[::-1]
    with pytest.raises(ValueError, match="must be the units table's 'name' and 'site' columns"):
        res.validate()
    with pytest.raises(ValueError, match="lacks columns"):
        Results("meter", units=table.drop(columns="depth"))


def test_from_estimators_keeps_the_units_table_of_the_extraction():
    from nilearn_vlm import NeuronActivations, SparseAtoms
    from nilearn_vlm.testing import ToyAdapter

    stimuli = pd.DataFrame({"text": [f"word {i} and {i * 7 % 5}" for i in range(30)]})
    acts = NeuronActivations(model=ToyAdapter(width=8, n_layers=3), sites="text.1.*")
    X = acts.fit_transform(stimuli)
    atoms = SparseAtoms(n_atoms=2, feature_names=acts.units_, random_state=0).fit(X)
    pd.testing.assert_frame_equal(atoms.units_, acts.units_)
    res = Results.from_estimators("toy", atoms=atoms)
    pd.testing.assert_frame_equal(res.units, acts.units_)
    np.testing.assert_allclose(res.units["depth"], 2 / 3)  # the model's depth, not 1 as from the names alone
    key = atoms.key_neuron_table()
    assert (key["stream"] == "text").all() and (key["layer"] == 1).all()
