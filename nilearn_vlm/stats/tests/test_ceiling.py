import numpy as np
import pytest
from scipy import stats as sstats

from nilearn_vlm.stats import bootstrap_ci, noise_ceiling, normalized_correlation, signal_power


def _repeats(rng, n=4000, v=6, n_rep=5, noise_sd=None):
    noise_sd = np.linspace(0.5, 3.0, v) if noise_sd is None else noise_sd
    s = rng.standard_normal((n, v))
    reps = np.stack([s + noise_sd * rng.standard_normal((n, v)) for _ in range(n_rep)])
    return s, reps, noise_sd


def test_noise_ceiling_matches_theory():
    """Signal variance 1, noise variance s2, N repeats: CC_max = 1 / sqrt(1 + s2 / N)."""
    rng = np.random.default_rng(0)
    s, reps, sd = _repeats(rng)
    theory = 1 / np.sqrt(1 + sd**2 / reps.shape[0])
    np.testing.assert_allclose(noise_ceiling(reps), theory, atol=0.02)
    sp, noise = signal_power(reps)
    np.testing.assert_allclose(sp, 1.0, atol=0.1)
    np.testing.assert_allclose(noise, sd**2, rtol=0.05)
    # the ceiling is the correlation of the true signal with the repeat mean
    r_true = np.array([np.corrcoef(s[:, j], reps.mean(0)[:, j])[0, 1] for j in range(s.shape[1])])
    np.testing.assert_allclose(noise_ceiling(reps), r_true, atol=0.02)


def test_normalized_correlation():
    rng = np.random.default_rng(1)
    s, reps, _ = _repeats(rng, n=20000)
    np.testing.assert_allclose(normalized_correlation(s, reps), 1.0, atol=0.03)
    # a prediction holding half the signal variance scores CC_norm = corr(p, s)
    p = s + rng.standard_normal(s.shape)
    ref = np.array([np.corrcoef(p[:, j], s[:, j])[0, 1] for j in range(s.shape[1])])
    np.testing.assert_allclose(normalized_correlation(p, reps), ref, atol=0.03)
    # CC_norm = CC_abs / CC_max
    cc_abs = np.array([np.corrcoef(p[:, j], reps.mean(0)[:, j])[0, 1] for j in range(s.shape[1])])
    np.testing.assert_allclose(
        normalized_correlation(p, reps), cc_abs / noise_ceiling(reps), rtol=1e-10
    )


def test_ceiling_without_signal_and_bad_input():
    rng = np.random.default_rng(2)
    reps = rng.standard_normal((3, 500, 4))
    reps[:, :, 0] = reps[0, :, 0]  # identical repeats: ceiling 1
    cc = noise_ceiling(reps)
    assert np.isclose(cc[0], 1.0)
    assert np.all(np.abs(signal_power(reps)[0][1:]) < 0.1) and np.all((cc[1:] >= 0) & (cc[1:] < 0.4))
    with pytest.raises(ValueError, match="n_repeats >= 2"):
        noise_ceiling(np.ones((1, 10, 2)))
    with pytest.raises(ValueError, match="expected \\(n_samples, n_voxels\\)"):
        normalized_correlation(np.ones((9, 2)), reps[:, :10, :2])


def test_bootstrap_ci_matches_scipy_percentile_bootstrap():
    rng = np.random.default_rng(3)
    scores = rng.normal(0.2, 0.05, size=(12, 4))  # 12 runs x 4 layers
    ci = bootstrap_ci(scores, n_bootstrap=20000, random_state=0)
    ref = sstats.bootstrap((scores,), np.mean, axis=0, method="percentile", n_resamples=20000,
                           random_state=1).confidence_interval
    np.testing.assert_allclose(ci.low, ref.low, atol=0.004)
    np.testing.assert_allclose(ci.high, ref.high, atol=0.004)
    np.testing.assert_allclose(ci.estimate, scores.mean(0))
    assert ci.distribution.shape == (20000, 4)


def test_bootstrap_ci_coverage_and_statistic():
    rng = np.random.default_rng(4)
    covered = 0
    for _ in range(200):
        x = rng.normal(1.0, 1.0, size=(30, 1))
        ci = bootstrap_ci(x, n_bootstrap=1000, random_state=rng.integers(1 << 31))
        covered += ci.low[0] <= 1.0 <= ci.high[0]
    assert 0.88 <= covered / 200 <= 0.99
    med = bootstrap_ci(rng.standard_normal((10, 3, 2)), statistic=np.median, n_bootstrap=50)
    assert med.low.shape == (3, 2)
    with pytest.raises(ValueError, match="at least 2 runs"):
        bootstrap_ci(np.ones((1, 3)))
