"""NeuronActivations with the NumPy ToyAdapter: units, modalities, errors, pipeline."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline

from nilearn_vlm import NeuronActivations, TRAligner, hookimpl
from nilearn_vlm.adapters import Batch
from nilearn_vlm.plugins import ALLOW_ENV, register_plugin, reset_plugins, unregister_plugin
from nilearn_vlm.stimuli import is_missing, load_image
from nilearn_vlm.testing import ToyAdapter

TEXTS = ["a cat on a mat", "two dogs run", "a red bus in the rain", "coffee", "the sea at night"]


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (24, 24 + 4 * i, 3), dtype=np.uint8) for i in range(n)]


def _stimuli():
    imgs = _images(5)
    return pd.DataFrame({
        "image": [imgs[0], imgs[1], None, imgs[3], imgs[4]],
        "text": [TEXTS[0], None, TEXTS[2], TEXTS[3], TEXTS[4]],
    })


class _ToyPlugin:
    @hookimpl
    def register_adapters(self, register):
        register(ToyAdapter, name="toy-test")


@pytest.fixture
def toy_registered(monkeypatch):
    # load only the core's own entry point (model plugins would import torch)
    monkeypatch.setenv(ALLOW_ENV, "nilearn-vlm")
    reset_plugins()
    register_plugin(_ToyPlugin(), "toy-test-plugin")
    try:
        yield "toy-test"
    finally:
        unregister_plugin("toy-test-plugin")
        reset_plugins()


def _reference(adapter, stimuli, sites):
    """Units computed stimulus by stimulus straight from the adapter."""
    rows = []
    for img, text in zip(stimuli["image"], stimuli["text"]):
        batch = Batch(images=None if is_missing(img) else [load_image(img)],
                      texts=None if is_missing(text) else [text])
        row = []
        for s in sites:
            if set(s.modalities) <= set(batch.modalities):
                row.append(adapter.extract(batch, [s], "mean")[s.name][0])
            else:
                row.append(np.zeros(s.width, np.float32))
        rows.append(np.concatenate(row))
    return np.vstack(rows)


def test_units_equal_adapter_extract_per_stimulus(toy_registered):
    stimuli = _stimuli()
    acts = NeuronActivations(model=toy_registered, model_params={"width": 8, "n_layers": 2},
                             sites="all", batch_size=2)
    X = acts.fit_transform(stimuli)
    assert X.dtype == np.float32 and X.shape == (5, acts.n_features_out_)
    ref = _reference(ToyAdapter(width=8, n_layers=2), stimuli, acts.sites_)
    np.testing.assert_allclose(X, ref, rtol=1e-5, atol=1e-6)
    names = acts.get_feature_names_out()
    assert names[0] == "vision.0.attn_out.0" and len(names) == X.shape[1]
    sl = acts.site_slices_["text.1.ffn"]
    assert list(names[sl][:2]) == ["text.1.ffn.0", "text.1.ffn.1"]
    # missing modality -> zero units of that modality's sites
    vis = [acts.site_slices_[s.name] for s in acts.sites_ if s.stream == "vision"]
    txt = [acts.site_slices_[s.name] for s in acts.sites_ if s.stream == "text"]
    assert all((X[2, s] == 0).all() for s in vis) and all((X[1, s] == 0).all() for s in txt)
    assert all(np.abs(X[0, s]).sum() > 0 for s in vis + txt)


def test_instance_and_default_sites_and_batch_size():
    stimuli = _stimuli()
    a = NeuronActivations(model=ToyAdapter(width=8, n_layers=1), batch_size=1).fit_transform(stimuli)
    acts = NeuronActivations(model=ToyAdapter(width=8, n_layers=1), batch_size=32)
    b = acts.fit_transform(stimuli)
    assert [s.kind for s in acts.sites_] == ["attn_out", "attn_out"]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_modality_errors(toy_registered):
    text_only = pd.DataFrame({"text": TEXTS})
    acts = NeuronActivations(model=ToyAdapter(width=8, n_layers=1), sites="vision.*.ffn")
    with pytest.raises(ValueError, match=r"site 'vision.0.ffn' needs image input but no stimulus has it"):
        acts.fit(text_only)
    with pytest.raises(ValueError, match="needs an 'image' and/or a 'text' column"):
        NeuronActivations(model=ToyAdapter()).fit(pd.DataFrame({"caption": TEXTS}))
    with pytest.raises(TypeError, match="takes a pandas DataFrame"):
        NeuronActivations(model=ToyAdapter()).fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="pooling='none' keeps tokens"):
        NeuronActivations(model=ToyAdapter(), pooling="none").fit(text_only)
    with pytest.raises(ValueError, match="unknown pooling rule 'avg'"):
        NeuronActivations(model=ToyAdapter(), pooling="avg").fit(text_only)
    with pytest.raises(ValueError, match=r"'batch_size' parameter of NeuronActivations must be an int "
                                         r"in the range \[1, inf\). Got 0"):
        NeuronActivations(model=ToyAdapter(), batch_size=0).fit(text_only)
    with pytest.raises(TypeError, match="'model' parameter of NeuronActivations must be"):
        NeuronActivations(model=3).fit(text_only)
    with pytest.raises(ValueError, match="model_params apply to an adapter name or class"):
        NeuronActivations(model=ToyAdapter(), model_params={"seed": 1}).fit(text_only)
    with pytest.raises(ValueError, match="takes no device parameter"):
        NeuronActivations(model=ToyAdapter, device="cuda").fit(text_only)
    from nilearn_vlm import UnknownPluginError

    with pytest.raises(UnknownPluginError, match="no adapter 'nope'"):
        NeuronActivations(model="nope").fit(text_only)


def test_unreadable_image_error(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    stimuli = pd.DataFrame({"image": [str(bad)], "text": ["x"]})
    with pytest.raises(ValueError, match="cannot read image file .*bad.png"):
        NeuronActivations(model=ToyAdapter(width=8, n_layers=1)).fit_transform(stimuli)
    with pytest.raises(FileNotFoundError, match="missing.png' does not exist"):
        NeuronActivations(model=ToyAdapter(width=8, n_layers=1)).fit_transform(
            pd.DataFrame({"image": [str(tmp_path / "missing.png")]}))


class DeviceToy(ToyAdapter):
    """Toy adapter that declares a device parameter."""

    name = "device-toy"
    _DEFAULTS = {**ToyAdapter._DEFAULTS, "device": "cpu"}


def test_device_passed_to_adapters_that_accept_it():
    acts = NeuronActivations(model=DeviceToy, model_params={"width": 8}, device="meta")
    acts.fit(pd.DataFrame({"text": TEXTS}))
    assert acts.adapter_.model_params["device"] == "meta"


class PairedToy(ToyAdapter):
    """A paired toy: every stimulus needs both modalities, or a filler."""

    name = "paired-toy"
    paired = True
    _DEFAULTS = {**ToyAdapter._DEFAULTS, "missing_text": None, "missing_image": None}

    def extract(self, batch, sites, pooling="mean"):
        self.ensure_loaded()
        texts, images = batch.texts, batch.images
        if texts is None:
            if self.model_params["missing_text"] is None:
                raise ValueError("paired-toy needs text or missing_text=")
            texts = [self.model_params["missing_text"]] * len(batch)
        if images is None or any(i is None for i in images):
            if self.model_params["missing_image"] is None:
                raise ValueError("paired-toy needs image or missing_image=")
            from PIL import Image

            images = [Image.fromarray(self.model_params["missing_image"])] * len(batch)
        return super().extract(Batch(images=images, texts=texts), sites, pooling)


def test_paired_adapter_fillers_or_error():
    stimuli = _stimuli()
    with pytest.raises(ValueError, match=r"is paired .* 1 stimuli have no image .*missing_image"):
        NeuronActivations(model=PairedToy, model_params={"width": 8}, sites="all").fit(stimuli)
    with pytest.raises(ValueError, match=r"is paired .* 1 stimuli have no text .*missing_text"):
        NeuronActivations(model=PairedToy, sites="all", model_params={
            "width": 8, "missing_image": np.full((8, 8, 3), 128, np.uint8)}).fit(stimuli)
    acts = NeuronActivations(model=PairedToy, sites="all", model_params={
        "width": 8, "missing_text": "", "missing_image": np.full((8, 8, 3), 128, np.uint8)})
    X = acts.fit_transform(stimuli)
    filled = stimuli.copy()
    filled.loc[1, "text"] = ""
    filled.loc[2, "image"] = np.full((8, 8, 3), 128, np.uint8)
    ref = NeuronActivations(model=PairedToy, sites="all", model_params={"width": 8}).fit_transform(filled)
    np.testing.assert_allclose(X, ref, rtol=1e-5, atol=1e-6)
    assert np.abs(X[2, acts.site_slices_["vision.0.ffn"]]).sum() > 0
    assert np.abs(X[1, acts.site_slices_["text.0.ffn"]]).sum() > 0


def test_stimulus_without_any_modality_has_zero_units():
    stimuli = pd.DataFrame({"text": ["a cat", None, "a dog"]})
    X = NeuronActivations(model=ToyAdapter(width=8, n_layers=1), sites="all").fit_transform(stimuli)
    assert (X[1] == 0).all() and (np.abs(X[[0, 2]]).sum(axis=1) > 0).all()


def test_progress_bar(capsys):
    NeuronActivations(model=ToyAdapter(width=8, n_layers=1), verbose=1, batch_size=2).fit_transform(
        pd.DataFrame({"text": TEXTS}))
    err = capsys.readouterr().err
    assert "stim/s" in err and "5/5" in err


def test_pipeline_neuron_activations_traligner_ridge():
    rng = np.random.default_rng(0)
    n = 30
    imgs = _images(n, seed=1)
    stimuli = pd.DataFrame({"onset": 2.0 * np.arange(n) % 30.0, "duration": 2.0,
                            "run": np.repeat([1, 2], n // 2), "image": imgs,
                            "text": [TEXTS[i % 5] for i in range(n)]})
    n_scans = [20, 20]
    extract = NeuronActivations(model=ToyAdapter(width=8, n_layers=1), sites="*.ffn")
    align = TRAligner(events=stimuli, n_scans=n_scans, t_r=2.0, hrf_model="spm")
    y = rng.standard_normal((40, 7))
    pipe = Pipeline([("units", extract), ("tr", align), ("ridge", Ridge(alpha=10.0))])
    pipe.fit(stimuli, y)
    pred = pipe.predict(stimuli)
    assert pred.shape == (40, 7)
    names = pipe[:-1].get_feature_names_out()
    assert names[0] == "vision.0.ffn.0" and len(names) == pipe[-1].n_features_in_
    # same as running the steps by hand
    Z = TRAligner(events=stimuli, n_scans=n_scans, t_r=2.0, hrf_model="spm").fit_transform(
        NeuronActivations(model=ToyAdapter(width=8, n_layers=1), sites="*.ffn").fit_transform(stimuli))
    np.testing.assert_allclose(pred, Ridge(alpha=10.0).fit(Z, y).predict(Z), rtol=1e-4, atol=1e-5)


def test_pipeline_with_voxel_encoder():
    try:
        from nilearn_vlm import VoxelEncoder
    except Exception as exc:  # the encoder lives in another module of the package
        pytest.skip(f"nilearn_vlm.encoding does not import: {exc}")
    rng = np.random.default_rng(0)
    n = 40
    stimuli = pd.DataFrame({"onset": 2.0 * (np.arange(n) % 20), "duration": 2.0,
                            "run": np.repeat([1, 2], n // 2), "image": _images(n, seed=2),
                            "text": [TEXTS[i % 5] for i in range(n)]})
    units = NeuronActivations(model=ToyAdapter(width=8, n_layers=1), sites="*.ffn")
    align = TRAligner(events=stimuli, n_scans=[25, 25], t_r=2.0)
    Z = TRAligner(events=stimuli, n_scans=[25, 25], t_r=2.0).fit_transform(
        NeuronActivations(model=ToyAdapter(width=8, n_layers=1), sites="*.ffn").fit_transform(stimuli))
    weights = rng.standard_normal((Z.shape[1], 6))
    y = Z @ weights + 0.1 * rng.standard_normal((50, 6))
    groups = np.repeat([1, 2], 25)
    pipe = Pipeline([("units", units), ("tr", align), ("enc", VoxelEncoder(alphas=[0.1, 1.0, 10.0]))])
    pipe.fit(stimuli, y, enc__groups=groups)
    pred = np.asarray(pipe.predict(stimuli))
    assert pred.shape == (50, 6)
    assert pipe.score(stimuli, y) > 0.9  # mean Pearson r over voxels of a near-linear target


def test_sklearn_contract_on_stimuli_tables():
    """What sklearn's array checks cannot test (test_estimator_checks.py), on stimuli tables:
    fit returns self and leaves the parameters alone, fitting twice gives the same units, the
    units of a row do not depend on the other rows nor their order, pickling keeps them."""
    import pickle

    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.utils import check_random_state
    from sklearn.utils.estimator_checks import check_estimators_unfitted

    stimuli = _stimuli().iloc[[0, 3, 4]].reset_index(drop=True)  # image and text in every row
    params = {"width": 8, "n_layers": 1}
    est = NeuronActivations(model=ToyAdapter, model_params=params, sites="all", batch_size=2)
    before = repr(est.get_params())
    with pytest.raises(NotFittedError):
        est.transform(stimuli)
    assert est.fit(stimuli) is est and repr(est.get_params()) == before and params == {"width": 8, "n_layers": 1}
    X = est.transform(stimuli)
    np.testing.assert_array_equal(clone(est).fit(stimuli).transform(stimuli), X)
    order = check_random_state(0).permutation(len(stimuli))
    np.testing.assert_allclose(est.transform(stimuli.iloc[order]), X[order], rtol=1e-5, atol=1e-6)
    for i in range(len(stimuli)):
        np.testing.assert_allclose(est.transform(stimuli.iloc[[i]]), X[[i]], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).transform(stimuli), X)
    check_estimators_unfitted("NeuronActivations", est)
