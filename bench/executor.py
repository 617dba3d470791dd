"""Where a plan's jobs run: in this process one after another, or as tasks on Dask distributed.

Every job is independent (its own seed, checkpoint and atomically written result), so a plan is a bag of
tasks. ``workers=1`` runs them here, in order, with progress bars (for debugging: no cluster, plain
tracebacks). Otherwise a local Dask cluster starts with one single-threaded worker process per core — two
torch threads on one core run several times slower than one (OpenMP spin-waiting), so the cores are used
by processes, not threads — or the jobs go to an existing cluster (``scheduler``, e.g. one started by
dask-jobqueue on Slurm). A worker reads the split from the shared cache file, trains, writes the result
files itself and returns the lines to print; the driver shows one progress bar over jobs, each epoch's
line as the workers send it, and a line per finished job. A job that fails, or whose worker dies, is
reported; the others go on.

Why Dask and not Ray: RecBole 1.2.1 pins ``ray<=2.6.3``, which no longer imports on this stack and lacks
the token authentication added after unauthenticated clusters were exploited (CVE-2023-48022);
``distributed`` has no conflict, starts a local cluster in about a second, binds to localhost by default
and reaches batch schedulers through dask-jobqueue.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import sys
import threading
from collections.abc import Callable, Hashable, Iterator, Sized
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from bench.config import from_dict
from bench.errors import BenchError
from bench.plan import Job, Plan
from bench.recommender import config_dict, resolve
from bench.training import EPOCH_LINES

EPOCH_TOPIC = "bench-epoch"  # the Dask event topic that carries the workers' epoch lines to the driver


def default_workers() -> int:
    """One worker per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a job reports back: its label, the lines it printed, and the failure's one-line reason."""

    label: str
    lines: tuple[str, ...]
    error: str | None = None


Item = tuple[Plan, Job, str]
"""A job to run: its plan (where its result goes, what the command is), the job, its config hash."""
FollowUp = Callable[[Item, Outcome], list[Item]]
"""Called on the driver as each job ends: the jobs that can start now because it did (``bench study``: a
model's tuned seeds once its whole grid has finished). They start before the queued jobs that have not
started yet (another model's grid points): a model's row is finished as early as it can be, so a study
computed in sessions commits whole rows instead of many half-made ones. The order changes no number."""


def execute(
    todo: list[Item],
    run_job: Callable[..., Outcome],
    split: Any,
    split_path: Path,
    device: torch.device,
    progress: bool,
    workers: int,
    scheduler: str | None,
    follow_up: FollowUp | None = None,
) -> list[Outcome]:
    """Run ``todo`` with ``run_job`` (:func:`bench.runner.run_one`), and what ``follow_up`` adds."""
    if not todo:
        return []
    if (workers <= 1 or (len(todo) == 1 and follow_up is None)) and scheduler is None:  # no cluster to start
        queue, opened, outcomes = list(todo), [], []
        while queue or opened:
            plan, job, expected = item = opened.pop(0) if opened else queue.pop(0)
            outcomes.append(run_job(plan, job, expected, split, device, progress, echo=True))
            opened += follow_up(item, outcomes[-1]) if follow_up else []
        return outcomes
    return _on_dask(todo, split_path, device, progress, workers, scheduler, follow_up)


def _on_dask(todo: list[Item], split_path: Path, device: torch.device, progress: bool, workers: int,
             scheduler: str | None, follow_up: FollowUp | None) -> list[Outcome]:  # fmt: skip
    import dask
    from distributed import as_completed

    from bench.runner import record_failed  # the runner imports this module

    queue = list(todo)  # grows as follow_up adds jobs
    threads = todo[0][0].profile.threads
    settings = {
        "distributed.scheduler.allowed-failures": 0,  # a job that kills its worker fails; it is not retried
        "distributed.worker.daemon": False,
        # Dask's default worker environment also sets MALLOC_TRIM_THRESHOLD_=65536, which hands freed memory
        # back to the OS so eagerly that torch's allocations slowed by ~20% (a 512² matmul loop: 0.61 s
        # against 0.50 s); the thread limits are what a worker needs.
        "distributed.nanny.pre-spawn-environ": {f"{lib}_NUM_THREADS": threads for lib in ("OMP", "MKL", "OPENBLAS")},
        # The statistical profiler samples the job thread's stack every 10 ms; nobody reads it here, and the
        # jobs are Python-heavy (small tensors, many ops), so it would compete for the GIL.
        "distributed.worker.profile.enabled": False,
        # Local CPU workers are forked, so they start with torch and the harness already imported (about
        # 2 s of each worker's start-up under "spawn"); CUDA does not survive a fork, so GPU workers spawn.
        "distributed.worker.multiprocessing-method": "fork" if _can_fork(device, scheduler) else "spawn",
    }
    with dask.config.set(settings):
        cluster, client = _connect(scheduler, workers if follow_up else min(workers, len(todo)))
        try:
            # A job travels as its fields plus a plain config dict: a user's model class (loaded from a
            # file next to its YAML) is rebuilt in the worker instead of unpickled by module name.
            def submit(i: int) -> Any:
                plan, job, expected = queue[i]
                return client.submit(_task, dataclasses.replace(plan, jobs=()), dataclasses.replace(job, config=None),
                                     dict(config_dict(job.config)), expected, str(split_path), str(device), progress,
                                     key=f"{job.label}-{expected}", pure=False)  # fmt: skip

            # The slots are the cluster's threads, asked again as jobs finish: an existing cluster's workers
            # may still be starting (dask-jobqueue) or scale up later.
            def slots() -> int:
                return sum(client.nthreads().values())

            stages: dict[int, Hashable | None] = {}  # by queue index (the queue only grows)

            def stage(i: int) -> Hashable | None:
                if i not in stages:
                    job = queue[i][1]
                    stages[i] = resolve(job.target).shared_stage(job.config, job.seed)
                return stages[i]

            outcomes = []
            bar = tqdm(total=len(queue), desc="jobs", unit="job", disable=None)
            if progress:  # each epoch's line, sent by the worker that trains it (``_task``), printed as it comes
                client.subscribe_topic(EPOCH_TOPIC, lambda event: bar.write(event[1]))
            for i, future in in_order(submit, queue, slots, as_completed(), stage, opened_from=len(todo)):
                plan, job, _ = queue[i]
                try:
                    outcome = future.result()
                except OSError:
                    raise
                except Exception as err:  # noqa: BLE001 - a dead worker (out of memory, killed): this job fails
                    outcome = Outcome(job.label, (), f"{type(err).__name__}: {err}")
                    record_failed(plan, job, outcome.error, None)
                for line in outcome.lines:
                    if not line.startswith("▶"):  # "started" means nothing once it has finished
                        bar.write(line, file=sys.stderr if line.startswith("✗") else sys.stdout)
                bar.update()
                outcomes.append(outcome)
                if follow_up is not None and (more := follow_up(queue[i], outcome)):
                    queue += more
                    bar.total = len(queue)
                    bar.refresh()
            bar.close()
            return outcomes
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def in_order(submit: Callable[[int], Any], jobs: Sized, slots: Callable[[], int], done: Any,
             stage: Callable[[int], Hashable | None] = lambda i: None, opened_from: int | None = None) -> Iterator[tuple[int, Any]]:  # fmt: skip
    """Jobs ``0..len(jobs)-1`` submitted in the plan's order (Table 1's), never more at a time than
    ``slots()`` (at least one, so jobs wait for a cluster whose workers have not started yet), topped up
    each time one finishes; yields (index, future) as they finish. ``done`` is an empty
    ``distributed.as_completed``. ``jobs`` may grow while this runs (the caller appends the jobs a finished
    one made possible, from index ``opened_from`` on): its length is read again at each top-up, and those
    jobs start before the first ones not started yet (:data:`FollowUp` says why).

    Why not submit them all at once: every job is its own Dask task group, so the scheduler does not queue
    them; it hands them all to the workers at submission, and a worker that finishes its share early sat
    idle while another's jobs waited behind a long one (seen: one of two cores idle for 20 minutes).

    ``stage(i)`` names the first stage job ``i`` shares through the cache with other jobs
    (:meth:`~bench.recommender.Recommender.shared_stage`, RCLRec's θ0) or None. A job whose stage a running
    job may still be training goes behind the later jobs that do not need it: started now, it would hold its
    worker waiting on the cache's lock (an RCLRec θ0: one to three CPU-hours) while other work waits. When
    every job left needs such a stage, the next in order starts anyway and reads the stage once it is there."""
    index: dict[Any, int] = {}  # future key -> job
    running: set[int] = set()
    ended: set[Hashable] = set()  # stages of finished jobs: cached (or failed, and the next job trains them)

    def next_job() -> int:
        training = {stage(i) for i in running} - ended - {None}
        started = set(index.values())
        left = [i for i in range(len(jobs)) if i not in started]
        if opened_from is not None:
            left.sort(key=lambda i: i < opened_from)  # stable: the opened jobs first, each part in its order
        return next((i for i in left if stage(i) not in training), left[0])

    def top_up() -> None:
        while len(index) < len(jobs) and len(running) < max(1, slots()):
            i = next_job()
            future = submit(i)
            if future.key in index:  # Dask would hand back the same future, and the loop below never end
                raise RuntimeError(f"job {i} was queued twice (as job {index[future.key]} before it)")
            index[future.key] = i
            running.add(i)
            done.add(future)

    top_up()
    for future in done:
        i = index[future.key]
        running.discard(i)
        ended.add(stage(i))
        yield i, future
        top_up()


def _can_fork(device: torch.device, scheduler: str | None) -> bool:
    """Whether local workers may be forked from this process: on Linux, for CPU jobs, before this process
    has touched CUDA."""
    import multiprocessing

    return (scheduler is None and device.type == "cpu" and sys.platform.startswith("linux")
            and "fork" in multiprocessing.get_all_start_methods() and not torch.cuda.is_initialized())  # fmt: skip


# Without a dashboard a scheduler still serves its health routes, by default on port 8787: two commands at
# once (one per core) would both ask for it and the second warn. Any free localhost port will do.
QUIET_SCHEDULER: dict[str, Any] = {"dashboard_address": "127.0.0.1:0"}


def _connect(scheduler: str | None, workers: int):  # noqa: ANN202 - (LocalCluster | None, Client)
    """A client of ``scheduler``, or of a new local cluster (localhost only, no dashboard)."""
    from distributed import Client, LocalCluster

    try:
        if scheduler is not None:
            return None, Client(scheduler, timeout="20s")
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, scheduler_kwargs=QUIET_SCHEDULER,
                               silence_logs=logging.ERROR)  # fmt: skip
        return cluster, Client(cluster)
    except (OSError, RuntimeError) as err:  # no address, refused, timed out; a worker process that fails to start
        where = f"the Dask scheduler at {scheduler}" if scheduler else "a local Dask cluster"
        raise BenchError(f"cannot reach {where} ({err}); --workers 1 runs the jobs in this process") from None


def _task(plan: Plan, job: Job, config: dict[str, Any], expected: str, split_path: str, device: str,
          progress: bool) -> Outcome:  # fmt: skip
    """One job in a worker process; with ``progress``, its epoch lines go to the driver as events, labelled
    with the job (the worker's own stdout is another machine's log when the cluster is remote)."""
    from distributed import get_worker

    from bench import runner

    _thread_local_random()
    torch.set_num_threads(plan.profile.threads)
    job = dataclasses.replace(job, config=from_dict(resolve(job.target).Config, config, job.name))
    worker = get_worker()
    send = (lambda line: worker.log_event(EPOCH_TOPIC, f"  {job.label}: {line}")) if progress else (lambda line: None)
    token = EPOCH_LINES.set(send)
    try:
        return runner.run_one(plan, job, expected, _split(split_path), torch.device(device), False, echo=False)
    finally:
        EPOCH_LINES.reset(token)


class _PerThread(threading.local):
    def __init__(self) -> None:
        self.rng = random.Random()


_PER_THREAD: _PerThread | None = None
_RANDOM_FUNCTIONS = (
    "seed", "getstate", "setstate", "random", "uniform", "triangular", "randint", "randrange", "choice", "choices",
    "shuffle", "sample", "getrandbits", "randbytes", "gauss", "normalvariate", "lognormvariate", "expovariate",
    "vonmisesvariate", "gammavariate", "betavariate", "paretovariate", "weibullvariate", "binomialvariate",
)  # fmt: skip


def _thread_local_random() -> None:
    """Give each thread of this worker process its own stream behind the ``random`` module's functions.

    A Dask worker's event loop draws heartbeat jitter from the module's one shared stream (tornado's
    ``PeriodicCallback``) while the job runs in another thread, so a job that draws from it too (RecBole's
    BERT4Rec masking) would get numbers that depend on the timing of heartbeats. Per thread, the job's
    stream is seeded at each stage's start and reproduces exactly what it draws in a plain process."""
    global _PER_THREAD
    if _PER_THREAD is not None:
        return
    _PER_THREAD = _PerThread()
    for name in _RANDOM_FUNCTIONS:
        if hasattr(random.Random, name):
            setattr(random, name, lambda *a, _name=name, **k: getattr(_PER_THREAD.rng, _name)(*a, **k))


_SPLITS: dict[str, Any] = {}


def _split(path: str) -> Any:
    """The split, read once per worker process."""
    if path not in _SPLITS:
        from bench.data.split import load_split

        _SPLITS[path] = load_split(Path(path))
    return _SPLITS[path]
