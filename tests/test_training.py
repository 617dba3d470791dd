from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.training import EarlyStopping, train


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

    report = train(module, optimizer, run_epoch, validate, epochs=8, patience=8, checkpoint=checkpoint, progress=False)
    return module.weight.detach().clone(), report.valid_curve


def test_an_interrupted_run_resumes_to_the_same_numbers(tmp_path: Path) -> None:
    straight_weights, straight_curve = _run(None)
    checkpoint = tmp_path / "model.ckpt"
    with pytest.raises(KeyboardInterrupt):
        _run(checkpoint, crash_at=5)
    assert checkpoint.exists()
    resumed_weights, resumed_curve = _run(checkpoint)
    assert torch.equal(straight_weights, resumed_weights)
    assert resumed_curve == straight_curve
    assert not checkpoint.exists()  # removed once training ends
