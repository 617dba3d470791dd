"""A :class:`~bench.plan.Plan` → result files, one job at a time on one shared split.

``<results>/<dataset>/<job>/seed<S>.json`` (metrics, identity, config, fingerprint, timings, versions) and
``seed<S>.npz`` (per-target ranks) are written atomically, the JSON last: a JSON file means a finished
run. A rerun skips finished runs whose split fingerprint and config match, resumes a trained model from
its per-epoch checkpoint, and refuses to overwrite results of another split or config. Every job's result
depends only on (split, config, seed): it is seeded at its start and each training stage seeds itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from bench import memory
from bench.config import DatasetConfig, Profile
from bench.data.loaders import load
from bench.data.log import Log
from bench.data.preprocess import describe_preparation, preprocess
from bench.data.split import Split, build_split, load_split, save_split
from bench.durations import duration
from bench.errors import BenchError
from bench.executor import Item, Outcome, execute
from bench.hashing import config_hash
from bench.io import atomic_path, error_log_path, failed_path, result_files, write_json, write_npz, write_text
from bench.metrics import summarize
from bench.plan import Job, Plan
from bench.provenance import commit, hardware, versions
from bench.recommender import Context, FitReport, GenerativeModel, Recommender, config_dict, rank_targets, resolve
from bench.seeding import seed_everything
from bench.semantic_ids import load_or_fit, same_codes, semantic_ids_path
from bench.training import Standing, capped_stages, earlier_work, first_stage_seconds, from_scratch_seconds


def say(message: str) -> None:
    """What the run is doing, on stdout; stderr carries only errors (and progress bars on a terminal).
    Through ``tqdm.write``, so a line said while a bar is drawn (the study's "grid has ended" between jobs)
    goes above the bar instead of into it."""
    tqdm.write(message, file=sys.stdout)
    sys.stdout.flush()


def warn(message: str) -> None:
    tqdm.write(message, file=sys.stderr)
    sys.stderr.flush()


# ----------------------------------------------------------------------------------------- split


def source_signature(path: str | None) -> list[tuple[str, int, int]]:
    """(name, size, mtime) of the data file or of the files in the data folder: part of the cache key,
    so an edited file is never served from a stale cache."""
    if path is None:
        return []
    p = Path(path)
    files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
    return [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.exists()]


def cache_dir(results_dir: Path) -> Path:
    """Where splits and their artifacts (semantic IDs) are cached."""
    return results_dir / ".cache" / "splits"


def split_path(ds: DatasetConfig, cache_dir: Path) -> Path:
    """Where the split of ``ds`` is cached: keyed by the dataset config and the source files."""
    # The name is a label, not an input: the same log under two names is one split.
    content = {k: v for k, v in dataclasses.asdict(ds).items() if k != "name"}
    key = config_hash({"dataset": content, "source": source_signature(ds.data)})
    return cache_dir / f"{ds.config}-{key}.npz"


def prepare_split(ds: DatasetConfig, cache_dir: Path, say: Callable[[str], None] = say, save: bool = True) -> tuple[Split, Path, bool]:
    """Load → preprocess → split, cached. Returns the split, its cache path and whether it is saved there;
    with ``save=False`` a split built here is not (:func:`save_split` it once the command is sure to go on:
    a refused command writes nothing)."""
    path = split_path(ds, cache_dir)
    if path.exists():
        split = load_split(path)
        say(f"split: {ds.name} from cache ({split.fingerprint})")
        return split, path, True
    say(f"split: loading {ds.format} data{f' from {ds.data}' if ds.data else ''} …")
    started = time.perf_counter()
    log = preprocess(load_log(ds), ds.preprocess)  # no second name for the raw log: each step frees the last
    with memory.step(f"building the split of {len(log.interactions):,} rows"):
        split = build_split(log, ds.split)
    st = split.stats()
    say(
        f"split: {st['users']} users, {st['items']} items, {st['rows']} rows, {st['valid_targets']} valid / "
        f"{st['test_targets']} test targets, fingerprint {split.fingerprint} ({time.perf_counter() - started:.1f}s)"
    )
    for line in describe_preparation(split.preparation):
        say(f"split: {line}")
    if save:
        with memory.step(f"saving the split to {path}"):
            save_split(split, path)
    return split, path, save


SPLIT_RECORD = "split.json"
REPEATS_AFTER_TRAINING = "test_repeats_after_training"


def write_split_record(folder: Path, split: Split) -> None:
    """``<log>/split.json``: the split's numbers (:meth:`Split.stats`: users, items, rows per behavior,
    targets, repeat share, what preprocessing dropped) beside its results, so the report can describe the
    log from the results folder alone. Rewritten only when it changed.

    It also lists, by index into the test targets (the order of every rank file), the repeat targets whose
    item the user touched only after the training part (:meth:`Split.in_training`), so the report can split
    the repeat targets by it without the data."""
    outside = split.test.is_repeat & ~split.in_training(split.test)
    path, record = folder / SPLIT_RECORD, {**split.stats(), REPEATS_AFTER_TRAINING: np.flatnonzero(outside).tolist()}
    if not path.exists() or json.loads(path.read_text()) != json.loads(json.dumps(record)):
        write_json(path, record)


def load_log(ds: DatasetConfig) -> Log:
    synthetic = dataclasses.asdict(ds.synthetic) if ds.synthetic else None
    with memory.step(f"reading {ds.data or ds.format}"):
        return load(ds.format, ds.data, synthetic, ds.checks)


# ------------------------------------------------------------------------------------------- runs


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def checkpoint_path(result: Path, fingerprint: str, expected: str, ids: str | None = None) -> Path:
    """A run's per-epoch checkpoint, named by split, config and, for a model on semantic IDs, their
    fingerprint (``ids``), so it is only ever resumed into the run that wrote it: a checkpoint trained on
    codes since refitted (another machine's, a deleted cache) is not resumed on the new ones."""
    return result.with_suffix(f".{fingerprint}-{expected}{'-' + ids if ids else ''}.ckpt")


def _ids_fingerprint(job: Job, ids: Callable[[], Mapping[str, Any]] | None) -> str | None:
    """The fingerprint of the semantic IDs a generative job trains on (``ids``: :func:`_ids_of`); None for
    another model, or when ``ids`` is None (a dry run before the IDs are cached: no checkpoint can be on them)."""
    if ids is None or not issubclass(resolve(job.target), GenerativeModel):
        return None
    return str(ids()["fingerprint"])


def _ids_cached(plan: Plan, split: Split) -> bool:
    return semantic_ids_path(split, plan.dataset.semantic_ids, cache_dir(plan.results_dir)).exists()


def _same_run(done: dict, fingerprint: str, expected: str) -> bool:
    """Whether a finished result (its JSON) is this job's: the same split and config hash."""
    return done.get("split_fingerprint") == fingerprint and done.get("config_hash") == expected


def same_ids(done: Mapping[str, Any], current: Callable[[], Mapping[str, Any]]) -> bool:
    """Whether a finished result was trained on the split's semantic IDs as they are now (``current()``:
    their stats, called only for a result that has any; :func:`~bench.semantic_ids.same_codes`), True for
    a model without them. The codes depend on the BLAS build and CPU that fitted them (:mod:`bench.semantic_ids`)."""
    used = (done.get("generation") or {}).get("semantic_ids")
    return not used or same_codes(used, current())


def _ids_of(plan: Plan, split: Split, write: bool = True) -> Callable[[], Mapping[str, Any]]:
    """The split's semantic-ID stats, fitted (or read) on the first call only; ``write`` False (a dry run)
    fits them in memory when the cache has none."""
    cache = cache_dir(plan.results_dir) if write or _ids_cached(plan, split) else None
    return functools.cache(lambda: load_or_fit(split, plan.dataset.semantic_ids, cache).stats)


def job_hash(job: Job, profile: Profile) -> str:
    """What a finished result must match to be this job's: class, typed config and profile."""
    return config_hash({"target": job.target, "config": config_dict(job.config), "profile": dataclasses.asdict(profile)})


def run(
    plan: Plan | Sequence[Plan],
    device: torch.device | None = None,
    progress: bool = True,
    wait: bool = True,
    workers: int = 1,
    scheduler: str | None = None,
    then: Callable[[Plan, Job], list[Plan]] | None = None,
) -> list[str]:
    """Run every job of ``plan`` (or of several plans on one log, in order) on its shared split; returns the
    labels of the jobs that failed.

    Nothing is written before every job is known to be runnable (no result of another split or config in
    the way). One command at a time writes a dataset's results: the others wait for the lock (or, with
    ``wait=False``, stop with a one-line error) and then skip what it finished. The jobs run here
    (``workers=1``) or on Dask distributed (:mod:`bench.executor`); the results are the same either way.

    ``then(plan, job)`` is asked as each job ends, under the same lock, for plans that job made possible
    (``bench study``: a model's tuned seeds once its grid is done); their jobs start as workers free up. A
    plan that cannot run (a result in its way) does not stop the jobs in flight: the first such error is
    raised once they have ended.
    """
    plans = [plan] if isinstance(plan, Plan) else list(plan)
    first = plans[0]
    split, path, saved = prepare_split(first.dataset, cache_dir(first.results_dir), save=False)
    device = device or default_device()
    torch.set_num_threads(first.profile.threads)
    for p in plans:
        _pending(p, split)  # refuse before writing anything
    refused: list[BenchError] = []
    queue = _Queue(split)

    def follow_up(item: Item, outcome: Outcome) -> list[Item]:
        more = queue.ended(item)
        try:
            for later in then(item[0], item[1]) if then else []:
                more += queue.add(later)
        except BenchError as err:  # said once, as the command's one-line error, after the jobs in flight
            refused.append(err)
        return more

    with results_lock(first.folder, wait):
        remove_leftovers(first.folder, cache_dir(first.results_dir))
        if not saved:
            save_split(split, path)
        write_split_record(first.folder, split)
        todo = [item for p in plans for item in queue.add(p)]
        streamed = then is not None or len(plans) > 1
        outcomes = execute(todo, run_one, split, path, device, progress, workers, scheduler, follow_up if streamed else None)
    if refused:
        raise refused[0]
    return [o.label for o in outcomes if o.error is not None]


class _Queue:
    """The jobs of several plans, each queued once (RCLRec's seeds are in Table 1's plan and in the
    ablations'). A job that would reuse a run still queued (the sweep point at RCLRec's own k) is held back
    until that run has ended, then planned again: reused if it can be, else run."""

    def __init__(self, split: Split) -> None:
        self.split = split
        self.queued: set[Path] = set()  # result files
        self.held: dict[Path, list[Plan]] = {}  # by the result file each waits for: one-job plans

    def add(self, plan: Plan) -> list[Item]:
        """``plan``'s jobs to run now (finished and reusable ones are announced and skipped here)."""
        items = []
        for job, expected in _pending(plan, self.split, announce=True):
            path = plan.json_path(job)
            if path in self.queued:
                continue
            self.queued.add(path)
            source = plan.reuse_path(job)
            if source is not None and source in self.queued and not source.exists():
                self.held.setdefault(source, []).append(dataclasses.replace(plan, jobs=(job,)))
            else:
                items.append((plan, job, expected))
        return items

    def ended(self, item: Item) -> list[Item]:
        """The held jobs that waited for ``item``'s run: reused now, or to run."""
        return self._release(item[0].json_path(item[1]))

    def _release(self, source: Path) -> list[Item]:
        items = []
        for held in self.held.pop(source, []):
            todo = [(held, job, expected) for job, expected in _pending(held, self.split, announce=True)]
            items += todo or self._release(held.json_path(held.jobs[0]))  # reused: what waited for it is free too
        return items


def run_one(plan: Plan, job: Job, expected: str, split: Split, device: torch.device, progress: bool, echo: bool) -> Outcome:
    """One job, wherever it runs: its result files, or its failure record; the lines it has to say are
    printed (``echo``) or handed back to the driver."""
    commit()  # read (once per process) before training: a long job records the code it ran, not a later checkout's
    lines: list[str] = []
    tell = say if echo else lines.append
    try:
        _run_job(plan, job, expected, split, device, progress, tell)
    except OSError:
        raise  # the environment (disk full, permissions): every later job would fail the same way
    except Exception as err:  # noqa: BLE001 - one broken model must not stop the others
        reason = _record_failure(plan, job, err)
        line = f"✗ {job.label}: {reason} (details in {error_log_path(plan.json_path(job))})"
        if echo:
            warn(line)
        else:
            lines.append(line)
        return Outcome(job.label, tuple(lines), reason)
    return Outcome(job.label, tuple(lines))


def _pending(plan: Plan, split: Split, announce: bool = False) -> list[tuple[Job, str]]:
    """The jobs still to run, each with its config hash; raises when a result of another split, config or
    semantic IDs is in the way. With ``announce``, also reuses identical finished runs and says what is skipped."""
    todo = []
    ids = _ids_of(plan, split)
    for job in plan.jobs:
        expected, path = job_hash(job, plan.profile), plan.json_path(job)
        if announce:
            source = plan.reuse_path(job)
            if not path.exists() and source is not None and _reuse(source, path, job, split.fingerprint, expected, ids):
                say(f"✓ {job.label}: the same run as {job.reuse} seed{job.seed}, reused")
                continue
        if path.exists():
            done = json.loads(path.read_text())
            if _same_run(done, split.fingerprint, expected):
                if not same_ids(done, ids):
                    used = done["generation"]["semantic_ids"].get("fingerprint", "unrecorded, other statistics")
                    raise BenchError(
                        f"{path}: was trained on other semantic IDs (codes {used}, this split's "
                        f"{ids()['fingerprint']}: fitted on another CPU, BLAS build or thread count); delete it to retrain on these"
                    )
                if announce:
                    say(f"✓ {job.label}: finished earlier, skipped")
                continue
            differs = "split" if done.get("split_fingerprint") != split.fingerprint else "config"
            hint = ""
            if differs == "config" and (done.get("overrides") or {}) != dict(job.overrides):
                hint = f" (its overrides {done.get('overrides') or {}}, this command's {dict(job.overrides)}: --tuned or --set?)"
            raise BenchError(
                f"{path}: holds a result for another {differs} (fingerprint {done.get('split_fingerprint')}, "
                f"config {done.get('config_hash')}){hint}; use another --results-dir or delete it"
            )
        todo.append((job, expected))
    return todo


@contextlib.contextmanager
def results_lock(folder: Path, wait: bool) -> Iterator[None]:
    """One writer per dataset results folder: an OS file lock (``filelock``), released by the OS when its
    process dies, so a killed command never leaves a stale lock behind."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not wait:
            raise BenchError(f"{folder}: another bench command is writing these results; rerun when it ends "
                             "(without --no-wait, a command waits for it)") from None  # fmt: skip
        say(f"waiting: another bench command is writing {folder}; this one goes on when it ends …")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def remove_leftovers(folder: Path, cache: Path, cache_age_s: float = 3600.0) -> None:
    """Delete the temporary files of writes that were killed mid-way (``.<name>.<random>.tmp``): all of them
    in the dataset's folder (its lock is held), and those older than an hour in the shared cache."""
    now = time.time()
    for tmp in folder.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    if cache.is_dir():
        for tmp in cache.glob(".*.tmp"):
            if now - tmp.stat().st_mtime > cache_age_s:
                tmp.unlink(missing_ok=True)


def _record_failure(plan: Plan, job: Job, err: BaseException) -> str:
    """The traceback in ``seed<S>.error.log``; ``seed<S>.failed.json`` so the tables list the run as failed.
    No result is written. Returns the one-line reason."""
    log = error_log_path(plan.json_path(job))
    write_text(log, traceback.format_exc())
    reason = f"{type(err).__name__}: {err}" if not isinstance(err, BenchError) else str(err)
    record_failed(plan, job, reason, log)
    return reason


def record_failed(plan: Plan, job: Job, reason: str, log: Path | None) -> None:
    """``seed<S>.failed.json``: the tables list the run as failed (and why) until a rerun succeeds."""
    record = {**job.identity(), "seed": job.seed, "error": reason, "log": None if log is None else str(log)}
    write_json(failed_path(plan.json_path(job)), record)


def _reuse(source: Path, target: Path, job: Job, fingerprint: str, expected: str,
           ids: Callable[[], Mapping[str, Any]]) -> bool:  # fmt: skip
    """Copy a finished run of exactly this job (same split, config hash and semantic IDs) under its name;
    for a model whose first stage other jobs share (:func:`reusable_here`), only one computed on this CPU."""
    if not source.exists():
        return False
    done = json.loads(source.read_text())
    if not (_same_run(done, fingerprint, expected) and same_ids(done, ids)):
        return False
    if not reusable_here(job, done):
        say(f"▶ {job.label}: {job.reuse} seed{job.seed} ran on another CPU ({done['hardware'].get('cpu')}), so its "
            f"shared first stage is not the one this machine trains for the other jobs of seed {job.seed}: not reused")
        return False
    with atomic_path(target.with_suffix(".npz")) as tmp:
        shutil.copyfile(source.with_suffix(".npz"), tmp)
    write_json(target, {**done, **job.identity(), "reused_from": job.reuse})
    return True


def reusable_here(job: Job, done: Mapping[str, Any]) -> bool:
    """Whether a finished run can stand for ``job`` on this machine. Any run can, unless the model shares a
    first stage between runs (:meth:`Recommender.shared_stage`: RCLRec's θ0, which its ablations and
    sweep of the same seed read from the cache) and the run was computed on another CPU: torch rounds by
    instruction set, so θ0 trained here for those jobs drifts from the run's own (README,
    Reproducibility), and Table 1's seed would no longer share θ0 with its ablations and sweep."""
    if resolve(job.target).shared_stage(job.config, job.seed) is None:
        return True
    return (done.get("hardware") or {}).get("cpu") == hardware()["cpu"]


def build(job: Job, ctx: Context) -> Recommender:
    """The job's model: its class with its typed config. Seeded first, so initial weights depend only on
    (config, seed)."""
    seed_everything(job.seed)
    return resolve(job.target)(job.config, ctx)


def fit_and_rank(job: Job, ctx: Context, batch_size: int) -> tuple[Recommender, FitReport, np.ndarray, dict[str, float]]:
    """Build, fit and rank the test targets: (model, fit report, (T,) ranks, seconds of each phase)."""
    model = build(job, ctx)
    started = time.perf_counter()
    report = model.fit(ctx.split)
    train_seconds = time.perf_counter() - started
    if not isinstance(report, FitReport):
        raise TypeError(f"{type(model).__name__}.fit returned {type(report).__name__}, not a bench.recommender.FitReport")
    started = time.perf_counter()
    if isinstance(model, GenerativeModel):
        model.list_lengths.clear()  # count the test lists only
    split = ctx.split
    ranks = rank_targets(model, split, split.test, batch_size, desc=f"test {job.name}", progress=ctx.progress)
    return model, report, ranks, {"train": train_seconds, "eval": time.perf_counter() - started}


def _run_job(plan: Plan, job: Job, expected_hash: str, split: Split, device: torch.device, progress: bool,
             say: Callable[[str], None] = say) -> None:  # fmt: skip
    path = plan.json_path(job)
    checkpoint = checkpoint_path(path, split.fingerprint, expected_hash, _ids_fingerprint(job, _ids_of(plan, split)))
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        ctx = Context(
            split=split,
            device=device,
            seed=job.seed,
            eval_batch_size=plan.profile.eval_batch_size,
            work_dir=Path(work),
            progress=progress,
            checkpoint=checkpoint,
            semantic_id_config=plan.dataset.semantic_ids,
            cache_dir=cache_dir(plan.results_dir),
        )
        say(f"▶ {job.label}: training on {device}{' (resuming)' if checkpoint.exists() else ''}")
        model, report, ranks, seconds = fit_and_rank(job, ctx, plan.profile.eval_batch_size)
        generation = None
        if isinstance(model, GenerativeModel):
            generation = {**model.generation_stats(ranks), "semantic_ids": ctx.semantic_ids().stats}

    metrics = summarize(ranks, split.test.is_repeat)
    earlier_seconds, resumes = earlier_work(report.extra)  # training done by earlier, interrupted processes
    result = {
        **job.identity(),
        "class": job.target,
        "dataset": plan.dataset.name,
        "data": plan.dataset.data,
        "seed": job.seed,
        "profile": plan.profile.name,
        "split_fingerprint": split.fingerprint,
        "config_hash": expected_hash,
        "metrics": metrics,
        "n_targets": len(ranks),
        "best_epoch": report.best_epoch,
        "valid_ndcg@10": report.best_valid_ndcg10,
        "valid_curve": report.valid_curve,
        "fit_extra": report.extra,
        "generation": generation,
        "train_seconds": round(seconds["train"] + earlier_seconds, 3),
        "resumes": resumes,
        "eval_seconds": round(seconds["eval"], 3),
        "config": config_dict(job.config),
        "dataset_config": dataclasses.asdict(plan.dataset),
        "preparation": split.preparation,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "versions": versions(),
        "hardware": hardware(),
    }
    write_npz(path.with_suffix(".npz"), ranks=ranks, users=split.test.user, items=split.test.item,
              is_repeat=split.test.is_repeat)  # fmt: skip
    write_json(path, result)
    for stale in (failed_path(path), error_log_path(path)):
        stale.unlink(missing_ok=True)  # an earlier failure of this run, now superseded
    capped = capped_stages(report.best_epoch, report.extra)
    epochs = f"best epoch {report.best_epoch + 1} of {report.extra['epochs_run']}, " if "epochs_run" in report.extra else ""
    # A grid point is chosen on validation alone: its line shows that criterion, so nobody tunes by eye on
    # the test metrics (they are in its result file all the same).
    scores = (f"valid N@10 {report.best_valid_ndcg10:.4f} (the selection criterion)  " if plan.command == "tune"
              else f"R@10 {metrics['recall@10']:.4f}  N@10 {metrics['ndcg@10']:.4f}  ")  # fmt: skip
    say(
        f"✓ {job.label}: {scores}"
        f"({epochs}{seconds['train'] + earlier_seconds:.0f}s train, {seconds['eval']:.1f}s eval)"
        + (f"; ⚠ ended at its epoch cap, not by early stopping ({'; '.join(capped)}): possibly undertrained" if capped else "")
        + ("; ⚠ fine-tuning never beat its starting point's validation NDCG@10 "
           f"({report.best_valid_ndcg10:.4f} < {report.extra['theta0_valid_ndcg10']:.4f})" if report.extra.get("sft_below_theta0") else "")
    )


# ------------------------------------------------------------------------------------------- dry run


@dataclasses.dataclass(frozen=True)
class Estimate:
    """What :func:`estimate` found: the dry run's text and its numbers, for a caller that adds plans up."""

    text: str
    to_run: int
    work_seconds: float
    """Of the jobs with an estimate; ``unknown`` more have none. The wall is this over the workers (in the
    text), or for a study, its whole work over the workers."""
    unknown: int


def dry_run(plan: Plan, workers: int, stages: set[Hashable] | None = None) -> str:
    """:func:`estimate`'s text."""
    return estimate(plan, workers, stages).text


def estimate(plan: Plan, workers: int, stages: set[Hashable] | None = None) -> Estimate:
    """The plan as a table — each job, what a run would do with it, and its expected time — without
    writing anything. Times are medians over finished runs in this results dir, counted from scratch
    (training + evaluation). The closest runs decide: this log's runs of the same configuration (another
    seed of it, or the tuning trial a tuned model was selected from: a grid's points differ several-fold in
    epochs), else this log's runs of the model class at this profile (logs differ several-fold in cost),
    else any log's; a model that never ran here shows '?'. A job that resumes from its checkpoint is
    expected to need what is left of that time, but at least the epochs early stopping still needs at its own
    pace (:meth:`~bench.training.Standing.seconds_left`). A first stage that jobs share through the cache
    (:meth:`~bench.recommender.Recommender.shared_stage`: RCLRec's θ0, one per seed and pre-training config)
    is counted once, in the first job of the plan that needs it (of the plans that share ``stages``, which
    collects those counted), and not at all when the cache holds it already
    (:meth:`~bench.recommender.Recommender.shared_stage_cached`; a fresh checkout's committed results come
    without one)."""
    from tabulate import tabulate

    split, _, _ = prepare_split(plan.dataset, cache_dir(plan.results_dir), lambda message: None, save=False)
    ids = _ids_of(plan, split, write=False)
    checkpoint_ids = ids if _ids_cached(plan, split) else None  # read once for all jobs, never fitted for a name
    # Each finished run as (first-stage seconds, the rest): a staged run's record gives its first stage's
    # seconds whether it trained that stage or read it from the cache.
    earlier: dict[tuple[str, str], list[tuple[float, float]]] = {}  # every log's runs in the results dir
    here: dict[tuple[str, str], list[tuple[float, float]]] = {}  # this log's
    same_config: dict[str, list[tuple[float, float]]] = {}  # this log's, by config hash (the seed is not in it)
    for f in result_files(plan.results_dir, "*/**/"):
        r = json.loads(f.read_text())
        key = (r.get("class", ""), r.get("profile", ""))
        first, _ = first_stage_seconds(r)
        parts = (first, from_scratch_seconds(r) + r.get("eval_seconds", 0.0) - first)
        earlier.setdefault(key, []).append(parts)
        if f.is_relative_to(plan.folder):
            here.setdefault(key, []).append(parts)
            same_config.setdefault(r.get("config_hash", ""), []).append(parts)
    rows, todo_seconds, unknown, shared, cached = [], [], 0, 0, 0
    stages = set() if stages is None else stages

    def stage_cached(job: Job) -> bool:
        """Whether the job's first stage is in the cache already (never when the codes it needs are not)."""
        if checkpoint_ids is None:
            return False
        ctx = Context(split=split, device=torch.device("cpu"), seed=job.seed, semantic_id_config=plan.dataset.semantic_ids,
                      cache_dir=cache_dir(plan.results_dir))  # fmt: skip
        return resolve(job.target).shared_stage_cached(job.config, ctx)

    for job in plan.jobs:
        expected, path = job_hash(job, plan.profile), plan.json_path(job)
        checkpoint = checkpoint_path(path, split.fingerprint, expected, _ids_fingerprint(job, checkpoint_ids))
        status, standing = "to run", None
        if path.exists():
            done = json.loads(path.read_text())
            if not _same_run(done, split.fingerprint, expected):
                status = "blocked: a result of another split or config is there"
            else:
                status = "finished" if same_ids(done, ids) else "blocked: a result on other semantic IDs is there"
        elif (source := plan.reuse_path(job)) is not None and source.exists():
            trial = json.loads(source.read_text())
            status = f"reuses {job.reuse} if identical" if reusable_here(job, trial) else "to run (its trial ran on another CPU)"
        elif checkpoint.exists():
            standing = Standing.read(checkpoint)
            status = "to resume from its checkpoint" + (f", {standing.summary()}" if standing else "")
        runs = (same_config.get(expected) or here.get((job.target, plan.profile.name))
                or earlier.get((job.target, plan.profile.name)))  # fmt: skip
        job_seconds = None
        if runs:
            first, rest = (float(np.median([r[i] for r in runs])) for i in (0, 1))
            stage = resolve(job.target).shared_stage(job.config, job.seed) if first else None
            if status.startswith("to ") and stage is not None and stage not in stages and stage_cached(job):
                cached += 1
                stages.add(stage)  # read from the cache: no job of this study trains it
            job_seconds = rest if stage in stages else first + rest
            if status.startswith("to ") and stage is not None:
                shared += stage in stages
                stages.add(stage)
            if standing is not None:  # what is left of it
                job_seconds = standing.seconds_left(job_seconds)
        if status.startswith("to "):
            if job_seconds is None:
                unknown += 1
            else:
                todo_seconds.append(job_seconds)
        rows.append([job.label, job.display, ", ".join(f"{k}={v}" for k, v in job.overrides.items()) or "–", status,
                     "?" if job_seconds is None else duration(job_seconds)])  # fmt: skip
    rows += [["–", display, "–", f"waiting for {reason}", "?"] for display, reason in plan.waiting]
    table = tabulate(rows, headers=["job", "display", "overrides", "status", "expected"], tablefmt="simple")
    n_todo = sum(1 for r in rows if r[3].startswith("to "))
    width = max(1, min(workers, n_todo))
    total = sum(todo_seconds)
    if unknown and not todo_seconds:  # nothing to estimate from: say so rather than "about 0 s"
        expected = f"no estimate yet: none of their models has finished a run here at profile {plan.profile.name}"
    else:
        expected = (f"expected about {duration(total / width)} wall ({duration(total)} of work)"
                    + (f", plus {unknown} job(s) of models that never ran here" if unknown else ""))  # fmt: skip
    summary = f"{plan.command}: {len(plan.jobs)} job(s), {n_todo} to run on {width} worker(s); {expected}"
    if plan.waiting:
        summary += f"; {len(plan.waiting)} more waiting (not run by this command)"
    if shared:
        already = f" or find it in the cache ({cached})" if cached else ""
        summary += (f"\n({shared} job(s) share a first stage, RCLRec's θ0, with an earlier job{already}: their times leave it out; "
                    "on more than one worker, a job whose θ0 another worker is still training starts after the jobs that do "
                    "not need it, or waits for it when none is left)")  # fmt: skip
    return Estimate(f"{table}\n\n{summary}\ndry run: nothing was written", n_todo, total, unknown)
