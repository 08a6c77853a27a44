"""The optional torch capture helper of the adapter contract (nilearn_vlm.adapters.capture)."""

import doctest

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nilearn_vlm.adapters import CapturePoint, _capture, capture, count_module_hooks, pool  # noqa: E402

torch.set_num_threads(1)


class _Tower(torch.nn.Module):
    """Three blocks; block i adds a linear map of its input."""

    def __init__(self, width=6, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.blocks = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(3))
        self.calls = 0

    def forward(self, x):
        for block in self.blocks:
            self.calls += 1
            x = x + block(x)
        return x


def _reference(tower, x):
    """Block inputs and outputs, computed by hand."""
    ins, outs = [], []
    with torch.no_grad():
        for block in tower.blocks:
            ins.append(x)
            y = block(x)
            outs.append(y)
            x = x + y
    return ins, outs


def test_docstring_example_runs():
    result = doctest.testmod(_capture, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("rule", ["mean", "max", "cls", "eot", "none"])
def test_pooled_units_equal_pool_on_the_module_activations(rule):
    tower = _Tower()
    x = torch.randn(4, 5, 6)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 1, 1, 0]], dtype=bool)
    points = {"t.0.attn_out": CapturePoint(tower.blocks[0]), "t.2.ffn": CapturePoint(tower.blocks[2], pre=True)}
    with torch.inference_mode(), capture(points, rule, {"t.0.attn_out": mask, "t.2.ffn": torch.from_numpy(mask)}) \
            as captured:
        tower(x)
    out = captured.arrays()
    ins, outs = _reference(tower, x)
    np.testing.assert_allclose(out["t.0.attn_out"], pool(outs[0].numpy(), mask, rule), rtol=1e-6)
    np.testing.assert_allclose(out["t.2.ffn"], pool(ins[2].numpy(), mask, rule), rtol=1e-6)
    assert all(a.dtype == np.float32 for a in out.values())
    assert count_module_hooks(tower) == 0


def test_sequence_first_reads_custom_readers_and_float64_models():
    tower = _Tower().double()
    x = torch.randn(3, 4, 6, dtype=torch.float64)  # (n, tokens, width)
    points = {
        # a sequence-first reader: the activation comes as (tokens, n, width)
        "a": CapturePoint(tower.blocks[1], read=lambda m, a, k, o: o.transpose(0, 1), seq_first=True),
        "b": CapturePoint(tower.blocks[1], pre=True, read=lambda m, a, k, o: 2 * a[0]),
    }
    with capture(points, {"a": "mean", "b": "cls"}) as captured:
        tower(x)
    out = captured.arrays()
    ins, outs = _reference(tower, x)
    np.testing.assert_allclose(out["a"], outs[1].mean(1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(out["b"], 2 * ins[1][:, 0].numpy(), rtol=1e-6)
    assert out["a"].dtype == np.float32


def test_chunks_concatenate_with_a_mask_per_chunk():
    tower = _Tower()
    x = torch.randn(5, 4, 6)
    mask = torch.rand(5, 4) > 0.3
    mask[:, 0] = True
    current = {}
    points = {"t.1.resid": CapturePoint(tower.blocks[1])}
    with torch.inference_mode(), capture(points, "mean", {"t.1.resid": lambda: current["mask"]}) as captured:
        for sl in (slice(0, 2), slice(2, 5)):
            current["mask"] = mask[sl]
            tower(x[sl])
    _, outs = _reference(tower, x)
    np.testing.assert_allclose(captured.arrays()["t.1.resid"], pool(outs[1], mask, "mean").numpy(), rtol=1e-6)


def test_stop_early_skips_the_rest_of_the_forward_and_hooks_go_away_on_errors():
    tower = _Tower()
    with capture({"t.0.ffn": CapturePoint(tower.blocks[0])}, "mean", stop_early=True) as captured:
        tower(torch.randn(2, 3, 6))
    assert tower.calls == 1 and captured.arrays()["t.0.ffn"].shape == (2, 6)
    assert count_module_hooks(tower) == 0
    with pytest.raises(ZeroDivisionError):
        with capture({"t.0.ffn": CapturePoint(tower.blocks[0])}):
            assert count_module_hooks(tower) == 1
            1 / 0
    assert count_module_hooks(tower) == 0
    # a hook that never fired
    with capture({"t.0": CapturePoint(tower.blocks[0]), "t.9": CapturePoint(torch.nn.Linear(6, 6))}) as captured:
        tower(torch.randn(2, 3, 6))
    with pytest.raises(RuntimeError, match=r"hooks of sites \['t.9'\] did not fire"):
        captured.arrays()


def test_bad_arguments_fail_clearly():
    lin = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="non-empty dict"):
        capture({})
    with pytest.raises(TypeError, match="must be a CapturePoint"):
        capture({"a": lin})
    with pytest.raises(ValueError, match="pooling rule 'avg' of site 'a'"):
        capture({"a": CapturePoint(lin)}, "avg")
    with pytest.raises(ValueError, match=r"masks given for sites \['b'\]"):
        capture({"a": CapturePoint(lin)}, masks={"b": None})
    with pytest.raises(ValueError, match="no positional input"), capture({"a": CapturePoint(lin, pre=True)}):
        lin(input=torch.ones(1, 1, 2))
