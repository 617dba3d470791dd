"""Jobs (dataset, model, seed) → result files, one model at a time on one shared split.

``DIR/<dataset>/<model>/seed<S>.json`` (metrics, config, fingerprint, timings, versions) and
``seed<S>.npz`` (per-target ranks) are written atomically, the JSON last: a JSON file means a finished
run. A rerun skips finished runs whose split fingerprint and config match, resumes a trained model from
its per-epoch checkpoint, and refuses to overwrite results of another split or config.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.config import (
    DatasetConfig,
    ModelSpec,
    Profile,
    config_hash,
    from_dict,
    load_dataset,
    load_model,
    load_profile,
)
from bench.data.loaders import load
from bench.data.preprocess import preprocess
from bench.data.split import Split, build_split, load_split, save_split
from bench.errors import BenchError
from bench.io import write_json, write_npz
from bench.metrics import summarize
from bench.recommender import Context, GenerativeModel, build_model, config_dict, rank_targets, resolve
from bench.training import capped_stages


def say(message: str) -> None:
    """What the run is doing, on stdout; stderr carries only errors (and progress bars on a terminal)."""
    print(message, flush=True)


def warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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


def prepare_split(ds: DatasetConfig, cache_dir: Path, say: Callable[[str], None] = say) -> Split:
    """Load → preprocess → split, cached by (dataset config, source files)."""
    key = config_hash({"dataset": dataclasses.asdict(ds), "source": source_signature(ds.data)})
    path = cache_dir / f"{ds.name}-{key}.npz"
    if path.exists():
        split = load_split(path)
        say(f"split: {ds.name} from cache ({split.fingerprint})")
        return split
    say(f"split: loading {ds.format} data{f' from {ds.data}' if ds.data else ''} …")
    started = time.perf_counter()
    synthetic = dataclasses.asdict(ds.synthetic) if ds.synthetic else None
    log = preprocess(load(ds.format, ds.data, synthetic), ds.preprocess)
    split = build_split(log, ds.split)
    save_split(split, path)
    st = split.stats()
    say(
        f"split: {st['users']} users, {st['items']} items, {st['rows']} rows, {st['valid_targets']} valid / "
        f"{st['test_targets']} test targets, fingerprint {split.fingerprint} ({time.perf_counter() - started:.1f}s)"
    )
    return split


# ------------------------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class Job:
    spec: ModelSpec
    config: Any
    seed: int
    json_path: Path

    @property
    def name(self) -> str:
        return f"{self.spec.name} seed{self.seed}"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    for name in ("pandas", "scipy", "recbole"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__version__", "?")
    return out


def plan(
    models: Sequence[str],
    ds: DatasetConfig,
    profile: Profile,
    seeds: int,
    results_dir: Path,
    variants: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
) -> list[Job]:
    """Resolve every model and config before anything runs, so a typo fails before hours of training.
    ``variants`` maps a result name to (model, parameter overrides), e.g. a sweep point."""
    jobs = []
    for name in models:
        base, overrides = (variants or {}).get(name, (name, {}))
        spec = dataclasses.replace(load_model(base, profile.name, overrides), name=name)
        config = from_dict(resolve(spec.target).Config, spec.params, spec.source)
        for seed in range(seeds):
            jobs.append(Job(spec, config, seed, results_dir / ds.name / name / f"seed{seed}.json"))
    return jobs


def job_hash(job: Job, profile: Profile) -> str:
    return config_hash(
        {"target": job.spec.target, "config": config_dict(job.config), "profile": dataclasses.asdict(profile)}
    )


def run(
    models: Sequence[str],
    dataset: str = "synthetic",
    data: str | None = None,
    profile_name: str = "cpu",
    seeds: int | None = None,
    results_dir: Path = Path("results"),
    device: torch.device | None = None,
    progress: bool = True,
    variants: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
) -> list[str]:
    """Run every (model, seed) job on one shared split; returns the names of the jobs that failed."""
    profile, _ = load_profile(profile_name)
    ds = load_dataset(dataset, profile_name, data)
    n_seeds = seeds if seeds is not None else profile.seeds
    if n_seeds < 1:
        raise BenchError("--seeds must be at least 1")
    jobs = plan(models, ds, profile, n_seeds, results_dir, variants)
    split = prepare_split(ds, cache_dir(results_dir))
    device = device or default_device()
    torch.set_num_threads(profile.threads)

    todo = []
    for job in jobs:
        expected = job_hash(job, profile)
        if job.json_path.exists():
            done = json.loads(job.json_path.read_text())
            if done.get("split_fingerprint") == split.fingerprint and done.get("config_hash") == expected:
                say(f"✓ {job.name}: finished earlier, skipped")
                continue
            raise BenchError(
                f"{job.json_path}: holds a result for another split or config (fingerprint "
                f"{done.get('split_fingerprint')}, config {done.get('config_hash')}); use another --results-dir "
                "or delete it"
            )
        todo.append((job, expected))

    failed = []
    for job, expected in todo:
        try:
            _run_job(job, expected, ds, profile, split, device, progress, cache_dir(results_dir))
        except BenchError as err:
            failed.append(job.name)
            warn(f"✗ {job.name}: {err}")
        except Exception as err:  # noqa: BLE001 - one broken model must not stop the others
            failed.append(job.name)
            log = job.json_path.with_suffix(".error.log")
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(traceback.format_exc())
            warn(f"✗ {job.name}: {type(err).__name__}: {err} (traceback in {log})")
    return failed


def _run_job(
    job: Job,
    expected_hash: str,
    ds: DatasetConfig,
    profile: Profile,
    split: Split,
    device: torch.device,
    progress: bool,
    cache: Path,
) -> None:
    seed_everything(job.seed)
    # Named by split and config, so a checkpoint is only ever resumed into the run that wrote it.
    checkpoint = job.json_path.with_suffix(f".{split.fingerprint}-{expected_hash}.ckpt")
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        ctx = Context(
            split=split,
            device=device,
            seed=job.seed,
            eval_batch_size=profile.eval_batch_size,
            work_dir=Path(work),
            progress=progress,
            checkpoint=checkpoint,
            semantic_id_config=ds.semantic_ids,
            cache_dir=cache,
        )
        model = build_model(job.spec, ctx)
        say(f"▶ {job.name}: training on {device}{' (resuming)' if checkpoint.exists() else ''}")
        started = time.perf_counter()
        report = model.fit(split)
        train_seconds = time.perf_counter() - started
        started = time.perf_counter()
        if isinstance(model, GenerativeModel):
            model.list_lengths.clear()  # count the test lists only
        ranks = rank_targets(model, split, split.test, profile.eval_batch_size, desc=f"test {job.spec.name}", progress=progress)
        eval_seconds = time.perf_counter() - started
        generation = None
        if isinstance(model, GenerativeModel):
            generation = {**model.generation_stats(ranks), "semantic_ids": ctx.semantic_ids().stats}

    metrics = summarize(ranks, split.test.is_repeat)
    result = {
        "model": job.spec.name,
        "class": job.spec.target,
        "dataset": ds.name,
        "data": ds.data,
        "seed": job.seed,
        "profile": profile.name,
        "split_fingerprint": split.fingerprint,
        "config_hash": expected_hash,
        "metrics": metrics,
        "n_targets": int(len(ranks)),
        "best_epoch": report.best_epoch,
        "valid_ndcg@10": report.best_valid_ndcg10,
        "valid_curve": report.valid_curve,
        "fit_extra": report.extra,
        "generation": generation,
        "train_seconds": round(train_seconds, 3),
        "eval_seconds": round(eval_seconds, 3),
        "config": config_dict(job.config),
        "dataset_config": dataclasses.asdict(ds),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "versions": versions(),
    }
    write_npz(
        job.json_path.with_suffix(".npz"),
        ranks=ranks,
        users=split.test.user,
        items=split.test.item,
        is_repeat=split.test.is_repeat,
    )
    write_json(job.json_path, result)
    capped = capped_stages(report.best_epoch, report.extra)
    epochs = f"best epoch {report.best_epoch + 1} of {report.extra['epochs_run']}, " if "epochs_run" in report.extra else ""
    say(
        f"✓ {job.name}: R@10 {metrics['recall@10']:.4f}  N@10 {metrics['ndcg@10']:.4f}  "
        f"({epochs}{train_seconds:.0f}s train, {eval_seconds:.1f}s eval)"
        + (f"; ⚠ ended at its epoch cap, not by early stopping ({'; '.join(capped)}): possibly undertrained" if capped else "")
    )
