"""Adapter contract: pooling, site selection, the conformance check."""

import numpy as np
import pytest

from nilearn_vlm.adapters import Batch, Site, check_pooling, parse_unit_name, pool, select_sites
from nilearn_vlm.testing import ToyAdapter, check_adapter, default_batch


def _reference_pool(x, mask, rule):
    """Loop-by-loop pooling, written independently of ``pool``."""
    n, t, w = x.shape
    out = np.zeros((n, w))
    for i in range(n):
        valid = [j for j in range(t) if mask is None or mask[i, j]]
        if rule == "cls":
            out[i] = x[i, 0]
        elif rule == "eot":
            out[i] = x[i, valid[-1]]
        elif rule == "mean":
            out[i] = sum(x[i, j] for j in valid) / len(valid)
        elif rule == "max":
            out[i] = np.array([max(x[i, j, k] for j in valid) for k in range(w)])
    return out


@pytest.mark.parametrize("rule", ["cls", "eot", "mean", "max"])
@pytest.mark.parametrize("with_mask", [True, False])
def test_pool_matches_a_loop_reference(rule, with_mask):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 7, 3)) - 2.0  # mostly negative: max must not see padding zeros
    mask = None
    if with_mask:
        lengths = [7, 1, 3, 5, 2]
        mask = np.arange(7)[None, :] < np.array(lengths)[:, None]
    np.testing.assert_allclose(pool(x, mask, rule), _reference_pool(x, mask, rule), rtol=1e-12)


@pytest.mark.parametrize("rule", ["cls", "eot", "mean", "max", "none"])
def test_pool_torch_matches_numpy(rule):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 6, 5)).astype(np.float32)
    mask = np.arange(6)[None, :] < np.array([6, 2, 4, 1])[:, None]
    expected = pool(x, mask, rule)
    got = pool(torch.from_numpy(x), torch.from_numpy(mask), rule).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_pool_errors():
    x = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="unknown pooling rule 'median'"):
        pool(x, None, "median")
    with pytest.raises(ValueError, match=r"expects \(n, tokens, width\)"):
        pool(x[0], None, "mean")
    with pytest.raises(ValueError, match="does not match"):
        pool(x, np.ones((2, 4), bool), "mean")
    with pytest.raises(ValueError, match="no valid token"):
        pool(x, np.zeros((2, 3), bool), "mean")


def test_none_pooling_zeroes_padding():
    x = np.ones((1, 3, 2))
    mask = np.array([[True, True, False]])
    assert pool(x, mask, "none")[0, 2].sum() == 0


def test_check_pooling():
    assert check_pooling("cls", ["vision", "text"]) == {"vision": "cls", "text": "cls"}
    with pytest.raises(ValueError, match="cannot be mixed"):
        check_pooling({"vision": "none", "text": "mean"})
    with pytest.raises(ValueError, match="no rule for stream 'text'"):
        check_pooling({"vision": "cls"}, ["text"])
    with pytest.raises(TypeError, match="pooling must be"):
        check_pooling(3)


def test_select_sites():
    sites = [
        Site("vision", 0, "attn_out", 4),
        Site("vision", 0, "ffn", 8),
        Site("text", 0, "attn_out", 4, ("text",)),
        Site("cross_text", 0, "self_attn_out", 4, ("image", "text")),
        Site("cross_text", 0, "cross_attn_out", 4, ("image", "text")),
    ]
    names = lambda sel: [s.name for s in select_sites(sites, sel)]  # noqa: E731
    assert names("default") == [
        "vision.0.attn_out",
        "text.0.attn_out",
        "cross_text.0.self_attn_out",
        "cross_text.0.cross_attn_out",
    ]
    assert names("vision.*") == ["vision.0.attn_out", "vision.0.ffn"]
    assert names("*.attn*") == names("default")
    assert names(["vision.0.ffn", "vision.*.ffn"]) == ["vision.0.ffn"]
    assert len(names("all")) == 5
    with pytest.raises(ValueError, match=r"'vision.\*.resid' matches no site.*vision.\*.ffn"):
        select_sites(sites, "vision.*.resid")


def test_unit_names():
    site = Site("text", 2, "head", 3, ("text",))
    assert site.unit_names() == ["text.2.head.0", "text.2.head.1", "text.2.head.2"]
    assert parse_unit_name("text.2.head.1") == ("text", 2, "head", 1)
    with pytest.raises(ValueError, match="stream.layer.kind.index"):
        parse_unit_name("text.head.1")


def test_batch_validation():
    with pytest.raises(ValueError, match="needs images, texts or both"):
        Batch()
    with pytest.raises(ValueError, match="2 images but 1 texts"):
        Batch(images=[0, 1], texts=["a"])


def test_toy_adapter_passes_check_adapter():
    check_adapter(ToyAdapter(width=8, n_layers=2, n_heads=2))


def test_toy_adapter_mean_pooling_is_padding_invariant():
    adapter = ToyAdapter()
    alone = adapter.extract(Batch(texts=["a cat"]), ["text.1.ffn"], "mean")["text.1.ffn"]
    padded = adapter.extract(Batch(texts=["a cat", "a much longer sentence about dogs"]), ["text.1.ffn"], "mean")
    np.testing.assert_allclose(padded["text.1.ffn"][0], alone[0], rtol=1e-6)


class _PadLeaks(ToyAdapter):
    """Broken: mean pooling counts padding tokens."""

    def extract(self, batch, sites, pooling="mean"):
        if pooling != "mean" or batch.texts is None:
            return super().extract(batch, sites, pooling)
        tokens = super().extract(batch, sites, "none")
        return {k: v.mean(axis=1).astype(np.float32) for k, v in tokens.items()}


class _Float64(ToyAdapter):
    def extract(self, batch, sites, pooling="mean"):
        return {k: v.astype(np.float64) for k, v in super().extract(batch, sites, pooling).items()}


class _LeavesHooks(ToyAdapter):
    def active_hooks(self):
        return 1


class _LinksNowhere(ToyAdapter):
    """Broken: links a layer the model does not have."""

    def forward_links(self):
        return [(("vision", 1), ("text", 7))]


class _LinksBackwards(ToyAdapter):
    """Broken: the links make a cycle."""

    def forward_links(self):
        return [(("vision", 1), ("text", 0)), (("text", 1), ("vision", 0))]


class _FusionBeside(ToyAdapter):
    """Broken: a fusion stream (image and text) that no encoder feeds, so it runs parallel to them."""

    def sites(self):
        return super().sites() + [Site("cross", 0, "cross_attn_out", 4, ("image", "text"))]


class _FusionAfter(_FusionBeside):
    def forward_links(self):
        return [(("vision", 1), ("cross", 0)), (("text", 1), ("cross", 0))]


@pytest.mark.parametrize(
    "adapter, message",
    [
        (_PadLeaks(), "pooling 'mean' differs from pool"),
        (_Float64(), "float32"),
        (_LeavesHooks(), "hooks remain attached"),
        (_LinksNowhere(), r"forward_links\(\) does not describe .* block \('text', 7\)"),
        (_LinksBackwards(), "make a cycle"),
        (_FusionBeside(), "stream 'cross' needs .'image', 'text'. input but no other stream feeds it"),
    ],
)
def test_check_adapter_catches_broken_adapters(adapter, message):
    with pytest.raises(AssertionError, match=message):
        check_adapter(adapter, batch=default_batch())


def test_adapter_depths_and_units_table():
    adapter = _FusionAfter(n_layers=2)
    depth = adapter.layer_depths()
    assert depth == {("vision", 0): 1 / 3, ("vision", 1): 2 / 3, ("text", 0): 1 / 3, ("text", 1): 2 / 3,
                     ("cross", 0): 1.0}
    table = adapter.units_table(["cross.0.cross_attn_out", "text.0.ffn"])
    assert table["name"].tolist()[:5] == [f"cross.0.cross_attn_out.{i}" for i in range(4)] + ["text.0.ffn.0"]
    np.testing.assert_allclose(table["depth"], [1.0] * 4 + [1 / 3] * 32)
    with pytest.raises(ValueError, match=r"unknown sites \['text.5.ffn'\]"):
        adapter.units_table(["text.5.ffn"])
    # separate towers by default: each layer at (l + 1) / L of its own tower
    assert ToyAdapter(n_layers=4).layer_depths()[("text", 2)] == 3 / 4


def test_missing_modality_is_a_clear_error():
    adapter = ToyAdapter()
    with pytest.raises(ValueError, match="needs image input but this batch has only text"):
        adapter.extract(Batch(texts=["x"]), ["vision.0.ffn"], "mean")
    with pytest.raises(ValueError, match="unknown site 'vision.9.ffn'"):
        adapter.extract(Batch(texts=["x"]), ["vision.9.ffn"], "mean")


def test_fingerprint_changes_with_weights():
    a, b = ToyAdapter(seed=0).fingerprint(), ToyAdapter(seed=1).fingerprint()
    assert a["weights"] != b["weights"]
    assert a["adapter"] == "toy" and a["version"] == "1"
