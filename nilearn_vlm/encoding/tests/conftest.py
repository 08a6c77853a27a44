import numpy as np
import pytest


def _planted(n=240, p=20, v=150, seed=0, noise=2.0):
    """Features and targets with signal strength varying over voxels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) @ rng.standard_normal((p, p)) * 0.3
    W = rng.standard_normal((p, v))
    strength = np.logspace(-3, 0.5, v)
    Y = X @ W * strength + noise * rng.standard_normal((n, v)) + 3.0
    return X, Y


@pytest.fixture
def planted():
    return _planted()


@pytest.fixture
def planted_wide():
    # more features than training scans: the dual (kernel) form
    return _planted(n=90, p=150, v=120, seed=1)
