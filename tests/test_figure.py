"""The training figure's data: every table model's validation curve, averaged over the seeds that reached
each epoch, and RCLRec's first stage beside its fine-tuning."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.figure import STAGE1, training_curves, training_series
from bench.io import write_json


def _run(folder: Path, model: str, seed: int, curve: list[float], **fields: object) -> None:
    write_json(folder / model / f"seed{seed}.json", {"model": model, "seed": seed, "valid_curve": curve, **fields})


def test_curves_average_the_seeds_that_reached_each_epoch_and_show_the_first_stage(tmp_path: Path) -> None:
    pre = {"best_epoch": 1, "valid_curve": [0.1, 0.4, 0.3]}
    _run(tmp_path, "rclrec", 0, [0.2, 0.3], display="RCLRec", table="table1", fit_extra={"pretrain": pre})
    _run(tmp_path, "rclrec", 1, [0.4], display="RCLRec", table="table1", fit_extra={"pretrain": {**pre, "valid_curve": [0.3]}})
    _run(tmp_path, "rclrec-no-rcpm", 0, [0.5], display="w/o RCPM", table="table2", fit_extra={"pretrain": pre})
    _run(tmp_path, "tiger", 0, [0.25], display="TIGER", table="table1")
    _run(tmp_path, "diagnosis-like", 0, [0.9], display="not in a table", table=None)
    series = training_series(tmp_path)
    assert list(series) == ["RCLRec", "RCLRec" + STAGE1, "TIGER", "w/o RCPM"]  # one θ0 line: the variants share it
    assert series["RCLRec"] == pytest.approx([30.0, 30.0])  # epoch 1: (20 + 40) / 2; epoch 2: seed 0 alone
    assert series["RCLRec" + STAGE1] == pytest.approx([20.0, 40.0, 30.0])


def test_the_same_results_draw_the_same_pdf_bytes(tmp_path: Path) -> None:
    """No creation date in the PDF: regenerating a committed report leaves its figures unchanged in git."""
    _run(tmp_path, "tiger", 0, [0.25, 0.3], display="TIGER", table="table1")
    first = training_curves(tmp_path)["pdf"].read_bytes()
    assert b"CreationDate" not in first
    assert training_curves(tmp_path)["pdf"].read_bytes() == first
