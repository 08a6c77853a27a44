import numpy as np
import pytest
from scipy import stats

from nilearn_vlm.stats import NullRates, clopper_pearson


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (10, 10), (57, 1000), (1, 1_000_000)])
def test_clopper_pearson_equals_scipy_exact_interval(k, n):
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    np.testing.assert_allclose(clopper_pearson(k, n), (ci.low, ci.high), rtol=1e-7, atol=1e-12)


def test_clopper_pearson_errors_and_empty():
    assert clopper_pearson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="k must lie in"):
        clopper_pearson(5, 3)


def test_null_rates_count_and_cover():
    rng = np.random.default_rng(0)
    rates = NullRates()
    for _ in range(200):
        rates.add_family(rng.uniform(size=500))
    s = rates.summary()
    assert s["n_tests"] == 100_000 and s["n_families"] == 200
    lo, hi = s["fpr_0.05_ci"]
    assert lo < 0.05 < hi and lo < s["fpr_0.05"] < hi
    assert s["fpr_0.001_ci"][0] < 0.001 < s["fpr_0.001_ci"][1]
    assert s["familywise"] <= 0.1  # BH under a complete null: at most q (0.05) in expectation
    # a planted family always rejects; counts may be added without the p-values
    rates.add_family(np.r_[1e-9, rng.uniform(size=99)])
    rates.add_family(n_tests=10, counts={0.05: 1, 0.001: 0}, any_discovery=False)
    assert rates.n_families_rejecting == round(s["familywise"] * 200) + 1 and rates.n_tests == 100_110
    with pytest.raises(ValueError, match="give p, or n_tests"):
        rates.add_family(n_tests=3)
