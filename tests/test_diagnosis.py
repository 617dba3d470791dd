"""bench/diagnosis.py: the table lists every question, finished or not, and says why a row has no numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench import diagnosis
from bench.plan import Request, diagnose_plan, selection_path


def _tuned_plan(tmp_path: Path):  # noqa: ANN202 - a bench.plan.Plan
    path = selection_path(tmp_path / "synthetic", "rclrec")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"model": "rclrec", "profile": "smoke", "selected": {"learning_rate": 0.003},
                                "selected_trial": "tuning/rclrec/learning_rate=0.003"}))  # fmt: skip
    return diagnose_plan(Request(profile="smoke", results_dir=tmp_path, tuned=True))


def test_rows_without_results_say_whether_they_failed_or_wait_for_another_models_grid(tmp_path: Path) -> None:
    plan = _tuned_plan(tmp_path)
    raised, died = (plan.json_path(job) for job in plan.jobs[-2:])
    for result, record in ((raised, {"error": "RuntimeError: boom", "log": str(raised.with_suffix(".error.log"))}),
                           (died, {"error": "KilledWorker: ('a|b', <WorkerState>)", "log": None})):  # fmt: skip
        result.parent.mkdir(parents=True, exist_ok=True)
        result.with_suffix(".failed.json").write_text(json.dumps(record))
    paths = diagnosis.write(plan)
    records = json.loads(paths["json"].read_text())
    assert [r["status"] for r in records] == ["missing"] * len(plan.jobs) + ["waiting", "waiting"]
    md = paths["md"].read_text()
    assert md.count("not run yet") == len(plan.jobs) - 2 and md.count("failed (see seed0.error.log)") == 1
    # a worker that died wrote no traceback: the cell gives the reason, its '|' escaped so the row stays one row
    assert md.count("failed: KilledWorker: ('a\\|b', <WorkerState>)") == 1
    assert md.count("waiting for tiger's tuning: run 'python -m bench tune --models tiger'") == 2


def _finished(path: Path, cpu: str, ranks: list[int], display: str = "RCLRec") -> None:
    """A result file with what the table reads: rank 1 a hit at the top, rank 1000 a miss."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path.with_suffix(".npz"), ranks=np.array(ranks))
    path.write_text(json.dumps({"display": display, "model": "rclrec", "seed": 0, "config_hash": "0",
                                "metrics": {"recall@10": 0.5, "ndcg@10": 0.5}, "valid_ndcg@10": 0.4,
                                "device": "cpu", "hardware": {"cpu": cpu}}))  # fmt: skip


def test_the_table_says_where_its_rows_ran_and_warns_when_table_1s_run_ran_elsewhere(tmp_path: Path) -> None:
    plan = _tuned_plan(tmp_path)
    reference, selection = plan.jobs[0], plan.jobs[1]
    _finished(plan.json_path(reference), "AMD EPYC", [1, 1000])
    _finished(plan.json_path(selection), "AMD EPYC", [1, 1])
    md = diagnosis.write(plan)["md"].read_text()
    assert "Where the rows ran: AMD EPYC (cpu), 2 rows." in md and "Table 1" not in md.split("Where the rows ran")[1]
    # the diagnosed model's own seed-0 run (Table 1's) on another CPU: its θ0 is not the rows' θ0
    _finished(plan.folder / "rclrec" / "seed0.json", "Intel Xeon", [1, 1000])
    md = diagnosis.write(plan)["md"].read_text()
    assert "Table 1's RCLRec seed 0 ran on Intel Xeon (cpu), so its θ0 is not the one these rows share" in md
    # the Δ column compares with the rows' own reference: +50 points (1 hit of 2 → 2 of 2)
    assert "+50.00" in md


def test_the_study_report_regenerates_the_diagnosis_from_its_runs(tmp_path: Path) -> None:
    from bench import study

    plan = _tuned_plan(tmp_path)
    _finished(plan.json_path(plan.jobs[0]), "AMD EPYC", [1, 1000])
    selection_path(plan.folder, "rclrec").unlink()  # a selection without its grid is not a tuning summary
    stale = plan.folder / "diagnosis.md"
    stale.write_text("# stale\n\nnot from the runs\n")
    study.write(plan.folder, Request(profile="smoke", results_dir=tmp_path))
    md = stale.read_text()
    assert "not from the runs" not in md and "Where the rows ran: AMD EPYC (cpu), 1 row." in md
    assert "Where the rows ran: AMD EPYC (cpu), 1 row." in (plan.folder / "REPORT.md").read_text()
