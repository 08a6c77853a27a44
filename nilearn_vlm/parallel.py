"""Choose where chunked work runs: this machine, or a Dask cluster.

nilearn-vlm cuts its large computations into independent voxel chunks
(ridge solves in :class:`~nilearn_vlm.VoxelEncoder`, blocks of
:func:`~nilearn_vlm.maps.unit_voxel_maps`, permutation nulls of
:func:`~nilearn_vlm.stats.permutation_null`) and runs them through joblib
with an ``n_jobs`` parameter. ``n_jobs=None`` (the default) means one job,
unless a joblib context says otherwise; :func:`use_dask` is such a context: it
routes the chunks to a Dask cluster through joblib's Dask backend
(``joblib.parallel_config(backend="dask")``). Nothing changes for code that
never enters it.

Dask is optional: ``pip install "nilearn-vlm[dask]"``.

Typical use::

    from nilearn_vlm.parallel import use_dask

    with use_dask("tcp://scheduler:8786"):      # or use_dask("local", n_workers=4)
        encoder = VoxelEncoder().fit(X, bold)    # voxel chunks are Dask tasks

    # many subjects as one task graph
    results = run_subjects(fit_one, subjects, engine="dask",
                           scheduler="tcp://scheduler:8786")

Tasks cover exactly the chunks of a one-job run, so results equal the local
ones bit for bit when BLAS is set up the same way in the workers and here;
otherwise (e.g. workers started with ``OPENBLAS_NUM_THREADS=1``, Dask's
default, against a local run limited to one thread at run time) within float32
rounding. See ``docs/dask.md``.
"""

from contextlib import contextmanager, nullcontext
from numbers import Integral
from pathlib import Path

from joblib import Parallel, delayed, effective_n_jobs, parallel_config

__all__ = [
    "ENGINES",
    "add_compute_arguments",
    "chunk_groups",
    "compute_options",
    "compute_context",
    "check_compute",
    "map_tasks",
    "run_subjects",
    "use_dask",
]

ENGINES = ("local", "dask")

COMPUTE_DEFAULTS = {
    "engine": "local",
    "scheduler": None,
    "n_workers": None,
    "threads_per_worker": 1,
    "memory_limit": "auto",
}

_MISSING = (
    "Dask is not installed; the Dask engine needs dask and distributed: "
    "pip install 'nilearn-vlm[dask]'"
)


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(_MISSING) from exc
    return distributed


def _client_for(scheduler, n_workers, threads_per_worker, memory_limit,
                cluster_kwargs):
    """A (client, owned objects) pair for a scheduler specification."""
    distributed = _import_distributed()
    if isinstance(scheduler, distributed.Client):
        return scheduler, []
    if scheduler is None:
        try:
            return distributed.get_client(), []
        except ValueError:
            scheduler = "local"
    if isinstance(scheduler, str) and scheduler == "local":
        kw = dict(n_workers=n_workers, threads_per_worker=threads_per_worker,
                  memory_limit=memory_limit, processes=True,
                  dashboard_address=None)
        kw.update(cluster_kwargs)
        cluster = distributed.LocalCluster(**kw)
        client = distributed.Client(cluster, set_as_default=False)
        if n_workers:
            # every worker up before shared data is broadcast (see run_subjects)
            client.wait_for_workers(n_workers, timeout=120)
        return client, [client, cluster]
    if hasattr(scheduler, "scheduler_address"):  # a cluster object (jobqueue...)
        client = distributed.Client(scheduler, set_as_default=False)
        return client, [client]
    if isinstance(scheduler, (str, Path)):
        text = str(scheduler)
        if "://" in text:
            client = distributed.Client(text, set_as_default=False)
        elif text.endswith(".json"):
            if not Path(text).is_file():
                raise FileNotFoundError(
                    f"scheduler file {text!r} not found: start the scheduler "
                    f"with `dask scheduler --scheduler-file {text}` first."
                )
            client = distributed.Client(scheduler_file=text,
                                        set_as_default=False)
        else:
            raise ValueError(
                f"scheduler={scheduler!r} is not understood: give an address "
                f"such as 'tcp://host:8786', a scheduler file ending in "
                f"'.json', 'local' to start a LocalCluster, or a "
                f"distributed.Client."
            )
        return client, [client]
    raise TypeError(
        f"scheduler must be an address string, 'local', a scheduler file, a "
        f"Dask cluster or a distributed.Client; got {type(scheduler).__name__}."
    )


@contextmanager
def use_dask(scheduler=None, *, n_workers=None, threads_per_worker=1,
             memory_limit="auto", wait_for_workers_timeout=60,
             **cluster_kwargs):
    """Run nilearn-vlm's chunked work on a Dask cluster, within a ``with``.

    Inside the context, every joblib call of nilearn-vlm (and of
    scikit-learn or nilearn) whose ``n_jobs`` is None or more than 1 sends
    its tasks to the cluster, through joblib's Dask backend. Large arguments
    (features, standardized units) are scattered to the workers once per
    call.

    Parameters
    ----------
    scheduler : None, str, Path, Dask cluster or distributed.Client
        ``"tcp://host:8786"`` (any Dask address): connect to a running
        scheduler; a path ending in ``.json``: a scheduler file (``dask
        scheduler --scheduler-file``, common on HPC); ``"local"``: start a
        ``LocalCluster`` of worker processes on this machine (closed on
        exit); a cluster object (``LocalCluster``, ``dask_jobqueue.SLURMCluster``
        ...) or a ``Client``: use it (not closed on exit). None: the current
        default client if there is one, else ``"local"``.
    n_workers : int or None, default=None
        Worker processes of a local cluster (None: Dask's choice, one per
        core group).
    threads_per_worker : int, default=1
        Threads per local worker. One thread per worker process keeps BLAS
        deterministic and memory per task predictable.
    memory_limit : str, float or int, default="auto"
        Memory per local worker (``"4GB"``; "auto": system memory divided
        among workers). Each task holds about the ``max_memory`` /
        ``memory_budget`` / ``working_memory`` of the function it runs plus
        its inputs: keep the budgets below the limit.
    wait_for_workers_timeout : float, default=60
        Seconds to wait for at least one worker (clusters that start
        workers on demand, e.g. SLURM jobs).
    **cluster_kwargs
        Passed to ``distributed.LocalCluster`` (e.g. ``host="127.0.0.1"``).

    Yields
    ------
    distributed.Client

    Raises
    ------
    ImportError
        When dask/distributed are missing (``pip install 'nilearn-vlm[dask]'``).

    Examples
    --------
    >>> from nilearn_vlm.parallel import use_dask
    >>> with use_dask("local", n_workers=2) as client:  # doctest: +SKIP
    ...     encoder = VoxelEncoder().fit(X, y)
    """
    if n_workers is not None and (not isinstance(n_workers, Integral)
                                  or n_workers < 1):
        raise ValueError(f"n_workers must be a positive integer or None; "
                         f"got {n_workers!r}.")
    client, owned = _client_for(scheduler, n_workers, threads_per_worker,
                                memory_limit, cluster_kwargs)
    try:
        with parallel_config(backend="dask", n_jobs=-1, client=client,
                             wait_for_workers_timeout=wait_for_workers_timeout):
            yield client
    finally:
        for obj in owned:
            obj.close()


def compute_context(engine=None, scheduler=None, n_workers=None,
                    threads_per_worker=1, memory_limit="auto"):
    """A context manager for an execution engine.

    Parameters
    ----------
    engine : None, "local" or "dask", default=None
        None: leave joblib's active configuration as it is (a surrounding
        :func:`use_dask` stays in effect). ``"local"``: this machine,
        ``n_workers`` jobs (threads for array work, processes for
        :func:`run_subjects`). ``"dask"``: :func:`use_dask` with
        ``scheduler`` (default: the current client or a LocalCluster).
    scheduler, n_workers, threads_per_worker, memory_limit
        As in :func:`use_dask` (``n_workers`` also sets the number of local
        jobs).

    Returns
    -------
    context manager

    Examples
    --------
    >>> from nilearn_vlm.parallel import compute_context, map_tasks
    >>> with compute_context("local", n_workers=2):
    ...     list(map_tasks(pow, [(2, 3), (3, 2)]))
    [8, 9]
    """
    if engine is None:
        if scheduler is not None:
            engine = "dask"
        else:
            return nullcontext()
    if engine not in ENGINES:
        raise ValueError(f"engine must be None or one of {ENGINES}; got "
                         f"{engine!r}.")
    if engine == "local":
        if scheduler is not None:
            raise ValueError("scheduler is only used with engine='dask': "
                             "drop it or set engine='dask'.")
        return parallel_config(n_jobs=n_workers or 1)
    return use_dask(scheduler, n_workers=n_workers,
                    threads_per_worker=threads_per_worker,
                    memory_limit=memory_limit)


def check_compute(table=None):
    """Validate a ``[compute]`` table of a study file.

    Parameters
    ----------
    table : dict or None
        Keys ``engine`` ("local" or "dask"), ``scheduler`` (address, scheduler
        file or "local"), ``n_workers``, ``threads_per_worker``,
        ``memory_limit``; all optional.

    Returns
    -------
    dict
        All keys, with defaults; pass it as ``compute_context(**result)``.

    Raises
    ------
    ValueError
        Naming the key (``compute.<key>``) and the fix.

    Examples
    --------
    >>> check_compute({"scheduler": "tcp://10.0.0.5:8786"})["engine"]
    'dask'
    """
    table = dict(table or {})
    unknown = set(table) - set(COMPUTE_DEFAULTS)
    if unknown:
        raise ValueError(
            f"compute.{sorted(unknown)[0]}: unknown key; allowed: "
            f"{', '.join(sorted(COMPUTE_DEFAULTS))}."
        )
    out = dict(COMPUTE_DEFAULTS)
    if table.get("scheduler") is not None and "engine" not in table:
        table["engine"] = "dask"
    out.update(table)
    if out["engine"] not in ENGINES:
        raise ValueError(f"compute.engine: must be one of {ENGINES}; got "
                         f"{out['engine']!r}.")
    if out["scheduler"] is not None:
        if out["engine"] != "dask":
            raise ValueError("compute.scheduler: only used with engine = "
                             "'dask'; set engine = 'dask' or drop it.")
        if not isinstance(out["scheduler"], str) or not out["scheduler"]:
            raise ValueError(
                "compute.scheduler: give an address like 'tcp://host:8786', "
                "a scheduler file 'scheduler.json', or 'local'."
            )
    for key in ("n_workers", "threads_per_worker"):
        val = out[key]
        if val is not None and (isinstance(val, bool)
                                or not isinstance(val, Integral) or val < 1):
            raise ValueError(f"compute.{key}: must be a positive integer; "
                             f"got {val!r}.")
    return out


def add_compute_arguments(parser):
    """Add ``--engine``, ``--scheduler`` and ``--n-workers`` to a CLI parser.

    Parameters
    ----------
    parser : argparse.ArgumentParser

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_compute_arguments(parser)
    >>> parser.parse_args(["--scheduler", "tcp://h:8786"]).scheduler
    'tcp://h:8786'
    """
    group = parser.add_argument_group("compute (overrides the study's [compute])")
    group.add_argument("--engine", choices=ENGINES, default=None,
                       help="where chunks and subjects run (default: local)")
    group.add_argument("--scheduler", default=None,
                       help="Dask scheduler: tcp://host:8786, a scheduler "
                            "file (.json) or 'local'; implies --engine dask")
    group.add_argument("--n-workers", type=int, default=None,
                       help="local jobs, or workers of a local Dask cluster")


def compute_options(table=None, args=None):
    """A study's ``[compute]`` table with command-line overrides, validated.

    Parameters
    ----------
    table : dict or None
        The ``[compute]`` table.
    args : argparse.Namespace, dict or None
        Parsed arguments of :func:`add_compute_arguments` (or a dict with
        keys ``engine``, ``scheduler``, ``n_workers``); those given (not
        None) override the table (``--scheduler`` alone switches to Dask).

    Returns
    -------
    dict
        As :func:`check_compute`; pass it to :func:`run_subjects`.

    Examples
    --------
    >>> import argparse
    >>> args = argparse.Namespace(engine=None, scheduler="local", n_workers=2)
    >>> opts = compute_options({"n_workers": 8}, args)
    >>> opts["engine"], opts["scheduler"], opts["n_workers"]
    ('dask', 'local', 2)
    """
    table = dict(table or {})
    given = args if isinstance(args, dict) else vars(args) if args is not None else {}
    engine, scheduler, n_workers = (given.get(k) for k in ("engine", "scheduler", "n_workers"))
    if scheduler is not None:
        table.update(scheduler=scheduler, engine=engine or "dask")
    elif engine is not None:
        table["engine"] = engine
        if engine == "local":
            table.pop("scheduler", None)
    if n_workers is not None:
        table["n_workers"] = n_workers
    return check_compute(table)


def chunk_groups(n_items, chunk, n_jobs=None):
    """Split ``range(n_items)`` into task slices made of whole chunks.

    Each slice covers consecutive ``chunk``-sized chunks, so a task processes
    exactly the chunks a sequential run would (same boundaries, same
    arithmetic); there are at most ``effective_n_jobs(n_jobs)`` slices.

    Parameters
    ----------
    n_items : int
    chunk : int
        Chunk length of the sequential loop.
    n_jobs : int or None
        As joblib's (None: 1, or the active context's).

    Returns
    -------
    list of slice

    Examples
    --------
    >>> chunk_groups(10, 3, n_jobs=2)
    [slice(0, 6, None), slice(6, 10, None)]
    """
    chunk = max(int(chunk), 1)
    n_chunks = -(-n_items // chunk)
    n_tasks = max(1, min(n_chunks, effective_n_jobs(n_jobs)))
    per = -(-n_chunks // n_tasks)
    step = per * chunk
    return [slice(s, min(s + step, n_items)) for s in range(0, n_items, step)]


def map_tasks(func, arg_tuples, n_jobs=None, verbose=0, desc=None, total=None):
    """Run ``func(*args)`` for every tuple of arguments, as joblib tasks.

    Threads on this machine (NumPy releases the GIL), Dask tasks inside
    :func:`use_dask`; one job runs them in a plain loop. Results come back in
    order, as a generator (at most a few pending results in memory).

    Parameters
    ----------
    func : callable
    arg_tuples : iterable of tuple
        Consumed lazily (slice big inputs inside the generator).
    n_jobs : int or None, default=None
    verbose : int, default=0
        Progress bar over tasks when > 0.
    desc : str, optional
        Progress bar label.
    total : int, optional
        Number of tasks (for the progress bar).

    Returns
    -------
    generator

    Examples
    --------
    >>> list(map_tasks(divmod, [(7, 2), (9, 4)]))
    [(3, 1), (2, 1)]
    """
    tasks = (delayed(func)(*args) for args in arg_tuples)
    results = Parallel(n_jobs=n_jobs, prefer="threads",
                       return_as="generator")(tasks)
    if verbose:
        from tqdm.auto import tqdm

        results = tqdm(results, total=total, desc=desc)
    return results


def run_subjects(func, subjects, *, engine=None, scheduler=None,
                 n_workers=None, threads_per_worker=1, memory_limit="auto",
                 verbose=0, **kwargs):
    """Map a per-subject pipeline over subjects, one task per subject.

    With ``engine="dask"`` every subject is a task of one Dask graph
    (scheduled over all workers, large shared arguments scattered once);
    locally, ``n_workers`` processes (joblib's loky). Inside a task, keep
    ``n_jobs=None``: the work of one subject then runs in its task.

    Parameters
    ----------
    func : callable
        ``func(subject, **kwargs)``; must be importable or picklable
        (a module-level function, not a lambda defined in ``__main__`` of an
        interactive session when the workers are remote).
    subjects : iterable
        Subject specifications (e.g. :class:`~nilearn_vlm.study.SubjectSpec`).
    engine, scheduler, n_workers, threads_per_worker, memory_limit
        See :func:`compute_context` (``run_subjects(func, subjects,
        **check_compute(table))`` takes a study's ``[compute]`` table);
        ``engine=None`` uses joblib's active configuration (a surrounding
        :func:`use_dask`).
    verbose : int, default=0
        Progress bar over subjects.
    **kwargs
        Passed to ``func`` (shared by all subjects).

    Returns
    -------
    list
        ``func``'s result per subject, in the order of ``subjects``.

    Examples
    --------
    >>> run_subjects(pow, [2, 3], exp=2)
    [4, 9]
    """
    subjects = list(subjects)
    with compute_context(engine, scheduler, n_workers, threads_per_worker,
                         memory_limit), _broadcast(kwargs):
        tasks = (delayed(func)(s, **kwargs) for s in subjects)
        results = Parallel(n_jobs=None, return_as="generator")(tasks)
        if verbose:
            from tqdm.auto import tqdm

            results = tqdm(results, total=len(subjects), desc="subjects")
        return list(results)


def _broadcast(kwargs):
    """On the Dask backend: the large shared arguments copied to every worker once.

    joblib would scatter them to one worker; a task whose worker dies (and
    is restarted by its nanny) could then not run again, its inputs lost.
    Copied to every worker, a task is rescheduled on another one.
    """
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    if type(backend).__name__ != "DaskDistributedBackend":
        return nullcontext()
    from dask.sizeof import sizeof

    large = [v for v in kwargs.values() if _weakrefable(v) and sizeof(v) > 1e3]
    if not large:
        return nullcontext()
    return parallel_config(backend="dask", client=backend.client, scatter=large,
                           wait_for_workers_timeout=backend.wait_for_workers_timeout)


def _weakrefable(obj):
    import weakref

    try:
        weakref.ref(obj)
    except TypeError:
        return False
    return True
