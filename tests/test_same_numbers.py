"""A result is a pure function of (split, config, seed): the same whether RCLRec's θ0 was trained in the run,
read from the cache, or the run was killed and resumed, and whichever command produced it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import rclrec.model
from bench import runner
from bench.plan import Request, run_plan, sweep_plan
from bench.training import capped_stages

MODELS = ["rclrec", "rclrec-no-qal"]


def _run(results: Path, models: list[str] = MODELS) -> None:
    assert runner.run(run_plan(Request(profile="smoke", seeds=1, results_dir=results), models), progress=False) == []


def _outcome(results: Path, name: str) -> tuple[bytes, list[str], dict]:
    path = results / "synthetic" / name / "seed0.json"
    record = json.loads(path.read_text())
    pre = record["fit_extra"]["pretrain"]
    pre_record = {k: pre[k] for k in ("best_epoch", "best_valid_ndcg10", "valid_curve")} | {
        k: pre["extra"][k] for k in ("epochs_run", "epoch_cap", "ended_at_cap", "train_loss")}
    return path.with_suffix(".npz").read_bytes(), capped_stages(record["best_epoch"], record["fit_extra"]), pre_record


class Killed(BaseException):
    """Stands in for kill -9: nothing after it runs, nothing catches it."""


def _kill_at(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """Make the ``call``-th training epoch of RCLRec (1-based, both stages counted) die before it starts."""
    real, calls = rclrec.model.minibatch_epoch, []

    def epoch(*args, **kwargs):  # noqa: ANN202
        calls.append(1)
        if len(calls) == call:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(rclrec.model, "minibatch_epoch", epoch)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("fresh")
    _run(results)
    return results


def test_cached_theta0_gives_the_same_ranks_and_marks(fresh: Path, tmp_path: Path) -> None:
    shutil.copytree(fresh / ".cache", tmp_path / ".cache")  # θ0 (and the split) from the fresh run
    _run(tmp_path)
    for name in MODELS:
        ranks, capped, pre = _outcome(tmp_path, name)
        assert (ranks, capped, pre) == _outcome(fresh, name), name
        assert capped  # the smoke profile caps pre-training at 2 epochs: the ‡ survives the cache
        record = json.loads((tmp_path / "synthetic" / name / "seed0.json").read_text())
        assert record["fit_extra"]["pretrain"]["extra"]["theta0"] == "cached"


@pytest.mark.parametrize("call", [2, 4], ids=["killed-in-pretraining", "killed-in-fine-tuning"])
def test_killed_and_resumed_gives_the_same_ranks_and_marks(fresh: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           call: int) -> None:  # fmt: skip
    _kill_at(monkeypatch, call)
    with pytest.raises(Killed):
        _run(tmp_path)
    checkpoints = [*(tmp_path / "synthetic" / "rclrec").glob("*.ckpt"), *(tmp_path / ".cache").rglob("*theta0*.ckpt")]
    assert checkpoints  # the interrupted stage left its checkpoint (θ0's next to its cache entry)
    monkeypatch.undo()
    _run(tmp_path)
    for name in MODELS:
        assert _outcome(tmp_path, name) == _outcome(fresh, name), name
    resumed = json.loads((tmp_path / "synthetic" / "rclrec" / "seed0.json").read_text())
    assert resumed["resumes"] == 1  # one earlier process trained part of it, and its seconds are counted


def test_figure3_at_k4_is_table1s_rclrec(fresh: Path, tmp_path: Path) -> None:
    plan = sweep_plan(Request(profile="smoke", seeds=1, results_dir=tmp_path), "rclrec", "k", "4")
    assert runner.run(plan, progress=False) == []  # trained here: no rclrec run to reuse in this folder
    point = tmp_path / "synthetic" / "sweep" / "rclrec" / "k=4" / "seed0.npz"
    assert point.read_bytes() == (fresh / "synthetic" / "rclrec" / "seed0.npz").read_bytes()
