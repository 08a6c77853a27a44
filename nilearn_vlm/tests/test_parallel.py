"""Dask engine: a LocalCluster of 2 worker processes gives the local results.

Every check compares against a one-job local run with one BLAS thread and
asserts bit-for-bit equality. The workers get the very same BLAS set-up as
this process (its environment, then one thread set at run time, as
``threadpool_limits(1)`` does here): OpenBLAS started with
``OPENBLAS_NUM_THREADS=1`` (Dask's default for workers) can round float32
products differently from one limited to one thread at run time, which is
the environment, not the distribution. The task stream proves that the work
ran on the workers.
"""

import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from nilearn_vlm import VoxelEncoder
from nilearn_vlm.maps import unit_voxel_maps
from nilearn_vlm.parallel import (
    add_compute_arguments,
    check_compute,
    compute_options,
    chunk_groups,
    compute_context,
    run_subjects,
    use_dask,
)
from nilearn_vlm.stats import permutation_null

try:
    import distributed
except ImportError:  # the optional extra: pip install 'nilearn-vlm[dask]'
    distributed = None


def _one_blas_thread():
    threadpool_limits(1)


@pytest.fixture(scope="module")
def cluster():
    if distributed is None:
        pytest.skip("dask/distributed not installed (nilearn-vlm[dask])")
    import cloudpickle

    # the workers cannot import this test file: ship its functions by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    import dask

    # workers inherit this process's environment (no OPENBLAS_NUM_THREADS=1)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": {}}):
        cl = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True,
            dashboard_address=None, host="127.0.0.1", memory_limit="1GB",
        )
    client = distributed.Client(cl, set_as_default=False)
    client.run(_one_blas_thread)
    try:
        yield client
    finally:
        client.close()
        cl.close()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def _data(seed=0, n=120, p=20, v=300):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    Y = X @ rng.standard_normal((p, v)) + 2 * rng.standard_normal((n, v))
    return X, Y


def _n_tasks(ts):
    return len(ts.data)


def test_encoder_fit_identical_on_cluster(cluster):
    X, Y = _data()
    params = dict(max_memory=60_000, n_threads=1, cv=4,
                  alphas=np.logspace(-1, 4, 6))
    local = VoxelEncoder(n_jobs=1, **params).fit(X, Y)
    with use_dask(cluster):
        from nilearn_vlm.encoding._encoder import make_folds
        from nilearn_vlm.encoding._solver import chunk_size

        folds = list(make_folds(4, 120))
        chunk = chunk_size(120, 20, 6, folds, 4, 60_000, 300)
        assert len(chunk_groups(300, chunk)) == 2  # two workers: two tasks
        with distributed.get_task_stream(cluster) as ts:
            remote = VoxelEncoder(**params).fit(X, Y)
    assert _n_tasks(ts) >= 2
    for attr in ("coef_", "intercept_", "alpha_", "cv_scores_"):
        np.testing.assert_array_equal(getattr(remote, attr),
                                      getattr(local, attr))
    # and the chosen alphas vary, so the check is not vacuous
    assert len(np.unique(local.alpha_)) > 1


def test_unit_voxel_maps_identical_on_cluster(cluster):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((80, 150))
    Y = rng.standard_normal((80, 600))
    Y[:, :40] += X[:, :40]
    kw = dict(top_k=3, voxel_chunk=100)
    with threadpool_limits(1):
        local = unit_voxel_maps(X, Y, n_jobs=1, **kw)
        local_thr = unit_voxel_maps(X, Y, threshold=0.3, n_jobs=1, **kw)
    with use_dask(cluster), distributed.get_task_stream(cluster) as ts:
        remote = unit_voxel_maps(X, Y, **kw)
        remote_thr = unit_voxel_maps(X, Y, threshold=0.3, **kw)
    assert _n_tasks(ts) >= 4
    assert np.isfinite(local.threshold) and local.n_positive.sum() > 0
    for a, b in ((local, remote), (local_thr, remote_thr)):
        for attr in ("top_units", "top_values", "n_positive", "n_negative"):
            np.testing.assert_array_equal(getattr(b, attr), getattr(a, attr))
        assert a.threshold == b.threshold


@pytest.mark.parametrize("method", ["shift", "phase"])
def test_permutation_null_identical_on_cluster(cluster, method):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(100)
    y = rng.standard_normal((100, 400))
    y[:, :20] += x[:, None]
    kw = dict(method=method, n_permutations=60, random_state=0,
              working_memory=0.05, return_null=True,
              runs=np.repeat([0, 1], 50))
    with threadpool_limits(1):
        local = permutation_null(x, y, n_jobs=1, **kw)
    with use_dask(cluster), distributed.get_task_stream(cluster) as ts:
        remote = permutation_null(x, y, **kw)
    assert _n_tasks(ts) >= 2
    for attr in ("statistic", "pvalues", "pvalues_fwe", "null_max", "null"):
        np.testing.assert_array_equal(getattr(remote, attr),
                                      getattr(local, attr))
    assert local.pvalues_fwe[:20].max() < 0.05  # planted effect is found


def _fit_subject(seed, alphas):
    X, Y = _data(seed, v=64)
    enc = VoxelEncoder(alphas=alphas, n_threads=1, cv=3).fit(X, Y)
    return enc.coef_, enc.alpha_


def test_run_subjects_one_graph(cluster):
    alphas = np.logspace(-1, 4, 6)
    with threadpool_limits(1):
        local = [_fit_subject(s, alphas) for s in range(3)]
    with distributed.get_task_stream(cluster) as ts:
        remote = run_subjects(_fit_subject, range(3), engine="dask",
                              scheduler=cluster, alphas=alphas)
    assert _n_tasks(ts) >= 1
    for (c1, a1), (c2, a2) in zip(local, remote):
        np.testing.assert_array_equal(c2, c1)
        np.testing.assert_array_equal(a2, a1)


def test_scheduler_address(cluster):
    address = cluster.scheduler.address
    assert address.startswith("tcp://127.0.0.1")
    with use_dask(address) as client:
        assert client.scheduler.address == address
        assert run_subjects(pow, [2, 3], exp=2) == [4, 9]
    assert client.status == "closed"  # we opened it, we closed it


def test_local_engine_and_default():
    assert run_subjects(pow, [2, 3], exp=3) == [8, 27]
    assert run_subjects(pow, [2, 3], engine="local", n_workers=2,
                        exp=2) == [4, 9]
    with compute_context("local", n_workers=2):
        assert len(chunk_groups(10, 3)) == 2
    assert len(chunk_groups(10, 3)) == 1  # nothing changes outside


def test_chunk_groups_whole_chunks():
    for n, c, j in ((10, 3, 2), (100, 7, 3), (5, 10, 4), (64, 16, 8)):
        groups = chunk_groups(n, c, n_jobs=j)
        assert groups[0].start == 0 and groups[-1].stop == n
        assert all(a.stop == b.start for a, b in zip(groups, groups[1:]))
        assert all((g.stop - g.start) % c == 0 for g in groups[:-1])
        assert len(groups) <= j


def test_missing_dask_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'nilearn-vlm\[dask\]'"):
        with use_dask("local"):
            pass


def test_bad_scheduler_and_compute_table():
    with pytest.raises(ValueError, match="tcp://host:8786"):
        with use_dask("not-an-address"):
            pass
    with pytest.raises(FileNotFoundError, match="scheduler-file"):
        with use_dask("missing_scheduler.json"):
            pass
    with pytest.raises(ValueError, match="n_workers must be a positive"):
        with use_dask("local", n_workers=0):
            pass
    assert check_compute(None)["engine"] == "local"
    assert check_compute({"scheduler": "tcp://h:8786"})["engine"] == "dask"
    with pytest.raises(ValueError, match=r"compute\.shceduler: unknown key"):
        check_compute({"shceduler": "tcp://h:8786"})
    with pytest.raises(ValueError, match=r"compute\.scheduler: only used"):
        check_compute({"engine": "local", "scheduler": "tcp://h:8786"})
    with pytest.raises(ValueError, match=r"compute\.n_workers: must be"):
        check_compute({"n_workers": 0})
    with pytest.raises(ValueError, match=r"compute\.engine: must be one of"):
        check_compute({"engine": "spark"})
    with pytest.raises(ValueError, match="engine must be None or one of"):
        compute_context("spark")


def test_command_line_overrides_compute_table():
    import argparse

    parser = argparse.ArgumentParser()
    add_compute_arguments(parser)
    table = {"engine": "dask", "scheduler": "tcp://h:8786", "n_workers": 8}
    opts = compute_options(table, parser.parse_args([]))
    assert (opts["engine"], opts["scheduler"], opts["n_workers"]) == \
        ("dask", "tcp://h:8786", 8)
    opts = compute_options(table, parser.parse_args(["--engine", "local"]))
    assert (opts["engine"], opts["scheduler"]) == ("local", None)
    opts = compute_options({}, parser.parse_args(
        ["--scheduler", "sched.json", "--n-workers", "3"]))
    assert (opts["engine"], opts["scheduler"], opts["n_workers"]) == \
        ("dask", "sched.json", 3)
    with pytest.raises(ValueError, match=r"compute\.n_workers"):
        compute_options({}, parser.parse_args(["--n-workers", "0"]))
