"""bench/diagnosis.py: the table lists every question, finished or not, and says why a row has no numbers."""

from __future__ import annotations

import json
from pathlib import Path

from bench import diagnosis
from bench.plan import Request, diagnose_plan, selection_path


def test_rows_without_results_say_whether_they_failed_or_wait_for_another_models_grid(tmp_path: Path) -> None:
    path = selection_path(tmp_path / "synthetic", "rclrec")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"model": "rclrec", "profile": "smoke", "selected": {"learning_rate": 0.003},
                                "selected_trial": "tuning/rclrec/learning_rate=0.003"}))  # fmt: skip
    plan = diagnose_plan(Request(profile="smoke", results_dir=tmp_path, tuned=True))
    paths = diagnosis.write(plan)
    records = json.loads(paths["json"].read_text())
    assert [r["status"] for r in records] == ["missing"] * len(plan.jobs) + ["waiting", "waiting"]
    md = paths["md"].read_text()
    assert md.count("missing (failed or not run)") == len(plan.jobs)
    assert md.count("waiting for tiger's tuning: run 'python -m bench tune --models tiger'") == 2
