from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.config import Configs
from bench.plan import grid_points, trial_name
from tests.test_cli import bench


def test_grid_points_expand_tied_keys_in_yaml_order() -> None:
    points = grid_points(Configs().model("sasrec"))
    assert len(points) == 4
    assert points[0] == {"learning_rate": 0.001, "hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5}
    assert points[3] == {"learning_rate": 0.003, "hidden_dropout_prob": 0.2, "attn_dropout_prob": 0.2}
    assert trial_name("tiger", {"learning_rate": 0.003, "dropout": 0.1}) == "tuning/tiger/learning_rate=0.003,dropout=0.1"


@pytest.mark.parametrize("model", ["sasrec", "bert4rec", "pbat", "hstu", "tiger", "mbgen", "gear", "rclrec"])
def test_every_trained_model_gets_the_same_budget(model: str) -> None:
    points = grid_points(Configs().model(model))
    assert len(points) == 4 and all("learning_rate" in p for p in points)


def test_tune_selects_on_validation_and_run_reuses_the_trial(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    (configs / "models").mkdir(parents=True)
    # Recent's decay: near 0 keeps only the last interaction's weight, 0.9 (the default) does better.
    (configs / "models" / "recent.yaml").write_text("extends: recent\ntune:\n  decay: [0.01, 0.9]\n")
    env = {"BENCH_CONFIG_PATH": str(configs)}
    out = tmp_path / "r"
    result = bench("tune", "--models", "recent", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "synthetic" / "tuning" / "recent.json").read_text())
    scores = [t["valid_ndcg@10"] for t in record["trials"]]
    assert record["selected"] == record["trials"][scores.index(max(scores))]["params"]
    assert "✓" in (out / "synthetic" / "tuning.md").read_text()
    # a trial's line shows the criterion it is chosen by, never its test metrics
    trial_lines = [line for line in result.stdout.splitlines() if line.startswith("✓ tuning/recent/")]
    assert len(trial_lines) == 2 and all("valid N@10" in line and "R@10" not in line for line in trial_lines), trial_lines

    result = bench("run", "--models", "recent", "--tuned", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert f"the same run as {record['selected_trial']} seed0, reused" in result.stdout  # the seed-0 trial is the run
    run = json.loads((out / "synthetic" / "recent" / "seed0.json").read_text())
    assert run["model"] == "recent" and run["config"]["decay"] == record["selected"]["decay"]
    assert (out / "synthetic" / "table1.md").exists()


def test_run_tuned_without_tuning_is_a_one_line_error(tmp_path: Path) -> None:
    result = bench("run", "--models", "tiger", "--tuned", "--profile", "smoke", "--results-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "run 'python -m bench tune --models tiger' first" in result.stderr


def test_a_trial_from_another_cpu_stands_in_only_for_a_model_without_a_shared_first_stage(tmp_path: Path) -> None:
    # RCLRec's θ0 is shared through the cache by Table 1's seed and its ablations and sweep; torch rounds by
    # instruction set, so a trial's θ0 from another CPU is not the one this machine trains for them.
    from bench.plan import Request, run_plan, selection_path
    from bench.provenance import hardware
    from bench.runner import _reuse, reusable_here

    folder = tmp_path / "synthetic"
    for model in ("rclrec", "hstu"):
        path = selection_path(folder, model)
        path.parent.mkdir(parents=True, exist_ok=True)
        trial = f"tuning/{model}/learning_rate=0.003,dropout=0.1"
        path.write_text(json.dumps({"model": model, "profile": "smoke", "selected": {"learning_rate": 0.003, "dropout": 0.1},
                                    "selected_trial": trial}))  # fmt: skip
    plan = run_plan(Request(profile="smoke", seeds=1, results_dir=tmp_path, tuned=True), ["rclrec", "hstu"])
    jobs = {j.name: j for j in plan.jobs}
    here, there = {"hardware": hardware()}, {"hardware": {"cpu": "Another CPU", "cores": "2"}}
    assert reusable_here(jobs["rclrec"], here) and not reusable_here(jobs["rclrec"], there)
    assert reusable_here(jobs["hstu"], here) and reusable_here(jobs["hstu"], there)

    for name, done, reused in (("rclrec", there, False), ("hstu", there, True), ("rclrec", here, True)):
        job = jobs[name]
        source, target = folder / job.reuse / "seed0.json", folder / name / "seed0.json"
        source.parent.mkdir(parents=True, exist_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(json.dumps({"split_fingerprint": "f", "config_hash": "h", **done}))
        source.with_suffix(".npz").write_bytes(b"ranks")
        target.unlink(missing_ok=True)
        assert _reuse(source, target, job, "f", "h", dict) is reused, name
        assert target.exists() is reused
