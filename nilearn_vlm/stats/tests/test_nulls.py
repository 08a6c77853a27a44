import numpy as np
import pytest
from scipy import stats as sstats
from scipy.signal import detrend, lfilter

from nilearn_vlm.stats import block_indices, default_block_length, pearson_r, permutation_null


def _ar1(rng, shape, phi=0.5, burn=100):
    e = rng.standard_normal((shape[0] + burn, *shape[1:]))
    return lfilter([1.0], [1.0, -phi], e, axis=0)[burn:]


def _resampled(x, runs, res, k):
    """Rebuild the k-th resampled regressor by hand from the documented draws."""
    x2 = x[:, None] if x.ndim == 1 else x
    out = np.empty_like(x2)
    labels = runs[np.sort(np.unique(runs, return_index=True)[1])]  # order of first appearance
    for r, lab in enumerate(labels):
        idx = np.flatnonzero(runs == lab)
        xr, n = x2[idx], idx.size
        d = res.draws[r]
        if res.method == "shift":
            out[idx] = np.roll(xr, d[k], axis=0)
        elif res.method == "block":
            out[idx] = xr[block_indices(n, res.block_length[r], d[0][k], d[1][k])]
        elif res.method == "phase":
            spec = np.fft.rfft(xr, axis=0) * np.exp(1j * d[k])[:, None]
            out[idx] = np.fft.irfft(spec, n=n, axis=0)
        else:
            out[idx] = xr[d[k]]
    return out


@pytest.mark.parametrize("method", ["shift", "block", "phase", "iid"])
@pytest.mark.parametrize("paired", [False, True])
@pytest.mark.parametrize("statistic", ["r", "r2"])
@pytest.mark.parametrize("interleaved", [False, True])
def test_null_equals_brute_force(method, paired, statistic, interleaved):
    rng = np.random.default_rng(0)
    n, v = 90, 7
    runs = np.repeat([3, 1], [53, 37])
    if interleaved:  # runs need not be contiguous: scans of a run keep their order
        runs = rng.permutation(runs)
    y = rng.standard_normal((n, v)) + 0.3
    x = rng.standard_normal((n, v) if paired else n)
    y += 5.0 * (runs == 1)[:, None] + 0.02 * np.arange(n)[:, None]  # baselines and drifts
    res = permutation_null(
        x, y, method=method, runs=runs, statistic=statistic, n_permutations=25,
        block_length=6, min_shift=4, n_offsets=3, return_null=True, dtype=np.float64,
        random_state=3,
    )
    # by hand: each run linearly detrended (scipy), the cleaned regressor resampled and
    # detrended again, the statistic within each run, then the mean over runs
    xd, yd = np.array(x, dtype=float), y.copy()
    for lab in (3, 1):
        m = runs == lab
        xd[m], yd[m] = detrend(xd[m], axis=0), detrend(yd[m], axis=0)

    def within(xp):
        out = []
        for lab in (3, 1):
            m = runs == lab
            xp = xp.copy()
            xp[m] = detrend(xp[m], axis=0)  # the resampled regressor, cleaned again
            if statistic == "r":
                out.append([np.corrcoef(xp[m, j], yd[m, j])[0, 1] for j in range(v)])
            else:  # R2 = 1 - SSE / SST of the cleaned run, written out
                out.append(1 - ((yd[m] - xp[m]) ** 2).sum(0) / (yd[m] ** 2).sum(0))
        return np.mean(out, axis=0)

    np.testing.assert_allclose(res.statistic, within(np.broadcast_to(xd.reshape(n, -1), y.shape)),
                               atol=1e-10)
    for k in range(res.n_permutations):
        xp = np.broadcast_to(_resampled(xd, runs, res, k), y.shape)
        np.testing.assert_allclose(res.null[k], within(xp), atol=1e-10)


def test_shift_draws_stay_in_runs_and_avoid_small_shifts():
    rng = np.random.default_rng(1)
    runs = np.repeat([5, 2, 9], [40, 30, 50])
    res = permutation_null(rng.standard_normal(120), rng.standard_normal((120, 3)), runs=runs,
                           n_permutations=200, min_shift=7, random_state=0)
    for d, n in zip(res.draws, [40, 30, 50]):
        assert d.min() >= 7 and d.max() <= n - 7


def test_single_run_shift_enumerates_all_allowed_shifts():
    rng = np.random.default_rng(2)
    res = permutation_null(rng.standard_normal(50), rng.standard_normal((50, 4)),
                           n_permutations=1000, min_shift=5)
    assert res.n_permutations == 41
    np.testing.assert_array_equal(np.sort(res.draws[0]), np.arange(5, 46))


def test_observed_and_pvalue_formula():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(60), rng.standard_normal((60, 20))
    res = permutation_null(x, y, method="phase", n_permutations=99, return_null=True,
                           alternative="two-sided", dtype=np.float64, random_state=0)
    ref = np.array([sstats.pearsonr(detrend(x), detrend(y[:, j]))[0] for j in range(20)])
    np.testing.assert_allclose(res.statistic, ref, atol=1e-12)
    nodetrend = permutation_null(x, y, detrend=False, n_permutations=9, random_state=0)
    np.testing.assert_allclose(nodetrend.statistic, pearson_r(x, y), atol=1e-6)
    count = (np.abs(res.null) >= np.abs(ref) - 1e-9).sum(0)
    np.testing.assert_allclose(res.pvalues, (1 + count) / 100)
    nmax = np.abs(res.null).max(1)
    np.testing.assert_allclose(res.null_max, nmax)
    fwe = [(1 + (nmax >= abs(r) - 1e-9).sum()) / 100 for r in ref]
    np.testing.assert_allclose(res.pvalues_fwe, fwe)


def test_chunking_does_not_change_result():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((80, 300)), rng.standard_normal((80, 300))
    kw = dict(method="block", n_permutations=40, random_state=0, return_null=True)
    a = permutation_null(x, y, **kw)
    b = permutation_null(x, y, working_memory=0.05, verbose=1, **kw)  # many small chunks, progress bar
    np.testing.assert_allclose(a.null, b.null, atol=1e-6)
    np.testing.assert_array_equal(a.pvalues, b.pvalues)


def test_calibration_ar1_noise_and_naive_permutation_is_anticonservative():
    """AR(1) noise (phi=0.5) and an AR(1) regressor: valid nulls keep 5 % false positives."""
    rng = np.random.default_rng(0)
    n, v = 400, 2000
    y = _ar1(rng, (n, v))
    x = _ar1(rng, (n,))
    p_pred = _ar1(rng, (n, v))  # per-voxel predictions unrelated to y
    fpr = {}
    for label, reg in (("shared", x), ("paired", p_pred)):
        for method in ("shift", "block", "phase", "iid"):
            res = permutation_null(reg, y, method=method, n_permutations=500,
                                   alternative="two-sided", random_state=1)
            fpr[label, method] = np.mean(res.pvalues <= 0.05)
    for label in ("shared", "paired"):
        for method in ("shift", "block", "phase"):
            assert 0.03 <= fpr[label, method] <= 0.07, (label, method, fpr)
        assert fpr[label, "iid"] > 0.09, fpr  # theory here: about 0.12-0.13


def test_power_planted_effect():
    """Realistic SNR: true correlation about 0.2 over 400 AR(1) scans."""
    rng = np.random.default_rng(5)
    n, v, k = 400, 500, 50
    x = _ar1(rng, (n,))
    y = _ar1(rng, (n, v))
    y[:, :k] += 0.25 * x[:, None] / x.std() * y[:, :k].std(0)
    for method in ("shift", "block", "phase"):
        res = permutation_null(x, y, method=method, n_permutations=1000, random_state=0)
        hits = res.pvalues[:k] <= 0.05
        assert hits.mean() > 0.8, (method, hits.mean())
        assert np.mean(res.pvalues[k:] <= 0.05) < 0.08
        assert res.significant(0.05, "fdr")[:k].mean() > 0.5


def test_runs_and_block_length_defaults():
    assert default_block_length(300) == 18
    rng = np.random.default_rng(6)
    runs = np.repeat([0, 1], [100, 200])
    # white series: the sqrt(n) floor; one fresh rotation per draw
    res = permutation_null(rng.standard_normal(300), rng.standard_normal((300, 20)), runs=runs,
                           method="block", n_permutations=50)
    assert res.block_length == [10, 15]
    assert len(np.unique(res.draws[1][0])) > 30
    # smooth series (AR(1) 0.7 both): blocks of about 20 * (tau_xy - 1) scans, tau_xy = 2.9
    x, y = _ar1(rng, (1200,), phi=0.7), _ar1(rng, (1200, 50), phi=0.7)
    res = permutation_null(x, y, runs=np.repeat(np.arange(4), 300), method="block", n_permutations=5)
    assert all(28 <= b <= 55 for b in res.block_length), res.block_length
    with pytest.warns(UserWarning, match="too short for a calibrated block permutation"):
        permutation_null(_ar1(rng, (300,), phi=0.97), _ar1(rng, (300, 20), phi=0.97),
                         method="block", n_permutations=5)


def test_block_null_calibrated_on_hrf_smooth_regressors():
    """4 x 300 scans, Glover-HRF regressors (TR 2 s), AR(1) BOLD: the automatic block length
    keeps false positives at 5% (one independent regressor and voxel per trial; the full
    benchmark is benchmarks/scores.py)."""
    from nilearn.glm.first_level.hemodynamic_models import glover_hrf

    rng = np.random.default_rng(11)
    v, runs = 600, np.repeat(np.arange(4), 300)
    h = glover_hrf(2.0, oversampling=1, time_length=32.0)
    x = np.vstack([lfilter(h, [1.0], rng.standard_normal((340, v)), axis=0)[40:] for _ in range(4)])
    for phi in (0.3, 0.9):
        y = np.vstack([_ar1(rng, (300, v), phi=phi) for _ in range(4)])
        res = permutation_null(x, y, runs=runs, method="block", n_permutations=300, random_state=0)
        k = int((res.pvalues <= 0.05).sum())
        upper = sstats.beta.ppf(0.975, k + 1, v - k)  # Clopper-Pearson
        assert upper <= 0.085 and k / v >= 0.02, (phi, k / v, upper)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(method="bogus"), "method must be one of"),
        (dict(statistic="auc"), "statistic must be one of"),
        (dict(alternative="up"), "alternative must be one of"),
        (dict(n_permutations=0), "positive integer"),
        (dict(method="block", block_length=40), "fewer than 2 blocks"),
        (dict(high_pass=0.01), "needs the repetition time"),
        (dict(method="block", block_length=0), "block_length must be a positive integer"),
        (dict(min_shift=2.5), "min_shift must be a positive integer"),
        (dict(runs=np.zeros(10)), "one run label per time point"),
    ],
)
def test_bad_arguments(kwargs, match):
    rng = np.random.default_rng(7)
    with pytest.raises(ValueError, match=match):
        permutation_null(rng.standard_normal(60), rng.standard_normal((60, 3)), **kwargs)


def test_bad_shapes():
    rng = np.random.default_rng(8)
    with pytest.raises(ValueError, match="same scans"):
        permutation_null(rng.standard_normal(50), rng.standard_normal((60, 3)))
    with pytest.raises(ValueError, match="one prediction per voxel"):
        permutation_null(rng.standard_normal((60, 2)), rng.standard_normal((60, 3)))
    y = rng.standard_normal((60, 3))
    y[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        permutation_null(rng.standard_normal(60), y)


def test_constant_voxel_less_alternative_and_masker_input():
    import nibabel as nib
    from nilearn.maskers import NiftiMasker

    rng = np.random.default_rng(9)
    n = 150
    x = _ar1(rng, (n,))
    y = rng.standard_normal((n, 4))
    y[:, 0] = 1.0  # constant voxel: no score, NaN p-values, counted, never significant
    y[:, 1] -= 0.8 * x
    with pytest.warns(UserWarning, match="1 of 4 voxel"):
        res = permutation_null(x, y, method="block", alternative="less", random_state=0)
    assert np.isnan(res.statistic[0]) and np.isnan(res.pvalues[0]) and np.isnan(res.pvalues_fwe[0])
    assert res.n_unscored == 1 and np.all(np.isfinite(res.pvalues[1:]))
    assert not res.significant(1.0, "none")[0] and not res.significant(0.99, "fdr")[0]
    assert res.pvalues[1] < 0.01 and res.statistic[1] < 0
    # images in, through a fitted masker; same numbers as arrays
    data = rng.standard_normal((3, 3, 2, n)).astype(np.float32)
    img = nib.Nifti1Image(data, np.eye(4))
    mask_img = nib.Nifti1Image(np.ones((3, 3, 2), np.int8), np.eye(4))
    masker = NiftiMasker(mask_img, standardize=None).fit()
    a = permutation_null(x, img, masker=masker, random_state=0)
    b = permutation_null(x, masker.transform(img), random_state=0)
    np.testing.assert_allclose(a.statistic, b.statistic)
    assert a.statistic.shape == (18,)
    pred_img = nib.Nifti1Image(data[::-1].copy(), np.eye(4))
    c = permutation_null(pred_img, img, masker=masker, random_state=0)
    ref = pearson_r(detrend(masker.transform(pred_img), axis=0), detrend(masker.transform(img), axis=0))
    np.testing.assert_allclose(c.statistic, ref, atol=1e-6)  # float32 images: summation order moves r by ~1e-8


def test_same_seed_shares_draws_for_joint_fwe_over_units():
    rng = np.random.default_rng(10)
    y = rng.standard_normal((120, 30))
    units = rng.standard_normal((120, 3))
    res = [permutation_null(u, y, method="phase", n_permutations=50, random_state=7, return_null=True)
           for u in units.T]
    for r in res[1:]:
        np.testing.assert_array_equal(r.draws[0], res[0].draws[0])
    joint = np.maximum.reduce([r.null_max for r in res])
    ref = np.stack([r.null for r in res]).max(axis=(0, 2))
    np.testing.assert_allclose(joint, ref)
