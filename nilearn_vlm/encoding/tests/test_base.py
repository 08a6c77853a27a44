"""Tests of the shared base of the voxel estimators: checks and cleaning.

Its image input/output is :mod:`nilearn_vlm.spaces`, tested in
``nilearn_vlm/spaces/tests`` (with the estimators' loading against
:func:`nilearn_vlm.spaces.load_targets`).
"""

import numpy as np
import pytest
from scipy.signal import detrend as sp_detrend

from nilearn_vlm.encoding import BaseVoxelEstimator, clean_signals


def test_sample_count_and_bad_voxels():
    with pytest.raises(ValueError, match="X has 4 scans.*y has 5"):
        BaseVoxelEstimator._check_n_samples(np.ones((4, 2)), np.ones((5, 2)))
    Y = np.random.default_rng(0).standard_normal((6, 4))
    Y[2, 1] = np.nan
    Y[:, 3] = 7.0
    with pytest.warns(UserWarning, match="1 voxel.*NaN.*1 constant"):
        valid = BaseVoxelEstimator()._valid_voxels(Y)
    np.testing.assert_array_equal(valid, [True, False, True, False])
    with pytest.raises(ValueError, match="All 2 voxels"):
        BaseVoxelEstimator()._valid_voxels(np.ones((5, 2)))


def test_clean_signals_matches_references():
    from nilearn.glm.first_level import make_first_level_design_matrix

    rng = np.random.default_rng(0)
    runs = np.repeat([0, 1], [30, 40])
    X, Y = rng.standard_normal((70, 3)), rng.standard_normal((70, 5))
    # detrending: scipy's linear detrend per run (also removes the mean)
    Xc, Yc = clean_signals(X, Y, runs, detrend=True)
    for r in (0, 1):
        np.testing.assert_allclose(Yc[runs == r], sp_detrend(Y[runs == r], axis=0),
                                   atol=1e-10)
        np.testing.assert_allclose(Xc[runs == r], sp_detrend(X[runs == r], axis=0),
                                   atol=1e-10)
    # high-pass: nilearn's cosine drift regressors, per run
    t_r, hp = 2.0, 0.02
    _, Yh = clean_signals(None, Y, runs, high_pass=hp, t_r=t_r)
    for r in (0, 1):
        n = int((runs == r).sum())
        dm = make_first_level_design_matrix(np.arange(n) * t_r, drift_model="cosine",
                                            high_pass=hp)
        D = dm.to_numpy()
        ref = Y[runs == r] - D @ np.linalg.lstsq(D, Y[runs == r], rcond=None)[0]
        np.testing.assert_allclose(Yh[runs == r], ref, atol=1e-10)
    # confounds: residuals of least squares on [1, C]
    C = rng.standard_normal((70, 2))
    _, Yk = clean_signals(None, Y, confounds=C)
    D = np.column_stack([np.ones(70), C])
    np.testing.assert_allclose(Yk, Y - D @ np.linalg.lstsq(D, Y, rcond=None)[0],
                               atol=1e-10)
    assert clean_signals(X, Y)[0] is X
    with pytest.raises(ValueError, match="pass t_r"):
        clean_signals(X, Y, high_pass=0.01)
