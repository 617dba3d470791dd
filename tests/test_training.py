from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.training import (
    EPOCH_LINES,
    EarlyStopping,
    Standing,
    capped_stages,
    first_stage_seconds,
    from_scratch_seconds,
    train,
)


def test_early_stopping_keeps_the_best_weights() -> None:
    module = torch.nn.Linear(1, 1, bias=False)
    stopper = EarlyStopping(patience=2)
    for epoch, (weight, score) in enumerate([(1.0, 0.1), (2.0, 0.5), (3.0, 0.4), (4.0, 0.5)]):
        module.weight.data.fill_(weight)
        stop = stopper.step(epoch, score, module)
    assert stop and stopper.best_epoch == 1  # a tie (0.5 again) is not an improvement
    stopper.restore(module)
    assert module.weight.item() == 2.0


def _run(checkpoint: Path | None, crash_at: int | None = None) -> tuple[torch.Tensor, list[float]]:
    torch.manual_seed(0)
    module = torch.nn.Linear(4, 1)
    optimizer = torch.optim.Adam(module.parameters(), lr=0.1)
    x = torch.randn(64, 4)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])

    def run_epoch(epoch: int) -> float:
        if epoch == crash_at:
            raise KeyboardInterrupt
        idx = torch.randperm(64)[:32]  # uses the global RNG: resuming must restore it
        optimizer.zero_grad()
        loss = ((module(x[idx]).squeeze(1) - y[idx]) ** 2).mean()
        loss.backward()
        optimizer.step()
        return loss.item()

    def validate() -> float:
        return -float(((module(x).squeeze(1) - y) ** 2).mean())

    report = train(module, optimizer, run_epoch, validate, epochs=8, patience=8, seed=0, checkpoint=checkpoint,
                   progress=False)
    return module.weight.detach().clone(), report.valid_curve


def test_an_interrupted_run_resumes_to_the_same_numbers(tmp_path: Path) -> None:
    straight_weights, straight_curve = _run(None)
    checkpoint = tmp_path / "model.ckpt"
    with pytest.raises(KeyboardInterrupt):
        _run(checkpoint, crash_at=5)
    assert checkpoint.exists()
    # What the dry run says of it: five epochs (0-4) done, their best, the seconds so far.
    standing = Standing.read(checkpoint)
    assert standing is not None and (standing.epochs, standing.patience) == (5, 8)
    where = standing.summary()
    assert where.startswith("after epoch 5 (best epoch ") and where.endswith(" s of training so far)")
    resumed_weights, resumed_curve = _run(checkpoint)
    assert torch.equal(straight_weights, resumed_weights)
    assert resumed_curve == straight_curve
    assert not checkpoint.exists()  # removed once training ends


def test_a_checkpoint_that_cannot_be_read_has_no_summary(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    assert Standing.read(empty) is None and Standing.read(foreign) is None


def _train_on(scores: list[float], patience: int, checkpoint: Path | None = None, epochs: int | None = None) -> dict:
    module = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    it = iter(scores)
    report = train(module, optimizer, lambda epoch: 0.0, lambda: next(it), epochs=epochs or len(scores), patience=patience, seed=0,
                   checkpoint=checkpoint, progress=False)  # fmt: skip
    return {"best_epoch": report.best_epoch, **report.extra}


def test_the_report_says_whether_training_ended_at_the_epoch_cap() -> None:
    still_improving = _train_on([0.1, 0.2, 0.3, 0.4], patience=2)
    assert still_improving["ended_at_cap"] and still_improving["epoch_cap"] == 4
    assert capped_stages(still_improving["best_epoch"], still_improving) == ["best epoch 4 of 4"]
    stopped = _train_on([0.1, 0.3, 0.2, 0.2, 0.5], patience=2)  # stops after epoch 3, before the 0.5
    assert not stopped["ended_at_cap"] and stopped["epochs_run"] == 4
    assert capped_stages(stopped["best_epoch"], stopped) == []
    # RCLRec reports its pre-training stage under "pretrain" (a FitReport as a dict).
    pretrain = {"best_epoch": 19, "extra": {"ended_at_cap": True, "epoch_cap": 20}}
    assert capped_stages(1, {**stopped, "pretrain": pretrain}) == ["pre-training: best epoch 20 of 20"]


def test_a_resumed_run_is_expected_to_need_what_is_left_but_at_least_the_epochs_early_stopping_needs() -> None:
    # 48 epochs in 13,680 s (285 s each); the best was epoch 47, one epoch ago, and patience is 10.
    standing = Standing(epochs=48, best_epoch=46, best_score=0.4113, bad_epochs=1, patience=10, seconds=13_680.0)
    assert standing.seconds_left(30_000.0) == 16_320.0  # a typical run of this config takes 30,000 s
    assert standing.seconds_left(14_040.0) == 9 * 285.0  # 360 s left of a typical run, but 9 epochs to stop
    assert standing.summary() == ("after epoch 48 (best epoch 47, validation NDCG@10 41.13%; 1 epoch without a gain, "
                                  "early stopping at 10; 3.8 h of training so far)")  # fmt: skip
    old = Standing(epochs=4, best_epoch=3, best_score=0.5, bad_epochs=0, patience=None, seconds=400.0)
    assert old.seconds_left(100.0) == 100.0  # a checkpoint without its patience: at least one more epoch


def test_each_epoch_line_says_the_best_so_far_and_how_close_early_stopping_is() -> None:
    lines: list[str] = []
    token = EPOCH_LINES.set(lines.append)
    try:
        _train_on([0.1, 0.3, 0.2, 0.25], patience=3)
    finally:
        EPOCH_LINES.reset(token)
    standing = [line.split(" (", 1)[1].rsplit("), ", 1)[0] for line in lines]
    assert standing == ["best", "best", "best 0.3000 at epoch 2; 1 epoch without a gain, early stopping at 3",
                        "best 0.3000 at epoch 2; 2 epochs without a gain, early stopping at 3"]
    assert lines[2].startswith("train epoch 3: loss 0.0000, valid NDCG@10 0.2000 (best 0.3000 at epoch 2;")
    assert all(line.endswith(" s") for line in lines)  # the epoch's own seconds


def test_a_run_that_stopped_early_does_not_train_on_when_resumed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash after the stopping epoch's checkpoint but before its removal: the resumed call must not
    train the epochs left under the cap (``validate`` has no scores past the fourth epoch here)."""
    checkpoint = tmp_path / "model.ckpt"

    def crash(self: Path, *args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "unlink", crash)
    with pytest.raises(KeyboardInterrupt):
        _train_on([0.1, 0.3, 0.2, 0.2], patience=2, checkpoint=checkpoint, epochs=6)  # stops after epoch 3 of 6
    monkeypatch.undo()
    assert checkpoint.exists()
    resumed = _train_on([], patience=2, checkpoint=checkpoint, epochs=6)
    assert resumed["epochs_run"] == 4 and not resumed["ended_at_cap"] and resumed["best_epoch"] == 1
    assert not checkpoint.exists()


def test_a_stage_draws_the_same_numbers_whatever_ran_before_it() -> None:
    def draws(noise_before: int) -> list[float]:
        torch.rand(noise_before)  # another stage, another job in the same worker, a cache hit: anything
        module = torch.nn.Linear(1, 1)
        optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
        seen: list[float] = []
        train(module, optimizer, lambda epoch: seen.append(torch.rand(1).item()) or 0.0, lambda: 0.0, epochs=3, patience=3,
              seed=7, progress=False)  # fmt: skip
        return seen

    assert draws(0) == draws(5) == draws(1000)


def test_a_cached_first_stage_counts_in_a_runs_time_from_scratch_and_a_trained_one_only_once() -> None:
    """θ0 took 100 s. The run that trained it has them inside its own 130 s; a run that read it from the
    cache trained 30 s itself, so from scratch it too is 130 s. A one-stage model has no first stage."""
    def run(theta0: str) -> dict:
        return {"train_seconds": 130.0 if theta0 == "trained" else 30.0,
                "fit_extra": {"pretrain": {"extra": {"train_seconds": 100.0, "theta0": theta0}}}}

    assert first_stage_seconds(run("trained")) == (100.0, False)
    assert first_stage_seconds(run("cached")) == (100.0, True)
    assert from_scratch_seconds(run("trained")) == from_scratch_seconds(run("cached")) == 130.0
    assert first_stage_seconds({"train_seconds": 7.0, "fit_extra": {}}) == (0.0, False)
    assert from_scratch_seconds({"train_seconds": 7.0, "fit_extra": {}}) == 7.0
