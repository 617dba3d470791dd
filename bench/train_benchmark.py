"""``python -m bench benchmark train``: how fast each model trains, measured, never asserted.

Per model (and thread count): seconds per training batch (forward, backward, optimizer step and the batch's
data preparation; the mean over ``batches`` after one warm-up batch — batches of one model can differ by 3x,
e.g. BERT4Rec's masking), batches per epoch, seconds per epoch,
the FLOPs of a batch (PyTorch's ``FlopCounterMode``) and so the achieved GFLOP/s against this machine's
matmul peak measured in the same run, and for the RecBole models the ratio against RecBole's own trainer
(``Trainer._train_epoch``) on the same batches, the fastest of three alternating rounds on each side. The model's own ``fit`` runs, so what is measured is what a
run does; the benchmark stops it after the batches it needs. RCLRec is measured in its first stage.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench import runner, training
from bench.plan import Job, Plan
from bench.recommender import Context


class _Enough(Exception):
    """Raised from inside ``fit`` once the batches needed are measured."""


def matmul_peak(threads: int, size: int = 1024, repeats: int = 10) -> float:
    """GFLOP/s of a float32 matmul on this machine at ``threads`` threads (best of ``repeats``)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


def _patched(batches: int, record: dict[str, Any]):  # noqa: ANN202 - (install, restore)
    """Replace ``optimizer_step`` and ``minibatch_epoch`` wherever a model module bound them: time every
    step, remember the epoch's size, stop after ``batches`` + 1 steps."""
    real_step, real_epoch = training.optimizer_step, training.minibatch_epoch

    def step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, where: str) -> float:
        out = real_step(loss, optimizer, where)
        record["times"].append(time.perf_counter())
        if len(record["times"]) > batches:
            raise _Enough
        return out

    def epoch(n: int, batch_size: int, seed: int, samples: int, *args: Any) -> float:
        record["epoch_batches"] = math.ceil((min(samples, n) if samples else n) / batch_size)
        return real_epoch(n, batch_size, seed, samples, *args)

    modules = [m for name, m in list(sys.modules.items()) if name.split(".")[0] in ("bench", "baselines", "rclrec") and m]
    saved = [(m, attr, getattr(m, attr)) for m in modules for attr in ("optimizer_step", "minibatch_epoch") if hasattr(m, attr)]

    def install() -> None:
        for m, attr, value in saved:
            setattr(m, attr, step if value is real_step else epoch if value is real_epoch else value)

    def restore() -> None:
        for m, attr, value in saved:
            setattr(m, attr, value)

    return install, restore


def _fit_until(job: Job, ctx: Context, batches: int, flops: bool) -> tuple[Any, dict[str, Any]]:
    record: dict[str, Any] = {"times": [], "epoch_batches": None, "flops": None}
    model = runner.build(job, ctx)
    install, restore = _patched(batches, record)
    install()
    counter = FlopCounterMode(display=False) if flops else None
    try:
        if counter is not None:
            with counter:
                model.fit(ctx.split)
        else:
            model.fit(ctx.split)
    except _Enough:
        pass
    finally:
        restore()
    if counter is not None:
        record["flops"] = counter.get_total_flops() / max(1, len(record["times"]))
    return model, record


def measure(plan: Plan, split: Any, batches: int, threads: Sequence[int]) -> list[dict[str, Any]]:
    rows = []
    peaks = {t: matmul_peak(t) for t in threads}
    for job in plan.jobs:
        for t in threads:
            torch.set_num_threads(t)
            with tempfile.TemporaryDirectory(prefix="bench-") as work:
                ctx = Context(split=split, device=torch.device("cpu"), seed=job.seed, work_dir=Path(work), progress=False,
                              semantic_id_config=plan.dataset.semantic_ids, cache_dir=Path(work))  # fmt: skip
                model, record = _fit_until(job, ctx, batches, flops=False)
                if len(record["times"]) < 2:
                    rows.append({"model": job.model, "threads": t, "note": "trains no batches"})
                    continue
                per_batch = _mean_batch(record)
                theirs = None
                if hasattr(model, "recbole_config"):
                    # Ours and RecBole's trainer alternate, ROUNDS times each, and each side keeps its fastest
                    # round: back-to-back single rounds differed by up to 4% in either direction.
                    theirs = _recbole_trainer(model, batches)
                    for _ in range(1, ROUNDS):
                        again, again_record = _fit_until(job, ctx, batches, flops=False)
                        per_batch = min(per_batch, _mean_batch(again_record))
                        theirs = min(theirs, _recbole_trainer(again, batches))
                _, counted = _fit_until(job, ctx, 2, flops=True)
                epoch_batches = record["epoch_batches"] or (len(model.recbole_train_data) if hasattr(model, "recbole_train_data") else None)
                row = {"model": job.model, "overrides": dict(job.overrides), "threads": t, "seconds_per_batch": per_batch, "batches_per_epoch": epoch_batches,
                       "seconds_per_epoch": per_batch * epoch_batches if epoch_batches else None,
                       "gflops_per_batch": counted["flops"] / 1e9, "gflop_per_s": counted["flops"] / 1e9 / per_batch,
                       "peak_gflop_per_s": peaks[t]}  # fmt: skip
                if theirs is not None:
                    row["recbole_trainer_seconds_per_batch"] = theirs
                rows.append(row)
    return rows


ROUNDS = 3
"""Alternating rounds of the harness's loop and RecBole's trainer for a RecBole model (fastest of each)."""


def _mean_batch(record: dict[str, Any]) -> float:
    """Seconds per batch: the mean over the timed batches after the first (batches vary)."""
    return (record["times"][-1] - record["times"][0]) / (len(record["times"]) - 1)


def _recbole_trainer(model: Any, batches: int) -> float:
    """RecBole's own trainer over the first ``batches`` + 1 batches of the same loader (one warm-up)."""
    from recbole.trainer import Trainer

    from baselines._recbole import recbole_compat

    class First:
        def __init__(self, loader: Any, n: int) -> None:
            self.loader, self.n, self.shuffle = loader, n, False

        def __iter__(self):  # noqa: ANN204
            for i, batch in enumerate(self.loader):
                if i >= self.n:
                    return
                yield batch

        def __len__(self) -> int:
            return self.n

    with recbole_compat(), tempfile.TemporaryDirectory() as saved:
        model.recbole_config["checkpoint_dir"] = saved
        # Its constructor opens a TensorBoard writer in ./log_tensorboard; _train_epoch never writes to it.
        with mock.patch("recbole.trainer.trainer.get_tensorboard", return_value=None):
            trainer = Trainer(model.recbole_config, model.module)
        trainer._train_epoch(First(model.recbole_train_data, 1), 0)  # warm-up
        t = time.perf_counter()
        trainer._train_epoch(First(model.recbole_train_data, batches), 1)
        return (time.perf_counter() - t) / batches


def table(rows: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    out = []
    for r in rows:
        if "note" in r:
            out.append([r["model"], r["threads"], r["note"], "", "", "", "", ""])
            continue
        ratio = r.get("recbole_trainer_seconds_per_batch")
        out.append([r["model"], r["threads"], f"{r['seconds_per_batch']:.4f}", r["batches_per_epoch"] or "?",
                    f"{r['seconds_per_epoch']:.1f}" if r["seconds_per_epoch"] else "?", f"{r['gflop_per_s']:.1f}",
                    f"{100 * r['gflop_per_s'] / r['peak_gflop_per_s']:.0f}%",
                    f"{r['seconds_per_batch'] / ratio:.2f}x" if ratio else "–"])  # fmt: skip
    return tabulate(out, headers=["model", "threads", "s/batch", "batches/epoch", "s/epoch", "GFLOP/s", "of peak",
                                  "vs RecBole trainer"], tablefmt="simple", disable_numparse=True)  # fmt: skip
