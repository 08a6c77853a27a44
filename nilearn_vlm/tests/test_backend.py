"""The torch backend against the NumPy backend, and the device checks.

The NumPy backend is the reference (tested against scikit-learn, SciPy and
closed forms elsewhere); here the torch backend, on the CPU, must give the
same alphas on at least 99.9% of the voxels, coefficients and scores within
1e-4 (relative) where the alpha agrees, and null maps within 1e-5. The same
comparisons run on a GPU when one is present (skipped otherwise). A CUDA
request where torch finds no GPU fails with an error that names the fix.
"""

import subprocess
import sys

import numpy as np
import pytest

from nilearn_vlm._backend import check_backend, get_backend
from nilearn_vlm.encoding import VoxelEncoder
from nilearn_vlm.encoding._solver import ridge_cv_path

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device")
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]


def _data(n=160, p=24, v=1500, seed=0):
    """Features, and voxels with planted effects of graded strength plus noise voxels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    X[:, 1] += 0.8 * X[:, 0]  # correlated features: the alpha matters
    W = rng.standard_normal((p, v)) * rng.uniform(0, 1, v)
    W[:, : v // 5] = 0  # pure-noise voxels
    Y = X @ W + rng.standard_normal((n, v)) * rng.uniform(0.5, 3, v) + 5.0
    return X, Y


def _within(diff, tol, what):
    diff, tol = np.broadcast_arrays(diff, tol)
    bad = ~(diff <= tol)
    assert not bad.any(), f"{what}: {bad.sum()} values off, worst {np.max(diff / tol):.2g} x the tolerance"


def _compare_fits(ref, other, rtol=1e-4):
    """Alpha agreement, and coefficients and scores within ``rtol`` where the alpha agrees."""
    same = ref.alpha_ == other.alpha_
    assert same.mean() >= 0.999, f"alphas agree on {same.mean():.2%} of voxels"
    assert same.any()
    scale = np.abs(ref.coef_[same]).max(1, keepdims=True)  # per voxel
    _within(np.abs(other.coef_[same] - ref.coef_[same]), rtol * scale + 1e-12, "coef_")
    i_scale = np.abs(ref.intercept_[same]) + np.abs(ref.coef_[same]).sum(1)
    _within(np.abs(other.intercept_[same] - ref.intercept_[same]), rtol * i_scale, "intercept_")
    # R^2 has the scale 1: relative to max(1, |R^2|)
    s_ref, s_other = ref.cv_scores_[same], other.cv_scores_[same]
    _within(np.abs(s_other - s_ref), rtol * np.maximum(1.0, np.abs(s_ref)), "cv_scores_")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("p", [24, 300])  # primal (p < n) and dual (kernel) solvers
def test_encoder_torch_equals_numpy(device, dtype, p):
    X, Y = _data(p=p)
    kw = dict(dtype=dtype, cv=4, max_memory="2MB")  # several voxel chunks
    ref = VoxelEncoder(**kw).fit(X, Y)
    other = VoxelEncoder(backend="torch", device=device, **kw).fit(X, Y)
    assert other.coef_.dtype == ref.coef_.dtype == np.dtype(dtype)
    _compare_fits(ref, other)
    # the fits are real: planted voxels are predicted, noise voxels are not
    assert np.nanmean(ref.cv_scores_[300:]) > 0.1 > np.nanmean(ref.cv_scores_[:300])
    if dtype == "float64":  # no rounding ties at this precision: every alpha agrees
        np.testing.assert_array_equal(ref.alpha_, other.alpha_)


@pytest.mark.parametrize("device", DEVICES)
def test_encoder_torch_options(device):
    """standardize, nested CV, the SVD solver and voxel groups as tasks run on torch too."""
    X, Y = _data(v=400, seed=1)
    groups = np.repeat(np.arange(4), 40)
    kw = dict(standardize=True, nested_cv=True, solver="svd", dtype="float64", n_jobs=2)
    ref = VoxelEncoder(**kw).fit(X, Y, groups=groups)
    other = VoxelEncoder(backend="torch", device=device, **kw).fit(X, Y, groups=groups)
    _compare_fits(ref, other)
    np.testing.assert_allclose(other.nested_scores_, ref.nested_scores_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(other.predict(X), ref.predict(X), rtol=1e-4, atol=1e-4 * np.abs(Y).max())


def test_solver_eval_scores_match():
    """The refit's evaluation scores (nested CV) of both backends."""
    X, Y = _data(v=300, seed=2)
    folds = [(np.arange(40, 120), np.arange(40)), (np.arange(80), np.arange(80, 120))]
    kw = dict(rows=np.arange(120), eval_rows=np.arange(120, 160), dtype=np.float64)
    ref = ridge_cv_path(X, Y, [0.1, 10.0, 1e3], folds, **kw)
    other = ridge_cv_path(X, Y, [0.1, 10.0, 1e3], folds, backend="torch", **kw)
    np.testing.assert_array_equal(ref["alpha"], other["alpha"])
    for key in ("scores", "cv_score", "eval_score", "coef", "intercept"):
        np.testing.assert_allclose(other[key], ref[key], rtol=1e-6, atol=1e-9, err_msg=key)


def test_cuda_request_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    X, Y = _data(v=20)
    with pytest.raises(RuntimeError, match=r"device='cuda' needs a CUDA GPU.*Use device='cpu'"):
        VoxelEncoder(device="cuda").fit(X, Y)
    with pytest.raises(RuntimeError, match=r"device='cuda:1' needs a CUDA GPU.*NVIDIA GPU"):
        get_backend("torch", "cuda:1")


def test_missing_gpu_index(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(RuntimeError, match=r"names GPU 3, but torch sees 1 GPU\(s\).*CUDA_VISIBLE_DEVICES"):
        get_backend("numpy", "cuda:3")


def test_torch_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"needs PyTorch.*pip install torch.*backend='numpy'"):
        get_backend("torch")
    assert get_backend("numpy").name == "numpy"  # the NumPy backend never needs it


@pytest.mark.parametrize(
    ("backend", "device", "match"),
    [
        ("jax", "cpu", r"backend must be one of \('numpy', 'torch'\); got 'jax'"),
        ("torch", "gpu", r"device must be 'cpu', 'cuda' or 'cuda:N'.*got 'gpu'"),
        ("torch", "cpu:0", r"device must be .*got 'cpu:0'"),
        ("numpy", 0, r"device must be .*got 0"),
    ],
)
def test_bad_backend_or_device(backend, device, match):
    with pytest.raises(ValueError, match=match):
        check_backend(backend, device)


def test_bad_backend_in_estimator():
    X, Y = _data(v=10)
    with pytest.raises(ValueError, match="backend"):
        VoxelEncoder(backend="cupy").fit(X, Y)
    with pytest.raises(ValueError, match=r"device must be 'cpu', 'cuda' or 'cuda:N'"):
        VoxelEncoder(device="tpu").fit(X, Y)


def test_cuda_implies_torch():
    assert check_backend("numpy", "cuda") == ("torch", "cuda")
    assert check_backend("numpy", "cpu") == ("numpy", "cpu")
    assert get_backend("torch", "cpu").name == "torch"


def test_numpy_backend_imports_no_torch():
    """A NumPy-backend fit leaves torch unimported."""
    code = (
        "import sys, numpy as np; import nilearn_vlm; from nilearn_vlm import VoxelEncoder; "
        "from nilearn_vlm.stats import permutation_null; "
        "X = np.random.default_rng(0).standard_normal((40, 3)); "
        "VoxelEncoder(cv=2).fit(X, X @ np.ones((3, 2))); "
        "permutation_null(X[:, 0], X, n_permutations=5, random_state=0); "
        "assert 'torch' not in sys.modules, 'the numpy backend imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------- nulls
def _null_data(seed=0, n=240, v=400):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    x = np.convolve(x, np.ones(4) / 2, mode="same")  # autocorrelated regressor
    y = rng.standard_normal((n, v))
    y[:, :40] += 0.4 * x[:, None]  # planted effects
    y += np.repeat([0.0, 30.0, -5.0], n // 3)[:, None]  # three runs, three baselines
    return x, y, np.repeat([0, 1, 2], n // 3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", ["shift", "phase"])
@pytest.mark.parametrize("per_voxel", [False, True])
@pytest.mark.parametrize("statistic", ["r", "r2"])
def test_permutation_null_torch_equals_numpy(device, method, per_voxel, statistic):
    from nilearn_vlm.stats import permutation_null

    x, y, runs = _null_data()
    if per_voxel:  # one prediction per voxel (encoding scores)
        x = x[:, None] + 0.5 * np.random.default_rng(1).standard_normal(y.shape)
    kw = dict(method=method, runs=runs, statistic=statistic, n_permutations=150, high_pass=0.02, t_r=2.0,
              return_null=True, random_state=0, working_memory=0.5)  # several voxel chunks
    ref = permutation_null(x, y, **kw)
    other = permutation_null(x, y, backend="torch", device=device, **kw)
    np.testing.assert_array_equal(other.statistic, ref.statistic)  # NumPy in both
    np.testing.assert_allclose(other.null, ref.null, rtol=0, atol=1e-5)
    np.testing.assert_allclose(other.null_max, ref.null_max, rtol=0, atol=1e-5)
    # p-values count nulls at or above the observed score: identical but for nulls within 1e-5 of it
    near = (np.abs(ref.null - ref.statistic) < 1e-5).sum(0)
    assert np.all(np.abs(other.pvalues - ref.pvalues) * (1 + ref.n_permutations) <= near)
    # the null is a real one: the planted voxels stand out, the others mostly do not
    assert (ref.pvalues[:40] < 0.05).mean() > 0.8 > 0.2 > (ref.pvalues[40:] < 0.05).mean()


@pytest.mark.parametrize("method", ["block", "iid"])
def test_permutation_null_torch_methods(method):
    from nilearn_vlm.stats import permutation_null

    x, y, runs = _null_data(v=5)
    with pytest.raises(ValueError, match=rf"runs the 'shift' and 'phase' nulls; method='{method}' runs on "
                                         r"backend='numpy'"):
        permutation_null(x, y, method=method, backend="torch")


def test_permutation_null_cuda_without_cuda(monkeypatch):
    from nilearn_vlm.stats import permutation_null

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    x, y, runs = _null_data(v=5)
    with pytest.raises(RuntimeError, match=r"device='cuda' needs a CUDA GPU.*Use device='cpu'"):
        permutation_null(x, y, device="cuda")


# ----------------------------------------------------------- SparseAtoms
def _units(seed=0, n_scans=120, n_units=600, k=6):
    """Units that are sparse mixtures of k time courses plus noise (scans x units)."""
    rng = np.random.default_rng(seed)
    S = rng.standard_normal((k, n_scans))
    L = np.zeros((k, n_units))
    for j in range(k):
        L[j, rng.choice(n_units, 40, replace=False)] = rng.uniform(1, 2, 40) * rng.choice([-1, 1], 40)
    return (L.T @ S + 0.5 * rng.standard_normal((n_units, n_scans))).T


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("code_solver", ["fista", "cd"])
def test_sparse_atoms_torch_equals_numpy(device, code_solver):
    from nilearn_vlm import SparseAtoms

    X = _units()
    kw = dict(n_atoms=6, alpha=0.1, n_pairs=3, code_solver=code_solver, random_state=0)
    ref = SparseAtoms(**kw).fit(X)
    other = SparseAtoms(backend="torch", device=device, **kw).fit(X)
    np.testing.assert_array_equal(other.n_iter_, ref.n_iter_)
    np.testing.assert_allclose(other.atoms_, ref.atoms_, rtol=0, atol=1e-5)
    np.testing.assert_allclose(other.loadings_, ref.loadings_, rtol=0, atol=1e-5)
    np.testing.assert_allclose(other.objective_, ref.objective_, rtol=1e-6)
    np.testing.assert_array_equal(other.key_neurons_, ref.key_neurons_)
    assert (ref.key_neurons_ != 0).sum() > 30  # the planted units are found
    np.testing.assert_allclose(other.transform(X), ref.transform(X), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_learn_dictionary_torch_equals_numpy(dtype):
    from nilearn_vlm.decomposition import learn_dictionary

    X = _units(seed=3).T
    X -= X.mean(1, keepdims=True)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    ref = learn_dictionary(X.astype(dtype), 6, 0.1, random_state=0)
    other = learn_dictionary(X.astype(dtype), 6, 0.1, random_state=0, backend="torch")
    atol = 1e-5 if dtype == np.float32 else 1e-12
    assert other.n_iter == ref.n_iter and other.converged and ref.converged
    np.testing.assert_allclose(other.atoms, ref.atoms, rtol=0, atol=atol)
    np.testing.assert_allclose(other.codes, ref.codes, rtol=0, atol=atol)
    assert isinstance(other.codes, np.ndarray)


def test_sparse_atoms_torch_errors(monkeypatch):
    from nilearn_vlm import SparseAtoms

    X = _units(n_units=60, k=2)
    with pytest.raises(ValueError, match=r"backend='torch' runs solver='cd'; solver='minibatch'.*backend='numpy'"):
        SparseAtoms(n_atoms=2, solver="minibatch", backend="torch").fit(X)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"device='cuda:0' needs a CUDA GPU.*Use device='cpu'"):
        SparseAtoms(n_atoms=2, device="cuda:0").fit(X)
