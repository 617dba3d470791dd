"""The training loop every trained model shares: epochs, validation NDCG@10, early stopping that keeps
the best weights in memory, and a per-epoch checkpoint so an interrupted run resumes where it stopped."""

from __future__ import annotations

import contextlib
import contextvars
import copy
import dataclasses
import math
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from bench.data.split import Split
from bench.durations import duration
from bench.errors import NumericalError
from bench.io import atomic_path
from bench.recommender import FitReport, Recommender, validation_ndcg10
from bench.seeding import seed_everything

# Where each epoch's line goes instead of this process's stdout: a Dask worker (bench.executor) sets it to
# send the line to the driver, which prints it, so a study on several workers still reports every epoch.
EPOCH_LINES: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar("EPOCH_LINES", default=None)


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (matmuls in bf16, reductions and log-softmax in fp32); nothing on CPU, where
    fp32 keeps results bit-identical run to run."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class EarlyStopping:
    """Stop after ``patience`` epochs without a strictly better validation score; remember the best
    weights (a copy of the state dict, so nothing is pickled to disk)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_score = -float("inf")
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0

    def step(self, epoch: int, score: float, module: torch.nn.Module) -> bool:
        """Record one epoch's validation score; True when training should stop."""
        if score > self.best_score:
            self.best_score, self.best_epoch, self.bad_epochs = score, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore(self, module: torch.nn.Module) -> None:
        if self.best_state is not None:
            module.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        return copy.copy(self.__dict__)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def minibatch_epoch(
    n: int,
    batch_size: int,
    seed: int,
    samples: int,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    loss_of: Callable[[np.ndarray], torch.Tensor],
) -> float:
    """One epoch over ``n`` samples in a seeded random order (``samples`` > 0 draws only that many):
    ``loss_of(indices)`` under autocast, backward, step. The order depends only on ``seed``, so a resumed
    epoch sees the same batches. Returns the mean batch loss."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    if samples:
        order = order[:samples]
    total, batches = 0.0, 0
    for start in range(0, len(order), batch_size):
        with autocast(device):
            loss = loss_of(order[start : start + batch_size])
        total, batches = total + optimizer_step(loss, optimizer, f"batch {batches + 1}"), batches + 1
    return total / max(1, batches)


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, where: str) -> float:
    """Backward and step, unless the loss or the gradient norm is not finite: then the run stops with a
    :class:`NumericalError` (a NaN step would silently poison every later epoch). Returns the loss."""
    value = loss.item()
    if not math.isfinite(value):
        raise NumericalError(f"training loss is {value} at {where}")
    optimizer.zero_grad()
    loss.backward()
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    norm = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
    if not math.isfinite(norm):
        raise NumericalError(f"gradient norm is {norm} at {where} (loss {value:.4g})")
    optimizer.step()
    # Free the gradients now, not at the next step: the next forward pass can then reuse their memory, as
    # under RecBole's trainer (which zeroes before the forward). Measured on SASRec: 1.00-1.03x of RecBole's
    # trainer before, 0.97-1.00x after; every number stays the same (the zeroing above then finds None).
    optimizer.zero_grad()
    return value


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def train(
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    run_epoch: Callable[[int], float],
    validate: Callable[[], float],
    epochs: int,
    patience: int,
    seed: int,
    checkpoint: Path | None = None,
    desc: str = "train",
    progress: bool = True,
) -> FitReport:
    """Run up to ``epochs`` epochs of ``run_epoch`` (returns the mean training loss), validate after each
    and stop early; the module ends with the best epoch's weights.

    With ``checkpoint``, the state after every epoch (weights, optimizer, early stopping, RNG streams) is
    written atomically, and a later call with the same path continues from it: same seed, same numbers.
    The file is removed when training ends. A fresh start seeds every global random stream with ``seed``
    (the stage's :meth:`Context.stage_seed`), so the stage draws the same numbers whatever ran before it.
    """
    stopper = EarlyStopping(patience)
    curve: list[float] = []
    losses: list[float] = []
    start, stopped = 0, False
    earlier, resumes = 0.0, 0  # training seconds of earlier (interrupted) processes, and how many there were
    seed_everything(seed)  # a resumed run restores the streams from its checkpoint below
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)  # our own file, written below
        module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        stopper.load_state_dict(state["stopper"])
        curve, losses, start = state["curve"], state["losses"], state["epoch"] + 1
        stopped = state.get("stopped", False)  # True: it had stopped early and only the clean-up below was interrupted
        earlier, resumes = state.get("seconds", 0.0), state.get("resumes", 0) + 1
        _set_rng_state(state["rng"])
    began = time.perf_counter()
    bar = tqdm(range(start, start if stopped else epochs), desc=desc, leave=False, disable=not progress or None, unit="epoch")
    for epoch in bar:
        epoch_began = time.perf_counter()
        module.train()
        try:
            losses.append(float(run_epoch(epoch)))
            module.eval()
            with torch.no_grad():
                curve.append(float(validate()))
        except NumericalError as err:
            raise NumericalError(f"{desc}, epoch {epoch + 1}: {err}") from None
        if not math.isfinite(curve[-1]):
            raise NumericalError(f"{desc}, epoch {epoch + 1}: validation NDCG@10 is {curve[-1]}")
        stop = stopper.step(epoch, curve[-1], module)
        bar.set_postfix(loss=f"{losses[-1]:.4f}", valid_ndcg10=f"{curve[-1]:.4f}", best=stopper.best_epoch + 1)
        # The best so far and how close early stopping is, so a long run's end can be read off its lines.
        standing = "best" if stopper.bad_epochs == 0 else (
            f"best {stopper.best_score:.4f} at epoch {stopper.best_epoch + 1}; {_no_gain(stopper.bad_epochs, patience)}")
        line = (f"{desc} epoch {epoch + 1}: loss {losses[-1]:.4f}, valid NDCG@10 {curve[-1]:.4f} ({standing}), "
                f"{duration(time.perf_counter() - epoch_began)}")  # fmt: skip
        if (send := EPOCH_LINES.get()) is not None:
            send(line)
        elif progress and bar.disable:  # no terminal (a log file, CI): one line per epoch instead of a bar
            print(f"  {line}", flush=True)
        if checkpoint is not None:
            state = {
                "module": module.state_dict(),
                "optimizer": optimizer.state_dict(),
                "stopper": stopper.state_dict(),
                "curve": curve,
                "losses": losses,
                "epoch": epoch,
                "stopped": stop,
                "rng": _rng_state(),
                "seconds": earlier + time.perf_counter() - began,
                "resumes": resumes,
            }
            with atomic_path(checkpoint) as tmp:
                torch.save(state, tmp)
        if stop:
            stopped = True
            break
    stopper.restore(module)
    module.eval()
    if checkpoint is not None and checkpoint.exists():
        checkpoint.unlink()
    return FitReport(
        best_epoch=stopper.best_epoch,
        best_valid_ndcg10=stopper.best_score,
        valid_curve=curve,
        extra={"train_loss": losses, "epochs_run": len(curve), "epoch_cap": epochs, "ended_at_cap": not stopped,
               "earlier_seconds": round(earlier, 3), "resumes": resumes},
    )


@dataclasses.dataclass(frozen=True)
class Standing:
    """Where an interrupted run stands, read from the checkpoint :func:`train` writes."""

    epochs: int
    """Epochs done."""
    best_epoch: int
    """0-based, as in :class:`EarlyStopping`."""
    best_score: float
    bad_epochs: int
    patience: int | None
    """None in a checkpoint written before it was recorded."""
    seconds: float
    """Of training, over every process that worked on it."""

    @classmethod
    def read(cls, checkpoint: Path) -> Standing | None:
        """Memory-mapped, so the weights are not read; None when the file cannot be read as a checkpoint."""
        try:
            state = torch.load(checkpoint, map_location="cpu", mmap=True, weights_only=False)  # our own file
            stopper = state["stopper"]
            return cls(epochs=int(state["epoch"]) + 1, best_epoch=int(stopper["best_epoch"]),
                       best_score=float(stopper["best_score"]), bad_epochs=int(stopper.get("bad_epochs", 0)),
                       patience=stopper.get("patience"), seconds=float(state.get("seconds", 0.0)))  # fmt: skip
        except Exception:  # noqa: BLE001 - an empty, truncated or foreign file: the dry run just says less
            return None

    def summary(self) -> str:
        """"after epoch 39 (best epoch 37, validation NDCG@10 40.23%; 2 epochs without a gain, early stopping
        at 10; 2.3 h of training so far)"."""
        waiting = f"; {_no_gain(self.bad_epochs, self.patience)}" if self.bad_epochs and self.patience else ""
        return (f"after epoch {self.epochs} (best epoch {self.best_epoch + 1}, validation NDCG@10 "
                f"{100 * self.best_score:.2f}%{waiting}; {duration(self.seconds)} of training so far)")  # fmt: skip

    def seconds_left(self, from_scratch: float) -> float:
        """The expected rest of a run expected to take ``from_scratch`` seconds in all: what is left of
        that, but at least the epochs early stopping still needs (patience − epochs without a gain) at this
        run's own pace."""
        pace = self.seconds / max(1, self.epochs)
        return max(from_scratch - self.seconds, max(1, (self.patience or 1) - self.bad_epochs) * pace)


def _no_gain(epochs: int, patience: int) -> str:
    """How close early stopping is: "8 epochs without a gain, early stopping at 10"."""
    return f"{epochs} epoch{'s' if epochs > 1 else ''} without a gain, early stopping at {patience}"


def earlier_work(extra: Mapping[str, Any]) -> tuple[float, int]:
    """(seconds, processes) of training done before this process for a run's ``fit_extra``: its own stage
    and, for RCLRec, the pre-training when this run trained it (a cached θ0 is another run's work)."""
    seconds, resumes = float(extra.get("earlier_seconds", 0.0)), int(extra.get("resumes", 0))
    pre = extra.get("pretrain")
    if isinstance(pre, Mapping) and pre.get("extra", {}).get("theta0") == "trained":
        seconds += float(pre["extra"].get("earlier_seconds", 0.0))
        resumes += int(pre["extra"].get("resumes", 0))
    return seconds, resumes


def first_stage_seconds(result: Mapping[str, Any]) -> tuple[float, bool]:
    """(seconds, cached) of a finished run's first stage, RCLRec's θ0 pre-training: the seconds of the run
    that trained it, whether this run did (``cached`` False, already inside its ``train_seconds``) or read it
    from the cache (True); (0.0, False) for a model with one stage."""
    pre = (result.get("fit_extra") or {}).get("pretrain")
    if not isinstance(pre, Mapping):
        return 0.0, False
    extra = pre.get("extra", {})
    return float(extra.get("train_seconds", 0.0)), extra.get("theta0") == "cached"


def from_scratch_seconds(result: Mapping[str, Any]) -> float:
    """A finished run's training seconds as if nothing had been cached: its own ``train_seconds`` plus, for
    an RCLRec run that read θ0 from the cache, the seconds that θ0's pre-training took (its variants, sweep
    points and tuning trials of one seed and stage-1 config share that θ0, so it counts once per run)."""
    first, cached = first_stage_seconds(result)
    return float(result.get("train_seconds") or 0.0) + (first if cached else 0.0)


def capped_stages(best_epoch: int, extra: Mapping[str, Any]) -> list[str]:
    """The training stages of one run (its result's ``best_epoch`` and ``fit_extra``) that ended at their
    epoch cap instead of by early stopping, as "best epoch B of C" (RCLRec's first stage, reported under
    ``pretrain``, as "pre-training: …"). Such a model may still have been improving, so its numbers may
    understate it: the runner warns and the report marks it."""
    out = []
    if extra.get("ended_at_cap"):
        out.append(f"best epoch {best_epoch + 1} of {extra['epoch_cap']}")
    pre = extra.get("pretrain")
    if isinstance(pre, Mapping) and pre.get("extra", {}).get("ended_at_cap"):
        out.append(f"pre-training: best epoch {pre['best_epoch'] + 1} of {pre['extra']['epoch_cap']}")
    return out


def fit_model(
    model: Recommender, module: torch.nn.Module, optimizer: torch.optim.Optimizer, run_epoch: Callable[[int], float], split: Split, desc: str
) -> FitReport:
    """:func:`train` with what every model shares: its config's ``epochs`` and ``patience``, validation
    NDCG@10 on ``split`` as the criterion, and its run's checkpoint and progress setting."""
    ctx = model.ctx
    return train(module, optimizer, run_epoch, lambda: validation_ndcg10(model, split, ctx.eval_batch_size),
                 epochs=model.config.epochs, patience=model.config.patience, seed=ctx.stage_seed("train"),
                 checkpoint=ctx.checkpoint, desc=desc, progress=ctx.progress)  # fmt: skip
