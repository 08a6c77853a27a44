import doctest
import itertools

import mne
import numpy as np
import pytest

from nilearn_vlm import stats
from nilearn_vlm.stats import fdr, fwe_max, group_sign_flip, permutation_null


def _hand_bh(p, alpha):
    """Benjamini-Hochberg step-up, written out: reject the k smallest, k = max{i: p_(i) <= i a / m}."""
    p = np.asarray(p)
    m = p.size
    order = np.argsort(p)
    ok = p[order] <= alpha * np.arange(1, m + 1) / m
    rejected = np.zeros(m, dtype=bool)
    if ok.any():
        rejected[order[: np.flatnonzero(ok).max() + 1]] = True
    # adjusted: q_(i) = min_{j >= i} m p_(j) / j
    q_sorted = np.minimum.accumulate((m * p[order] / np.arange(1, m + 1))[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(q_sorted, 1)
    return rejected, q


@pytest.mark.parametrize("seed", range(4))
def test_fdr_matches_hand_bh_and_mne(seed):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(size=300), rng.uniform(0, 0.002, size=30)])
    rej, q = fdr(p, alpha=0.05)
    ref_rej, ref_q = _hand_bh(p, 0.05)
    np.testing.assert_array_equal(rej, ref_rej)
    np.testing.assert_allclose(q, ref_q)
    mne_rej, mne_q = mne.stats.fdr_correction(p, alpha=0.05, method="indep")
    np.testing.assert_array_equal(rej, mne_rej)
    np.testing.assert_allclose(q, mne_q)
    by_rej, _ = fdr(p, alpha=0.05, method="by")
    mne_by, _ = mne.stats.fdr_correction(p, alpha=0.05, method="negcorr")
    np.testing.assert_array_equal(by_rej, mne_by)


def test_fdr_ignores_nan_and_checks_input():
    rej, q = fdr([0.001, np.nan, 0.5])
    assert rej.tolist() == [True, False, False] and np.isnan(q[1])
    with pytest.raises(ValueError, match="statistics instead of p-values"):
        fdr([0.2, 3.0])
    with pytest.raises(ValueError, match="method must be one of"):
        fdr([0.2], method="holm")


def test_fwe_max_matches_counting_and_controls_familywise_error():
    rng = np.random.default_rng(0)
    null_max = rng.standard_normal(199)
    s = rng.standard_normal(50) * 2
    p, thr = fwe_max(s, null_max, alpha=0.05)
    np.testing.assert_allclose(p, [(1 + (null_max >= v).sum()) / 200 for v in s])
    np.testing.assert_array_equal(p <= 0.05, s > thr)
    p2, _ = fwe_max(-s, -np.abs(null_max), alternative="less")
    assert p2.shape == s.shape
    # family-wise error over repeated pure-noise experiments (shared regressor, 200 voxels)
    hits = 0
    for rep in range(40):
        r = np.random.default_rng(100 + rep)
        res = permutation_null(r.standard_normal(120), r.standard_normal((120, 200)), method="phase",
                               n_permutations=200, random_state=rep)
        hits += res.significant(0.05, "fwe").any()
    assert hits <= 6  # expected 2 of 40; P(>6) < 0.5 % under a correct FWE


def _exact_max_t(x):
    """All 2**n sign flips by hand: p = #{max|t_flip| >= |t_obs|} / 2**n."""
    n = x.shape[0]

    def tmap(z):
        return z.mean(0) / (z.std(0, ddof=1) / np.sqrt(n))

    t_obs = tmap(x)
    maxes = np.array([np.abs(tmap(x * np.array(s)[:, None])).max()
                      for s in itertools.product([1, -1], repeat=n)])
    return t_obs, np.array([(maxes >= abs(t) - 1e-12).mean() for t in t_obs])


def test_group_sign_flip_matches_exact_enumeration():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 40))
    x[:, :4] += 2.5
    res = group_sign_flip(x, tail=0, n_permutations=10000)  # 2**6 flips: exact
    t_ref, p_ref = _exact_max_t(x)
    np.testing.assert_allclose(res.statistic, t_ref, rtol=1e-10)
    np.testing.assert_allclose(res.pvalues_fwe, p_ref)
    assert res.significant(0.05)[:4].sum() >= 2 and not res.significant(0.05)[4:].any()


def test_group_sign_flip_images_through_masker():
    import nibabel as nib
    from nilearn.maskers import NiftiMasker

    rng = np.random.default_rng(2)
    mask = np.zeros((6, 6, 6), dtype=np.int8)
    mask[1:5, 1:5, 1:5] = 1
    affine = np.eye(4)
    masker = NiftiMasker(nib.Nifti1Image(mask, affine), standardize=None).fit()
    imgs = []
    for _ in range(8):
        d = rng.standard_normal((6, 6, 6)).astype(np.float32)
        d[1:3, 1:3, 1:3] += 3
        imgs.append(nib.Nifti1Image(d, affine))
    res = group_sign_flip(imgs, masker=masker, n_permutations=256, random_state=0)
    img = masker.inverse_transform(res.significant(0.05).astype(np.float32))
    assert img.get_fdata()[1:3, 1:3, 1:3].mean() > 0.7 and img.get_fdata()[3:5, 3:5, 3:5].sum() == 0


def test_group_bad_input():
    with pytest.raises(ValueError, match="n_subjects >= 2"):
        group_sign_flip(np.ones((1, 5)))
    with pytest.raises(ValueError, match="tail must be"):
        group_sign_flip(np.ones((3, 5)), tail=2)


def test_docstring_examples_run():
    for mod in (stats._nulls, stats._resampling, stats._corrections, stats._clusters,
                stats._group, stats._ceiling):
        result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, mod.__name__
        assert result.attempted > 0, mod.__name__
