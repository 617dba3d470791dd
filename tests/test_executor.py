"""Where a job runs changes nothing: in this process or in Dask workers, the rank files are byte-identical."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from bench.plan import Plan, Request, ablate_plan, run_plan
from tests.test_cli import bench

MODELS = "pop,recent,sasrec,bert4rec,tiger,rclrec"  # RecBole (its masking draws from Python's random), beam search, two stages


def test_workers_give_byte_identical_ranks(tmp_path: Path) -> None:
    outs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        result = bench("run", "--models", MODELS, "--profile", "smoke", "--seeds", "1", "--workers", workers,
                       "--results-dir", str(out), cwd=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr
        outs[workers] = {p.relative_to(out): p.read_bytes() for p in sorted((out / "synthetic").glob("*/seed*.npz"))}
    assert len(outs["1"]) == 6 and outs["1"] == outs["2"]
    # The workers' epoch lines reach the driver's stdout, each labelled with its job.
    assert "  tiger seed0: TIGER epoch 1: loss " in result.stdout
    assert "  sasrec seed0: SASRec epoch 1: loss " in result.stdout


def test_a_job_that_fails_in_a_worker_is_reported_and_the_others_finish(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    (configs / "models").mkdir(parents=True)
    (configs / "models" / "broken.yaml").write_text("class: tests.broken_model:Broken\n")
    out = tmp_path / "r"
    result = bench("run", "--models", "broken,pop,recent", "--profile", "smoke", "--workers", "2", "--results-dir", str(out),
                   "--config-dir", str(configs), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and "✗ broken seed0: RuntimeError: deliberately broken" in result.stderr
    assert (out / "synthetic" / "pop" / "seed0.json").exists() and (out / "synthetic" / "recent" / "seed0.json").exists()
    assert (out / "synthetic" / "broken" / "seed0.failed.json").exists()


def test_dry_run_shows_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert bench("run", "--models", "pop,recent", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path).returncode == 0
    before = sorted(out.rglob("*"))
    result = bench("run", "--models", "pop,recent,sasrec", "--profile", "smoke", "--seeds", "2", "--results-dir", str(out),
                   "--dry-run", "--workers", "2", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0] + " " + line.split()[1]: line for line in result.stdout.splitlines() if "seed" in line}
    assert "finished" in rows["pop seed0"] and "to run" in rows["pop seed1"] and "to run" in rows["sasrec seed0"]
    assert "?" in rows["sasrec seed0"]  # never ran here: no estimate
    assert "run: 6 job(s), 4 to run on 2 worker(s)" in result.stdout and "plus 2 job(s) of models that never ran here" in result.stdout
    assert sorted(out.rglob("*")) == before
    unknown = bench("run", "--models", "sasrec", "--profile", "smoke", "--results-dir", str(out), "--dry-run", cwd=tmp_path)
    assert "run: 1 job(s), 1 to run on 1 worker(s); no estimate yet: none of their models has finished a run here" in unknown.stdout


def test_benchmark_train_measures_every_model_it_is_given(tmp_path: Path) -> None:
    import json

    result = bench("benchmark", "train", "--models", "sasrec,tiger,rclrec", "--profile", "smoke", "--batches", "2",
                   "--set", "tiger.dropout=0", "--results-dir", str(tmp_path / "r"), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads((tmp_path / "r" / "synthetic" / "benchmarks" / "train.json").read_text())
    rows = out["rows"]
    assert [r["model"] for r in rows] == ["sasrec", "tiger", "rclrec"]
    assert out["sets"] == ["tiger.dropout=0"] and [r["overrides"] for r in rows] == [{}, {"dropout": 0.0}, {}]
    for r in rows:
        assert r["seconds_per_batch"] > 0 and r["batches_per_epoch"] > 0 and r["gflops_per_batch"] > 0
    assert rows[0]["recbole_trainer_seconds_per_batch"] > 0 and "vs RecBole trainer" in result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["r"]  # RecBole's trainer left no log_tensorboard/ behind


def test_the_workers_benchmark_prints_the_ratio_and_checks_the_ranks(tmp_path: Path) -> None:
    result = bench("benchmark", "workers", "--models", "pop,sasrec", "--seeds", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("run pop,sasrec, 2 jobs, profile smoke: --workers 1 ") and "ratio " in line
    assert line.endswith("2 rank files byte-identical")
    assert ": loss " not in result.stdout  # the runs it times print no epoch lines, on one worker or two
    assert not any(tmp_path.iterdir())  # both runs went to temporary folders


def test_dry_run_estimates_from_the_closest_runs(tmp_path: Path) -> None:
    """Logs differ several-fold in cost, and so do a grid's points: another log's runs give the estimate only
    until this log has runs of the model, and those only until it has a run of the job's own configuration."""
    import json

    from bench.runner import dry_run, job_hash

    plan = run_plan(Request(dataset="synthetic", profile="smoke", results_dir=tmp_path / "r"), ["pop"])
    job = plan.jobs[0]

    def finished(folder: str, seconds: float, config_hash: str = "another-config") -> None:
        path = tmp_path / "r" / folder / "seed7.json"  # a seed outside the plan: pop seed0 stays "to run"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"class": job.target, "profile": "smoke", "config_hash": config_hash,
                                    "train_seconds": seconds, "eval_seconds": 0.0}))  # fmt: skip

    def estimate() -> str:
        row = next(line for line in dry_run(plan, 1).splitlines() if line.startswith("pop seed0"))
        assert "to run" in row, row
        return row.rstrip().rsplit(maxsplit=2)[-2:]

    finished("a-bigger-log/pop", 7200.0)
    assert estimate() == ["2.0", "h"]
    finished("synthetic/pop", 60.0)
    finished("synthetic/tuning/pop/a-slow-point", 3000.0)
    assert estimate() == ["26", "min"]  # the median of this log's 60 s and 3000 s
    finished("synthetic/tuning/pop/the-selected-point", 600.0, config_hash=job_hash(job, plan.profile))
    assert estimate() == ["10", "min"]


def _ablate_plan_after_an_earlier_run(tmp_path: Path) -> Plan:
    """The smoke ablation plan (2 seeds) in ``tmp_path/r``, beside the record of an earlier RCLRec run
    (seed 7, outside the plan) whose θ0 took an hour and its fine-tuning a minute: the dry run's estimates."""
    import json

    plan = ablate_plan(Request(dataset="synthetic", profile="smoke", seeds=2, results_dir=tmp_path / "r"), "rclrec")
    path = tmp_path / "r" / "synthetic" / "rclrec" / "seed7.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"class": plan.jobs[0].target, "profile": "smoke", "config_hash": "x", "train_seconds": 60.0,
                                "eval_seconds": 0.0, "fit_extra": {"pretrain": {"extra": {"theta0": "cached",
                                                                                          "train_seconds": 3600.0}}}}))  # fmt: skip
    return plan


def test_dry_run_counts_a_shared_theta0_once_per_seed(tmp_path: Path) -> None:
    """The four ablation variants of one seed share RCLRec's θ0: the first job pays its pre-training, the
    other three only their fine-tuning; another seed trains its own."""
    from bench.runner import dry_run, estimate

    plan = _ablate_plan_after_an_earlier_run(tmp_path)
    out = dry_run(plan, 1)
    times = {line.split()[0] + " " + line.split()[1]: line.rstrip().rsplit(maxsplit=2)[-2:] for line in out.splitlines() if " seed" in line}
    assert len(times) == 8 and sorted(map(tuple, times.values())) == [("60", "s")] * 6 + [("61", "min")] * 2, out
    assert "6 job(s) share a first stage, RCLRec's θ0, with an earlier job" in out
    assert "expected about 2.1 h wall" in out  # 2 × (3600 + 60) + 6 × 60 s = 7,680 s
    # A later plan of the same study (the sweep after the ablations) finds both θ0s counted already.
    stages: set = set()
    first, later = estimate(plan, 2, stages), estimate(plan, 2, stages)
    assert (first.to_run, first.work_seconds) == (8, 7680.0)
    assert (later.work_seconds, later.unknown) == (480.0, 0) and "8 job(s) share a first stage" in later.text


def test_dry_run_leaves_out_a_theta0_the_cache_holds(tmp_path: Path) -> None:
    """Seed 0's θ0 is cached (an earlier command trained it): none of its four jobs pays for it."""
    import torch

    from bench.recommender import Context, resolve
    from bench.runner import cache_dir, dry_run, prepare_split
    from bench.semantic_ids import load_or_fit

    plan = _ablate_plan_after_an_earlier_run(tmp_path)
    cache = cache_dir(tmp_path / "r")
    split, _, _ = prepare_split(plan.dataset, cache, lambda _: None)
    ids = load_or_fit(split, plan.dataset.semantic_ids, cache)
    job = plan.jobs[0]
    ctx = Context(split=split, device=torch.device("cpu"), seed=0, semantic_id_config=plan.dataset.semantic_ids, cache_dir=cache)
    model = resolve(job.target)
    assert not model.shared_stage_cached(job.config, ctx)
    (cache / f"{model.theta0_name(job.config, ctx, ids.codes)}.pt").write_bytes(b"theta0")
    assert model.shared_stage_cached(job.config, ctx)
    out = dry_run(plan, 1)
    times = {" ".join(line.split()[:2]): line.rstrip().rsplit(maxsplit=2)[-2:] for line in out.splitlines() if " seed" in line}
    assert sorted(map(tuple, times.values())) == [("60", "s")] * 7 + [("61", "min")], out
    assert times["rclrec seed1"] == ["61", "min"] and times["rclrec seed0"] == ["60", "s"]
    assert "7 job(s) share a first stage, RCLRec's θ0, with an earlier job or find it in the cache (1)" in out


def test_two_local_clusters_at_once_do_not_compete_for_a_port() -> None:
    """One command per core is the advice for 2-core machines: the second one's cluster must start quietly,
    not warn that port 8787 is taken."""
    import socket
    import warnings

    from bench.executor import _connect

    with socket.socket() as taken, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            taken.bind(("127.0.0.1", 8787))
            taken.listen()
        except OSError:
            pass  # already taken by something else: all the better for the test
        cluster, client = _connect(None, 1)
        try:
            assert sum(client.nthreads().values()) == 1
        finally:
            client.close()
            cluster.close()
    assert not [w for w in caught if "8787" in str(w.message)]


_OTHERS_DONE = threading.Event()  # module state: Dask pickles a task's function by reference
_FINISHED: list[int] = []


def _job(i: int) -> int:
    """Job 0 runs until jobs 1-4 have finished; they record their order."""
    if i == 0:
        assert _OTHERS_DONE.wait(timeout=20), "jobs 1-4 did not run beside job 0"
    else:
        _FINISHED.append(i)
        if len(_FINISHED) == 4:
            _OTHERS_DONE.set()
    return i


def test_a_long_job_never_holds_up_the_jobs_behind_it_on_another_worker() -> None:
    """Two single-threaded workers; job 0 runs until jobs 1-4 have finished, which they can only do by each
    starting on whichever worker is free, in the plan's order. When all five were handed to the workers at
    once, they ran here out of order (1, 3, 4, 2), and in a real study one of two workers sat idle for
    20 minutes while jobs waited behind a long one on the other."""
    from distributed import Client, LocalCluster, as_completed

    from bench.executor import QUIET_SCHEDULER, in_order

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                      scheduler_kwargs=QUIET_SCHEDULER) as cluster, \
            Client(cluster) as client:  # fmt: skip
        done = {i: future.result() for i, future in in_order(lambda i: client.submit(_job, i, key=f"job{i}-x", pure=False),
                                                              range(5), lambda: 2, as_completed())}  # job 0 raises if it timed out
    assert done == {i: i for i in range(5)}
    assert _FINISHED == [1, 2, 3, 4]  # the plan's order


class _Finished:
    """A stand-in for ``distributed.as_completed`` whose futures finish in the order they were added."""

    def __init__(self) -> None:
        self.queue: list = []

    def add(self, future) -> None:  # noqa: ANN001 - a _Key
        self.queue.append(future)

    def __iter__(self):  # noqa: ANN204
        while self.queue:
            yield self.queue.pop(0)


@dataclasses.dataclass(frozen=True)
class _Key:
    key: str


def test_a_job_whose_theta0_another_worker_is_training_goes_behind_the_jobs_that_do_not_need_it() -> None:
    """Jobs 0 and 1 share θ0 "A", job 2 has its own "B", job 3 none; two workers. Job 1 goes behind job 2
    (started at once it would wait on A's lock), and starts when job 0 has finished (A cached); job 3 then
    takes the slot job 2 frees. In the plan's order it would be 0, 1, 2, 3."""
    from bench.executor import in_order

    stages = ["A", "A", "B", None]
    submitted: list[int] = []

    def submit(i: int) -> _Key:
        submitted.append(i)
        return _Key(f"job{i}")

    finished = [i for i, _ in in_order(submit, range(4), lambda: 2, _Finished(), stages.__getitem__)]
    assert submitted == [0, 2, 1, 3]
    assert finished == [0, 2, 1, 3]


def test_when_every_job_left_needs_a_theta0_in_training_the_next_starts_anyway() -> None:
    """Three variants of one seed share θ0: the second worker is not left idle (its job reads θ0 once the
    first has cached it), and the order stays the plan's."""
    from bench.executor import in_order

    submitted: list[int] = []

    def submit(i: int) -> _Key:
        submitted.append(i)
        return _Key(f"job{i}")

    list(in_order(submit, range(3), lambda: 2, _Finished(), lambda i: "A"))
    assert submitted == [0, 1, 2]


def test_jobs_added_while_others_run_start_as_workers_free_up() -> None:
    """bench study appends a model's tuned seeds when its grid ends; they take the next free slot instead of
    waiting for every job that was queued before them to end."""
    from bench.executor import in_order

    jobs = [0, 1, 2]
    submitted: list[int] = []

    def submit(i: int) -> _Key:
        submitted.append(i)
        return _Key(f"job{i}")

    finished = []
    for i, _ in in_order(submit, jobs, lambda: 2, _Finished()):
        finished.append(i)
        if i == 0:
            jobs.append(3)  # job 0 opened job 3
    assert submitted == [0, 1, 2, 3] and finished == [0, 1, 2, 3]


def test_jobs_a_finished_job_opens_start_before_the_queued_ones_not_started() -> None:
    """Jobs 0-3 are one model's grid (0, 1) and another's (2, 3), two workers. When the first grid ends,
    its seeds (4, 5) start before the second grid's last point: that model's row is whole sooner. Without
    ``opened_from`` they would start after it: 0, 1, 2, 3, 4, 5."""
    from bench.executor import in_order

    jobs = [0, 1, 2, 3]
    submitted: list[int] = []

    def submit(i: int) -> _Key:
        submitted.append(i)
        return _Key(f"job{i}")

    for i, _ in in_order(submit, jobs, lambda: 2, _Finished(), opened_from=4):
        if i == 1:
            jobs += [4, 5]  # the first grid has ended
    assert submitted == [0, 1, 2, 4, 5, 3]


def test_a_job_queued_twice_is_an_error_not_an_endless_loop() -> None:
    """Dask hands back the same future for a key it has; as_completed then yields it again and again (seen
    when RCLRec's seed 1 was queued from Table 1's plan and from the ablations')."""
    from bench.executor import in_order

    with pytest.raises(RuntimeError, match="job 1 was queued twice"):
        list(in_order(lambda i: _Key("same"), range(2), lambda: 2, _Finished()))


def test_jobs_wait_for_a_cluster_whose_workers_have_not_started() -> None:
    """An existing cluster may report no threads yet (dask-jobqueue's workers still queued): one job at a
    time is still submitted, so the plan runs instead of ending with nothing done."""
    from distributed import Client, LocalCluster, as_completed

    from bench.executor import QUIET_SCHEDULER, in_order

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                      scheduler_kwargs=QUIET_SCHEDULER) as cluster, \
            Client(cluster) as client:  # fmt: skip
        done = [i for i, _ in in_order(lambda i: client.submit(abs, -i, key=f"wait{i}-x", pure=False), range(3), lambda: 0, as_completed())]
    assert done == [0, 1, 2]


def test_in_one_process_too_the_jobs_a_finished_job_opens_run_before_those_not_started() -> None:
    """The same rule without a cluster (one worker): grid points "a0", "a1" of one model, "b0" of another;
    "a0"'s ending opens nothing, "a1"'s opens the seeds "a-seed1", "a-seed2", which run before "b0"."""
    import torch

    from bench.executor import Outcome, execute

    ran: list[str] = []

    def run_job(plan, job, expected, split, device, progress, echo) -> Outcome:  # noqa: ANN001 - stand-ins
        ran.append(job)
        return Outcome(job, ())

    def follow_up(item, outcome) -> list:  # noqa: ANN001
        return [(None, "a-seed1", ""), (None, "a-seed2", "")] if item[1] == "a1" else []

    todo = [(None, name, "") for name in ("a0", "a1", "b0")]
    execute(todo, run_job, None, Path("split"), torch.device("cpu"), False, 1, None, follow_up)
    assert ran == ["a0", "a1", "a-seed1", "a-seed2", "b0"]
